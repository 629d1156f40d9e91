/* serve.c - see serve.h */
#include "serve.h"
#include "serve-keys.h"
#include "strbuf.h"

#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>

#define MAX_HEAD (64 * 1024)
#define MAX_BODY (1024 * 1024)
#define MAX_TIMEOUT_S (24 * 3600)

struct request {
    char method[16];
    char *target;        /* path?query */
    char *path;          /* decoded path, no query */
    char *query;         /* raw query or "" */
    char **headers;      /* "name: value", names as sent */
    size_t head_len;     /* bytes of the head in buf */
    struct strbuf body;
};

struct conn {
    const struct e2b_serve_opts *o;
    int fd;
};

/* ---- small HTTP pieces ----------------------------------------------------- */

static const char *header(const struct request *r, const char *name)
{
    size_t n = strlen(name);
    for (char **h = r->headers; h && *h; h++)
        if (strncasecmp(*h, name, n) == 0 && (*h)[n] == ':') {
            const char *v = *h + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
    return NULL;
}

static void request_free(struct request *r)
{
    free(r->target);
    free(r->path);
    free(r->query);
    e2b_strv_free(r->headers);
    strbuf_release(&r->body);
    memset(r, 0, sizeof(*r));
}

static bool write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 431: return "Request Header Fields Too Large";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    default: return "Status";
    }
}

static bool respond(int fd, int status, json_t *body, const char *extra_headers, bool close_conn)
{
    _cleanup_free_ char *data = body ? e2b_json_dump(body, 0) : NULL;
    size_t len = data ? strlen(data) : 0;
    struct strbuf h = STRBUF_INIT;
    strbuf_addf(&h, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n", status, reason(status), len);
    if (data)
        strbuf_addstr(&h, "Content-Type: application/json\r\n");
    if (extra_headers)
        strbuf_addstr(&h, extra_headers);
    strbuf_addf(&h, "Connection: %s\r\n\r\n", close_conn ? "close" : "keep-alive");
    bool ok = write_all(fd, h.buf, h.len) && (!len || write_all(fd, data, len));
    strbuf_release(&h);
    return ok;
}

static json_t *error_body(int status, const char *fmt, ...) _printf_(2, 3);
static json_t *error_body(int status, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    json_t *b = json_pack("{s:i, s:s}", "code", status, "message", msg ? msg : "error");
    free(msg);
    return b;
}

/* An e2b error as E2B's status and body. */
static int status_of(const struct e2b_error *e)
{
    switch (e->code) {
    case E2B_ERR_NOT_FOUND: return 404;
    case E2B_ERR_INVALID: case E2B_ERR_USAGE: return 400;
    case E2B_ERR_EXISTS: return 409;
    case E2B_ERR_AUTH: return 401;
    case E2B_ERR_PERMISSION: return 403;
    default: return 500;
    }
}

static int url_decode(const char *s, size_t n, char **ret)
{
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            strbuf_addch(&sb, (char)strtol(hex, NULL, 16));
            i += 2;
        } else if (s[i] == '+') {
            strbuf_addch(&sb, ' ');
        } else {
            strbuf_addch(&sb, s[i]);
        }
    }
    *ret = strbuf_detach(&sb, NULL);
    return 0;
}

/* Value of a query parameter (decoded), or NULL. */
static char *query_param(const char *query, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            char *v = NULL;
            url_decode(p + n + 1, len - n - 1, &v);
            return v;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* Read until the end of the head; leftover body bytes stay in buf. */
static int read_head(int fd, struct strbuf *buf, struct request *r)
{
    for (;;) {
        char *end = buf->len ? memmem(buf->buf, buf->len, "\r\n\r\n", 4) : NULL;
        if (end) {
            r->head_len = (size_t)(end - buf->buf) + 4;
            break;
        }
        if (buf->len > MAX_HEAD)
            return 431;
        char tmp[8192];
        ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        strbuf_add(buf, tmp, (size_t)n);
    }
    _cleanup_free_ char *head = xstrndup(buf->buf, r->head_len - 4);
    char *save = NULL;
    char *line = strtok_r(head, "\r\n", &save);
    char target[8192];
    if (!line || sscanf(line, "%15s %8191s", r->method, target) != 2)
        return 400;
    r->target = xstrdup(target);
    char *q = strchr(target, '?');
    r->query = xstrdup(q ? q + 1 : "");
    if (q)
        *q = '\0';
    url_decode(target, strlen(target), &r->path);
    while ((line = strtok_r(NULL, "\r\n", &save)))
        r->headers = e2b_strv_push(r->headers, line);
    strbuf_init(&r->body);
    return 0;
}

/* ---- the envd router ---------------------------------------------------------- */

/* E2b-Sandbox-Id/E2b-Sandbox-Port headers, or a <port>-<id>.<domain> host. */
static bool route_of(const struct e2b_serve_opts *o, const struct request *r, char **ret_id,
                     int *ret_port)
{
    const char *id = header(r, "E2b-Sandbox-Id");
    if (id && *id) {
        const char *port = header(r, "E2b-Sandbox-Port");
        *ret_id = xstrdup(id);
        *ret_port = port ? atoi(port) : 49983;
        return true;
    }
    const char *host = header(r, "Host");
    if (!host)
        return false;
    const char *dot = strchr(host, '.'), *dash = strchr(host, '-');
    if (!dot || !dash || dash > dot || !isdigit((unsigned char)host[0]))
        return false;
    if (o->domain) {
        size_t dl = strlen(o->domain);
        const char *colon = strchr(dot + 1, ':');
        size_t hl = colon ? (size_t)(colon - dot - 1) : strlen(dot + 1);
        if (hl != dl || strncmp(dot + 1, o->domain, dl) != 0)
            return false;
    }
    *ret_port = atoi(host);
    const char *idstart = dash + 1;
    size_t idlen = strcspn(idstart, "-.");
    *ret_id = xstrndup(idstart, idlen);
    return true;
}

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
    return fd;
}

/* The answer E2B's edge gives when it cannot reach a sandbox or its port:
 * a JSON body {message, sandboxId, port?, code}. */
static void guest_error(int fd, int status, const char *msg, const char *id, int port)
{
    json_t *b = json_pack("{s:s, s:s, s:i}", "message", msg, "sandboxId", id, "code", status);
    if (port)
        json_object_set_new(b, "port", json_integer(port));
    respond(fd, status, b, NULL, true);
    json_decref(b);
}

/* A connection to envd (49983) or to another port of the sandbox; -1 when
 * the answer to the client has been sent. */
static int open_upstream(struct conn *c, const char *id, int port)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    struct e2b_backend *b = c->o->backend;
    if (port != 49983) {
        int fd = -1;
        if (!b->ops->port_connect) {
            guest_error(c->fd, 502, "this server reaches no port of its sandboxes but envd's", id, port);
            return -1;
        }
        if (b->ops->port_connect(b, id, port, &fd, &err) == 0)
            return fd;
        if (err->code == E2B_ERR_NOT_FOUND)
            guest_error(c->fd, 502, "The sandbox was not found", id, 0);
        else if (err->code == E2B_ERR_NETWORK)
            guest_error(c->fd, 502, "The sandbox is running but port is not open", id, port);
        else if (err->code == E2B_ERR_INVALID)
            guest_error(c->fd, 400, err->msg, id, port);
        else
            guest_error(c->fd, 502, err->msg, id, port);
        return -1;
    }
    struct e2b_envd_endpoint ep = {0};
    if (b->ops->envd_endpoint(b, id, &ep, &err) < 0) {
        if (err->code == E2B_ERR_NOT_FOUND)
            guest_error(c->fd, 502, "The sandbox was not found", id, 0);
        else
            guest_error(c->fd, status_of(err), err->msg, id, 0);
        return -1;
    }
    int up = connect_upstream(ep.base);
    e2b_envd_endpoint_release(&ep);
    if (up < 0)
        guest_error(c->fd, 502, "The sandbox is running but port is not open", id, port);
    return up;
}

/* Relay one request to the sandbox and its answer back, both streamed. The
 * forwarded request says "Connection: close" (or "Upgrade" for a WebSocket
 * or other upgrade, after which bytes flow both ways as they come), so the
 * answer ends when the sandbox side closes; then we close too (the client
 * reconnects as needed). */
static void proxy(struct conn *c, struct strbuf *buf, struct request *r, const char *id, int port)
{
    int up = open_upstream(c, id, port);
    if (up < 0)
        return;
    struct strbuf head = STRBUF_INIT;
    strbuf_addf(&head, "%s %s HTTP/1.1\r\n", r->method, r->target);
    for (char **h = r->headers; h && *h; h++) {
        if (strncasecmp(*h, "Connection:", 11) == 0 || strncasecmp(*h, "Keep-Alive:", 11) == 0 ||
            strncasecmp(*h, "Proxy-", 6) == 0)
            continue;
        if (port != 49983 && (strncasecmp(*h, "E2b-Sandbox-Id:", 15) == 0 ||
                              strncasecmp(*h, "E2b-Sandbox-Port:", 17) == 0))
            continue; /* routing for us, not for the program behind the port */
        strbuf_addf(&head, "%s\r\n", *h);
    }
    strbuf_addf(&head, "Connection: %s\r\n\r\n", header(r, "Upgrade") ? "Upgrade" : "close");
    bool ok = write_all(up, head.buf, head.len) &&
              (buf->len == r->head_len || write_all(up, buf->buf + r->head_len, buf->len - r->head_len));
    strbuf_release(&head);
    bool client_open = ok, up_open = ok;
    char tmp[65536];
    while (up_open) {
        struct pollfd p[2] = {{.fd = c->fd, .events = client_open ? POLLIN : 0},
                              {.fd = up, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents) {
            ssize_t n = recv(up, tmp, sizeof(tmp), 0);
            if (n <= 0 || !write_all(c->fd, tmp, (size_t)n))
                break;
        }
        if (client_open && p[0].revents) {
            ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
            if (n <= 0) {
                client_open = false;
                shutdown(up, SHUT_WR);
            } else if (!write_all(up, tmp, (size_t)n)) {
                break;
            }
        }
    }
    close(up);
}

/* ---- the REST API --------------------------------------------------------------- */

struct reply {
    int status;
    json_t *body;
    char *headers; /* extra "Name: value\r\n" lines */
};

static void fail(struct reply *out, struct e2b_error *e)
{
    out->status = status_of(e);
    out->body = error_body(out->status, "%s", e->msg);
}

static bool parse_json_body(const struct request *r, json_t **ret, struct reply *out)
{
    *ret = NULL;
    if (r->body.len == 0) {
        *ret = json_object();
        return true;
    }
    json_error_t je;
    json_t *j = json_loadb(r->body.buf, r->body.len, 0, &je);
    if (!j || !json_is_object(j)) {
        out->status = 400;
        out->body = error_body(400, "request body is not a JSON object (line %d column %d: %s)",
                               je.line, je.column, j ? "not an object" : je.text);
        json_decref(j);
        return false;
    }
    *ret = j;
    return true;
}

/* "timeout" of a body: absent -> def; must be 1..24 h. */
static bool timeout_of(json_t *body, const char *key, int def, int *ret, struct reply *out)
{
    json_t *t = json_object_get(body, key);
    if (!t || json_is_null(t)) {
        *ret = def;
        return true;
    }
    if (!json_is_integer(t)) {
        out->status = 400;
        out->body = error_body(400, "%s must be a whole number of seconds", key);
        return false;
    }
    long long v = json_integer_value(t);
    if (v <= 0) {
        out->status = 400;
        out->body = error_body(400, "Timeout must be greater than 0");
        return false;
    }
    if (v > MAX_TIMEOUT_S) {
        out->status = 400;
        out->body = error_body(400, "Timeout cannot be greater than %d hours", MAX_TIMEOUT_S / 3600);
        return false;
    }
    *ret = (int)v;
    return true;
}

static bool string_map(json_t *v, const char *what, struct reply *out)
{
    if (!v || json_is_null(v))
        return true;
    const char *k;
    json_t *x;
    if (json_is_object(v)) {
        bool ok = true;
        json_object_foreach(v, k, x) ok &= json_is_string(x);
        if (ok)
            return true;
    }
    out->status = 400;
    out->body = error_body(400, "%s must be an object of strings", what);
    return false;
}

static void api_create(struct conn *c, const struct request *r, struct reply *out)
{
    _cleanup_json_ json_t *body = NULL;
    if (!parse_json_body(r, &body, out))
        return;
    const char *tpl = e2b_json_str(body, "templateID");
    int timeout;
    if (!tpl || !*tpl) {
        out->status = 400;
        out->body = error_body(400, "templateID is required");
        return;
    }
    if (!timeout_of(body, "timeout", 15, &timeout, out) ||
        !string_map(json_object_get(body, "metadata"), "metadata", out) ||
        !string_map(json_object_get(body, "envVars"), "envVars", out))
        return;
    struct e2b_sandbox_spec spec = {
        .template = tpl, .timeout_s = timeout,
        .metadata = json_object_get(body, "metadata"), .env_vars = json_object_get(body, "envVars"),
        .secure = e2b_json_bool(body, "secure", false),
        .allow_internet = e2b_json_bool(body, "allow_internet_access", false),
        .auto_pause = e2b_json_bool(body, "autoPause", false),
    };
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *sbx = NULL;
    if (c->o->backend->ops->create(c->o->backend, &spec, &sbx, &err) < 0) {
        fail(out, err);
        return;
    }
    json_object_set_new(sbx, "domain", c->o->domain ? json_string(c->o->domain) : json_null());
    out->status = 201;
    out->body = sbx;
}

static void api_list(struct conn *c, const struct request *r, struct reply *out, bool v2)
{
    _cleanup_free_ char *state = query_param(r->query, "state");
    _cleanup_free_ char *meta = query_param(r->query, "metadata");
    _cleanup_free_ char *tpl = query_param(r->query, "template");
    _cleanup_free_ char *limit = query_param(r->query, "limit");
    _cleanup_free_ char *next = query_param(r->query, "nextToken");
    _cleanup_json_ json_t *filter_meta = json_object();
    if (meta) { /* "k=v&k2=v2", itself url-encoded once more */
        for (char *save = NULL, *kv = strtok_r(meta, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq)
                continue;
            *eq = '\0';
            _cleanup_free_ char *k = NULL, *v = NULL;
            url_decode(kv, strlen(kv), &k);
            url_decode(eq + 1, strlen(eq + 1), &v);
            json_object_set_new(filter_meta, k, json_string(v));
        }
    }
    long lim = limit ? strtol(limit, NULL, 10) : 0;
    if (limit && (lim < 1 || lim > 100)) {
        out->status = 400;
        out->body = error_body(400, "limit must be between 1 and 100");
        return;
    }
    struct e2b_sandbox_filter f = {.states = state ? state : (v2 ? "running" : "running,paused"),
                                   .metadata = json_object_size(filter_meta) ? filter_meta : NULL,
                                   .template = tpl, .limit = (int)lim, .next_token = next};
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *list = NULL;
    char *token = NULL;
    if (c->o->backend->ops->list(c->o->backend, &f, &list, &token, &err) < 0) {
        fail(out, err);
        return;
    }
    out->status = 200;
    out->body = list;
    if (token) {
        out->headers = xasprintf("X-Next-Token: %s\r\n", token);
        free(token);
    }
}

/* /sandboxes/{id}[/verb] */
static void api_sandbox(struct conn *c, const struct request *r, const char *id, const char *verb,
                        struct reply *out)
{
    struct e2b_backend *b = c->o->backend;
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_json_ json_t *body = NULL;
    bool get = STREQ(r->method, "GET"), post = STREQ(r->method, "POST");
    if (!*verb && get) {
        json_t *s = NULL;
        if (b->ops->get(b, id, &s, &err) < 0)
            return fail(out, err);
        out->status = 200, out->body = s;
    } else if (!*verb && STREQ(r->method, "DELETE")) {
        if (b->ops->kill(b, id, &err) < 0)
            return fail(out, err);
        out->status = 204;
    } else if ((STREQ(verb, "timeout") || STREQ(verb, "refreshes")) && post) {
        int t;
        if (!parse_json_body(r, &body, out))
            return;
        const char *key = STREQ(verb, "timeout") ? "timeout" : "duration";
        if (!json_object_get(body, key) && STREQ(verb, "timeout")) {
            out->status = 400, out->body = error_body(400, "timeout is required");
            return;
        }
        if (!timeout_of(body, key, 15, &t, out))
            return;
        if (b->ops->set_timeout(b, id, t, &err) < 0)
            return fail(out, err);
        out->status = 204;
    } else if (STREQ(verb, "pause") && post) {
        if (b->ops->pause(b, id, &err) < 0)
            return fail(out, err);
        out->status = 204;
    } else if ((STREQ(verb, "resume") || STREQ(verb, "connect")) && post) {
        int t;
        if (!parse_json_body(r, &body, out) || !timeout_of(body, "timeout", 300, &t, out))
            return;
        bool resumed = false;
        json_t *s = NULL;
        if (STREQ(verb, "resume")) { /* resume insists on a paused sandbox */
            json_t *cur = NULL;
            if (b->ops->get(b, id, &cur, &err) < 0)
                return fail(out, err);
            bool paused = STREQ(e2b_json_str(cur, "state") ? e2b_json_str(cur, "state") : "", "paused");
            json_decref(cur);
            if (!paused) {
                out->status = 409, out->body = error_body(409, "sandbox '%s' is not paused", id);
                return;
            }
        }
        if (b->ops->connect(b, id, t, &s, &resumed, &err) < 0)
            return fail(out, err);
        json_object_set_new(s, "domain", c->o->domain ? json_string(c->o->domain) : json_null());
        out->status = STREQ(verb, "resume") || resumed ? 201 : 200;
        out->body = s;
    } else if (STREQ(verb, "metrics") && get) {
        json_t *m = NULL;
        if (b->ops->metrics(b, id, &m, &err) < 0)
            return fail(out, err);
        out->status = 200, out->body = m;
    } else if (STREQ(verb, "logs") && get) {
        json_t *logs = NULL;
        if (b->ops->logs(b, id, &logs, &err) < 0)
            return fail(out, err);
        json_t *o = json_object();
        json_object_set_new(o, "logs", logs);
        out->status = 200, out->body = o;
    } else {
        out->status = 404, out->body = error_body(404, "no route %s %s", r->method, r->path);
    }
}

static void api_templates(struct conn *c, const struct request *r, const char *rest, struct reply *out)
{
    struct e2b_backend *b = c->o->backend;
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *t = NULL;
    if (!*rest && STREQ(r->method, "GET")) {
        if (b->ops->template_list(b, &t, &err) < 0)
            return fail(out, err);
        out->status = 200, out->body = t;
    } else if (e2b_str_has_prefix(rest, "aliases/") && STREQ(r->method, "GET")) {
        if (b->ops->template_get(b, rest + 8, &t, &err) < 0)
            return fail(out, err);
        out->status = 200;
        out->body = json_pack("{s:O, s:b}", "templateID", json_object_get(t, "templateID"), "public", 0);
        json_decref(t);
    } else if (*rest && !strchr(rest, '/') && STREQ(r->method, "GET")) {
        if (b->ops->template_get(b, rest, &t, &err) < 0)
            return fail(out, err);
        out->status = 200, out->body = t;
    } else if (*rest && !strchr(rest, '/') && STREQ(r->method, "DELETE")) {
        if (b->ops->template_delete(b, rest, &err) < 0)
            return fail(out, err);
        out->status = 204;
    } else {
        out->status = 404, out->body = error_body(404, "no route %s %s", r->method, r->path);
    }
}

static void api(struct conn *c, const struct request *r, struct reply *out)
{
    const char *p = r->path;
    if (STREQ(p, "/health")) {
        out->status = STREQ(r->method, "GET") || STREQ(r->method, "HEAD") ? 204 : 405;
        return;
    }
    const char *key = header(r, "X-API-Key");
    if (!e2b_serve_key_check(c->o->keys_path, key)) {
        out->status = 401;
        out->body = error_body(401, key ? "Invalid API key" : "missing X-API-Key header");
        return;
    }
    if (e2b_str_has_prefix(p, "/v2/"))
        p += 3; /* v2 routes have the v1 shapes here */
    bool v2 = p != r->path;
    if (STREQ(p, "/sandboxes") && STREQ(r->method, "POST"))
        return api_create(c, r, out);
    if (STREQ(p, "/sandboxes") && STREQ(r->method, "GET"))
        return api_list(c, r, out, v2);
    if (e2b_str_has_prefix(p, "/sandboxes/")) {
        const char *id = p + 11;
        size_t idlen = strcspn(id, "/");
        _cleanup_free_ char *sid = xstrndup(id, idlen);
        const char *verb = id[idlen] ? id + idlen + 1 : "";
        return api_sandbox(c, r, sid, verb, out);
    }
    if (STREQ(p, "/templates") || e2b_str_has_prefix(p, "/templates/"))
        return api_templates(c, r, p[10] ? p + 11 : "", out);
    out->status = 404;
    out->body = error_body(404, "no route %s %s", r->method, r->path);
}

/* ---- connections ------------------------------------------------------------------ */

/* Fill more of buf from the socket; false at EOF or error. */
static bool fill(int fd, struct strbuf *buf)
{
    char tmp[16384];
    for (;;) {
        ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        strbuf_add(buf, tmp, (size_t)n);
        return true;
    }
}

/* The request body into r->body, by Content-Length or chunked (bounded by
 * MAX_BODY); consumed from buf. 0, an HTTP status, or -1 if the peer left. */
static int read_body(int fd, struct strbuf *buf, struct request *r)
{
    const char *te = header(r, "Transfer-Encoding");
    if (te && strcasecmp(te, "chunked") == 0) {
        for (;;) {
            char *eol;
            while (!(eol = memmem(buf->buf, buf->len, "\r\n", 2)))
                if (buf->len > 1024 || !fill(fd, buf))
                    return buf->len > 1024 ? 400 : -1;
            char *end = NULL;
            unsigned long size = strtoul(buf->buf, &end, 16);
            if (end == buf->buf)
                return 400;
            size_t line = (size_t)(eol - buf->buf) + 2;
            if (size == 0) { /* last chunk, then trailers until an empty line */
                strbuf_consume(buf, line);
                for (;;) {
                    while (!(eol = memmem(buf->buf, buf->len, "\r\n", 2)))
                        if (!fill(fd, buf))
                            return -1;
                    bool empty = eol == buf->buf;
                    strbuf_consume(buf, (size_t)(eol - buf->buf) + 2);
                    if (empty)
                        return 0;
                }
            }
            if (r->body.len + size > MAX_BODY)
                return 413;
            while (buf->len < line + size + 2)
                if (!fill(fd, buf))
                    return -1;
            strbuf_add(&r->body, buf->buf + line, size);
            strbuf_consume(buf, line + size + 2);
        }
    }
    if (te && strcasecmp(te, "identity") != 0)
        return 400;
    const char *cl = header(r, "Content-Length");
    long long len = cl ? strtoll(cl, NULL, 10) : 0;
    if (len < 0)
        return 400;
    if (len > MAX_BODY)
        return 413;
    while ((long long)buf->len < len)
        if (!fill(fd, buf))
            return -1;
    strbuf_add(&r->body, buf->buf, (size_t)len);
    strbuf_consume(buf, (size_t)len);
    return 0;
}

static void *conn_main(void *ud)
{
    struct conn *c = ud;
    struct strbuf buf = STRBUF_INIT;
    for (;;) {
        struct request r = {0};
        int st = read_head(c->fd, &buf, &r);
        if (st < 0) {
            request_free(&r);
            break;
        }
        if (st > 0) {
            json_t *b = error_body(st, "malformed request");
            respond(c->fd, st, b, NULL, true);
            json_decref(b);
            request_free(&r);
            break;
        }
        char *id = NULL;
        int port = 0;
        if (route_of(c->o, &r, &id, &port)) {
            proxy(c, &buf, &r, id, port);
            free(id);
            request_free(&r);
            break;
        }
        /* API request: the whole body first (bounded). */
        bool close_after = header(&r, "Connection") && !strcasecmp(header(&r, "Connection"), "close");
        strbuf_consume(&buf, r.head_len);
        int bst = read_body(c->fd, &buf, &r);
        if (bst != 0) {
            if (bst > 0) {
                json_t *b = bst == 413 ? error_body(413, "request body over %d bytes", MAX_BODY)
                                       : error_body(bst, "malformed request body");
                respond(c->fd, bst, b, NULL, true);
                json_decref(b);
            }
            request_free(&r);
            break;
        }
        struct reply out = {0};
        api(c, &r, &out);
        bool ok = respond(c->fd, out.status, out.body, out.headers, close_after);
        json_decref(out.body);
        free(out.headers);
        request_free(&r);
        if (!ok || close_after)
            break;
    }
    strbuf_release(&buf);
    close(c->fd);
    free(c);
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

int e2b_serve_run(const struct e2b_serve_opts *o, struct e2b_error **err)
{
    int lfd = listen_on(o->listen, err);
    if (lfd < 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    if (o->on_ready)
        o->on_ready(o->listen, o->ud);
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
        struct conn *c = xcalloc(1, sizeof(*c));
        c->o = o;
        c->fd = fd;
        pthread_t t;
        if (pthread_create(&t, &attr, conn_main, c) != 0) {
            close(fd);
            free(c);
        }
    }
    pthread_attr_destroy(&attr);
    close(lfd);
    return 0;
}
