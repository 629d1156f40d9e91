/* envd-fs.c - see envd-fs.h */
#include "envd-fs.h"
#include "fsutil.h"
#include "strbuf.h"

#include <dirent.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#define XATTR_PREFIX "user.e2b."

char *e2b_path_clean(const char *path)
{
    size_t n = strlen(path);
    char *out = xmalloc(n + 2);
    size_t o = 0;
    out[o++] = '/';
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 1 && p[0] == '.') {
            /* skip */
        } else if (l == 2 && p[0] == '.' && p[1] == '.') {
            if (o > 1) {
                o--; /* the trailing '/' */
                while (o > 1 && out[o - 1] != '/')
                    o--;
            }
        } else {
            memcpy(out + o, p, l);
            o += l;
            out[o++] = '/';
        }
        p += l;
    }
    if (o > 1)
        o--; /* no trailing slash */
    out[o] = '\0';
    return out;
}

char *e2b_envd_resolve_path(const char *path, const struct e2b_user *u, const char *default_workdir,
                            struct e2b_error **err)
{
    const char *home = u && u->home ? u->home : "/";
    if (!path || !*path)
        path = default_workdir && *default_workdir ? default_workdir : home;
    if (strlen(path) > 4096)
        return e2b_error_set(err, E2B_ERR_INVALID, "path too long"), NULL;
    _cleanup_free_ char *abs = NULL;
    if (path[0] == '~' && (path[1] == '\0' || path[1] == '/'))
        abs = xasprintf("%s/%s", home, path + 1);
    else if (path[0] == '~')
        return e2b_error_set(err, E2B_ERR_INVALID, "path '%s': only '~' of the current user is supported", path),
               NULL;
    else if (path[0] != '/')
        abs = xasprintf("%s/%s", home, path);
    else
        abs = xstrdup(path);
    return e2b_path_clean(abs);
}

void e2b_mode_string(unsigned mode, char out[11])
{
    /* Go's os.FileMode.String(): type letters, then rwx bits */
    char *o = out;
    switch (mode & S_IFMT) {
    case S_IFDIR: *o++ = 'd'; break;
    case S_IFLNK: *o++ = 'L'; break;
    case S_IFIFO: *o++ = 'p'; break;
    case S_IFSOCK: *o++ = 'S'; break;
    case S_IFBLK: *o++ = 'D'; break;
    case S_IFCHR: *o++ = 'D'; *o++ = 'c'; break;
    default: break;
    }
    if (mode & S_ISUID) *o++ = 'u';
    if (mode & S_ISGID) *o++ = 'g';
    if (mode & S_ISVTX) *o++ = 't';
    if (o == out)
        *o++ = '-';
    const char *rwx = "rwxrwxrwx";
    for (int i = 0; i < 9; i++)
        *o++ = (mode & (1u << (8 - i))) ? rwx[i] : '-';
    *o = '\0';
}

static json_t *xattr_metadata(const char *path)
{
    char list[4096];
    ssize_t n = llistxattr(path, list, sizeof(list));
    if (n <= 0)
        return NULL;
    json_t *md = NULL;
    for (char *k = list; k < list + n; k += strlen(k) + 1) {
        if (!e2b_str_has_prefix(k, XATTR_PREFIX))
            continue;
        char val[4096];
        ssize_t vl = lgetxattr(path, k, val, sizeof(val) - 1);
        if (vl < 0)
            continue;
        val[vl] = '\0';
        if (!md)
            md = json_object();
        json_object_set_new(md, k + strlen(XATTR_PREFIX), json_stringn(val, (size_t)vl));
    }
    return md;
}

json_t *e2b_envd_entry_info(const char *path, struct e2b_error **err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return e2b_error_sys(err, errno, "cannot stat '%s'", path), NULL;
    const char *slash = strrchr(path, '/');
    const char *name = slash && slash[1] ? slash + 1 : path;
    json_t *e = json_object();
    json_object_set_new(e, "name", e2b_json_string_lossy(name));
    const char *type = NULL;
    if (S_ISREG(st.st_mode))
        type = "FILE_TYPE_FILE";
    else if (S_ISDIR(st.st_mode))
        type = "FILE_TYPE_DIRECTORY";
    else if (S_ISLNK(st.st_mode))
        type = "FILE_TYPE_SYMLINK";
    if (type)
        json_object_set_new(e, "type", json_string(type));
    json_object_set_new(e, "path", e2b_json_string_lossy(path));
    if (st.st_size)
        json_object_set_new(e, "size", json_sprintf("%lld", (long long)st.st_size));
    if (st.st_mode & 0777)
        json_object_set_new(e, "mode", json_integer(st.st_mode & 0777));
    char perm[16];
    e2b_mode_string(st.st_mode, perm);
    json_object_set_new(e, "permissions", json_string(perm));
    json_object_set_new(e, "owner", json_string(e2b_user_name(st.st_uid)));
    json_object_set_new(e, "group", json_string(e2b_group_name(st.st_gid)));
    _cleanup_free_ char *ts = e2b_rpc_timestamp(st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    json_object_set_new(e, "modifiedTime", json_string(ts));
    if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n >= 0) {
            target[n] = '\0';
            /* upstream reports the resolved absolute target */
            _cleanup_free_ char *abs = NULL;
            if (target[0] != '/') {
                _cleanup_free_ char *dir = xstrndup(path, (size_t)(slash ? slash - path : 0));
                _cleanup_free_ char *joined = xasprintf("%s/%s", dir, target);
                abs = e2b_path_clean(joined);
            } else {
                abs = e2b_path_clean(target);
            }
            json_object_set_new(e, "symlinkTarget", e2b_json_string_lossy(abs));
        }
    }
    json_t *md = xattr_metadata(path);
    if (md)
        json_object_set_new(e, "metadata", md);
    return e;
}

/* Parse {path} and resolve it; replies and returns NULL on failure. */
static char *req_path(struct e2b_http_req *req, json_t *msg, const char *jn, const char *pn,
                      const struct e2b_user *user)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    const char *p = "";
    if (e2b_pj_str(msg, jn, pn, &p, &err) < 0) {
        e2b_rpc_error(req, RPC_INVALID_ARGUMENT, "%s", err->msg);
        return NULL;
    }
    char *abs = e2b_envd_resolve_path(p, user, e2b_envd.default_workdir, &err);
    if (!abs)
        e2b_rpc_error(req, RPC_INVALID_ARGUMENT, "%s", err->msg);
    return abs;
}

static void reply_entry(struct e2b_http_req *req, const char *path)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *e = e2b_envd_entry_info(path, &err);
    if (!e) {
        e2b_rpc_error(req, e2b_rpc_code_from_error(err), "%s", err->msg);
        return;
    }
    e2b_rpc_reply(req, json_pack("{s:o}", "entry", e));
}

/* lstat while acting as the user. On failure: envd is itself again and the
 * error is replied ("<what> not found: '<path>'"); false. */
static bool lstat_or_reply(struct e2b_http_req *req, const char *path, const char *what,
                           struct stat *st)
{
    if (lstat(path, st) == 0)
        return true;
    int e = errno;
    e2b_envd_fs_restore();
    if (e == ENOENT)
        e2b_rpc_error(req, RPC_NOT_FOUND, "%s not found: '%s'", what, path);
    else
        e2b_rpc_error(req, e2b_rpc_code_from_errno(e), "cannot stat '%s': %s", path, strerror(e));
    return false;
}

void e2b_fs_stat(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    _cleanup_free_ char *path = req_path(req, msg, "path", NULL, user);
    if (!path)
        return;
    e2b_envd_fs_as(user);
    struct stat st;
    if (!lstat_or_reply(req, path, "file", &st))
        return;
    reply_entry(req, path);
    e2b_envd_fs_restore();
}

void e2b_fs_make_dir(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    _cleanup_free_ char *path = req_path(req, msg, "path", NULL, user);
    if (!path)
        return;
    e2b_envd_fs_as(user);
    struct stat st;
    if (stat(path, &st) == 0) {
        e2b_envd_fs_restore();
        if (S_ISDIR(st.st_mode))
            e2b_rpc_error(req, RPC_ALREADY_EXISTS, "directory already exists: '%s'", path);
        else
            e2b_rpc_error(req, RPC_INVALID_ARGUMENT, "path already exists but is not a directory: '%s'", path);
        return;
    }
    _cleanup_error_ struct e2b_error *err = NULL;
    if (e2b_mkdir_p(path, 0755, &err) < 0) {
        e2b_envd_fs_restore();
        e2b_rpc_error(req, e2b_rpc_code_from_error(err), "cannot create directory: %s", err->msg);
        return;
    }
    reply_entry(req, path);
    e2b_envd_fs_restore();
}

void e2b_fs_move(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    _cleanup_free_ char *src = req_path(req, msg, "source", NULL, user);
    if (!src)
        return;
    _cleanup_free_ char *dst = req_path(req, msg, "destination", NULL, user);
    if (!dst)
        return;
    e2b_envd_fs_as(user);
    struct stat st;
    if (!lstat_or_reply(req, src, "source", &st))
        return;
    /* parent of the destination is created like upstream does */
    _cleanup_free_ char *parent = xstrdup(dst);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        _cleanup_error_ struct e2b_error *err = NULL;
        (void)e2b_mkdir_p(parent, 0755, &err);
    }
    if (rename(src, dst) < 0) {
        int e = errno;
        e2b_envd_fs_restore();
        e2b_rpc_error(req, e2b_rpc_code_from_errno(e), "cannot move '%s' to '%s': %s", src, dst, strerror(e));
        return;
    }
    reply_entry(req, dst);
    e2b_envd_fs_restore();
}

/* ListDir bounds: a walk of / with depth 4e9 must not build a reply of
 * the whole disk in the one envd that serves everybody. */
#define LIST_MAX_ENTRIES 50000
#define LIST_MAX_DEPTH 64

struct listing {
    struct evbuffer *out; /* the reply JSON, entry by entry (no tree of json_t) */
    size_t n;
    bool too_deep;
};

/* Returns <0 with *err when dir cannot be read (the top only) or a cap is hit. */
static int list_rec(struct listing *l, const char *dir, uint32_t depth, unsigned level, struct e2b_error **err)
{
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (!d)
        return e2b_error_sys(err, errno, "cannot read directory '%s'", dir);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
            continue;
        _cleanup_free_ char *p = xasprintf("%s%s%s", dir, STREQ(dir, "/") ? "" : "/", de->d_name);
        _cleanup_error_ struct e2b_error *e2 = NULL;
        json_t *e = e2b_envd_entry_info(p, &e2);
        if (!e)
            continue; /* vanished meanwhile */
        if (l->n == LIST_MAX_ENTRIES) {
            json_decref(e);
            return e2b_error_set(err, E2B_ERR_NOSPACE,
                                 "more than %d entries: list a smaller tree or with a lower depth",
                                 LIST_MAX_ENTRIES);
        }
        _cleanup_free_ char *js = e2b_json_dump(e, JSON_COMPACT);
        json_decref(e);
        if (l->n++)
            evbuffer_add(l->out, ",", 1);
        evbuffer_add(l->out, js, strlen(js));
        struct stat st;
        if (depth > 1 && lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (level + 1 >= LIST_MAX_DEPTH)
                return e2b_error_set(err, E2B_ERR_NOSPACE,
                                     "directory tree deeper than %d levels: list it with a lower depth",
                                     LIST_MAX_DEPTH);
            _cleanup_error_ struct e2b_error *e3 = NULL;
            if (list_rec(l, p, depth - 1, level + 1, &e3) < 0 && e3->code == E2B_ERR_NOSPACE) {
                *err = TAKE_PTR(e3);
                return -1;
            } /* unreadable subdirs are skipped */
        }
    }
    return 0;
}

void e2b_fs_list_dir(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    uint32_t depth = 1;
    if (e2b_pj_u32(msg, "depth", NULL, &depth, NULL, &err) < 0) {
        e2b_rpc_error(req, RPC_INVALID_ARGUMENT, "%s", err->msg);
        return;
    }
    if (depth == 0)
        depth = 1;
    _cleanup_free_ char *path = req_path(req, msg, "path", NULL, user);
    if (!path)
        return;
    e2b_envd_fs_as(user);
    /* a symlinked directory is listed through its target */
    _cleanup_free_ char *real = realpath(path, NULL);
    int e = errno;
    struct stat st;
    if (!real || stat(real, &st) < 0) {
        if (real)
            e = errno;
        e2b_envd_fs_restore();
        if (e == ENOENT)
            e2b_rpc_error(req, RPC_NOT_FOUND, "directory not found: '%s'", path);
        else
            e2b_rpc_error(req, e2b_rpc_code_from_errno(e), "cannot resolve '%s': %s", path, strerror(e));
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        e2b_envd_fs_restore();
        e2b_rpc_error(req, RPC_INVALID_ARGUMENT, "path is not a directory: '%s'", path);
        return;
    }
    struct listing l = {.out = evbuffer_new()};
    evbuffer_add_printf(l.out, "{\"entries\":[");
    int rc = list_rec(&l, real, depth, 0, &err);
    e2b_envd_fs_restore();
    if (rc < 0) {
        evbuffer_free(l.out);
        e2b_rpc_error(req, e2b_rpc_code_from_error(err), "cannot list '%s': %s", path, err->msg);
        return;
    }
    evbuffer_add_printf(l.out, "]}");
    e2b_http_reply_buffer(req, 200, "application/json", l.out);
    evbuffer_free(l.out);
}

void e2b_fs_remove(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    _cleanup_free_ char *path = req_path(req, msg, "path", NULL, user);
    if (!path)
        return;
    if (STREQ(path, "/")) {
        e2b_rpc_error(req, RPC_INVALID_ARGUMENT, "refusing to remove '/'");
        return;
    }
    e2b_envd_fs_as(user);
    struct stat st;
    if (!lstat_or_reply(req, path, "file", &st))
        return;
    _cleanup_error_ struct e2b_error *err = NULL;
    int rc = S_ISDIR(st.st_mode) ? e2b_rm_rf(path, &err) : (unlink(path) < 0 ? e2b_error_sys(&err, errno, "cannot remove '%s'", path) : 0);
    e2b_envd_fs_restore();
    if (rc < 0) {
        e2b_rpc_error(req, e2b_rpc_code_from_error(err), "%s", err->msg);
        return;
    }
    e2b_rpc_reply(req, json_object());
}
