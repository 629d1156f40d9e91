/* layer.h - apply an image layer tarball to a root directory.
 *
 *   struct e2b_layer_opts o = {.name = layer->digest, .expect_digest = layer->digest};
 *   struct e2b_layer_result r;
 *   if (e2b_layer_apply(layer->path, "/tmp/rootfs", &o, &r, &err) < 0) ...
 *
 * The blob is a tar, tar+gzip or tar+zstd, told apart by its first bytes
 * (the media type is not trusted). Entries are written the way the OCI image
 * spec's changeset rules say: regular files, directories, symlinks,
 * hardlinks, character and block devices and fifos keep their mode, numeric
 * owner, mtime and extended attributes (security.capability included, set
 * after the owner since chown drops it); ".wh.<name>" deletes <name> of the
 * lower layers and ".wh..wh..opq" empties its directory of what the lower
 * layers put there (what this layer writes stays, wherever the marker is).
 * An existing non-directory, or a directory replaced by a non-directory, is
 * removed first, so a symlink left by an earlier layer is replaced, never
 * written through.
 *
 * Nothing is written outside `root`. Leading '/' is stripped from names
 * ("/etc/x" is written to <root>/etc/x); a name or hardlink target with a
 * ".." component, and any entry whose parent path goes through a symlink
 * (planted by this layer or an earlier one), fail the whole apply with
 * "layer <name>: entry '../etc/passwd' escapes the root". Each parent
 * directory is resolved inside the root without following symlinks
 * (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or a component-by-component
 * openat(O_NOFOLLOW) walk), and every write goes through a file descriptor
 * of that directory.
 *
 * On failure the root is left half-applied: callers unpack into a scratch
 * tree they throw away on error. The blob digest (sha256 of the bytes of the
 * file) and the diffID (sha256 of the uncompressed tar) are computed while
 * reading; an expected digest or diffID that differs is an error naming the
 * layer, reported after the entries were written.
 */
#ifndef E2B_LAYER_H
#define E2B_LAYER_H

#include "error.h"

struct e2b_layer_opts {
    const char *name;           /* the layer in errors ("sha256:..."); NULL: the blob's path */
    const char *expect_digest;  /* "sha256:<hex>" the blob must have; NULL: not checked */
    const char *expect_diff_id; /* "sha256:<hex>" the uncompressed tar must have; NULL: not checked */
    /* Called as the blob is read: bytes read so far, and the blob's size. */
    void (*progress)(uint64_t done, uint64_t total, void *ud);
    void *ud;
};

struct e2b_layer_result {
    char digest[72];            /* "sha256:<hex>" of the blob */
    char diff_id[72];           /* "sha256:<hex>" of the uncompressed tar */
    const char *compression;    /* "gzip", "zstd" or "none" (static string) */
    uint64_t bytes_read;        /* size of the blob */
    uint64_t bytes_tar;         /* size of the uncompressed tar */
    uint64_t entries;           /* tar entries seen (whiteouts included) */
    uint64_t whiteouts;         /* ".wh." entries applied (opaque markers included) */
    uint64_t skipped;           /* sockets, aufs ".wh..wh." metadata, device nodes refused with EPERM */
    uint64_t xattrs_skipped;    /* xattrs the file system refused as unsupported (never security.*) */
};

/* Apply the layer at `blob` to the directory `root` (which must exist).
 * `o` and `ret` may be NULL. */
int e2b_layer_apply(const char *blob, const char *root, const struct e2b_layer_opts *o,
                    struct e2b_layer_result *ret, struct e2b_error **err);

/* "gzip", "zstd", "none", or NULL for another compression (xz, bzip2, ...),
 * from the first bytes of a blob. */
const char *e2b_layer_compression(const void *head, size_t len);

#endif
