/* serve.c - see serve.h: the listener and the connections. */
#include "serve.h"
#include "serve-api.h"
#include "serve-cluster.h"
#include "serve-conn.h"
#include "http1.h"
#include "serve-router.h"
#include "serve-spawn.h"
#include "serve-templates.h"
#include "serve-warm.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>

#define MAX_BODY (1024 * 1024)
#define DEFAULT_MAX_CONNECTIONS 1024
#define DEFAULT_HEAD_TIMEOUT_MS 30000
#define DEFAULT_IDLE_TIMEOUT_MS 120000
#define BODY_TIMEOUT_MS 60000 /* an API body (at most 1 MiB) must arrive within */

static atomic_int open_connections;

static int opt_or(int v, int def) { return v > 0 ? v : def; }

/* The next request head into r: 0, -1 (the client left, idled out or was
 * slow), or an HTTP status for a malformed one. The first byte may take the
 * idle timeout, the rest of the head only the head timeout. */
static int read_head(struct e2b_serve_conn *c, struct e2b_http1_head *r, bool first)
{
    int64_t now = e2b_now_ms();
    int64_t idle = now + opt_or(c->o->idle_timeout_ms, DEFAULT_IDLE_TIMEOUT_MS);
    int64_t head = 0;
    for (;;) {
        long n = c->in.len ? e2b_http1_parse_request(c->in.buf, c->in.len, r) : 0;
        if (n > 0)
            return 0;
        if (n < 0)
            return (int)-n;
        if (c->in.len && !head) /* the head has begun: it must now be quick */
            head = e2b_now_ms() + opt_or(c->o->head_timeout_ms, DEFAULT_HEAD_TIMEOUT_MS);
        int64_t deadline = head ? head : idle;
        if (first && !head) /* a new connection must start its request quickly too */
            deadline = now + opt_or(c->o->head_timeout_ms, DEFAULT_HEAD_TIMEOUT_MS);
        int f = e2b_serve_conn_fill(c, deadline);
        if (f <= 0)
            return f < 0 && errno == ETIMEDOUT && head ? 408 : -1;
    }
}

/* The whole body of an API request into body (bounded): 0, -1 if the peer
 * left or stalled, or an HTTP status (400, 413). */
static int read_body(struct e2b_serve_conn *c, const struct e2b_http1_head *r, struct strbuf *body)
{
    struct e2b_http1_body b;
    int st = e2b_http1_body_request(&b, r, MAX_BODY);
    if (st < 0)
        return -st;
    int64_t deadline = e2b_now_ms() + BODY_TIMEOUT_MS;
    for (;;) {
        size_t used = 0;
        int fr = e2b_http1_body_feed(&b, c->in.buf, c->in.len, &used, body);
        strbuf_consume(&c->in, used);
        if (fr < 0)
            return -fr;
        if (fr == 1)
            return 0;
        int f = e2b_serve_conn_fill(c, deadline);
        if (f <= 0)
            return f < 0 && errno == ETIMEDOUT ? 408 : -1;
    }
}

static const char *malformed(int status)
{
    switch (status) {
    case 408: return "the request did not arrive in time";
    case 413: return "request body over 1048576 bytes";
    case 414: return "request target over 8192 bytes";
    case 431: return "request head over 65536 bytes or 128 header fields";
    default: return "malformed request";
    }
}

static void serve_connection(struct e2b_serve_conn *c)
{
    for (bool first = true;; first = false) {
        struct e2b_http1_head r;
        int st = read_head(c, &r, first);
        if (st < 0)
            return;
        if (st > 0)
            return e2b_serve_fail_and_close(c, st, e2b_serve_error_body(st, "%s", malformed(st)));
        _cleanup_free_ char *id = NULL, *why = NULL;
        int port = 0;
        int rt = e2b_serve_route(c->o, &r, &id, &port, &why);
        if (rt != 0) {
            if (rt > 0)
                e2b_serve_proxy(c, &r, id, port);
            else
                e2b_serve_fail_and_close(c, -rt, e2b_serve_error_body(-rt, "%s", why));
            e2b_http1_head_release(&r);
            return; /* a relayed connection is never reused */
        }
        bool close_after = r.minor == 0 ? !e2b_http1_header_has_token(&r, "Connection", "keep-alive")
                                        : e2b_http1_header_has_token(&r, "Connection", "close");
        if (e2b_serve_templates_is_upload(&r)) { /* its own body, its own limit */
            bool again = e2b_serve_templates_upload(c, &r, close_after);
            e2b_http1_head_release(&r);
            if (!again)
                return;
            continue;
        }
        strbuf_consume(&c->in, r.len);
        struct strbuf body = STRBUF_INIT;
        int bst = read_body(c, &r, &body);
        if (bst != 0) {
            strbuf_release(&body);
            e2b_http1_head_release(&r);
            if (bst > 0)
                e2b_serve_fail_and_close(c, bst, e2b_serve_error_body(bst, "%s", malformed(bst)));
            return;
        }
        if (e2b_serve_cluster_is_export(&r)) { /* a template's build, streamed to another node */
            e2b_serve_cluster_export(c, &r, &body);
            strbuf_release(&body);
            e2b_http1_head_release(&r);
            return;
        }
        struct e2b_serve_reply out;
        e2b_serve_api(c->o, &r, &body, &out);
        bool ok = out.raw ? e2b_serve_respond_raw(c->fd, out.status, out.raw_type, out.raw, out.headers, close_after)
                          : e2b_serve_respond(c->fd, out.status, out.body, out.headers, close_after);
        e2b_serve_reply_release(&out);
        strbuf_release(&body);
        e2b_http1_head_release(&r);
        if (!ok || close_after)
            return;
    }
}

static void *conn_main(void *ud)
{
    struct e2b_serve_conn *c = ud;
    serve_connection(c);
    strbuf_release(&c->in);
    close(c->fd);
    free(c);
    atomic_fetch_sub(&open_connections, 1);
    return NULL;
}

static int listen_on(const char *addr, struct e2b_error **err)
{
    _cleanup_free_ char *host = xstrdup(addr);
    char *colon = strrchr(host, ':');
    if (!colon)
        return e2b_error_set(err, E2B_ERR_USAGE, "listen address '%s' is not HOST:PORT", addr);
    *colon = '\0';
    const char *port = colon + 1;
    char *h = host;
    if (*h == '[') { /* [::1]:3000 */
        h++;
        h[strlen(h) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    int gr = getaddrinfo(*h ? h : NULL, port, &hints, &ai);
    if (gr != 0)
        return e2b_error_set(err, E2B_ERR_USAGE, "cannot listen on '%s': %s", addr, gai_strerror(gr));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 512) < 0) {
        int e = errno;
        freeaddrinfo(ai);
        if (fd >= 0)
            close(fd);
        return e2b_error_sys(err, e, "cannot listen on '%s'", addr);
    }
    freeaddrinfo(ai);
    return fd;
}

/* Over the cap: a short answer from the accepting thread, no new thread.
 * What the client already sent is read first (without waiting), so the
 * close does not turn into a reset that hides the answer. */
static void refuse(int fd, int max)
{
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char tmp[4096];
    for (int i = 0; i < 16 && recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT) > 0; i++)
        ;
    json_t *b = e2b_serve_error_body(503, "e2b serve has %d connections open, its limit; try again later", max);
    e2b_serve_respond(fd, 503, b, NULL, true);
    json_decref(b);
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 16 && recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT) > 0; i++)
        ;
}

int e2b_serve_run(const struct e2b_serve_opts *opts, struct e2b_error **err)
{
    struct e2b_serve_opts run = *opts;
    const struct e2b_serve_opts *o = &run;
    run.spawner = NULL;
    run.warm = NULL;
    run.cluster = NULL;
    run.here = NULL;
    bool local = STREQ(opts->backend->ops->name, "local");
    /* Local creates fork: from a helper forked now, while we are small and
     * have one thread (and before the listening socket exists). */
    if (local && e2b_serve_spawner_start(opts->backend, &run.spawner, err) < 0)
        return -1;
    struct e2b_backend *spawning = run.spawner ? e2b_serve_spawner_backend(run.spawner, opts->backend) : NULL;
    if (spawning)
        run.backend = spawning;
    int lfd = listen_on(o->listen, err);
    if (lfd < 0) {
        e2b_backend_free(spawning);
        e2b_serve_spawner_stop(run.spawner);
        return -1;
    }
    if ((local && e2b_serve_builds_start(o, &run.builds, err) < 0) ||
        (run.cluster_url && e2b_serve_cluster_start(&run, err) < 0)) {
        e2b_serve_builds_stop(run.builds);
        close(lfd);
        e2b_backend_free(spawning);
        e2b_serve_spawner_stop(run.spawner);
        return -1;
    }
    /* warm sandboxes are this machine's: made and handed out through the
     * spawning backend (a cluster's placement does not know them) */
    if (o->warm_pools && json_object_size(o->warm_pools) &&
        e2b_serve_warm_start(o, spawning, o->warm_pools, &run.warm, err) < 0) {
        e2b_serve_cluster_stop(&run);
        e2b_serve_builds_stop(run.builds);
        close(lfd);
        e2b_backend_free(spawning);
        e2b_serve_spawner_stop(run.spawner);
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (o->on_ready)
        o->on_ready(o->listen, o->ud);
    int max = opt_or(o->max_connections, DEFAULT_MAX_CONNECTIONS);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    while (!o->stop || !*o->stop) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 500) <= 0)
            continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (atomic_fetch_add(&open_connections, 1) >= max) {
            atomic_fetch_sub(&open_connections, 1);
            refuse(fd, max);
            close(fd);
            continue;
        }
        struct e2b_serve_conn *c = xcalloc(1, sizeof(*c));
        c->o = o;
        c->fd = fd;
        strbuf_init(&c->in);
        pthread_t t;
        if (pthread_create(&t, &attr, conn_main, c) != 0) {
            close(fd);
            free(c);
            atomic_fetch_sub(&open_connections, 1);
        }
    }
    pthread_attr_destroy(&attr);
    close(lfd);
    e2b_serve_warm_stop(run.warm);
    e2b_serve_cluster_stop(&run);
    e2b_serve_builds_stop(run.builds);
    e2b_backend_free(spawning);
    e2b_serve_spawner_stop(run.spawner);
    return 0;
}
