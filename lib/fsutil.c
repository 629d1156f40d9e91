/* fsutil.c - see fsutil.h */
#include "fsutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

int e2b_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                          struct e2b_error **err)
{
    _cleanup_free_ char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot create '%s'", tmp);
    if (fchmod(fd, mode) < 0 || e2b_write_all(fd, data, len) < 0 || fsync(fd) < 0 ||
        close(TAKE_FD(fd)) < 0 || rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return e2b_error_sys(err, e, "cannot write '%s'", path);
    }
    return 0;
}

/* The one write loop: write(2), pwrite(2) at off, or send(2). */
enum write_how { WRITE_PLAIN, WRITE_AT, WRITE_SEND };

static int write_loop(int fd, const void *data, size_t len, off_t off, enum write_how how)
{
    const char *p = data;
    while (len) {
        ssize_t n = how == WRITE_SEND ? send(fd, p, len, MSG_NOSIGNAL)
                    : how == WRITE_AT ? pwrite(fd, p, len, off)
                                      : write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            errno = EIO; /* takes nothing, and never will */
        if (n <= 0)
            return -errno;
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

int e2b_write_all(int fd, const void *data, size_t len)
{
    return write_loop(fd, data, len, 0, WRITE_PLAIN);
}

int e2b_pwrite_all(int fd, const void *data, size_t len, off_t off)
{
    return write_loop(fd, data, len, off, WRITE_AT);
}

int e2b_send_all(int fd, const void *data, size_t len)
{
    return write_loop(fd, data, len, 0, WRITE_SEND);
}

int e2b_write_fd(int fd, const void *data, size_t len, const char *name, struct e2b_error **err)
{
    int r = e2b_write_all(fd, data, len);
    return r < 0 ? e2b_error_sys(err, -r, "cannot write to %s", name) : 0;
}

int e2b_read_fd(int fd, const char *path, size_t max, char **ret_data, size_t *ret_len,
                struct e2b_error **err)
{
    size_t alloc = 4096, len = 0;
    _cleanup_free_ char *buf = xmalloc(alloc);
    for (;;) {
        if (len + 1 >= alloc) {
            alloc *= 2;
            buf = xrealloc(buf, alloc);
        }
        ssize_t n = read(fd, buf + len, alloc - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return e2b_error_sys(err, errno, "cannot read '%s'", path);
        if (n == 0)
            break;
        len += (size_t)n;
        if (len >= max) {
            len = max;
            break;
        }
    }
    buf[len] = '\0';
    if (ret_len)
        *ret_len = len;
    *ret_data = TAKE_PTR(buf);
    return 0;
}

int e2b_read_file(const char *path, char **ret_data, size_t *ret_len, struct e2b_error **err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot open '%s'", path);
    return e2b_read_fd(fd, path, SIZE_MAX, ret_data, ret_len, err);
}

int e2b_read_file_untrusted(const char *path, size_t max, char **ret_data, size_t *ret_len,
                            struct e2b_error **err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot open '%s'", path);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return e2b_error_set(err, E2B_ERR_INVALID, "'%s' is not a regular file", path);
    return e2b_read_fd(fd, path, max, ret_data, ret_len, err);
}

int e2b_mkdir_p(const char *path, mode_t mode, struct e2b_error **err)
{
    _cleanup_free_ char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return e2b_error_sys(err, errno, "cannot create directory '%s'", p);
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return e2b_error_sys(err, errno, "cannot create directory '%s'", p);
    return 0;
}

/* The entries of the directory fd (owned from here), then nothing: a
 * directory of another file system (a mount point) is left, and so its
 * parent too. Only directories say where a mount is: overlayfs gives its
 * files the st_dev of the layer they come from. 0 or an errno. */
static int rm_dir_entries(int fd, dev_t dev, int depth)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return e;
    }
    int r = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT)
                r = r ? r : errno;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (st.st_dev != dev || depth > 256) { /* a mount, or too deep: left */
                r = r ? r : (st.st_dev != dev ? EBUSY : ELOOP);
                continue;
            }
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int e = sub < 0 ? errno : rm_dir_entries(sub, dev, depth + 1);
            if (!e && unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                e = errno;
            r = r ? r : e;
        } else if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
            r = r ? r : errno;
        }
    }
    closedir(d);
    return r;
}

int e2b_rm_rf(const char *path, struct e2b_error **err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : e2b_error_sys(err, errno, "cannot remove '%s'", path);
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) < 0 && errno != ENOENT)
            return e2b_error_sys(err, errno, "cannot remove '%s'", path);
        return 0;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = fd < 0 ? errno : rm_dir_entries(fd, st.st_dev, 0);
    if (!e && rmdir(path) < 0 && errno != ENOENT)
        e = errno;
    if (e)
        return e2b_error_sys(err, e, "cannot remove '%s'", path);
    return 0;
}

char *e2b_path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (*b == '/')
        b++;
    if (la == 1 && a[0] == '/')
        return xasprintf("/%s", b);
    return xasprintf("%.*s/%s", (int)la, a, b);
}

/* len bytes at off from in to out (at the same offset). */
static int copy_range(int in, int out, off_t off, off_t len)
{
    char buf[1 << 16];
    while (len > 0) {
        loff_t ioff = off, ooff = off;
        ssize_t n = copy_file_range(in, &ioff, out, &ooff, (size_t)len, 0);
        if (n < 0 &&
            (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
            n = pread(in, buf, (size_t)(len < (off_t)sizeof(buf) ? len : (off_t)sizeof(buf)), off);
            if (n > 0 && e2b_pwrite_all(out, buf, (size_t)n, off) < 0)
                return -1;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO; /* the file shrank under us */
            return -1;
        }
        off += n;
        len -= n;
    }
    return 0;
}

int e2b_fsync_dir(const char *dir, struct e2b_error **err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return e2b_error_sys(err, errno, "cannot open '%s'", dir);
    DIR *d = fdopendir(dup(dfd));
    struct dirent *de;
    int r = d ? 0 : e2b_error_sys(err, errno, "cannot read '%s'", dir);
    while (r == 0 && (de = readdir(d))) {
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        int fd = openat(dfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || fsync(fd) < 0)
            r = e2b_error_sys(err, errno, "cannot sync '%s/%s'", dir, de->d_name);
        if (fd >= 0)
            close(fd);
    }
    if (d)
        closedir(d);
    if (r == 0 && fsync(dfd) < 0)
        r = e2b_error_sys(err, errno, "cannot sync '%s'", dir);
    close(dfd);
    return r;
}

int e2b_copy_file_sparse(const char *src, const char *dst, mode_t mode, struct e2b_error **err)
{
    _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (in < 0 || fstat(in, &st) < 0)
        return e2b_error_sys(err, errno, "cannot read '%s'", src);
    _cleanup_close_ int out =
        open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (out < 0)
        return e2b_error_sys(err, errno, "cannot create '%s'", dst);
    if (ioctl(out, FICLONE, in) == 0)
        return 0;
    if (ftruncate(out, st.st_size) < 0)
        return e2b_error_sys(err, errno, "cannot write '%s'", dst);
    off_t pos = 0;
    while (pos < st.st_size) {
        off_t data = lseek(in, pos, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break;    /* a hole to the end */
        if (data < 0) /* no SEEK_DATA here: all of it */
            data = pos;
        off_t hole = lseek(in, data, SEEK_HOLE);
        if (hole < 0)
            hole = st.st_size;
        if (copy_range(in, out, data, hole - data) < 0)
            return e2b_error_sys(err, errno, "cannot copy '%s' to '%s'", src, dst);
        pos = hole;
    }
    return 0;
}

int e2b_pin_shared(const char *path, mode_t mode)
{
    int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_SH) < 0)
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    struct stat a, b;
    if (fstat(fd, &a) < 0 || stat(path, &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
        close(fd);
        errno = ESTALE;
        return -1;
    }
    return fd;
}
