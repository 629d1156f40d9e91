/* envd-watch.c - see envd-watch.h */
#include "envd-watch.h"
#include "envd-files.h"
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
/* Events a polled watcher keeps between polls; past it, events are lost. */
#define MAX_QUEUED 10000
/* Events a WatchDir client may leave unread; past it, events are lost. */
#define STREAM_BACKLOG_MAX (4 * 1024 * 1024)

#define LOST_MSG "events were lost (%s); watch again to go on"

struct wdir {
    int wd;
    char *path;
};

struct watcher {
    struct watcher *next;
    char *id; /* polled watchers */
    char *root;
    struct e2b_user *user; /* everything a watcher reads, it reads as its user */
    bool recursive, include_entry;
    int fd;
    struct event *ev;
    struct wdir *dirs;
    size_t ndirs;
    struct e2b_rpc_stream *stream; /* WatchDir */
    json_t *queue;                 /* CreateWatcher */
    struct event *idle_ev;         /* CreateWatcher: nobody polled for too long */
    const char *lost;              /* polled: why events were lost, reported at the next poll */
    bool root_gone;                /* polled: the watched directory went away */
};

static struct watcher *watchers;
static struct event_base *loop;
static int idle_timeout_s = E2B_WATCH_IDLE_TIMEOUT_DEFAULT;

int e2b_watch_init(struct event_base *base, struct e2b_error **err)
{
    (void)err;
    loop = base;
    return 0;
}

void e2b_watch_set_idle_timeout(int seconds)
{
    idle_timeout_s = seconds > 0 ? seconds : E2B_WATCH_IDLE_TIMEOUT_DEFAULT;
}

size_t e2b_watch_count(void)
{
    size_t n = 0;
    for (struct watcher *w = watchers; w; w = w->next)
        n++;
    return n;
}

/* May the (fs-switched) caller list dir: read it and search it? access(2)
 * would check envd's real ids, not the user's, so try both for real. */
static bool can_list(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    struct stat st;
    bool ok = fstatat(fd, ".", &st, 0) == 0; /* a lookup in dir needs search permission */
    close(fd);
    return ok;
}

/* Watch path (and, recursively, the directories under it the user may list).
 * Returns <0 with errno when the kernel refuses a watch for a reason other
 * than permissions (ENOSPC: out of inotify watches). Runs as the user. */
static int add_dir(struct watcher *w, const char *path, bool recurse)
{
    if (!can_list(path))
        return 0; /* not the user's to see */
    int wd = inotify_add_watch(w->fd, path, WATCH_MASK);
    if (wd < 0)
        return errno == EACCES || errno == ENOENT || errno == ENOTDIR ? 0 : -1;
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
        return 0;
    _cleanup_closedir_ DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
            continue;
        _cleanup_free_ char *p = xasprintf("%s%s%s", path, STREQ(path, "/") ? "" : "/", de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && add_dir(w, p, true) < 0)
            return -1;
    }
    return 0;
}

static void forget_wd(struct watcher *w, int wd)
{
    for (size_t i = 0; i < w->ndirs; i++)
        if (w->dirs[i].wd == wd) {
            free(w->dirs[i].path);
            w->dirs[i] = w->dirs[--w->ndirs];
            return;
        }
}

/* Stop watching (the inotify instance and its watches), keep the rest. */
static void watcher_close(struct watcher *w)
{
    if (w->ev)
        event_free(w->ev);
    w->ev = NULL;
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    for (size_t i = 0; i < w->ndirs; i++)
        free(w->dirs[i].path);
    free(w->dirs);
    w->dirs = NULL;
    w->ndirs = 0;
}

static void watcher_free(struct watcher *w)
{
    for (struct watcher **pp = &watchers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    watcher_close(w);
    if (w->idle_ev)
        event_free(w->idle_ev);
    json_decref(w->queue);
    e2b_user_free(w->user);
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

/* Events were lost: a stream ends with resource_exhausted (the client
 * knows and can watch again); a polled watcher says so at its next poll. */
static void lose_events(struct watcher *w, const char *why)
{
    if (w->stream) {
        struct e2b_rpc_stream *s = w->stream;
        w->stream = NULL;
        _cleanup_free_ char *m = xasprintf(LOST_MSG, why);
        e2b_rpc_stream_end(s, RPC_RESOURCE_EXHAUSTED, m);
        watcher_free(w);
        return;
    }
    if (!w->lost)
        w->lost = why;
    watcher_close(w); /* nothing more to queue until it is polled */
}

/* Returns false when the watcher is gone. */
static bool emit(struct watcher *w, const char *full, const char *type)
{
    size_t rl = strlen(w->root);
    const char *name = full;
    if (STREQ(full, w->root))
        name = "";
    else if (strncmp(full, w->root, rl) == 0 && (full[rl] == '/' || STREQ(w->root, "/")))
        name = full + rl + (STREQ(w->root, "/") ? 0 : 1);
    json_t *fe = json_pack("{s:o,s:s}", "name", e2b_json_string_lossy(name), "type", type);
    if (w->include_entry) {
        _cleanup_error_ struct e2b_error *err = NULL;
        e2b_envd_fs_as(w->user);
        json_t *e = e2b_envd_entry_info(full, &err);
        e2b_envd_fs_restore();
        if (e)
            json_object_set_new(fe, "entry", e);
    }
    if (w->stream) {
        if (e2b_rpc_stream_pending(w->stream) > STREAM_BACKLOG_MAX) {
            json_decref(fe);
            lose_events(w, "the client reads too slowly");
            return false;
        }
        e2b_rpc_stream_send(w->stream, json_pack("{s:o}", "filesystem", fe));
        return true;
    }
    if (json_array_size(w->queue) >= MAX_QUEUED) {
        json_decref(fe);
        lose_events(w, "more than 10000 events between polls");
        return false;
    }
    json_array_append_new(w->queue, fe);
    return true;
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
        if (ev->mask & IN_Q_OVERFLOW) {
            lose_events(w, "the kernel's event queue overflowed");
            return;
        }
        const char *dir = dir_of(w, ev->wd);
        if (!dir)
            continue;
        if (ev->mask & IN_IGNORED) { /* the directory is gone: its watch too */
            forget_wd(w, ev->wd);
            continue;
        }
        if (ev->len && e2b_files_is_upload_temp(ev->name))
            continue; /* an upload in progress; its rename shows as a create */
        _cleanup_free_ char *full =
            ev->len ? xasprintf("%s%s%s", dir, STREQ(dir, "/") ? "" : "/", ev->name) : xstrdup(dir);
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
            if (STREQ(dir, w->root))
                root_gone = true;
            continue;
        }
        bool alive = true;
        if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
            alive = emit(w, full, "EVENT_TYPE_CREATE");
            if (alive && (ev->mask & IN_ISDIR) && w->recursive) {
                e2b_envd_fs_as(w->user);
                int rc = add_dir(w, full, true);
                e2b_envd_fs_restore();
                if (rc < 0) {
                    lose_events(w, "out of inotify watches");
                    return;
                }
            }
        }
        if (alive && (ev->mask & IN_MODIFY))
            alive = emit(w, full, "EVENT_TYPE_WRITE");
        if (alive && (ev->mask & IN_DELETE))
            alive = emit(w, full, "EVENT_TYPE_REMOVE");
        if (alive && (ev->mask & IN_MOVED_FROM))
            alive = emit(w, full, "EVENT_TYPE_RENAME");
        if (alive && (ev->mask & IN_ATTRIB))
            alive = emit(w, full, "EVENT_TYPE_CHMOD");
        if (!alive || w->fd < 0)
            return; /* freed, or closed for a lost event */
    }
    if (!root_gone)
        return;
    if (w->stream) {
        struct e2b_rpc_stream *s = w->stream;
        w->stream = NULL;
        e2b_rpc_stream_end(s, RPC_NOT_FOUND, "watched directory was removed");
        watcher_free(w);
    } else {
        w->root_gone = true; /* its queue is still to be polled */
        watcher_close(w);
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

/* Parse and open a watcher; on error sets *code and *emsg. */
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
    bool readable = rc == 0 && S_ISDIR(st.st_mode) && can_list(abs);
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
    w->user = e2b_user_dup(user);
    w->recursive = recursive;
    w->include_entry = include;
    w->next = watchers; /* listed first, so watcher_free finds it */
    watchers = w;
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        *code = RPC_RESOURCE_EXHAUSTED;
        *emsg = xasprintf("cannot watch: %s", strerror(errno));
        watcher_free(w);
        return NULL;
    }
    e2b_envd_fs_as(user);
    rc = add_dir(w, w->root, recursive);
    e = errno;
    e2b_envd_fs_restore();
    if (rc < 0 || w->ndirs == 0) {
        *code = rc < 0 && (e == ENOSPC || e == ENOMEM) ? RPC_RESOURCE_EXHAUSTED : RPC_INTERNAL;
        *emsg = rc < 0 && e == ENOSPC ? xasprintf("cannot watch '%s': out of inotify watches", w->root)
                                      : xasprintf("cannot watch '%s': %s", w->root, strerror(rc < 0 ? e : EACCES));
        watcher_free(w);
        return NULL;
    }
    w->ev = event_new(loop, w->fd, EV_READ | EV_PERSIST, on_inotify, w);
    event_add(w->ev, NULL);
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

/* Nobody polled a watcher for idle_timeout_s: its client is gone. */
static void on_idle(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    watcher_free(arg);
}

static void touch(struct watcher *w)
{
    struct timeval tv = {idle_timeout_s, 0};
    event_add(w->idle_ev, &tv);
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
    w->idle_ev = evtimer_new(loop, on_idle, w);
    touch(w);
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
    if (w->lost) {
        /* Say so rather than hand out a partial history as if whole. */
        _cleanup_free_ char *m = xasprintf(LOST_MSG, w->lost);
        watcher_free(w);
        e2b_rpc_error(req, RPC_RESOURCE_EXHAUSTED, "%s", m);
        return;
    }
    if (w->root_gone && json_array_size(w->queue) == 0) {
        watcher_free(w);
        e2b_rpc_error(req, RPC_NOT_FOUND, "watched directory was removed");
        return;
    }
    touch(w);
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
