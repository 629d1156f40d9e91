/* build-copy.h - the file work of COPY and ADD, done through directory fds.
 *
 * A build copies from trees it does not trust (the build context, a git
 * checkout, another stage's or image's root) into a tree it does not trust
 * either (the image root, whose symlinks the base image chose). So every
 * path is resolved with openat2(RESOLVE_IN_ROOT) against the tree it belongs
 * to, as if that tree were "/":
 *  - `h -> /` in a context makes `COPY h/etc/shadow` look for the context's
 *    own etc/shadow (BuildKit scopes context symlinks the same way), never
 *    the host's;
 *  - `/lib -> usr/lib` or `/var/run -> /run` in an image are followed inside
 *    the image, so `COPY rootfs/ /` merges into /usr/lib.
 * Inside a copied tree a symlink is copied as a symlink, never followed, and
 * every file is opened below a directory fd with O_NOFOLLOW: nothing outside
 * the two trees is read or written.
 */
#ifndef E2B_BUILD_COPY_H
#define E2B_BUILD_COPY_H

#include <stdbool.h>
#include <sys/types.h>
#include "build-context.h"
#include "envd-crypto.h"
#include "error.h"

/* Open path (absolute or relative, both from the top of the tree root_fd)
 * with symlinks resolved inside the tree; the last component is followed
 * too unless flags has O_NOFOLLOW. Returns the fd, or -1 with errno. */
int e2b_tree_open(int root_fd, const char *path, int flags);
/* A new open of what an O_PATH fd names (through /proc/self/fd, which
 * resolves to that very object, not to a path). -1 with errno. */
int e2b_tree_reopen(int path_fd, int flags);
/* mkdir -p inside the tree (each component resolved in it, symlinks to
 * directories followed within it); returns an O_PATH fd of the directory. */
int e2b_tree_mkdir_p(int root_fd, const char *path, struct e2b_error **err);
/* The same in the tree at the path root. */
int e2b_tree_mkdir_in(const char *root, const char *path, struct e2b_error **err);

/* COPY/ADD --chmod: an octal mode, or symbolic clauses like chmod(1)'s
 * (`u+x`, `go-w`, `a=rX,u+w`; no who means `a`, no umask applies). */
struct e2b_chmod {
    bool octal;
    mode_t mode;    /* octal */
    char *clauses;  /* symbolic, validated */
};
int e2b_chmod_parse(const char *spec, struct e2b_chmod *ret, struct e2b_error **err);
mode_t e2b_chmod_apply(const struct e2b_chmod *c, mode_t mode, bool is_dir);
void e2b_chmod_free(struct e2b_chmod *c);

struct e2b_copy_opts {
    bool own;                         /* --chown given: uid and gid */
    uid_t uid;
    gid_t gid;
    bool root_owned;                  /* without --chown, files become 0:0 (context files) */
    const struct e2b_chmod *chmod;    /* NULL: keep the source's modes */
    const struct e2b_ignore *ignore;  /* .dockerignore: context-relative names; may be NULL */
    const struct e2b_ignore *exclude; /* --exclude: names relative to the source; may be NULL */
};

/* Copy the object src_fd (an O_PATH fd, already resolved; rel is its
 * context-relative name, "." for the top, for .dockerignore) to dest, an
 * absolute path in the tree dst_root_fd. A directory merges into dest (an
 * existing directory, or a symlink that resolves to one inside the tree,
 * receives it; otherwise dest is made); anything else replaces dest, but
 * never an existing directory. Parents of dest are made. */
int e2b_copy_tree(const struct e2b_copy_opts *o, int src_fd, const char *rel, int dst_root_fd, const char *dest,
                  struct e2b_error **err);

/* Hash what e2b_copy_tree would copy from src_fd: names, types, modes,
 * owners, contents and link targets, in name order. */
int e2b_copy_hash(struct e2b_sha256 *c, int src_fd, const char *rel, const struct e2b_ignore *ignore,
                  const struct e2b_ignore *exclude, struct e2b_error **err);

#endif
