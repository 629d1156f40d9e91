/* sandbox-exec.c - verbs that run processes in a sandbox through its envd:
 * exec and connect (and the terminal `create` opens). */
#include "cmd.h"
#include "process-client.h"
#include "sandbox-cli.h"
#include "strbuf.h"
#include "usage.h"

const struct e2b_opt opts_sandbox_exec[] = {
    E2B_OPT_FLAG('b', "background", "start the command, print its PID and return"),
    E2B_OPT_FLAG('i', "stdin", "with --background: keep the command's stdin open for `process attach`"),
    E2B_OPT_STRING('c', "cwd", "DIR", "working directory"),
    E2B_OPT_STRING('u', "user", "USER", "user to run as (default: the sandbox's)"),
    E2B_OPT_LIST('e', "env", "KEY=VALUE", "environment variable (repeatable)"),
    E2B_OPT_INT(0, "timeout", "SECONDS", "kill the command after this long (default: no limit)"),
    E2B_OPT_STRING(0, "envd", "URL", "talk to this envd (http://HOST:PORT or unix:PATH) instead of a sandbox's"),
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "sandbox ID ('-' with --envd)", E2B_COMPLETE_SANDBOX),
    E2B_OPT_ARGS("command", E2B_OPTF_REQUIRED | E2B_OPTF_STOP,
                 "command and arguments; one argument is run by the shell"),
    E2B_OPT_END,
};

int cmd_sandbox_exec(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *env = NULL;
    size_t n;
    const char *const *cmd = e2b_args_list(args, "command", &n);
    int usage = e2b_cli_parse_kv(e2b_args_list(args, "env", NULL), "--env", &env);
    if (usage)
        return usage;
    long long timeout = e2b_args_int(args, "timeout", 0);
    if (timeout < 0)
        return e2b_usage_error("sandbox exec", "--timeout cannot be negative");
    if (e2b_args_flag(args, "stdin") && !e2b_args_flag(args, "background"))
        return e2b_usage_error("sandbox exec", "--stdin goes with --background (a foreground command "
                                               "gets stdin whenever it is not a terminal)");
    struct e2b_envd_endpoint ep;
    if (e2b_cli_envd_endpoint(ctx, args, &b, &ep) < 0)
        return 125;
    /* One argument is a shell command line (as E2B's CLI runs it); several are
     * an argv, passed through the shell untouched so PATH lookup still works. */
    const char **argv = xcalloc(n + 5, sizeof(*argv));
    size_t k = 0;
    argv[k++] = "/bin/sh";
    argv[k++] = "-c";
    if (n == 1) {
        argv[k++] = cmd[0];
    } else {
        argv[k++] = "exec \"$0\" \"$@\"";
        for (size_t i = 0; i < n; i++)
            argv[k++] = cmd[i];
    }
    struct e2b_run_opts o = {.argv = argv, .envs = env, .cwd = e2b_args_str(args, "cwd"),
                             .user = e2b_args_str(args, "user"), .timeout_ms = timeout * 1000,
                             .send_stdin = e2b_args_flag(args, "background") ? e2b_args_flag(args, "stdin")
                                                                             : !isatty(STDIN_FILENO),
                             .out_fd = STDOUT_FILENO, .err_fd = STDERR_FILENO};
    int rc;
    if (e2b_args_flag(args, "background")) {
        unsigned pid = 0;
        rc = e2b_process_start_background(&ep, &o, &pid, &err) < 0 ? 125 : 0;
        if (rc == 0)
            printf("%u\n", pid);
    } else {
        int code = 0;
        rc = e2b_process_run(&ep, &o, &code, &err) < 0 ? 125 : code;
    }
    free(argv);
    e2b_envd_endpoint_release(&ep);
    if (err) {
        e2b_fail(err);
        return err->code == E2B_ERR_TIMEOUT ? 124 : 125; /* 124: as timeout(1) */
    }
    return rc;
}

const struct e2b_opt opts_sandbox_connect[] = {
    E2B_OPT_STRING('u', "user", "USER", "user for the terminal (default: the sandbox's)"),
    E2B_OPT_STRING('c', "cwd", "DIR", "working directory"),
    E2B_OPT_LIST('e', "env", "KEY=VALUE", "environment variable (repeatable)"),
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "sandbox ID", E2B_COMPLETE_SANDBOX),
    E2B_OPT_END,
};

int cmd_sandbox_connect(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_json_ json_t *sbx = NULL;
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    /* like E2B's Sandbox.connect: a paused sandbox resumes, a running one
     * gets at least the default 300 s more */
    bool resumed = false;
    if (b->ops->sandboxes.connect(b, e2b_args_str(args, "sandbox"), 300, &sbx, &resumed, &err) < 0)
        return e2b_fail(err);
    if (resumed && !ctx->quiet)
        fprintf(stderr, "Resumed sandbox %s\n", e2b_args_str(args, "sandbox"));
    return e2b_cli_terminal(ctx, b, e2b_args_str(args, "sandbox"), e2b_args_str(args, "user"),
                            e2b_args_str(args, "cwd"), e2b_args_list(args, "env", NULL));
}
