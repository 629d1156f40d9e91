/* sandbox-files-watch.c - `e2b sandbox files watch`: a directory's changes
 * as they happen (envd's WatchDir stream), one line per event. */
#include "cmd.h"
#include "sandbox-client.h"
#include "output.h"
#include "sandbox-cli.h"
#include "usage.h"

struct watch {
    struct e2b_ctx *ctx;
    long long count;  /* stop after this many events; 0: never */
    long long seen;
    bool out_failed;  /* stdout took no more (said already) */
};

static int on_started(void *ud)
{
    struct watch *w = ud;
    if (!w->ctx->quiet)
        fprintf(stderr, "watching (stop with Ctrl-C)\n");
    return 0;
}

static int on_event(json_t *ev, void *ud)
{
    struct watch *w = ud;
    const char *type = e2b_envd_short_type(e2b_json_str(ev, "type"));
    const char *name = e2b_json_str(ev, "name") ? e2b_json_str(ev, "name") : "";
    if (w->ctx->json) {
        json_t *o = json_pack("{s:s, s:s}", "type", type, "name", name);
        json_t *entry = json_object_get(ev, "entry");
        if (entry)
            json_object_set(o, "entry", entry);
        _cleanup_free_ char *s = e2b_json_dump(o, JSON_COMPACT);
        json_decref(o);
        printf("%s\n", s);
    } else {
        printf("%s\t%s\n", type, name);
    }
    if (e2b_stdout_check()) { /* a watch never ends by itself: stop here */
        w->out_failed = true;
        return -1;
    }
    w->seen++;
    return w->count && w->seen >= w->count ? -1 : 0;
}

const struct e2b_opt opts_sandbox_files_watch[] = {
    E2B_OPT_FLAG('r', "recursive", "watch subdirectories too"),
    E2B_OPT_INT('n', "count", "N", "stop after N events"),
    E2B_OPT_INT(0, "timeout", "SECONDS", "stop after this long (default: never)"),
    E2B_OPT_STRING('u', "user", "USER", "act as this user (default: the sandbox's)"),
    E2B_OPT_STRING(0, "envd", "URL", "talk to this envd (http://HOST:PORT or unix:PATH) instead"),
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "sandbox ID ('-' with --envd)", E2B_COMPLETE_SANDBOX),
    E2B_OPT_ARG("path", E2B_OPTF_REQUIRED, "directory to watch"),
    E2B_OPT_END,
};

int cmd_sandbox_files_watch(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    long long count = e2b_args_int(args, "count", 0), timeout = e2b_args_int(args, "timeout", 0);
    if (count < 0 || timeout < 0)
        return e2b_usage_error("sandbox files watch", "--%s cannot be negative",
                               count < 0 ? "count" : "timeout");
    struct e2b_envd_endpoint ep;
    if (e2b_cli_envd_endpoint(ctx, args, &b, &ep) < 0)
        return 1;
    struct e2b_envd_client c = {.ep = &ep, .user = e2b_args_str(args, "user"), .keepalive_s = 50};
    struct watch w = {.ctx = ctx, .count = count};
    int r = e2b_envd_fs_watch(&c, e2b_args_str(args, "path"), e2b_args_flag(args, "recursive"),
                              timeout * 1000, on_started, on_event, &w, &err);
    e2b_envd_endpoint_release(&ep);
    if (w.out_failed)
        return 1;
    if (r < 0 && timeout && err->code == E2B_ERR_TIMEOUT)
        return 0; /* --timeout ran out: the end we asked for */
    return r < 0 ? e2b_fail(err) : 0;
}
