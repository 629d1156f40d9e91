/* sandbox.c - sandbox lifecycle verbs over a backend (local or remote):
 * create/spawn, list, info, kill, set-timeout, pause, resume, metrics, logs.
 * The verbs that work inside a sandbox (exec, files, pty, connect) live in
 * their own files on top of the envd client. */
#include "backend.h"
#include "cmd.h"
#include "output.h"
#include "sandbox-cli.h"
#include "strbuf.h"
#include "usage.h"

#include <signal.h>

static const struct e2b_column sandbox_cols[] = {
    {"sandboxID", "SANDBOX ID"}, {"templateID", "TEMPLATE ID"}, {"alias", "ALIAS"},
    {"state", "STATE"},          {"startedAt", "STARTED AT"},   {"endAt", "END AT"},
    {"cpuCount", "VCPUS"},       {"memoryMB", "RAM MIB"},       {"metadata", "METADATA"},
    {NULL, NULL},
};

static const struct e2b_column detail_cols[] = {
    {"sandboxID", "Sandbox ID"}, {"templateID", "Template ID"}, {"alias", "Alias"},
    {"state", "State"},          {"startedAt", "Started at"},   {"endAt", "End at"},
    {"cpuCount", "vCPUs"},       {"memoryMB", "Memory MiB"},    {"diskSizeMB", "Disk MiB"},
    {"envdVersion", "envd version"}, {"runtime", "Runtime"}, {"accelerator", "Accelerator"},
    {"allowInternetAccess", "Internet"},
    {"limits", "Limits"},        {"lifecycle", "Lifecycle"},  {"metadata", "Metadata"},
    {NULL, NULL},
};

const struct e2b_opt opts_sandbox_create[] = {
    E2B_OPT_INT(0, "timeout", "SECONDS", "kill (or pause) the sandbox after this long (default 300)"),
    E2B_OPT_LIST('e', "env", "KEY=VALUE", "environment variable for every process (repeatable)"),
    E2B_OPT_LIST('m', "metadata", "KEY=VALUE", "metadata to attach (repeatable)"),
    E2B_OPT_INT(0, "cpu", "COUNT", "vCPUs (default: the template's)"),
    E2B_OPT_INT(0, "memory", "MIB", "memory limit in MiB (default: the template's)"),
    E2B_OPT_INT(0, "disk", "MIB", "size of the writable layer in MiB (default 1024)"),
    E2B_OPT_INT(0, "pids", "N", "most processes the sandbox may have (default 4096)"),
    E2B_OPT_FLAG(0, "internet", "give the sandbox outbound internet access"),
    E2B_OPT_LIST(0, "allow-out", "DEST", "allow outbound traffic to an IP, CIDR, domain or *.domain, "
                                         "optionally :PORT[-PORT] (repeatable; implies --internet)"),
    E2B_OPT_LIST(0, "deny-out", "DEST", "deny outbound traffic to an IP or CIDR, or ALL_TRAFFIC "
                                        "(repeatable; implies --internet; an allowed one wins)"),
    E2B_OPT_LIST(0, "volume", "NAME:PATH", "mount a volume read-write at PATH (repeatable; a VM has it alone)"),
    E2B_OPT_CHOICE(0, "lifecycle.ontimeout", "ACTION", "at the timeout: kill (default) or pause",
                   "kill,pause"),
    E2B_OPT_FLAG(0, "secure", "require an access token for envd (sandbox info shows it)"),
    E2B_OPT_CHOICE(0, "runtime", "RUNTIME",
                   "ns (namespaces), vm (a QEMU microVM) or auto (vm where KVM is; default: the template's, else auto)",
                   "ns,vm,auto"),
    E2B_OPT_STRING_C(0, "kernel", "PATH", "guest kernel of the vm runtime (default: found in /boot)",
                     E2B_COMPLETE_FILE),
    E2B_OPT_FLAG('d', "detach", "print the sandbox ID and leave it running"),
    E2B_OPT_STRING('u', "user", "USER", "user for the terminal (default: the template's)"),
    E2B_OPT_STRING('c', "cwd", "DIR", "working directory for the terminal"),
    E2B_OPT_ARG_C("template", 0, "template ID or name (default: base)", E2B_COMPLETE_TEMPLATE),
    E2B_OPT_END,
};

/* --allow-out and --deny-out as E2B's {allowOut, denyOut}, or NULL for none. */
static json_t *network_rules(struct e2b_args *args)
{
    size_t na, nd;
    const char *const *allow = e2b_args_list(args, "allow-out", &na);
    const char *const *deny = e2b_args_list(args, "deny-out", &nd);
    if (!na && !nd)
        return NULL;
    json_t *a = json_array(), *d = json_array();
    for (size_t i = 0; i < na; i++)
        json_array_append_new(a, json_string(allow[i]));
    for (size_t i = 0; i < nd; i++)
        json_array_append_new(d, json_string(deny[i]));
    return json_pack("{s:o, s:o}", "allowOut", a, "denyOut", d);
}

int cmd_sandbox_create(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *env = NULL, *meta = NULL, *sbx = NULL;
    long long timeout = e2b_args_int(args, "timeout", 300);
    if (timeout <= 0 || timeout > 24 * 3600)
        return e2b_usage_error("sandbox create", "--timeout must be between 1 and 86400 seconds");
    if (e2b_cli_parse_kv(e2b_args_list(args, "env", NULL), "--env", &env) ||
        e2b_cli_parse_kv(e2b_args_list(args, "metadata", NULL), "--metadata", &meta))
        return 2;
    long long cpu = e2b_args_int(args, "cpu", 0), mem = e2b_args_int(args, "memory", 0);
    long long disk = e2b_args_int(args, "disk", 0), pids = e2b_args_int(args, "pids", 0);
    if (pids < 0 || (pids && pids < 8))
        return e2b_usage_error("sandbox create", "--pids must be at least 8");
    if (cpu < 0 || cpu > 64 || mem < 0 || (mem && mem < 16) || disk < 0 || (disk && disk < 8))
        return e2b_usage_error("sandbox create", "--cpu must be 1..64, --memory at least 16 MiB "
                                                 "and --disk at least 8 MiB");
    const char *runtime = e2b_args_str(args, "runtime");
    if (runtime && !STREQ(runtime, "ns") && !STREQ(runtime, "vm") && !STREQ(runtime, "auto"))
        return e2b_usage_error("sandbox create", "--runtime must be ns, vm or auto");
    _cleanup_json_ json_t *mounts = NULL, *net = network_rules(args);
    size_t nvol;
    const char *const *vols = e2b_args_list(args, "volume", &nvol);
    for (size_t i = 0; i < nvol; i++) {
        const char *colon = strchr(vols[i], ':');
        if (!colon || colon == vols[i] || colon[1] != '/')
            return e2b_usage_error("sandbox create", "--volume '%s' is not NAME:/PATH", vols[i]);
        if (!mounts)
            mounts = json_array();
        json_array_append_new(mounts, json_pack("{s:s%, s:s}", "name", vols[i], (size_t)(colon - vols[i]), "path",
                                                colon + 1));
    }
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    struct e2b_sandbox_spec spec = {
        .template = e2b_args_str(args, "template") ? e2b_args_str(args, "template") : "base",
        .runtime = runtime,
        .kernel = e2b_args_str(args, "kernel"),
        .timeout_s = (int)timeout,
        .metadata = meta,
        .env_vars = env,
        .secure = e2b_args_flag(args, "secure"),
        .allow_internet = e2b_args_flag(args, "internet") || net,
        .network = net,
        .volume_mounts = mounts,
        .auto_pause = STREQ(e2b_args_str(args, "lifecycle.ontimeout") ?: "kill", "pause"),
        .cpu_count = (int)cpu,
        .memory_mb = (int)mem,
        .disk_mb = (int)disk,
        .pids_max = (int)pids,
    };
    if (b->ops->sandboxes.create(b, &spec, &sbx, &err) < 0)
        return e2b_fail(err);
    const char *id = e2b_json_str(sbx, "sandboxID");
    if (e2b_json_str(sbx, "limits"))
        fprintf(stderr, "e2b: warning: sandbox %s: limits: %s\n", id, e2b_json_str(sbx, "limits"));
    if (e2b_args_flag(args, "detach")) {
        if (ctx->json)
            e2b_object_print(sbx, detail_cols, stdout, true);
        else
            printf("%s\n", id);
        return 0;
    }
    /* Like E2B's CLI: a terminal in the new sandbox, which ends with it. */
    int rc = e2b_cli_terminal(ctx, b, id, e2b_args_str(args, "user"), e2b_args_str(args, "cwd"), NULL);
    if (b->ops->sandboxes.kill(b, id, &err) < 0 && err->code != E2B_ERR_NOT_FOUND)
        e2b_fail(err);
    return rc;
}

const struct e2b_opt opts_sandbox_list[] = {
    E2B_OPT_CHOICE('s', "state", "STATES", "running, paused or running,paused (default running)",
                   "running,paused"),
    E2B_OPT_LIST('m', "metadata", "KEY=VALUE", "only sandboxes with this metadata (repeatable)"),
    E2B_OPT_STRING_C('t', "template", "TEMPLATE", "only sandboxes of this template", E2B_COMPLETE_TEMPLATE),
    E2B_OPT_INT('l', "limit", "N", "at most N sandboxes (default 1000, 0 for all)"),
    E2B_OPT_END,
};

static int list_all(struct e2b_backend *b, const struct e2b_sandbox_filter *f0, long long limit,
                    json_t **ret, struct e2b_error **err)
{
    struct e2b_sandbox_filter f = *f0;
    json_t *all = json_array();
    _cleanup_free_ char *token = NULL;
    for (;;) {
        json_t *page = NULL;
        char *next = NULL;
        f.next_token = token;
        f.limit = limit > 0 && limit - (long long)json_array_size(all) < 100
                      ? (int)(limit - (long long)json_array_size(all)) : 100;
        if (b->ops->sandboxes.list(b, &f, &page, &next, err) < 0) {
            json_decref(all);
            return -1;
        }
        json_array_extend(all, page);
        json_decref(page);
        free(token);
        token = next;
        if (!token || (limit > 0 && (long long)json_array_size(all) >= limit))
            break;
    }
    *ret = all;
    return 0;
}

int cmd_sandbox_list(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *meta = NULL, *list = NULL;
    const char *state = e2b_args_str(args, "state");
    if (state && !STREQ(state, "running") && !STREQ(state, "paused") &&
        !STREQ(state, "running,paused") && !STREQ(state, "paused,running"))
        return e2b_usage_error("sandbox list", "unknown state '%s' (running, paused)", state);
    if (e2b_cli_parse_kv(e2b_args_list(args, "metadata", NULL), "--metadata", &meta))
        return 2;
    long long limit = e2b_args_int(args, "limit", 1000);
    if (limit < 0)
        return e2b_usage_error("sandbox list", "--limit cannot be negative");
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    struct e2b_sandbox_filter f = {.states = state, .metadata = json_object_size(meta) ? meta : NULL,
                                   .template = e2b_args_str(args, "template")};
    if (list_all(b, &f, limit, &list, &err) < 0)
        return e2b_fail(err);
    struct e2b_table *t = e2b_table_new(sandbox_cols);
    json_array_extend(e2b_table_rows(t), list);
    e2b_table_print(t, stdout, ctx->json);
    e2b_table_free(t);
    return 0;
}

#define SANDBOX_ID_ONLY_OPTS(id)                                                                   \
    const struct e2b_opt opts_##id[] = {                                                           \
        E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "sandbox ID", E2B_COMPLETE_SANDBOX),           \
        E2B_OPT_END,                                                                               \
    }

SANDBOX_ID_ONLY_OPTS(sandbox_info);
int cmd_sandbox_info(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *sbx = NULL;
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    if (b->ops->sandboxes.get(b, e2b_args_str(args, "sandbox"), &sbx, &err) < 0)
        return e2b_fail(err);
    e2b_object_print(sbx, detail_cols, stdout, ctx->json);
    return 0;
}

const struct e2b_opt opts_sandbox_kill[] = {
    E2B_OPT_FLAG('a', "all", "kill every sandbox (with --state/--metadata: every matching one)"),
    E2B_OPT_CHOICE('s', "state", "STATES", "with --all: running, paused or running,paused",
                   "running,paused"),
    E2B_OPT_LIST('m', "metadata", "KEY=VALUE", "with --all: only sandboxes with this metadata"),
    E2B_OPT_ARGS_C("sandbox", 0, "sandbox IDs", E2B_COMPLETE_SANDBOX),
    E2B_OPT_END,
};

int cmd_sandbox_kill(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *meta = NULL, *list = NULL;
    size_t n;
    const char *const *ids = e2b_args_list(args, "sandbox", &n);
    bool all = e2b_args_flag(args, "all");
    if (all == (n > 0))
        return e2b_usage_error("sandbox kill", "give sandbox IDs or --all, not %s",
                               all ? "both" : "neither");
    if (!all && (e2b_args_has(args, "state") || e2b_args_has(args, "metadata")))
        return e2b_usage_error("sandbox kill", "--state and --metadata need --all");
    if (e2b_cli_parse_kv(e2b_args_list(args, "metadata", NULL), "--metadata", &meta))
        return 2;
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    list = json_array();
    if (all) {
        const char *state = e2b_args_str(args, "state");
        struct e2b_sandbox_filter f = {.states = state ? state : "running,paused",
                                       .metadata = json_object_size(meta) ? meta : NULL};
        json_decref(list);
        if (list_all(b, &f, 0, &list, &err) < 0)
            return e2b_fail(err);
    } else {
        for (size_t i = 0; i < n; i++) {
            json_t *o = json_object();
            json_object_set_new(o, "sandboxID", json_string(ids[i]));
            json_array_append_new(list, o);
        }
    }
    int rc = 0;
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s) {
        const char *id = e2b_json_str(s, "sandboxID");
        if (b->ops->sandboxes.kill(b, id, &err) < 0) {
            rc = e2b_fail(err);
            e2b_error_free(err);
            err = NULL;
        } else if (!ctx->quiet) {
            fprintf(stderr, "Killed sandbox %s\n", id);
        }
    }
    if (all && json_array_size(list) == 0 && !ctx->quiet)
        fprintf(stderr, "No sandboxes to kill\n");
    return rc;
}

const struct e2b_opt opts_sandbox_set_timeout[] = {
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "sandbox ID", E2B_COMPLETE_SANDBOX),
    E2B_OPT_ARG("seconds", E2B_OPTF_REQUIRED, "seconds from now until the sandbox is killed"),
    E2B_OPT_END,
};

int cmd_sandbox_set_timeout(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    char *end = NULL;
    long secs = strtol(e2b_args_str(args, "seconds"), &end, 10);
    if (*end || secs <= 0 || secs > 24 * 3600)
        return e2b_usage_error("sandbox set-timeout", "seconds must be a number from 1 to 86400");
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    if (b->ops->sandboxes.set_timeout(b, e2b_args_str(args, "sandbox"), (int)secs, &err) < 0)
        return e2b_fail(err);
    return 0;
}

const struct e2b_opt opts_sandbox_pause[] = {
    E2B_OPT_FLAG(0, "to-disk", "save it to disk and free its memory: its processes end, and resume restores them"),
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "sandbox ID", E2B_COMPLETE_SANDBOX),
    E2B_OPT_END,
};

int cmd_sandbox_pause(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    bool to_disk = e2b_args_flag(args, "to-disk");
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    if (b->ops->sandboxes.pause(b, e2b_args_str(args, "sandbox"), to_disk, &err) < 0)
        return e2b_fail(err);
    if (!ctx->quiet)
        fprintf(stderr, "Paused sandbox %s%s\n", e2b_args_str(args, "sandbox"), to_disk ? " to disk" : "");
    return 0;
}

const struct e2b_opt opts_sandbox_resume[] = {
    E2B_OPT_INT(0, "timeout", "SECONDS", "time left after resuming (default 300)"),
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "sandbox ID", E2B_COMPLETE_SANDBOX),
    E2B_OPT_END,
};

int cmd_sandbox_resume(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *sbx = NULL;
    long long timeout = e2b_args_int(args, "timeout", 300);
    if (timeout <= 0 || timeout > 24 * 3600)
        return e2b_usage_error("sandbox resume", "--timeout must be between 1 and 86400 seconds");
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    bool resumed = false;
    if (b->ops->sandboxes.connect(b, e2b_args_str(args, "sandbox"), (int)timeout, &sbx, &resumed,
                                  &err) < 0)
        return e2b_fail(err);
    if (ctx->json)
        e2b_object_print(sbx, detail_cols, stdout, true);
    else if (!ctx->quiet)
        fprintf(stderr, "%s sandbox %s\n", resumed ? "Resumed" : "Already running:",
                e2b_args_str(args, "sandbox"));
    return 0;
}

const struct e2b_opt opts_sandbox_metrics[] = {
    E2B_OPT_FLAG('f', "follow", "keep printing new figures every 5 seconds"),
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "sandbox ID", E2B_COMPLETE_SANDBOX),
    E2B_OPT_END,
};

static volatile sig_atomic_t interrupted;
static void on_interrupt(int sig) { interrupted = sig; }

int cmd_sandbox_metrics(struct e2b_ctx *ctx, struct e2b_args *args)
{
    static const struct e2b_column cols[] = {
        {"timestamp", "TIMESTAMP"}, {"cpuCount", "VCPUS"}, {"cpuUsedPct", "CPU %"},
        {"memUsed", "MEM USED"},    {"memTotal", "MEM TOTAL"}, {"diskUsed", "DISK USED"},
        {"diskTotal", "DISK TOTAL"}, {NULL, NULL},
    };
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    bool follow = e2b_args_flag(args, "follow");
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    do {
        json_t *list = NULL;
        if (b->ops->sandboxes.metrics(b, e2b_args_str(args, "sandbox"), &list, &err) < 0)
            return e2b_fail(err);
        struct e2b_table *t = e2b_table_new(cols);
        json_array_extend(e2b_table_rows(t), list);
        json_decref(list);
        e2b_table_print(t, stdout, ctx->json);
        e2b_table_free(t);
        if (e2b_stdout_check())
            return 1;
        for (int i = 0; follow && i < 50 && !interrupted; i++)
            usleep(100000);
    } while (follow && !interrupted);
    return 0;
}

const struct e2b_opt opts_sandbox_logs[] = {
    E2B_OPT_CHOICE(0, "level", "LEVEL", "lowest level shown: DEBUG, INFO, WARN, ERROR (default INFO)",
                   "DEBUG,INFO,WARN,ERROR"),
    E2B_OPT_FLAG('f', "follow", "keep printing new entries"),
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "sandbox ID", E2B_COMPLETE_SANDBOX),
    E2B_OPT_END,
};

static int level_rank(const char *l)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; l && i < 4; i++)
        if (strcasecmp(l, names[i]) == 0)
            return i;
    return 1;
}

int cmd_sandbox_logs(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    int min = level_rank(e2b_args_str(args, "level"));
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    bool follow = e2b_args_flag(args, "follow");
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    /* Following: the last entry seen, found again in the next read (the log
     * rotates, so a count would not do); not found means it rotated away. */
    _cleanup_free_ char *last = NULL;
    bool any = false;
    do {
        json_t *list = NULL;
        if (b->ops->sandboxes.logs(b, e2b_args_str(args, "sandbox"), &list, &err) < 0) {
            /* A followed sandbox that ends is the end of its log, not an error. */
            if (follow && any && err->code == E2B_ERR_NOT_FOUND)
                return 0;
            return e2b_fail(err);
        }
        size_t from = 0;
        for (size_t j = json_array_size(list); last && j > 0; j--) {
            _cleanup_free_ char *s = e2b_json_dump(json_array_get(list, j - 1), 0);
            if (STREQ(s, last)) {
                from = j;
                break;
            }
        }
        for (size_t i = from; i < json_array_size(list); i++) {
            json_t *e = json_array_get(list, i);
            if (level_rank(e2b_json_str(e, "level")) < min)
                continue;
            if (ctx->json) {
                _cleanup_free_ char *s = e2b_json_dump(e, 0);
                printf("%s\n", s);
            } else {
                printf("%s %-5s %s\n", e2b_json_str(e, "timestamp") ? e2b_json_str(e, "timestamp") : "",
                       e2b_json_str(e, "level") ? e2b_json_str(e, "level") : "",
                       e2b_json_str(e, "message") ? e2b_json_str(e, "message") : "");
            }
        }
        if (json_array_size(list)) {
            free(last);
            last = e2b_json_dump(json_array_get(list, json_array_size(list) - 1), 0);
            any = true;
        }
        json_decref(list);
        if (e2b_stdout_check())
            return 1;
        for (int i = 0; follow && i < 10 && !interrupted; i++)
            usleep(100000);
    } while (follow && !interrupted);
    return 0;
}

const struct e2b_opt opts_sandbox_network[] = {
    E2B_OPT_LIST(0, "allow-out", "DEST", "allow outbound traffic to an IP, CIDR, domain or *.domain, "
                                         "optionally :PORT[-PORT] (repeatable)"),
    E2B_OPT_LIST(0, "deny-out", "DEST", "deny outbound traffic to an IP or CIDR, or ALL_TRAFFIC (repeatable)"),
    E2B_OPT_FLAG(0, "no-internet", "deny everything not allowed (as --deny-out ALL_TRAFFIC)"),
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "sandbox ID", E2B_COMPLETE_SANDBOX),
    E2B_OPT_END,
};

int cmd_sandbox_network(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *net = network_rules(args);
    if (!net) /* no rule: every rule cleared (E2B: what is left out is cleared) */
        net = json_object();
    json_object_set_new(net, "allow_internet_access", json_boolean(!e2b_args_flag(args, "no-internet")));
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    const char *id = e2b_args_str(args, "sandbox");
    if (b->ops->sandboxes.update_network(b, id, net, &err) < 0)
        return e2b_fail(err);
    if (!ctx->quiet)
        fprintf(stderr, "Updated the network rules of sandbox %s\n", id);
    return 0;
}
