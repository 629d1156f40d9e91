/* envd-driver.c - see envd-driver.h */
#include "envd-driver.h"
#include "envd-connect.h"
#include "envd-http.h"
#include "envd-process.h"
#include "envd-server.h"
#include "envd-users.h"
#include "envd-watch.h"
#include "fuzz.h"
#include "http1.h"

#include <event2/event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* Loop passes with nothing happening before envd counts as quiet. */
#define QUIET_PASSES 4
/* At most this many loop passes per exchange (a stream may go on forever). */
#define MAX_PASSES 2000
/* Waits of WAIT_US for children to exit and say so. */
#define MAX_WAITS 20
#define WAIT_US 1000

static struct sockaddr_un addr;
static socklen_t addr_len;
static struct event_base *base;
/* Polled watchers (CreateWatcher) outlive connections: their ids, from
 * the replies, to remove them at the next reset. */
static char **watcher_ids;
static size_t n_watcher_ids;

static void fixtures(void)
{
    fuzz_write_file("/etc/passwd",
                    "root:x:0:0:root:/root:/bin/sh\n"
                    "user:x:1000:1000:user:" FUZZ_ENVD_HOME ":/bin/sh\n"
                    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                    0644);
    fuzz_write_file("/etc/group", "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n", 0644);
    fuzz_write_file("/root/.profile", "# root's\n", 0600);
    fuzz_write_file(FUZZ_ENVD_HOME "/file.txt", "hello\n", 0644);
    fuzz_write_file(FUZZ_ENVD_HOME "/dir/sub/deep.txt", "deep\n", 0644);
    fuzz_write_file("/data/secret", "root only\n", 0600);
    mkdir("/tmp", 0777);
    FUZZ_ASSERT(chmod("/tmp", 01777) == 0);
    FUZZ_ASSERT(symlink("file.txt", FUZZ_ENVD_HOME "/link") == 0);
    /* the user's own (not in a user namespace with one id: root's then) */
    const char *own[] = {FUZZ_ENVD_HOME, FUZZ_ENVD_HOME "/file.txt", FUZZ_ENVD_HOME "/dir",
                         FUZZ_ENVD_HOME "/dir/sub", FUZZ_ENVD_HOME "/dir/sub/deep.txt", FUZZ_ENVD_HOME "/link"};
    for (size_t i = 0; i < ARRAY_SIZE(own); i++)
        (void)!lchown(own[i], 1000, 1000);
}

void fuzz_envd_start(void)
{
    signal(SIGPIPE, SIG_IGN); /* as envd does: a peer gone is an error, not the end */
    FUZZ_ASSERT(fuzz_jail_enter(128) == 0);
    (void)unshare(CLONE_NEWNET); /* nothing envd runs reaches a network */
    umask(022);
    fixtures();
    e2b_envd.default_user = xstrdup("user");
    e2b_envd.env = json_object();
    struct e2b_error *err = NULL;
    if (e2b_envd_serve_init(&err) < 0) {
        fprintf(stderr, "envd-driver: %s\n", err->msg);
        abort();
    }
    base = e2b_envd.base;
    /* An abstract address the kernel picks: no file to wipe, no clash
     * with another fuzzer on the machine. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_ASSERT(fd >= 0);
    addr.sun_family = AF_UNIX;
    FUZZ_ASSERT(bind(fd, (struct sockaddr *)&addr, sizeof(sa_family_t)) == 0); /* autobind */
    addr_len = sizeof(addr);
    FUZZ_ASSERT(getsockname(fd, (struct sockaddr *)&addr, &addr_len) == 0 && addr_len > sizeof(sa_family_t));
    FUZZ_ASSERT(listen(fd, 16) == 0);
    FUZZ_ASSERT(e2b_http_listen_fd(e2b_envd.http, fd, &err) == 0);
}

/* ---- one exchange ---- */

struct client {
    int fd;
    struct event *rd;
    struct fuzz_envd_exchange *x;
    bool activity; /* bytes or EOF since the flag was cleared */
};

static void client_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct client *c = arg;
    char buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            strbuf_add(&c->x->out, buf, (size_t)n);
            c->activity = true;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            c->x->closed = true;
            c->activity = true;
            event_del(c->rd); /* else ready forever: the loop would never be idle */
        }
        return;
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Run envd's loop until nothing is ready (EVLOOP_NONBLOCK goes on while
 * callbacks are active); with wait, first block up to WAIT_US for something. */
static void pass(struct event *timer, bool wait)
{
    if (wait) {
        struct timeval tv = {0, WAIT_US};
        event_add(timer, &tv);
        event_base_loop(base, EVLOOP_ONCE);
        event_del(timer);
    } else {
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
}

static void remember_watchers(const struct strbuf *out)
{
    static const char key[] = "\"watcherId\":\"";
    for (const char *p = out->buf; out->len && (p = memmem(p, out->len - (size_t)(p - out->buf), key,
                                                          sizeof(key) - 1));) {
        p += sizeof(key) - 1;
        const char *end = memchr(p, '"', out->len - (size_t)(p - out->buf));
        if (!end)
            break;
        watcher_ids = xrealloc(watcher_ids, (n_watcher_ids + 1) * sizeof(*watcher_ids));
        watcher_ids[n_watcher_ids++] = xstrndup(p, (size_t)(end - p));
    }
}

void fuzz_envd_exchange(const void *data, size_t len, unsigned split, bool shut_wr, struct fuzz_envd_exchange *x)
{
    memset(x, 0, sizeof(*x));
    strbuf_init(&x->out);
    struct client c = {.x = x};
    c.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    FUZZ_ASSERT(c.fd >= 0);
    FUZZ_ASSERT(connect(c.fd, (struct sockaddr *)&addr, addr_len) == 0);
    struct event *rd = c.rd = event_new(base, c.fd, EV_READ | EV_PERSIST, client_read, &c);
    struct event *timer = evtimer_new(base, timer_cb, NULL);
    event_add(rd, NULL);

    /* send, piece by piece, while envd takes it */
    const char *p = data;
    size_t off = 0, stuck = 0;
    while (off < len && !x->closed && stuck < QUIET_PASSES * 4) {
        size_t piece = len - off;
        if (split) {
            piece = 1 + (split * 31 + off * 7) % (split * 3 + 1);
            if (piece > len - off)
                piece = len - off;
        }
        ssize_t n = send(c.fd, p + off, piece, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += (size_t)n;
            stuck = 0;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            break; /* envd hung up */
        } else {
            stuck++; /* envd reads no more for now (a paused body) */
        }
        pass(timer, false);
        pass(timer, false);
    }
    if (shut_wr)
        shutdown(c.fd, SHUT_WR);

    /* until envd goes quiet: no more bytes for a few passes, and no child
     * left that may still exit and end a stream */
    size_t quiet = 0, waits = 0;
    for (size_t i = 0; i < MAX_PASSES && !x->closed; i++) {
        c.activity = false;
        bool wait = quiet >= QUIET_PASSES;
        if (wait && (e2b_process_count() == 0 || waits++ >= MAX_WAITS))
            break;
        pass(timer, wait);
        quiet = c.activity ? 0 : quiet + 1;
    }
    event_free(rd);
    event_free(timer);
    close(c.fd);
    remember_watchers(&x->out);

    /* envd must let the connection go (and its requests, streams, bodies) */
    for (size_t i = 0; i < 100 && e2b_http_nconns(e2b_envd.http) > 0; i++)
        pass(NULL, false);
    FUZZ_ASSERT(e2b_http_nconns(e2b_envd.http) == 0);
}

void fuzz_envd_exchange_release(struct fuzz_envd_exchange *x) { strbuf_release(&x->out); }

/* ---- reset ---- */

void fuzz_envd_reset(bool root, bool secured)
{
    /* processes: killed, reaped, forgotten */
    e2b_process_shutdown();
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    struct e2b_error *err = NULL;
    FUZZ_ASSERT(e2b_process_init(base, &err) == 0);
    FUZZ_ASSERT(e2b_process_count() == 0);

    /* files and settings as at start */
    fuzz_jail_wipe(NULL);
    fixtures();
    e2b_users_set_files(NULL, NULL);
    free(e2b_envd.default_user);
    e2b_envd.default_user = xstrdup(root ? "root" : "user");
    free(e2b_envd.default_workdir);
    e2b_envd.default_workdir = NULL;
    free(e2b_envd.access_token);
    e2b_envd.access_token = NULL;
    json_decref(e2b_envd.env);
    e2b_envd.env = json_object();

    /* polled watchers: removed as a client would */
    for (size_t i = 0; i < n_watcher_ids; i++) {
        if (e2b_watch_count()) {
            char *body = xasprintf("{\"watcherId\":\"%s\"}", watcher_ids[i]);
            char *req = xasprintf("POST /filesystem.Filesystem/RemoveWatcher HTTP/1.1\r\n"
                                  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                                  strlen(body), body);
            struct fuzz_envd_exchange x;
            fuzz_envd_exchange(req, strlen(req), 0, false, &x);
            fuzz_envd_exchange_release(&x);
            free(req);
            free(body);
        }
        free(watcher_ids[i]);
    }
    free(watcher_ids);
    watcher_ids = NULL;
    n_watcher_ids = 0;
    FUZZ_ASSERT(e2b_watch_count() == 0); /* streams end with their connections */
    e2b_envd.access_token = secured ? xstrdup(FUZZ_ENVD_TOKEN) : NULL;
}

/* ---- checking what came back ---- */

static const char *const rpc_codes[] = {
    "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
    "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
    "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated",
};

static const char *rpc_code(const char *s)
{
    for (size_t i = 0; s && i < ARRAY_SIZE(rpc_codes); i++)
        if (!strcmp(s, rpc_codes[i]))
            return rpc_codes[i];
    return NULL;
}

const char *fuzz_envd_check_stream(const struct strbuf *body, bool complete)
{
    size_t off = 0;
    const char *result = "";
    bool ended = false;
    while (off < body->len) {
        unsigned flags;
        const char *payload;
        size_t plen;
        ssize_t n = e2b_rpc_unframe(body->buf + off, body->len - off, &flags, &payload, &plen);
        FUZZ_ASSERT(n >= 0);
        if (n == 0) {
            FUZZ_ASSERT(!complete); /* a frame cut short: only when the body was */
            break;
        }
        FUZZ_ASSERT(!ended); /* nothing after the end of the stream */
        FUZZ_ASSERT(flags == 0 || flags == E2B_RPC_FLAG_END);
        json_error_t jerr;
        json_t *j = json_loadb(payload, plen, JSON_REJECT_DUPLICATES, &jerr);
        FUZZ_ASSERT(json_is_object(j));
        if (flags == E2B_RPC_FLAG_END) {
            ended = true;
            json_t *e = json_object_get(j, "error");
            result = NULL;
            if (e) {
                FUZZ_ASSERT(json_is_object(e));
                result = rpc_code(json_string_value(json_object_get(e, "code")));
                FUZZ_ASSERT(result != NULL);
                json_t *m = json_object_get(e, "message");
                FUZZ_ASSERT(!m || json_is_string(m));
            }
            json_t *md = json_object_get(j, "metadata");
            FUZZ_ASSERT(!md || json_is_object(md));
        }
        json_decref(j);
        off += (size_t)n;
    }
    if (complete)
        FUZZ_ASSERT(ended); /* a stream always says how it ended */
    return ended ? result : "";
}

void fuzz_envd_responses_free(struct fuzz_envd_response *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].ctype);
        strbuf_release(&r[i].body);
    }
    free(r);
}

size_t fuzz_envd_check_responses(const struct fuzz_envd_exchange *x, const char *request_method,
                                 struct fuzz_envd_response **ret)
{
    const char *buf = x->out.buf ? x->out.buf : "";
    size_t len = x->out.len, off = 0, n = 0;
    struct fuzz_envd_response *rs = NULL;
    bool closed_after = false;
    unsigned continues = 0;
    while (off < len) {
        FUZZ_ASSERT(!closed_after); /* nothing after Connection: close */
        FUZZ_ASSERT(len - off < 9 || !memcmp(buf + off, "HTTP/1.1 ", 9));
        struct e2b_http1_head h = {0};
        long hl = e2b_http1_parse_response(buf + off, len - off, &h);
        if (hl == 0) { /* cut short: we hung up before it all came */
            FUZZ_ASSERT(len - off < E2B_HTTP1_MAX_HEAD);
            e2b_http1_head_release(&h);
            break;
        }
        if (hl < 0)
            fprintf(stderr, "envd-driver: bad response head (%ld): %.*s\n", hl, (int)(len - off > 300 ? 300 : len - off),
                    buf + off);
        FUZZ_ASSERT(hl > 0);
        FUZZ_ASSERT(h.status >= 100 && h.status <= 599 && h.minor == 1);
        off += (size_t)hl;
        if (h.status == 100) { /* interim: a head alone */
            continues++;
            e2b_http1_head_release(&h);
            continue;
        }
        FUZZ_ASSERT(h.status >= 200);
        const char *cors = e2b_http1_header(&h, "Access-Control-Allow-Origin");
        FUZZ_ASSERT(cors && !strcmp(cors, "*"));
        rs = xrealloc(rs, (n + 1) * sizeof(*rs));
        struct fuzz_envd_response *r = &rs[n++];
        memset(r, 0, sizeof(*r));
        r->status = h.status;
        r->continues = continues;
        continues = 0;
        const char *ct = e2b_http1_header(&h, "Content-Type");
        r->ctype = ct ? xstrdup(ct) : NULL;
        r->close = e2b_http1_header_has_token(&h, "Connection", "close");
        strbuf_init(&r->body);
        if (!request_method) { /* a HEAD among the requests: bodies cannot be told apart */
            e2b_http1_head_release(&h);
            break;
        }
        struct e2b_http1_body b = {0};
        FUZZ_ASSERT(e2b_http1_body_response(&b, &h, request_method) == 0);
        size_t used = 0;
        int rc = b.kind == E2B_BODY_NONE ? 1 : e2b_http1_body_feed(&b, buf + off, len - off, &used, &r->body);
        FUZZ_ASSERT(rc >= 0); /* well-formed chunking */
        off += used;
        r->complete = rc == 1;
        if (b.kind == E2B_BODY_CLOSE)
            r->complete = x->closed;
        if (r->ctype && !strncasecmp(r->ctype, "application/connect+json", 24))
            (void)fuzz_envd_check_stream(&r->body, r->complete);
        if (r->close && r->complete)
            closed_after = true;
        e2b_http1_head_release(&h);
        if (!r->complete) {
            FUZZ_ASSERT(off == len); /* only the last one is cut short */
            break;
        }
    }
    if (ret)
        *ret = rs;
    else
        fuzz_envd_responses_free(rs, n);
    return n;
}
