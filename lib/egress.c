/* egress.c - see egress.h.
 *
 * The helper's threads: the main one polls the namespace holder's pidfd
 * (its exit ends the helper), the control socket, the listeners and the
 * DNS sockets; each proxied connection, each DNS-over-TCP connection and
 * each DNS query gets a short-lived detached thread. The rules in force are
 * one immutable snapshot behind a mutex, replaced whole by an update.
 */
#include "egress.h"
#include "dl-nft.h"
#include "egress-rules.h"
#include "egress-tls.h"
#include "fsutil.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#define MARK 0xe2b
#define TABLE "e2b_egress"
#define PEEK_MAX 16384
#define PEEK_TIMEOUT_MS 10000
#define DNS_TIMEOUT_MS 5000
#define CONNECT_TIMEOUT_MS 30000
#define LEARN_MAX 8192
#define LEARN_TTL_MIN_S 30
#define LEARN_TTL_MAX_S 3600
#define RELAY_BUF 65536

/* ---- the rules in force -------------------------------------------------------- */

struct snapshot {
    int refs;
    struct e2b_egress rules;
    char *ca_dir;                /* the egress CA (egress-tls.h), or NULL: no HTTPS transforms */
    char *upstream_ca;           /* roots trusted upstream besides the system's, or NULL */
    struct sockaddr_storage dns; /* the resolver asked */
    socklen_t dns_len;
};

static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct snapshot *current;
static FILE *logf_;

static void elog(const char *fmt, ...) _printf_(1, 2);
static void elog(const char *fmt, ...)
{
    if (!logf_)
        return;
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    fprintf(logf_, "%s\n", msg);
    fflush(logf_);
}

static struct snapshot *snap_get(void)
{
    pthread_mutex_lock(&snap_lock);
    struct snapshot *s = current;
    if (s)
        s->refs++;
    pthread_mutex_unlock(&snap_lock);
    return s;
}

static void snap_put(struct snapshot *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&snap_lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&snap_lock);
    if (last) {
        e2b_egress_release(&s->rules);
        free(s->ca_dir);
        free(s->upstream_ca);
        free(s);
    }
}

static int parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    _cleanup_free_ char *h = xstrdup(s);
    char *colon = strrchr(h, ':');
    int port = 53;
    if (colon && (h[0] != '[' || colon[-1] == ']')) {
        *colon = '\0';
        port = atoi(colon + 1);
    }
    char *host = h;
    if (*host == '[') {
        host++;
        host[strcspn(host, "]")] = '\0';
    }
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
        return 0;
    }
    return -1;
}

static int snapshot_new(const json_t *config, struct snapshot **ret, struct e2b_error **err)
{
    struct snapshot *s = xcalloc(1, sizeof(*s));
    s->refs = 1;
    if (e2b_egress_parse(config, e2b_json_bool(config, "internet", true), &s->rules, err) < 0) {
        free(s);
        return -1;
    }
    const char *dns = e2b_json_str(config, "dns") ? e2b_json_str(config, "dns") : E2B_EGRESS_DNS_DEFAULT;
    if (parse_hostport(dns, &s->dns, &s->dns_len) < 0) {
        e2b_egress_release(&s->rules);
        free(s);
        return e2b_error_set(err, E2B_ERR_INVALID, "the egress resolver '%s' is not IP:PORT", dns);
    }
    if (e2b_json_str(config, "ca"))
        s->ca_dir = xstrdup(e2b_json_str(config, "ca"));
    if (e2b_json_str(config, "upstreamCA"))
        s->upstream_ca = xstrdup(e2b_json_str(config, "upstreamCA"));
    *ret = s;
    return 0;
}

/* ---- names learned from DNS answers ---------------------------------------------------- */

struct learned {
    int family;
    uint8_t addr[16];
    char name[256];
    int64_t until_ms;
};

static pthread_mutex_t learn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct learned *learned;
static size_t n_learned;

static void learn(int family, const uint8_t *addr, const char *name, uint32_t ttl)
{
    int64_t now = e2b_now_ms();
    uint32_t t = ttl < LEARN_TTL_MIN_S ? LEARN_TTL_MIN_S : ttl > LEARN_TTL_MAX_S ? LEARN_TTL_MAX_S : ttl;
    size_t alen = family == AF_INET ? 4 : 16;
    pthread_mutex_lock(&learn_lock);
    if (!learned)
        learned = xcalloc(LEARN_MAX, sizeof(*learned));
    struct learned *slot = NULL, *oldest = &learned[0];
    for (size_t i = 0; i < n_learned; i++) {
        struct learned *l = &learned[i];
        if (l->family == family && memcmp(l->addr, addr, alen) == 0 && strcasecmp(l->name, name) == 0) {
            slot = l;
            break;
        }
        if (l->until_ms < oldest->until_ms)
            oldest = l;
    }
    if (!slot)
        slot = n_learned < LEARN_MAX ? &learned[n_learned++] : oldest;
    slot->family = family;
    memcpy(slot->addr, addr, alen);
    snprintf(slot->name, sizeof(slot->name), "%s", name);
    slot->until_ms = now + (int64_t)t * 1000;
    pthread_mutex_unlock(&learn_lock);
}

/* Did a DNS answer for name give this address (and is it still fresh)? */
static bool was_answered(int family, const uint8_t *addr, const char *name)
{
    size_t alen = family == AF_INET ? 4 : 16;
    int64_t now = e2b_now_ms();
    bool yes = false;
    pthread_mutex_lock(&learn_lock);
    for (size_t i = 0; i < n_learned && !yes; i++) {
        struct learned *l = &learned[i];
        yes = l->family == family && l->until_ms > now && memcmp(l->addr, addr, alen) == 0 &&
              strcasecmp(l->name, name) == 0;
    }
    pthread_mutex_unlock(&learn_lock);
    return yes;
}

/* A name at off in msg (labels, compression followed) into out; the offset
 * after it, or -1. */
static long dns_name(const uint8_t *msg, size_t len, size_t off, char *out, size_t outlen)
{
    size_t o = 0, pos = off;
    long end = -1;
    for (int jumps = 0; jumps < 32;) {
        if (pos >= len)
            return -1;
        uint8_t l = msg[pos];
        if (l == 0) {
            if (end < 0)
                end = (long)pos + 1;
            break;
        }
        if ((l & 0xc0) == 0xc0) {
            if (pos + 1 >= len)
                return -1;
            if (end < 0)
                end = (long)pos + 2;
            pos = ((size_t)(l & 0x3f) << 8) | msg[pos + 1];
            jumps++;
            continue;
        }
        if (l & 0xc0 || pos + 1 + l > len || o + l + 2 > outlen)
            return -1;
        if (o)
            out[o++] = '.';
        for (size_t i = 0; i < l; i++) {
            char c = (char)msg[pos + 1 + i];
            out[o++] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
        }
        pos += 1 + l;
    }
    out[o] = '\0';
    return end;
}

/* An answer: every A and AAAA in it, learned under the question's name. */
static void learn_answer(const uint8_t *msg, size_t len)
{
    if (len < 12)
        return;
    unsigned qd = (unsigned)(msg[4] << 8 | msg[5]), an = (unsigned)(msg[6] << 8 | msg[7]);
    if (qd != 1 || !(msg[2] & 0x80))
        return;
    char qname[256];
    long off = dns_name(msg, len, 12, qname, sizeof(qname));
    if (off < 0 || (size_t)off + 4 > len)
        return;
    off += 4;
    for (unsigned i = 0; i < an; i++) {
        char owner[256];
        off = dns_name(msg, len, (size_t)off, owner, sizeof(owner));
        if (off < 0 || (size_t)off + 10 > len)
            return;
        const uint8_t *r = msg + off;
        unsigned type = (unsigned)(r[0] << 8 | r[1]), rdlen = (unsigned)(r[8] << 8 | r[9]);
        uint32_t ttl = (uint32_t)r[4] << 24 | (uint32_t)r[5] << 16 | (uint32_t)r[6] << 8 | r[7];
        if ((size_t)off + 10 + rdlen > len)
            return;
        if (type == 1 && rdlen == 4)
            learn(AF_INET, r + 10, qname, ttl);
        else if (type == 28 && rdlen == 16)
            learn(AF_INET6, r + 10, qname, ttl);
        off += 10 + rdlen;
    }
}

/* May the sandbox ask the resolver itself, by the address rules? */
static bool resolver_allowed(const struct snapshot *s)
{
    const struct sockaddr_storage *d = &s->dns;
    const uint8_t *a = d->ss_family == AF_INET ? (const uint8_t *)&((const struct sockaddr_in *)d)->sin_addr
                                               : (const uint8_t *)&((const struct sockaddr_in6 *)d)->sin6_addr;
    return e2b_egress_addr_allowed(&s->rules, d->ss_family, a, 53, NULL);
}

/* A query the filter passes on: any, when the sandbox may reach the
 * resolver anyway; else only for the names the rules allow (DNS is then no
 * channel out for anything else). Otherwise *ret gets a REFUSED answer. */
static bool query_allowed(const struct snapshot *s, const uint8_t *q, size_t len, uint8_t *ret, size_t *ret_len)
{
    if (resolver_allowed(s))
        return true;
    char name[256];
    long off = len >= 12 ? dns_name(q, len, 12, name, sizeof(name)) : -1;
    if (off > 0 && (size_t)off + 4 <= len && (q[4] << 8 | q[5]) == 1) {
        for (size_t i = 0; i < s->rules.n_allow; i++)
            if (s->rules.allow[i].kind == E2B_EGRESS_DOMAIN && e2b_egress_domain_match(s->rules.allow[i].domain, name))
                return true;
    }
    if (len < 12 || off < 0 || (size_t)off + 4 > len) {
        *ret_len = 0;
        return false;
    }
    memcpy(ret, q, (size_t)off + 4);
    ret[2] = (uint8_t)(0x80 | (q[2] & 0x79)); /* an answer, opcode and RD kept */
    ret[3] = 5;                                /* REFUSED */
    ret[4] = 0, ret[5] = 1;
    memset(ret + 6, 0, 6);
    *ret_len = (size_t)off + 4;
    return false;
}

/* ---- sockets ---------------------------------------------------------------------- */

static int marked_socket(int family, int type)
{
    int fd = socket(family, type | SOCK_CLOEXEC, 0);
    unsigned mark = MARK;
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r;
    while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    return r;
}

/* The resolver's answer to one query: its length, or -1. */
static ssize_t ask_resolver(const struct snapshot *s, bool tcp, const uint8_t *q, size_t qlen, uint8_t *ans,
                            size_t anslen)
{
    int fd = marked_socket(s->dns.ss_family, tcp ? SOCK_STREAM : SOCK_DGRAM);
    if (fd < 0)
        return -1;
    ssize_t n = -1;
    if (!tcp) {
        if (sendto(fd, q, qlen, 0, (const struct sockaddr *)&s->dns, s->dns_len) == (ssize_t)qlen &&
            wait_fd(fd, POLLIN, DNS_TIMEOUT_MS) > 0)
            n = recv(fd, ans, anslen, 0);
    } else {
        uint8_t pre[2] = {(uint8_t)(qlen >> 8), (uint8_t)qlen};
        uint8_t lenb[2];
        if (connect(fd, (const struct sockaddr *)&s->dns, s->dns_len) == 0 && e2b_send_all(fd, pre, 2) == 0 &&
            e2b_send_all(fd, q, qlen) == 0 && wait_fd(fd, POLLIN, DNS_TIMEOUT_MS) > 0 &&
            recv(fd, lenb, 2, MSG_WAITALL) == 2) {
            size_t want = (size_t)(lenb[0] << 8 | lenb[1]);
            if (want <= anslen && recv(fd, ans, want, MSG_WAITALL) == (ssize_t)want)
                n = (ssize_t)want;
        }
    }
    close(fd);
    return n;
}

struct udp_query {
    int fd; /* the listening socket the query came on */
    struct sockaddr_storage from;
    socklen_t fromlen;
    size_t len;
    uint8_t q[512 * 8];
};

static void *udp_query_main(void *ud)
{
    struct udp_query *u = ud;
    struct snapshot *s = snap_get();
    uint8_t ans[65536];
    size_t refused = 0;
    ssize_t n = -1;
    if (s && query_allowed(s, u->q, u->len, ans, &refused))
        n = ask_resolver(s, false, u->q, u->len, ans, sizeof(ans));
    else if (refused)
        n = (ssize_t)refused;
    if (n > 0) {
        learn_answer(ans, (size_t)n);
        sendto(u->fd, ans, (size_t)n, 0, (struct sockaddr *)&u->from, u->fromlen);
    }
    snap_put(s);
    free(u);
    return NULL;
}

static void *dns_tcp_main(void *ud)
{
    int fd = (int)(intptr_t)ud;
    struct snapshot *s = snap_get();
    for (;;) {
        uint8_t lenb[2], q[65536], ans[65536];
        if (!s || wait_fd(fd, POLLIN, DNS_TIMEOUT_MS) <= 0 || recv(fd, lenb, 2, MSG_WAITALL) != 2)
            break;
        size_t ql = (size_t)(lenb[0] << 8 | lenb[1]);
        if (recv(fd, q, ql, MSG_WAITALL) != (ssize_t)ql)
            break;
        size_t refused = 0;
        ssize_t n = query_allowed(s, q, ql, ans, &refused) ? ask_resolver(s, true, q, ql, ans, sizeof(ans))
                                                           : (ssize_t)refused;
        if (n <= 0)
            break;
        learn_answer(ans, (size_t)n);
        uint8_t pre[2] = {(uint8_t)(n >> 8), (uint8_t)n};
        if (e2b_send_all(fd, pre, 2) < 0 || e2b_send_all(fd, ans, (size_t)n) < 0)
            break;
    }
    snap_put(s);
    close(fd);
    return NULL;
}

/* ---- the connection proxy -------------------------------------------------------------- */

/* The SNI of a TLS ClientHello at the start of buf: 1 found, 2 a whole
 * ClientHello without one, 0 not complete yet, -1 not TLS. */
static int tls_sni(const uint8_t *b, size_t n, char *out, size_t outlen)
{
    if (n < 1)
        return 0;
    if (b[0] != 0x16)
        return -1;
    if (n < 5)
        return 0;
    size_t rec = (size_t)(b[3] << 8 | b[4]);
    if (n < 5 + rec)
        return rec + 5 > PEEK_MAX ? -1 : 0;
    const uint8_t *p = b + 5, *end = b + 5 + rec;
    if (end - p < 4 || p[0] != 1)
        return -1;
    p += 4 + 2 + 32; /* handshake header, version, random */
    if (p >= end)
        return -1;
    p += 1 + p[0]; /* session id */
    if (end - p < 2)
        return -1;
    p += 2 + (p[0] << 8 | p[1]); /* cipher suites */
    if (p >= end)
        return -1;
    p += 1 + p[0]; /* compression methods */
    if (end - p < 2)
        return -1;
    size_t extlen = (size_t)(p[0] << 8 | p[1]);
    p += 2;
    if ((size_t)(end - p) < extlen)
        return -1;
    const uint8_t *eend = p + extlen;
    while (eend - p >= 4) {
        unsigned type = (unsigned)(p[0] << 8 | p[1]);
        size_t len = (size_t)(p[2] << 8 | p[3]);
        p += 4;
        if ((size_t)(eend - p) < len)
            return -1;
        if (type == 0 && len >= 5 && p[2] == 0) {
            size_t nl = (size_t)(p[3] << 8 | p[4]);
            if (nl + 5 > len || nl >= outlen || !nl)
                return -1;
            for (size_t i = 0; i < nl; i++)
                out[i] = (char)(p[5 + i] >= 'A' && p[5 + i] <= 'Z' ? p[5 + i] + 32 : p[5 + i]);
            out[nl] = '\0';
            return 1;
        }
        p += len;
    }
    return 2;
}

/* The Host of an HTTP request head at the start of buf: 1 found (or the
 * head has none: out empty), 0 not complete yet, -1 not HTTP. */
static int http_host(const char *b, size_t n, char *out, size_t outlen, size_t *ret_head_len)
{
    out[0] = '\0';
    const char *end = memmem(b, n, "\r\n\r\n", 4);
    if (!end) {
        for (size_t i = 0; i < n && i < 16; i++)
            if (b[i] == ' ')
                return 0;
            else if (b[i] < 'A' || b[i] > 'Z')
                return -1;
        return n < 16 ? 0 : -1;
    }
    *ret_head_len = (size_t)(end - b) + 4;
    for (const char *l = memchr(b, '\n', (size_t)(end - b)); l && l < end; l = memchr(l + 1, '\n', (size_t)(end - l))) {
        const char *line = l + 1;
        if (strncasecmp(line, "host:", 5) != 0)
            continue;
        line += 5;
        while (*line == ' ' || *line == '\t')
            line++;
        size_t k = 0;
        while (line < end && *line != '\r' && *line != ':' && *line != ' ' && k + 1 < outlen)
            out[k++] = (char)(*line >= 'A' && *line <= 'Z' ? *line + 32 : *line), line++;
        out[k] = '\0';
        break;
    }
    return 1;
}

static int connect_upstream(int family, const struct sockaddr_storage *dst, socklen_t len)
{
    int fd = marked_socket(family, SOCK_STREAM | SOCK_NONBLOCK);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)dst, len) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    int e = 0;
    socklen_t el = sizeof(e);
    if (wait_fd(fd, POLLOUT, CONNECT_TIMEOUT_MS) <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static void relay(int a, int b)
{
    char *buf = xmalloc(RELAY_BUF);
    bool a_open = true, b_open = true;
    while (a_open || b_open) {
        struct pollfd p[2] = {{.fd = a_open ? a : -1, .events = POLLIN}, {.fd = b_open ? b : -1, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (!p[i].revents)
                continue;
            int from = i ? b : a, to = i ? a : b;
            ssize_t n = recv(from, buf, RELAY_BUF, 0);
            if (n <= 0) {
                shutdown(to, SHUT_WR);
                if (i)
                    b_open = false;
                else
                    a_open = false;
                if (n < 0)
                    a_open = b_open = false;
                continue;
            }
            if (e2b_send_all(to, buf, (size_t)n) < 0)
                a_open = b_open = false;
        }
    }
    free(buf);
}

static void refuse(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0}; /* a reset, as a refused connection */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

/* The TLS interception, made at its first use (from the CA in the rules'
 * config); NULL, said in the log, when it cannot be. */
static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static struct e2b_egress_tls *tls_state;
static bool tls_failed;

static struct e2b_egress_tls *tls_of(const struct snapshot *s)
{
    pthread_mutex_lock(&tls_lock);
    if (!tls_state && !tls_failed && s->ca_dir) {
        _cleanup_error_ struct e2b_error *err = NULL;
        if (e2b_egress_tls_new(s->ca_dir, s->upstream_ca, &tls_state, &err) < 0) {
            elog("no HTTPS transforms: %s", err->msg);
            tls_failed = true;
        }
    }
    pthread_mutex_unlock(&tls_lock);
    return tls_state;
}

static void *proxy_main(void *ud)
{
    int cfd = (int)(intptr_t)ud;
    struct snapshot *s = NULL;
    char *buf = xmalloc(PEEK_MAX + 1);
    size_t have = 0, head_len = 0;
    struct sockaddr_storage dst = {0};
    socklen_t dl = sizeof(dst);
    int family = AF_INET;
    /* where the sandbox was going, before the redirect */
    if (getsockopt(cfd, SOL_IP, SO_ORIGINAL_DST, &dst, &dl) == 0) {
        family = AF_INET;
        dl = sizeof(struct sockaddr_in);
    } else {
        dl = sizeof(dst);
        if (getsockopt(cfd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &dl) < 0)
            goto out;
        family = AF_INET6;
        dl = sizeof(struct sockaddr_in6);
    }
    const uint8_t *addr = family == AF_INET ? (const uint8_t *)&((struct sockaddr_in *)&dst)->sin_addr
                                            : (const uint8_t *)&((struct sockaddr_in6 *)&dst)->sin6_addr;
    uint16_t port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&dst)->sin_port
                                            : ((struct sockaddr_in6 *)&dst)->sin6_port);
    struct sockaddr_storage self = {0};
    socklen_t sl = sizeof(self);
    if (getsockname(cfd, (struct sockaddr *)&self, &sl) == 0 && sl == dl && memcmp(&self, &dst, dl) == 0)
        goto out; /* someone connected to the helper itself */
    /* the name: TLS SNI or HTTP Host, from the first bytes, peeked (an
     * intercepted TLS starts from its ClientHello) */
    char name[256] = "";
    int found = 0;
    int64_t deadline = e2b_now_ms() + PEEK_TIMEOUT_MS;
    while (found == 0 && have < PEEK_MAX) {
        int64_t left = deadline - e2b_now_ms();
        if (left <= 0 || wait_fd(cfd, POLLIN, (int)left) <= 0)
            break;
        ssize_t n = recv(cfd, buf, PEEK_MAX, MSG_PEEK);
        if (n <= 0)
            break;
        if ((size_t)n == have) { /* nothing new yet: readable stays true while bytes wait */
            usleep(2000);
            continue;
        }
        have = (size_t)n;
        found = tls_sni((uint8_t *)buf, have, name, sizeof(name));
        if (found < 0)
            found = http_host(buf, have, name, sizeof(name), &head_len);
    }
    if (found != 1)
        name[0] = '\0';
    s = snap_get();
    if (!s)
        goto out;
    bool by_allow = false;
    bool ok = e2b_egress_addr_allowed(&s->rules, family, addr, port, &by_allow);
    const char *why = by_allow ? "address allowed" : ok ? "not denied" : "address denied";
    if (!by_allow && *name && e2b_egress_name_allowed(&s->rules, name, port)) {
        if (!was_answered(family, addr, name))
            ok = false, why = "name allowed, but DNS never gave it this address";
        else if (e2b_egress_addr_denied_explicitly(&s->rules, family, addr, port))
            ok = false, why = "name allowed, address denied";
        else
            ok = true, why = "name allowed";
    }
    char as[INET6_ADDRSTRLEN];
    inet_ntop(family, addr, as, sizeof(as));
    elog("%s %s:%u name '%s': %s", ok ? "pass" : "refuse", as, port, name, why);
    if (!ok) {
        refuse(cfd);
        goto out;
    }
    int up = connect_upstream(family, &dst, dl);
    if (up < 0) {
        refuse(cfd);
        goto out;
    }
    /* TLS to a host with transform rules: ended here, its requests given the headers */
    const json_t *tls_hdrs =
        found == 1 && !head_len && *name ? e2b_egress_headers_for(&s->rules, name) : NULL;
    struct e2b_egress_tls *tls = tls_hdrs ? tls_of(s) : NULL;
    if (tls) {
        _cleanup_json_ json_t *hdrs = json_deep_copy(tls_hdrs);
        snap_put(s);
        s = NULL;
        _cleanup_error_ struct e2b_error *terr = NULL;
        if (e2b_egress_tls_relay(tls, cfd, up, name, hdrs, &terr) < 0)
            elog("https %s:%u name '%s': %s", as, port, name, terr->msg);
        close(up);
        goto out;
    }
    if (recv(cfd, buf, have, MSG_WAITALL) != (ssize_t)have) { /* what was peeked, taken now */
        close(up);
        goto out;
    }
    const json_t *hdrs = *name && head_len ? e2b_egress_headers_for(&s->rules, name) : NULL;
    bool sent;
    if (hdrs && head_len) {
        _cleanup_free_ char *h = e2b_egress_transform_head(buf, head_len, hdrs);
        sent = e2b_send_all(up, h, strlen(h)) == 0 && e2b_send_all(up, buf + head_len, have - head_len) == 0;
    } else {
        sent = e2b_send_all(up, buf, have) == 0;
    }
    snap_put(s);
    s = NULL;
    free(buf);
    buf = NULL;
    if (sent)
        relay(cfd, up);
    close(up);
out:
    snap_put(s);
    free(buf);
    close(cfd);
    return NULL;
}

/* ---- the helper ------------------------------------------------------------------- */

static int start_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 512 << 10);
    int e = pthread_create(&t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return e;
}

/* Does the filter answer DNS? With names to learn, or when the rules would
 * let the sandbox ask the resolver itself (so DNS works the same with rules
 * or without); never as a way round ALL_TRAFFIC. */
static bool answers_dns(const struct snapshot *s)
{
    return e2b_egress_has_names(&s->rules) || resolver_allowed(s);
}

static int load_nft(const struct snapshot *s, int dns_port, int proxy_port, struct e2b_error **err)
{
    bool names = e2b_egress_has_names(&s->rules);
    _cleanup_free_ char *rs = e2b_egress_nft(&s->rules, TABLE, MARK, answers_dns(s) ? dns_port : 0, names ? proxy_port : 0);
    if (e2b_nft_load(err) < 0)
        return e2b_error_wrap(err, "cannot load the egress rules (libnftables)");
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx)
        return e2b_error_set(err, E2B_ERR_GENERIC, "cannot start libnftables");
    nft_ctx_buffer_error(ctx);
    nft_ctx_buffer_output(ctx);
    int r = nft_run_cmd_from_buffer(ctx, rs);
    if (r != 0) {
        const char *msg = nft_ctx_get_error_buffer(ctx);
        e2b_error_set(err, E2B_ERR_GENERIC, "nftables refused the egress rules: %s", msg ? msg : "?");
        elog("rules refused:\n%s", rs);
    }
    nft_ctx_free(ctx);
    return r ? -1 : 0;
}

/* A listener on the loopback of the namespace: port 0 picks one. */
static int listen_lo(int family, int type, int port)
{
    int fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons((uint16_t)port);
        len = sizeof(*a);
    } else {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        a->sin6_port = htons((uint16_t)port);
        len = sizeof(*a);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || (type == SOCK_STREAM && listen(fd, 256) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                         : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

struct helper {
    int ctl;            /* egress.sock */
    int pidfd;          /* the namespace holder */
    int udp[2], dns[2]; /* DNS over UDP and TCP, IPv4 and IPv6 (-1: none) */
    int proxy[2];
    int dns_port, proxy_port;
};

/* One config from a control connection; "ok" or the error back. */
static void control(struct helper *h)
{
    int c = accept4(h->ctl, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct strbuf in = STRBUF_INIT;
    char tmp[4096];
    ssize_t n;
    while (in.len < (1 << 20) && (n = recv(c, tmp, sizeof(tmp), 0)) > 0)
        strbuf_add(&in, tmp, (size_t)n);
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *config = in.len ? json_loadb(in.buf, in.len, 0, NULL) : NULL;
    explicit_bzero(in.buf, in.len);
    strbuf_release(&in);
    struct snapshot *s = NULL;
    if (!config)
        e2b_error_set(&err, E2B_ERR_INVALID, "the egress update is not JSON");
    else if (snapshot_new(config, &s, &err) == 0 && load_nft(s, h->dns_port, h->proxy_port, &err) == 0) {
        pthread_mutex_lock(&snap_lock);
        struct snapshot *old = current;
        current = s;
        pthread_mutex_unlock(&snap_lock);
        snap_put(old);
        s = NULL;
        elog("rules updated");
    }
    snap_put(s);
    json_decref(config);
    _cleanup_free_ char *reply = err ? xasprintf("error: %s\n", err->msg) : xstrdup("ok\n");
    (void)!write(c, reply, strlen(reply));
    close(c);
}

static _noreturn_ void helper_loop(struct helper *h)
{
    for (;;) {
        struct pollfd p[9] = {{.fd = h->pidfd, .events = POLLIN}, {.fd = h->ctl, .events = POLLIN}};
        int fds[] = {h->udp[0], h->udp[1], h->dns[0], h->dns[1], h->proxy[0], h->proxy[1]};
        for (int i = 0; i < 6; i++)
            p[2 + i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        if (poll(p, 8, -1) < 0)
            continue;
        if (p[0].revents)
            _exit(0); /* the sandbox is gone */
        if (p[1].revents)
            control(h);
        for (int i = 0; i < 2; i++)
            if (p[2 + i].revents) {
                struct udp_query *u = xcalloc(1, sizeof(*u));
                u->fd = fds[i];
                u->fromlen = sizeof(u->from);
                ssize_t n = recvfrom(u->fd, u->q, sizeof(u->q), 0, (struct sockaddr *)&u->from, &u->fromlen);
                if (n <= 0 || (u->len = (size_t)n, start_thread(udp_query_main, u)) != 0)
                    free(u);
            }
        for (int i = 2; i < 6; i++)
            if (p[2 + i].revents) {
                int c = accept4(fds[i], NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                    continue;
                if (start_thread(i < 4 ? dns_tcp_main : proxy_main, (void *)(intptr_t)c) != 0)
                    close(c);
            }
    }
}

static int enter_namespaces(pid_t pid, bool userns, struct e2b_error **err)
{
    static const struct {
        const char *name;
        int type;
    } ns[] = {{"user", CLONE_NEWUSER}, {"net", CLONE_NEWNET}};
    for (size_t i = userns ? 0 : 1; i < ARRAY_SIZE(ns); i++) {
        _cleanup_free_ char *p = xasprintf("/proc/%d/ns/%s", (int)pid, ns[i].name);
        _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, ns[i].type) < 0)
            return e2b_error_sys(err, errno, "cannot enter the sandbox's %s namespace", ns[i].name);
    }
    return 0;
}

/* The helper, in its own process (forked, single-threaded). Writes "ok" or
 * the error to ready_fd. */
static _noreturn_ void helper_main(const char *dir, pid_t pid, bool userns, const json_t *config, int ready_fd)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    struct helper h = {.ctl = -1, .udp = {-1, -1}, .dns = {-1, -1}, .proxy = {-1, -1}};
    _cleanup_free_ char *logp = e2b_path_join(dir, "egress.log");
    logf_ = fopen(logp, "ae");
    signal(SIGPIPE, SIG_IGN);
    h.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    _cleanup_free_ char *sock = e2b_path_join(dir, "egress.sock");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct snapshot *s = NULL;
    if (h.pidfd < 0) {
        e2b_error_sys(&err, errno, "the sandbox's process %d is gone", (int)pid);
        goto fail;
    }
    if (strlen(sock) >= sizeof(sa.sun_path)) {
        e2b_error_set(&err, E2B_ERR_INVALID, "'%s' is too long for a socket", sock);
        goto fail;
    }
    strcpy(sa.sun_path, sock);
    unlink(sock);
    h.ctl = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h.ctl < 0 || bind(h.ctl, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(h.ctl, 16) < 0) {
        e2b_error_sys(&err, errno, "cannot listen on '%s'", sock);
        goto fail;
    }
    chmod(sock, 0600);
    if (enter_namespaces(pid, userns, &err) < 0 || snapshot_new(config, &s, &err) < 0)
        goto fail;
    /* DNS on one port for UDP and TCP (nftables redirects both there) */
    for (int tries = 0; tries < 20 && h.dns[0] < 0; tries++) {
        if (h.udp[0] >= 0)
            close(h.udp[0]);
        h.udp[0] = listen_lo(AF_INET, SOCK_DGRAM, 0);
        h.dns_port = h.udp[0] >= 0 ? port_of(h.udp[0]) : -1;
        if (h.dns_port > 0)
            h.dns[0] = listen_lo(AF_INET, SOCK_STREAM, h.dns_port);
    }
    h.proxy[0] = listen_lo(AF_INET, SOCK_STREAM, 0);
    h.proxy_port = h.proxy[0] >= 0 ? port_of(h.proxy[0]) : -1;
    if (h.dns[0] < 0 || h.proxy[0] < 0) {
        e2b_error_sys(&err, errno, "cannot listen in the sandbox's network");
        goto fail;
    }
    /* IPv6 where the namespace has it (its ::1) */
    h.udp[1] = listen_lo(AF_INET6, SOCK_DGRAM, h.dns_port);
    h.dns[1] = listen_lo(AF_INET6, SOCK_STREAM, h.dns_port);
    h.proxy[1] = listen_lo(AF_INET6, SOCK_STREAM, h.proxy_port);
    if (load_nft(s, h.dns_port, h.proxy_port, &err) < 0)
        goto fail;
    current = s;
    elog("egress filter of %s: dns port %d, proxy port %d", dir, h.dns_port, h.proxy_port);
    (void)!write(ready_fd, "ok\n", 3);
    close(ready_fd);
    helper_loop(&h);
fail:
    elog("cannot start: %s", err ? err->msg : "?");
    dprintf(ready_fd, "%s\n", err ? err->msg : "the egress filter did not start");
    if (h.ctl >= 0)
        unlink(sock);
    _exit(1);
}

/* ---- the callers' side ----------------------------------------------------------- */

/* Hand config to a running helper: 1 done, 0 no helper there, -1 it refused. */
static int send_update(const char *dir, const char *data, struct e2b_error **err)
{
    _cleanup_free_ char *sock = e2b_path_join(dir, "egress.sock");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock) >= sizeof(sa.sun_path))
        return 0;
    strcpy(sa.sun_path, sock);
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return 0;
    if (e2b_send_all(fd, data, strlen(data)) < 0)
        return e2b_error_sys(err, errno, "cannot reach the sandbox's egress filter");
    shutdown(fd, SHUT_WR);
    char reply[1024];
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t n = recv(fd, reply, sizeof(reply) - 1, MSG_WAITALL);
    reply[n > 0 ? n : 0] = '\0';
    reply[strcspn(reply, "\n")] = '\0';
    if (STREQ(reply, "ok"))
        return 1;
    return e2b_error_set(err, E2B_ERR_INVALID, "the egress filter refused the rules: %s",
                         e2b_str_has_prefix(reply, "error: ") ? reply + 7 : *reply ? reply : "no answer");
}

int e2b_egress_apply(const char *dir, pid_t net_pid, bool userns, const json_t *config, struct e2b_error **err)
{
    if (net_pid <= 0)
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "the sandbox has no network namespace yet");
    /* rules checked here first, so a bad one is the caller's error */
    struct e2b_egress check;
    if (e2b_egress_parse(config, e2b_json_bool(config, "internet", true), &check, err) < 0)
        return -1;
    e2b_egress_release(&check);
    _cleanup_free_ char *lp = e2b_path_join(dir, "egress.lock");
    _cleanup_close_ int lk = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lk < 0 || flock(lk, LOCK_EX) < 0)
        return e2b_error_sys(err, errno, "cannot lock '%s'", lp);
    _cleanup_free_ char *data = e2b_json_dump(config, 0);
    int r = send_update(dir, data, err);
    explicit_bzero(data, strlen(data));
    if (r != 0)
        return r < 0 ? -1 : 0;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return e2b_error_sys(err, errno, "cannot start the egress filter");
    fflush(NULL);
    pid_t mid = fork();
    if (mid < 0) {
        close(p[0]), close(p[1]);
        return e2b_error_sys(err, errno, "cannot start the egress filter");
    }
    if (mid == 0) {
        close(p[0]);
        setsid();
        if (fork() != 0)
            _exit(0);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0)
            dup2(null, 0), dup2(null, 1), dup2(null, 2);
        int ready = fcntl(p[1], F_DUPFD_CLOEXEC, 3);
        close_range(3, (unsigned)ready - 1, 0);
        close_range((unsigned)ready + 1, ~0U, 0);
        helper_main(dir, net_pid, userns, config, ready);
    }
    close(p[1]);
    while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
        ;
    char msg[1024] = "";
    size_t have = 0;
    while (have < sizeof(msg) - 1 && wait_fd(p[0], POLLIN, 15000) > 0) {
        ssize_t n = read(p[0], msg + have, sizeof(msg) - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        if (memchr(msg, '\n', have))
            break;
    }
    close(p[0]);
    msg[have] = '\0';
    msg[strcspn(msg, "\n")] = '\0';
    if (!STREQ(msg, "ok"))
        return e2b_error_set(err, E2B_ERR_GENERIC, "cannot start the sandbox's egress filter: %s",
                             *msg ? msg : "it died");
    return 0;
}
