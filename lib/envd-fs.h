/* envd-fs.h - the filesystem.Filesystem service (Stat, MakeDir, Move, ListDir,
 * Remove) and the path and EntryInfo helpers /files and the watcher share. */
#ifndef E2B_ENVD_FS_H
#define E2B_ENVD_FS_H

#include "envd-state.h"

/* Resolve a path from a request: "" is the default workdir (else home), "~"
 * and "~/x" expand, relative paths join the user's home; the result is
 * absolute and clean (no "." / ".." / "//"). Lexical only. */
char *e2b_envd_resolve_path(const char *path, const struct e2b_user *u, const char *default_workdir,
                            struct e2b_error **err);
/* Clean an absolute path lexically. */
char *e2b_path_clean(const char *path);
/* "-rw-r--r--" style permissions (with type letter) for a st_mode. */
void e2b_mode_string(unsigned mode, char out[11]);
/* EntryInfo JSON (proto3 JSON shape) for path, from lstat. */
json_t *e2b_envd_entry_info(const char *path, struct e2b_error **err);

void e2b_fs_stat(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);
void e2b_fs_make_dir(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);
void e2b_fs_move(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);
void e2b_fs_list_dir(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);
void e2b_fs_remove(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);

#endif
