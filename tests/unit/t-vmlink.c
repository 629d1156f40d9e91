/* t-vmlink.c - the VM link's framing, streams and flow control, with both
 * ends in this process over a socket pair (the channel) and socket pairs
 * for the connections at each end. */
#include "tap.h"
#include "vmlink.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

struct side {
    struct e2b_vmlink *l;
    int last_type;
    char *last_msg;
    size_t last_len;
    int n_msgs;
    /* guest: what OPEN does */
    int open_errno; /* non-zero: refuse with it */
    bool small;     /* the accepted connections take little */
    uint32_t last_port;
    int server[8]; /* the test's ends of the accepted connections */
    int n_server;
    /* host: a refused open */
    int failed_fd, failed_errno;
    char *failed_why;
};

static int on_message(void *ud, int type, const char *p, size_t len, struct e2b_error **err)
{
    struct side *s = ud;
    free(s->last_msg);
    s->last_msg = xmalloc(len + 1);
    memcpy(s->last_msg, p, len);
    s->last_msg[len] = '\0';
    s->last_len = len;
    s->last_type = type;
    s->n_msgs++;
    return 0;
}

static int on_open(void *ud, uint32_t port)
{
    struct side *s = ud;
    s->last_port = port;
    if (s->open_errno)
        return -s->open_errno;
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        return -errno;
    fcntl(sp[1], F_SETFL, O_NONBLOCK);
    if (s->small) {
        int sz = 4096;
        setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        setsockopt(sp[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    s->server[s->n_server++] = sp[1];
    return sp[0];
}

static void on_open_failed(void *ud, int fd, uint32_t port, int errnum, const char *why)
{
    struct side *s = ud;
    s->failed_fd = fd;
    s->failed_errno = errnum;
    free(s->failed_why);
    s->failed_why = xstrdup(why);
}

static const struct e2b_vmlink_ops ops = {
    .message = on_message,
    .open = on_open,
    .open_failed = on_open_failed,
};

static struct side host, guest;

/* A few turns of both ends; false once either link ended. */
static bool pump(int turns)
{
    for (int i = 0; i < turns; i++) {
        struct e2b_error *err = NULL;
        if (e2b_vmlink_poll(host.l, NULL, 0, 0, &err) < 0 ||
            e2b_vmlink_poll(guest.l, NULL, 0, 0, &err) < 0) {
            diag("link ended: %s", err->msg);
            e2b_error_free(err);
            return false;
        }
    }
    return true;
}

static void pair(int sp[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        abort();
    fcntl(sp[1], F_SETFL, O_NONBLOCK);
}

static void links(void)
{
    int ch[2];
    pair(ch);
    host = (struct side){ .failed_fd = -1 };
    guest = (struct side){ .failed_fd = -1 };
    host.l = e2b_vmlink_new(ch[0], &ops, &host);
    guest.l = e2b_vmlink_new(ch[1], &ops, &guest);
}

static void links_free(void)
{
    e2b_vmlink_free(host.l);
    e2b_vmlink_free(guest.l);
    for (int i = 0; i < guest.n_server; i++)
        close(guest.server[i]);
    free(host.last_msg), free(guest.last_msg), free(host.failed_why), free(guest.failed_why);
}

/* Read what is there (nonblocking) into buf; bytes read, -1 at EOF with nothing. */
static ssize_t drain(int fd, char *buf, size_t max)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, max - got);
        if (n > 0) {
            got += (size_t)n;
            if (got == max)
                return (ssize_t)got;
            continue;
        }
        if (n == 0 && got == 0)
            return -1;
        return (ssize_t)got;
    }
}

static void test_frame_layout(void)
{
    int ch[2];
    pair(ch);
    struct e2b_vmlink *l = e2b_vmlink_new(ch[0], &ops, &host);
    e2b_vmlink_send(l, E2B_VMLINK_HELLO, "{}", 2);
    ok(e2b_vmlink_flush(l, 1000) == 0, "a message goes out");
    unsigned char b[64];
    ssize_t n = read(ch[1], b, sizeof(b));
    is_int(n, 14, "one frame: a 12-byte header and the payload");
    ok(b[0] == E2B_VMLINK_HELLO && b[1] == 0 && b[2] == 0 && b[3] == 0, "type, flags, reserved");
    ok(b[4] == 0 && b[5] == 0 && b[6] == 0 && b[7] == 0, "stream 0");
    ok(b[8] == 0 && b[9] == 0 && b[10] == 0 && b[11] == 2 && !memcmp(b + 12, "{}", 2),
       "big-endian length, then the payload");
    e2b_vmlink_free(l);
    close(ch[1]);
}

static void test_messages(void)
{
    links();
    size_t big = 200 * 1024;
    char *cfg = xmalloc(big);
    for (size_t i = 0; i < big; i++)
        cfg[i] = (char)('a' + i % 26);
    e2b_vmlink_send(host.l, E2B_VMLINK_CONFIG, cfg, big);
    e2b_vmlink_send(guest.l, E2B_VMLINK_READY, "", 0);
    ok(pump(20), "messages move");
    ok(guest.n_msgs == 1 && guest.last_type == E2B_VMLINK_CONFIG && guest.last_len == big &&
           !memcmp(guest.last_msg, cfg, big),
       "a 200 KiB message arrives whole, once (in pieces of at most 64 KiB)");
    ok(host.n_msgs == 1 && host.last_type == E2B_VMLINK_READY && host.last_len == 0,
       "an empty message arrives");
    free(cfg);
    links_free();
}

static void test_stream(void)
{
    links();
    int cli[2];
    pair(cli);
    uint32_t id = e2b_vmlink_open(host.l, E2B_VMLINK_PORT_ENVD, cli[0], "ok\n");
    ok(id == 1, "the first stream is 1");
    ok(pump(10) && guest.n_server == 1 && guest.last_port == E2B_VMLINK_PORT_ENVD,
       "OPEN reaches the guest with its port");
    char buf[64] = { 0 };
    ok(drain(cli[1], buf, sizeof(buf)) == 3 && !memcmp(buf, "ok\n", 3), "the greeting comes first");
    ok(write(cli[1], "GET /health", 11) == 11 && pump(10), "the client writes");
    memset(buf, 0, sizeof(buf));
    ok(drain(guest.server[0], buf, sizeof(buf)) == 11 && STREQ(buf, "GET /health"),
       "the server reads it");
    ok(write(guest.server[0], "204", 3) == 3 && pump(10), "the server answers");
    memset(buf, 0, sizeof(buf));
    ok(drain(cli[1], buf, sizeof(buf)) == 3 && STREQ(buf, "204"), "the client reads the answer");
    shutdown(cli[1], SHUT_WR);
    ok(pump(10) && drain(guest.server[0], buf, sizeof(buf)) == -1,
       "the client's half close reaches the server as EOF");
    ok(write(guest.server[0], "more", 4) == 4 && pump(10) && drain(cli[1], buf, sizeof(buf)) == 4,
       "the other way still flows");
    close(guest.server[0]);
    guest.n_server = 0;
    ok(pump(10) && drain(cli[1], buf, sizeof(buf)) == -1, "the server's close reaches the client");
    is_int(e2b_vmlink_streams(host.l) + e2b_vmlink_streams(guest.l), 0,
           "both ends forget the stream");
    close(cli[1]);
    links_free();
}

/* SUSPEND, SUSPENDED and RESUME are stream-0 messages; a reset drops the
 * streams on that end and counts ids from 1 again. */
static void test_suspend(void)
{
    links();
    int cli[2];
    pair(cli);
    e2b_vmlink_open(host.l, E2B_VMLINK_PORT_ENVD, cli[0], NULL);
    ok(pump(10) && guest.n_server == 1, "a stream is open");
    e2b_vmlink_send(host.l, E2B_VMLINK_SUSPEND, "", 0);
    e2b_vmlink_reset(host.l);
    ok(pump(10) && guest.last_type == E2B_VMLINK_SUSPEND, "SUSPEND reaches the guest");
    e2b_vmlink_reset(guest.l);
    e2b_vmlink_send(guest.l, E2B_VMLINK_SUSPENDED, "", 0);
    ok(pump(10) && host.last_type == E2B_VMLINK_SUSPENDED, "SUSPENDED reaches the host");
    is_int(e2b_vmlink_streams(host.l) + e2b_vmlink_streams(guest.l), 0,
           "both ends dropped the stream");
    char buf[8];
    ok(drain(cli[1], buf, sizeof(buf)) == -1, "its client sees the end");
    e2b_vmlink_send(host.l, E2B_VMLINK_RESUME, "{}", 2);
    ok(pump(10) && guest.last_type == E2B_VMLINK_RESUME && guest.last_len == 2,
       "RESUME reaches the guest");
    int c2[2];
    pair(c2);
    ok(e2b_vmlink_open(host.l, E2B_VMLINK_PORT_ENVD, c2[0], NULL) == 1 && pump(10) &&
           guest.n_server == 2,
       "ids count from 1 again, and the guest takes them");
    close(cli[1]), close(c2[1]);
    links_free();
}

static void test_open_failed(void)
{
    links();
    guest.open_errno = ECONNREFUSED;
    int cli[2];
    pair(cli);
    e2b_vmlink_open(host.l, 8080, cli[0], "ok\n");
    ok(pump(10) && guest.last_port == 8080, "OPEN for port 8080");
    ok(host.failed_fd == cli[0] && host.failed_errno == ECONNREFUSED && host.failed_why &&
           strstr(host.failed_why, "refused"),
       "OPEN_FAILED hands the fd back with errno and reason");
    is_int(e2b_vmlink_streams(host.l), 0, "no stream is left");
    close(cli[0]), close(cli[1]);
    links_free();
}

/* One stream whose reader stops holds at most a window at the far end;
 * another stream meanwhile moves 4 MiB; then the first drains, whole. */
static void test_flow_control(void)
{
    links();
    int a[2], b[2];
    pair(a), pair(b);
    fcntl(a[1], F_SETFL, O_NONBLOCK);
    e2b_vmlink_open(host.l, 1, a[0], NULL);
    e2b_vmlink_open(host.l, 2, b[0], NULL);
    pump(10);
    ok(guest.n_server == 2, "two streams");
    int sa = guest.server[0], sb = guest.server[1];
    size_t total = 3 << 20, sent_a = 0;
    unsigned char *blob = xmalloc(total);
    for (size_t i = 0; i < total; i++)
        blob[i] = (unsigned char)(i * 7 + (i >> 12));
    /* stream a: the client writes as much as goes; nobody reads in the guest */
    for (int i = 0; i < 400; i++) {
        ssize_t n = write(a[1], blob + sent_a, total - sent_a);
        if (n > 0)
            sent_a += (size_t)n;
        pump(1);
    }
    ok(sent_a < total, "the writer is held back (%zu of %zu bytes taken)", sent_a, total);
    ok(e2b_vmlink_buffered(guest.l) <= E2B_VMLINK_WINDOW,
       "the guest holds at most a window for the stalled stream (%zu)",
       e2b_vmlink_buffered(guest.l));
    /* stream b: 4 MiB from the guest's server to the host's client, while a is stalled */
    size_t bt = 4 << 20, bs = 0, br = 0;
    char *rb = xmalloc(65536);
    for (int i = 0; i < 100000 && br < bt; i++) {
        if (bs < bt) {
            size_t chunk = bt - bs < 65536 ? bt - bs : 65536;
            ssize_t n = write(sb, blob + (bs % (total - 65536)), chunk);
            if (n > 0)
                bs += (size_t)n;
        }
        pump(1);
        ssize_t n = read(b[1], rb, 65536);
        if (n > 0)
            br += (size_t)n;
    }
    is_int(br, bt, "the other stream moves 4 MiB meanwhile");
    /* now the guest reads stream a: everything arrives, in order */
    unsigned char *got = xmalloc(total);
    size_t ga = 0;
    for (int i = 0; i < 200000 && ga < total; i++) {
        if (sent_a < total) {
            ssize_t n = write(a[1], blob + sent_a, total - sent_a);
            if (n > 0)
                sent_a += (size_t)n;
            if (sent_a == total)
                shutdown(a[1], SHUT_WR);
        }
        pump(1);
        ssize_t n = read(sa, got + ga, total - ga);
        if (n > 0)
            ga += (size_t)n;
    }
    ok(ga == total && !memcmp(got, blob, total),
       "the stalled stream's 3 MiB arrive whole once read");
    free(got), free(rb), free(blob);
    close(a[1]), close(b[1]);
    links_free();
}

/* The client goes away in the middle of a download: the server's end is reset. */
static void test_client_gone(void)
{
    links();
    int c[2];
    pair(c);
    e2b_vmlink_open(host.l, E2B_VMLINK_PORT_ENVD, c[0], NULL);
    pump(10);
    int sv = guest.server[0];
    char chunk[65536];
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 50; i++) {
        (void)!write(sv, chunk, sizeof(chunk));
        pump(1);
    }
    close(c[1]);
    bool gone = false;
    for (int i = 0; i < 200 && !gone; i++) {
        pump(1);
        ssize_t n = write(sv, chunk, sizeof(chunk));
        gone = n < 0 && errno == EPIPE;
        if (!gone) {
            char b[16];
            gone = read(sv, b, sizeof(b)) == 0 && write(sv, "x", 1) < 0;
        }
    }
    ok(gone, "the server's socket is closed once the client is gone");
    is_int(e2b_vmlink_streams(host.l) + e2b_vmlink_streams(guest.l), 0,
           "no stream is left at either end");
    links_free();
}

/* What a peer that breaks the rules gets. */
static void test_bad_peer(void)
{
    int ch[2];
    pair(ch);
    guest = (struct side){ .failed_fd = -1, .small = true };
    guest.l = e2b_vmlink_new(ch[0], &ops, &guest);
    unsigned char f[E2B_VMLINK_HEADER + 4] = {
        E2B_VMLINK_OPEN, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 80
    };
    ok(write(ch[1], f, sizeof(f)) == (ssize_t)sizeof(f), "a raw OPEN");
    struct e2b_error *err = NULL;
    ok(e2b_vmlink_poll(guest.l, NULL, 0, 100, &err) == 0 && guest.n_server == 1, "opens stream 5");
    /* DATA beyond the window: the stream is reset */
    size_t n = 0;
    unsigned char *d = xcalloc(1, E2B_VMLINK_HEADER + E2B_VMLINK_MAX_PAYLOAD);
    for (int i = 0; i < 5; i++) {
        memcpy(d, (unsigned char[]){ E2B_VMLINK_DATA, 0, 0, 0, 0, 0, 0, 5, 0, 1, 0, 0 }, 12);
        for (size_t off = 0; off < E2B_VMLINK_HEADER + E2B_VMLINK_MAX_PAYLOAD && !err;) {
            ssize_t w = write(ch[1], d + off, E2B_VMLINK_HEADER + E2B_VMLINK_MAX_PAYLOAD - off);
            off += w > 0 ? (size_t)w : 0;
            e2b_vmlink_poll(guest.l, NULL, 0, 10, &err);
        }
        n += E2B_VMLINK_MAX_PAYLOAD;
    }
    ok(err == NULL && e2b_vmlink_streams(guest.l) == 0,
       "DATA beyond the credit resets the stream, not the link");
    unsigned char in[8192];
    ssize_t r = drain(ch[1], (char *)in, sizeof(in));
    bool rst = false;
    for (ssize_t i = 0; i + 12 <= r;) {
        uint32_t len = (uint32_t)in[i + 8] << 24 | (uint32_t)in[i + 9] << 16 |
                       (uint32_t)in[i + 10] << 8 | in[i + 11];
        rst = rst || (in[i] == E2B_VMLINK_RST && in[i + 7] == 5);
        i += 12 + (ssize_t)len;
    }
    ok(rst, "and says so with RST");
    unsigned char bad[12] = { 99, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0 };
    (void)!write(ch[1], bad, sizeof(bad));
    ok(e2b_vmlink_poll(guest.l, NULL, 0, 100, &err) < 0 && err && strstr(err->msg, "protocol"),
       "an unknown frame type ends the link");
    e2b_error_free(err);
    err = NULL;
    e2b_vmlink_free(guest.l);
    close(ch[1]);
    close(guest.server[0]);
    free(d);
    int ch2[2];
    pair(ch2);
    struct e2b_vmlink *l = e2b_vmlink_new(ch2[0], &ops, &guest);
    unsigned char huge[12] = { E2B_VMLINK_DATA, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 0 };
    (void)!write(ch2[1], huge, sizeof(huge));
    ok(e2b_vmlink_poll(l, NULL, 0, 100, &err) < 0 && err && strstr(err->msg, "64 KiB"),
       "a frame over 64 KiB ends the link");
    e2b_error_free(err);
    err = NULL;
    close(ch2[1]);
    ok(e2b_vmlink_poll(l, NULL, 0, 100, &err) < 0 && err && strstr(err->msg, "closed"),
       "the channel's end ends the link");
    e2b_error_free(err);
    e2b_vmlink_free(l);
    /* the host takes no OPEN: a guest's would steer the host's stream ids */
    int ch3[2];
    pair(ch3);
    static const struct e2b_vmlink_ops host_ops = { .message = on_message };
    l = e2b_vmlink_new(ch3[0], &host_ops, &host);
    unsigned char op[16] = {
        E2B_VMLINK_OPEN, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 4, 0, 0, 0, 80
    };
    (void)!write(ch3[1], op, sizeof(op));
    err = NULL;
    ok(e2b_vmlink_poll(l, NULL, 0, 100, &err) < 0 && err && strstr(err->msg, "OPEN to the host"),
       "an OPEN to the host ends the link");
    e2b_error_free(err);
    e2b_vmlink_free(l);
    close(ch3[1]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_frame_layout();
    test_messages();
    test_stream();
    test_suspend();
    test_open_failed();
    test_flow_control();
    test_client_gone();
    test_bad_peer();
    return tap_done();
}
