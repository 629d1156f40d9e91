/* ext4.h - a root directory tree to an ext4 image (e2fsprogs' mke2fs -d), or an empty one. */
#ifndef E2B_EXT4_H
#define E2B_EXT4_H

#include "error.h"

struct e2b_tree_usage {
    uint64_t bytes;   /* file data rounded up to blocks, plus directories */
    uint64_t inodes;  /* entries in the tree */
};

/* Walk a tree without following symlinks or crossing mounts. */
int e2b_tree_usage(const char *root, struct e2b_tree_usage *ret, struct e2b_error **err);

/* Write `image` (atomically: temp file + rename) holding the tree at `root`,
 * sized to its content plus headroom_mb free space. ret_size_mb may be NULL. */
int e2b_ext4_from_dir(const char *root, const char *image, uint64_t headroom_mb,
                      uint64_t *ret_size_mb, struct e2b_error **err);

/* An empty ext4 file system of size_mb (a sparse file), made atomically. */
int e2b_ext4_blank(const char *image, uint64_t size_mb, struct e2b_error **err);

#endif
