/* envd-connect.c - see envd-connect.h */
#include "envd-connect.h"
#include "envd-crypto.h"
#include "strbuf.h"

#include <event2/event.h>
#include <stdarg.h>
#include <time.h>

static const char *const code_names[] = {
    "ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found",
    "already_exists", "permission_denied", "resource_exhausted", "failed_precondition", "aborted",
    "out_of_range", "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated",
};

const char *e2b_rpc_code_name(int code)
{
    return code >= 0 && code < (int)ARRAY_SIZE(code_names) ? code_names[code] : "unknown";
}

int e2b_rpc_code_http(int code)
{
    switch (code) {
    case RPC_OK: return 200;
    case RPC_CANCELED: return 499;
    case RPC_INVALID_ARGUMENT: return 400;
    case RPC_DEADLINE_EXCEEDED: return 504;
    case RPC_NOT_FOUND: return 404;
    case RPC_ALREADY_EXISTS: return 409;
    case RPC_PERMISSION_DENIED: return 403;
    case RPC_RESOURCE_EXHAUSTED: return 429;
    case RPC_FAILED_PRECONDITION: return 400;
    case RPC_ABORTED: return 409;
    case RPC_OUT_OF_RANGE: return 400;
    case RPC_UNIMPLEMENTED: return 501;
    case RPC_UNAVAILABLE: return 503;
    case RPC_UNAUTHENTICATED: return 401;
    default: return 500; /* unknown, internal, data_loss */
    }
}

int e2b_rpc_code_from_errno(int e)
{
    switch (e) {
    case ENOENT: return RPC_NOT_FOUND;
    case EEXIST: case ENOTEMPTY: return RPC_ALREADY_EXISTS;
    case EACCES: case EPERM: case EROFS: return RPC_PERMISSION_DENIED;
    case ENOTDIR: case EISDIR: case EINVAL: case ELOOP: case ENAMETOOLONG: case EXDEV:
        return RPC_INVALID_ARGUMENT;
    case ENOSPC: case EDQUOT: case EMFILE: case ENFILE: case ENOMEM: return RPC_RESOURCE_EXHAUSTED;
    case ESRCH: return RPC_NOT_FOUND;
    default: return RPC_INTERNAL;
    }
}

int e2b_rpc_code_from_error(const struct e2b_error *err)
{
    if (!err)
        return RPC_INTERNAL;
    if (err->sys_errno)
        return e2b_rpc_code_from_errno(err->sys_errno);
    switch (err->code) {
    case E2B_ERR_NOT_FOUND: return RPC_NOT_FOUND;
    case E2B_ERR_EXISTS: return RPC_ALREADY_EXISTS;
    case E2B_ERR_INVALID: case E2B_ERR_USAGE: return RPC_INVALID_ARGUMENT;
    case E2B_ERR_PERMISSION: return RPC_PERMISSION_DENIED;
    case E2B_ERR_AUTH: return RPC_UNAUTHENTICATED;
    case E2B_ERR_TIMEOUT: return RPC_DEADLINE_EXCEEDED;
    case E2B_ERR_NOSPACE: return RPC_RESOURCE_EXHAUSTED;
    case E2B_ERR_UNSUPPORTED: return RPC_UNIMPLEMENTED;
    case E2B_ERR_CANCELLED: return RPC_CANCELED;
    default: return RPC_INTERNAL;
    }
}

json_t *e2b_rpc_error_json(int code, const char *msg)
{
    json_t *j = json_pack("{s:s}", "code", e2b_rpc_code_name(code));
    if (msg && *msg)
        json_object_set_new(j, "message", e2b_json_string_lossy(msg));
    return j;
}

void e2b_rpc_reply(struct e2b_http_req *req, json_t *msg)
{
    _cleanup_free_ char *s = e2b_json_dump(msg, JSON_COMPACT);
    json_decref(msg);
    e2b_http_reply(req, 200, "application/json", s, strlen(s));
}

void e2b_rpc_error(struct e2b_http_req *req, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        abort();
    va_end(ap);
    json_t *j = e2b_rpc_error_json(code, m);
    _cleanup_free_ char *s = e2b_json_dump(j, JSON_COMPACT);
    json_decref(j);
    e2b_http_reply(req, e2b_rpc_code_http(code), "application/json", s, strlen(s));
}

void e2b_rpc_frame(struct strbuf *buf, unsigned flags, const json_t *msg)
{
    _cleanup_free_ char *s = e2b_json_dump(msg, JSON_COMPACT);
    size_t n = strlen(s);
    unsigned char hdr[5] = {(unsigned char)flags, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 8), (unsigned char)n};
    strbuf_add(buf, hdr, 5);
    strbuf_add(buf, s, n);
}

ssize_t e2b_rpc_unframe(const char *data, size_t len, unsigned *flags, const char **payload, size_t *plen)
{
    if (len < 5)
        return 0;
    const unsigned char *p = (const unsigned char *)data;
    uint32_t n = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    if (n > 64u * 1024 * 1024)
        return -1;
    if (len - 5 < n)
        return 0;
    *flags = p[0];
    *payload = data + 5;
    *plen = n;
    return (ssize_t)n + 5;
}

/* ---- server streams ---- */

struct e2b_rpc_stream {
    struct e2b_http_req *req;
    json_t *keepalive;
    struct event *ka_ev, *deadline_ev;
    e2b_rpc_stream_gone on_gone;
    void *arg;
    void (*drain_cb)(void *);
    void *drain_arg;
};

static void stream_drained(struct e2b_http_req *req, void *arg)
{
    (void)req;
    struct e2b_rpc_stream *s = arg;
    if (s->drain_cb)
        s->drain_cb(s->drain_arg);
}

void e2b_rpc_stream_set_drain_cb(struct e2b_rpc_stream *s, void (*cb)(void *arg), void *arg)
{
    s->drain_cb = cb;
    s->drain_arg = arg;
    if (s->req)
        e2b_http_set_drain_cb(s->req, cb ? stream_drained : NULL, s);
}

static void stream_free(struct e2b_rpc_stream *s)
{
    if (s->ka_ev)
        event_free(s->ka_ev);
    if (s->deadline_ev)
        event_free(s->deadline_ev);
    json_decref(s->keepalive);
    free(s);
}

static void stream_peer_gone(struct e2b_http_req *req, void *arg)
{
    (void)req;
    struct e2b_rpc_stream *s = arg;
    s->req = NULL;
    if (s->on_gone)
        s->on_gone(s, RPC_CANCELED, s->arg);
    stream_free(s);
}

static void stream_keepalive(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct e2b_rpc_stream *s = arg;
    if (s->keepalive)
        e2b_rpc_stream_send(s, json_incref(s->keepalive));
}

static void stream_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct e2b_rpc_stream *s = arg;
    if (s->on_gone)
        s->on_gone(s, RPC_DEADLINE_EXCEEDED, s->arg);
    e2b_rpc_stream_end(s, RPC_DEADLINE_EXCEEDED, "the operation timed out");
}

/* Keepalive-Ping-Interval in seconds (default 90). */
static int keepalive_s(const struct e2b_http_req *req)
{
    const char *h = e2b_http_header(req, "Keepalive-Ping-Interval");
    if (h) {
        char *e;
        long v = strtol(h, &e, 10);
        if (*h && !*e && v > 0 && v < 86400)
            return (int)v;
    }
    return 90;
}

struct e2b_rpc_stream *e2b_rpc_stream_start(struct e2b_http_req *req, json_t *keepalive,
                                            e2b_rpc_stream_gone on_gone, void *arg)
{
    struct e2b_rpc_stream *s = xcalloc(1, sizeof(*s));
    s->req = req;
    s->keepalive = keepalive;
    s->on_gone = on_gone;
    s->arg = arg;
    struct event_base *base = e2b_http_event_base(req);
    if (keepalive) {
        int secs = keepalive_s(req);
        struct timeval tv = {secs, 0};
        s->ka_ev = event_new(base, -1, EV_PERSIST, stream_keepalive, s);
        event_add(s->ka_ev, &tv);
    }
    int64_t tmo = e2b_rpc_timeout_ms(req);
    if (tmo > 0) {
        struct timeval tv = {tmo / 1000, (tmo % 1000) * 1000};
        s->deadline_ev = evtimer_new(base, stream_deadline, s);
        event_add(s->deadline_ev, &tv);
    }
    e2b_http_set_close_cb(req, stream_peer_gone, s);
    e2b_http_reply_start(req, 200, "application/connect+json");
    return s;
}

void e2b_rpc_stream_send(struct e2b_rpc_stream *s, json_t *msg)
{
    if (s->req) {
        struct strbuf b = STRBUF_INIT;
        e2b_rpc_frame(&b, 0, msg);
        e2b_http_reply_chunk(s->req, b.buf, b.len);
        strbuf_release(&b);
    }
    json_decref(msg);
}

json_t *e2b_rpc_end_message(int code, const char *msg, json_t *metadata)
{
    json_t *end = json_object();
    if (code != RPC_OK)
        json_object_set_new(end, "error", e2b_rpc_error_json(code, msg));
    json_t *md = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(metadata, k, v) {
        json_t *vals = json_array();
        if (json_is_string(v)) {
            json_array_append(vals, v);
        } else if (json_is_array(v)) {
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) if (json_is_string(x)) json_array_append(vals, x);
        }
        if (json_array_size(vals) && e2b_http_header_valid(k, "")) /* names as for headers */
            json_object_set_new(md, k, vals);
        else
            json_decref(vals);
    }
    json_decref(metadata);
    if (json_object_size(md))
        json_object_set_new(end, "metadata", md);
    else
        json_decref(md);
    return end;
}

void e2b_rpc_stream_end(struct e2b_rpc_stream *s, int code, const char *msg)
{
    if (s->req) {
        json_t *end = e2b_rpc_end_message(code, msg, NULL);
        struct strbuf b = STRBUF_INIT;
        e2b_rpc_frame(&b, E2B_RPC_FLAG_END, end);
        json_decref(end);
        e2b_http_set_close_cb(s->req, NULL, NULL);
        e2b_http_set_drain_cb(s->req, NULL, NULL);
        e2b_http_reply_chunk(s->req, b.buf, b.len);
        strbuf_release(&b);
        e2b_http_reply_end(s->req);
    }
    stream_free(s);
}

size_t e2b_rpc_stream_pending(const struct e2b_rpc_stream *s)
{
    return s->req ? e2b_http_pending(s->req) : 0;
}

int64_t e2b_rpc_timeout_ms(const struct e2b_http_req *req)
{
    const char *h = e2b_http_header(req, "Connect-Timeout-Ms");
    if (!h)
        return 0;
    size_t n = strlen(h);
    if (n == 0 || n > 10 || strspn(h, "0123456789") != n)
        return -1;
    return strtoll(h, NULL, 10);
}

/* ---- proto3 JSON ---- */

json_t *e2b_pj_get(const json_t *obj, const char *jn, const char *pn)
{
    json_t *v = json_object_get(obj, jn);
    if (!v && pn)
        v = json_object_get(obj, pn);
    return json_is_null(v) ? NULL : v;
}

static int bad_type(struct e2b_error **err, const char *jn, const char *want)
{
    return e2b_error_set(err, E2B_ERR_INVALID, "invalid value for %s field %s", want, jn);
}

int e2b_pj_str(const json_t *obj, const char *jn, const char *pn, const char **ret, struct e2b_error **err)
{
    json_t *v = e2b_pj_get(obj, jn, pn);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return bad_type(err, jn, "string");
    *ret = json_string_value(v);
    return 0;
}

int e2b_pj_u32(const json_t *obj, const char *jn, const char *pn, uint32_t *ret, bool *present,
               struct e2b_error **err)
{
    json_t *v = e2b_pj_get(obj, jn, pn);
    if (present)
        *present = false;
    if (!v)
        return 0;
    long long x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) <= 4294967295.0 &&
               json_real_value(v) == (double)(long long)json_real_value(v)) { /* in range before the cast */
        x = (long long)json_real_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *e;
        errno = 0;
        x = strtoll(s, &e, 10);
        if (!*s || *e || errno)
            return bad_type(err, jn, "uint32");
    } else {
        return bad_type(err, jn, "uint32");
    }
    if (x < 0 || x > 0xffffffffLL)
        return bad_type(err, jn, "uint32");
    *ret = (uint32_t)x;
    if (present)
        *present = true;
    return 0;
}

int e2b_pj_bool(const json_t *obj, const char *jn, const char *pn, bool *ret, struct e2b_error **err)
{
    json_t *v = e2b_pj_get(obj, jn, pn);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return bad_type(err, jn, "bool");
    *ret = json_is_true(v);
    return 0;
}

int e2b_pj_obj(const json_t *obj, const char *jn, const char *pn, json_t **ret, struct e2b_error **err)
{
    json_t *v = e2b_pj_get(obj, jn, pn);
    if (!v)
        return 0;
    if (!json_is_object(v))
        return bad_type(err, jn, "message");
    *ret = v;
    return 0;
}

int e2b_pj_bytes(const json_t *obj, const char *jn, const char *pn, uint8_t **ret, size_t *len,
                 bool *present, struct e2b_error **err)
{
    json_t *v = e2b_pj_get(obj, jn, pn);
    if (present)
        *present = false;
    if (!v)
        return 0;
    if (!json_is_string(v))
        return bad_type(err, jn, "bytes");
    ssize_t n = e2b_base64_decode(json_string_value(v), json_string_length(v), ret);
    if (n < 0)
        return bad_type(err, jn, "bytes");
    *len = (size_t)n;
    if (present)
        *present = true;
    return 0;
}

char *e2b_rpc_timestamp(int64_t sec, long nsec)
{
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[40];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    if (nsec == 0)
        return xasprintf("%sZ", base);
    if (nsec % 1000000 == 0)
        return xasprintf("%s.%03ldZ", base, nsec / 1000000);
    if (nsec % 1000 == 0)
        return xasprintf("%s.%06ldZ", base, nsec / 1000);
    return xasprintf("%s.%09ldZ", base, nsec);
}
