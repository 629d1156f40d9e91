/* serve-volumes.c - see serve-volumes.h */
#include "serve-volumes.h"
#include "envd-crypto.h"
#include "fsutil.h"
#include "volume-store.h"

#include <stdarg.h>
#include <strings.h>
#include <poll.h>
#include <sys/socket.h>

#define META_BODY_MAX 65536
#define BODY_TIMEOUT_MS 60000
#define IO_BUF 262144

/* E2B's VolumeAndToken (with_token) or Volume, and ours: quotaMB, createdAt. */
static json_t *volume_json(const json_t *v, bool with_token)
{
    json_t *o = json_pack("{s:O?, s:O?}", "volumeID", json_object_get(v, "volumeID"), "name",
                          json_object_get(v, "name"));
    if (with_token)
        json_object_set(o, "token", json_object_get(v, "token"));
    static const char *const ours[] = {"quotaMB", "createdAt", "limits", NULL};
    for (const char *const *k = ours; *k; k++)
        if (json_object_get(v, *k))
            json_object_set(o, *k, json_object_get(v, *k));
    return o;
}

void e2b_serve_volumes(const struct e2b_serve_opts *o, const struct e2b_http1_head *r,
                       const struct strbuf *body, struct e2b_serve_reply *out)
{
    struct e2b_backend *b = o->backend;
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_json_ json_t *res = NULL;
    const char *m = r->method, *id = r->path[8] ? r->path + 9 : "";
    if (*id && strchr(id, '/'))
        return e2b_serve_reply_error(out, 404, "no route %s %s", m, r->path);
    _cleanup_free_ char *vid = *id ? e2b_http1_unescape(id, strlen(id), false) : NULL;
    if (*id && !vid)
        return e2b_serve_reply_error(out, 400, "'%s' is not URL-encoded", id);
    if (!*id && STREQ(m, "GET")) {
        if (b->ops->volumes.list(b, &res, &err) < 0)
            return e2b_serve_reply_fail(out, err);
        json_t *list = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(res, i, v)
            json_array_append_new(list, volume_json(v, false));
        out->status = 200, out->body = list;
        return;
    }
    if (!*id && STREQ(m, "POST")) {
        _cleanup_json_ json_t *req = body->len ? json_loadb(body->buf, body->len, 0, NULL) : NULL;
        json_t *name = json_object_get(req, "name"), *quota = json_object_get(req, "quotaMB");
        if (!json_is_object(req) || !json_is_string(name))
            return e2b_serve_reply_error(out, 400, "the body must be {name} (a JSON object)");
        if (quota && !json_is_null(quota) && !json_is_integer(quota))
            return e2b_serve_reply_error(out, 400, "quotaMB must be a whole number of MiB");
        if (b->ops->volumes.create(b, json_string_value(name), quota ? json_integer_value(quota) : 0, &res,
                                   &err) < 0)
            return e2b_serve_reply_fail(out, err);
        out->status = 201, out->body = volume_json(res, true);
        return;
    }
    if (!*id) {
        out->headers = xstrdup("Allow: GET, POST\r\n");
        return e2b_serve_reply_error(out, 405, "method %s is not allowed on %s (allowed: GET, POST)", m, r->path);
    }
    if (STREQ(m, "GET")) {
        if (b->ops->volumes.get(b, vid, &res, &err) < 0)
            return e2b_serve_reply_fail(out, err);
        out->status = 200, out->body = volume_json(res, true);
        return;
    }
    if (STREQ(m, "DELETE")) {
        if (b->ops->volumes.delete(b, vid, &err) < 0)
            return e2b_serve_reply_fail(out, err);
        out->status = 204;
        return;
    }
    out->headers = xstrdup("Allow: GET, DELETE\r\n");
    e2b_serve_reply_error(out, 405, "method %s is not allowed on %s (allowed: GET, DELETE)", m, r->path);
}

/* ---- /volumecontent ------------------------------------------------------------ */

bool e2b_serve_volume_content_route(const struct e2b_http1_head *r)
{
    return e2b_str_has_prefix(r->path, "/volumecontent/");
}

static void answer(struct e2b_serve_conn *c, int status, json_t *body)
{
    e2b_serve_respond(c->fd, status, body, NULL, true);
    json_decref(body);
}

static void answer_error(struct e2b_serve_conn *c, int status, const char *fmt, ...) _printf_(3, 4);
static void answer_error(struct e2b_serve_conn *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    /* the answer, then what the client still sends is drained: it reads the answer, not a reset */
    e2b_serve_fail_and_close(c, status, e2b_serve_error_body(status, "%s", msg));
}

static void answer_fail(struct e2b_serve_conn *c, const struct e2b_error *e)
{
    answer_error(c, e2b_serve_status_of(e), "%s", e->msg);
}

/* A query number: -1 when absent; false (answered) when not one. */
static bool query_ll(struct e2b_serve_conn *c, const struct e2b_http1_head *r, const char *name, long long *ret)
{
    _cleanup_free_ char *v = e2b_http1_query_param(r->query, name);
    *ret = -1;
    if (!v || !*v)
        return true;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*end || errno || n < 0 || n > 0xffffffffLL) {
        answer_error(c, 400, "%s '%s' is not a number", name, v);
        return false;
    }
    *ret = n;
    return true;
}

static bool query_bool(const struct e2b_http1_head *r, const char *name)
{
    _cleanup_free_ char *v = e2b_http1_query_param(r->query, name);
    return v && (STREQ(v, "true") || STREQ(v, "1"));
}

static bool read_attrs(struct e2b_serve_conn *c, const struct e2b_http1_head *r, struct e2b_volume_attrs *a)
{
    return query_ll(c, r, "uid", &a->uid) && query_ll(c, r, "gid", &a->gid) && query_ll(c, r, "mode", &a->mode);
}

/* The request body, decoded, handed to fn chunk by chunk as it arrives. */
static int stream_body(struct e2b_serve_conn *c, const struct e2b_http1_head *r, uint64_t max,
                       int (*fn)(const char *data, size_t len, void *ud, struct e2b_error **err), void *ud,
                       int *ret_status, struct e2b_error **err)
{
    struct e2b_http1_body b;
    int st = e2b_http1_body_request(&b, r, max);
    if (st < 0) {
        *ret_status = -st;
        return e2b_error_set(err, E2B_ERR_INVALID, "the request body's framing is malformed or too long");
    }
    strbuf_consume(&c->in, r->len);
    /* a client that waits to be told to send its body (curl does, for big ones) */
    if (!b.done && e2b_http1_header_has_token(r, "Expect", "100-continue") &&
        e2b_send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0) {
        *ret_status = 0;
        return e2b_error_sys(err, errno, "cannot answer the client");
    }
    int64_t deadline = e2b_now_ms() + BODY_TIMEOUT_MS;
    for (;;) {
        while (c->in.len) {
            size_t used = 0, dlen = 0;
            const char *data = NULL;
            int fr = e2b_http1_body_next(&b, c->in.buf, c->in.len, &used, &data, &dlen);
            if (fr < 0) {
                *ret_status = -fr;
                return e2b_error_set(err, E2B_ERR_INVALID, "the request body is malformed or too long");
            }
            int r2 = dlen ? fn(data, dlen, ud, err) : 0;
            strbuf_consume(&c->in, used);
            if (r2 < 0) {
                *ret_status = 0;
                return -1;
            }
            if (fr == 1)
                return 0;
            if (!used && !dlen)
                break;
        }
        if (b.done)
            return 0;
        /* big reads: a file's bytes, not a request head's */
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        int64_t left = deadline - e2b_now_ms();
        int pr = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (pr < 0 && errno == EINTR)
            continue;
        strbuf_grow(&c->in, IO_BUF);
        ssize_t n = pr > 0 ? recv(c->fd, c->in.buf + c->in.len, IO_BUF, 0) : -1;
        if (n < 0 && pr > 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            *ret_status = 408;
            return e2b_error_set(err, E2B_ERR_TIMEOUT, "the request body did not arrive whole");
        }
        c->in.len += (size_t)n;
        c->in.buf[c->in.len] = '\0';
        deadline = e2b_now_ms() + BODY_TIMEOUT_MS; /* idle, not total: a big upload takes its time */
    }
}

static int to_writer(const char *data, size_t len, void *ud, struct e2b_error **err)
{
    return e2b_volume_write(ud, data, len, err);
}

static int to_strbuf(const char *data, size_t len, void *ud, struct e2b_error **err)
{
    strbuf_add(ud, data, len);
    return 0;
}

static void put_file(struct e2b_serve_conn *c, const struct e2b_http1_head *r, struct e2b_volume *v,
                     const char *path)
{
    struct e2b_volume_attrs a;
    if (!read_attrs(c, r, &a))
        return;
    _cleanup_error_ struct e2b_error *err = NULL;
    struct e2b_volume_writer w;
    if (e2b_volume_write_begin(v, path, &a, &w, &err) < 0)
        return answer_fail(c, err);
    int status = 0;
    if (stream_body(c, r, 0, to_writer, &w, &status, &err) < 0) {
        e2b_volume_write_abort(&w);
        return answer_error(c, status ? status : e2b_serve_status_of(err), "%s", err->msg);
    }
    json_t *e = NULL;
    if (e2b_volume_write_commit(&w, v, &e, &err) < 0)
        return answer_fail(c, err);
    answer(c, 200, e);
}

static void get_file(struct e2b_serve_conn *c, struct e2b_volume *v, const char *path)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    int fd = -1;
    uint64_t size = 0;
    if (e2b_volume_open_read(v, path, &fd, &size, &err) < 0)
        return answer_fail(c, err);
    _cleanup_free_ char *head = xasprintf("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                          "Content-Length: %llu\r\nConnection: close\r\n\r\n",
                                          (unsigned long long)size);
    char *buf = xmalloc(IO_BUF);
    bool ok = e2b_send_all(c->fd, head, strlen(head)) == 0;
    uint64_t sent = 0;
    while (ok && sent < size) {
        ssize_t n = read(fd, buf, IO_BUF);
        if (n <= 0)
            break; /* shrunk meanwhile: the client sees a short body */
        ok = e2b_send_all(c->fd, buf, (size_t)n) == 0;
        sent += (uint64_t)n;
    }
    free(buf);
    close(fd);
}

static void patch_path(struct e2b_serve_conn *c, const struct e2b_http1_head *r, struct e2b_volume *v,
                       const char *path)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    struct strbuf in = STRBUF_INIT;
    int status = 0;
    if (stream_body(c, r, META_BODY_MAX, to_strbuf, &in, &status, &err) < 0) {
        strbuf_release(&in);
        return answer_error(c, status ? status : 400, "%s", err->msg);
    }
    _cleanup_json_ json_t *j = in.len ? json_loadb(in.buf, in.len, 0, NULL) : json_object();
    strbuf_release(&in);
    struct e2b_volume_attrs a = E2B_VOLUME_ATTRS_NONE;
    static const char *const keys[] = {"uid", "gid", "mode"};
    long long *slots[] = {&a.uid, &a.gid, &a.mode};
    for (size_t i = 0; i < 3; i++) {
        json_t *x = json_object_get(j, keys[i]);
        if (!x || json_is_null(x))
            continue;
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return answer_error(c, 400, "%s must be a whole number", keys[i]);
        *slots[i] = json_integer_value(x);
    }
    if (!json_is_object(j))
        return answer_error(c, 400, "the body must be {uid, gid, mode}");
    json_t *e = NULL;
    if (e2b_volume_set_attrs(v, path, &a, &e, &err) < 0)
        return answer_fail(c, err);
    answer(c, 200, e);
}

void e2b_serve_volume_content(struct e2b_serve_conn *c, const struct e2b_http1_head *r)
{
    struct e2b_backend *b = c->o->backend;
    _cleanup_error_ struct e2b_error *err = NULL;
    const char *rest = r->path + strlen("/volumecontent/");
    size_t idlen = strcspn(rest, "/");
    const char *what = rest[idlen] ? rest + idlen + 1 : "";
    if (!idlen || (!STREQ(what, "file") && !STREQ(what, "dir") && !STREQ(what, "path")))
        return answer_error(c, 404, "no route %s %s", r->method, r->path);
    const char *auth = e2b_http1_header(r, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7])
        return answer_error(c, 401, "missing volume token (Authorization: Bearer <token>)");
    if (!b->ops->volumes.open)
        return answer_error(c, 501, "this server's volumes are not on this machine");
    _cleanup_free_ char *id = e2b_http1_unescape(rest, idlen, false);
    struct e2b_volume v;
    if (!id || b->ops->volumes.open(b, id, &v, &err) < 0)
        return answer_error(c, err && err->code == E2B_ERR_NOT_FOUND ? 404 : 500, "%s",
                            err ? err->msg : "bad volume ID");
    /* by its ID only (a name is the API key's business), and its own token */
    if (!STREQ(e2b_json_str(v.meta, "volumeID"), id) || !e2b_volume_token_ok(&v, auth + 7)) {
        e2b_volume_close(&v);
        return answer_error(c, 401, "the token is not this volume's");
    }
    _cleanup_free_ char *path = e2b_http1_query_param(r->query, "path");
    const char *p = path ? path : "/";
    const char *m = r->method;
    json_t *res = NULL;
    long long depth;
    if (STREQ(what, "file") && STREQ(m, "GET")) {
        get_file(c, &v, p);
    } else if (STREQ(what, "file") && STREQ(m, "PUT")) {
        put_file(c, r, &v, p);
    } else if (STREQ(what, "dir") && STREQ(m, "GET")) {
        if (query_ll(c, r, "depth", &depth)) {
            if (e2b_volume_list_dir(&v, p, depth < 1 ? 1 : (int)(depth > 32 ? 32 : depth), &res, &err) < 0)
                answer_fail(c, err);
            else
                answer(c, 200, res);
        }
    } else if (STREQ(what, "dir") && STREQ(m, "POST")) {
        struct e2b_volume_attrs a;
        if (read_attrs(c, r, &a)) {
            if (e2b_volume_mkdir(&v, p, &a, query_bool(r, "force"), &res, &err) < 0)
                answer_fail(c, err);
            else
                answer(c, 201, res);
        }
    } else if (STREQ(what, "path") && STREQ(m, "GET")) {
        if (e2b_volume_stat(&v, p, &res, &err) < 0)
            answer_fail(c, err);
        else
            answer(c, 200, res);
    } else if (STREQ(what, "path") && STREQ(m, "PATCH")) {
        patch_path(c, r, &v, p);
    } else if (STREQ(what, "path") && STREQ(m, "DELETE")) {
        if (e2b_volume_remove(&v, p, &err) < 0)
            answer_fail(c, err);
        else
            answer(c, 204, NULL);
    } else {
        answer_error(c, 405, "method %s is not allowed on %s", m, r->path);
    }
    e2b_volume_close(&v);
}
