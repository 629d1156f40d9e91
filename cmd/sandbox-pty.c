/* sandbox-pty.c - `e2b sandbox pty`: an interactive terminal in a sandbox
 * (process-client.h's e2b_process_terminal, which `sandbox create` and
 * `sandbox connect` open too). */
#include "cmd.h"
#include "process-client.h"
#include "sandbox-cli.h"
#include "usage.h"

const struct e2b_opt opts_sandbox_pty[] = {
    E2B_OPT_STRING('u', "user", "USER", "user for the shell (default: the sandbox's)"),
    E2B_OPT_STRING('c', "cwd", "DIR", "working directory"),
    E2B_OPT_LIST('e', "env", "KEY=VALUE", "environment variable (repeatable)"),
    E2B_OPT_STRING(0, "envd", "URL", "talk to this envd (http://HOST:PORT or unix:PATH) instead of a sandbox's"),
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "sandbox ID ('-' with --envd)", E2B_COMPLETE_SANDBOX),
    E2B_OPT_ARGS("command", E2B_OPTF_STOP,
                 "program and arguments to run in the terminal (default: a login shell)"),
    E2B_OPT_END,
};

int cmd_sandbox_pty(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *env = NULL;
    int usage = e2b_cli_parse_kv(e2b_args_list(args, "env", NULL), "--env", &env);
    if (usage)
        return usage;
    struct e2b_envd_endpoint ep;
    if (e2b_cli_envd_endpoint(ctx, args, &b, &ep) < 0)
        return 125;
    size_t n;
    const char *const *cmd = e2b_args_list(args, "command", &n);
    struct e2b_terminal_opts o = {.argv = n ? cmd : NULL, .envs = env, .cwd = e2b_args_str(args, "cwd"),
                                  .user = e2b_args_str(args, "user")};
    int code = 0;
    int r = e2b_process_terminal(&ep, &o, &code, &err);
    e2b_envd_endpoint_release(&ep);
    if (r < 0) {
        e2b_fail(err);
        return 125;
    }
    return code;
}
