/* fsutil.h - file system helpers: atomic writes, write loops, mkdir -p, whole-file reads. */
#ifndef E2B_FSUTIL_H
#define E2B_FSUTIL_H

#include "error.h"
#include <sys/types.h>

/* Write data to path atomically: a temp file in the same directory, fsync,
 * rename. The file gets `mode` exactly (umask does not apply). */
int e2b_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                          struct e2b_error **err);
/* Read fd to EOF, or its first `max` bytes, into a NUL-terminated buffer;
 * path names it in errors. */
int e2b_read_fd(int fd, const char *path, size_t max, char **ret_data, size_t *ret_len,
                struct e2b_error **err);
/* Write all of data to fd, however many pieces a pipe or socket takes it
 * in, again after EINTR. 0, or -errno with errno set (EIO when the fd takes
 * nothing). e2b_pwrite_all writes at off (the file position stays);
 * e2b_send_all writes to a socket with MSG_NOSIGNAL: a peer gone is -EPIPE,
 * never SIGPIPE. */
int e2b_write_all(int fd, const void *data, size_t len);
int e2b_pwrite_all(int fd, const void *data, size_t len, off_t off);
int e2b_send_all(int fd, const void *data, size_t len);
/* e2b_write_all with the error said: name says where it goes ("stdout",
 * "'out.txt'"): "cannot write to stdout: No space left on device". */
int e2b_write_fd(int fd, const void *data, size_t len, const char *name, struct e2b_error **err);
/* Read a whole file into a NUL-terminated buffer. */
int e2b_read_file(const char *path, char **ret_data, size_t *ret_len, struct e2b_error **err);
/* Read a file a sandbox could have planted: no symlink is followed at the
 * last component, and at most `max` bytes are read (the rest is dropped). */
int e2b_read_file_untrusted(const char *path, size_t max, char **ret_data, size_t *ret_len,
                            struct e2b_error **err);
/* mkdir -p with mode for the directories it creates. */
int e2b_mkdir_p(const char *path, mode_t mode, struct e2b_error **err);
/* rm -rf that does not cross mount points or follow symlinks. */
int e2b_rm_rf(const char *path, struct e2b_error **err);
/* Open (creating with mode) the lock file at path and hold it shared: a pin
 * that lasts while the fd is open. Returns the fd, or -1 with errno set;
 * ESTALE when the file was replaced or removed while we waited for the lock
 * (its owner holds it exclusively only while it moves the whole away). */
int e2b_pin_shared(const char *path, mode_t mode);
/* Copy the file src to dst (made with mode, replaced if there), holes
 * kept: a reflink where the file system has them, else only the data
 * extents (SEEK_DATA), so a sparse disk image costs what it holds. Not
 * atomic: copy to a temporary name and rename. */
int e2b_copy_file_sparse(const char *src, const char *dst, mode_t mode, struct e2b_error **err);
/* fsync every regular file directly in dir, then dir itself: what was
 * written there is on disk, whole (a save that must outlive a crash). */
int e2b_fsync_dir(const char *dir, struct e2b_error **err);
/* Join two path parts with exactly one '/'. */
char *e2b_path_join(const char *a, const char *b);

#endif
