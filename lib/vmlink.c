/* vmlink.c - see vmlink.h */
#include "vmlink.h"
#include "strbuf.h"

#include <fcntl.h>
#include <sys/socket.h>

/* The channel's queue: while it holds more, no stream is read. */
#define OUT_MAX (256 * 1024)
/* Credit goes back once this much was written out (or all of it). */
#define CREDIT_STEP (E2B_VMLINK_WINDOW / 4)

/* A byte queue: data at buf + off, len bytes. */
struct bq {
    char *buf;
    size_t off, len, alloc;
};

static void bq_reserve(struct bq *q, size_t n)
{
    if (q->off && q->off + q->len + n > q->alloc) {
        memmove(q->buf, q->buf + q->off, q->len);
        q->off = 0;
    }
    if (q->len + n > q->alloc) {
        size_t a = q->alloc ? q->alloc : 4096;
        while (a < q->len + n)
            a *= 2;
        q->buf = xrealloc(q->buf, a);
        q->alloc = a;
    }
}

static char *bq_head(const struct bq *q) { return q->buf + q->off; }

static char *bq_tail(const struct bq *q) { return q->buf + q->off + q->len; }

static void bq_add(struct bq *q, const void *data, size_t n)
{
    bq_reserve(q, n);
    if (n)
        memcpy(bq_tail(q), data, n);
    q->len += n;
}

static void bq_consume(struct bq *q, size_t n)
{
    q->off += n;
    q->len -= n;
    if (q->len == 0) {
        q->off = 0;
        if (q->alloc > 2 * E2B_VMLINK_MAX_PAYLOAD) { /* an idle stream keeps little */
            free(q->buf);
            *q = (struct bq){ 0 };
        }
    }
}

static void bq_free(struct bq *q)
{
    free(q->buf);
    *q = (struct bq){ 0 };
}

static void put32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24), p[1] = (char)(v >> 16), p[2] = (char)(v >> 8), p[3] = (char)v;
}

static uint32_t get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static void put_header(char *h, int type, int flags, uint32_t stream, uint32_t len)
{
    h[0] = (char)type;
    h[1] = (char)flags;
    h[2] = h[3] = 0;
    put32(h + 4, stream);
    put32(h + 8, len);
}

struct stream {
    uint32_t id;
    uint32_t port; /* host: what it was opened to */
    int fd;
    bool opening;  /* host: OPEN sent, no answer yet (DATA may follow it at once) */
    bool rd_eof;   /* its socket ended: FIN sent */
    bool peer_fin; /* FIN came: shut the socket's writing once out is empty */
    bool wr_shut;
    bool dead;         /* freed at the end of the turn */
    uint32_t credit;   /* bytes we may still send */
    uint32_t allowed;  /* bytes the peer may still send */
    uint32_t consumed; /* written to the socket, not credited back yet */
    size_t uncounted;  /* of out: the greeting, which no credit paid for */
    struct bq out;     /* from the peer, for the socket */
    char *greeting;
};

struct e2b_vmlink {
    int fd;
    const struct e2b_vmlink_ops *ops;
    void *ud;
    struct bq in, out;
    struct strbuf msg; /* a stream-0 message coming in pieces */
    int msg_type;
    struct stream **st; /* by id, ascending */
    size_t nst, ast;
    uint32_t next_id; /* host: the last stream opened; guest: the last OPEN taken */
    struct pollfd *pfd;
    size_t apfd;
};

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

struct e2b_vmlink *e2b_vmlink_new(int fd, const struct e2b_vmlink_ops *ops, void *ud)
{
    struct e2b_vmlink *l = xcalloc(1, sizeof(*l));
    l->fd = fd;
    l->ops = ops;
    l->ud = ud;
    strbuf_init(&l->msg);
    set_nonblock(fd);
    return l;
}

static void stream_free(struct stream *s)
{
    if (s->fd >= 0)
        close(s->fd);
    bq_free(&s->out);
    free(s->greeting);
    free(s);
}

void e2b_vmlink_free(struct e2b_vmlink *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->nst; i++)
        stream_free(l->st[i]);
    free(l->st);
    if (l->fd >= 0)
        close(l->fd);
    bq_free(&l->in);
    bq_free(&l->out);
    strbuf_release(&l->msg);
    free(l->pfd);
    free(l);
}

static void queue_frame(struct e2b_vmlink *l, int type, int flags, uint32_t stream, const void *p,
                        size_t len)
{
    bq_reserve(&l->out, E2B_VMLINK_HEADER + len);
    put_header(bq_tail(&l->out), type, flags, stream, (uint32_t)len);
    l->out.len += E2B_VMLINK_HEADER;
    bq_add(&l->out, p, len);
}

static void queue_u32(struct e2b_vmlink *l, int type, uint32_t stream, uint32_t v)
{
    char b[4];
    put32(b, v);
    queue_frame(l, type, 0, stream, b, 4);
}

void e2b_vmlink_send(struct e2b_vmlink *l, int type, const void *payload, size_t len)
{
    const char *p = payload;
    do {
        size_t n = len > E2B_VMLINK_MAX_PAYLOAD ? E2B_VMLINK_MAX_PAYLOAD : len;
        queue_frame(l, type, n < len ? E2B_VMLINK_F_MORE : 0, 0, p, n);
        p += n;
        len -= n;
    } while (len);
}

/* ---- streams ------------------------------------------------------------- */

static struct stream *find(const struct e2b_vmlink *l, uint32_t id)
{
    size_t lo = 0, hi = l->nst;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->st[mid]->id == id)
            return l->st[mid];
        if (l->st[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static struct stream *add_stream(struct e2b_vmlink *l, uint32_t id, int fd)
{
    struct stream *s = xcalloc(1, sizeof(*s));
    s->id = id;
    s->fd = fd;
    s->credit = s->allowed = E2B_VMLINK_WINDOW;
    set_nonblock(fd);
    if (l->nst == l->ast) {
        l->ast = l->ast ? 2 * l->ast : 16;
        l->st = xrealloc(l->st, l->ast * sizeof(*l->st));
    }
    l->st[l->nst++] = s; /* ids only grow: the array stays sorted */
    return s;
}

/* The stream ends here; the peer hears of it by RST when `tell`. */
static void reset(struct e2b_vmlink *l, struct stream *s, bool tell)
{
    if (s->dead)
        return;
    if (tell)
        queue_frame(l, E2B_VMLINK_RST, 0, s->id, NULL, 0);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->dead = true;
    bq_free(&s->out);
}

/* Both ways closed and everything written: over, without a word. */
static void check_done(struct stream *s)
{
    if (!s->dead && s->rd_eof && s->peer_fin && s->wr_shut && s->out.len == 0) {
        close(s->fd);
        s->fd = -1;
        s->dead = true;
    }
}

static ssize_t sock_write(int fd, const void *p, size_t n)
{
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == ENOTSOCK)
        w = write(fd, p, n);
    return w;
}

/* Write what the peer sent to the socket, and credit back what it took. */
static void stream_write(struct e2b_vmlink *l, struct stream *s)
{
    while (!s->dead && s->out.len) {
        ssize_t n = sock_write(s->fd, bq_head(&s->out), s->out.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) { /* its reader is gone: the peer should stop too */
            reset(l, s, true);
            return;
        }
        size_t paid = (size_t)n;
        if (s->uncounted) {
            size_t g = s->uncounted < paid ? s->uncounted : paid;
            s->uncounted -= g;
            paid -= g;
        }
        s->consumed += (uint32_t)paid;
        bq_consume(&s->out, (size_t)n);
    }
    if (s->dead)
        return;
    if (s->consumed && (s->consumed >= CREDIT_STEP || s->out.len == 0)) {
        queue_u32(l, E2B_VMLINK_CREDIT, s->id, s->consumed);
        s->allowed += s->consumed;
        s->consumed = 0;
    }
    if (s->out.len == 0 && s->peer_fin && !s->wr_shut) {
        shutdown(s->fd, SHUT_WR);
        s->wr_shut = true;
    }
    check_done(s);
}

/* Read what the socket has, as far as the credit goes, into a DATA frame. */
static void stream_read(struct e2b_vmlink *l, struct stream *s)
{
    size_t want = s->credit < E2B_VMLINK_MAX_PAYLOAD ? s->credit : E2B_VMLINK_MAX_PAYLOAD;
    if (s->dead || s->rd_eof || want == 0)
        return;
    bq_reserve(&l->out, E2B_VMLINK_HEADER + want);
    char *h = bq_tail(&l->out);
    ssize_t n;
    while ((n = recv(s->fd, h + E2B_VMLINK_HEADER, want, MSG_DONTWAIT)) < 0 && errno == EINTR)
        ;
    if (n < 0 && errno == ENOTSOCK)
        n = read(s->fd, h + E2B_VMLINK_HEADER, want);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n < 0) {
        reset(l, s, true);
        return;
    }
    if (n == 0) {
        queue_frame(l, E2B_VMLINK_FIN, 0, s->id, NULL, 0);
        s->rd_eof = true;
        check_done(s);
        return;
    }
    put_header(h, E2B_VMLINK_DATA, 0, s->id, (uint32_t)n);
    l->out.len += E2B_VMLINK_HEADER + (size_t)n;
    s->credit -= (uint32_t)n;
}

uint32_t e2b_vmlink_open(struct e2b_vmlink *l, uint32_t port, int fd, const char *greeting)
{
    struct stream *s = add_stream(l, ++l->next_id, fd);
    s->opening = true;
    s->port = port;
    s->greeting = greeting ? xstrdup(greeting) : NULL;
    queue_u32(l, E2B_VMLINK_OPEN, s->id, port);
    return s->id;
}

/* ---- frames in ------------------------------------------------------------ */

static int protocol_error(struct e2b_error **err, const char *what, int type, uint32_t stream)
{
    return e2b_error_set(err, E2B_ERR_INVALID, "link protocol error: %s (frame type %d, stream %u)",
                         what, type, stream);
}

static void on_open(struct e2b_vmlink *l, uint32_t id, uint32_t port)
{
    int fd = l->ops->open(l->ud, port);
    if (fd < 0) {
        char b[260];
        int e = -fd;
        put32(b, (uint32_t)e);
        int n = snprintf(b + 4, sizeof(b) - 4, "%s", strerror(e));
        queue_frame(l, E2B_VMLINK_OPEN_FAILED, 0, id, b, 4 + (size_t)(n > 0 ? n : 0));
        return;
    }
    add_stream(l, id, fd);
    queue_frame(l, E2B_VMLINK_OPENED, 0, id, NULL, 0);
}

static int on_frame(struct e2b_vmlink *l, int type, int flags, uint32_t id, const char *p,
                    uint32_t len, struct e2b_error **err)
{
    if (id == 0) {
        if ((type < E2B_VMLINK_HELLO || type > E2B_VMLINK_LOG) &&
            (type < E2B_VMLINK_SUSPEND || type > E2B_VMLINK_RESUME))
            return protocol_error(err, "not a message of stream 0", type, id);
        if (l->msg.len && l->msg_type != type)
            return protocol_error(err, "a message's pieces of different types", type, id);
        if (l->msg.len + len > E2B_VMLINK_MAX_MESSAGE)
            return protocol_error(err, "a message over 4 MiB", type, id);
        l->msg_type = type;
        strbuf_add(&l->msg, p, len);
        if (flags & E2B_VMLINK_F_MORE)
            return 0;
        _cleanup_free_ char *m = NULL;
        size_t mlen = 0;
        m = strbuf_detach(&l->msg, &mlen);
        return l->ops && l->ops->message ? l->ops->message(l->ud, type, m, mlen, err) : 0;
    }
    if (type == E2B_VMLINK_OPEN) {
        /* only the guest takes OPENs; ids only grow, so a new stream goes
         * after those being polled */
        if (!l->ops || !l->ops->open)
            return protocol_error(err, "an OPEN to the host", type, id);
        if (len != 4 || id <= l->next_id)
            return protocol_error(err, "a bad OPEN", type, id);
        l->next_id = id;
        on_open(l, id, get32(p));
        return 0;
    }
    if (type < E2B_VMLINK_OPENED || type > E2B_VMLINK_CREDIT)
        return protocol_error(err, "an unknown frame type", type, id);
    struct stream *s = find(l, id);
    if (!s || s->dead)
        return 0; /* it ended here already: the peer learns by our RST or FIN */
    switch (type) {
    case E2B_VMLINK_OPENED:
        if (!s->opening)
            return protocol_error(err, "OPENED twice", type, id);
        s->opening = false;
        if (s->greeting) {
            s->uncounted = strlen(s->greeting);
            bq_add(&s->out, s->greeting, s->uncounted);
            stream_write(l, s);
        }
        break;
    case E2B_VMLINK_OPEN_FAILED: {
        if (!s->opening)
            return protocol_error(err, "OPEN_FAILED for an open stream", type, id);
        int e = len >= 4 ? (int)get32(p) : EIO;
        _cleanup_free_ char *why = len > 4 ? xstrndup(p + 4, len - 4) : xstrdup(strerror(e));
        int fd = TAKE_FD(s->fd);
        reset(l, s, false);
        if (l->ops && l->ops->open_failed)
            l->ops->open_failed(l->ud, fd, s->port, e, why);
        else
            close(fd);
        break;
    }
    case E2B_VMLINK_DATA:
        if (s->opening || s->peer_fin || len > s->allowed) { /* it broke the stream's rules */
            reset(l, s, true);
            break;
        }
        s->allowed -= len;
        bq_add(&s->out, p, len);
        stream_write(l, s);
        break;
    case E2B_VMLINK_FIN:
        s->peer_fin = true;
        stream_write(l, s);
        break;
    case E2B_VMLINK_RST:
        reset(l, s, false);
        break;
    case E2B_VMLINK_CREDIT: {
        uint32_t v = len == 4 ? get32(p) : 0;
        if (len != 4 || (uint64_t)s->credit + v > E2B_VMLINK_WINDOW) {
            reset(l, s, true);
            break;
        }
        s->credit += v;
        break;
    }
    }
    return 0;
}

/* Read the channel and act on every whole frame. */
static int read_channel(struct e2b_vmlink *l, struct e2b_error **err)
{
    for (int round = 0; round < 64; round++) { /* a virtio port gives a page a read */
        bq_reserve(&l->in, E2B_VMLINK_HEADER + E2B_VMLINK_MAX_PAYLOAD);
        ssize_t n = read(l->fd, bq_tail(&l->in), l->in.alloc - l->in.off - l->in.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0)
            return e2b_error_sys(err, errno, "cannot read the link");
        if (n == 0)
            return e2b_error_set(err, E2B_ERR_GENERIC, "the link closed");
        l->in.len += (size_t)n;
        while (l->in.len >= E2B_VMLINK_HEADER) {
            const char *h = bq_head(&l->in);
            uint32_t len = get32(h + 8);
            if (len > E2B_VMLINK_MAX_PAYLOAD)
                return protocol_error(err, "a frame over 64 KiB", h[0], get32(h + 4));
            if (l->in.len < E2B_VMLINK_HEADER + len)
                break;
            if (on_frame(l, (unsigned char)h[0], (unsigned char)h[1], get32(h + 4),
                         h + E2B_VMLINK_HEADER, len, err) < 0)
                return -1;
            bq_consume(&l->in, E2B_VMLINK_HEADER + len);
        }
    }
    return 0;
}

static int write_channel(struct e2b_vmlink *l, struct e2b_error **err)
{
    while (l->out.len) {
        ssize_t n = write(l->fd, bq_head(&l->out), l->out.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return e2b_error_sys(err, n < 0 ? errno : EPIPE, "cannot write to the link");
        bq_consume(&l->out, (size_t)n);
    }
    return 0;
}

static void sweep(struct e2b_vmlink *l)
{
    size_t w = 0;
    for (size_t i = 0; i < l->nst; i++) {
        if (l->st[i]->dead)
            stream_free(l->st[i]);
        else
            l->st[w++] = l->st[i];
    }
    l->nst = w;
}

int e2b_vmlink_poll(struct e2b_vmlink *l, struct pollfd *extra, size_t n_extra, int timeout_ms,
                    struct e2b_error **err)
{
    size_t nst = l->nst, n = n_extra + 1 + nst;
    if (n > l->apfd) {
        l->apfd = n + 16;
        l->pfd = xrealloc(l->pfd, l->apfd * sizeof(*l->pfd));
    }
    struct pollfd *p = l->pfd;
    if (n_extra)
        memcpy(p, extra, n_extra * sizeof(*p));
    p[n_extra] = (struct pollfd){ .fd = l->fd, .events = POLLIN | (l->out.len ? POLLOUT : 0) };
    bool room = l->out.len < OUT_MAX;
    for (size_t i = 0; i < nst; i++) {
        struct stream *s = l->st[i];
        short ev = 0;
        /* an opening stream sends at once: the peer takes OPEN before what
         * follows it, and drops it if the OPEN failed */
        if (room && !s->rd_eof && s->credit > 0)
            ev |= POLLIN;
        if (s->out.len || (s->peer_fin && !s->wr_shut))
            ev |= POLLOUT;
        /* a stream waiting for credit is not polled: its socket's end would wake us for nothing */
        p[n_extra + 1 + i] = (struct pollfd){ .fd = ev && !s->dead ? s->fd : -1, .events = ev };
    }
    int r = poll(p, n, timeout_ms);
    if (r < 0 && errno != EINTR)
        return e2b_error_sys(err, errno, "cannot poll the link");
    if (r < 0) {
        for (size_t i = 0; i < n_extra; i++)
            extra[i].revents = 0;
        return 0;
    }
    for (size_t i = 0; i < n_extra; i++)
        extra[i].revents = p[i].revents;
    if (p[n_extra].revents & (POLLIN | POLLHUP | POLLERR))
        if (read_channel(l, err) < 0)
            return -1;
    /* streams added meanwhile (OPEN) come after the polled ones */
    for (size_t i = 0; i < nst; i++) {
        struct stream *s = l->st[i];
        short re = p[n_extra + 1 + i].revents;
        if (!re || s->dead)
            continue;
        if (re & (POLLOUT | POLLERR | POLLHUP))
            stream_write(l, s);
        if ((re & (POLLIN | POLLERR | POLLHUP)) && (p[n_extra + 1 + i].events & POLLIN))
            stream_read(l, s);
    }
    sweep(l);
    return write_channel(l, err);
}

int e2b_vmlink_flush(struct e2b_vmlink *l, int timeout_ms)
{
    int64_t deadline = e2b_now_ms() + timeout_ms;
    while (l->out.len) {
        if (write_channel(l, NULL) < 0)
            return -1;
        if (!l->out.len)
            break;
        int64_t left = deadline - e2b_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = { .fd = l->fd, .events = POLLOUT };
        poll(&p, 1, (int)left);
    }
    return 0;
}

void e2b_vmlink_reset(struct e2b_vmlink *l)
{
    for (size_t i = 0; i < l->nst; i++)
        reset(l, l->st[i], false);
    l->next_id = 0;
}

size_t e2b_vmlink_backlog(const struct e2b_vmlink *l) { return l->out.len; }

size_t e2b_vmlink_streams(const struct e2b_vmlink *l)
{
    size_t n = 0;
    for (size_t i = 0; i < l->nst; i++)
        n += !l->st[i]->dead;
    return n;
}

size_t e2b_vmlink_buffered(const struct e2b_vmlink *l)
{
    size_t n = 0;
    for (size_t i = 0; i < l->nst; i++)
        n += l->st[i]->out.len;
    return n;
}
