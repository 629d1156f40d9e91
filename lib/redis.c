/* redis.c - see redis.h */
#include "redis.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>

#define CONNECT_TIMEOUT_MS 3000
#define REPLY_TIMEOUT_MS   5000
#define MAX_IDLE           16
#define MAX_REPLY          (E2B_RESP_MAX_BULK + 65536)

struct conn {
    int fd;
    struct strbuf in;
    struct conn *next;
};

struct e2b_redis {
    char *host, *port, *user, *password, *db;
    char *where;
    pthread_mutex_t lock;
    struct conn *idle;
    int n_idle;
};

const char *e2b_redis_where(const struct e2b_redis *r) { return r->where; }

static void conn_free(struct conn *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    strbuf_release(&c->in);
    free(c);
}

/* redis://[[user]:password@]host[:port][/db] */
static int parse_url(struct e2b_redis *r, const char *url, struct e2b_error **err)
{
    if (!e2b_str_has_prefix(url, "redis://"))
        return e2b_error_set(err, E2B_ERR_USAGE, "catalog URL '%s' does not start with redis://",
                             url);
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            r->user = colon > p ? xstrndup(p, (size_t)(colon - p)) : NULL;
            r->password = xstrndup(colon + 1, (size_t)(at - colon - 1));
        } else {
            r->password = xstrndup(p, (size_t)(at - p));
        }
        p = at + 1;
    }
    size_t hl = strcspn(p, "/");
    _cleanup_free_ char *hostport = xstrndup(p, hl);
    const char *rest = p + hl;
    char *h = hostport, *port = NULL;
    if (*h == '[') { /* [::1]:6379 */
        char *close_br = strchr(h, ']');
        if (!close_br)
            return e2b_error_set(err, E2B_ERR_USAGE, "catalog URL '%s': unclosed [ in the host",
                                 url);
        *close_br = '\0';
        h++;
        if (close_br[1] == ':')
            port = close_br + 2;
    } else {
        char *colon = strrchr(h, ':');
        if (colon)
            *colon = '\0', port = colon + 1;
    }
    if (!*h)
        return e2b_error_set(err, E2B_ERR_USAGE, "catalog URL '%s' names no host", url);
    if (port && (!*port || strspn(port, "0123456789") != strlen(port) || atoi(port) < 1 ||
                 atoi(port) > 65535))
        return e2b_error_set(err, E2B_ERR_USAGE, "catalog URL '%s': '%s' is not a TCP port", url,
                             port);
    r->host = xstrdup(h);
    r->port = xstrdup(port ? port : "6379");
    if (*rest == '/' && rest[1]) {
        if (strspn(rest + 1, "0123456789") != strlen(rest + 1) || strlen(rest + 1) > 5)
            return e2b_error_set(err, E2B_ERR_USAGE,
                                 "catalog URL '%s': database '%s' is not a number", url, rest + 1);
        r->db = xstrdup(rest + 1);
    }
    r->where = xasprintf("%s%s%s:%s", strchr(r->host, ':') ? "[" : "", r->host,
                         strchr(r->host, ':') ? "]" : "", r->port);
    return 0;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - e2b_now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = { .fd = fd, .events = events };
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static int send_buf(struct conn *c, const char *buf, size_t len, int64_t deadline)
{
    while (len) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            buf += n, len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(c->fd, POLLOUT, deadline) < 0)
                return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

/* One reply into *ret; -1 with errno (EPIPE: the server closed, EPROTO:
 * malformed, ETIMEDOUT). */
static int read_reply(struct conn *c, struct e2b_resp **ret, int64_t deadline)
{
    char tmp[16384];
    for (;;) {
        if (c->in.len) {
            long n = e2b_resp_parse(c->in.buf, c->in.len, ret);
            if (n > 0) {
                strbuf_consume(&c->in, (size_t)n);
                return 0;
            }
            if (n < 0) {
                errno = EPROTO;
                return -1;
            }
            if (c->in.len > MAX_REPLY) {
                errno = EMSGSIZE;
                return -1;
            }
        }
        ssize_t n = recv(c->fd, tmp, sizeof(tmp), MSG_DONTWAIT);
        if (n > 0) {
            strbuf_add(&c->in, tmp, (size_t)n);
            continue;
        }
        if (n == 0) {
            errno = EPIPE;
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (wait_fd(c->fd, POLLIN, deadline) < 0)
            return -1;
    }
}

static int roundtrip(struct conn *c, const struct strbuf *cmd, struct e2b_resp **ret)
{
    int64_t deadline = e2b_now_ms() + REPLY_TIMEOUT_MS;
    if (send_buf(c, cmd->buf, cmd->len, deadline) < 0)
        return -1;
    return read_reply(c, ret, deadline);
}

/* A command on a fresh connection during its setup (AUTH, SELECT, PING). */
static int setup_cmd(struct e2b_redis *r, struct conn *c, size_t argc, const char *const *argv,
                     struct e2b_error **err)
{
    struct strbuf b = STRBUF_INIT;
    e2b_resp_command(&b, argc, argv, NULL);
    _cleanup_resp_ struct e2b_resp *rep = NULL;
    int rc = roundtrip(c, &b, &rep);
    strbuf_release(&b);
    if (rc < 0)
        return e2b_error_sys(err, errno, "catalog at %s: %s failed", r->where, argv[0]);
    if (rep->type == E2B_RESP_ERROR) {
        /* never the password in a message: AUTH's own argument is not echoed */
        return e2b_error_set(err, STREQ(argv[0], "AUTH") ? E2B_ERR_AUTH : E2B_ERR_API,
                             "catalog at %s refused %s: %s", r->where, argv[0], rep->str);
    }
    return 0;
}

static struct conn *conn_open(struct e2b_redis *r, struct e2b_error **err)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
    int gr = getaddrinfo(r->host, r->port, &hints, &ai);
    if (gr != 0) {
        e2b_error_set(err, E2B_ERR_NETWORK, "catalog at %s: cannot resolve '%s': %s", r->where,
                      r->host, gai_strerror(gr));
        return NULL;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
            e = errno;
            close(fd), fd = -1;
            continue;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (wait_fd(fd, POLLOUT, e2b_now_ms() + CONNECT_TIMEOUT_MS) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            e = soerr ? soerr : errno;
            close(fd), fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        e2b_error_sys(err, e, "cannot reach the catalog at %s", r->where);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct conn *c = xcalloc(1, sizeof(*c));
    c->fd = fd;
    strbuf_init(&c->in);
    if (r->password) {
        const char *a1[] = { "AUTH", r->password };
        const char *a2[] = { "AUTH", r->user, r->password };
        if (setup_cmd(r, c, r->user ? 3 : 2, r->user ? a2 : a1, err) < 0)
            goto fail;
    }
    if (r->db) {
        const char *a[] = { "SELECT", r->db };
        if (setup_cmd(r, c, 2, a, err) < 0)
            goto fail;
    }
    return c;
fail:
    conn_free(c);
    return NULL;
}

static struct conn *take(struct e2b_redis *r, bool *pooled, struct e2b_error **err)
{
    pthread_mutex_lock(&r->lock);
    struct conn *c = r->idle;
    if (c) {
        r->idle = c->next;
        r->n_idle--;
    }
    pthread_mutex_unlock(&r->lock);
    *pooled = c != NULL;
    return c ? c : conn_open(r, err);
}

static void give_back(struct e2b_redis *r, struct conn *c)
{
    pthread_mutex_lock(&r->lock);
    if (r->n_idle < MAX_IDLE && !c->in.len) {
        c->next = r->idle;
        r->idle = c;
        r->n_idle++;
        c = NULL;
    }
    pthread_mutex_unlock(&r->lock);
    conn_free(c);
}

int e2b_redis_cmdv(struct e2b_redis *r, size_t argc, const char *const *argv, const size_t *lens,
                   struct e2b_resp **ret, struct e2b_error **err)
{
    if (ret)
        *ret = NULL;
    struct strbuf cmd = STRBUF_INIT;
    e2b_resp_command(&cmd, argc, argv, lens);
    struct e2b_resp *rep = NULL;
    int rc = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool pooled = false;
        struct conn *c = take(r, &pooled, err);
        if (!c)
            break;
        if (roundtrip(c, &cmd, &rep) == 0) {
            give_back(r, c);
            rc = 0;
            break;
        }
        int e = errno;
        conn_free(c);
        /* a pooled connection the server closed while idle: once more, anew */
        if (pooled && (e == EPIPE || e == ECONNRESET))
            continue;
        e2b_error_sys(err, e, "catalog at %s: %s", r->where, argv[0]);
        break;
    }
    strbuf_release(&cmd);
    if (rc < 0)
        return -1;
    if (rep->type == E2B_RESP_ERROR) {
        rc = e2b_error_set(err, E2B_ERR_API, "catalog at %s: %s: %s", r->where, argv[0], rep->str);
        e2b_resp_free(rep);
        return rc;
    }
    if (ret)
        *ret = rep;
    else
        e2b_resp_free(rep);
    return 0;
}

int e2b_redis_cmd(struct e2b_redis *r, struct e2b_resp **ret, struct e2b_error **err, ...)
{
    const char *argv[64];
    size_t argc = 0;
    va_list ap;
    va_start(ap, err);
    for (const char *a; (a = va_arg(ap, const char *)) && argc < 64;)
        argv[argc++] = a;
    va_end(ap);
    return e2b_redis_cmdv(r, argc, argv, NULL, ret, err);
}

int e2b_redis_open(const char *url, struct e2b_redis **ret, struct e2b_error **err)
{
    struct e2b_redis *r = xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    if (parse_url(r, url, err) < 0) {
        e2b_redis_close(r);
        return -1;
    }
    _cleanup_resp_ struct e2b_resp *pong = NULL;
    if (e2b_redis_cmd(r, &pong, err, "PING", NULL) < 0) {
        e2b_redis_close(r);
        return -1;
    }
    *ret = r;
    return 0;
}

void e2b_redis_close(struct e2b_redis *r)
{
    if (!r)
        return;
    while (r->idle) {
        struct conn *c = r->idle;
        r->idle = c->next;
        conn_free(c);
    }
    pthread_mutex_destroy(&r->lock);
    e2b_free_many(&r->host, &r->port, &r->user, &r->password, &r->db, &r->where);
    free(r);
}
