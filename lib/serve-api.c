/* serve-api.c - see serve-api.h */
#include "serve-api.h"
#include "serve-auth.h"
#include "cluster.h"
#include "serve-conn.h"
#include "serve-keys.h"
#include "serve-secrets.h"
#include "serve-volumes.h"
#include "serve-templates.h"
#include "serve-warm.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <strings.h>
#include <time.h>

#define MAX_TIMEOUT_S (24 * 3600)
#define V1_TIMEOUT_S 15   /* POST /sandboxes without a timeout (E2B's API) */
#define V2_TIMEOUT_S 300  /* POST /v2/sandboxes and connect without one */
#define MAX_REFRESH_S 3600
#define MIN_REFRESH_S 15  /* a refresh never gives less (E2B's API) */
#define PAGE_DEFAULT 100
#define PAGE_MAX 100
#define LOG_LIMIT 1000
#define METRICS_IDS_MAX 100
#define FORK_TIMEOUT_S  15  /* POST /sandboxes/{id}/fork without a timeout (E2B's API) */
#define FORK_MAX        100 /* forks in one request (E2B's API) */

struct call {
    const struct e2b_serve_opts *o;
    struct e2b_backend *b; /* o->backend, or o->here for a call of another cluster node */
    bool from_node;        /* signed by a node of this server's cluster */
    const struct e2b_http1_head *r;
    const struct strbuf *body;
    bool v2;                    /* reached through /v2/... */
    struct e2b_serve_reply *out;
};

static void not_allowed(struct call *c, const char *allow)
{
    e2b_serve_reply_error(c->out, 405, "method %s is not allowed on %s (allowed: %s)", c->r->method, c->r->path, allow);
    c->out->headers = xasprintf("Allow: %s\r\n", allow);
}

/* ---- request values ----------------------------------------------------------- */

static bool json_body(struct call *c, json_t **ret)
{
    *ret = NULL;
    if (c->body->len == 0) {
        *ret = json_object();
        return true;
    }
    json_error_t je;
    json_t *j = json_loadb(c->body->buf, c->body->len, 0, &je);
    if (!j || !json_is_object(j)) {
        e2b_serve_reply_error(c->out, 400, "request body is not a JSON object (line %d column %d: %s)", je.line,
                    je.column, j ? "not an object" : je.text);
        json_decref(j);
        return false;
    }
    *ret = j;
    return true;
}

/* An integer field in [lo, hi]; absent or null: def. */
static bool int_field(struct call *c, json_t *body, const char *key, long long def, long long lo,
                      long long hi, long long *ret)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) {
        *ret = def;
        return true;
    }
    if (!json_is_integer(v)) {
        e2b_serve_reply_error(c->out, 400, "%s must be a whole number of seconds", key);
        return false;
    }
    *ret = json_integer_value(v);
    if (*ret < lo || *ret > hi) {
        if (STREQ(key, "timeout") && *ret < lo)
            e2b_serve_reply_error(c->out, 400, "Timeout must be greater than 0");
        else if (STREQ(key, "timeout"))
            e2b_serve_reply_error(c->out, 400, "Timeout cannot be greater than %d hours", MAX_TIMEOUT_S / 3600);
        else
            e2b_serve_reply_error(c->out, 400, "%s must be between %lld and %lld", key, lo, hi);
        return false;
    }
    return true;
}

static bool bool_field(struct call *c, json_t *body, const char *key, bool def, bool *ret)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) {
        *ret = def;
        return true;
    }
    if (!json_is_boolean(v)) {
        e2b_serve_reply_error(c->out, 400, "%s must be true or false", key);
        return false;
    }
    *ret = json_is_true(v);
    return true;
}

static bool string_map(struct call *c, json_t *body, const char *key)
{
    json_t *v = json_object_get(body, key);
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
    e2b_serve_reply_error(c->out, 400, "%s must be an object of strings", key);
    return false;
}

/* RFC 3339 to Unix ms; -1 when it is not one. */
static int64_t rfc3339_ms(const char *s)
{
    struct tm tm = {0};
    const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!p)
        return -1;
    int64_t ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; isdigit((unsigned char)*p); p++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0'), digits++;
        while (digits++ < 3)
            ms *= 10;
    }
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
               p[3] == ':' && isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
        off = ((p[1] - '0') * 10 + (p[2] - '0')) * 60 + (p[4] - '0') * 10 + (p[5] - '0');
        off = *p == '-' ? -off : off;
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    return ((int64_t)timegm(&tm) - (int64_t)off * 60) * 1000 + ms;
}

/* The page [offset, offset+limit) of an array; X-Next-Token when more. */
static bool page(struct call *c, json_t *all, long long def_limit, json_t **ret)
{
    long long limit, offset = 0;
    if (!e2b_serve_query_num(c->r->query, c->out, "limit", def_limit, 1, PAGE_MAX, &limit))
        return false;
    _cleanup_free_ char *tok = e2b_http1_query_param(c->r->query, "nextToken");
    if (tok) {
        size_t n = strspn(tok, "0123456789");
        if (!n || tok[n] || n > 9) {
            e2b_serve_reply_error(c->out, 400, "nextToken '%s' is not one this server gave", tok);
            return false;
        }
        offset = strtoll(tok, NULL, 10);
    }
    json_t *p = json_array();
    size_t total = json_array_size(all);
    for (size_t i = (size_t)offset; i < total && (limit <= 0 || (long long)(i - (size_t)offset) < limit); i++)
        json_array_append(p, json_array_get(all, i));
    if (limit > 0 && (size_t)offset + (size_t)limit < total) {
        free(c->out->headers);
        c->out->headers = xasprintf("X-Next-Token: %lld\r\n", offset + limit);
    }
    *ret = p;
    return true;
}

/* Every sandbox reply says where its traffic goes (E2B's `domain`). */
static json_t *with_domain(const struct e2b_serve_opts *o, json_t *sbx)
{
    json_object_set_new(sbx, "domain", o->domain ? json_string(o->domain) : json_null());
    return sbx;
}

/* ---- sandboxes ------------------------------------------------------------------ */

/* Fields of E2B's NewSandbox that this server cannot honour: refused by
 * name rather than ignored, since most of them are promises about access. */
static bool unsupported_fields(struct call *c, json_t *body)
{
    static const char *const keys[] = {"mcp", "iam", NULL};
    for (const char *const *k = keys; *k; k++) {
        json_t *v = json_object_get(body, *k);
        if (v && !json_is_null(v) && !(json_is_object(v) && !json_object_size(v)) &&
            !(json_is_array(v) && !json_array_size(v))) {
            e2b_serve_reply_error(c->out, 400, "%s is not supported by e2b serve", *k);
            return true;
        }
    }
    json_t *net = json_object_get(body, "network");
    if (net && !json_is_null(net)) {
        if (!json_is_object(net)) {
            e2b_serve_reply_error(c->out, 400, "network must be an object");
            return true;
        }
        const char *k;
        json_t *v;
        json_object_foreach(net, k, v) {
            if (STREQ(k, "allowPublicTraffic") && json_is_true(v))
                continue;
            /* the outbound rules: the egress filter's (checked by the backend) */
            if (STREQ(k, "allowOut") || STREQ(k, "denyOut") || STREQ(k, "rules"))
                continue;
            if (json_is_null(v) || (json_is_array(v) && !json_array_size(v)))
                continue;
            e2b_serve_reply_error(c->out, 400, "network.%s is not supported by e2b serve", k);
            return true;
        }
    }
    json_t *vm = json_object_get(body, "volumeMounts");
    if (vm && !json_is_null(vm)) {
        bool ok = json_is_array(vm);
        size_t i;
        json_t *m;
        json_array_foreach(vm, i, m) ok &= json_is_string(json_object_get(m, "name")) &&
                                           json_is_string(json_object_get(m, "path"));
        if (!ok) {
            e2b_serve_reply_error(c->out, 400, "volumeMounts must be an array of {name, path}");
            return true;
        }
    }
    json_t *ar = json_object_get(body, "autoResume");
    if (ar && !json_is_null(ar) && (!json_is_object(ar) || (json_object_get(ar, "enabled") &&
                                                            !json_is_boolean(json_object_get(ar, "enabled"))))) {
        e2b_serve_reply_error(c->out, 400, "autoResume must be {enabled: true|false}");
        return true;
    }
    if (ar && json_is_true(json_object_get(ar, "enabled")) && !json_is_true(json_object_get(body, "autoPause"))) {
        e2b_serve_reply_error(c->out, 400, "autoResume needs autoPause (lifecycle onTimeout: pause)");
        return true;
    }
    return false;
}

static void api_create(struct call *c)
{
    _cleanup_json_ json_t *body = NULL;
    if (!json_body(c, &body))
        return;
    json_t *tpl = json_object_get(body, "templateID");
    if (!json_is_string(tpl) || !*json_string_value(tpl)) {
        e2b_serve_reply_error(c->out, 400, "templateID is required");
        return;
    }
    long long timeout;
    bool secure, internet, auto_pause;
    if (!int_field(c, body, "timeout", c->v2 ? V2_TIMEOUT_S : V1_TIMEOUT_S, 1, MAX_TIMEOUT_S, &timeout) ||
        !string_map(c, body, "metadata") || !string_map(c, body, "envVars") ||
        !bool_field(c, body, "secure", false, &secure) ||
        !bool_field(c, body, "allow_internet_access", !c->o->deny_internet, &internet) ||
        !bool_field(c, body, "autoPause", false, &auto_pause) || unsupported_fields(c, body))
        return;
    struct e2b_sandbox_spec spec = {
        .template = json_string_value(tpl), .timeout_s = (int)timeout,
        .metadata = json_object_get(body, "metadata"), .env_vars = json_object_get(body, "envVars"),
        /* v2 (NewSandboxV2) has no `secure`: every sandbox gets a token */
        .secure = c->v2 || secure, .allow_internet = internet, .auto_pause = auto_pause,
        .auto_resume = json_is_true(json_object_get(json_object_get(body, "autoResume"), "enabled")),
        .volume_mounts = json_object_get(body, "volumeMounts"), .network = json_object_get(body, "network"),
        .runtime_default = c->o->runtime, .kernel = c->o->kernel,
    };
    if (json_is_null(spec.volume_mounts))
        spec.volume_mounts = NULL;
    if (json_is_null(spec.network))
        spec.network = NULL;
    if (json_is_null(spec.metadata))
        spec.metadata = NULL;
    if (json_is_null(spec.env_vars))
        spec.env_vars = NULL;
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *sbx = NULL;
    /* where the placing node says the template's build is (cluster.h) */
    if (c->from_node && json_is_string(json_object_get(body, "clusterTemplate")))
        spec.cluster_template = json_string_value(json_object_get(body, "clusterTemplate"));
    /* a warm sandbox where one fits (never for another node's call), else a create */
    int r = !c->from_node && e2b_serve_warm_take(c->o->warm, &spec, &sbx) == 1
                ? 0
                : c->b->ops->sandboxes.create(c->b, &spec, &sbx, &err);
    if (r < 0)
        return e2b_serve_reply_fail(c->out, err);
    c->out->status = 201;
    c->out->body = with_domain(c->o, sbx);
}

struct dated {
    json_t *sbx;
    int64_t started;
};

static int by_start(const void *a, const void *b)
{
    const struct dated *x = a, *y = b;
    if (x->started != y->started)
        return x->started < y->started ? -1 : 1;
    return strcmp(e2b_json_str(x->sbx, "sandboxID") ? e2b_json_str(x->sbx, "sandboxID") : "",
                  e2b_json_str(y->sbx, "sandboxID") ? e2b_json_str(y->sbx, "sandboxID") : "");
}

static void api_list(struct call *c)
{
    _cleanup_free_ char *state = e2b_http1_query_param(c->r->query, "state");
    _cleanup_free_ char *meta = e2b_http1_query_param(c->r->query, "metadata");
    _cleanup_free_ char *tpl = e2b_http1_query_param(c->r->query, "template");
    _cleanup_free_ char *order = e2b_http1_query_param(c->r->query, "order");
    _cleanup_free_ char *after = e2b_http1_query_param(c->r->query, "startedAfter");
    if (state) {
        _cleanup_free_ char *copy = xstrdup(state);
        for (char *save = NULL, *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save))
            if (!STREQ(s, "running") && !STREQ(s, "paused")) {
                e2b_serve_reply_error(c->out, 400, "state '%s' is not running or paused", s);
                return;
            }
        if (!*state) {
            e2b_serve_reply_error(c->out, 400, "state is empty (running, paused or both)");
            return;
        }
    }
    if (order && !STREQ(order, "asc") && !STREQ(order, "desc")) {
        e2b_serve_reply_error(c->out, 400, "order '%s' is not asc or desc", order);
        return;
    }
    int64_t after_ms = after ? rfc3339_ms(after) : -1;
    if (after && after_ms < 0) {
        e2b_serve_reply_error(c->out, 400, "startedAfter '%s' is not an RFC 3339 date-time", after);
        return;
    }
    _cleanup_json_ json_t *filter_meta = json_object();
    if (meta) { /* "k=v&k2=v2", url-encoded once more */
        for (char *save = NULL, *kv = strtok_r(meta, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq || eq == kv) {
                e2b_serve_reply_error(c->out, 400, "metadata '%s' is not key=value", kv);
                return;
            }
            *eq = '\0';
            _cleanup_free_ char *k = e2b_http1_unescape(kv, strlen(kv), true);
            _cleanup_free_ char *v = e2b_http1_unescape(eq + 1, strlen(eq + 1), true);
            if (!k || !v) {
                e2b_serve_reply_error(c->out, 400, "metadata '%s=%s' is not URL-encoded", kv, eq + 1);
                return;
            }
            json_object_set_new(filter_meta, k, json_string(v));
        }
    }
    struct e2b_backend *b = c->b;
    /* no state: running and paused (E2B's), newest first for v2 */
    struct e2b_sandbox_filter f = {.states = state ? state : "running,paused",
                                   .metadata = json_object_size(filter_meta) ? filter_meta : NULL,
                                   .template = tpl};
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_json_ json_t *all = NULL;
    char *next = NULL;
    if (b->ops->sandboxes.list(b, &f, &all, &next, &err) < 0)
        return e2b_serve_reply_fail(c->out, err);
    free(next);
    /* filter by start, order, then page here: one meaning for every backend */
    size_t n = json_array_size(all), kept = 0;
    struct dated *d = xcalloc(n ? n : 1, sizeof(*d));
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(all, i);
        int64_t t = rfc3339_ms(e2b_json_str(s, "startedAt"));
        if (after_ms >= 0 && t < after_ms) /* "started at or after" */
            continue;
        if (json_object_get(s, "warmPool")) /* not handed out: nobody's yet */
            continue;
        d[kept++] = (struct dated){with_domain(c->o, s), t};
    }
    qsort(d, kept, sizeof(*d), by_start);
    _cleanup_json_ json_t *sorted = json_array();
    bool desc = order ? STREQ(order, "desc") : c->v2;
    for (size_t i = 0; i < kept; i++)
        json_array_append(sorted, d[desc ? kept - 1 - i : i].sbx);
    free(d);
    json_t *pg = NULL;
    if (!page(c, sorted, c->v2 ? PAGE_DEFAULT : 0, &pg))
        return;
    if (c->v2) { /* E2B's X-Total-Running: all running sandboxes, whatever the filter */
        struct e2b_sandbox_filter run = {.states = "running"};
        _cleanup_json_ json_t *running = NULL;
        if (b->ops->sandboxes.list(b, &run, &running, &next, NULL) == 0) {
            free(next);
            size_t total = 0, i;
            json_t *s;
            json_array_foreach(running, i, s)
                total += !json_object_get(s, "warmPool");
            char *h = xasprintf("%sX-Total-Running: %zu\r\n",
                                c->out->headers ? c->out->headers : "", total);
            free(c->out->headers);
            c->out->headers = h;
        }
    }
    c->out->status = 200;
    c->out->body = pg;
}

struct metric_job {
    struct e2b_backend *b;
    const char *id;
    json_t *metric; /* the latest sample, or NULL */
};

static void *metric_main(void *ud)
{
    struct metric_job *j = ud;
    json_t *list = NULL;
    if (j->b->ops->sandboxes.metrics(j->b, j->id, &list, NULL) == 0 && json_array_size(list))
        j->metric = json_incref(json_array_get(list, json_array_size(list) - 1));
    json_decref(list);
    return NULL;
}

/* GET /sandboxes/metrics?sandbox_ids=a,b: each sandbox's latest sample,
 * sampled at once (a sample takes a moment). Unknown IDs are left out. */
static void api_metrics_many(struct call *c)
{
    _cleanup_free_ char *ids = e2b_http1_query_param(c->r->query, "sandbox_ids");
    if (!ids || !*ids) {
        e2b_serve_reply_error(c->out, 400, "sandbox_ids is required (comma-separated sandbox IDs)");
        return;
    }
    struct metric_job jobs[METRICS_IDS_MAX];
    pthread_t threads[METRICS_IDS_MAX];
    bool started[METRICS_IDS_MAX] = {0};
    size_t n = 0;
    for (char *save = NULL, *id = strtok_r(ids, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
        if (n == METRICS_IDS_MAX) {
            e2b_serve_reply_error(c->out, 400, "sandbox_ids lists more than %d sandboxes", METRICS_IDS_MAX);
            return;
        }
        jobs[n++] = (struct metric_job){ .b = c->b, .id = id };
    }
    for (size_t i = 0; i < n; i++)
        started[i] = pthread_create(&threads[i], NULL, metric_main, &jobs[i]) == 0;
    json_t *all = json_object();
    for (size_t i = 0; i < n; i++) {
        if (started[i])
            pthread_join(threads[i], NULL);
        else
            metric_main(&jobs[i]);
        if (jobs[i].metric)
            json_object_set_new(all, jobs[i].id, jobs[i].metric);
    }
    c->out->status = 200;
    c->out->body = json_pack("{s:o}", "sandboxes", all);
}

static int level_rank(const char *l)
{
    static const char *const names[] = {"debug", "info", "warn", "error", NULL};
    if (!l)
        return 1;
    if (!strcasecmp(l, "warning"))
        return 2;
    for (int i = 0; names[i]; i++)
        if (!strcasecmp(l, names[i]))
            return i;
    return -1;
}

/* v1: ?start (ms) &limit -> {logs:[{timestamp, line}], logEntries:[...]};
 * v2: ?cursor (ms) &limit &direction &level &search -> {logs:[...]}.
 * Entries without a time (envd's own lines) pass the time filters. */
static void api_logs(struct call *c, const char *id)
{
    long long cursor, limit;
    if (!e2b_serve_query_num(c->r->query, c->out, c->v2 ? "cursor" : "start", -1, 0, INT64_C(999999999999999), &cursor) ||
        !e2b_serve_query_num(c->r->query, c->out, "limit", LOG_LIMIT, c->v2 ? 1 : 0, LOG_LIMIT, &limit))
        return;
    _cleanup_free_ char *dir = c->v2 ? e2b_http1_query_param(c->r->query, "direction") : NULL;
    _cleanup_free_ char *level = c->v2 ? e2b_http1_query_param(c->r->query, "level") : NULL;
    _cleanup_free_ char *search = c->v2 ? e2b_http1_query_param(c->r->query, "search") : NULL;
    if (dir && !STREQ(dir, "forward") && !STREQ(dir, "backward")) {
        e2b_serve_reply_error(c->out, 400, "direction '%s' is not forward or backward", dir);
        return;
    }
    int min = level ? level_rank(level) : 0;
    if (min < 0) {
        e2b_serve_reply_error(c->out, 400, "level '%s' is not debug, info, warn or error", level);
        return;
    }
    bool backward = dir && STREQ(dir, "backward");
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_json_ json_t *entries = NULL;
    if (c->b->ops->sandboxes.logs(c->b, id, &entries, &err) < 0)
        return e2b_serve_reply_fail(c->out, err);
    json_t *kept = json_array(), *lines = json_array();
    size_t n = json_array_size(entries);
    for (size_t k = 0; k < n && (long long)json_array_size(kept) < limit; k++) {
        json_t *e = json_array_get(entries, backward ? n - 1 - k : k);
        int64_t t = rfc3339_ms(e2b_json_str(e, "timestamp"));
        if (cursor >= 0 && t >= 0 && (backward ? t > cursor : t < cursor))
            continue;
        if (level_rank(e2b_json_str(e, "level")) < min)
            continue;
        const char *msg = e2b_json_str(e, "message") ? e2b_json_str(e, "message") : "";
        if (search && !strstr(msg, search))
            continue;
        json_array_append(kept, e);
        /* E2B's line is a JSON object of the entry: level, logger, message and its fields */
        json_t *obj = json_pack("{s:s, s:s}", "level", e2b_json_str(e, "level") ? e2b_json_str(e, "level") : "info",
                                "message", msg);
        json_object_update_missing(obj, json_object_get(e, "fields"));
        if (!json_object_get(obj, "logger"))
            json_object_set_new(obj, "logger", json_string("envd"));
        _cleanup_free_ char *line = e2b_json_dump(obj, 0);
        json_decref(obj);
        json_array_append_new(lines, json_pack("{s:O?, s:s}", "timestamp", json_object_get(e, "timestamp"),
                                               "line", line));
    }
    c->out->status = 200;
    if (c->v2) {
        c->out->body = json_pack("{s:o}", "logs", kept);
        json_decref(lines);
    } else {
        c->out->body = json_pack("{s:o, s:o}", "logs", lines, "logEntries", kept);
    }
}

/* ?start&end (Unix seconds): the samples between. */
static void api_metrics(struct call *c, const char *id)
{
    long long start, end;
    if (!e2b_serve_query_num(c->r->query, c->out, "start", 0, 0, INT64_C(99999999999), &start) ||
        !e2b_serve_query_num(c->r->query, c->out, "end", INT64_C(99999999999), 0, INT64_C(99999999999), &end))
        return;
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_json_ json_t *m = NULL;
    if (c->b->ops->sandboxes.metrics(c->b, id, &m, &err) < 0)
        return e2b_serve_reply_fail(c->out, err);
    json_t *kept = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(m, i, s) {
        long long t = e2b_json_int(s, "timestampUnix", 0);
        if (t >= start && t <= end)
            json_array_append(kept, s);
    }
    c->out->status = 200;
    c->out->body = kept;
}

/* A verb failed with "not found" although the sandbox is there (a file of
 * the runtime missing, such as an unprivileged sandbox's freezer): that is
 * no 404, which SDKs take for "no such sandbox". */
static void fail_verb(struct call *c, const char *id, const char *verb, const struct e2b_error *e)
{
    _cleanup_json_ json_t *s = NULL;
    if (e->code == E2B_ERR_NOT_FOUND && c->b->ops->sandboxes.get(c->b, id, &s, NULL) == 0)
        return e2b_serve_reply_error(c->out, 500, "cannot %s sandbox '%s': %s", verb, id, e->msg);
    e2b_serve_reply_fail(c->out, e);
}

static bool sandbox_state(struct call *c, const char *id, char **ret_state)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_json_ json_t *s = NULL;
    if (c->b->ops->sandboxes.get(c->b, id, &s, &err) < 0) {
        e2b_serve_reply_fail(c->out, err);
        return false;
    }
    *ret_state = xstrdup(e2b_json_str(s, "state") ? e2b_json_str(s, "state") : "");
    return true;
}

/* ---- snapshots and forks --------------------------------------------------------- */

/* POST /sandboxes/{id}/snapshots {name?}: 201 SnapshotInfo. */
static void api_snapshot_create(struct call *c, const char *id, json_t *body)
{
    json_t *name = json_object_get(body, "name");
    if (name && !json_is_null(name) && (!json_is_string(name) || !*json_string_value(name)))
        return e2b_serve_reply_error(c->out, 400, "name must be a non-empty string");
    struct e2b_backend *b = c->b;
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *snap = NULL;
    const char *n = json_is_string(name) ? json_string_value(name) : NULL;
    int r = b->ops->snapshots.create(b, id, n, &snap, &err);
    if (r < 0)
        return e2b_serve_reply_fail(c->out, err);
    c->out->status = 201;
    c->out->body = snap;
}

/* POST /sandboxes/{id}/fork {count?, timeout?}: 201 and one SandboxForkResult a fork. */
static void api_fork(struct call *c, const char *id, json_t *body)
{
    json_t *cv = json_object_get(body, "count");
    long long count = 1, timeout;
    if (cv && !json_is_null(cv)) {
        if (!json_is_integer(cv))
            return e2b_serve_reply_error(c->out, 400, "count must be a whole number");
        count = json_integer_value(cv);
    }
    if (count < 1)
        return e2b_serve_reply_error(c->out, 400, "Count must be at least 1");
    if (count > FORK_MAX)
        return e2b_serve_reply_error(c->out, 400, "Count cannot be greater than %d", FORK_MAX);
    if (!int_field(c, body, "timeout", FORK_TIMEOUT_S, 1, MAX_TIMEOUT_S, &timeout))
        return;
    struct e2b_backend *b = c->b;
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *res = NULL;
    int r = b->ops->snapshots.fork(b, id, (int)count, (int)timeout, &res, &err);
    if (r < 0)
        return e2b_serve_reply_fail(c->out, err);
    size_t i;
    json_t *f;
    json_array_foreach(res, i, f) {
        json_t *s = json_object_get(f, "sandbox");
        if (s)
            with_domain(c->o, s);
    }
    c->out->status = 201;
    c->out->body = res;
}

/* GET /snapshots?sandboxID&name&limit&nextToken: newest first. */
static void api_snapshots(struct call *c)
{
    if (!STREQ(c->r->method, "GET"))
        return not_allowed(c, "GET");
    _cleanup_free_ char *sid = e2b_http1_query_param(c->r->query, "sandboxID");
    _cleanup_free_ char *name = e2b_http1_query_param(c->r->query, "name");
    struct e2b_snapshot_filter f = { .sandbox_id = sid && *sid ? sid : NULL,
                                     .name = name && *name ? name : NULL };
    struct e2b_backend *b = c->b;
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_json_ json_t *all = NULL;
    char *next = NULL;
    if (b->ops->snapshots.list(b, &f, &all, &next, &err) < 0)
        return e2b_serve_reply_fail(c->out, err);
    free(next);
    json_t *pg = NULL;
    if (page(c, all, PAGE_DEFAULT, &pg))
        c->out->status = 200, c->out->body = pg;
}

/* /sandboxes/{id}[/verb] */
static void api_sandbox(struct call *c, const char *id, const char *verb)
{
    struct e2b_backend *b = c->b;
    struct e2b_serve_reply *out = c->out;
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_json_ json_t *body = NULL;
    const char *m = c->r->method;
    bool get = STREQ(m, "GET"), post = STREQ(m, "POST");
    if (!*verb) {
        if (get) {
            json_t *s = NULL;
            if (b->ops->sandboxes.get(b, id, &s, &err) < 0)
                return e2b_serve_reply_fail(out, err);
            if (json_object_get(s, "warmPool")) { /* waiting in a pool: not a client's */
                json_decref(s);
                return e2b_serve_reply_error(out, 404, "sandbox '%s' not found", id);
            }
            if (!json_object_get(s, "network"))
                json_object_set_new(s, "network", json_pack("{s:b}", "allowPublicTraffic", 1));
            out->status = 200, out->body = with_domain(c->o, s);
        } else if (STREQ(m, "DELETE")) {
            if (b->ops->sandboxes.kill(b, id, &err) < 0)
                return e2b_serve_reply_fail(out, err);
            out->status = 204;
        } else {
            not_allowed(c, "GET, DELETE");
        }
        return;
    }
    if (STREQ(verb, "network")) { /* PUT: the outbound rules, replaced live */
        if (!STREQ(m, "PUT"))
            return not_allowed(c, "PUT");
        if (!json_body(c, &body))
            return;
        json_t *ai = json_object_get(body, "allow_internet_access");
        if (ai && !json_is_null(ai) && !json_is_boolean(ai))
            return e2b_serve_reply_error(out, 400, "allow_internet_access must be true or false");
        json_t *ep = json_object_get(body, "egressProxy");
        if (ep && !json_is_null(ep))
            return e2b_serve_reply_error(out, 400, "egressProxy is not supported by e2b serve");
        if (b->ops->sandboxes.update_network(b, id, body, &err) < 0)
            /* a sandbox with no network to give rules to: a conflict with its state */
            return err->code == E2B_ERR_UNSUPPORTED ? e2b_serve_reply_error(out, 409, "%s", err->msg)
                                                    : e2b_serve_reply_fail(out, err);
        out->status = 204;
        return;
    }
    bool is_post_verb = STREQ(verb, "timeout") || STREQ(verb, "refreshes") || STREQ(verb, "pause") ||
                        STREQ(verb, "resume") || STREQ(verb, "connect") || STREQ(verb, "snapshots") ||
                        STREQ(verb, "fork");
    bool is_get_verb = STREQ(verb, "metrics") || STREQ(verb, "logs");
    if (!is_post_verb && !is_get_verb) {
        e2b_serve_reply_error(out, 404, "no route %s %s", m, c->r->path);
        return;
    }
    if (is_post_verb && !post)
        return not_allowed(c, "POST");
    if (is_get_verb && !get)
        return not_allowed(c, "GET");
    if (post && !json_body(c, &body))
        return;
    long long t;
    if (STREQ(verb, "timeout")) { /* overwrites the time left, shorter or longer */
        if (!json_object_get(body, "timeout"))
            return e2b_serve_reply_error(out, 400, "timeout is required");
        if (!int_field(c, body, "timeout", 0, 1, MAX_TIMEOUT_S, &t))
            return;
        if (b->ops->sandboxes.set_timeout(b, id, (int)t, &err) < 0)
            return fail_verb(c, id, "set the timeout of", err);
        out->status = 204;
    } else if (STREQ(verb, "refreshes")) { /* only ever extends */
        _cleanup_free_ char *state = NULL;
        if (!int_field(c, body, "duration", MIN_REFRESH_S, 0, MAX_REFRESH_S, &t) ||
            !sandbox_state(c, id, &state))
            return;
        if (!STREQ(state, "running"))
            return e2b_serve_reply_error(out, 404, "sandbox '%s' is not running (it is %s)", id, state);
        bool resumed = false;
        json_t *s = NULL;
        if (b->ops->sandboxes.connect(b, id, (int)(t < MIN_REFRESH_S ? MIN_REFRESH_S : t), &s,
                                      &resumed, &err) < 0)
            return fail_verb(c, id, "refresh", err);
        json_decref(s);
        out->status = 204;
    } else if (STREQ(verb, "pause")) {
        if (b->ops->sandboxes.pause(b, id, false, &err) < 0)
            return fail_verb(c, id, "pause", err);
        out->status = 204;
    } else if (STREQ(verb, "resume") || STREQ(verb, "connect")) {
        bool resume = STREQ(verb, "resume");
        if (!int_field(c, body, "timeout", resume ? V1_TIMEOUT_S : V2_TIMEOUT_S, 1, MAX_TIMEOUT_S, &t))
            return;
        _cleanup_free_ char *state = NULL;
        if (!sandbox_state(c, id, &state))
            return;
        if (resume && !STREQ(state, "paused")) /* resume insists on a paused sandbox */
            return e2b_serve_reply_error(out, 409, "sandbox '%s' cannot be resumed: it is %s, not paused", id,
                               state);
        bool resumed = false;
        json_t *s = NULL;
        /* a resume may start a supervisor: forked from the helper, not from here */
        int r = b->ops->sandboxes.connect(b, id, (int)t, &s, &resumed, &err);
        if (r < 0)
            return fail_verb(c, id, verb, err);
        out->status = resume || resumed ? 201 : 200;
        out->body = with_domain(c->o, s);
    } else if (STREQ(verb, "snapshots")) {
        api_snapshot_create(c, id, body);
    } else if (STREQ(verb, "fork")) {
        api_fork(c, id, body);
    } else if (STREQ(verb, "metrics")) {
        api_metrics(c, id);
    } else {
        api_logs(c, id);
    }
}

/* ---- templates ------------------------------------------------------------------ */

/* TemplateWithBuilds: the template and its (current) build. */
static json_t *with_builds(json_t *t)
{
    if (json_object_get(t, "builds"))
        return t;
    json_t *b = json_object();
    static const char *const keys[] = {"buildID", "createdAt", "updatedAt", "cpuCount", "memoryMB",
                                       "diskSizeMB", "envdVersion", NULL};
    for (const char *const *k = keys; *k; k++)
        if (json_object_get(t, *k))
            json_object_set(b, *k, json_object_get(t, *k));
    json_object_set_new(b, "status", json_string(e2b_json_str(t, "buildStatus") ? e2b_json_str(t, "buildStatus")
                                                                             : "ready"));
    json_object_set_new(t, "builds", json_pack("[o]", b));
    return t;
}

static bool names_alias(const json_t *t, const char *alias)
{
    static const char *const lists[] = {"aliases", "names", NULL};
    for (const char *const *l = lists; *l; l++) {
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(t, *l), i, a)
            if (json_is_string(a) && STREQ(json_string_value(a), alias))
                return true;
    }
    return false;
}

static void api_templates(struct call *c, const char *rest)
{
    struct e2b_backend *b = c->b;
    struct e2b_serve_reply *out = c->out;
    _cleanup_error_ struct e2b_error *err = NULL;
    const char *m = c->r->method;
    json_t *t = NULL;
    if (!*rest) {
        if (!STREQ(m, "GET"))
            return not_allowed(c, "GET");
        if (b->ops->templates.list(b, &t, &err) < 0)
            return e2b_serve_reply_fail(out, err);
        json_t *pg = NULL;
        bool ok = page(c, t, c->v2 ? PAGE_DEFAULT : 0, &pg);
        json_decref(t);
        if (ok)
            out->status = 200, out->body = pg;
        return;
    }
    if (e2b_str_has_prefix(rest, "aliases/")) {
        const char *alias = rest + 8;
        if (!*alias || strchr(alias, '/'))
            return e2b_serve_reply_error(out, 404, "no route %s %s", m, c->r->path);
        if (!STREQ(m, "GET"))
            return not_allowed(c, "GET");
        if (b->ops->templates.get(b, alias, &t, &err) < 0 && err->code != E2B_ERR_NOT_FOUND)
            return e2b_serve_reply_fail(out, err);
        if (!t || !names_alias(t, alias)) { /* an ID is not an alias */
            json_decref(t);
            return e2b_serve_reply_error(out, 404, "template alias '%s' not found", alias);
        }
        out->status = 200;
        out->body = json_pack("{s:O, s:O?}", "templateID", json_object_get(t, "templateID"), "public",
                              json_object_get(t, "public") ? json_object_get(t, "public") : json_false());
        json_decref(t);
        return;
    }
    if (strchr(rest, '/'))
        return e2b_serve_reply_error(out, 404, "no route %s %s", m, c->r->path);
    if (STREQ(m, "GET")) {
        if (b->ops->templates.get(b, rest, &t, &err) < 0)
            return e2b_serve_reply_fail(out, err);
        out->status = 200, out->body = with_builds(t);
    } else if (STREQ(m, "DELETE")) { /* a snapshot is deleted as the template it is */
        if (b->ops->snapshots.delete(b, rest, &err) < 0 && err->code != E2B_ERR_NOT_FOUND)
            return e2b_serve_reply_fail(out, err);
        if (err) {
            e2b_error_free(err);
            err = NULL;
            if (b->ops->templates.delete(b, rest, &err) < 0)
                return e2b_serve_reply_fail(out, err);
        }
        out->status = 204;
    } else { /* POST and PATCH are the template build API's (serve-templates.c) */
        not_allowed(c, "GET, POST, PATCH, DELETE");
    }
}

/* GET /nodes: [{nodeID, address, status, sandboxCount, cpuCount, memoryMB,
 * allocatedCPU, allocatedMemoryMB, templates: [IDs]}] */
static void api_nodes(struct call *c)
{
    if (!c->o->cluster)
        return e2b_serve_reply_error(c->out, 404,
                                     "this server runs in no cluster (e2b serve --cluster)");
    json_t *nodes = e2b_cluster_nodes(c->o->cluster);
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n) {
        json_t *ids = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(n, "templates"), k, v)
            json_array_append_new(ids, json_string(k));
        json_object_set_new(n, "templates", ids);
        json_object_del(n, "epoch");
    }
    c->out->status = 200;
    c->out->body = nodes;
}

void e2b_serve_api(const struct e2b_serve_opts *o, const struct e2b_http1_head *r,
                   const struct strbuf *body, struct e2b_serve_reply *out)
{
    memset(out, 0, sizeof(*out));
    struct call c = {.o = o, .r = r, .body = body, .out = out};
    const char *p = r->path;
    if (STREQ(p, "/health")) {
        if (STREQ(r->method, "GET") || STREQ(r->method, "HEAD"))
            out->status = 204;
        else
            not_allowed(&c, "GET, HEAD");
        return;
    }
    c.b = o->backend;
    const char *node = e2b_http1_header(r, "E2b-Cluster-Node"),
               *auth = e2b_http1_header(r, "E2b-Cluster-Auth");
    if (node || auth) { /* another node of the cluster: its calls are signed, not keyed */
        _cleanup_error_ struct e2b_error *err = NULL;
        if (!o->cluster)
            return e2b_serve_reply_error(
                out, 401, "this server is in no cluster: it takes no calls of cluster nodes");
        if (e2b_cluster_verify(o->cluster, node, auth, r->method, r->target, body->buf, body->len,
                               &err) < 0)
            return e2b_serve_reply_error(out, 401, "%s", err->msg);
        c.from_node = true;
        c.b = o->here; /* this node's own sandboxes, never routed on */
    } else {
        /* E2B's CLI logs in with pages and tokens of its own (serve-auth.c) */
        if (e2b_serve_auth(o, r, body, out))
            return;
        const char *key = e2b_http1_header(r, "X-API-Key");
        if (!e2b_serve_key_check(o->keys_path, key))
            return e2b_serve_reply_error(out, 401,
                                         key ? "Invalid API key" : "missing X-API-Key header");
        /* the template build API: templates, builds, files, tags (serve-templates.c) */
        if (e2b_serve_templates(o, r, body, out))
            return;
        if (STREQ(p, "/nodes")) /* the cluster's nodes, as E2B's API lists its orchestrator nodes */
            return STREQ(r->method, "GET") ? api_nodes(&c) : not_allowed(&c, "GET");
    }
    if (e2b_str_has_prefix(p, "/v2/"))
        p += 3, c.v2 = true; /* v2 routes differ in defaults and shapes, not in paths */
    if (STREQ(p, "/sandboxes")) {
        if (STREQ(r->method, "POST"))
            return api_create(&c);
        if (STREQ(r->method, "GET"))
            return api_list(&c);
        return not_allowed(&c, "GET, POST");
    }
    if (STREQ(p, "/sandboxes/metrics"))
        return STREQ(r->method, "GET") ? api_metrics_many(&c) : not_allowed(&c, "GET");
    if (e2b_str_has_prefix(p, "/sandboxes/")) {
        const char *id = p + 11;
        size_t idlen = strcspn(id, "/");
        if (!idlen)
            return e2b_serve_reply_error(out, 404, "no route %s %s", r->method, r->path);
        _cleanup_free_ char *sid = xstrndup(id, idlen);
        return api_sandbox(&c, sid, id[idlen] ? id + idlen + 1 : "");
    }
    if (STREQ(p, "/templates") || e2b_str_has_prefix(p, "/templates/"))
        return api_templates(&c, p[10] ? p + 11 : "");
    if (STREQ(p, "/snapshots"))
        return api_snapshots(&c);
    if (!c.v2 && (STREQ(p, "/volumes") || e2b_str_has_prefix(p, "/volumes/")))
        return e2b_serve_volumes(o, r, body, out);
    if (!c.v2 && (STREQ(p, "/secrets") || e2b_str_has_prefix(p, "/secrets/")))
        return e2b_serve_secrets(o, r, body, out);
    e2b_serve_reply_error(out, 404, "no route %s %s", r->method, r->path);
}
