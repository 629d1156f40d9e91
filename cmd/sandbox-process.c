/* sandbox-process.c - `e2b sandbox process list|kill|attach`: processes envd runs. */
#include "cmd.h"
#include "output.h"
#include "process-client.h"
#include "sandbox-cli.h"
#include "sandbox-client.h"
#include "strbuf.h"
#include "usage.h"

#include <signal.h>

#define PROCESS_OPTS_COMMON                                                                        \
    E2B_OPT_STRING('u', "user", "USER", "act as this user (default: the sandbox's)"),             \
    E2B_OPT_STRING(0, "envd", "URL", "talk to this envd (http://HOST:PORT or unix:PATH) instead"), \
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "sandbox ID ('-' with --envd)", E2B_COMPLETE_SANDBOX)

const struct e2b_opt opts_sandbox_process_list[] = {PROCESS_OPTS_COMMON, E2B_OPT_END};

int cmd_sandbox_process_list(struct e2b_ctx *ctx, struct e2b_args *args)
{
    static const struct e2b_column cols[] = {{"pid", "PID"}, {"tag", "TAG"}, {"cmd", "COMMAND"},
                                             {NULL, NULL}};
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    struct e2b_envd_endpoint ep;
    if (e2b_cli_envd_endpoint(ctx, args, &b, &ep) < 0)
        return 1;
    json_t *reply = NULL, *req = json_object();
    struct e2b_envd_client c = {.ep = &ep, .user = e2b_args_str(args, "user")};
    int r = e2b_envd_unary(&c, "process.Process/List", req, &reply, &err);
    json_decref(req);
    e2b_envd_endpoint_release(&ep);
    if (r < 0)
        return e2b_fail(err);
    struct e2b_table *t = e2b_table_new(cols);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(reply, "processes"), i, p) {
        json_t *row = e2b_table_add_row(t);
        json_t *cfg = json_object_get(p, "config");
        json_object_set(row, "pid", json_object_get(p, "pid"));
        json_object_set(row, "tag", json_object_get(p, "tag") ? json_object_get(p, "tag") : json_null());
        struct strbuf line = STRBUF_INIT;
        strbuf_addstr(&line, e2b_json_str(cfg, "cmd") ? e2b_json_str(cfg, "cmd") : "");
        size_t k;
        json_t *a;
        json_array_foreach(json_object_get(cfg, "args"), k, a)
            strbuf_addf(&line, " %s", json_string_value(a) ? json_string_value(a) : "");
        json_object_set_new(row, "cmd", json_string(line.buf));
        strbuf_release(&line);
        json_object_set(row, "config", cfg);
    }
    json_decref(reply);
    e2b_table_print(t, stdout, ctx->json);
    e2b_table_free(t);
    return 0;
}

/* kill and attach name one process: a PID argument or --tag. */
#define PROCESS_SELECTOR_OPTS                                                                \
    E2B_OPT_STRING(0, "tag", "TAG", "the process started with this tag (instead of a PID)"), \
        PROCESS_OPTS_COMMON, E2B_OPT_ARG("pid", 0, "process ID in the sandbox")

/* The process a kill or attach names (a PID or --tag, exactly one) and the
 * envd of its sandbox. Returns 0, or the status to exit with: a usage
 * error's (printed), or `fail` when there is no endpoint. */
static int open_process(struct e2b_ctx *ctx, struct e2b_args *args, const char *cmd, int fail,
                        struct e2b_backend **b, struct e2b_envd_endpoint *ep,
                        struct e2b_process_sel *sel)
{
    const char *pid = e2b_args_str(args, "pid"), *tag = e2b_args_str(args, "tag");
    if (!pid == !tag)
        return e2b_usage_error(cmd, "give a PID or --tag, not %s", pid ? "both" : "neither");
    char *end = NULL;
    long n = pid ? strtol(pid, &end, 10) : 0;
    if (pid && (*end || n <= 0))
        return e2b_usage_error(cmd, "'%s' is not a process ID", pid);
    *sel = (struct e2b_process_sel){ .pid = (unsigned)n, .tag = tag };
    return e2b_cli_envd_endpoint(ctx, args, b, ep) < 0 ? fail : 0;
}

const struct e2b_opt opts_sandbox_process_kill[] = {
    E2B_OPT_FLAG(0, "term", "send SIGTERM instead of SIGKILL"),
    PROCESS_SELECTOR_OPTS,
    E2B_OPT_END,
};

int cmd_sandbox_process_kill(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    struct e2b_envd_endpoint ep;
    struct e2b_process_sel sel = {0};
    int status = open_process(ctx, args, "sandbox process kill", 1, &b, &ep, &sel);
    if (status)
        return status;
    struct e2b_envd_client c = { .ep = &ep, .user = e2b_args_str(args, "user") };
    int r = e2b_envd_process_signal(&c, sel, e2b_args_flag(args, "term") ? SIGTERM : SIGKILL, &err);
    e2b_envd_endpoint_release(&ep);
    return r < 0 ? e2b_fail(err) : 0;
}

const struct e2b_opt opts_sandbox_process_attach[] = { PROCESS_SELECTOR_OPTS, E2B_OPT_END };

int cmd_sandbox_process_attach(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    struct e2b_envd_endpoint ep;
    struct e2b_process_sel sel = {0};
    int status = open_process(ctx, args, "sandbox process attach", 125, &b, &ep, &sel);
    if (status)
        return status;
    int code = 0;
    int r = e2b_process_attach(&ep, e2b_args_str(args, "user"), sel, &code, &err);
    e2b_envd_endpoint_release(&ep);
    if (r < 0) {
        e2b_fail(err);
        return 125;
    }
    return code;
}
