/* serve-conn.c - see serve-conn.h */
#include "serve-conn.h"
#include "fsutil.h"
#include "http.h"
#include "http1.h"

#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>

#define LINGER_MS 2000
#define LINGER_BYTES (16 << 20)

int e2b_serve_conn_fill(struct e2b_serve_conn *c, int64_t deadline_ms)
{
    char tmp[16384];
    for (;;) {
        int wait = -1;
        if (deadline_ms) {
            int64_t left = deadline_ms - e2b_now_ms();
            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            wait = left > INT32_MAX ? INT32_MAX : (int)left;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&p, 1, wait);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return -1;
        if (pr == 0)
            continue; /* the deadline check above ends it */
        ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        strbuf_add(&c->in, tmp, (size_t)n);
        return 1;
    }
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 302: return "Found";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

bool e2b_serve_respond(int fd, int status, const json_t *body, const char *extra_headers,
                       bool close_conn)
{
    bool no_body = status < 200 || status == 204 || status == 304;
    _cleanup_free_ char *data = body && !no_body ? e2b_json_dump(body, 0) : NULL;
    size_t len = data ? strlen(data) : 0;
    struct strbuf h = STRBUF_INIT;
    strbuf_addf(&h, "HTTP/1.1 %d %s\r\n", status, reason(status));
    if (!no_body)
        strbuf_addf(&h, "Content-Length: %zu\r\n", len);
    if (data)
        strbuf_addstr(&h, "Content-Type: application/json\r\n");
    if (extra_headers)
        strbuf_addstr(&h, extra_headers);
    strbuf_addf(&h, "Connection: %s\r\n\r\n", close_conn ? "close" : "keep-alive");
    /* one write: head and body in one segment */
    if (len)
        strbuf_add(&h, data, len);
    bool ok = e2b_send_all(fd, h.buf, h.len) == 0;
    strbuf_release(&h);
    return ok;
}

bool e2b_serve_respond_raw(int fd, int status, const char *type, const char *body, const char *extra_headers,
                           bool close_conn)
{
    size_t len = body ? strlen(body) : 0;
    struct strbuf h = STRBUF_INIT;
    strbuf_addf(&h, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nContent-Type: %s\r\n", status, reason(status), len,
                type ? type : "text/plain");
    if (extra_headers)
        strbuf_addstr(&h, extra_headers);
    strbuf_addf(&h, "Connection: %s\r\n\r\n", close_conn ? "close" : "keep-alive");
    if (len)
        strbuf_add(&h, body, len);
    bool ok = e2b_send_all(fd, h.buf, h.len) == 0;
    strbuf_release(&h);
    return ok;
}

json_t *e2b_serve_error_body(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    return json_pack("{s:i, s:s}", "code", status, "message", msg);
}

void e2b_serve_fail_and_close(struct e2b_serve_conn *c, int status, json_t *body)
{
    e2b_serve_respond(c->fd, status, body, NULL, true);
    json_decref(body);
    shutdown(c->fd, SHUT_WR);
    /* Closing with unread bytes makes the kernel send a reset, which can
     * destroy the answer before the client reads it: drain first. */
    int64_t deadline = e2b_now_ms() + LINGER_MS;
    size_t drained = 0;
    while (drained < LINGER_BYTES) {
        strbuf_reset(&c->in);
        if (e2b_serve_conn_fill(c, deadline) <= 0)
            break;
        drained += c->in.len;
    }
    strbuf_reset(&c->in);
}

void e2b_serve_reply_error(struct e2b_serve_reply *out, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    json_decref(out->body);
    out->status = status;
    out->body = e2b_serve_error_body(status, "%s", msg);
}

void e2b_serve_reply_fail(struct e2b_serve_reply *out, const struct e2b_error *e)
{
    e2b_serve_reply_error(out, e2b_errcode_http_status(e->code), "%s", e->msg);
}

bool e2b_serve_query_num(const char *query, struct e2b_serve_reply *out, const char *name, long long def,
                         long long lo, long long hi, long long *ret)
{
    _cleanup_free_ char *v = e2b_http1_query_param(query, name);
    if (!v) {
        *ret = def;
        return true;
    }
    size_t n = strspn(v, "0123456789");
    if (!n || v[n] || n > 15 || (*ret = strtoll(v, NULL, 10)) < lo || *ret > hi) {
        e2b_serve_reply_error(out, 400, "%s '%s' must be a number between %lld and %lld", name, v, lo, hi);
        return false;
    }
    return true;
}
