/* envd-http.c - see envd-http.h */
#include "envd-http.h"
#include "http1.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#define DRAIN_MARK (256 * 1024)
#define READ_PAUSE_MARK (1024 * 1024)

enum body_mode { BODY_UNTAKEN, BODY_BUFFER, BODY_STREAM, BODY_DISCARD };
enum reply_state { REPLY_NONE, REPLY_STREAMING, REPLY_DONE };

struct conn;

struct e2b_http_req {
    struct conn *c;
    struct e2b_http1_head head; /* method, path, query, headers as http1.c read them */
    char **hname, **hval;       /* the header lines split, for e2b_http_header_at */
    char **qk, **qv;
    size_t nq;
    bool qparsed;

    /* body: framed by http1.c, handed on here */
    struct e2b_http1_body body;
    int64_t clen;               /* declared length; -1 chunked */
    bool body_done, expect_continue, continue_sent;
    enum body_mode mode;
    size_t max;
    struct evbuffer *buf;
    e2b_http_body_done done_cb;
    e2b_http_body_data data_cb;
    e2b_http_body_end end_cb;
    void *body_arg;
    bool notified; /* done_cb / end_cb has run */
    bool body_paused;

    /* reply */
    struct strbuf outh;
    enum reply_state rstate;
    bool chunked_reply, head_only;
    void (*drain_cb)(struct e2b_http_req *, void *);
    void *drain_arg;
    void (*close_cb)(struct e2b_http_req *, void *);
    void *close_arg;
};

struct conn {
    struct e2b_http_server *srv;
    struct bufferevent *bev;
    struct conn *prev, *next;
    struct e2b_http_req *req;
    bool closing, dead, in_read;
};

struct e2b_http_server {
    struct event_base *base;
    e2b_http_handler handler;
    void *arg;
    struct evconnlistener *ls[8];
    size_t nls;
    struct event *resume_ev; /* re-enables listeners after EMFILE */
    struct conn *conns;
    size_t nconns;
    struct strbuf hdrs; /* "Name: value\r\n" lines on every response */
};

static void conn_free(struct conn *c);
static void conn_process(struct conn *c);

/* ---- helpers ---- */

/* Standard reason phrase. */
static const char *reason_phrase(int s)
{
    switch (s) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
    }
}

static void req_free(struct e2b_http_req *r)
{
    if (!r)
        return;
    e2b_http1_head_release(&r->head);
    e2b_strv_free(r->hname);
    e2b_strv_free(r->hval);
    for (size_t i = 0; i < r->nq; i++) {
        free(r->qk[i]);
        free(r->qv[i]);
    }
    free(r->qk);
    free(r->qv);
    if (r->buf)
        evbuffer_free(r->buf);
    strbuf_release(&r->outh);
    free(r);
}

const char *e2b_http_method(const struct e2b_http_req *r) { return r->head.method; }
const char *e2b_http_path(const struct e2b_http_req *r) { return r->head.path; }

const char *e2b_http_header(const struct e2b_http_req *r, const char *name)
{
    return e2b_http1_header(&r->head, name);
}

bool e2b_http_header_at(const struct e2b_http_req *cr, size_t i, const char **name, const char **value)
{
    struct e2b_http_req *r = (struct e2b_http_req *)cr;
    if (!r->hname) { /* split "Name: value" once, on first use */
        for (char **l = r->head.headers; *l; l++) {
            size_t n = strcspn(*l, ":");
            _cleanup_free_ char *nm = xstrndup(*l, n);
            r->hname = e2b_strv_push(r->hname, nm);
            r->hval = e2b_strv_push(r->hval, *l + n + 2);
        }
        if (!r->hname)
            r->hname = xcalloc(1, sizeof(char *));
    }
    if (!r->hname[i])
        return false;
    *name = r->hname[i];
    *value = r->hval[i];
    return true;
}

static void parse_query(struct e2b_http_req *r)
{
    r->qparsed = true;
    for (const char *p = r->head.query; *p;) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        size_t kl = eq ? (size_t)(eq - p) : n;
        char *k = e2b_http1_unescape(p, kl, true);
        char *v = eq ? e2b_http1_unescape(eq + 1, n - kl - 1, true) : xstrdup("");
        if (k && v && *k) {
            r->qk = xrealloc(r->qk, (r->nq + 1) * sizeof(char *));
            r->qv = xrealloc(r->qv, (r->nq + 1) * sizeof(char *));
            r->qk[r->nq] = k;
            r->qv[r->nq++] = v;
        } else {
            free(k);
            free(v);
        }
        p += n;
        if (*p == '&')
            p++;
    }
}

const char *e2b_http_query(const struct e2b_http_req *cr, const char *key)
{
    struct e2b_http_req *r = (struct e2b_http_req *)cr;
    if (!r->qparsed)
        parse_query(r);
    for (size_t i = 0; i < r->nq; i++)
        if (STREQ(r->qk[i], key))
            return r->qv[i];
    return NULL;
}

size_t e2b_http_pending(const struct e2b_http_req *r)
{
    return r->c->dead ? 0 : evbuffer_get_length(bufferevent_get_output(r->c->bev));
}

void e2b_http_set_drain_cb(struct e2b_http_req *r, void (*cb)(struct e2b_http_req *, void *), void *arg)
{
    r->drain_cb = cb;
    r->drain_arg = arg;
}

void e2b_http_set_close_cb(struct e2b_http_req *r, void (*cb)(struct e2b_http_req *, void *), void *arg)
{
    r->close_cb = cb;
    r->close_arg = arg;
}

/* ---- replies ---- */

bool e2b_http_header_valid(const char *name, const char *value)
{
    if (!name || !*name || !value)
        return false;
    for (const char *p = name; *p; p++) /* RFC 9110 token */
        if (!(isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~", *p)))
            return false;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

int e2b_http_add_header(struct e2b_http_req *r, const char *name, const char *value)
{
    if (r->rstate != REPLY_NONE || !e2b_http_header_valid(name, value))
        return -1;
    strbuf_addf(&r->outh, "%s: %s\r\n", name, value);
    return 0;
}

static bool wants_close(struct e2b_http_req *r)
{
    if (r->head.minor == 0)
        return !e2b_http1_header_has_token(&r->head, "Connection", "keep-alive");
    return e2b_http1_header_has_token(&r->head, "Connection", "close");
}

static void write_head(struct e2b_http_req *r, int status, const char *ctype, int64_t len)
{
    struct conn *c = r->c;
    /* A body we never asked for (100-continue not sent) may or may not come:
     * the connection cannot be reused then. */
    if (!r->body_done && r->expect_continue && !r->continue_sent)
        c->closing = true;
    if (wants_close(r))
        c->closing = true;
    if (len < 0 && r->head.minor == 0)
        c->closing = true;
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status, reason_phrase(status), date);
    if (ctype)
        evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype);
    if (len >= 0) {
        if (status != 204 && status != 304)
            evbuffer_add_printf(out, "Content-Length: %lld\r\n", (long long)len);
    } else if (r->head.minor >= 1) {
        evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
        r->chunked_reply = true;
    }
    if (c->closing)
        evbuffer_add_printf(out, "Connection: close\r\n");
    evbuffer_add(out, c->srv->hdrs.buf ? c->srv->hdrs.buf : "", c->srv->hdrs.len);
    evbuffer_add(out, r->outh.buf ? r->outh.buf : "", r->outh.len);
    evbuffer_add(out, "\r\n", 2);
}

/* The body will not be read to its end: tell its taker once. */
static void abandon_body(struct e2b_http_req *r)
{
    enum body_mode m = r->mode;
    r->mode = BODY_DISCARD;
    if (r->notified)
        return;
    r->notified = true;
    if (m == BODY_BUFFER)
        r->done_cb(r, NULL, r->body_arg);
    else if (m == BODY_STREAM)
        r->end_cb(r, false, r->body_arg);
}

static void after_reply(struct e2b_http_req *r)
{
    struct conn *c = r->c;
    r->rstate = REPLY_DONE;
    if (!r->body_done && r->mode == BODY_UNTAKEN)
        r->mode = BODY_DISCARD;
    if (c->closing && !r->body_done) {
        if (r->mode == BODY_BUFFER)
            abandon_body(r);
        r->body_done = true; /* no need to read the rest: we close */
    }
    if (!c->in_read)
        conn_process(c);
}

void e2b_http_reply(struct e2b_http_req *r, int status, const char *ctype, const void *body, size_t len)
{
    if (r->rstate != REPLY_NONE || r->c->dead)
        return;
    write_head(r, status, ctype, (int64_t)len);
    if (len && !r->head_only)
        evbuffer_add(bufferevent_get_output(r->c->bev), body, len);
    after_reply(r);
}

void e2b_http_reply_buffer(struct e2b_http_req *r, int status, const char *ctype, struct evbuffer *buf)
{
    if (r->rstate != REPLY_NONE || r->c->dead) {
        evbuffer_drain(buf, evbuffer_get_length(buf));
        return;
    }
    write_head(r, status, ctype, (int64_t)evbuffer_get_length(buf));
    if (r->head_only)
        evbuffer_drain(buf, evbuffer_get_length(buf));
    else
        evbuffer_add_buffer(bufferevent_get_output(r->c->bev), buf);
    after_reply(r);
}

void e2b_http_reply_file(struct e2b_http_req *r, int status, const char *ctype, int fd, off_t len)
{
    if (r->rstate != REPLY_NONE || r->c->dead) {
        close(fd);
        return;
    }
    write_head(r, status, ctype, len);
    if (len > 0 && !r->head_only)
        evbuffer_add_file(bufferevent_get_output(r->c->bev), fd, 0, len); /* takes fd */
    else
        close(fd);
    after_reply(r);
}

void e2b_http_reply_start(struct e2b_http_req *r, int status, const char *ctype)
{
    if (r->rstate != REPLY_NONE || r->c->dead)
        return;
    write_head(r, status, ctype, -1);
    r->rstate = REPLY_STREAMING;
    bufferevent_flush(r->c->bev, EV_WRITE, BEV_FLUSH);
}

void e2b_http_reply_chunk(struct e2b_http_req *r, const void *data, size_t len)
{
    if (r->rstate != REPLY_STREAMING || r->c->dead || len == 0 || r->head_only)
        return;
    struct evbuffer *out = bufferevent_get_output(r->c->bev);
    if (r->chunked_reply)
        evbuffer_add_printf(out, "%zx\r\n", len);
    evbuffer_add(out, data, len);
    if (r->chunked_reply)
        evbuffer_add(out, "\r\n", 2);
}

void e2b_http_reply_end(struct e2b_http_req *r)
{
    if (r->rstate != REPLY_STREAMING || r->c->dead)
        return;
    if (r->chunked_reply && !r->head_only)
        evbuffer_add(bufferevent_get_output(r->c->bev), "0\r\n\r\n", 5);
    after_reply(r);
}

/* ---- body ---- */

static void send_continue(struct e2b_http_req *r)
{
    if (r->expect_continue && !r->continue_sent && !r->body_done && r->rstate == REPLY_NONE) {
        evbuffer_add(bufferevent_get_output(r->c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        r->continue_sent = true;
    }
}

void e2b_http_read_body(struct e2b_http_req *r, size_t max, e2b_http_body_done done, void *arg)
{
    r->mode = BODY_BUFFER;
    r->max = max;
    r->done_cb = done;
    r->body_arg = arg;
    r->buf = evbuffer_new();
    if (r->body_done) { /* no body at all */
        r->notified = true;
        done(r, r->buf, arg);
        return;
    }
    if (r->clen > (int64_t)max) {
        e2b_http_reply(r, 413, "text/plain", "request body too large\n", 23);
        abandon_body(r);
        return;
    }
    send_continue(r);
    if (!r->c->in_read)
        conn_process(r->c);
}

void e2b_http_pause_body(struct e2b_http_req *r, bool pause)
{
    if (r->body_paused == pause)
        return;
    r->body_paused = pause;
    if (!pause && !r->c->in_read)
        conn_process(r->c); /* goes on with what is buffered, re-enables reading */
}

void e2b_http_stream_body(struct e2b_http_req *r, e2b_http_body_data on_data, e2b_http_body_end on_end,
                          void *arg)
{
    r->mode = BODY_STREAM;
    r->data_cb = on_data;
    r->end_cb = on_end;
    r->body_arg = arg;
    if (r->body_done) {
        r->notified = true;
        on_end(r, true, arg);
        return;
    }
    send_continue(r);
    if (!r->c->in_read)
        conn_process(r->c);
}

/* Hand a piece of body to whoever takes it. */
static void deliver(struct e2b_http_req *r, const char *data, size_t len)
{
    switch (r->mode) {
    case BODY_BUFFER:
        if (evbuffer_get_length(r->buf) + len > r->max) {
            e2b_http_reply(r, 413, "text/plain", "request body too large\n", 23);
            abandon_body(r);
            return;
        }
        evbuffer_add(r->buf, data, len);
        break;
    case BODY_STREAM:
        if (r->data_cb(r, data, len, r->body_arg) < 0)
            abandon_body(r);
        break;
    default:
        break;
    }
}

static void body_finished(struct e2b_http_req *r)
{
    r->body_done = true;
    if (r->notified)
        return;
    r->notified = true;
    if (r->mode == BODY_BUFFER)
        r->done_cb(r, r->buf, r->body_arg);
    else if (r->mode == BODY_STREAM)
        r->end_cb(r, true, r->body_arg);
}

static void fail_conn(struct conn *c, int status, const char *msg)
{
    struct e2b_http_req *r = c->req;
    c->closing = true;
    if (r)
        abandon_body(r);
    if (r && r->rstate == REPLY_NONE) {
        e2b_http_reply(r, status, "text/plain", msg, strlen(msg));
    } else if (!r) {
        struct evbuffer *out = bufferevent_get_output(c->bev);
        evbuffer_add_printf(out,
                            "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                            "Connection: close\r\n",
                            status, reason_phrase(status), strlen(msg));
        evbuffer_add(out, c->srv->hdrs.buf ? c->srv->hdrs.buf : "", c->srv->hdrs.len);
        evbuffer_add_printf(out, "\r\n%s", msg);
    }
    if (r)
        r->body_done = true;
}

/* Consume body bytes from input; returns false when waiting for more.
 * http1.c takes the framing off; each run of payload goes to the taker
 * straight from the input buffer (no copy), and a taker that pauses stops
 * the next run. */
static bool read_body(struct conn *c, struct evbuffer *in)
{
    struct e2b_http_req *r = c->req;
    while (!r->body_done) {
        if (r->mode == BODY_UNTAKEN)
            return false; /* the handler has not decided yet */
        if (r->body_paused && r->mode == BODY_STREAM)
            return false; /* the taker has no room now */
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            return false;
        size_t used;
        const char *data;
        size_t n;
        int rc = e2b_http1_body_next(&r->body, v.iov_base, v.iov_len, &used, &data, &n);
        if (rc < 0) {
            fail_conn(c, 400, "bad chunked body\n");
            return false;
        }
        if (n)
            deliver(r, data, n);
        evbuffer_drain(in, used);
        if (rc == 1 && !r->body_done)
            body_finished(r);
    }
    return true;
}

/* ---- request head ---- */

static const char *head_error(int status)
{
    switch (status) {
    case 414: return "request target too long\n";
    case 431: return "request head too large\n";
    default: return "malformed request\n";
    }
}

/* Parse one head from input; returns 1 parsed, 0 need more, -1 failed (replied). */
static int read_head(struct conn *c, struct evbuffer *in)
{
    size_t avail = evbuffer_get_length(in);
    if (avail == 0)
        return 0;
    size_t n = avail < E2B_HTTP1_MAX_HEAD ? avail : E2B_HTTP1_MAX_HEAD;
    const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    struct e2b_http1_head head;
    long hl = e2b_http1_parse_request(buf, n, &head);
    if (hl == 0)
        return 0;
    struct e2b_http_req *r = xcalloc(1, sizeof(*r));
    r->c = c;
    strbuf_init(&r->outh);
    c->req = r;
    if (hl < 0) {
        r->head.minor = 1;
        fail_conn(c, (int)-hl, head_error((int)-hl));
        return -1;
    }
    evbuffer_drain(in, (size_t)hl);
    r->head = head;
    /* Framing by the same rules as `e2b serve`'s router in front of envd:
     * never both Transfer-Encoding and Content-Length, nor two lengths. */
    if (e2b_http1_body_request(&r->body, &r->head, 0) < 0) {
        fail_conn(c, 400, "malformed or ambiguous body framing\n");
        return -1;
    }
    r->clen = r->body.kind == E2B_BODY_CHUNKED ? -1 : (int64_t)r->body.left;
    r->head_only = STREQ(r->head.method, "HEAD");
    r->body_done = r->body.done;
    const char *ex = e2b_http_header(r, "Expect");
    if (ex && strcasecmp(ex, "100-continue") == 0 && r->head.minor >= 1)
        r->expect_continue = true;
    return 1;
}

/* Drive the connection: heads, bodies, finished requests. */
static void conn_process(struct conn *c)
{
    if (c->in_read || c->dead)
        return;
    c->in_read = true;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    for (;;) {
        if (c->dead)
            break;
        if (!c->req) {
            if (c->closing)
                break;
            int rc = read_head(c, in);
            if (rc == 0)
                break;
            if (rc > 0)
                c->srv->handler(c->req, c->srv->arg);
            continue;
        }
        struct e2b_http_req *r = c->req;
        if (!r->body_done && !read_body(c, in))
            if (!r->body_done)
                break;
        if (r->rstate != REPLY_DONE)
            break;
        /* request complete */
        c->req = NULL;
        req_free(r);
        if (c->closing)
            break;
    }
    c->in_read = false;
    if (c->dead) {
        conn_free(c);
        return;
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->closing && !c->req) {
        if (evbuffer_get_length(out) == 0) {
            conn_free(c);
            return;
        }
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        bufferevent_disable(c->bev, EV_READ);
        return;
    }
    /* do not hoard pipelined input while a reply is pending, nor body
     * bytes while their taker has no room */
    if (c->req && ((c->req->body_done && evbuffer_get_length(in) > READ_PAUSE_MARK) ||
                   (c->req->body_paused && !c->req->body_done && c->req->mode == BODY_STREAM)))
        bufferevent_disable(c->bev, EV_READ);
    else
        bufferevent_enable(c->bev, EV_READ);
}

static void conn_readcb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_process(arg);
}

static void conn_writecb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *out = bufferevent_get_output(bev);
    if (c->closing && !c->req) {
        if (evbuffer_get_length(out) == 0)
            conn_free(c);
        return;
    }
    if (c->req && c->req->rstate == REPLY_STREAMING && c->req->drain_cb)
        c->req->drain_cb(c->req, c->req->drain_arg);
    if (c->req && c->req->rstate == REPLY_DONE && !c->in_read)
        conn_process(c);
}

static void conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
        return;
    /* The peer is gone (a half-close while we still reply counts too:
     * HTTP clients do not half-close while waiting). */
    struct e2b_http_req *r = c->req;
    c->dead = true;
    if (r) {
        abandon_body(r);
        r->body_done = true;
        if (r->rstate != REPLY_DONE && r->close_cb)
            r->close_cb(r, r->close_arg);
    }
    if (!c->in_read)
        conn_free(c);
}

static void conn_free(struct conn *c)
{
    struct e2b_http_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    req_free(c->req);
    bufferevent_free(c->bev);
    free(c);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l;
    (void)salen;
    struct e2b_http_server *s = arg;
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    struct conn *c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        free(c);
        return;
    }
    bufferevent_set_max_single_read(c->bev, 256 * 1024);
    bufferevent_set_max_single_write(c->bev, 1024 * 1024);
    bufferevent_setcb(c->bev, conn_readcb, conn_writecb, conn_eventcb, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, DRAIN_MARK, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
}

struct e2b_http_server *e2b_http_server_new(struct event_base *base, e2b_http_handler h, void *arg)
{
    struct e2b_http_server *s = xcalloc(1, sizeof(*s));
    strbuf_init(&s->hdrs);
    s->base = base;
    s->handler = h;
    s->arg = arg;
    return s;
}

void e2b_http_server_free(struct e2b_http_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nls; i++)
        evconnlistener_free(s->ls[i]);
    while (s->conns)
        conn_free(s->conns);
    if (s->resume_ev)
        event_free(s->resume_ev);
    strbuf_release(&s->hdrs);
    free(s);
}

size_t e2b_http_nconns(const struct e2b_http_server *s) { return s->nconns; }

void e2b_http_drop_unix_conns(struct e2b_http_server *s)
{
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (getsockname(bufferevent_getfd(c->bev), (struct sockaddr *)&ss, &len) == 0 &&
            ss.ss_family == AF_UNIX && !c->dead)
            conn_eventcb(c->bev, BEV_EVENT_EOF, c); /* as if the client went */
    }
}

struct event_base *e2b_http_event_base(const struct e2b_http_req *r) { return r->c->srv->base; }

int e2b_http_server_add_header(struct e2b_http_server *s, const char *name, const char *value)
{
    if (!e2b_http_header_valid(name, value))
        return -1;
    strbuf_addf(&s->hdrs, "%s: %s\r\n", name, value);
    return 0;
}

static void resume_listeners(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct e2b_http_server *s = arg;
    for (size_t i = 0; i < s->nls; i++)
        evconnlistener_enable(s->ls[i]);
}

/* Out of descriptors: stop accepting for a moment instead of spinning. */
static void accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct e2b_http_server *s = arg;
    int e = EVUTIL_SOCKET_ERROR();
    if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM)
        return;
    for (size_t i = 0; i < s->nls; i++)
        evconnlistener_disable(s->ls[i]);
    if (!s->resume_ev)
        s->resume_ev = evtimer_new(s->base, resume_listeners, s);
    struct timeval tv = {0, 100 * 1000};
    event_add(s->resume_ev, &tv);
}

static int add_listener(struct e2b_http_server *s, int fd, struct e2b_error **err)
{
    if (s->nls == ARRAY_SIZE(s->ls)) {
        close(fd);
        return e2b_error_set(err, E2B_ERR_USAGE, "too many listeners");
    }
    evutil_make_socket_nonblocking(fd);
    struct evconnlistener *l = evconnlistener_new(s->base, accept_cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    if (!l) {
        close(fd);
        return e2b_error_set(err, E2B_ERR_GENERIC, "cannot listen");
    }
    evconnlistener_set_error_cb(l, accept_error);
    s->ls[s->nls++] = l;
    return 0;
}

int e2b_http_listen_tcp(struct e2b_http_server *s, const char *addr, int port, struct e2b_error **err)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    const char *a = addr && *addr ? addr : "0.0.0.0";
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, a, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        sl = sizeof(*in4);
    } else if (inet_pton(AF_INET6, a, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*in6);
    } else {
        return e2b_error_set(err, E2B_ERR_USAGE, "bad listen address '%s'", a);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot create socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
        int e = errno;
        close(fd);
        return e2b_error_sys(err, e, "cannot listen on %s:%d", a, port);
    }
    return add_listener(s, fd, err);
}

int e2b_http_listen_fd(struct e2b_http_server *s, int fd, struct e2b_error **err)
{
    int on = 0;
    socklen_t len = sizeof(on);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0 || !on)
        return e2b_error_set(err, E2B_ERR_USAGE, "fd %d is not a listening socket", fd);
    return add_listener(s, fd, err);
}

int e2b_http_listen_unix(struct e2b_http_server *s, const char *path, struct e2b_error **err)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(un.sun_path))
        return e2b_error_set(err, E2B_ERR_USAGE, "unix socket path too long: '%s'", path);
    strcpy(un.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot create socket");
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    if (bind(fd, (struct sockaddr *)&un, sizeof(un)) < 0 || listen(fd, 128) < 0) {
        int e = errno;
        close(fd);
        return e2b_error_sys(err, e, "cannot listen on '%s'", path);
    }
    return add_listener(s, fd, err);
}
