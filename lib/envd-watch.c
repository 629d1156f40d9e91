/* envd-watch.c - see envd-watch.h */
#include "envd-watch.h"
#include "envd-fs.h"

#include <dirent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#define WATCH_MASK                                                                                 \
    (IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | \
     IN_MOVE_SELF | IN_ONLYDIR)
#define MAX_QUEUED 10000

struct wdir {
    int wd;
    char *path;
};

struct watcher {
    struct watcher *next;
    char *id; /* polled watchers */
    char *root;
    bool recursive, include_entry;
    int fd;
    struct event *ev;
    struct wdir *dirs;
    size_t ndirs;
    struct e2b_rpc_stream *stream; /* WatchDir */
    json_t *queue;                 /* CreateWatcher */
};

static struct watcher *watchers;
static struct event_base *loop;

int e2b_watch_init(struct event_base *base, struct e2b_error **err)
{
    (void)err;
    loop = base;
    return 0;
}

static void add_dir(struct watcher *w, const char *path, bool recurse)
{
    int wd = inotify_add_watch(w->fd, path, WATCH_MASK);
    if (wd < 0)
        return;
    bool known = false;
    for (size_t i = 0; i < w->ndirs; i++)
        if (w->dirs[i].wd == wd) {
            free(w->dirs[i].path);
            w->dirs[i].path = xstrdup(path);
            known = true;
        }
    if (!known) {
        w->dirs = xrealloc(w->dirs, (w->ndirs + 1) * sizeof(*w->dirs));
        w->dirs[w->ndirs++] = (struct wdir){wd, xstrdup(path)};
    }
    if (!recurse)
        return;
    _cleanup_closedir_ DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
            continue;
        _cleanup_free_ char *p = xasprintf("%s%s%s", path, STREQ(path, "/") ? "" : "/", de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            add_dir(w, p, true);
    }
}

static void watcher_free(struct watcher *w)
{
    for (struct watcher **pp = &watchers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    if (w->ev)
        event_free(w->ev);
    if (w->fd >= 0)
        close(w->fd);
    for (size_t i = 0; i < w->ndirs; i++)
        free(w->dirs[i].path);
    free(w->dirs);
    json_decref(w->queue);
    free(w->root);
    free(w->id);
    free(w);
}

static const char *dir_of(struct watcher *w, int wd)
{
    for (size_t i = 0; i < w->ndirs; i++)
        if (w->dirs[i].wd == wd)
            return w->dirs[i].path;
    return NULL;
}

static void emit(struct watcher *w, const char *full, const char *type)
{
    size_t rl = strlen(w->root);
    const char *name = full;
    if (STREQ(full, w->root))
        name = "";
    else if (strncmp(full, w->root, rl) == 0 && (full[rl] == '/' || STREQ(w->root, "/")))
        name = full + rl + (STREQ(w->root, "/") ? 0 : 1);
    json_t *fe = json_pack("{s:s,s:s}", "name", name, "type", type);
    if (w->include_entry) {
        _cleanup_error_ struct e2b_error *err = NULL;
        json_t *e = e2b_envd_entry_info(full, &err);
        if (e)
            json_object_set_new(fe, "entry", e);
    }
    if (w->stream) {
        e2b_rpc_stream_send(w->stream, json_pack("{s:o}", "filesystem", fe));
    } else if (json_array_size(w->queue) < MAX_QUEUED) {
        json_array_append_new(w->queue, fe);
    } else {
        json_decref(fe);
    }
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct watcher *w = arg;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0)
        return;
    bool root_gone = false;
    for (char *p = buf; p < buf + n;) {
        struct inotify_event *ev = (struct inotify_event *)p;
        p += sizeof(*ev) + ev->len;
        const char *dir = dir_of(w, ev->wd);
        if (!dir)
            continue;
        if (ev->mask & IN_IGNORED)
            continue;
        _cleanup_free_ char *full =
            ev->len ? xasprintf("%s%s%s", dir, STREQ(dir, "/") ? "" : "/", ev->name) : xstrdup(dir);
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
            if (STREQ(dir, w->root))
                root_gone = true;
            continue;
        }
        if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
            emit(w, full, "EVENT_TYPE_CREATE");
            if ((ev->mask & IN_ISDIR) && w->recursive)
                add_dir(w, full, true);
        }
        if (ev->mask & IN_MODIFY)
            emit(w, full, "EVENT_TYPE_WRITE");
        if (ev->mask & IN_DELETE)
            emit(w, full, "EVENT_TYPE_REMOVE");
        if (ev->mask & IN_MOVED_FROM)
            emit(w, full, "EVENT_TYPE_RENAME");
        if (ev->mask & IN_ATTRIB)
            emit(w, full, "EVENT_TYPE_CHMOD");
    }
    if (root_gone && w->stream) {
        struct e2b_rpc_stream *s = w->stream;
        w->stream = NULL;
        e2b_rpc_stream_end(s, RPC_NOT_FOUND, "watched directory was removed");
        watcher_free(w);
    }
}

static bool network_fs(const char *path)
{
    struct statfs sf;
    if (statfs(path, &sf) < 0)
        return false;
    switch ((unsigned long)sf.f_type) {
    case 0x6969UL:     /* NFS */
    case 0xFF534D42UL: /* CIFS */
    case 0xFE534D42UL: /* SMB2 */
    case 0x517BUL:     /* SMB */
    case 0x65735546UL: /* FUSE */
    case 0x01021997UL: /* 9p */
        return true;
    default:
        return false;
    }
}

/* Parse and open a watcher; replies (via fail) on error. */
static struct watcher *watcher_new(json_t *msg, const struct e2b_user *user, int *code, char **emsg)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    const char *path = "";
    bool recursive = false, include = false, allow_net = false;
    if (e2b_pj_str(msg, "path", NULL, &path, &err) < 0 ||
        e2b_pj_bool(msg, "recursive", NULL, &recursive, &err) < 0 ||
        e2b_pj_bool(msg, "includeEntry", "include_entry", &include, &err) < 0 ||
        e2b_pj_bool(msg, "allowNetworkMounts", "allow_network_mounts", &allow_net, &err) < 0) {
        *code = RPC_INVALID_ARGUMENT;
        *emsg = xstrdup(err->msg);
        return NULL;
    }
    _cleanup_free_ char *abs = e2b_envd_resolve_path(path, user, e2b_envd.default_workdir, &err);
    if (!abs) {
        *code = RPC_INVALID_ARGUMENT;
        *emsg = xstrdup(err->msg);
        return NULL;
    }
    e2b_envd_fs_as(user);
    struct stat st;
    int rc = stat(abs, &st), e = errno;
    bool readable = rc == 0 && access(abs, R_OK | X_OK) == 0;
    e2b_envd_fs_restore();
    if (rc < 0) {
        *code = e == ENOENT ? RPC_NOT_FOUND : e2b_rpc_code_from_errno(e);
        *emsg = xasprintf("cannot watch '%s': %s", abs, strerror(e));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        *code = RPC_INVALID_ARGUMENT;
        *emsg = xasprintf("path '%s' is not a directory", abs);
        return NULL;
    }
    if (!readable) {
        *code = RPC_PERMISSION_DENIED;
        *emsg = xasprintf("cannot watch '%s': permission denied", abs);
        return NULL;
    }
    if (!allow_net && network_fs(abs)) {
        *code = RPC_INVALID_ARGUMENT;
        *emsg = xasprintf("path '%s' is on a network mount; set allow_network_mounts to watch it", abs);
        return NULL;
    }
    struct watcher *w = xcalloc(1, sizeof(*w));
    w->root = TAKE_PTR(abs);
    w->recursive = recursive;
    w->include_entry = include;
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        *code = RPC_RESOURCE_EXHAUSTED;
        *emsg = xasprintf("cannot watch: %s", strerror(errno));
        free(w->root);
        free(w);
        return NULL;
    }
    add_dir(w, w->root, recursive);
    if (w->ndirs == 0) {
        *code = RPC_INTERNAL;
        *emsg = xasprintf("cannot watch '%s': %s", w->root, strerror(errno));
        w->next = NULL;
        watchers = w; /* so watcher_free finds a list */
        watcher_free(w);
        return NULL;
    }
    w->ev = event_new(loop, w->fd, EV_READ | EV_PERSIST, on_inotify, w);
    event_add(w->ev, NULL);
    w->next = watchers;
    watchers = w;
    return w;
}

static void stream_gone(struct e2b_rpc_stream *s, int reason, void *arg)
{
    (void)s;
    (void)reason;
    struct watcher *w = arg;
    w->stream = NULL;
    watcher_free(w);
}

void e2b_fs_watch_dir(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    int code;
    _cleanup_free_ char *m = NULL;
    struct watcher *w = watcher_new(msg, user, &code, &m);
    if (!w) {
        e2b_envd_stream_error(req, code, "%s", m);
        return;
    }
    w->stream = e2b_rpc_stream_start(req, json_pack("{s:{}}", "keepalive"), stream_gone, w);
    e2b_rpc_stream_send(w->stream, json_pack("{s:{}}", "start"));
}

static struct watcher *find_watcher(json_t *msg)
{
    const char *id = NULL;
    struct e2b_error *err = NULL;
    if (e2b_pj_str(msg, "watcherId", "watcher_id", &id, &err) < 0) {
        e2b_error_free(err);
        return NULL;
    }
    for (struct watcher *w = watchers; w && id; w = w->next)
        if (w->id && STREQ(w->id, id))
            return w;
    return NULL;
}

void e2b_fs_create_watcher(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    int code;
    _cleanup_free_ char *m = NULL;
    struct watcher *w = watcher_new(msg, user, &code, &m);
    if (!w) {
        e2b_rpc_error(req, code, "%s", m);
        return;
    }
    uint8_t rnd[16] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t r = read(fd, rnd, sizeof(rnd));
        (void)r;
        close(fd);
    }
    rnd[6] = (rnd[6] & 0x0f) | 0x40;
    rnd[8] = (rnd[8] & 0x3f) | 0x80;
    w->id = xasprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
                      rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9], rnd[10], rnd[11], rnd[12],
                      rnd[13], rnd[14], rnd[15]);
    w->queue = json_array();
    e2b_rpc_reply(req, json_pack("{s:s}", "watcherId", w->id));
}

void e2b_fs_get_watcher_events(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    (void)user;
    struct watcher *w = find_watcher(msg);
    if (!w) {
        e2b_rpc_error(req, RPC_NOT_FOUND, "watcher not found");
        return;
    }
    json_t *events = w->queue;
    w->queue = json_array();
    e2b_rpc_reply(req, json_pack("{s:o}", "events", events));
}

void e2b_fs_remove_watcher(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    (void)user;
    struct watcher *w = find_watcher(msg);
    if (!w) {
        e2b_rpc_error(req, RPC_NOT_FOUND, "watcher not found");
        return;
    }
    watcher_free(w);
    e2b_rpc_reply(req, json_object());
}
