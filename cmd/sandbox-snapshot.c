/* sandbox-snapshot.c - `sandbox snapshot create|list|rm` and `sandbox fork`:
 * snapshots of running sandboxes (memory and files) over a backend, local
 * or remote. A snapshot's ID starts new sandboxes: `sandbox create ID`. */
#include "backend.h"
#include "cmd.h"
#include "output.h"
#include "sandbox-cli.h"
#include "usage.h"

#define FORK_MAX 100 /* E2B's limit on forks in one request */

static const struct e2b_column snapshot_cols[] = {
    { "snapshotID", "SNAPSHOT ID" }, { "names", "NAMES" },          { "sandboxID", "SANDBOX ID" },
    { "runtime", "RUNTIME" },        { "createdAt", "CREATED AT" }, { NULL, NULL },
};

const struct e2b_opt opts_sandbox_snapshot_create[] = {
    E2B_OPT_STRING('n', "name", "NAME[:TAG]", "a name for the snapshot (its ID is then NAME:TAG)"),
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "ID of the running sandbox", E2B_COMPLETE_SANDBOX),
    E2B_OPT_END,
};

int cmd_sandbox_snapshot_create(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *snap = NULL;
    const char *name = e2b_args_str(args, "name");
    if (name && !*name)
        return e2b_usage_error("sandbox snapshot create", "--name cannot be empty");
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    if (b->ops->snapshots.create(b, e2b_args_str(args, "sandbox"), name, &snap, &err) < 0)
        return e2b_fail(err);
    if (ctx->json)
        e2b_object_print(snap, snapshot_cols, stdout, true);
    else
        printf("%s\n", e2b_json_str(snap, "snapshotID") ?: "");
    return 0;
}

const struct e2b_opt opts_sandbox_snapshot_list[] = {
    E2B_OPT_STRING_C('s', "sandbox", "ID", "only snapshots of this sandbox", E2B_COMPLETE_SANDBOX),
    E2B_OPT_STRING(0, "name", "NAME[:TAG]", "only the snapshot with this ID or name"),
    E2B_OPT_INT(0, "limit", "N", "list at most N snapshots (default: all)"),
    E2B_OPT_END,
};

int cmd_sandbox_snapshot_list(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    long long limit = e2b_args_int(args, "limit", 0);
    if (limit < 0)
        return e2b_usage_error("sandbox snapshot list", "--limit cannot be negative");
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    struct e2b_snapshot_filter f = { .sandbox_id = e2b_args_str(args, "sandbox"),
                                     .name = e2b_args_str(args, "name") };
    _cleanup_json_ json_t *all = json_array();
    _cleanup_free_ char *token = NULL;
    for (;;) { /* every page, up to the limit */
        json_t *page = NULL;
        char *next = NULL;
        long long left = limit - (long long)json_array_size(all);
        f.next_token = token;
        f.limit = limit > 0 && left < 100 ? (int)left : 100;
        if (b->ops->snapshots.list(b, &f, &page, &next, &err) < 0)
            return e2b_fail(err);
        json_array_extend(all, page);
        json_decref(page);
        free(token);
        token = next;
        if (!token || (limit > 0 && (long long)json_array_size(all) >= limit))
            break;
    }
    struct e2b_table *t = e2b_table_new(snapshot_cols);
    json_array_extend(e2b_table_rows(t), all);
    e2b_table_print(t, stdout, ctx->json);
    e2b_table_free(t);
    return 0;
}

const struct e2b_opt opts_sandbox_snapshot_rm[] = {
    E2B_OPT_ARGS("snapshot", E2B_OPTF_REQUIRED, "IDs or names of the snapshots to delete"),
    E2B_OPT_END,
};

int cmd_sandbox_snapshot_rm(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_backend_ struct e2b_backend *b = NULL;
    size_t n;
    const char *const *ids = e2b_args_list(args, "snapshot", &n);
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        _cleanup_error_ struct e2b_error *err = NULL;
        if (b->ops->snapshots.delete(b, ids[i], &err) < 0)
            rc = e2b_fail(err);
        else if (!ctx->quiet)
            fprintf(stderr, "Deleted snapshot %s\n", ids[i]);
    }
    return rc;
}

const struct e2b_opt opts_sandbox_fork[] = {
    E2B_OPT_INT('n', "count", "N", "how many copies (1..100, default 1)"),
    E2B_OPT_INT(0, "timeout", "SECONDS", "kill each copy after this long (default 300)"),
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "ID of the running sandbox", E2B_COMPLETE_SANDBOX),
    E2B_OPT_END,
};

int cmd_sandbox_fork(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *res = NULL;
    long long count = e2b_args_int(args, "count", 1), timeout = e2b_args_int(args, "timeout", 300);
    if (count < 1 || count > FORK_MAX)
        return e2b_usage_error("sandbox fork", "--count must be between 1 and %d (it is %lld)",
                               FORK_MAX, count);
    if (timeout <= 0 || timeout > 24 * 3600)
        return e2b_usage_error("sandbox fork", "--timeout must be between 1 and 86400 seconds");
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    if (b->ops->snapshots.fork(b, e2b_args_str(args, "sandbox"), (int)count, (int)timeout, &res,
                               &err) < 0)
        return e2b_fail(err);
    if (ctx->json) { /* E2B's SandboxForkResult list as it came */
        static const struct e2b_column none[] = { { NULL, NULL } };
        struct e2b_table *t = e2b_table_new(none);
        json_array_extend(e2b_table_rows(t), res);
        e2b_table_print(t, stdout, true);
        e2b_table_free(t);
    }
    /* a line each: the new sandbox's ID, or why that copy did not start */
    int rc = 0;
    size_t i;
    json_t *r;
    json_array_foreach(res, i, r) {
        const json_t *s = json_object_get(r, "sandbox"), *e = json_object_get(r, "error");
        if (s && !ctx->json) {
            printf("%s\n", e2b_json_str(s, "sandboxID") ?: "");
        } else if (!s) {
            fprintf(stderr, "e2b: fork %zu of %lld did not start: %s\n", i + 1, count,
                    e2b_json_str(e, "message") ?: "unknown error");
            rc = 1;
        }
    }
    return rc;
}
