/* qcow2.h - copy-on-write disk overlays in QEMU's qcow2 format.
 *
 * A sandbox restored from a snapshot does not copy the snapshot's disk: it
 * runs on an empty qcow2 overlay whose backing file is that disk (read-only,
 * shared by every sandbox restored from it), and QEMU writes there only what
 * the guest changes. This module makes such an overlay (what `qemu-img
 * create -f qcow2 -b BACKING -F FMT` makes, without needing qemu-img) and
 * reads back the header fields the runtime checks: the virtual size and the
 * backing file. The data clusters are QEMU's business alone.
 *
 * The overlay is qcow2 version 3, 64 KiB clusters, 16-bit refcounts, no
 * encryption, compression or extended L2 entries: cluster 0 the header (with
 * the backing format as a header extension and the backing file's name),
 * cluster 1 the refcount table, cluster 2 its first refcount block, then the
 * L1 table, all zero but for the refcounts of those clusters. Written to a
 * temporary name and renamed, so no reader sees half an image; not synced
 * (an overlay lives as long as its sandbox; a save of it syncs the copy).
 */
#ifndef E2B_QCOW2_H
#define E2B_QCOW2_H

#include "error.h"

#include <stdint.h>

/* An empty overlay at path of virtual_size bytes over backing (an absolute
 * path; its format "raw" or "qcow2"), mode 0600. */
int e2b_qcow2_create_overlay(const char *path, const char *backing, const char *backing_format,
                             uint64_t virtual_size, struct e2b_error **err);

/* Is the file at path a qcow2 image (its magic)? */
bool e2b_qcow2_is(const char *path);

/* The image's virtual size, and its backing file and format (*ret_backing
 * NULL when it has none; either pointer may be NULL). E2B_ERR_INVALID for
 * what is not a qcow2 image this module can read. */
int e2b_qcow2_info(const char *path, uint64_t *ret_size, char **ret_backing,
                   char **ret_backing_format, struct e2b_error **err);

#endif
