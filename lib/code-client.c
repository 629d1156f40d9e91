/* code-client.c - see code-client.h */
#include "code-client.h"
#include "http.h"
#include "strbuf.h"

void e2b_code_target_from_envd(const struct e2b_envd_endpoint *ep, struct e2b_code_target *t)
{
    memset(t, 0, sizeof(*t));
    const char *b = ep->base ? ep->base : "";
    const char *host = strstr(b, "://");
    host = host ? host + 3 : b;
    if (e2b_str_has_prefix(host, "49983-")) {
        t->base = xasprintf("%.*s%d-%s", (int)(host - b), b, E2B_CODE_PORT, host + 6);
    } else {
        t->base = xstrdup(b);
        t->sandbox_id = ep->sandbox_id ? xstrdup(ep->sandbox_id) : NULL;
    }
    t->access_token = ep->access_token ? xstrdup(ep->access_token) : NULL;
}

void e2b_code_target_release(struct e2b_code_target *t)
{
    free(t->base);
    free(t->sandbox_id);
    free(t->access_token);
    memset(t, 0, sizeof(*t));
}

static char **headers(const struct e2b_code_target *t, bool json_body)
{
    char **h = NULL;
    if (json_body)
        h = e2b_strv_push(h, "Content-Type: application/json");
    if (t->access_token) {
        _cleanup_free_ char *l = xasprintf("X-Access-Token: %s", t->access_token);
        h = e2b_strv_push(h, l);
    }
    if (t->sandbox_id && !t->connect) {
        _cleanup_free_ char *l = xasprintf("E2b-Sandbox-Id: %s", t->sandbox_id);
        _cleanup_free_ char *p = xasprintf("E2b-Sandbox-Port: %d", E2B_CODE_PORT);
        h = e2b_strv_push(h, l);
        h = e2b_strv_push(h, p);
    }
    return h;
}

static int answer_error(const struct e2b_http_resp *resp, const char *what, struct e2b_error **err)
{
    _cleanup_free_ char *m = e2b_http_error_message(resp->status, resp->body.buf, resp->body.len);
    int r = e2b_error_set(err, e2b_http_status_errcode(resp->status), "code interpreter: %s: %s",
                          what, m);
    if (err && *err)
        (*err)->http_status = resp->status;
    return r;
}

struct lines {
    struct strbuf buf;
    int (*on_line)(json_t *, void *);
    void *ud;
    struct e2b_error *err;
    bool stopped;
};

static int take_line(struct lines *l, const char *s, size_t n)
{
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    if (!n)
        return 0;
    json_t *j = json_loadb(s, n, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return e2b_error_set(&l->err, E2B_ERR_API,
                             "code interpreter: a line of its answer is not a JSON object");
    }
    int r = l->on_line(j, l->ud);
    json_decref(j);
    if (r < 0)
        l->stopped = true;
    return r;
}

static int on_data(const void *data, size_t len, void *ud)
{
    struct lines *l = ud;
    strbuf_add(&l->buf, data, len);
    size_t start = 0;
    for (;;) {
        const char *nl = memchr(l->buf.buf + start, '\n', l->buf.len - start);
        if (!nl)
            break;
        size_t n = (size_t)(nl - (l->buf.buf + start));
        if (take_line(l, l->buf.buf + start, n) < 0)
            return -1;
        start += n + 1;
    }
    strbuf_consume(&l->buf, start);
    return 0;
}

int e2b_code_execute(const struct e2b_code_target *t, const json_t *req, long timeout_ms,
                     int (*on_line)(json_t *line, void *ud), void *ud, struct e2b_error **err)
{
    _cleanup_strv_ char **h = headers(t, true);
    _cleanup_free_ char *body = e2b_json_dump(req, JSON_COMPACT);
    struct lines l = { .on_line = on_line, .ud = ud };
    strbuf_init(&l.buf);
    struct e2b_http_req hr = { .method = "POST",
                               .base = t->base,
                               .path = "/execute",
                               .headers = (const char *const *)h,
                               .body = body,
                               .body_len = strlen(body),
                               .on_data = on_data,
                               .ud = &l,
                               .timeout_ms = timeout_ms,
                               .keep_error_status = true,
                               .connect = t->connect,
                               .connect_ud = t->connect_ud };
    struct e2b_http_resp resp;
    int r = e2b_http_request(&hr, &resp, err);
    if (r == 0 && resp.status >= 400)
        r = answer_error(&resp, "execute", err);
    else if (r == 0 && l.buf.len && !l.stopped) /* a last line without its newline */
        take_line(&l, l.buf.buf, l.buf.len);
    if (l.err || l.stopped) { /* curl's "write error" is not the story */
        if (err && *err) {
            e2b_error_free(*err);
            *err = NULL;
        }
        r = l.err ? -1 : 0;
        if (l.err && err)
            *err = TAKE_PTR(l.err);
        e2b_error_free(l.err);
    }
    e2b_http_resp_release(&resp);
    strbuf_release(&l.buf);
    return r;
}

int e2b_code_call(const struct e2b_code_target *t, const char *method, const char *path,
                  const json_t *body, json_t **ret, struct e2b_error **err)
{
    _cleanup_strv_ char **h = headers(t, body != NULL);
    _cleanup_free_ char *b = body ? e2b_json_dump(body, JSON_COMPACT) : NULL;
    struct e2b_http_req hr = { .method = method,
                               .base = t->base,
                               .path = path,
                               .headers = (const char *const *)h,
                               .body = b,
                               .body_len = b ? strlen(b) : 0,
                               .timeout_ms = 120000,
                               .keep_error_status = true,
                               .connect = t->connect,
                               .connect_ud = t->connect_ud };
    struct e2b_http_resp resp;
    int r = e2b_http_request(&hr, &resp, err);
    if (r == 0 && resp.status >= 400)
        r = answer_error(&resp, path, err);
    else if (r == 0 && ret)
        r = e2b_json_parse(resp.body.len ? resp.body.buf : "null",
                           resp.body.len ? resp.body.len : 4, "code interpreter answer", ret, err);
    e2b_http_resp_release(&resp);
    return r;
}
