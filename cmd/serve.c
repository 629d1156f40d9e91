/* serve.c - `e2b serve` and `e2b key create|list|revoke`. */
#include "cmd.h"
#include "fsutil.h"
#include "output.h"
#include "serve-keys.h"
#include "serve-warm.h"
#include "serve.h"
#include "usage.h"

#include <signal.h>

static volatile int stop_serving;
static void on_stop(int sig) { stop_serving = sig; }

static void cluster_event(const char *msg, void *ud)
{
    const struct e2b_ctx *ctx = ud;
    if (!ctx->quiet)
        fprintf(stderr, "e2b serve: cluster: %s\n", msg);
}

/* The cluster secret: --cluster-secret-file, else $E2B_CLUSTER_SECRET (never
 * a flag's value: other users see a command line). Trailing newlines go. */
static int cluster_secret(struct e2b_args *args, char **ret, size_t *len, struct e2b_error **err)
{
    const char *file = e2b_args_str(args, "cluster-secret-file"), *env = getenv("E2B_CLUSTER_SECRET");
    *ret = NULL;
    if (file) {
        if (e2b_read_file(file, ret, len, err) < 0)
            return e2b_error_wrap(err, "cannot read the cluster secret");
    } else if (env && *env) {
        *ret = xstrdup(env);
        *len = strlen(env);
    } else {
        return e2b_error_set(err, E2B_ERR_USAGE, "a cluster node needs the cluster's secret: "
                                                 "--cluster-secret-file PATH or E2B_CLUSTER_SECRET");
    }
    while (*len && ((*ret)[*len - 1] == '\n' || (*ret)[*len - 1] == '\r'))
        (*ret)[--*len] = '\0';
    return 0;
}

static void ready(const char *addr, void *ud)
{
    const struct e2b_ctx *ctx = ud;
    if (!ctx->quiet)
        fprintf(stderr, "e2b serve: listening on http://%s (E2B_API_URL and E2B_SANDBOX_URL)\n", addr);
}

const struct e2b_opt opts_serve[] = {
    E2B_OPT_STRING(0, "listen", "ADDR:PORT", "address to serve on (default 127.0.0.1:3000)"),
    E2B_OPT_STRING(0, "domain", "DOMAIN", "route <port>-<sandboxID>.DOMAIN hosts to sandboxes"),
    E2B_OPT_FLAG(0, "deny-internet", "sandboxes get internet access only when a create asks for it"),
    E2B_OPT_CHOICE(0, "runtime", "RUNTIME",
                   "runtime of sandboxes whose template names none: ns, vm or auto (default auto)", "ns,vm,auto"),
    E2B_OPT_STRING_C(0, "kernel", "PATH", "guest kernel of the vm runtime (default: found in /boot)",
                     E2B_COMPLETE_FILE),
    E2B_OPT_INT(0, "max-connections", "N", "most client connections at once (default 1024)"),
    E2B_OPT_INT(0, "head-timeout", "SECONDS", "a request head must arrive within this (default 30)"),
    E2B_OPT_INT(0, "idle-timeout", "SECONDS", "close a connection idle this long between requests (default 120)"),
    E2B_OPT_INT(0, "max-builds", "N", "template builds of the API at once; more wait in a queue (default 2)"),
    E2B_OPT_INT(0, "upload-limit", "MIB", "largest files upload of a template build (default 1024)"),
    E2B_OPT_STRING_C(0, "keys", "PATH", "the API keys file (default: serve/keys.json in the data directory)",
                     E2B_COMPLETE_FILE),
    E2B_OPT_STRING(0, "cluster", "URL", "join the cluster whose catalog is this Redis (redis://[:PASSWORD@]HOST[:PORT][/DB])"),
    E2B_OPT_STRING(0, "node-address", "HOST:PORT", "where the other cluster nodes reach this server"),
    E2B_OPT_STRING(0, "node-id", "NAME", "this node's name in the cluster, kept across restarts (default: its address)"),
    E2B_OPT_STRING_C(0, "cluster-secret-file", "PATH",
                     "file holding the secret the cluster's nodes share (else $E2B_CLUSTER_SECRET)", E2B_COMPLETE_FILE),
    E2B_OPT_INT(0, "lease", "SECONDS", "a node that has not renewed its lease for this long is dead (default 10)"),
    E2B_OPT_LIST(0, "warm", "TEMPLATE=N", "keep N sandboxes of TEMPLATE started ahead for creates (repeatable)"),
    E2B_OPT_STRING_C(0, "config", "FILE", "settings from a JSON file: {\"warm\": {TEMPLATE: N}}",
                     E2B_COMPLETE_FILE),
    E2B_OPT_END,
};

/* --config FILE's "warm", then each --warm over it. */
static int warm_pools(struct e2b_args *args, json_t **ret, struct e2b_error **err)
{
    json_t *pools = json_object();
    const char *file = e2b_args_str(args, "config");
    if (file) {
        _cleanup_json_ json_t *cfg = NULL;
        if (e2b_json_load_file(file, &cfg, err) < 0) {
            json_decref(pools);
            return -1;
        }
        const char *k;
        json_t *v;
        json_object_foreach(cfg, k, v) {
            if (!STREQ(k, "warm") || !json_is_object(v)) {
                json_decref(pools);
                return e2b_error_set(err, E2B_ERR_USAGE,
                                     "%s: '%s' is not a setting (the file has \"warm\": {TEMPLATE: N})",
                                     file, k);
            }
            json_object_update(pools, v);
        }
    }
    size_t n;
    const char *const *warm = e2b_args_list(args, "warm", &n);
    for (size_t i = 0; i < n; i++)
        if (e2b_serve_warm_parse(warm[i], pools, err) < 0) {
            json_decref(pools);
            return -1;
        }
    *ret = pools;
    return 0;
}

int cmd_serve(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    struct e2b_backend *b = NULL;
    if (e2b_backend_local_new(&b, &err) < 0)
        return e2b_fail(err);
    long long maxc = e2b_args_int(args, "max-connections", 1024);
    long long head = e2b_args_int(args, "head-timeout", 30), idle = e2b_args_int(args, "idle-timeout", 120);
    const char *runtime = e2b_args_str(args, "runtime");
    if (runtime && !STREQ(runtime, "ns") && !STREQ(runtime, "vm") && !STREQ(runtime, "auto")) {
        e2b_backend_free(b);
        return e2b_usage_error("serve", "--runtime must be ns, vm or auto");
    }
    long long builds = e2b_args_int(args, "max-builds", 2), upload = e2b_args_int(args, "upload-limit", 1024);
    if (maxc < 1 || maxc > 65536 || head < 1 || head > 3600 || idle < 1 || idle > 86400) {
        e2b_backend_free(b);
        return e2b_usage_error("serve", "--max-connections must be 1..65536, --head-timeout 1..3600 "
                                        "and --idle-timeout 1..86400");
    }
    if (builds < 1 || builds > 64 || upload < 1 || upload > 1048576) {
        e2b_backend_free(b);
        return e2b_usage_error("serve", "--max-builds must be 1..64 and --upload-limit 1..1048576 MiB");
    }
    const char *cluster = e2b_args_str(args, "cluster");
    long long lease = e2b_args_int(args, "lease", 10);
    _cleanup_free_ char *secret = NULL;
    size_t secret_len = 0;
    if (!cluster && (e2b_args_str(args, "node-address") || e2b_args_str(args, "node-id") ||
                     e2b_args_str(args, "cluster-secret-file") || e2b_args_str(args, "lease"))) {
        e2b_backend_free(b);
        return e2b_usage_error("serve", "--node-address, --node-id, --cluster-secret-file and --lease need --cluster");
    }
    if (cluster && (lease < 1 || lease > 3600 || !e2b_args_str(args, "node-address"))) {
        e2b_backend_free(b);
        return e2b_usage_error("serve", "--cluster needs --node-address HOST:PORT, and --lease must be 1..3600");
    }
    if (cluster && cluster_secret(args, &secret, &secret_len, &err) < 0) {
        e2b_backend_free(b);
        return e2b_fail(err);
    }
    _cleanup_json_ json_t *pools = NULL;
    if (warm_pools(args, &pools, &err) < 0) {
        e2b_backend_free(b);
        return err->code == E2B_ERR_USAGE ? e2b_usage_error("serve", "%s", err->msg) : e2b_fail(err);
    }
    if (cluster && json_object_size(pools)) { /* a node's placement does not know them */
        e2b_backend_free(b);
        return e2b_usage_error("serve", "--warm is not for a cluster's nodes (yet)");
    }
    _cleanup_free_ char *keys = e2b_args_str(args, "keys") ? xstrdup(e2b_args_str(args, "keys")) : e2b_serve_keys_path();
    struct sigaction sa = {.sa_handler = on_stop};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct e2b_serve_opts o = {
        .listen = e2b_args_str(args, "listen") ? e2b_args_str(args, "listen") : "127.0.0.1:3000",
        .domain = e2b_args_str(args, "domain"), .backend = b, .keys_path = keys,
        .deny_internet = e2b_args_flag(args, "deny-internet"), .max_connections = (int)maxc,
        .runtime = runtime, .kernel = e2b_args_str(args, "kernel"),
        .head_timeout_ms = (int)head * 1000, .idle_timeout_ms = (int)idle * 1000,
        .max_builds = (int)builds, .upload_limit_mb = (long)upload,
        .stop = &stop_serving, .on_ready = ready, .ud = ctx,
        .cluster_url = cluster, .node_address = e2b_args_str(args, "node-address"),
        .node_id = e2b_args_str(args, "node-id"), .cluster_secret = secret, .cluster_secret_len = secret_len,
        .lease_ms = (int)lease * 1000, .on_event = cluster_event, .warm_pools = pools,
    };
    int r = e2b_serve_run(&o, &err);
    if (secret)
        explicit_bzero(secret, secret_len);
    e2b_backend_free(b);
    if (r < 0)
        return e2b_fail(err);
    return 0;
}

const struct e2b_opt opts_key_create[] = {
    E2B_OPT_STRING('n', "name", "NAME", "a name to recognise the key by"),
    E2B_OPT_END,
};

int cmd_key_create(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_free_ char *path = e2b_serve_keys_path();
    _cleanup_free_ char *key = NULL;
    _cleanup_json_ json_t *entry = NULL;
    if (e2b_serve_key_create(path, e2b_args_str(args, "name"), &key, &entry, &err) < 0)
        return e2b_fail(err);
    if (ctx->json) {
        json_object_set_new(entry, "key", json_string(key));
        e2b_object_print(entry, NULL, stdout, true);
    } else {
        printf("%s\n", key);
        if (!ctx->quiet)
            fprintf(stderr, "Created key %s; it is shown only now\n", e2b_json_str(entry, "id"));
    }
    return 0;
}

const struct e2b_opt opts_key_list[] = {E2B_OPT_END};

int cmd_key_list(struct e2b_ctx *ctx, struct e2b_args *args)
{
    static const struct e2b_column cols[] = {{"id", "ID"}, {"name", "NAME"}, {"prefix", "KEY"},
                                             {"createdAt", "CREATED"}, {NULL, NULL}};
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_free_ char *path = e2b_serve_keys_path();
    json_t *list = NULL;
    if (e2b_serve_key_list(path, &list, &err) < 0)
        return e2b_fail(err);
    struct e2b_table *t = e2b_table_new(cols);
    json_array_extend(e2b_table_rows(t), list);
    json_decref(list);
    e2b_table_print(t, stdout, ctx->json);
    e2b_table_free(t);
    return 0;
}

const struct e2b_opt opts_key_revoke[] = {
    E2B_OPT_ARGS("id", E2B_OPTF_REQUIRED, "IDs of the keys to revoke (from 'e2b key list')"),
    E2B_OPT_END,
};

int cmd_key_revoke(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_free_ char *path = e2b_serve_keys_path();
    size_t n;
    const char *const *ids = e2b_args_list(args, "id", &n);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (e2b_serve_key_revoke(path, ids[i], &err) < 0) {
            rc = e2b_fail(err);
            e2b_error_free(err);
            err = NULL;
        } else if (!ctx->quiet) {
            fprintf(stderr, "Revoked key %s\n", ids[i]);
        }
    }
    return rc;
}
