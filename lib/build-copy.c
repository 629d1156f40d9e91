/* build-copy.c - see build-copy.h */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "build-copy.h"
#include "dockerfile.h"
#include "fsutil.h"
#include "util.h"

int e2b_tree_open(int root_fd, const char *path, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    while (*path == '/')
        path++;
    return (int)syscall(SYS_openat2, root_fd, *path ? path : ".", &how, sizeof(how));
}

int e2b_tree_reopen(int path_fd, int flags)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/self/fd/%d", path_fd);
    return open(p, flags | O_CLOEXEC);
}

static int mkdir_p(int root_fd, const char *path, int depth, struct e2b_error **err)
{
    int cur = dup(root_fd);
    if (cur < 0)
        return e2b_error_sys(err, errno, "dup");
    _cleanup_free_ char *p = xstrdup(path);
    char *save = NULL;
    for (char *c = strtok_r(p, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, "."))
            continue;
        if (strcmp(c, "..") && mkdirat(cur, c, 0755) < 0 && errno != EEXIST) {
            int e = errno;
            close(cur);
            return e2b_error_sys(err, e, "mkdir %s", path);
        }
        /* the prefix up to c, resolved from the top: a symlink planted at c
         * is followed inside the tree, `..` stops at its top */
        _cleanup_free_ char *sub = xstrndup(path, (size_t)(c - p) + strlen(c));
        int nfd = e2b_tree_open(root_fd, sub, O_PATH | O_DIRECTORY);
        char t[4096];
        ssize_t tl;
        if (nfd < 0 && errno == ENOENT && depth < 40 && (tl = readlinkat(cur, c, t, sizeof(t) - 1)) > 0) {
            /* a symlink to a directory that is not there yet: make it
             * where the link leads, inside the tree (as BuildKit does) */
            t[tl] = '\0';
            _cleanup_free_ char *dir = xstrndup(path, (size_t)(c - p));
            _cleanup_free_ char *to = t[0] == '/' ? xstrdup(t) : e2b_path_join(*dir ? dir : "/", t);
            int tfd = mkdir_p(root_fd, to, depth + 1, err);
            if (tfd < 0) {
                close(cur);
                return -1;
            }
            close(tfd);
            nfd = e2b_tree_open(root_fd, sub, O_PATH | O_DIRECTORY);
        }
        int e = errno;
        close(cur);
        if (nfd < 0)
            return e2b_error_sys(err, e, "%s: not a directory in the image", sub);
        cur = nfd;
    }
    return cur;
}

int e2b_tree_mkdir_p(int root_fd, const char *path, struct e2b_error **err)
{
    return mkdir_p(root_fd, path, 0, err);
}

int e2b_tree_mkdir_in(const char *root, const char *path, struct e2b_error **err)
{
    _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0)
        return e2b_error_sys(err, errno, "%s", root);
    int fd = e2b_tree_mkdir_p(rfd, path, err);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* ---- --chmod ---- */

int e2b_chmod_parse(const char *spec, struct e2b_chmod *ret, struct e2b_error **err)
{
    memset(ret, 0, sizeof(*ret));
    if (*spec >= '0' && *spec <= '9') {
        char *end;
        unsigned long m = strtoul(spec, &end, 8);
        if (*end || m > 07777)
            return e2b_error_set(err, E2B_ERR_INVALID, "--chmod=%s: not an octal mode (0 to 7777)", spec);
        ret->octal = true;
        ret->mode = (mode_t)m;
        return 0;
    }
    if (!e2b_dockerfile_chmod_valid(spec))
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "--chmod=%s: expected an octal mode (0755) or symbolic clauses (u+x,go-w)", spec);
    ret->clauses = xstrdup(spec);
    return 0;
}

void e2b_chmod_free(struct e2b_chmod *c)
{
    free(c->clauses);
    c->clauses = NULL;
}

mode_t e2b_chmod_apply(const struct e2b_chmod *c, mode_t mode, bool is_dir)
{
    if (c->octal)
        return c->mode;
    mode &= 07777;
    for (const char *s = c->clauses; *s;) {
        mode_t who = 0;
        for (; *s && strchr("ugoa", *s); s++)
            who |= *s == 'u' ? 04700 : *s == 'g' ? 02070 : *s == 'o' ? 01007 : 07777;
        if (!who)
            who = 07777;
        while (*s && strchr("+-=", *s)) {
            char op = *s++;
            mode_t bits = 0;
            for (; *s && strchr("rwxXst", *s); s++)
                switch (*s) {
                case 'r': bits |= 0444; break;
                case 'w': bits |= 0222; break;
                case 'x': bits |= 0111; break;
                case 'X': /* execute for directories and files someone may execute */
                    if (is_dir || (mode & 0111))
                        bits |= 0111;
                    break;
                case 's': bits |= 06000; break;
                case 't': bits |= 01000; break;
                }
            bits &= who;
            if (op == '+')
                mode |= bits;
            else if (op == '-')
                mode &= ~bits;
            else
                mode = (mode & ~who) | bits;
        }
        if (*s == ',')
            s++;
    }
    return mode;
}

/* ---- copying ---- */

struct walk {
    const struct e2b_copy_opts *o;
    int root;               /* destination tree */
};

static char *child_name(const char *parent, const char *name)
{
    if (!parent)
        return NULL;
    return strcmp(parent, ".") ? e2b_path_join(parent, name) : xstrdup(name);
}

static bool skipped(const struct e2b_copy_opts *o, const char *rel, const char *xrel)
{
    if (o->ignore && rel && strcmp(rel, ".") && e2b_ignore_match(o->ignore, rel))
        return true;
    return o->exclude && xrel && strcmp(xrel, ".") && e2b_ignore_match(o->exclude, xrel);
}

/* An excluded directory an exception may reach into: walked anyway, and
 * kept only if something in it was copied. */
static bool walk_excluded(const struct e2b_copy_opts *o, const char *rel, const char *xrel)
{
    bool ig = o->ignore && rel && strcmp(rel, ".") && e2b_ignore_match(o->ignore, rel);
    bool ex = o->exclude && xrel && strcmp(xrel, ".") && e2b_ignore_match(o->exclude, xrel);
    return (!ig || e2b_ignore_may_include_below(o->ignore, rel)) &&
           (!ex || e2b_ignore_may_include_below(o->exclude, xrel));
}

/* Owner, mode and extended attributes of a new destination object. fd is
 * the object itself (O_PATH for symlinks and devices). */
static int set_meta(const struct walk *w, int fd, const struct stat *st, int src_fd, const char *what,
                    struct e2b_error **err)
{
    const struct e2b_copy_opts *o = w->o;
    uid_t u = o->own ? o->uid : o->root_owned ? 0 : st->st_uid;
    gid_t g = o->own ? o->gid : o->root_owned ? 0 : st->st_gid;
    if (fchownat(fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM)
        return e2b_error_sys(err, errno, "chown %s", what);
    if (S_ISLNK(st->st_mode))
        return 0;
    bool plain = S_ISREG(st->st_mode) || S_ISDIR(st->st_mode);
    if (plain) {
        /* xattrs (file capabilities, user.*) go with the file, as BuildKit
         * sends them; overlayfs' own stay behind */
        _cleanup_close_ int rfd = e2b_tree_reopen(src_fd, O_RDONLY | O_NONBLOCK);
        char names[8192];
        ssize_t n = rfd >= 0 ? flistxattr(rfd, names, sizeof(names)) : -1;
        for (ssize_t off = 0; n > 0 && off < n; off += (ssize_t)strlen(names + off) + 1) {
            const char *k = names + off;
            if (e2b_str_has_prefix(k, "trusted.overlay.") || !strcmp(k, "security.selinux"))
                continue;
            char val[65536];
            ssize_t vl = fgetxattr(rfd, k, val, sizeof(val));
            if (vl >= 0 && fsetxattr(fd, k, val, (size_t)vl, 0) < 0 && errno != ENOTSUP && errno != EPERM)
                return e2b_error_sys(err, errno, "xattr %s on %s", k, what);
        }
    }
    mode_t m = st->st_mode & 07777;
    if (o->chmod)
        m = e2b_chmod_apply(o->chmod, m, S_ISDIR(st->st_mode));
    /* after chown, which clears set-id bits */
    if (plain && fchmod(fd, m) < 0)
        return e2b_error_sys(err, errno, "chmod %s", what);
    return 0;
}

static int copy_obj(struct walk *w, int src, const struct stat *st, const char *rel, const char *xrel, int dst_dir,
                    const char *dst_path, const char *name, bool excluded, bool *copied, struct e2b_error **err);

/* The directory a source directory merges into: the existing one, one a
 * symlink leads to inside the tree (left as it is), or a new one. */
static int dest_dir(struct walk *w, int dst_dir, const char *dst_path, const char *name, bool *ret_meta,
                    bool *ret_made, struct e2b_error **err)
{
    struct stat ds;
    *ret_meta = true;
    *ret_made = false;
    if (fstatat(dst_dir, name, &ds, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(ds.st_mode))
            goto open;
        if (S_ISLNK(ds.st_mode)) {
            int fd = e2b_tree_open(w->root, dst_path, O_RDONLY | O_DIRECTORY);
            if (fd >= 0) {
                *ret_meta = false;
                return fd;
            }
        }
        if (unlinkat(dst_dir, name, 0) < 0)
            return e2b_error_sys(err, errno, "replace %s", dst_path);
    } else if (errno != ENOENT) {
        return e2b_error_sys(err, errno, "%s", dst_path);
    }
    if (mkdirat(dst_dir, name, 0700) < 0)
        return e2b_error_sys(err, errno, "mkdir %s", dst_path);
    *ret_made = true;
open:;
    int fd = openat(dst_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return e2b_error_sys(err, errno, "%s", dst_path);
    return fd;
}

/* excluded: the directory itself is excluded (.dockerignore or --exclude)
 * and walked only for what exceptions re-include; *copied: something of it
 * is in the destination now. */
static int copy_dir(struct walk *w, int src, const struct stat *st, const char *rel, const char *xrel, int dst_dir,
                    const char *dst_path, const char *name, bool excluded, bool *copied, struct e2b_error **err)
{
    bool meta, made = false;
    _cleanup_close_ int out = name ? dest_dir(w, dst_dir, dst_path, name, &meta, &made, err) : dup(dst_dir);
    if (out < 0)
        return name ? -1 : e2b_error_sys(err, errno, "dup");
    if (!name)
        meta = false; /* the top of the tree keeps its own */
    _cleanup_close_ int in = e2b_tree_reopen(src, O_RDONLY | O_DIRECTORY);
    if (in < 0)
        return e2b_error_sys(err, errno, "COPY %s", rel ? rel : dst_path);
    DIR *d = fdopendir(dup(in));
    if (!d)
        return e2b_error_sys(err, errno, "COPY %s", rel ? rel : dst_path);
    struct dirent *de;
    int r = 0;
    bool any = false;
    while (r == 0 && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        _cleanup_free_ char *r2 = child_name(rel, de->d_name), *x2 = child_name(xrel ? xrel : ".", de->d_name);
        bool skip = skipped(w->o, r2, x2);
        if (skip && de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
            continue;
        _cleanup_close_ int c = openat(in, de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat cs;
        if (c < 0 || fstat(c, &cs) < 0) {
            r = e2b_error_sys(err, errno, "COPY %s", r2 ? r2 : de->d_name);
            break;
        }
        if (skip && (!S_ISDIR(cs.st_mode) || !walk_excluded(w->o, r2, x2)))
            continue;
        _cleanup_free_ char *p2 = e2b_path_join(dst_path, de->d_name);
        bool c2 = false;
        r = copy_obj(w, c, &cs, r2, x2, out, p2, de->d_name, skip, &c2, err);
        any = any || c2;
    }
    closedir(d);
    if (r == 0 && excluded && !any) {
        /* nothing re-included: the excluded directory is not copied */
        if (made && unlinkat(dst_dir, name, AT_REMOVEDIR) < 0)
            r = e2b_error_sys(err, errno, "rmdir %s", dst_path);
        return r;
    }
    *copied = true;
    if (r == 0 && meta)
        r = set_meta(w, out, st, src, dst_path, err);
    return r;
}

static int copy_obj(struct walk *w, int src, const struct stat *st, const char *rel, const char *xrel, int dst_dir,
                    const char *dst_path, const char *name, bool excluded, bool *copied, struct e2b_error **err)
{
    if (S_ISDIR(st->st_mode))
        return copy_dir(w, src, st, rel, xrel, dst_dir, dst_path, name, excluded, copied, err);
    *copied = true;
    bool special = S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) || S_ISFIFO(st->st_mode);
    if (S_ISSOCK(st->st_mode) || (special && w->o->root_owned))
        return 0; /* sockets, and the devices and fifos of a context, are not copied */
    struct stat ds;
    if (fstatat(dst_dir, name, &ds, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(ds.st_mode))
            return e2b_error_set(err, E2B_ERR_INVALID, "cannot copy %s over the directory %s in the image",
                                 rel ? rel : name, dst_path);
        if (unlinkat(dst_dir, name, 0) < 0)
            return e2b_error_sys(err, errno, "replace %s", dst_path);
    }
    _cleanup_close_ int out = -1;
    if (S_ISREG(st->st_mode)) {
        _cleanup_close_ int in = e2b_tree_reopen(src, O_RDONLY);
        if (in < 0)
            return e2b_error_sys(err, errno, "COPY %s", rel ? rel : dst_path);
        out = openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
            return e2b_error_sys(err, errno, "COPY to %s", dst_path);
        for (;;) {
            ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
            if (n == 0)
                break;
            if (n > 0)
                continue;
            if (errno != EXDEV && errno != EINVAL && errno != EOPNOTSUPP && errno != ENOSYS)
                return e2b_error_sys(err, errno, "COPY to %s", dst_path);
            char buf[65536];
            while ((n = read(in, buf, sizeof(buf))) > 0) {
                int wr = e2b_write_all(out, buf, (size_t)n);
                if (wr < 0)
                    return e2b_error_sys(err, -wr, "COPY to %s", dst_path);
            }
            if (n < 0)
                return e2b_error_sys(err, errno, "read %s", rel ? rel : dst_path);
            break;
        }
    } else if (S_ISLNK(st->st_mode)) {
        char t[4096];
        ssize_t n = readlinkat(src, "", t, sizeof(t) - 1);
        if (n < 0)
            return e2b_error_sys(err, errno, "readlink %s", rel ? rel : dst_path);
        t[n] = '\0';
        if (symlinkat(t, dst_dir, name) < 0)
            return e2b_error_sys(err, errno, "symlink %s", dst_path);
        out = openat(dst_dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    } else {
        if (mknodat(dst_dir, name, st->st_mode & (S_IFMT | 0777), st->st_rdev) < 0)
            return e2b_error_sys(err, errno, "mknod %s", dst_path);
        out = openat(dst_dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    }
    if (out < 0)
        return e2b_error_sys(err, errno, "%s", dst_path);
    if (special) {
        /* a device node or fifo: owner and mode by name, it is no open file */
        const struct e2b_copy_opts *o = w->o;
        mode_t m = o->chmod ? e2b_chmod_apply(o->chmod, st->st_mode & 07777, false) : st->st_mode & 07777;
        if (fchownat(dst_dir, name, o->own ? o->uid : st->st_uid, o->own ? o->gid : st->st_gid,
                     AT_SYMLINK_NOFOLLOW) < 0 ||
            fchmodat(dst_dir, name, m, 0) < 0)
            return e2b_error_sys(err, errno, "chown/chmod %s", dst_path);
        return 0;
    }
    return set_meta(w, out, st, src, dst_path, err);
}

int e2b_copy_tree(const struct e2b_copy_opts *o, int src_fd, const char *rel, int dst_root_fd, const char *dest,
                  struct e2b_error **err)
{
    struct stat st;
    if (fstat(src_fd, &st) < 0)
        return e2b_error_sys(err, errno, "COPY %s", rel ? rel : "");
    struct walk w = {.o = o, .root = dst_root_fd};
    _cleanup_free_ char *d = xstrdup(dest);
    size_t l = strlen(d);
    while (l > 1 && d[l - 1] == '/')
        d[--l] = '\0';
    char *slash = strrchr(d, '/');
    if (!slash || (slash == d && !slash[1])) {
        /* dest is the top of the tree */
        if (!S_ISDIR(st.st_mode))
            return e2b_error_set(err, E2B_ERR_INVALID, "cannot copy %s over the root directory", rel ? rel : "");
        return copy_dir(&w, src_fd, &st, rel, NULL, dst_root_fd, "/", NULL, false, &(bool){false}, err);
    }
    _cleanup_free_ char *parent = slash == d ? xstrdup("/") : xstrndup(d, (size_t)(slash - d));
    _cleanup_close_ int pfd = e2b_tree_mkdir_p(dst_root_fd, parent, err);
    if (pfd < 0)
        return -1;
    /* a source the caller found excluded (.dockerignore) but re-included below */
    bool excluded = o->ignore && rel && strcmp(rel, ".") && e2b_ignore_match(o->ignore, rel);
    return copy_obj(&w, src_fd, &st, rel, NULL, pfd, d, slash + 1, excluded, &(bool){false}, err);
}

/* ---- hashing ---- */

static void h_str(struct e2b_sha256 *c, const char *s)
{
    uint64_t n = strlen(s);
    e2b_sha256_update(c, &n, sizeof(n));
    e2b_sha256_update(c, s, strlen(s));
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int hash_obj(struct e2b_sha256 *c, int fd, const char *rel, const char *xrel, const struct e2b_ignore *ig,
                    const struct e2b_ignore *ex, struct e2b_error **err)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return e2b_error_sys(err, errno, "%s", rel);
    char hdr[96];
    snprintf(hdr, sizeof(hdr), "%o %u %u %llu", (unsigned)st.st_mode, (unsigned)st.st_uid, (unsigned)st.st_gid,
             (unsigned long long)st.st_rdev);
    h_str(c, xrel ? xrel : ".");
    h_str(c, hdr);
    if (S_ISREG(st.st_mode)) {
        _cleanup_close_ int in = e2b_tree_reopen(fd, O_RDONLY);
        if (in < 0)
            return e2b_error_sys(err, errno, "%s", rel);
        char buf[65536];
        ssize_t n;
        while ((n = read(in, buf, sizeof(buf))) > 0)
            e2b_sha256_update(c, buf, (size_t)n);
        return n < 0 ? e2b_error_sys(err, errno, "read %s", rel) : 0;
    }
    if (S_ISLNK(st.st_mode)) {
        char t[4096];
        ssize_t n = readlinkat(fd, "", t, sizeof(t) - 1);
        t[n < 0 ? 0 : n] = '\0';
        h_str(c, t);
        return 0;
    }
    if (!S_ISDIR(st.st_mode))
        return 0;
    _cleanup_close_ int in = e2b_tree_reopen(fd, O_RDONLY | O_DIRECTORY);
    DIR *d = in >= 0 ? fdopendir(dup(in)) : NULL;
    if (!d)
        return e2b_error_sys(err, errno, "%s", rel);
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            names = xrealloc(names, (n + 1) * sizeof(char *));
            names[n++] = xstrdup(de->d_name);
        }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(char *), cmp_names);
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *r2 = child_name(rel, names[i]), *x2 = child_name(xrel ? xrel : ".", names[i]);
        struct e2b_copy_opts o = {.ignore = ig, .exclude = ex};
        bool skip = r == 0 && skipped(&o, r2, x2);
        if (r == 0 && (!skip || walk_excluded(&o, r2, x2))) {
            _cleanup_close_ int cfd = openat(in, names[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
            struct stat cs;
            if (cfd < 0 || fstat(cfd, &cs) < 0)
                r = e2b_error_sys(err, errno, "%s", r2);
            else if (!skip || S_ISDIR(cs.st_mode))
                r = hash_obj(c, cfd, r2, x2, ig, ex, err);
        }
        free(names[i]);
    }
    free(names);
    return r;
}

int e2b_copy_hash(struct e2b_sha256 *c, int src_fd, const char *rel, const struct e2b_ignore *ignore,
                  const struct e2b_ignore *exclude, struct e2b_error **err)
{
    h_str(c, rel ? rel : ".");
    return hash_obj(c, src_fd, rel ? rel : ".", NULL, ignore, exclude, err);
}
