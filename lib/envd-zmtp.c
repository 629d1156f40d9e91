/* envd-zmtp.c - see envd-zmtp.h (ZMTP 3.0: rfc.zeromq.org/spec/23). */
#include "envd-zmtp.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <strings.h>
#include <sys/un.h>

#define FLAG_MORE    0x01
#define FLAG_LONG    0x02
#define FLAG_COMMAND 0x04

enum state { ST_IDLE, ST_CONNECTING, ST_GREETING, ST_FRAMES };

struct e2b_zmtp {
    struct event_base *base;
    enum e2b_zmtp_type type;
    char *identity;
    e2b_zmtp_msg_fn on_msg;
    void *arg;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct bufferevent *bev;
    struct event *retry;
    int retry_ms;
    enum state st;
    bool peer_ready;
    struct evbuffer *pending; /* encoded messages waiting for the handshake */
    /* the message being received */
    struct strbuf msg; /* frame bodies back to back */
    size_t *lens;      /* their lengths */
    size_t nframes, cap;
};

static const char *type_name(enum e2b_zmtp_type t)
{
    return t == E2B_ZMTP_DEALER ? "DEALER" : t == E2B_ZMTP_SUB ? "SUB" : "REQ";
}

/* The socket types a peer of ours may have. */
static bool peer_type_ok(enum e2b_zmtp_type t, const char *peer, size_t n)
{
    const char *want = t == E2B_ZMTP_DEALER ? "ROUTER" : t == E2B_ZMTP_SUB ? "PUB" : "REP";
    if (n == strlen(want) && memcmp(peer, want, n) == 0)
        return true;
    /* a DEALER may talk to a DEALER, a SUB to an XPUB, a REQ to a ROUTER */
    const char *also = t == E2B_ZMTP_DEALER ? "DEALER" : t == E2B_ZMTP_SUB ? "XPUB" : "ROUTER";
    return n == strlen(also) && memcmp(peer, also, n) == 0;
}

static void greeting(uint8_t out[64])
{
    memset(out, 0, 64);
    out[0] = 0xff;
    out[9] = 0x7f;
    out[10] = 3; /* ZMTP 3.0: subscriptions travel as messages */
    out[11] = 0;
    memcpy(out + 12, "NULL", 4);
    /* out[32] = 0: as-server false */
}

static size_t frame_header(uint8_t out[9], size_t len, bool more, bool command)
{
    uint8_t flags = (uint8_t)((more ? FLAG_MORE : 0) | (command ? FLAG_COMMAND : 0));
    if (len <= 255) {
        out[0] = flags;
        out[1] = (uint8_t)len;
        return 2;
    }
    out[0] = flags | FLAG_LONG;
    for (int i = 0; i < 8; i++)
        out[1 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 9;
}

static void put_frame(struct evbuffer *out, const void *data, size_t len, bool more, bool command)
{
    uint8_t h[9];
    evbuffer_add(out, h, frame_header(h, len, more, command));
    if (len)
        evbuffer_add(out, data, len);
}

static void put_property(struct strbuf *sb, const char *name, const char *value, size_t vlen)
{
    strbuf_addch(sb, (char)strlen(name));
    strbuf_addstr(sb, name);
    uint8_t l[4] = { (uint8_t)(vlen >> 24), (uint8_t)(vlen >> 16), (uint8_t)(vlen >> 8),
                     (uint8_t)vlen };
    strbuf_add(sb, l, 4);
    strbuf_add(sb, value, vlen);
}

static void reset_msg(struct e2b_zmtp *z)
{
    strbuf_reset(&z->msg);
    z->nframes = 0;
}

static void schedule_retry(struct e2b_zmtp *z)
{
    if (z->bev) {
        bufferevent_free(z->bev);
        z->bev = NULL;
    }
    z->st = ST_IDLE;
    z->peer_ready = false;
    reset_msg(z);
    struct timeval tv = { 0, z->retry_ms * 1000 };
    event_add(z->retry, &tv);
    z->retry_ms = z->retry_ms < 100 ? z->retry_ms * 2 : 200;
}

/* A command frame from the peer: READY ends the handshake, PING wants a
 * PONG with its context, ERROR drops the connection. Returns <0 to drop. */
static int on_command(struct e2b_zmtp *z, const uint8_t *d, size_t n)
{
    if (n < 1 || (size_t)d[0] + 1 > n)
        return -1;
    size_t nl = d[0];
    const char *name = (const char *)d + 1;
    const uint8_t *p = d + 1 + nl, *end = d + n;
    if (nl == 5 && memcmp(name, "READY", 5) == 0) {
        bool type_ok = false;
        while (p < end) {
            size_t kl = *p++;
            if ((size_t)(end - p) < kl + 4)
                return -1;
            const char *k = (const char *)p;
            p += kl;
            size_t vl = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
            p += 4;
            if ((size_t)(end - p) < vl)
                return -1;
            if (kl == 11 && strncasecmp(k, "Socket-Type", 11) == 0)
                type_ok = peer_type_ok(z->type, (const char *)p, vl);
            p += vl;
        }
        if (!type_ok)
            return -1;
        z->peer_ready = true;
        z->retry_ms = 10;
        struct evbuffer *out = bufferevent_get_output(z->bev);
        /* nothing but the handshake before the peer's READY: libzmq drops a
         * connection whose first message comes before its handshake ended */
        if (z->type == E2B_ZMTP_SUB) { /* subscribe to every topic */
            uint8_t sub = 1;
            put_frame(out, &sub, 1, false, false);
        }
        evbuffer_add_buffer(out, z->pending);
        return 0;
    }
    if (nl == 4 && memcmp(name, "PING", 4) == 0) {
        /* PING: 2-byte TTL, then up to 16 bytes of context echoed in PONG */
        size_t rest = (size_t)(end - p);
        const uint8_t *ctx = rest > 2 ? p + 2 : p;
        size_t cl = rest > 2 ? rest - 2 : 0;
        if (cl > 16)
            cl = 16;
        uint8_t body[1 + 4 + 16];
        body[0] = 4;
        memcpy(body + 1, "PONG", 4);
        memcpy(body + 5, ctx, cl);
        put_frame(bufferevent_get_output(z->bev), body, 5 + cl, false, true);
        return 0;
    }
    if (nl == 5 && memcmp(name, "ERROR", 5) == 0)
        return -1;
    return 0; /* PONG, SUBSCRIBE ... mean nothing to a client */
}

static void deliver(struct e2b_zmtp *z)
{
    struct e2b_zmtp_frame stack[16];
    struct e2b_zmtp_frame *f =
        z->nframes <= ARRAY_SIZE(stack) ? stack : xcalloc(z->nframes, sizeof(*f));
    size_t off = 0, skip = 0;
    for (size_t i = 0; i < z->nframes; i++) {
        f[i] = (struct e2b_zmtp_frame){ (const uint8_t *)z->msg.buf + off, z->lens[i] };
        off += z->lens[i];
    }
    /* REQ: the reply's envelope ends with an empty delimiter frame */
    if (z->type == E2B_ZMTP_REQ) {
        while (skip < z->nframes && f[skip].len > 0)
            skip++;
        skip = skip < z->nframes ? skip + 1 : 0;
    }
    size_t n = z->nframes - skip;
    struct e2b_zmtp_frame *frames = f + skip;
    z->on_msg(z, frames, n, z->arg);
    reset_msg(z);
    if (f != stack)
        free(f);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct e2b_zmtp *z = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (z->st == ST_GREETING) {
            if (avail < 64)
                return;
            uint8_t g[64];
            evbuffer_remove(in, g, 64);
            if (g[0] != 0xff || g[9] != 0x7f || g[10] < 3 || memcmp(g + 12, "NULL", 5) != 0) {
                schedule_retry(z); /* not ZMTP 3 with the NULL mechanism */
                return;
            }
            z->st = ST_FRAMES;
            continue;
        }
        if (avail < 2)
            return;
        uint8_t h[9];
        evbuffer_copyout(in, h, 2);
        size_t hl = (h[0] & FLAG_LONG) ? 9 : 2;
        if (avail < hl)
            return;
        uint64_t len = h[1];
        if (hl == 9) {
            evbuffer_copyout(in, h, 9);
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | h[1 + i];
        }
        if (len > E2B_ZMTP_MAX_MSG || z->msg.len + len > E2B_ZMTP_MAX_MSG) {
            schedule_retry(z);
            return;
        }
        if (avail < hl + len) {
            /* room for the whole frame in one read, not a byte at a time */
            bufferevent_setwatermark(bev, EV_READ, hl + (size_t)len, 0);
            return;
        }
        bufferevent_setwatermark(bev, EV_READ, 0, 0);
        evbuffer_drain(in, hl);
        if (h[0] & FLAG_COMMAND) {
            uint8_t *body = xmalloc(len ? len : 1);
            evbuffer_remove(in, body, len);
            int r = on_command(z, body, len);
            free(body);
            if (r < 0) {
                schedule_retry(z);
                return;
            }
            continue;
        }
        if (!z->peer_ready) { /* a message before READY */
            schedule_retry(z);
            return;
        }
        strbuf_grow(&z->msg, len);
        evbuffer_remove(in, z->msg.buf + z->msg.len, len);
        z->msg.len += len; /* strbuf_setlen only shortens */
        z->msg.buf[z->msg.len] = '\0';
        if (z->nframes == z->cap) {
            z->cap = z->cap ? z->cap * 2 : 16;
            z->lens = xrealloc(z->lens, z->cap * sizeof(*z->lens));
        }
        z->lens[z->nframes++] = len;
        if (!(h[0] & FLAG_MORE)) {
            deliver(z);
            if (!z->bev) /* the callback freed or reset us */
                return;
        }
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct e2b_zmtp *z = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        z->st = ST_GREETING;
        struct evbuffer *out = bufferevent_get_output(bev);
        uint8_t g[64];
        greeting(g);
        evbuffer_add(out, g, sizeof(g));
        /* READY right away: the NULL mechanism has nothing to wait for */
        _cleanup_strbuf_ struct strbuf rd = STRBUF_INIT;
        strbuf_addch(&rd, 5);
        strbuf_addstr(&rd, "READY");
        const char *t = type_name(z->type);
        put_property(&rd, "Socket-Type", t, strlen(t));
        if (z->type != E2B_ZMTP_SUB)
            put_property(&rd, "Identity", z->identity ? z->identity : "",
                         z->identity ? strlen(z->identity) : 0);
        put_frame(out, rd.buf, rd.len, false, true);
        return;
    }
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))
        schedule_retry(z);
}

static void start_connect(struct e2b_zmtp *z)
{
    z->bev = bufferevent_socket_new(z->base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(z->bev, on_read, NULL, on_event, z);
    bufferevent_enable(z->bev, EV_READ | EV_WRITE);
    z->st = ST_CONNECTING;
    if (bufferevent_socket_connect(z->bev, (struct sockaddr *)&z->addr, (int)z->addrlen) < 0)
        schedule_retry(z);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_connect(arg);
}

struct e2b_zmtp *e2b_zmtp_new(struct event_base *base, enum e2b_zmtp_type type,
                              const char *identity, e2b_zmtp_msg_fn on_msg, void *arg)
{
    struct e2b_zmtp *z = xcalloc(1, sizeof(*z));
    z->base = base;
    z->type = type;
    z->identity = identity ? xstrdup(identity) : NULL;
    z->on_msg = on_msg;
    z->arg = arg;
    z->pending = evbuffer_new();
    z->retry = evtimer_new(base, on_retry, z);
    z->retry_ms = 10;
    strbuf_init(&z->msg);
    return z;
}

int e2b_zmtp_connect(struct e2b_zmtp *z, const char *endpoint, struct e2b_error **err)
{
    memset(&z->addr, 0, sizeof(z->addr));
    if (e2b_str_has_prefix(endpoint, "tcp://")) {
        const char *hp = endpoint + 6, *colon = strrchr(hp, ':');
        if (!colon)
            return e2b_error_set(err, E2B_ERR_INVALID, "zmq endpoint '%s': no port", endpoint);
        _cleanup_free_ char *host = xstrndup(hp, (size_t)(colon - hp));
        char *e;
        long port = strtol(colon + 1, &e, 10);
        struct sockaddr_in *in = (struct sockaddr_in *)&z->addr;
        if (*e || port <= 0 || port > 65535 || inet_pton(AF_INET, host, &in->sin_addr) != 1)
            return e2b_error_set(err, E2B_ERR_INVALID, "zmq endpoint '%s': not IPv4:port",
                                 endpoint);
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        z->addrlen = sizeof(*in);
    } else if (e2b_str_has_prefix(endpoint, "ipc://")) {
        struct sockaddr_un *un = (struct sockaddr_un *)&z->addr;
        if (strlen(endpoint + 6) >= sizeof(un->sun_path))
            return e2b_error_set(err, E2B_ERR_INVALID, "zmq endpoint '%s': path too long",
                                 endpoint);
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, endpoint + 6);
        z->addrlen = sizeof(*un);
    } else {
        return e2b_error_set(err, E2B_ERR_INVALID, "zmq endpoint '%s': want tcp:// or ipc://",
                             endpoint);
    }
    start_connect(z);
    return 0;
}

void e2b_zmtp_send(struct e2b_zmtp *z, const struct iovec *frames, size_t n)
{
    struct evbuffer *out = z->peer_ready && z->bev ? bufferevent_get_output(z->bev) : z->pending;
    if (z->type == E2B_ZMTP_REQ)
        put_frame(out, NULL, 0, n > 0, false);
    for (size_t i = 0; i < n; i++)
        put_frame(out, frames[i].iov_base, frames[i].iov_len, i + 1 < n, false);
}

bool e2b_zmtp_ready(const struct e2b_zmtp *z) { return z->peer_ready && z->bev; }

void e2b_zmtp_free(struct e2b_zmtp *z)
{
    if (!z)
        return;
    if (z->bev)
        bufferevent_free(z->bev);
    event_free(z->retry);
    evbuffer_free(z->pending);
    strbuf_release(&z->msg);
    free(z->lens);
    free(z->identity);
    free(z);
}
