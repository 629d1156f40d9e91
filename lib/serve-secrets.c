/* serve-secrets.c - see serve-secrets.h */
#include "serve-secrets.h"
#include "serve-conn.h"


#define PAGE_MAX 100

static void reply(struct e2b_serve_reply *out, int status, json_t *body)
{
    out->status = status;
    out->body = body;
}

static json_t *body_object(const struct strbuf *body, struct e2b_serve_reply *out)
{
    json_t *j = body->len ? json_loadb(body->buf, body->len, 0, NULL) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        e2b_serve_reply_error(out, 400, "request body is not a JSON object");
        return NULL;
    }
    return j;
}

/* ?limit&nextToken (an offset this server gave) over the whole list. */
static void page(const struct e2b_http1_head *r, json_t *all, struct e2b_serve_reply *out)
{
    _cleanup_free_ char *l = e2b_http1_query_param(r->query, "limit");
    _cleanup_free_ char *t = e2b_http1_query_param(r->query, "nextToken");
    long limit = l ? strtol(l, NULL, 10) : PAGE_MAX, off = t ? strtol(t, NULL, 10) : 0;
    if (limit < 1 || limit > PAGE_MAX || off < 0 || (t && !*t))
        return e2b_serve_reply_error(out, 400, "limit is 1 to %d, nextToken one this server gave", PAGE_MAX);
    json_t *p = json_array();
    size_t n = json_array_size(all);
    for (size_t i = (size_t)off; i < n && json_array_size(p) < (size_t)limit; i++)
        json_array_append(p, json_array_get(all, i));
    if ((size_t)off + (size_t)limit < n)
        out->headers = xasprintf("X-Next-Token: %ld\r\n", off + limit);
    reply(out, 200, p);
}

void e2b_serve_secrets(const struct e2b_serve_opts *o, const struct e2b_http1_head *r,
                       const struct strbuf *body, struct e2b_serve_reply *out)
{
    struct e2b_backend *b = o->backend;
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_json_ json_t *req = NULL, *res = NULL;
    const char *m = r->method, *id = r->path[8] ? r->path + 9 : "";
    if (*id && strchr(id, '/'))
        return e2b_serve_reply_error(out, 404, "no route %s %s", m, r->path);
    _cleanup_free_ char *sid = *id ? e2b_http1_unescape(id, strlen(id), false) : NULL;
    if (!*id && STREQ(m, "GET")) {
        if (b->ops->secrets.list(b, &res, &err) < 0)
            return e2b_serve_reply_fail(out, err);
        return page(r, res, out);
    }
    if (!*id && STREQ(m, "POST")) {
        if (!(req = body_object(body, out)))
            return;
        json_t *name = json_object_get(req, "name"), *value = json_object_get(req, "value");
        if (!json_is_string(name) || !json_is_string(value))
            return e2b_serve_reply_error(out, 400, "name and value are required strings");
        if (b->ops->secrets.create(b, json_string_value(name), json_string_value(value),
                                   json_object_get(req, "metadata"), &res, &err) < 0)
            return e2b_serve_reply_fail(out, err);
        return reply(out, 201, json_incref(res));
    }
    if (!*id) {
        out->headers = xstrdup("Allow: GET, POST\r\n");
        return e2b_serve_reply_error(out, 405, "method %s is not allowed on %s (allowed: GET, POST)", m, r->path);
    }
    if (!sid)
        return e2b_serve_reply_error(out, 400, "'%s' is not URL-encoded", id);
    if (STREQ(m, "GET")) {
        if (b->ops->secrets.get(b, sid, &res, &err) < 0)
            return e2b_serve_reply_fail(out, err);
        return reply(out, 200, json_incref(res));
    }
    if (STREQ(m, "POST")) {
        if (!(req = body_object(body, out)))
            return;
        json_t *value = json_object_get(req, "value");
        if (!json_is_string(value))
            return e2b_serve_reply_error(out, 400, "value is a required string");
        if (b->ops->secrets.update(b, sid, json_string_value(value), json_object_get(req, "metadata"), &res,
                                   &err) < 0)
            return e2b_serve_reply_fail(out, err);
        return reply(out, 200, json_incref(res));
    }
    if (STREQ(m, "DELETE")) {
        if (b->ops->secrets.delete(b, sid, &err) < 0)
            return e2b_serve_reply_fail(out, err);
        return reply(out, 204, NULL);
    }
    out->headers = xstrdup("Allow: GET, POST, DELETE\r\n");
    e2b_serve_reply_error(out, 405, "method %s is not allowed on %s (allowed: GET, POST, DELETE)", m, r->path);
}
