/* backend-local.c - the backend for this machine: sandboxes from
 * local-sandbox.c, templates from the template store. Turns our state files
 * into E2B's REST schema so every consumer sees one shape. */
#include "backend.h"
#include "http.h"
#include "local-sandbox.h"
#include "local-snapshot.h"
#include "snapshot-store.h"
#include "template-store.h"

#define ENVD_VERSION "0.6.13"

/* E2B's ListedSandbox / SandboxDetail from a state file. */
static json_t *sandbox_json(const json_t *st, bool detail)
{
    json_t *o = json_object();
    json_object_set(o, "templateID", json_object_get(st, "templateID"));
    json_object_set(o, "alias", json_object_get(st, "alias") ? json_object_get(st, "alias") : json_null());
    json_object_set(o, "sandboxID", json_object_get(st, "sandboxID"));
    json_object_set_new(o, "clientID", json_string("6532622b"));
    json_object_set(o, "startedAt", json_object_get(st, "startedAt"));
    /* The deadline is kept on the boot clock; show it on the wall clock. A
     * paused sandbox's time left does not shrink. */
    int64_t now_boot = e2b_boot_ms();
    int64_t at = e2b_json_int(st, "pausedAtBootMs", now_boot);
    int64_t left = json_object_get(st, "timeLeftMs") /* paused to disk */
                       ? e2b_json_int(st, "timeLeftMs", 0)
                       : e2b_json_int(st, "deadlineBootMs", now_boot) - at;
    _cleanup_free_ char *end = e2b_rfc3339(e2b_wall_ms() + (left > 0 ? left : 0));
    json_object_set_new(o, "endAt", json_string(end));
    json_object_set(o, "cpuCount", json_object_get(st, "cpuCount"));
    json_object_set(o, "memoryMB", json_object_get(st, "memoryMB"));
    json_object_set(o, "diskSizeMB", json_object_get(st, "diskSizeMB"));
    json_object_set(o, "metadata", json_object_get(st, "metadata"));
    json_object_set(o, "state", json_object_get(st, "state"));
    json_object_set_new(o, "envdVersion", json_string(ENVD_VERSION));
    json_object_set(o, "runtime", json_object_get(st, "runtime")); /* what runs it here */
    if (json_object_get(st, "warmPool")) /* e2b serve's, not handed out yet */
        json_object_set(o, "warmPool", json_object_get(st, "warmPool"));
    if (json_object_get(st, "accelerator")) /* vm: kvm or tcg */
        json_object_set(o, "accelerator", json_object_get(st, "accelerator"));
    if (detail) {
        json_t *tok = json_object_get(st, "envdAccessToken");
        if (tok)
            json_object_set(o, "envdAccessToken", tok);
        json_object_set(o, "allowInternetAccess", json_object_get(st, "allowInternetAccess"));
        if (json_object_get(st, "limits")) /* unprivileged: what is not enforced */
            json_object_set(o, "limits", json_object_get(st, "limits"));
    }
    /* what the sandbox was created with (E2B's SandboxDetail has it; list too, here) */
    json_t *lc = json_object_get(st, "lifecycle");
    json_object_set_new(o, "lifecycle", lc ? json_incref(lc)
                                           : json_pack("{s:b, s:s}", "autoResume", 0, "onTimeout", "kill"));
    return o;
}

static int l_create(struct e2b_backend *b, const struct e2b_sandbox_spec *spec, json_t **ret,
                    struct e2b_error **err)
{
    struct e2b_local_options o = {
        .template = spec->template,
        .timeout_s = spec->timeout_s,
        .metadata = spec->metadata,
        .env_vars = spec->env_vars,
        .secure = spec->secure,
        .internet = spec->allow_internet,
        .cpu_count = spec->cpu_count,
        .memory_mb = spec->memory_mb,
        .disk_mb = spec->disk_mb,
        .pids_max = spec->pids_max,
        .auto_pause = spec->auto_pause,
        .runtime = spec->runtime,
        .runtime_default = spec->runtime_default,
        .kernel = spec->kernel,
        .warm_pool = spec->warm_pool,
    };
    _cleanup_json_ json_t *st = NULL;
    if (e2b_local_create(&o, &st, err) < 0)
        return -1;
    *ret = sandbox_json(st, true);
    return 0;
}

static int l_adopt(struct e2b_backend *b, const char *id, const struct e2b_sandbox_spec *spec,
                   json_t **ret, struct e2b_error **err)
{
    struct e2b_local_options o = {
        .timeout_s = spec->timeout_s,
        .metadata = spec->metadata,
        .env_vars = spec->env_vars,
        .secure = spec->secure,
        .auto_pause = spec->auto_pause,
    };
    _cleanup_json_ json_t *st = NULL;
    if (e2b_local_adopt(id, &o, &st, err) < 0)
        return -1;
    *ret = sandbox_json(st, true);
    return 0;
}

static bool matches(const json_t *st, const struct e2b_sandbox_filter *f)
{
    const char *state = e2b_json_str(st, "state");
    const char *want = f->states ? f->states : "running";
    if (!state || !strstr(want, state))
        return false;
    if (f->template) {
        const char *id = e2b_json_str(st, "templateID"), *alias = e2b_json_str(st, "alias");
        if (!(id && STREQ(id, f->template)) && !(alias && STREQ(alias, f->template)))
            return false;
    }
    const char *k;
    json_t *v;
    json_t *meta = json_object_get(st, "metadata");
    json_object_foreach(f->metadata, k, v) {
        const char *have = e2b_json_str(meta, k);
        if (!have || !json_is_string(v) || !STREQ(have, json_string_value(v)))
            return false;
    }
    return true;
}

static int l_list(struct e2b_backend *b, const struct e2b_sandbox_filter *f, json_t **ret,
                  char **ret_next, struct e2b_error **err)
{
    _cleanup_json_ json_t *all = NULL;
    if (e2b_local_list(&all, err) < 0)
        return -1;
    /* Oldest first, so a page token (an offset) stays meaningful. */
    size_t n = json_array_size(all);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && e2b_json_int(json_array_get(all, j - 1), "startedAtMs", 0) >
                                        e2b_json_int(json_array_get(all, j), "startedAtMs", 0); j--) {
            json_t *x = json_incref(json_array_get(all, j - 1));
            json_array_set(all, j - 1, json_array_get(all, j));
            json_array_set_new(all, j, x);
        }
    size_t skip = f->next_token ? strtoul(f->next_token, NULL, 10) : 0, seen = 0;
    json_t *page = json_array();
    *ret_next = NULL;
    size_t i;
    json_t *st;
    json_array_foreach(all, i, st) {
        if (!matches(st, f))
            continue;
        if (seen++ < skip)
            continue;
        if (f->limit > 0 && json_array_size(page) >= (size_t)f->limit) {
            *ret_next = xasprintf("%zu", seen - 1);
            break;
        }
        json_array_append_new(page, sandbox_json(st, false));
    }
    *ret = page;
    return 0;
}

static int l_get(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    _cleanup_json_ json_t *st = NULL;
    if (e2b_local_get(id, &st, err) < 0)
        return -1;
    *ret = sandbox_json(st, true);
    return 0;
}

static int l_kill(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    return e2b_local_kill(id, err);
}

static int l_set_timeout(struct e2b_backend *b, const char *id, int t, struct e2b_error **err)
{
    return e2b_local_set_timeout(id, t, err);
}

static int l_pause(struct e2b_backend *b, const char *id, bool to_disk, struct e2b_error **err)
{
    return e2b_local_pause(id, to_disk, err);
}

static int l_connect(struct e2b_backend *b, const char *id, int t, json_t **ret, bool *ret_resumed,
                     struct e2b_error **err)
{
    if (e2b_local_resume(id, t, ret_resumed, err) < 0)
        return -1;
    return l_get(b, id, ret, err);
}

static int l_metrics(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    json_t *m = NULL;
    if (e2b_local_metrics(id, &m, err) < 0)
        return -1;
    *ret = json_array();
    json_array_append_new(*ret, m);
    return 0;
}

static int l_logs(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    return e2b_local_logs(id, ret, err);
}

static int l_envd_endpoint(struct e2b_backend *b, const char *id, struct e2b_envd_endpoint *ep,
                           struct e2b_error **err)
{
    return e2b_local_envd_endpoint(id, ep, err);
}

static int l_port_connect(struct e2b_backend *b, const char *id, int port, int *ret_fd,
                          struct e2b_error **err)
{
    return e2b_local_port_connect(id, port, ret_fd, err);
}

/* The built-in template needs no build. */
static json_t *host_template(void)
{
    return json_pack("{s:s, s:s, s:i, s:i, s:i, s:b, s:[s], s:[s], s:s, s:s, s:b}", "templateID",
                     "host", "buildID", "host", "cpuCount", 2, "memoryMB", 1024, "diskSizeMB", 1024,
                     "public", 0, "aliases", "host", "names", "host", "envdVersion", ENVD_VERSION,
                     "buildStatus", "ready", "builtIn", 1);
}

static int l_template_list(struct e2b_backend *b, json_t **ret, struct e2b_error **err)
{
    struct e2b_store store;
    if (e2b_store_open(&store, err) < 0)
        return -1;
    int r = e2b_store_list(&store, ret, err);
    e2b_store_close(&store);
    if (r == 0)
        json_array_append_new(*ret, host_template());
    return r;
}

static int l_template_get(struct e2b_backend *b, const char *name, json_t **ret, struct e2b_error **err)
{
    if (STREQ(name, "host")) {
        *ret = host_template();
        return 0;
    }
    struct e2b_store store;
    if (e2b_store_open(&store, err) < 0)
        return -1;
    int r = e2b_store_find(&store, name, ret, NULL, err);
    e2b_store_close(&store);
    return r;
}

static int l_template_delete(struct e2b_backend *b, const char *name, struct e2b_error **err)
{
    if (STREQ(name, "host"))
        return e2b_error_set(err, E2B_ERR_PERMISSION, "template 'host' is built in and cannot be deleted");
    struct e2b_store store;
    if (e2b_store_open(&store, err) < 0)
        return -1;
    int r = e2b_store_delete(&store, name, err);
    e2b_store_close(&store);
    return r;
}

/* E2B's SnapshotInfo, and what is known here about where it came from. */
static json_t *snapshot_json(const json_t *meta)
{
    return json_pack(
        "{s:O, s:o, s:O?, s:O?, s:O?}", "snapshotID", json_object_get(meta, "snapshotID"), "names",
        json_object_get(meta, "names") ? json_incref(json_object_get(meta, "names")) : json_array(),
        "sandboxID", json_object_get(meta, "sandboxID"), "runtime",
        json_object_get(meta, "runtime"), "createdAt", json_object_get(meta, "createdAt"));
}

static int l_snapshot_create(struct e2b_backend *b, const char *id, const char *name, json_t **ret,
                             struct e2b_error **err)
{
    _cleanup_json_ json_t *meta = NULL;
    if (e2b_local_snapshot(id, name, &meta, err) < 0)
        return -1;
    *ret = snapshot_json(meta);
    return 0;
}

/* By ID or name (any tag), or exactly "name:tag". */
static bool snapshot_named(const json_t *meta, const char *want)
{
    const char *tid = e2b_json_str(meta, "templateID") ?: "", *name = e2b_json_str(meta, "name");
    if (STREQ(e2b_json_str(meta, "snapshotID") ?: "", want))
        return true;
    size_t n = strcspn(want, ":");
    if (want[n] && !STREQ(want + n + 1, e2b_json_str(meta, "tag") ?: ""))
        return false;
    return (strlen(tid) == n && !strncmp(tid, want, n)) ||
           (name && strlen(name) == n && !strncmp(name, want, n));
}

static int l_snapshot_list(struct e2b_backend *b, const struct e2b_snapshot_filter *f, json_t **ret,
                           char **ret_next, struct e2b_error **err)
{
    _cleanup_json_ json_t *all = NULL;
    if (e2b_snapshot_list(&all, err) < 0)
        return -1;
    size_t skip = f->next_token ? strtoul(f->next_token, NULL, 10) : 0, seen = 0, i;
    json_t *page = json_array(), *m;
    *ret_next = NULL;
    json_array_foreach(all, i, m) {
        if (f->sandbox_id && !STREQ(e2b_json_str(m, "sandboxID") ?: "", f->sandbox_id))
            continue;
        if (f->name && !snapshot_named(m, f->name))
            continue;
        if (seen++ < skip)
            continue;
        if (f->limit > 0 && json_array_size(page) >= (size_t)f->limit) {
            *ret_next = xasprintf("%zu", seen - 1);
            break;
        }
        json_array_append_new(page, snapshot_json(m));
    }
    *ret = page;
    return 0;
}

static int l_snapshot_delete(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    return e2b_snapshot_delete(id, err);
}

static int l_snapshot_fork(struct e2b_backend *b, const char *id, int count, int timeout_s,
                           json_t **ret, struct e2b_error **err)
{
    _cleanup_json_ json_t *res = NULL;
    if (e2b_local_fork(id, count, timeout_s, &res, err) < 0)
        return -1;
    json_t *out = json_array(), *r;
    size_t i;
    json_array_foreach(res, i, r) {
        json_t *st = json_object_get(r, "sandbox"), *e = json_object_get(r, "error");
        if (st)
            json_array_append_new(out, json_pack("{s:o}", "sandbox", sandbox_json(st, true)));
        else
            json_array_append_new(out, json_pack("{s:{s:i, s:s}}", "error", "code",
                                                 e2b_errcode_http_status(
                                                     (int)e2b_json_int(e, "code", E2B_ERR_GENERIC)),
                                                 "message", e2b_json_str(e, "message") ?: ""));
    }
    *ret = out;
    return 0;
}

static void l_free(struct e2b_backend *b) { free(b); }

static const struct e2b_backend_ops local_ops = {
    .name = "local",
    .sandboxes = E2B_SANDBOX_OPS(l_),
    .edge = {
        .envd_endpoint = l_envd_endpoint,
        .port_connect = l_port_connect,
    },
    .templates = E2B_TEMPLATE_OPS(l_template_),
    .snapshots = E2B_SNAPSHOT_OPS(l_snapshot_),
    .free = l_free,
};

int e2b_backend_local_new(struct e2b_backend **ret, struct e2b_error **err)
{
    struct e2b_backend *b = xcalloc(1, sizeof(*b));
    b->ops = &local_ops;
    *ret = b;
    return 0;
}
