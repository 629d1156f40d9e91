/* backend-remote.c - the backend for an E2B-compatible REST API (E2B cloud
 * or `e2b serve`): every op is one or two API calls with X-API-Key. */
#include "backend.h"
#include "fsutil.h"
#include "http.h"
#include "strbuf.h"

struct remote {
    char *api_url;
    char *api_key;
    char *sandbox_url; /* E2B_SANDBOX_URL, or NULL */
    e2b_backend_signer *sign; /* a cluster node's calls: signed, no key */
    void *sign_ud;
};

static int call(struct remote *r, const char *method, const char *path, json_t *body,
                json_t **ret, struct e2b_http_resp *ret_resp, struct e2b_error **err)
{
    _cleanup_free_ char *data = body ? e2b_json_dump(body, 0) : NULL;
    char *signed_by[2] = { NULL, NULL };
    if (r->sign)
        r->sign(r->sign_ud, method, path, data, data ? strlen(data) : 0, signed_by);
    _cleanup_free_ char *key = r->sign ? NULL : xasprintf("X-API-Key: %s", r->api_key);
    const char *headers[] = { r->sign ? signed_by[0] : key, "Content-Type: application/json",
                              "Accept: application/json", signed_by[1], NULL };
    struct e2b_http_req req = {.method = method, .base = r->api_url, .path = path, .headers = headers,
                               .body = data, .body_len = data ? strlen(data) : 0,
                               .timeout_ms = 120000, .retries = 2};
    struct e2b_http_resp resp;
    if (ret_resp) /* released by callers whatever happens */
        memset(ret_resp, 0, sizeof(*ret_resp));
    if (e2b_http_request(&req, &resp, err) < 0) {
        e2b_http_resp_release(&resp);
        free(signed_by[0]);
        free(signed_by[1]);
        return -1;
    }
    int rc = 0;
    if (ret) {
        *ret = NULL;
        if (resp.body.len)
            rc = e2b_json_parse(resp.body.buf, resp.body.len, "API response", ret, err);
        else
            *ret = json_null();
    }
    if (ret_resp)
        *ret_resp = resp;
    else
        e2b_http_resp_release(&resp);
    free(signed_by[0]);
    free(signed_by[1]);
    return rc;
}

static char *enc(const char *s) { return e2b_url_escape(s, false); }

static int r_create(struct e2b_backend *b, const struct e2b_sandbox_spec *s, json_t **ret,
                    struct e2b_error **err)
{
    /* E2B's API sizes a sandbox by its template: say so instead of dropping them */
    if (s->cpu_count || s->memory_mb || s->disk_mb || s->pids_max)
        return e2b_error_set(err, E2B_ERR_USAGE,
                             "cannot create a sandbox through %s with CPU, memory, disk or process limits: "
                             "an E2B API takes them from the template",
                             ((struct remote *)b->impl)->api_url);
    _cleanup_json_ json_t *body = json_pack("{s:s, s:i, s:b, s:b, s:b}", "templateID",
                                            s->template ? s->template : "base", "timeout",
                                            s->timeout_s, "secure", s->secure,
                                            "allow_internet_access", s->allow_internet,
                                            "autoPause", s->auto_pause);
    if (s->metadata)
        json_object_set(body, "metadata", s->metadata);
    if (s->env_vars)
        json_object_set(body, "envVars", s->env_vars);
    if (s->network)
        json_object_set(body, "network", s->network);
    if (s->volume_mounts)
        json_object_set(body, "volumeMounts", s->volume_mounts);
    if (s->auto_resume)
        json_object_set_new(body, "autoResume", json_pack("{s:b}", "enabled", 1));
    if (s->cluster_template) /* heeded only from a node of the same cluster */
        json_object_set_new(body, "clusterTemplate", json_string(s->cluster_template));
    return call(b->impl, "POST", "/sandboxes", body, ret, NULL, err);
}

static int r_list(struct e2b_backend *b, const struct e2b_sandbox_filter *f, json_t **ret,
                  char **ret_next, struct e2b_error **err)
{
    struct strbuf q = STRBUF_INIT;
    strbuf_addf(&q, "/v2/sandboxes?state=%s", f->states ? f->states : "running");
    if (f->limit > 0)
        strbuf_addf(&q, "&limit=%d", f->limit);
    if (f->next_token) {
        _cleanup_free_ char *t = enc(f->next_token);
        strbuf_addf(&q, "&nextToken=%s", t);
    }
    if (f->template) {
        _cleanup_free_ char *t = enc(f->template);
        strbuf_addf(&q, "&template=%s", t);
    }
    if (f->metadata && json_object_size(f->metadata)) {
        struct strbuf m = STRBUF_INIT;
        const char *k;
        json_t *v;
        json_object_foreach(f->metadata, k, v) {
            _cleanup_free_ char *ek = enc(k);
            _cleanup_free_ char *ev = enc(json_string_value(v) ? json_string_value(v) : "");
            strbuf_addf(&m, "%s%s=%s", m.len ? "&" : "", ek, ev);
        }
        _cleanup_free_ char *em = enc(m.buf);
        strbuf_addf(&q, "&metadata=%s", em);
        strbuf_release(&m);
    }
    struct e2b_http_resp resp;
    int r = call(b->impl, "GET", q.buf, NULL, ret, &resp, err);
    strbuf_release(&q);
    if (r == 0) {
        const char *next = e2b_http_resp_header(&resp, "X-Next-Token");
        *ret_next = next && *next ? xstrdup(next) : NULL;
        if (!json_is_array(*ret)) {
            json_decref(*ret);
            r = e2b_error_set(err, E2B_ERR_API, "API returned something other than a list of sandboxes");
        }
    }
    e2b_http_resp_release(&resp);
    return r;
}

static int r_get(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *e = enc(id);
    _cleanup_free_ char *p = xasprintf("/sandboxes/%s", e);
    return call(b->impl, "GET", p, NULL, ret, NULL, err);
}

static int simple(struct e2b_backend *b, const char *method, const char *id, const char *suffix,
                  json_t *body, struct e2b_error **err)
{
    _cleanup_free_ char *e = enc(id);
    _cleanup_free_ char *p = xasprintf("/sandboxes/%s%s", e, suffix);
    return call(b->impl, method, p, body, NULL, NULL, err);
}

static int r_kill(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    return simple(b, "DELETE", id, "", NULL, err);
}

static int r_set_timeout(struct e2b_backend *b, const char *id, int t, struct e2b_error **err)
{
    _cleanup_json_ json_t *body = json_pack("{s:i}", "timeout", t);
    return simple(b, "POST", id, "/timeout", body, err);
}

static int r_pause(struct e2b_backend *b, const char *id, bool to_disk, struct e2b_error **err)
{
    return simple(b, "POST", id, "/pause", NULL, err);
}

static int r_connect(struct e2b_backend *b, const char *id, int t, json_t **ret, bool *ret_resumed,
                     struct e2b_error **err)
{
    _cleanup_json_ json_t *body = json_pack("{s:i}", "timeout", t);
    _cleanup_free_ char *e = enc(id);
    _cleanup_free_ char *p = xasprintf("/sandboxes/%s/connect", e);
    struct e2b_http_resp resp;
    if (call(b->impl, "POST", p, body, ret, &resp, err) < 0)
        return -1;
    *ret_resumed = resp.status == 201;
    e2b_http_resp_release(&resp);
    return 0;
}

static int r_metrics(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *e = enc(id);
    _cleanup_free_ char *p = xasprintf("/sandboxes/%s/metrics", e);
    return call(b->impl, "GET", p, NULL, ret, NULL, err);
}

static int r_logs(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *e = enc(id);
    _cleanup_free_ char *p = xasprintf("/v2/sandboxes/%s/logs?limit=1000", e);
    json_t *o = NULL;
    if (call(b->impl, "GET", p, NULL, &o, NULL, err) < 0)
        return -1;
    json_t *logs = json_object_get(o, "logs");
    *ret = json_is_array(logs) ? json_incref(logs) : json_array();
    json_decref(o);
    return 0;
}

static int r_adopt(struct e2b_backend *b, const char *id, const struct e2b_sandbox_spec *spec,
                   json_t **ret, struct e2b_error **err)
{
    return e2b_error_set(
        err, E2B_ERR_UNSUPPORTED,
        "warm sandboxes are handed out by the server that keeps them, not through %s",
        ((struct remote *)b->impl)->api_url);
}

static int r_update_network(struct e2b_backend *b, const char *id, const json_t *net, struct e2b_error **err)
{
    _cleanup_free_ char *e = enc(id);
    _cleanup_free_ char *p = xasprintf("/sandboxes/%s/network", e);
    return call(b->impl, "PUT", p, (json_t *)net, NULL, NULL, err);
}

static int r_envd_endpoint(struct e2b_backend *b, const char *id, struct e2b_envd_endpoint *ep,
                           struct e2b_error **err)
{
    struct remote *r = b->impl;
    _cleanup_json_ json_t *sbx = NULL;
    if (r_get(b, id, &sbx, err) < 0)
        return -1;
    memset(ep, 0, sizeof(*ep));
    const char *domain = e2b_json_str(sbx, "domain");
    if (r->sandbox_url) {
        ep->base = xstrdup(r->sandbox_url);
    } else if (domain && *domain) {
        ep->base = xasprintf("https://49983-%s.%s", id, domain);
    } else if (e2b_str_has_prefix(r->api_url, "https://api.")) {
        /* E2B's own shape: api.<domain> serves the API, <port>-<id>.<domain> the sandboxes */
        _cleanup_free_ char *d = xstrndup(r->api_url + 12, strcspn(r->api_url + 12, "/:"));
        ep->base = xasprintf("https://49983-%s.%s", id, d);
    } else {
        /* No domain: the API's own listener routes envd traffic by the
         * E2b-Sandbox-Id header (e2b serve does). The token goes nowhere
         * but to the server that issued it. */
        ep->base = xstrdup(r->api_url);
    }
    ep->sandbox_id = xstrdup(id);
    if (e2b_json_str(sbx, "envdAccessToken"))
        ep->access_token = xstrdup(e2b_json_str(sbx, "envdAccessToken"));
    return 0;
}

static int r_template_list(struct e2b_backend *b, json_t **ret, struct e2b_error **err)
{
    return call(b->impl, "GET", "/templates", NULL, ret, NULL, err);
}

static int r_template_get(struct e2b_backend *b, const char *name, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *e = enc(name);
    _cleanup_free_ char *p = xasprintf("/templates/%s", e);
    return call(b->impl, "GET", p, NULL, ret, NULL, err);
}

static int r_template_delete(struct e2b_backend *b, const char *name, struct e2b_error **err)
{
    _cleanup_free_ char *e = enc(name);
    _cleanup_free_ char *p = xasprintf("/templates/%s", e);
    /* An alias: ask what ID it names, as the API deletes by ID. */
    _cleanup_free_ char *ap = xasprintf("/templates/aliases/%s", e);
    json_t *alias = NULL;
    if (call(b->impl, "GET", ap, NULL, &alias, NULL, NULL) == 0 && e2b_json_str(alias, "templateID")) {
        _cleanup_free_ char *eid = enc(e2b_json_str(alias, "templateID"));
        free(p);
        p = xasprintf("/templates/%s", eid);
    }
    json_decref(alias);
    return call(b->impl, "DELETE", p, NULL, NULL, NULL, err);
}

static int r_snapshot_create(struct e2b_backend *b, const char *id, const char *name, json_t **ret,
                             struct e2b_error **err)
{
    _cleanup_free_ char *e = enc(id);
    _cleanup_free_ char *p = xasprintf("/sandboxes/%s/snapshots", e);
    _cleanup_json_ json_t *body = name ? json_pack("{s:s}", "name", name) : json_object();
    return call(b->impl, "POST", p, body, ret, NULL, err);
}

static int r_snapshot_list(struct e2b_backend *b, const struct e2b_snapshot_filter *f, json_t **ret,
                           char **ret_next, struct e2b_error **err)
{
    struct strbuf q = STRBUF_INIT;
    strbuf_addstr(&q, "/snapshots");
    const char *keys[] = { "sandboxID", "name", "nextToken" };
    const char *vals[] = { f->sandbox_id, f->name, f->next_token };
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (vals[i]) {
            _cleanup_free_ char *v = enc(vals[i]);
            strbuf_addf(&q, "%c%s=%s", strchr(q.buf, '?') ? '&' : '?', keys[i], v);
        }
    if (f->limit > 0)
        strbuf_addf(&q, "%climit=%d", strchr(q.buf, '?') ? '&' : '?', f->limit);
    struct e2b_http_resp resp;
    int r = call(b->impl, "GET", q.buf, NULL, ret, &resp, err);
    strbuf_release(&q);
    if (r == 0) {
        const char *next = e2b_http_resp_header(&resp, "X-Next-Token");
        *ret_next = next && *next ? xstrdup(next) : NULL;
        if (!json_is_array(*ret)) {
            json_decref(*ret);
            r = e2b_error_set(err, E2B_ERR_API,
                              "API returned something other than a list of snapshots");
        }
    }
    e2b_http_resp_release(&resp);
    return r;
}

/* E2B deletes a snapshot as the template it is. */
static int r_snapshot_delete(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    _cleanup_free_ char *e = enc(id);
    _cleanup_free_ char *p = xasprintf("/templates/%s", e);
    return call(b->impl, "DELETE", p, NULL, NULL, NULL, err);
}

static int r_snapshot_fork(struct e2b_backend *b, const char *id, int count, int timeout_s,
                           json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *e = enc(id);
    _cleanup_free_ char *p = xasprintf("/sandboxes/%s/fork", e);
    _cleanup_json_ json_t *body = json_pack("{s:i, s:i}", "count", count, "timeout", timeout_s);
    if (call(b->impl, "POST", p, body, ret, NULL, err) < 0)
        return -1;
    if (!json_is_array(*ret)) {
        json_decref(*ret);
        return e2b_error_set(err, E2B_ERR_API, "API returned something other than a list of forks");
    }
    return 0;
}

/* ---- volumes: /volumes with the API key, their files with each volume's token ---- */

static int r_volume_create(struct e2b_backend *b, const char *name, long long quota_mb, json_t **ret,
                           struct e2b_error **err)
{
    _cleanup_json_ json_t *body = json_pack("{s:s}", "name", name);
    if (quota_mb) /* ours; E2B's API sizes volumes itself */
        json_object_set_new(body, "quotaMB", json_integer(quota_mb));
    return call(b->impl, "POST", "/volumes", body, ret, NULL, err);
}

static int r_volume_list(struct e2b_backend *b, json_t **ret, struct e2b_error **err)
{
    return call(b->impl, "GET", "/volumes", NULL, ret, NULL, err);
}

static int r_volume_get(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *e = enc(id);
    _cleanup_free_ char *p = xasprintf("/volumes/%s", e);
    return call(b->impl, "GET", p, NULL, ret, NULL, err);
}

/* A volume by ID or name (the API takes IDs): its ID and token. */
static int volume_token(struct e2b_backend *b, const char *volume, char **ret_id, char **ret_token,
                        struct e2b_error **err)
{
    _cleanup_json_ json_t *v = NULL;
    if (r_volume_get(b, volume, &v, NULL) < 0) {
        _cleanup_json_ json_t *all = NULL;
        if (r_volume_list(b, &all, err) < 0)
            return -1;
        size_t i;
        json_t *x;
        const char *id = NULL;
        json_array_foreach(all, i, x)
            if (e2b_json_str(x, "name") && STREQ(e2b_json_str(x, "name"), volume))
                id = e2b_json_str(x, "volumeID");
        if (!id || r_volume_get(b, id, &v, err) < 0)
            return id ? -1 : e2b_error_set(err, E2B_ERR_NOT_FOUND, "volume '%s' not found", volume);
    }
    if (!e2b_json_str(v, "volumeID") || !e2b_json_str(v, "token"))
        return e2b_error_set(err, E2B_ERR_API, "the API gave volume '%s' without its token", volume);
    *ret_id = xstrdup(e2b_json_str(v, "volumeID"));
    *ret_token = xstrdup(e2b_json_str(v, "token"));
    return 0;
}

static int r_volume_delete(struct e2b_backend *b, const char *volume, struct e2b_error **err)
{
    _cleanup_free_ char *id = NULL, *token = NULL;
    if (volume_token(b, volume, &id, &token, err) < 0)
        return -1;
    _cleanup_free_ char *e = enc(id);
    _cleanup_free_ char *p = xasprintf("/volumes/%s", e);
    return call(b->impl, "DELETE", p, NULL, NULL, NULL, err);
}

struct content {
    struct e2b_backend *b;
    const char *method, *what, *path;
    int fd;                    /* streamed in (PUT) or out (GET), or -1 */
    json_t **ret;
};

static ssize_t read_fd(void *buf, size_t len, void *ud)
{
    ssize_t n;
    while ((n = read(*(int *)ud, buf, len)) < 0 && errno == EINTR)
        ;
    return n;
}

static int write_fd(const void *data, size_t len, void *ud)
{
    return e2b_write_all(*(int *)ud, data, len);
}

/* One call to /volumecontent/{id}/{what}?path=...[&depth=] */
static int content_call(struct content *c, const char *volume, const char *query_extra, struct e2b_error **err)
{
    struct remote *r = c->b->impl;
    _cleanup_free_ char *id = NULL, *token = NULL;
    if (volume_token(c->b, volume, &id, &token, err) < 0)
        return -1;
    _cleanup_free_ char *eid = enc(id);
    _cleanup_free_ char *epath = enc(c->path);
    _cleanup_free_ char *p = xasprintf("/volumecontent/%s/%s?path=%s%s", eid, c->what, epath, query_extra);
    _cleanup_free_ char *auth = xasprintf("Authorization: Bearer %s", token);
    const char *headers[] = {auth, "Content-Type: application/octet-stream", NULL};
    bool put = STREQ(c->method, "PUT");
    struct e2b_http_req req = {.method = c->method, .base = r->api_url, .path = p, .headers = headers,
                               .timeout_ms = 0, .retries = 0};
    if (put) {
        req.read_body = read_fd;
        req.body_size = -1;
        req.ud = &c->fd;
    } else if (c->fd >= 0) {
        req.on_data = write_fd;
        req.ud = &c->fd;
    }
    struct e2b_http_resp resp;
    int rc = e2b_http_request(&req, &resp, err);
    if (rc == 0 && c->ret)
        rc = e2b_json_parse(resp.body.buf, resp.body.len, "API response", c->ret, err);
    e2b_http_resp_release(&resp);
    return rc;
}

static int r_volume_ls(struct e2b_backend *b, const char *volume, const char *path, int depth, json_t **ret,
                       struct e2b_error **err)
{
    json_t *e = NULL;
    struct content st = {.b = b, .method = "GET", .what = "path", .path = path, .fd = -1, .ret = &e};
    if (content_call(&st, volume, "", NULL) == 0 && !STREQ(e2b_json_str(e, "type") ?: "", "directory")) {
        *ret = json_pack("[o]", e);
        return 0;
    }
    json_decref(e);
    _cleanup_free_ char *q = xasprintf("&depth=%d", depth);
    struct content c = {.b = b, .method = "GET", .what = "dir", .path = path, .fd = -1, .ret = ret};
    return content_call(&c, volume, q, err);
}

static int r_volume_read(struct e2b_backend *b, const char *volume, const char *path, int out_fd,
                         struct e2b_error **err)
{
    struct content c = {.b = b, .method = "GET", .what = "file", .path = path, .fd = out_fd};
    return content_call(&c, volume, "", err);
}

static int r_volume_write(struct e2b_backend *b, const char *volume, const char *path, int in_fd, json_t **ret,
                          struct e2b_error **err)
{
    struct content c = {.b = b, .method = "PUT", .what = "file", .path = path, .fd = in_fd, .ret = ret};
    return content_call(&c, volume, "", err);
}

/* ---- secrets ---- */

static int r_secret_create(struct e2b_backend *b, const char *name, const char *value, const json_t *meta,
                           json_t **ret, struct e2b_error **err)
{
    _cleanup_json_ json_t *body = json_pack("{s:s, s:s}", "name", name, "value", value);
    if (meta)
        json_object_set(body, "metadata", (json_t *)meta);
    return call(b->impl, "POST", "/secrets", body, ret, NULL, err);
}

static int r_secret_list(struct e2b_backend *b, json_t **ret, struct e2b_error **err)
{
    return call(b->impl, "GET", "/secrets", NULL, ret, NULL, err);
}

static int r_secret_get(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *e = enc(id);
    _cleanup_free_ char *p = xasprintf("/secrets/%s", e);
    return call(b->impl, "GET", p, NULL, ret, NULL, err);
}

static int r_secret_update(struct e2b_backend *b, const char *id, const char *value, const json_t *meta,
                           json_t **ret, struct e2b_error **err)
{
    _cleanup_json_ json_t *body = json_pack("{s:s}", "value", value);
    if (meta)
        json_object_set(body, "metadata", (json_t *)meta);
    _cleanup_free_ char *e = enc(id);
    _cleanup_free_ char *p = xasprintf("/secrets/%s", e);
    return call(b->impl, "POST", p, body, ret, NULL, err);
}

static int r_secret_delete(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    _cleanup_free_ char *e = enc(id);
    _cleanup_free_ char *p = xasprintf("/secrets/%s", e);
    return call(b->impl, "DELETE", p, NULL, NULL, NULL, err);
}

static void r_free(struct e2b_backend *b)
{
    struct remote *r = b->impl;
    free(r->api_url);
    free(r->api_key);
    free(r->sandbox_url);
    free(r);
    free(b);
}

static const struct e2b_backend_ops remote_ops = {
    .name = "remote",
    .sandboxes = E2B_SANDBOX_OPS(r_),
    .edge = {
        .envd_endpoint = r_envd_endpoint,
        /* no port_connect: the sandboxes are not on this machine */
    },
    .templates = E2B_TEMPLATE_OPS(r_template_),
    .snapshots = E2B_SNAPSHOT_OPS(r_snapshot_),
    .volumes = E2B_VOLUME_OPS(r_volume_, NULL), /* no open: the volumes are not on this machine */
    .secrets = E2B_SECRET_OPS(r_secret_),
    .free = r_free,
};

int e2b_backend_remote_new(const char *api_url, const char *api_key, const char *sandbox_url,
                           struct e2b_backend **ret, struct e2b_error **err)
{
    struct remote *r = xcalloc(1, sizeof(*r));
    r->api_url = xstrdup(api_url);
    r->api_key = xstrdup(api_key);
    r->sandbox_url = sandbox_url ? xstrdup(sandbox_url) : NULL;
    struct e2b_backend *b = xcalloc(1, sizeof(*b));
    b->ops = &remote_ops;
    b->impl = r;
    *ret = b;
    return 0;
}

int e2b_backend_remote_new_signed(const char *api_url, e2b_backend_signer *sign, void *ud,
                                  struct e2b_backend **ret, struct e2b_error **err)
{
    if (e2b_backend_remote_new(api_url, "", NULL, ret, err) < 0)
        return -1;
    struct remote *r = (*ret)->impl;
    r->sign = sign;
    r->sign_ud = ud;
    return 0;
}
