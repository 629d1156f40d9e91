/* backend-local.c - the backend for this machine: sandboxes from
 * local-sandbox.c, templates from the template store. Turns our state files
 * into E2B's REST schema so every consumer sees one shape. */
#include "backend.h"
#include "http.h"
#include "local-sandbox.h"
#include "local-snapshot.h"
#include "snapshot-store.h"
#include "egress-rules.h"
#include "fsutil.h"
#include "local-sandbox.h"
#include "secret-store.h"
#include "template-store.h"
#include "volume-store.h"

#include <fcntl.h>
#include <sys/stat.h>

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
    json_t *mounts = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(st, "volumeMounts"), i, m)
        json_array_append_new(mounts, json_pack("{s:O, s:O}", "name", json_object_get(m, "name"), "path",
                                                json_object_get(m, "path")));
    json_object_set_new(o, "volumeMounts", mounts);
    if (detail) { /* E2B's SandboxNetworkConfig: the rules as given (secrets as markers) */
        json_t *net = json_object_get(st, "network") ? json_deep_copy(json_object_get(st, "network")) : json_object();
        json_object_set_new(net, "allowPublicTraffic", json_true());
        json_object_set_new(o, "network", net);
    }
    /* what the sandbox was created with (E2B's SandboxDetail has it; list too, here) */
    json_t *lc = json_object_get(st, "lifecycle");
    json_object_set_new(o, "lifecycle", lc ? json_incref(lc)
                                           : json_pack("{s:b, s:s}", "autoResume", 0, "onTimeout", "kill"));
    return o;
}

/* The rules with every ${e2b.secrets.NAME} of their header values filled
 * from the secret store (for the egress filter only; never recorded). */
static int fill_rules(const json_t *network, json_t **ret, struct e2b_error **err)
{
    *ret = NULL;
    json_t *rules = json_object_get(network, "rules");
    if (!json_object_size(rules))
        return 0;
    json_t *out = json_deep_copy(rules);
    const char *host;
    json_t *list;
    json_object_foreach(out, host, list) {
        size_t i;
        json_t *rule;
        json_array_foreach(list, i, rule) {
            json_t *hdrs = json_object_get(json_object_get(rule, "transform"), "headers");
            const char *k;
            json_t *v;
            json_object_foreach(hdrs, k, v) {
                char *filled = NULL;
                if (!json_is_string(v) || e2b_secret_fill(NULL, json_string_value(v), &filled, err) < 0) {
                    json_decref(out);
                    return e2b_error_wrap(err, "network.rules['%s'] header '%s'", host, k);
                }
                json_object_set_new(hdrs, k, json_string(filled));
                explicit_bzero(filled, strlen(filled));
                free(filled);
            }
        }
    }
    *ret = out;
    return 0;
}

/* The rules are checked before anything starts, for a clear error. */
static int check_network(const json_t *network, bool internet, struct e2b_error **err)
{
    struct e2b_egress e;
    if (e2b_egress_parse(network, internet, &e, err) < 0)
        return -1;
    e2b_egress_release(&e);
    return 0;
}

static int l_create(struct e2b_backend *b, const struct e2b_sandbox_spec *spec, json_t **ret,
                    struct e2b_error **err)
{
    _cleanup_json_ json_t *rules = NULL;
    if (spec->network && (check_network(spec->network, spec->allow_internet, err) < 0 ||
                          fill_rules(spec->network, &rules, err) < 0))
        return -1;
    struct e2b_local_options o = {
        .template = spec->template, .timeout_s = spec->timeout_s, .metadata = spec->metadata,
        .env_vars = spec->env_vars, .secure = spec->secure, .internet = spec->allow_internet,
        .cpu_count = spec->cpu_count, .memory_mb = spec->memory_mb, .disk_mb = spec->disk_mb,
        .pids_max = spec->pids_max, .auto_pause = spec->auto_pause, .runtime = spec->runtime,
        .runtime_default = spec->runtime_default, .kernel = spec->kernel,
        .auto_resume = spec->auto_resume, .volume_mounts = spec->volume_mounts,
        .network = spec->network, .network_rules = rules, .warm_pool = spec->warm_pool,
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
        .auto_resume = spec->auto_resume,
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
    /* its rules' secrets filled again, for a filter that starts anew */
    _cleanup_json_ json_t *st = NULL, *rules = NULL;
    if (e2b_local_get(id, &st, err) < 0 ||
        fill_rules(json_object_get(st, "network"), &rules, err) < 0 ||
        e2b_local_resume(id, t, rules, ret_resumed, err) < 0)
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

static int l_update_network(struct e2b_backend *b, const char *id, const json_t *net, struct e2b_error **err)
{
    /* E2B: a field left out is cleared (internet access: back to allowed) */
    json_t *ai = json_object_get(net, "allow_internet_access");
    bool internet = !ai || json_is_null(ai) || json_is_true(ai);
    _cleanup_json_ json_t *rules = NULL;
    if (check_network(net, internet, err) < 0 || fill_rules(net, &rules, err) < 0)
        return -1;
    return e2b_local_set_network(id, net, rules, internet, err);
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

/* The built-in template needs no build: it is as old as this e2b binary. */
static json_t *host_template(void)
{
    struct stat st;
    int64_t ms = stat("/proc/self/exe", &st) == 0 ? (int64_t)st.st_mtim.tv_sec * 1000 : e2b_wall_ms();
    _cleanup_free_ char *at = e2b_rfc3339(ms);
    return json_pack("{s:s, s:s, s:i, s:i, s:i, s:b, s:[s], s:[s], s:s, s:s, s:b, s:s, s:s}", "templateID",
                     "host", "buildID", "host", "cpuCount", 2, "memoryMB", 1024, "diskSizeMB", 1024,
                     "public", 0, "aliases", "host", "names", "host", "envdVersion", ENVD_VERSION,
                     "buildStatus", "ready", "builtIn", 1, "createdAt", at, "updatedAt", at);
}

/* The fields E2B's Template has and template.json does not: counters and
 * who made it (nobody here: no teams). */
static json_t *with_counts(struct e2b_store *store, json_t *t)
{
    _cleanup_json_ json_t *c = e2b_store_counts(store, e2b_json_str(t, "templateID"));
    json_object_set_new(t, "buildCount", json_integer(e2b_json_int(c, "buildCount", 1)));
    json_object_set_new(t, "spawnCount", json_integer(e2b_json_int(c, "spawnCount", 0)));
    json_object_set(t, "lastSpawnedAt", json_object_get(c, "lastSpawnedAt") ? json_object_get(c, "lastSpawnedAt")
                                                                           : json_null());
    if (!json_object_get(t, "createdBy"))
        json_object_set_new(t, "createdBy", json_null());
    return t;
}

static int l_template_list(struct e2b_backend *b, json_t **ret, struct e2b_error **err)
{
    struct e2b_store store;
    if (e2b_store_open(&store, err) < 0)
        return -1;
    int r = e2b_store_list(&store, ret, err);
    if (r == 0) {
        json_array_append_new(*ret, host_template());
        size_t i;
        json_t *t;
        json_array_foreach(*ret, i, t)
            with_counts(&store, t);
    }
    e2b_store_close(&store);
    return r;
}

static int l_template_get(struct e2b_backend *b, const char *name, json_t **ret, struct e2b_error **err)
{
    struct e2b_store store;
    if (e2b_store_open(&store, err) < 0)
        return -1;
    int r = 0;
    if (STREQ(name, "host"))
        *ret = host_template();
    else
        r = e2b_store_find(&store, name, ret, NULL, err);
    if (r == 0)
        with_counts(&store, *ret);
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

/* ---- volumes ---- */

static int l_volume_create(struct e2b_backend *b, const char *name, long long quota_mb, json_t **ret,
                           struct e2b_error **err)
{
    return e2b_volume_create(name, quota_mb, ret, err);
}

static int l_volume_list(struct e2b_backend *b, json_t **ret, struct e2b_error **err)
{
    return e2b_volume_list(ret, err);
}

static int l_volume_get(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    return e2b_volume_get(id, ret, err);
}

static int l_volume_delete(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    return e2b_volume_delete(id, e2b_local_volume_in_use, NULL, err);
}

static int l_volume_ls(struct e2b_backend *b, const char *volume, const char *path, int depth, json_t **ret,
                       struct e2b_error **err)
{
    struct e2b_volume v;
    if (e2b_volume_open(volume, &v, err) < 0)
        return -1;
    json_t *e = NULL;
    int r;
    if (e2b_volume_stat(&v, path, &e, NULL) == 0 && !STREQ(e2b_json_str(e, "type"), "directory")) {
        *ret = json_pack("[o]", e); /* a file: itself */
        r = 0;
    } else {
        json_decref(e);
        r = e2b_volume_list_dir(&v, path, depth, ret, err);
    }
    e2b_volume_close(&v);
    return r;
}

static int l_volume_read(struct e2b_backend *b, const char *volume, const char *path, int out_fd,
                         struct e2b_error **err)
{
    struct e2b_volume v;
    if (e2b_volume_open(volume, &v, err) < 0)
        return -1;
    int fd = -1;
    uint64_t size = 0;
    int r = e2b_volume_open_read(&v, path, &fd, &size, err);
    e2b_volume_close(&v);
    if (r < 0)
        return -1;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        if (e2b_write_all(out_fd, buf, (size_t)n) < 0) {
            r = e2b_error_sys(err, errno, "cannot write '%s'", path);
            break;
        }
    if (n < 0)
        r = e2b_error_sys(err, errno, "cannot read '%s'", path);
    close(fd);
    return r;
}

static int l_volume_write(struct e2b_backend *b, const char *volume, const char *path, int in_fd, json_t **ret,
                          struct e2b_error **err)
{
    struct e2b_volume v;
    if (e2b_volume_open(volume, &v, err) < 0)
        return -1;
    struct e2b_volume_writer w;
    int r = e2b_volume_write_begin(&v, path, NULL, &w, err);
    size_t size = 1 << 20;
    _cleanup_free_ char *buf = xmalloc(size);
    ssize_t n = 0;
    while (r == 0 && (n = read(in_fd, buf, size)) > 0)
        r = e2b_volume_write(&w, buf, (size_t)n, err);
    if (r == 0 && n < 0)
        r = e2b_error_sys(err, errno, "cannot read the data for '%s'", path);
    if (r == 0)
        r = e2b_volume_write_commit(&w, &v, ret, err);
    else
        e2b_volume_write_abort(&w);
    e2b_volume_close(&v);
    return r;
}

static int l_volume_open(struct e2b_backend *b, const char *id, struct e2b_volume *v, struct e2b_error **err)
{
    return e2b_volume_open(id, v, err);
}

/* ---- secrets (the server's store: only e2b serve opens its key) ---- */

static int l_secret_create(struct e2b_backend *b, const char *name, const char *value, const json_t *meta,
                           json_t **ret, struct e2b_error **err)
{
    return e2b_secret_create(NULL, name, value, meta, ret, err);
}

static int l_secret_list(struct e2b_backend *b, json_t **ret, struct e2b_error **err)
{
    return e2b_secret_list(NULL, ret, err);
}

static int l_secret_get(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    return e2b_secret_get(NULL, id, ret, err);
}

static int l_secret_update(struct e2b_backend *b, const char *id, const char *value, const json_t *meta,
                           json_t **ret, struct e2b_error **err)
{
    return e2b_secret_update(NULL, id, value, meta, ret, err);
}

static int l_secret_delete(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    return e2b_secret_delete(NULL, id, err);
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
    .volumes = E2B_VOLUME_OPS(l_volume_, l_volume_open),
    .secrets = E2B_SECRET_OPS(l_secret_),
    .free = l_free,
};

int e2b_backend_local_new(struct e2b_backend **ret, struct e2b_error **err)
{
    struct e2b_backend *b = xcalloc(1, sizeof(*b));
    b->ops = &local_ops;
    *ret = b;
    return 0;
}
