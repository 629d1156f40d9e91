/* sandbox-cli.c - see sandbox-cli.h */
#include "sandbox-cli.h"
#include "process-client.h"
#include "template-store.h"
#include "volume-store.h"
#include "usage.h"

int e2b_cli_open_backend(struct e2b_ctx *ctx, struct e2b_backend **ret)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    if (e2b_backend_open(ctx->api_url, ctx->api_key, ret, &err) < 0)
        return e2b_fail(err);
    return 0;
}

int e2b_cli_parse_kv(const char *const *list, const char *what, json_t **ret)
{
    json_t *obj = json_object();
    for (; *list; list++) {
        const char *eq = strchr(*list, '=');
        if (!eq || eq == *list) {
            json_decref(obj);
            return e2b_usage_error(NULL, "%s '%s' is not KEY=VALUE", what, *list);
        }
        _cleanup_free_ char *k = xstrndup(*list, (size_t)(eq - *list));
        json_object_set_new(obj, k, json_string(eq + 1));
    }
    *ret = obj;
    return 0;
}

int e2b_cli_envd_endpoint(struct e2b_ctx *ctx, struct e2b_args *args, struct e2b_backend **b,
                          struct e2b_envd_endpoint *ep)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    const char *direct = e2b_args_str(args, "envd");
    memset(ep, 0, sizeof(*ep));
    if (direct) {
        ep->base = xstrdup(direct);
        return 0;
    }
    const char *id = e2b_args_str(args, "sandbox");
    if (STREQ(id, "-")) { /* the placeholder that goes with --envd */
        e2b_error_set(&err, E2B_ERR_USAGE, "no sandbox given (give a sandbox ID, or --envd with '-')");
        e2b_fail(err);
        return -1;
    }
    if (e2b_cli_open_backend(ctx, b))
        return -1;
    if ((*b)->ops->edge.envd_endpoint(*b, id, ep, &err) < 0) {
        e2b_fail(err);
        return -1;
    }
    return 0;
}

int e2b_cli_terminal(struct e2b_ctx *ctx, struct e2b_backend *b, const char *sandbox_id,
                     const char *user, const char *cwd, const char *const *envs)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_json_ json_t *env = NULL;
    if (envs && e2b_cli_parse_kv(envs, "--env", &env))
        return 2;
    struct e2b_envd_endpoint ep;
    if (b->ops->edge.envd_endpoint(b, sandbox_id, &ep, &err) < 0)
        return e2b_fail(err);
    if (!ctx->quiet)
        fprintf(stderr, "Connected to sandbox %s (exit the shell to leave)\r\n", sandbox_id);
    int code = 0;
    struct e2b_terminal_opts o = {.envs = env, .cwd = cwd, .user = user};
    int r = e2b_process_terminal(&ep, &o, &code, &err);
    e2b_envd_endpoint_release(&ep);
    if (r < 0)
        return e2b_fail(err);
    return code;
}

/* Sandbox IDs for shell completion (fast: local state only). */
void e2b_cli_complete_sandboxes(const char *prefix)
{
    struct e2b_backend *b = NULL;
    json_t *list = NULL;
    char *next = NULL;
    struct e2b_sandbox_filter f = {.states = "running,paused", .limit = 100};
    if (e2b_backend_local_new(&b, NULL) < 0)
        return;
    if (b->ops->sandboxes.list(b, &f, &list, &next, NULL) == 0) {
        size_t i;
        json_t *s;
        json_array_foreach(list, i, s) {
            const char *id = e2b_json_str(s, "sandboxID");
            if (id && e2b_str_has_prefix(id, prefix))
                printf("%s\n", id);
        }
        json_decref(list);
    }
    free(next);
    e2b_backend_free(b);
}

/* Template names for shell completion (local store only: fast, no network). */
void e2b_cli_complete_templates(const char *prefix)
{
    struct e2b_store store;
    json_t *list = NULL;
    if (e2b_store_open(&store, NULL) < 0)
        return;
    if (e2b_store_list(&store, &list, NULL) == 0) {
        size_t i;
        json_t *t;
        json_array_foreach(list, i, t) {
            const char *id = e2b_json_str(t, "templateID");
            json_t *alias = json_array_get(json_object_get(t, "aliases"), 0);
            const char *name = json_is_string(alias) ? json_string_value(alias) : id;
            if (name && e2b_str_has_prefix(name, prefix))
                printf("%s\n", name);
        }
        json_decref(list);
    }
    e2b_store_close(&store);
}

void e2b_cli_complete_volumes(const char *prefix)
{
    json_t *list = NULL;
    if (e2b_volume_list(&list, NULL) < 0)
        return;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        const char *name = e2b_json_str(v, "name");
        if (name && e2b_str_has_prefix(name, prefix))
            printf("%s\n", name);
    }
    json_decref(list);
}
