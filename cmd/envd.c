/* envd.c - `e2b envd`: the guest agent run on the host (for tests, or to
 * serve a directory tree to E2B's SDKs). The same code is the static
 * `envd` binary inside sandboxes; this only maps the table's options. */
#include "cmd.h"
#include "envd-server.h"
#include "usage.h"

const struct e2b_opt opts_envd[] = {
    E2B_OPT_INT(0, "port", "PORT", "TCP port on 0.0.0.0 (default 49983)"),
    E2B_OPT_LIST(0, "listen", "ADDR:PORT", "listen on this address instead (repeatable)"),
    E2B_OPT_STRING_C(0, "unix", "PATH", "also listen on a unix socket", E2B_COMPLETE_FILE),
    E2B_OPT_FLAG(0, "no-tcp", "only the unix socket"),
    E2B_OPT_STRING(0, "user", "USER", "default user for processes and files (default root)"),
    E2B_OPT_STRING(0, "access-token", "TOKEN", "require X-Access-Token, as /init would set it"),
    E2B_OPT_FLAG(0, "sync-clock", "let /init's timestamp set the system clock"),
    E2B_OPT_INT(0, "watcher-idle-timeout", "SECONDS",
                "remove a polled watcher nobody polled for this long (default 3600)"),
    E2B_OPT_END,
};

int cmd_envd(struct e2b_ctx *ctx, struct e2b_args *args)
{
    const char *argv[64];
    int argc = 0;
    argv[argc++] = "envd";
    const char *port = e2b_args_str(args, "port");
    if (port)
        argv[argc++] = "--port", argv[argc++] = port;
    size_t n;
    const char *const *listen = e2b_args_list(args, "listen", &n);
    if (n > 8)
        return e2b_usage_error("envd", "at most 8 --listen addresses");
    for (size_t i = 0; i < n; i++)
        argv[argc++] = "--listen", argv[argc++] = listen[i];
    static const char *const valued[] = {"--unix", "--user", "--access-token", "--watcher-idle-timeout"};
    for (size_t i = 0; i < ARRAY_SIZE(valued); i++)
        if (e2b_args_str(args, valued[i] + 2)) {
            argv[argc++] = valued[i];
            argv[argc++] = e2b_args_str(args, valued[i] + 2);
        }
    if (e2b_args_flag(args, "no-tcp"))
        argv[argc++] = "--no-tcp";
    if (e2b_args_flag(args, "sync-clock"))
        argv[argc++] = "--sync-clock";
    if (ctx->verbose)
        argv[argc++] = "--verbose";
    argv[argc] = NULL;
    return e2b_envd_main(argc, (char **)argv);
}
