/* serve-router.c - see serve-router.h */
#include "serve-router.h"
#include "cluster.h"
#include "fsutil.h"

#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>

#define ENVD_PORT 49983
#define RELAY_BUF 65536

/* ---- which sandbox -------------------------------------------------------- */

static bool id_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/* "49983" -> 49983; 0 for anything but 1..65535 in plain digits. */
static int port_of(const char *s, size_t n)
{
    if (n == 0 || n > 5)
        return 0;
    int p = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        p = p * 10 + (s[i] - '0');
    }
    return p >= 1 && p <= 65535 ? p : 0;
}

int e2b_serve_route(const struct e2b_serve_opts *o, const struct e2b_http1_head *r, char **ret_id,
                    int *ret_port, char **ret_msg)
{
    *ret_id = NULL;
    *ret_msg = NULL;
    const char *id = e2b_http1_header(r, "E2b-Sandbox-Id");
    if (id && *id) {
        const char *port = e2b_http1_header(r, "E2b-Sandbox-Port");
        *ret_port = port ? port_of(port, strlen(port)) : ENVD_PORT;
        if (!*ret_port) {
            *ret_msg = xasprintf("E2b-Sandbox-Port '%s' is not a TCP port (1-65535)", port);
            return -400;
        }
        *ret_id = xstrdup(id);
        return 1;
    }
    /* Host: <port>-<sandboxID>[-<anything>].<domain>[:<port>] */
    const char *host = e2b_http1_header(r, "Host");
    if (!host)
        return 0;
    const char *dot = strchr(host, '.');
    const char *dash = strchr(host, '-');
    if (!dot || !dash || dash > dot)
        return 0;
    int port = port_of(host, (size_t)(dash - host));
    const char *idstart = dash + 1;
    size_t idlen = 0;
    while (id_char(idstart[idlen]))
        idlen++;
    if (idstart[idlen] != '.' && idstart[idlen] != '-')
        return 0;
    if (o->domain) {
        const char *d = dot + 1;
        size_t hl = strcspn(d, ":"), dl = strlen(o->domain);
        if (hl != dl || strncasecmp(d, o->domain, dl) != 0 || !idlen)
            return 0;
    } else if (idlen != 20) {
        /* Without a domain only E2B's own ID shape routes, so a host such
         * as 10-0-0-5.nip.io stays an API request. */
        return 0;
    }
    if (!port) {
        *ret_msg = xasprintf("host '%s' does not start with a TCP port (1-65535)", host);
        return -400;
    }
    *ret_port = port;
    *ret_id = xstrndup(idstart, idlen);
    return 1;
}

/* ---- reaching the sandbox ------------------------------------------------------ */

static int connect_upstream(const char *base)
{
    if (e2b_str_has_prefix(base, "unix:")) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if (strlen(base + 5) >= sizeof(a.sun_path))
            return -1;
        strcpy(a.sun_path, base + 5);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
            close(fd);
            return -1;
        }
        return fd;
    }
    const char *hostport = strstr(base, "://") ? strstr(base, "://") + 3 : base;
    _cleanup_free_ char *hp = xstrndup(hostport, strcspn(hostport, "/"));
    char *colon = strrchr(hp, ':');
    const char *port = colon ? colon + 1 : "80";
    if (colon)
        *colon = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(hp, port, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    int one = 1;
    if (fd >= 0) /* a relay to another node: small writes go at once */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* What E2B's edge answers when it cannot reach a sandbox or its port:
 * JSON {message, sandboxId, port?, code}. */
static void guest_error(struct e2b_serve_conn *c, int status, const char *msg, const char *id, int port)
{
    json_t *b = json_pack("{s:s, s:s, s:i}", "message", msg, "sandboxId", id, "code", status);
    if (port)
        json_object_set_new(b, "port", json_integer(port));
    if (status == 409)
        json_object_set_new(b, "canAutoResume", json_false());
    e2b_serve_fail_and_close(c, status, b);
}

/* A connection to envd or to another port of the sandbox; -1 when the
 * answer to the client has been sent. */
static int open_upstream(struct e2b_serve_conn *c, struct e2b_backend *b, const char *id, int port)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    if (port != ENVD_PORT) {
        int fd = -1;
        if (!b->ops->edge.port_connect) {
            guest_error(c, 502, "this server reaches no port of its sandboxes but envd's", id, port);
            return -1;
        }
        if (b->ops->edge.port_connect(b, id, port, &fd, &err) == 0)
            return fd;
        if (err->code == E2B_ERR_NOT_FOUND)
            guest_error(c, 502, "The sandbox was not found", id, 0);
        else if (err->code == E2B_ERR_NETWORK)
            guest_error(c, 502, "The sandbox is running but port is not open", id, port);
        else if (err->code == E2B_ERR_UNSUPPORTED)
            guest_error(c, 409, "The sandbox is paused", id, 0);
        else if (err->code == E2B_ERR_INVALID)
            guest_error(c, 400, err->msg, id, port);
        else
            guest_error(c, 502, err->msg, id, port);
        return -1;
    }
    /* A frozen envd would take the connection and never answer. */
    _cleanup_json_ json_t *s = NULL;
    if (b->ops->sandboxes.get(b, id, &s, &err) < 0) {
        guest_error(c, 502, err->code == E2B_ERR_NOT_FOUND ? "The sandbox was not found" : err->msg, id, 0);
        return -1;
    }
    const char *state = e2b_json_str(s, "state");
    if (state && STREQ(state, "paused")) {
        guest_error(c, 409, "The sandbox is paused", id, 0);
        return -1;
    }
    struct e2b_envd_endpoint ep = {0};
    if (b->ops->edge.envd_endpoint(b, id, &ep, &err) < 0) {
        guest_error(c, 502, err->code == E2B_ERR_NOT_FOUND ? "The sandbox was not found" : err->msg, id, 0);
        return -1;
    }
    int up = connect_upstream(ep.base);
    e2b_envd_endpoint_release(&ep);
    if (up < 0)
        guest_error(c, 502, "The sandbox is running but port is not open", id, port);
    return up;
}

/* ---- relaying ------------------------------------------------------------------ */

struct relay {
    struct e2b_serve_conn *c;
    const struct e2b_http1_head *req;
    const char *id;
    int port;
    int up;
    bool upgrade;          /* the client asked for one */
    const char *hop;       /* relayed to the cluster node that runs the sandbox: this node's ID */
    bool raw;              /* upgraded: bytes both ways as they come */
    bool req_done;         /* the request body has ended */
    bool client_eof;
    bool answered;         /* a final answer head went to the client */
    bool done;             /* the answer has ended */
    struct e2b_http1_body reqb, respb;
    struct strbuf ubuf;    /* upstream bytes not relayed yet (the answer head) */
};

/* Pass on what of c->in belongs to the request body; keep the rest (bytes
 * for after an upgrade, or a pipelined request, which is dropped). */
static bool relay_request(struct relay *x)
{
    struct e2b_serve_conn *c = x->c;
    if (x->req_done || !c->in.len)
        return true;
    size_t used = 0;
    int r = e2b_http1_body_feed(&x->reqb, c->in.buf, c->in.len, &used, NULL);
    if (r < 0)
        return false;
    if (used && e2b_send_all(x->up, c->in.buf, used) < 0)
        return false;
    strbuf_consume(&c->in, used);
    x->req_done = r == 1;
    return true;
}

/* The sandbox's answer head, made safe to hand on: hop-by-hop headers out
 * (its Connection and Keep-Alive too), a length beside chunked out, and
 * "Connection: close" in. */
static void answer_head(const struct e2b_http1_head *h, const struct e2b_http1_body *b, struct strbuf *out)
{
    strbuf_addf(out, "HTTP/1.1 %d %s\r\n", h->status, h->reason);
    for (char **l = h->headers; *l; l++) {
        if (e2b_http1_hop_by_hop(h, *l))
            continue;
        if (b->kind == E2B_BODY_CHUNKED && strncasecmp(*l, "Content-Length:", 15) == 0)
            continue;
        strbuf_addf(out, "%s\r\n", *l);
    }
    strbuf_addstr(out, "Connection: close\r\n\r\n");
}

/* Upstream bytes in x->ubuf: relay heads and body as far as they go.
 * false: stop (an error answered or the client gone). */
static bool relay_answer(struct relay *x)
{
    struct e2b_serve_conn *c = x->c;
    while (x->ubuf.len && !x->done) {
        if (x->raw) {
            bool ok = e2b_send_all(c->fd, x->ubuf.buf, x->ubuf.len) == 0;
            strbuf_reset(&x->ubuf);
            return ok;
        }
        if (x->answered) {
            size_t used = 0;
            int r = e2b_http1_body_feed(&x->respb, x->ubuf.buf, x->ubuf.len, &used, NULL);
            if (r < 0)
                return false; /* a malformed body: cut it */
            if (used && e2b_send_all(c->fd, x->ubuf.buf, used) < 0)
                return false;
            /* a body not done takes all it is given; after it, nothing is passed on */
            strbuf_reset(&x->ubuf);
            x->done = r == 1;
            return true;
        }
        struct e2b_http1_head h;
        long n = e2b_http1_parse_response(x->ubuf.buf, x->ubuf.len, &h);
        if (n == 0)
            return true;
        if (n < 0) {
            guest_error(c, 502, "the sandbox answered with a malformed HTTP response", x->id, x->port);
            return false;
        }
        if (h.status == 101) {
            if (!x->upgrade) {
                e2b_http1_head_release(&h);
                guest_error(c, 502, "the sandbox switched protocols without being asked", x->id, x->port);
                return false;
            }
            /* as sent: its Connection/Upgrade headers are the upgrade */
            bool ok = e2b_send_all(c->fd, x->ubuf.buf, (size_t)n) == 0;
            strbuf_consume(&x->ubuf, (size_t)n);
            e2b_http1_head_release(&h);
            x->raw = x->answered = true;
            /* what the client sent after its request is the new protocol's */
            if (ok && c->in.len)
                ok = e2b_send_all(x->up, c->in.buf, c->in.len) == 0;
            strbuf_reset(&c->in);
            if (!ok)
                return false;
            continue;
        }
        if (h.status < 200) { /* 100 Continue and the like: passed on, then the real answer */
            bool ok = e2b_send_all(c->fd, x->ubuf.buf, (size_t)n) == 0;
            strbuf_consume(&x->ubuf, (size_t)n);
            e2b_http1_head_release(&h);
            if (!ok)
                return false;
            continue;
        }
        if (e2b_http1_body_response(&x->respb, &h, x->req->method) < 0) {
            e2b_http1_head_release(&h);
            guest_error(c, 502, "the sandbox answered with conflicting body lengths", x->id, x->port);
            return false;
        }
        struct strbuf head = STRBUF_INIT;
        answer_head(&h, &x->respb, &head);
        e2b_http1_head_release(&h);
        bool ok = e2b_send_all(c->fd, head.buf, head.len) == 0;
        strbuf_release(&head);
        strbuf_consume(&x->ubuf, (size_t)n);
        if (!ok)
            return false;
        x->answered = true;
        x->done = x->respb.done;
    }
    if (x->done)
        strbuf_reset(&x->ubuf);
    return true;
}

/* The request head for the sandbox: hop-by-hop headers out, routing headers
 * out for ports other than envd's, and "Connection: close" (or Upgrade). */
static void request_head(const struct relay *x, struct strbuf *out)
{
    const struct e2b_http1_head *r = x->req;
    strbuf_addf(out, "%s %s HTTP/1.1\r\n", r->method, r->target);
    for (char **h = r->headers; *h; h++) {
        if (x->upgrade && strncasecmp(*h, "Upgrade:", 8) == 0) {
            strbuf_addf(out, "%s\r\n", *h);
            continue;
        }
        if (e2b_http1_hop_by_hop(r, *h))
            continue;
        bool routing = strncasecmp(*h, "E2b-Sandbox-Id:", 15) == 0 || strncasecmp(*h, "E2b-Sandbox-Port:", 17) == 0 ||
                       strncasecmp(*h, "E2b-Cluster-", 12) == 0;
        if (routing && (x->hop || x->port != ENVD_PORT))
            continue; /* routing for us, not for the program behind the port */
        strbuf_addf(out, "%s\r\n", *h);
    }
    if (x->hop) /* to the node that runs it: where it goes, said by us, once */
        strbuf_addf(out, "E2b-Sandbox-Id: %s\r\nE2b-Sandbox-Port: %d\r\nE2b-Cluster-Hop: %s\r\n", x->id, x->port,
                    x->hop);
    strbuf_addf(out, "Connection: %s\r\n\r\n", x->upgrade ? "Upgrade" : "close");
}

void e2b_serve_proxy(struct e2b_serve_conn *c, const struct e2b_http1_head *r, const char *id, int port)
{
    struct relay x = {.c = c, .req = r, .id = id, .port = port, .up = -1,
                      .upgrade = e2b_http1_header(r, "Upgrade") != NULL};
    strbuf_consume(&c->in, r->len);
    int fr = e2b_http1_body_request(&x.reqb, r, 0);
    if (fr < 0) {
        e2b_serve_fail_and_close(c, 400, e2b_serve_error_body(400, "the request's body framing is "
                                                                   "malformed or ambiguous"));
        return;
    }
    x.req_done = x.reqb.done;
    /* A cluster node relays a sandbox another node runs to that node, once:
     * a request relayed already (E2b-Cluster-Hop) is served here or not at all. */
    struct e2b_backend *b = c->o->backend;
    bool hopped = e2b_http1_header(r, "E2b-Cluster-Hop") != NULL;
    if (hopped && c->o->here)
        b = c->o->here;
    _cleanup_free_ char *owner = NULL;
    if (b->ops->edge.forward) {
        _cleanup_error_ struct e2b_error *err = NULL;
        if (b->ops->edge.forward(b, id, &owner, &err) < 0)
            return guest_error(c, 502, err->code == E2B_ERR_NOT_FOUND && !strstr(err->msg, "lost")
                                           ? "The sandbox was not found" : err->msg, id, 0);
    }
    if (owner) {
        x.hop = e2b_cluster_node_id(c->o->cluster);
        x.up = connect_upstream(owner);
        if (x.up < 0)
            return guest_error(c, 502, "the cluster node that runs the sandbox cannot be reached", id, 0);
    } else {
        x.up = open_upstream(c, b, id, port);
        if (x.up < 0)
            return;
    }
    struct strbuf head = STRBUF_INIT;
    request_head(&x, &head);
    bool ok = e2b_send_all(x.up, head.buf, head.len) == 0 && relay_request(&x);
    strbuf_release(&head);
    char *tmp = xmalloc(RELAY_BUF);
    while (ok && !x.done) {
        /* The client is read while its request lasts (or, upgraded, until
         * it closes); after that only a hang-up is watched for. */
        bool read_client = !x.client_eof && (x.raw || !x.req_done);
        struct pollfd p[2] = {
            {.fd = x.client_eof ? -1 : c->fd, .events = read_client ? POLLIN : POLLRDHUP},
            {.fd = x.up, .events = POLLIN},
        };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents) {
            ssize_t n = recv(x.up, tmp, RELAY_BUF, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                /* the sandbox closed: the end of an answer framed by close, or a cut one */
                if (!x.answered && !x.raw)
                    guest_error(c, 502, "the sandbox closed the connection without answering", id, port);
                else if (x.respb.kind == E2B_BODY_CLOSE)
                    x.done = true;
                break;
            }
            strbuf_add(&x.ubuf, tmp, (size_t)n);
            if (!x.answered && x.ubuf.len > E2B_HTTP1_MAX_HEAD) {
                guest_error(c, 502, "the sandbox's answer head is over 64 KiB", id, port);
                break;
            }
            ok = relay_answer(&x);
            continue;
        }
        if (p[0].revents & (POLLERR | POLLNVAL))
            break;
        if (p[0].revents && !read_client) {
            /* the client half-closed after its request: the sandbox may still answer */
            x.client_eof = true;
            shutdown(x.up, SHUT_WR);
            continue;
        }
        if (p[0].revents) {
            ssize_t n = recv(c->fd, tmp, RELAY_BUF, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                if (!x.raw && !x.req_done)
                    break; /* the client left in the middle of its request */
                x.client_eof = true;
                shutdown(x.up, SHUT_WR);
                continue;
            }
            if (x.raw) {
                ok = e2b_send_all(x.up, tmp, (size_t)n) == 0;
            } else {
                strbuf_add(&c->in, tmp, (size_t)n);
                ok = relay_request(&x);
            }
        }
    }
    free(tmp);
    strbuf_release(&x.ubuf);
    close(x.up);
    if (x.done && !x.req_done && !x.client_eof) {
        /* answered before the client finished sending: let it read that */
        shutdown(c->fd, SHUT_WR);
        int64_t deadline = e2b_now_ms() + 2000;
        while (c->in.len < (16 << 20) && e2b_serve_conn_fill(c, deadline) > 0)
            strbuf_reset(&c->in);
    }
}
