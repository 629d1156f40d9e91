/* layer.c - see layer.h */
#include "layer.h"
#include "dl-archive.h"
#include "envd-crypto.h"
#include "fsutil.h"
#include "registry.h"
#include "strbuf.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define BUFSZ (128 * 1024)

/* --- the set of paths this layer wrote (and their ancestors) --- */

struct pathset {
    char **slots;
    size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static bool pathset_has(const struct pathset *s, const char *p)
{
    if (!s->cap)
        return false;
    for (size_t i = hash_str(p) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slots[i])
            return false;
        if (STREQ(s->slots[i], p))
            return true;
    }
}

static void pathset_insert(struct pathset *s, char *owned)
{
    for (size_t i = hash_str(owned) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slots[i]) {
            s->slots[i] = owned;
            s->n++;
            return;
        }
    }
}

/* Add one path (no ancestors); true if it was new. */
static bool pathset_add1(struct pathset *s, const char *p, size_t len)
{
    _cleanup_free_ char *k = xstrndup(p, len);
    if (pathset_has(s, k))
        return false;
    if ((s->n + 1) * 2 > s->cap) {
        struct pathset bigger = {.cap = s->cap ? s->cap * 2 : 64};
        bigger.slots = xcalloc(bigger.cap, sizeof(char *));
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i])
                pathset_insert(&bigger, s->slots[i]);
        free(s->slots);
        *s = bigger;
    }
    pathset_insert(s, TAKE_PTR(k));
    return true;
}

/* Add "a/b/c" and its ancestors "a/b" and "a". */
static void pathset_add(struct pathset *s, const char *p)
{
    size_t len = strlen(p);
    while (len && pathset_add1(s, p, len)) {
        while (len && p[len - 1] != '/')
            len--;
        if (len)
            len--; /* drop the '/' */
    }
}

static void pathset_free(struct pathset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slots[i]);
    free(s->slots);
    memset(s, 0, sizeof(*s));
}

/* --- state of one apply --- */

struct dirtime {
    char *path; /* clean relative path, "" for the root */
    struct timespec ts[2];
};

struct apply {
    const char *name; /* the layer, for messages */
    const struct e2b_layer_opts *o;
    int rootfd;
    int blobfd;
    uint64_t blob_size;
    struct e2b_sha256 blob_sha, tar_sha;
    uint8_t *inbuf, *tarbuf;
    struct archive *outer, *inner;
    int read_errno;
    bool outer_failed;
    bool root_user;
    struct e2b_layer_result res;
    struct pathset written;
    struct dirtime *dirs;
    size_t n_dirs, cap_dirs;
};

static bool have_openat2 = true;

static la_ssize_t blob_read(struct archive *a, void *ud, const void **buf)
{
    struct apply *c = ud;
    ssize_t n;
    do
        n = read(c->blobfd, c->inbuf, BUFSZ);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        c->read_errno = errno;
        archive_set_error(a, errno, "read error");
        return -1;
    }
    e2b_sha256_update(&c->blob_sha, c->inbuf, (size_t)n);
    c->res.bytes_read += (uint64_t)n;
    if (c->o->progress && n > 0)
        c->o->progress(c->res.bytes_read, c->blob_size, c->o->ud);
    *buf = c->inbuf;
    return n;
}

/* The tar reader's input: the decompressed stream of the outer reader. */
static la_ssize_t tar_read(struct archive *a, void *ud, const void **buf)
{
    struct apply *c = ud;
    la_ssize_t n = archive_read_data(c->outer, c->tarbuf, BUFSZ);
    if (n < 0) {
        c->outer_failed = true;
        const char *why = archive_error_string(c->outer);
        archive_set_error(a, archive_errno(c->outer) > 0 ? archive_errno(c->outer) : EIO, "%s",
                          why ? why : "cannot decompress");
        return -1;
    }
    e2b_sha256_update(&c->tar_sha, c->tarbuf, (size_t)n);
    c->res.bytes_tar += (uint64_t)n;
    *buf = c->tarbuf;
    return n;
}

const char *e2b_layer_compression(const void *head, size_t len)
{
    const uint8_t *b = head;
    if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b)
        return "gzip";
    if (len >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd)
        return "zstd";
    if (len >= 6 && !memcmp(b, "\xfd" "7zXZ\0", 6))
        return NULL; /* xz */
    if (len >= 3 && !memcmp(b, "BZh", 3))
        return NULL;
    return "none";
}

/* --- paths --- */

/* Clean a tar name: leading '/' and "." and empty components go; a ".."
 * component fails (-1). "" is the root itself. */
static int clean_name(const char *name, char **ret)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    const char *p = name;
    while (*p) {
        while (*p == '/')
            p++;
        const char *end = strchrnul(p, '/');
        size_t n = (size_t)(end - p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return -1;
        if (n && !(n == 1 && p[0] == '.')) {
            if (sb.len)
                strbuf_addch(&sb, '/');
            strbuf_add(&sb, p, n);
        }
        p = end;
    }
    *ret = strbuf_detach(&sb, NULL);
    return 0;
}

static int escape_error(struct apply *c, const char *entry, struct e2b_error **err)
{
    return e2b_error_set(err, E2B_ERR_PERMISSION, "layer %s: entry '%s' escapes the root", c->name,
                         entry);
}

/* An O_PATH descriptor of the directory that holds the last component of
 * `rel` (clean, not ""), with *leaf pointing at that component. Symlinks are
 * never followed: one on the way is an escape. Missing directories are
 * created (0755) when `create`; otherwise a missing or non-directory parent
 * returns -ENOENT or -ENOTDIR with no error set. */
static int open_parent(struct apply *c, const char *entry, const char *rel, bool create,
                       const char **leaf, struct e2b_error **err)
{
    const char *slash = strrchr(rel, '/');
    *leaf = slash ? slash + 1 : rel;
    if (!slash) {
        int fd = fcntl(c->rootfd, F_DUPFD_CLOEXEC, 3);
        return fd >= 0 ? fd : e2b_error_sys(err, errno, "layer %s: cannot duplicate a descriptor", c->name);
    }
    _cleanup_free_ char *dir = xstrndup(rel, (size_t)(slash - rel));
    if (have_openat2) {
        struct open_how how = {
            .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int)syscall(SYS_openat2, c->rootfd, dir, &how, sizeof(how));
        if (fd >= 0)
            return fd;
        if (errno == ENOSYS || errno == EPERM) /* old kernel, or a seccomp filter */
            have_openat2 = false;
    }
    /* One component at a time: creates what is missing and says why it failed. */
    _cleanup_close_ int dfd = fcntl(c->rootfd, F_DUPFD_CLOEXEC, 3);
    if (dfd < 0)
        return e2b_error_sys(err, errno, "layer %s: cannot duplicate a descriptor", c->name);
    for (char *p = dir; *p;) {
        char *end = strchrnul(p, '/');
        bool last = !*end;
        *end = '\0';
        int fd = openat(dfd, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
            if (!create)
                return -ENOENT;
            if (mkdirat(dfd, p, 0755) < 0 && errno != EEXIST)
                return e2b_error_sys(err, errno, "layer %s: entry '%s': cannot create directory '%s'",
                                     c->name, entry, dir);
            (void)fchmodat(dfd, p, 0755, AT_SYMLINK_NOFOLLOW); /* mkdir obeys the umask */
            pathset_add(&c->written, dir); /* dir is the prefix up to p here */
            fd = openat(dfd, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0) {
            int e = errno;
            struct stat st;
            if (fstatat(dfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                return e2b_error_set(err, E2B_ERR_PERMISSION,
                                     "layer %s: entry '%s' escapes the root (through symlink '%s')",
                                     c->name, entry, dir);
            if (e == ENOTDIR && !create)
                return -ENOTDIR;
            return e2b_error_sys(err, e, "layer %s: entry '%s': cannot open directory '%s'", c->name,
                                 entry, dir);
        }
        close(dfd);
        dfd = fd;
        if (!last)
            *end = '/';
        p = last ? end : end + 1;
    }
    return TAKE_FD(dfd);
}

/* The directory dfd/name (not through a symlink) to read; NULL with errno. */
static DIR *dir_at(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (fd >= 0 && !d) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return d;
}

/* The next entry of d other than . and .., or NULL at the end. */
static struct dirent *next_entry(DIR *d)
{
    struct dirent *de;
    while ((de = readdir(d)) && (STREQ(de->d_name, ".") || STREQ(de->d_name, "..")))
        ;
    return de;
}

/* rm -rf of dfd/name, never following symlinks; 0 or -errno. */
static int remove_at(int dfd, const char *name)
{
    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    DIR *d = dir_at(dfd, name);
    if (!d)
        return -errno;
    struct dirent *de;
    int r = 0;
    while (r == 0 && (de = next_entry(d)))
        r = remove_at(dirfd(d), de->d_name);
    closedir(d);
    if (r < 0)
        return r;
    return unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -errno;
}

/* Empty the directory dfd (at `rel`) of what this layer did not write. */
static int opaque_clear(struct apply *c, int dfd, const char *rel)
{
    DIR *d = dir_at(dfd, ".");
    if (!d)
        return -errno;
    struct dirent *de;
    int r = 0;
    while (r == 0 && (de = next_entry(d))) {
        _cleanup_free_ char *child = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
        if (!pathset_has(&c->written, child)) {
            r = remove_at(dirfd(d), de->d_name);
            continue;
        }
        _cleanup_close_ int cfd = openat(dirfd(d), de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd >= 0)
            r = opaque_clear(c, cfd, child);
    }
    closedir(d);
    return r;
}

static int apply_whiteout(struct apply *c, const char *entry, const char *rel, const char *base,
                          struct e2b_error **err)
{
    bool opaque = STREQ(base, ".wh..wh..opq");
    if (!opaque && e2b_str_has_prefix(base, ".wh..wh.")) { /* aufs metadata (.wh..wh.plnk, ...) */
        c->res.skipped++;
        return 0;
    }
    const char *victim = base + 4;
    if (!opaque && (!*victim || STREQ(victim, ".") || STREQ(victim, "..")))
        return escape_error(c, entry, err);
    const char *leaf;
    _cleanup_close_ int pfd = open_parent(c, entry, rel, false, &leaf, err);
    if (pfd == -ENOENT || pfd == -ENOTDIR) /* nothing below to hide */
        return 0;
    if (pfd < 0)
        return -1;
    c->res.whiteouts++;
    _cleanup_free_ char *dir = xstrndup(rel, (size_t)(leaf - rel) ? (size_t)(leaf - rel) - 1 : 0);
    if (opaque) {
        int r = opaque_clear(c, pfd, dir);
        if (r < 0)
            return e2b_error_sys(err, -r, "layer %s: entry '%s': cannot empty the directory", c->name,
                                 entry);
        return 0;
    }
    _cleanup_free_ char *path = *dir ? xasprintf("%s/%s", dir, victim) : xstrdup(victim);
    if (pathset_has(&c->written, path)) /* a whiteout hides the lower layers only */
        return 0;
    int r = remove_at(pfd, victim);
    if (r < 0)
        return e2b_error_sys(err, -r, "layer %s: entry '%s': cannot remove '%s'", c->name, entry, path);
    return 0;
}

/* --- metadata --- */

/* Where to apply metadata: an open fd, or (pfd, leaf) without following. */
struct target {
    int fd;
    int pfd;
    const char *leaf;
    bool symlink;
};

static int set_meta(struct apply *c, const struct target *t, struct archive_entry *e,
                    const char *entry, bool times, struct e2b_error **err)
{
    uid_t uid = (uid_t)archive_entry_uid(e);
    gid_t gid = (gid_t)archive_entry_gid(e);
    int r = t->fd >= 0 ? fchown(t->fd, uid, gid) : fchownat(t->pfd, t->leaf, uid, gid, AT_SYMLINK_NOFOLLOW);
    if (r < 0 && (c->root_user || (errno != EPERM && errno != EINVAL)))
        return e2b_error_sys(err, errno, "layer %s: entry '%s': cannot set owner %u:%u", c->name,
                             entry, (unsigned)uid, (unsigned)gid);
    if (!t->symlink) {
        mode_t mode = archive_entry_perm(e) & 07777;
        r = t->fd >= 0 ? fchmod(t->fd, mode) : fchmodat(t->pfd, t->leaf, mode, AT_SYMLINK_NOFOLLOW);
        if (r < 0)
            return e2b_error_sys(err, errno, "layer %s: entry '%s': cannot set mode %04o", c->name,
                                 entry, (unsigned)mode);
    }
    /* After chown, which drops security.capability. */
    const char *xname;
    const void *xval;
    size_t xsize;
    _cleanup_free_ char *proc = t->fd >= 0 ? NULL : xasprintf("/proc/self/fd/%d/%s", t->pfd, t->leaf);
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &xname, &xval, &xsize) == ARCHIVE_OK) {
        if (!xname || !*xname)
            continue;
        r = t->fd >= 0 ? fsetxattr(t->fd, xname, xval, xsize, 0) : lsetxattr(proc, xname, xval, xsize, 0);
        if (r < 0) {
            bool soft = errno == ENOTSUP || (t->symlink && errno == EPERM);
            if (soft && !e2b_str_has_prefix(xname, "security.")) {
                c->res.xattrs_skipped++;
                continue;
            }
            return e2b_error_sys(err, errno, "layer %s: entry '%s': cannot set xattr '%s'", c->name,
                                 entry, xname);
        }
    }
    if (!times || !archive_entry_mtime_is_set(e))
        return 0;
    struct timespec ts[2];
    ts[1].tv_sec = archive_entry_mtime(e);
    ts[1].tv_nsec = archive_entry_mtime_nsec(e);
    if (archive_entry_atime_is_set(e)) {
        ts[0].tv_sec = archive_entry_atime(e);
        ts[0].tv_nsec = archive_entry_atime_nsec(e);
    } else {
        ts[0] = ts[1];
    }
    r = t->fd >= 0 ? futimens(t->fd, ts) : utimensat(t->pfd, t->leaf, ts, AT_SYMLINK_NOFOLLOW);
    if (r < 0)
        return e2b_error_sys(err, errno, "layer %s: entry '%s': cannot set times", c->name, entry);
    return 0;
}

static void remember_dir_time(struct apply *c, const char *rel, struct archive_entry *e)
{
    if (!archive_entry_mtime_is_set(e))
        return;
    if (c->n_dirs == c->cap_dirs) {
        c->cap_dirs = c->cap_dirs ? c->cap_dirs * 2 : 64;
        c->dirs = xrealloc(c->dirs, c->cap_dirs * sizeof(*c->dirs));
    }
    struct dirtime *d = &c->dirs[c->n_dirs++];
    d->path = xstrdup(rel);
    d->ts[1].tv_sec = archive_entry_mtime(e);
    d->ts[1].tv_nsec = archive_entry_mtime_nsec(e);
    if (archive_entry_atime_is_set(e)) {
        d->ts[0].tv_sec = archive_entry_atime(e);
        d->ts[0].tv_nsec = archive_entry_atime_nsec(e);
    } else {
        d->ts[0] = d->ts[1];
    }
}

/* Directory times go last: writing into a directory changes its mtime. */
static int apply_dir_times(struct apply *c, struct e2b_error **err)
{
    for (size_t i = c->n_dirs; i-- > 0;) {
        struct dirtime *d = &c->dirs[i];
        if (!*d->path) {
            if (futimens(c->rootfd, d->ts) < 0)
                return e2b_error_sys(err, errno, "layer %s: cannot set the times of the root", c->name);
            continue;
        }
        const char *leaf;
        _cleanup_close_ int pfd = open_parent(c, d->path, d->path, false, &leaf, err);
        if (pfd == -ENOENT || pfd == -ENOTDIR)
            continue;
        if (pfd < 0)
            return -1;
        struct stat st;
        if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
            continue; /* removed or replaced by a later entry */
        if (utimensat(pfd, leaf, d->ts, AT_SYMLINK_NOFOLLOW) < 0)
            return e2b_error_sys(err, errno, "layer %s: entry '%s': cannot set times", c->name, d->path);
    }
    return 0;
}

/* --- entries --- */

static int write_file(struct apply *c, int pfd, const char *leaf, struct archive_entry *e,
                      const char *entry, struct e2b_error **err)
{
    _cleanup_close_ int fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return e2b_error_sys(err, errno, "layer %s: cannot create '%s'", c->name, entry);
    for (;;) {
        const void *buf;
        size_t size;
        la_int64_t off;
        int r = archive_read_data_block(c->inner, &buf, &size, &off);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            return e2b_error_set(err, E2B_ERR_INVALID, "layer %s: entry '%s': %s", c->name, entry,
                                 archive_error_string(c->inner));
        if (size && e2b_pwrite_all(fd, buf, size, (off_t)off) < 0)
            return e2b_error_sys(err, errno, "layer %s: cannot write '%s'", c->name, entry);
    }
    if (archive_entry_size_is_set(e) && ftruncate(fd, (off_t)archive_entry_size(e)) < 0)
        return e2b_error_sys(err, errno, "layer %s: cannot write '%s'", c->name, entry);
    struct target t = {.fd = fd, .pfd = -1};
    return set_meta(c, &t, e, entry, true, err);
}

static int apply_hardlink(struct apply *c, int pfd, const char *leaf, bool exists, const char *rel,
                          const char *entry, const char *link, struct e2b_error **err)
{
    _cleanup_free_ char *trel = NULL;
    if (clean_name(link, &trel) < 0 || !*trel)
        return e2b_error_set(err, E2B_ERR_PERMISSION,
                             "layer %s: entry '%s' escapes the root (hardlink to '%s')", c->name, entry, link);
    if (STREQ(trel, rel))
        return 0;
    const char *tleaf;
    _cleanup_close_ int tpfd = open_parent(c, entry, trel, false, &tleaf, err);
    if (tpfd == -ENOENT || tpfd == -ENOTDIR)
        return e2b_error_set(err, E2B_ERR_INVALID, "layer %s: entry '%s': hardlink target '%s' not found",
                             c->name, entry, link);
    if (tpfd < 0)
        return -1;
    struct stat st;
    if (fstatat(tpfd, tleaf, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
        return e2b_error_set(err, E2B_ERR_INVALID, "layer %s: entry '%s': hardlink target '%s' not found",
                             c->name, entry, link);
    if (fstatat(tpfd, tleaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return e2b_error_sys(err, errno, "layer %s: entry '%s': hardlink target '%s'", c->name, entry, link);
    if (S_ISDIR(st.st_mode))
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "layer %s: entry '%s': hardlink target '%s' is a directory", c->name, entry, link);
    if (exists) {
        int r = remove_at(pfd, leaf);
        if (r < 0)
            return e2b_error_sys(err, -r, "layer %s: cannot replace '%s'", c->name, entry);
    }
    if (linkat(tpfd, tleaf, pfd, leaf, 0) < 0)
        return e2b_error_sys(err, errno, "layer %s: cannot link '%s' to '%s'", c->name, entry, link);
    return 0;
}

static int apply_entry(struct apply *c, struct archive_entry *e, struct e2b_error **err)
{
    const char *entry = archive_entry_pathname(e);
    if (!entry)
        return e2b_error_set(err, E2B_ERR_INVALID, "layer %s: an entry has an unreadable name", c->name);
    _cleanup_free_ char *rel = NULL;
    if (clean_name(entry, &rel) < 0)
        return escape_error(c, entry, err);
    const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
    if (e2b_str_has_prefix(base, ".wh."))
        return apply_whiteout(c, entry, rel, base, err);

    mode_t type = archive_entry_filetype(e);
    const char *link = archive_entry_hardlink(e);
    if (!*rel) { /* "./": the root directory itself */
        if (link || type != AE_IFDIR)
            return e2b_error_set(err, E2B_ERR_INVALID, "layer %s: entry '%s' replaces the root", c->name, entry);
        struct target t = {.fd = c->rootfd, .pfd = -1};
        if (set_meta(c, &t, e, entry, false, err) < 0)
            return -1;
        remember_dir_time(c, rel, e);
        return 0;
    }

    const char *leaf;
    _cleanup_close_ int pfd = open_parent(c, entry, rel, true, &leaf, err);
    if (pfd < 0)
        return -1;
    struct stat st;
    bool exists = fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (!exists && errno != ENOENT)
        return e2b_error_sys(err, errno, "layer %s: cannot read '%s'", c->name, entry);

    if (link) {
        if (apply_hardlink(c, pfd, leaf, exists, rel, entry, link, err) < 0)
            return -1;
        pathset_add(&c->written, rel);
        return 0;
    }
    if (type == AE_IFSOCK) {
        c->res.skipped++;
        return 0;
    }
    if (exists && !(type == AE_IFDIR && S_ISDIR(st.st_mode))) {
        int r = remove_at(pfd, leaf);
        if (r < 0)
            return e2b_error_sys(err, -r, "layer %s: cannot replace '%s'", c->name, entry);
        exists = false;
    }

    switch (type) {
    case AE_IFREG:
        if (write_file(c, pfd, leaf, e, entry, err) < 0)
            return -1;
        break;
    case AE_IFDIR: {
        if (!exists && mkdirat(pfd, leaf, 0700) < 0)
            return e2b_error_sys(err, errno, "layer %s: cannot create directory '%s'", c->name, entry);
        _cleanup_close_ int fd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return e2b_error_sys(err, errno, "layer %s: cannot open directory '%s'", c->name, entry);
        struct target t = {.fd = fd, .pfd = -1};
        if (set_meta(c, &t, e, entry, false, err) < 0)
            return -1;
        remember_dir_time(c, rel, e);
        break;
    }
    case AE_IFLNK: {
        const char *target = archive_entry_symlink(e);
        if (!target)
            return e2b_error_set(err, E2B_ERR_INVALID, "layer %s: symlink '%s' has no target", c->name, entry);
        if (symlinkat(target, pfd, leaf) < 0)
            return e2b_error_sys(err, errno, "layer %s: cannot create symlink '%s'", c->name, entry);
        struct target t = {.fd = -1, .pfd = pfd, .leaf = leaf, .symlink = true};
        if (set_meta(c, &t, e, entry, true, err) < 0)
            return -1;
        break;
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
        dev_t dev = type == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
        if (mknodat(pfd, leaf, type | (archive_entry_perm(e) & 0777), dev) < 0) {
            if (errno == EPERM && type != AE_IFIFO) { /* no CAP_MKNOD (user namespace) */
                c->res.skipped++;
                return 0;
            }
            return e2b_error_sys(err, errno, "layer %s: cannot create device '%s'", c->name, entry);
        }
        struct target t = {.fd = -1, .pfd = pfd, .leaf = leaf};
        if (set_meta(c, &t, e, entry, true, err) < 0)
            return -1;
        break;
    }
    default:
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "layer %s: entry '%s' has an unsupported type 0%o",
                             c->name, entry, (unsigned)type);
    }
    pathset_add(&c->written, rel);
    return 0;
}

/* --- the whole layer --- */

static void apply_release(struct apply *c)
{
    if (c->inner)
        archive_read_free(c->inner);
    if (c->outer)
        archive_read_free(c->outer);
    if (c->blobfd >= 0)
        close(c->blobfd);
    if (c->rootfd >= 0)
        close(c->rootfd);
    free(c->inbuf);
    free(c->tarbuf);
    pathset_free(&c->written);
    for (size_t i = 0; i < c->n_dirs; i++)
        free(c->dirs[i].path);
    free(c->dirs);
}

static int archive_fail(struct apply *c, struct archive *a, const char *what, struct e2b_error **err)
{
    if (c->read_errno)
        return e2b_error_sys(err, c->read_errno, "layer %s: cannot read the blob", c->name);
    const char *why = archive_error_string(a);
    return e2b_error_set(err, E2B_ERR_INVALID, "layer %s: %s: %s", c->name, what, why ? why : "unknown error");
}

static int run_apply(struct apply *c, const char *blob, const char *root, struct e2b_error **err)
{
    c->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->rootfd < 0)
        return e2b_error_sys(err, errno, "layer %s: cannot open root '%s'", c->name, root);
    c->blobfd = open(blob, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (c->blobfd < 0 || fstat(c->blobfd, &st) < 0)
        return e2b_error_sys(err, errno, "layer %s: cannot open '%s'", c->name, blob);
    c->blob_size = (uint64_t)st.st_size;
    uint8_t head[8];
    ssize_t hn = pread(c->blobfd, head, sizeof(head), 0);
    if (hn < 0)
        return e2b_error_sys(err, errno, "layer %s: cannot read '%s'", c->name, blob);
    c->res.compression = e2b_layer_compression(head, (size_t)hn);
    if (!c->res.compression)
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                             "layer %s: unsupported compression (only gzip, zstd or none)", c->name);

    e2b_sha256_init(&c->blob_sha);
    e2b_sha256_init(&c->tar_sha);
    if (!c->blob_size) /* an empty blob is an empty layer (the raw reader refuses it) */
        goto digests;
    c->inbuf = xmalloc(BUFSZ);
    c->tarbuf = xmalloc(BUFSZ);

    /* outer: decompress to a raw stream; inner: read that stream as tar */
    c->outer = archive_read_new();
    if (STREQ(c->res.compression, "gzip"))
        archive_read_support_filter_gzip(c->outer);
    else if (STREQ(c->res.compression, "zstd"))
        archive_read_support_filter_zstd(c->outer);
    else
        archive_read_support_filter_none(c->outer);
    archive_read_support_format_raw(c->outer);
    if (archive_read_open(c->outer, c, NULL, blob_read, NULL) != ARCHIVE_OK)
        return archive_fail(c, c->outer, "cannot decompress", err);
    struct archive_entry *raw;
    if (archive_read_next_header(c->outer, &raw) != ARCHIVE_OK)
        return archive_fail(c, c->outer, "cannot decompress", err);

    c->inner = archive_read_new();
    archive_read_support_filter_none(c->inner);
    archive_read_support_format_tar(c->inner);
    if (archive_read_open(c->inner, c, NULL, tar_read, NULL) != ARCHIVE_OK)
        return archive_fail(c, c->outer_failed ? c->outer : c->inner, "not a tar archive", err);
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(c->inner, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            return archive_fail(c, c->outer_failed ? c->outer : c->inner, "bad tar stream", err);
        c->res.entries++;
        if (apply_entry(c, e, err) < 0)
            return -1;
    }
    if (apply_dir_times(c, err) < 0)
        return -1;

    /* The digests cover every byte: what the tar reader left, then the file's tail. */
    const void *buf;
    la_ssize_t n;
    while ((n = tar_read(c->inner, c, &buf)) > 0)
        ;
    if (n < 0)
        return archive_fail(c, c->outer, "cannot decompress", err);
    while ((n = blob_read(c->outer, c, &buf)) > 0)
        ;
    if (n < 0)
        return archive_fail(c, c->outer, "cannot read", err);
digests:
    e2b_sha256_final_digest(&c->blob_sha, c->res.digest);
    e2b_sha256_final_digest(&c->tar_sha, c->res.diff_id);
    if (c->o->expect_digest && !STREQ(c->o->expect_digest, c->res.digest))
        return e2b_error_set(err, E2B_ERR_INVALID, "layer %s: blob '%s' has digest %s, not %s", c->name,
                             blob, c->res.digest, c->o->expect_digest);
    if (c->o->expect_diff_id && !STREQ(c->o->expect_diff_id, c->res.diff_id))
        return e2b_error_set(err, E2B_ERR_INVALID, "layer %s: uncompressed content has digest %s, not diff_id %s",
                             c->name, c->res.diff_id, c->o->expect_diff_id);
    return 0;
}

int e2b_layer_apply(const char *blob, const char *root, const struct e2b_layer_opts *o,
                    struct e2b_layer_result *ret, struct e2b_error **err)
{
    static const struct e2b_layer_opts none;
    struct apply c = {.o = o ? o : &none, .rootfd = -1, .blobfd = -1, .root_user = geteuid() == 0};
    c.name = c.o->name ? c.o->name : blob;
    if (e2b_archive_load(err) < 0)
        return -1;
    int r = run_apply(&c, blob, root, err);
    if (r < 0 && c.o->expect_digest && err && *err && !strstr((*err)->msg, "has digest")) {
        /* a corrupt blob usually fails as bad gzip or tar first: say what it is */
        _cleanup_free_ char *got = NULL;
        if (e2b_blob_digest_file(blob, &got, NULL) == 0 && !STREQ(got, c.o->expect_digest)) {
            e2b_error_free(*err);
            *err = NULL;
            e2b_error_set(err, E2B_ERR_INVALID, "layer %s: blob '%s' has digest %s, not %s", c.name, blob, got,
                          c.o->expect_digest);
        }
    }
    if (ret)
        *ret = c.res;
    apply_release(&c);
    return r;
}
