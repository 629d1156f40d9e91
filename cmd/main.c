/* main.c - dispatch: applets by argv[0], global options, `e2b <group>... <verb>`. */
#include "cmd.h"
#include "help.h"
#include "strbuf.h"
#include "usage.h"

#include <libgen.h>

/* Applets the busybox way: a link named `envd` runs `e2b envd`. */
/* The host binary's applets; `init` is in the static guest binary (build/envd). */
static const char *const applets[] = {"envd", NULL};

static const struct e2b_command *find_command(const char *group, const char *word)
{
    for (const struct e2b_command *c = e2b_commands; c->name; c++) {
        bool group_ok = group ? (c->group && STREQ(c->group, group)) : !c->group;
        if (group_ok && e2b_command_matches(c, word))
            return c;
    }
    return NULL;
}

/* Index just past the global options in front of the command words. */
static int skip_leading_globals(int argc, char **argv, int i)
{
    while (i < argc && argv[i][0] == '-' && argv[i][1]) {
        if (STREQ(argv[i], "--"))
            return i + 1;
        const char *name = argv[i] + (argv[i][1] == '-' ? 2 : 1);
        bool long_opt = argv[i][1] == '-';
        for (const struct e2b_opt *o = e2b_global_opts; o->type; o++) {
            bool match = long_opt ? STREQ(name, o->long_name) : (name[0] == o->short_name && !name[1]);
            if (match && e2b_opt_takes_value(o)) {
                i++;
                break;
            }
        }
        i++;
    }
    return i;
}

static int run_command(const struct e2b_command *c, int argc, char **argv)
{
    struct e2b_ctx ctx = {.prog = "e2b", .cmd = c};
    struct e2b_args args;
    _cleanup_error_ struct e2b_error *err = NULL;
    const struct e2b_opt *tables[] = {c->opts, (c->flags & E2B_CMD_RAW) ? NULL : e2b_global_opts,
                                      NULL};
    _cleanup_free_ char *path = e2b_command_path(c);
    if (e2b_args_parse(&args, tables, argc, argv, &err) < 0) {
        e2b_args_release(&args);
        return e2b_usage_error(path, "%s for '%s'", err->msg, path);
    }
    if (args.help) {
        e2b_print_command_help(stdout, c);
        e2b_args_release(&args);
        return 0;
    }
    ctx.json = e2b_args_flag(&args, "json");
    const char *format = e2b_args_str(&args, "format");
    if (format && STREQ(format, "json"))
        ctx.json = true;
    else if (format && !STREQ(format, "pretty")) {
        e2b_args_release(&args);
        return e2b_usage_error(path, "unknown format '%s' (pretty or json)", format);
    }
    ctx.quiet = e2b_args_flag(&args, "quiet");
    ctx.verbose = e2b_args_flag(&args, "verbose");
    ctx.api_url = e2b_args_str(&args, "api-url");
    ctx.api_key = e2b_args_str(&args, "api-key");
    int rc = c->fn(&ctx, &args);
    e2b_args_release(&args);
    /* A full disk or closed pipe must not pass silently (git's run_builtin). */
    if (e2b_stdout_check())
        return rc ? rc : 1;
    return rc;
}

int main(int argc, char **argv)
{
    const char *base = argc > 0 ? basename(argv[0]) : "e2b";
    if (*base == '-') /* login shells */
        base++;

    for (const char *const *a = applets; *a; a++)
        if (STREQ(base, *a)) {
            const struct e2b_command *c = find_command(NULL, *a);
            if (c)
                return run_command(c, argc - 1, argv + 1);
        }

    /* Global options may come before the command words; keep them. */
    int first = skip_leading_globals(argc, argv, 1);
    for (int i = 1; i < first; i++) {
        if (STREQ(argv[i], "--version") || STREQ(argv[i], "-V")) {
            printf("e2b %s\n", E2B_VERSION);
            return 0;
        }
        if (STREQ(argv[i], "--help") || STREQ(argv[i], "-h")) {
            e2b_print_main_help(stdout);
            return 0;
        }
    }
    if (first >= argc) {
        e2b_print_main_help(stderr);
        return 2;
    }

    const char *group = NULL;
    int i = first;
    const struct e2b_command *c = NULL;
    for (; i < argc; i++) {
        const char *w = argv[i];
        const struct e2b_group *g = e2b_group_find(w, group);
        if (g) {
            group = g->name;
            continue;
        }
        c = find_command(group, w);
        if (!c) {
            if (group && w[0] == '-' && (STREQ(w, "-h") || STREQ(w, "--help"))) {
                e2b_print_group_help(stdout, group);
                return 0;
            }
            if (group)
                return e2b_usage_error(group, "'%s' is not an 'e2b %s' command", w, group);
            return e2b_usage_error(NULL, "unknown command '%s'", w);
        }
        i++;
        break;
    }
    if (!c) {
        struct strbuf verbs = STRBUF_INIT;
        for (const struct e2b_command *v = e2b_commands; v->name; v++)
            if (v->group && STREQ(v->group, group) && !(v->flags & E2B_CMD_HIDDEN))
                strbuf_addf(&verbs, "%s%s", verbs.len ? ", " : "", v->name);
        for (const struct e2b_group *g = e2b_groups; g->name; g++)
            if (e2b_str_has_prefix(g->name, group) && g->name[strlen(group)] == ' ')
                strbuf_addf(&verbs, "%s%s", verbs.len ? ", " : "", g->name + strlen(group) + 1);
        int rc = e2b_usage_error(group, "'e2b %s' needs a command: %s", group, verbs.buf);
        strbuf_release(&verbs);
        return rc;
    }

    /* Pass the leading globals on with the command's own arguments. */
    int n = (first - 1) + (argc - i);
    char **rest = xcalloc((size_t)n + 1, sizeof(*rest));
    memcpy(rest, argv + 1, (size_t)(first - 1) * sizeof(*rest));
    memcpy(rest + first - 1, argv + i, (size_t)(argc - i) * sizeof(*rest));
    int rc = run_command(c, n, rest);
    free(rest);
    return rc;
}
