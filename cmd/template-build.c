/* template-build.c - `e2b template build`: e2b.toml + flags over lib/build. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build.h"
#include "cmd.h"
#include "config.h"
#include "e2b-toml.h"
#include "fsutil.h"
#include "gitctx.h"
#include "local-sandbox.h"
#include "platform.h"
#include "registry.h"
#include "template-client.h"
#include "template-steps.h"
#include "template-store.h"
#include "usage.h"
#include "util.h"

const struct e2b_opt opts_template_build[] = {
    E2B_OPT_STRING('p', "path", "DIR", "directory with e2b.toml and the Dockerfile (default .)"),
    E2B_OPT_STRING('d', "dockerfile", "FILE", "Dockerfile (default e2b.Dockerfile, then Dockerfile)"),
    E2B_OPT_STRING('n', "name", "NAME[:TAG]", "template name (lowercase a-z, 0-9, - and _; at most 128), and a tag"),
    E2B_OPT_LIST('t', "tag", "TAG", "tag the new build (repeatable; default: default)"),
    E2B_OPT_STRING('c', "cmd", "COMMAND", "start command run when a sandbox starts"),
    E2B_OPT_STRING(0, "start-cmd", "COMMAND", "the same as --cmd"),
    E2B_OPT_STRING(0, "ready-cmd", "COMMAND", "command that succeeds once the sandbox is ready"),
    E2B_OPT_CHOICE(0, "runtime", "RUNTIME", "what its sandboxes run on: ns, vm or auto (default: the creator's choice)",
                   "ns,vm,auto"),
    E2B_OPT_FLAG(0, "snapshot",
                 "boot the built template once and save it as a VM: creates restore it "
                 "(the default for --runtime vm)"),
    E2B_OPT_FLAG(0, "no-snapshot", "no snapshot, even for --runtime vm: every sandbox boots"),
    E2B_OPT_INT(0, "ready-timeout", "SECONDS", "how long the ready command may take to succeed, hanging or failing (default 60)"),
    E2B_OPT_INT(0, "cpu-count", "N", "vCPUs of sandboxes from this template (at least 1)"),
    E2B_OPT_INT(0, "memory-mb", "MIB", "memory of sandboxes (even number)"),
    E2B_OPT_INT(0, "disk-size", "MIB", "free space in the root file system beyond the content"),
    E2B_OPT_LIST(0, "build-arg", "KEY=VALUE", "set a Dockerfile ARG (repeatable)"),
    E2B_OPT_STRING(0, "target", "STAGE", "build up to this stage"),
    E2B_OPT_STRING(0, "platform", "OS/ARCH", "platform of base images (default linux/amd64)"),
    E2B_OPT_STRING(0, "network", "MODE", "network of RUN steps: none (default) or host"),
    E2B_OPT_FLAG(0, "no-cache", "rebuild every step"),
    E2B_OPT_LIST(0, "insecure-registry", "HOST", "allow plain HTTP for this registry (repeatable)"),
    E2B_OPT_STRING(0, "config", "FILE", "e2b.toml to read and update (default <path>/e2b.toml)"),
    E2B_OPT_FLAG(0, "dry-run", "print the parsed instructions and build nothing"),
    E2B_OPT_ARG("context", 0, "build context: a directory or a git repository URL[#ref[:subdir]]"),
    E2B_OPT_END,
};

static bool status_shown;

static void on_progress(void *data, const char *line)
{
    if (*(bool *)data)
        return;
    fprintf(stderr, "%s%s\n", status_shown ? "\r\033[K" : "", line);
    status_shown = false;
}

static void on_status(void *data, const char *line)
{
    if (*(bool *)data)
        return;
    fprintf(stderr, "\r\033[K%s", line);
    status_shown = true;
}

static void on_output(void *data, const char *buf, size_t len)
{
    if (!*(bool *)data)
        fwrite(buf, 1, len, stderr);
}

/* ---- remote: the build through an E2B API ---- */

struct remote_ui {
    bool quiet, tty;
    int64_t t0;
    char *phase;
    char *last_step; /* of the log entries seen */
};

static void ui_status(struct remote_ui *u)
{
    if (!u->tty || u->quiet)
        return;
    static const char spin[] = "|/-\\";
    int64_t s = (e2b_now_ms() - u->t0) / 1000;
    fprintf(stderr, "\r\033[K%c %s%s%s (%llds)", spin[(e2b_now_ms() / 200) % 4], u->phase ? u->phase : "",
            u->last_step ? ", step " : "", u->last_step ? u->last_step : "", (long long)s);
    status_shown = true;
}

static void ui_phase(void *ud, const char *what)
{
    struct remote_ui *u = ud;
    free(u->phase);
    u->phase = xstrdup(what);
    if (!u->tty && !u->quiet && !STREQ(what, "building") && !STREQ(what, "waiting"))
        fprintf(stderr, "%s\n", what);
    ui_status(u);
}

static void ui_log(void *ud, const json_t *e)
{
    struct remote_ui *u = ud;
    if (e2b_json_str(e, "step")) {
        free(u->last_step);
        u->last_step = xstrdup(e2b_json_str(e, "step"));
    }
    if (u->quiet)
        return;
    const char *lvl = e2b_json_str(e, "level") ?: "info";
    const char *msg = e2b_json_str(e, "message") ?: "";
    fprintf(stderr, "%s%s%s\n", status_shown ? "\r\033[K" : "", STREQ(lvl, "error") ? "error: " : "", msg);
    status_shown = false;
    ui_status(u);
}

/* Refuse what an E2B API cannot be asked for. */
static int remote_unsupported(struct e2b_args *args)
{
    static const char *const local_only[] = {"target", "platform", "network", "insecure-registry",
                                             "disk-size", "ready-timeout"};
    for (size_t i = 0; i < ARRAY_SIZE(local_only); i++)
        if (e2b_args_has(args, local_only[i]))
            return e2b_usage_error("template build", "--%s is for builds on this machine; an E2B API does not take "
                                                     "it (use --api-url \"\" to build here)", local_only[i]);
    return 0;
}

static int build_remote(struct e2b_ctx *ctx, struct e2b_args *args, const struct e2b_endpoint *ep,
                        const char *context, const char *dockerfile, const char *full_name, const char *const *tags,
                        const char *start_cmd, const char *ready_cmd, long cpus, long mem, const char *cfg_path)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    size_t nba = 0;
    const char *const *ba = e2b_args_list(args, "build-arg", &nba);
    _cleanup_json_ json_t *start = NULL;
    char **ignored = NULL;
    if (e2b_steps_from_dockerfile(dockerfile, ba, nba, &start, &ignored, &err) < 0)
        return e2b_fail(err);
    for (char **i = ignored; i && *i && !ctx->quiet; i++)
        fprintf(stderr, "e2b: note: %s is not sent to the API (a build there has no use for it)\n", *i);
    e2b_strv_free(ignored);
    if (start_cmd)
        json_object_set_new(start, "startCmd", json_string(start_cmd));
    if (ready_cmd)
        json_object_set_new(start, "readyCmd", json_string(ready_cmd));
    if (e2b_args_flag(args, "no-cache"))
        json_object_set_new(start, "force", json_true());
    if (e2b_args_flag(args, "dry-run")) {
        char *s = e2b_json_dump(start, JSON_INDENT(2));
        puts(s);
        free(s);
        return 0;
    }
    struct remote_ui ui = {.quiet = ctx->quiet, .tty = isatty(2), .t0 = e2b_now_ms()};
    struct e2b_remote_build_opts o = {
        .api_url = ep->api_url, .api_key = ep->api_key, .name = full_name, .tags = tags,
        .cpu_count = cpus, .memory_mb = mem, .context = context, .start = start,
        .log = ui_log, .phase = ui_phase, .ud = &ui,
    };
    _cleanup_json_ json_t *res = NULL;
    int r = e2b_remote_build(&o, &res, &err);
    if (ui.tty && status_shown && !ctx->quiet)
        fprintf(stderr, "\r\033[K");
    status_shown = false;
    free(ui.phase);
    free(ui.last_step);
    if (r < 0)
        return e2b_fail(err);
    const char *id = e2b_json_str(res, "templateID");
    if (access(cfg_path, F_OK) == 0 || e2b_args_has(args, "config")) {
        struct e2b_error *werr = NULL;
        if (e2b_toml_set(cfg_path, "template_id", id, &werr) < 0) {
            fprintf(stderr, "e2b: warning: %s\n", werr->msg);
            e2b_error_free(werr);
        }
    }
    if (ctx->json) {
        char *s = e2b_json_dump(res, JSON_INDENT(2));
        puts(s);
        free(s);
    } else {
        printf("%s\n", id);
        if (!ctx->quiet)
            fprintf(stderr, "Built template %s (%s), build %s on %s\n", full_name, id, e2b_json_str(res, "buildID"),
                    ep->api_url);
    }
    return 0;
}

int cmd_template_build(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    /* the start and ready commands find the guest binary where a sandbox has
     * it. Cleanup variables go before any `goto out`: a jump past one's
     * initialisation frees whatever the stack held there. */
    _cleanup_free_ char *envd = e2b_local_find_envd();
    _cleanup_json_ json_t *meta = NULL;
    const char *path = e2b_args_str(args, "path") ?: ".";
    _cleanup_free_ char *cfg_path = e2b_args_str(args, "config") ? xstrdup(e2b_args_str(args, "config"))
                                                                  : e2b_path_join(path, "e2b.toml");
    struct e2b_toml toml;
    if (e2b_toml_load(&toml, cfg_path, !e2b_args_has(args, "config"), &err) < 0)
        return e2b_fail(err);

    long mem = e2b_args_int(args, "memory-mb", toml.memory_mb);
    if (mem && (mem % 2 || mem < 128)) {
        e2b_toml_free(&toml);
        return e2b_usage_error("template build", "--memory-mb must be an even number of at least 128");
    }
    long cpus = e2b_args_int(args, "cpu-count", toml.cpu_count);
    if (e2b_args_has(args, "cpu-count") && cpus < 1) {
        e2b_toml_free(&toml);
        return e2b_usage_error("template build", "--cpu-count must be at least 1");
    }
    long disk = e2b_args_int(args, "disk-size", 0), ready_to = e2b_args_int(args, "ready-timeout", 60);
    if (disk < 0 || disk > 1048576) {
        e2b_toml_free(&toml);
        return e2b_usage_error("template build", "--disk-size must be between 0 and 1048576 MiB");
    }
    if (ready_to < 1 || ready_to > 86400) {
        e2b_toml_free(&toml);
        return e2b_usage_error("template build", "--ready-timeout must be between 1 and 86400 seconds");
    }
    const char *net = e2b_args_str(args, "network") ?: "none";
    if (strcmp(net, "none") && strcmp(net, "host")) {
        e2b_toml_free(&toml);
        return e2b_usage_error("template build", "--network must be none or host");
    }
    const char *runtime = e2b_args_str(args, "runtime") ?: toml.runtime;
    if (runtime && strcmp(runtime, "ns") && strcmp(runtime, "vm") && strcmp(runtime, "auto")) {
        e2b_toml_free(&toml);
        return e2b_usage_error("template build", "the runtime must be ns, vm or auto, not '%s'", runtime);
    }
    const char *plat = e2b_args_str(args, "platform");
    if (plat && e2b_platform_check(plat, &err) < 0) {
        e2b_toml_free(&toml);
        return e2b_usage_error("template build", "--platform: %s", err->msg);
    }

    /* context: a directory or a git repository */
    const char *ctx_arg = e2b_args_str(args, "context");
    _cleanup_free_ char *checkout = NULL, *context = NULL;
    if (ctx_arg && e2b_git_context_is(ctx_arg)) {
        struct e2b_git_spec spec;
        const char *tmp = getenv("TMPDIR") ?: "/tmp";
        if (e2b_git_spec_parse(ctx_arg, &spec, &err) < 0 ||
            e2b_git_fetch_context(&spec, tmp, &checkout, &context, &err) < 0) {
            e2b_toml_free(&toml);
            return e2b_fail(err);
        }
        e2b_git_spec_free(&spec);
    } else {
        context = xstrdup(ctx_arg ?: path);
    }

    /* Dockerfile: flag, e2b.toml, e2b.Dockerfile, Dockerfile (in the
     * context for git contexts, in --path otherwise) */
    const char *dbase = checkout || (ctx_arg && !e2b_args_has(args, "path")) ? context : path;
    const char *dflag = e2b_args_str(args, "dockerfile") ?: toml.dockerfile;
    _cleanup_free_ char *dockerfile = NULL;
    if (dflag) {
        dockerfile = dflag[0] == '/' ? xstrdup(dflag) : e2b_path_join(dbase, dflag);
    } else {
        dockerfile = e2b_path_join(dbase, "e2b.Dockerfile");
        if (access(dockerfile, F_OK) < 0) {
            free(dockerfile);
            dockerfile = e2b_path_join(dbase, "Dockerfile");
        }
    }
    const char *full = e2b_args_str(args, "name") ?: toml.template_name ?: toml.template_id;
    int rc = 0;
    struct e2b_endpoint ep = {0};
    const char **insv = NULL, **tagv = NULL;
    _cleanup_free_ char *name = NULL;
    if (e2b_endpoint_resolve(ctx->api_url, ctx->api_key, &ep, &err) < 0) {
        rc = e2b_fail(err);
        goto out;
    }
    if (!full && !e2b_args_flag(args, "dry-run")) {
        rc = e2b_usage_error("template build", "name the template with --name (or template_name in e2b.toml)");
        goto out;
    }
    /* NAME[:TAG], E2B's rule for names */
    size_t ntag = 0;
    const char *const *tags = e2b_args_list(args, "tag", &ntag);
    tagv = xcalloc(ntag + 2, sizeof(char *));
    for (size_t i = 0; i < ntag; i++)
        tagv[i] = tags[i];
    if (full) {
        const char *colon = strchr(full, ':');
        name = colon ? xstrndup(full, (size_t)(colon - full)) : xstrdup(full);
        if (colon)
            tagv[ntag++] = colon + 1;
        if (!e2b_template_name_valid(name)) {
            rc = e2b_usage_error("template build",
                                 "invalid template name '%s': use lowercase letters, digits, - and _ "
                                 "(at most 128)", full);
            goto out;
        }
    }
    for (size_t i = 0; i < ntag; i++)
        if (!e2b_template_tag_valid(tagv[i])) {
            rc = e2b_usage_error("template build",
                                 "invalid tag '%s': use letters, digits, ., - and _ (at most 128)", tagv[i]);
            goto out;
        }
    if (ep.api_url) { /* an API is configured: the build goes there */
        rc = remote_unsupported(args);
        if (rc == 0 && !ep.api_key) {
            e2b_error_set(&err, E2B_ERR_AUTH, "no API key for %s: run 'e2b auth login' or set E2B_API_KEY",
                          ep.api_url);
            rc = e2b_fail(err);
        }
        if (rc == 0)
            rc = build_remote(ctx, args, &ep, context, dockerfile, name ? name : "", (const char *const *)tagv,
                              e2b_args_str(args, "cmd") ?: e2b_args_str(args, "start-cmd") ?: toml.start_cmd,
                              e2b_args_str(args, "ready-cmd") ?: toml.ready_cmd, cpus, mem, cfg_path);
        goto out;
    }
    size_t nba = 0;
    const char *const *ba = e2b_args_list(args, "build-arg", &nba);
    bool quiet = ctx->quiet;
    size_t nins = 0;
    const char *const *ins = e2b_args_list(args, "insecure-registry", &nins);
    insv = xcalloc(nins + 1, sizeof(char *));
    for (size_t i = 0; i < nins; i++)
        insv[i] = ins[i];
    struct e2b_build_opts o = {
        .context = context,
        .dockerfile = dockerfile,
        .name = name,
        .tags = tagv,
        .start_cmd = e2b_args_str(args, "cmd") ?: e2b_args_str(args, "start-cmd") ?: toml.start_cmd,
        .ready_cmd = e2b_args_str(args, "ready-cmd") ?: toml.ready_cmd,
        .runtime = runtime,
        .envd_path = envd,
        .ready_timeout_s = (int)ready_to,
        .cpu_count = cpus,
        .memory_mb = mem,
        .disk_headroom_mb = disk,
        .build_args = ba,
        .n_build_args = nba,
        .target = e2b_args_str(args, "target"),
        .platform = plat,
        .insecure_registries = insv,
        .network_host = !strcmp(net, "host"),
        .no_cache = e2b_args_flag(args, "no-cache"),
        .progress = on_progress,
        .output = on_output,
        .status = !quiet && isatty(2) ? on_status : NULL,
        .data = &quiet,
    };
    if (e2b_args_flag(args, "dry-run")) {
        _cleanup_json_ json_t *j = NULL;
        if (e2b_build_parse(&o, &j, &err) < 0) {
            rc = e2b_fail(err);
            goto out;
        }
        char *s = e2b_json_dump(j, JSON_INDENT(2));
        puts(s);
        free(s);
        goto out;
    }
    if (e2b_build_run(&o, &meta, &err) < 0) {
        rc = e2b_fail(err);
        goto out;
    }
    const char *id = e2b_json_str(meta, "templateID");
    /* a VM template is booted once and saved: its sandboxes restore that */
    bool snapshot = !e2b_args_flag(args, "no-snapshot") &&
                    (e2b_args_flag(args, "snapshot") || (runtime && !strcmp(runtime, "vm")));
    if (snapshot) {
        if (!quiet)
            fprintf(stderr, "Booting template %s once for its snapshot\n", name);
        struct e2b_local_options so = { .template = id,
                                        .runtime = runtime && strcmp(runtime, "auto") ? runtime : "vm",
                                        .timeout_s = 600 };
        _cleanup_free_ char *sdir = NULL;
        if (e2b_local_template_snapshot(&so, &sdir, &err) < 0) {
            e2b_error_wrap(&err, "template %s (%s) is built, but has no snapshot", name, id);
            rc = e2b_fail(err);
            goto out;
        }
        if (!quiet)
            fprintf(stderr, "Saved the snapshot of %s: %s\n", name, sdir);
    }
    /* like E2B's CLI: remember the template in e2b.toml */
    if (access(cfg_path, F_OK) == 0 || e2b_args_has(args, "config")) {
        struct e2b_error *werr = NULL;
        if (e2b_toml_set(cfg_path, "template_id", id, &werr) < 0) {
            fprintf(stderr, "e2b: warning: %s\n", werr->msg);
            e2b_error_free(werr);
        }
    }
    if (ctx->json) {
        char *s = e2b_json_dump(meta, JSON_INDENT(2));
        puts(s);
        free(s);
    } else {
        printf("%s\n", id);
        if (!ctx->quiet)
            fprintf(stderr, "Built template %s (%s), build %s\n", name, id, e2b_json_str(meta, "buildID"));
    }
out:
    e2b_endpoint_release(&ep);
    free(insv);
    free(tagv);
    if (checkout) {
        struct e2b_error *e2 = NULL;
        e2b_rm_rf(checkout, &e2);
        e2b_error_free(e2);
    }
    e2b_toml_free(&toml);
    return rc;
}
