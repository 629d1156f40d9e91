/* build-user.h - the finishing touches of a template's root tree.
 *
 * E2B's finalize step creates the `user` account (`useradd -m -s /bin/bash`),
 * gives it passwordless sudo and writes `/.e2b`. Here the same is done by
 * editing the tree's /etc/passwd, /etc/group and /etc/shadow directly. Every
 * path is resolved inside the root (symlinks in the image cannot lead out).
 */
#ifndef E2B_BUILD_USER_H
#define E2B_BUILD_USER_H

#include <stdbool.h>
#include <sys/types.h>
#include "error.h"

struct e2b_user_info {
    uid_t uid;
    gid_t gid;
    bool created;  /* false: the account existed already */
};

/* Add `name` (home /home/<name>, shell /bin/bash or /bin/sh when bash is
 * missing) unless present; NOPASSWD sudo when /etc/sudoers.d exists. */
int e2b_root_add_user(const char *root, const char *name, struct e2b_user_info *ret,
                      struct e2b_error **err);

/* The same, without sudo unless asked for (E2B's USER step). */
int e2b_root_add_user_sudo(const char *root, const char *name, bool sudo, struct e2b_user_info *ret,
                           struct e2b_error **err);
/* The home directory /etc/passwd gives `user` (NULL or "": root); NULL
 * when the tree does not know it. Caller frees. */
char *e2b_root_lookup_home(const char *root, const char *user);

/* Look up a user or group (name or number) in the tree's /etc/passwd or
 * /etc/group; -1 with E2B_ERR_NOT_FOUND when unknown. */
int e2b_root_lookup_uid(const char *root, const char *user, uid_t *uid, gid_t *gid,
                        struct e2b_error **err);
int e2b_root_lookup_gid(const char *root, const char *group, gid_t *gid, struct e2b_error **err);

/* Write /.e2b (build metadata lines `key=value`). */
int e2b_root_write_marker(const char *root, const char *content, struct e2b_error **err);

#endif
