/* help.c - help text, `e2b help`, `e2b version`, and the generators the
 * completion scripts (`__complete`) and man pages (`__man`) call. All of it
 * reads the command table, so nothing here is maintained by hand. */
#include "cmd.h"
#include "help.h"
#include "sandbox-cli.h"
#include "strbuf.h"
#include "usage.h"

static bool in_group(const char *name, const char *group)
{
    return group ? name && STREQ(name, group) : name == NULL;
}

void e2b_print_command_help(FILE *f, const struct e2b_command *c)
{
    _cleanup_free_ char *path = e2b_command_path(c);
    _cleanup_free_ char *pos = e2b_opt_positionals(c->opts);
    fprintf(f, "usage: e2b %s [options]%s%s\n", path, *pos ? " " : "", pos);
    if (c->alias)
        fprintf(f, "alias: %s\n", c->alias);
    fprintf(f, "\n%s\n", c->summary);
    if (*pos) {
        fprintf(f, "\nArguments:\n");
        e2b_opt_print_help(f, c->opts, true);
    }
    bool any = false;
    for (const struct e2b_opt *o = c->opts; o->type; o++)
        any |= !e2b_opt_is_positional(o) && !(o->flags & E2B_OPTF_HIDDEN);
    bool raw = c->flags & E2B_CMD_RAW; /* its own options only, no global ones */
    if (any || raw) {
        fprintf(f, "\nOptions:\n");
        e2b_opt_print_help(f, c->opts, false);
    }
    if (raw) {
        fprintf(f, "  %-26s  %s\n", "-h, --help", "show this help");
    } else {
        fprintf(f, "\nGlobal options:\n");
        e2b_opt_print_help(f, e2b_global_opts, false);
        fprintf(f, "  %-26s  %s\n", "-h, --help", "show this help");
    }
}

static void print_group_lines(FILE *f, const char *group)
{
    for (const struct e2b_group *g = e2b_groups; g->name; g++) {
        const char *sp = strrchr(g->name, ' ');
        bool child = group ? (sp && (size_t)(sp - g->name) == strlen(group) &&
                              !strncmp(g->name, group, strlen(group)))
                           : !sp;
        if (child)
            fprintf(f, "  %-14s %s\n", sp ? sp + 1 : g->name, g->summary);
    }
    for (const struct e2b_command *c = e2b_commands; c->name; c++)
        if (in_group(c->group, group) && !(c->flags & E2B_CMD_HIDDEN))
            fprintf(f, "  %-14s %s\n", c->name, c->summary);
}

void e2b_print_group_help(FILE *f, const char *group)
{
    const struct e2b_group *g = NULL;
    for (const struct e2b_group *x = e2b_groups; x->name; x++)
        if (STREQ(x->name, group))
            g = x;
    fprintf(f, "usage: e2b %s <command> [options]\n", group);
    if (g && g->alias)
        fprintf(f, "alias: e2b %s\n", g->alias);
    if (g)
        fprintf(f, "\n%s\n", g->summary);
    fprintf(f, "\nCommands:\n");
    print_group_lines(f, group);
    fprintf(f, "\nRun 'e2b %s <command> --help' for a command's options.\n", group);
}

void e2b_print_main_help(FILE *f)
{
    fprintf(f, "usage: e2b [global options] <command> [options] [args]\n\n"
               "Build sandbox templates from Dockerfiles, start isolated sandboxes and run\n"
               "code in them, here or on an E2B-compatible API.\n\nCommands:\n");
    print_group_lines(f, NULL);
    fprintf(f, "\nGlobal options:\n");
    e2b_opt_print_help(f, e2b_global_opts, false);
    fprintf(f, "  %-26s  %s\n  %-26s  %s\n", "-h, --help", "show help", "-V, --version",
            "print the version");
    fprintf(f, "\nRun 'e2b help <command>' or 'e2b <command> --help' for more.\n");
}

/* Resolve command words (with aliases) to a group or a command. */
static const struct e2b_command *resolve(const char *const *words, size_t n, const char **group,
                                         size_t *used)
{
    *group = NULL;
    size_t i = 0;
    for (; i < n; i++) {
        const struct e2b_group *g = e2b_group_find(words[i], *group);
        if (g) {
            *group = g->name;
            continue;
        }
        for (const struct e2b_command *c = e2b_commands; c->name; c++)
            if (in_group(c->group, *group) && e2b_command_matches(c, words[i])) {
                *used = i + 1;
                return c;
            }
        break;
    }
    *used = i;
    return NULL;
}

const struct e2b_opt opts_help[] = {
    E2B_OPT_ARGS("command", 0, "command to explain, e.g. 'sandbox create'"),
    E2B_OPT_END,
};

int cmd_help(struct e2b_ctx *ctx, struct e2b_args *args)
{
    size_t n;
    const char *const *words = e2b_args_list(args, "command", &n);
    if (n == 0) {
        e2b_print_main_help(stdout);
        return 0;
    }
    const char *group;
    size_t used;
    const struct e2b_command *c = resolve(words, n, &group, &used);
    if (c && used == n) {
        e2b_print_command_help(stdout, c);
        return 0;
    }
    if (!c && group && used == n) {
        e2b_print_group_help(stdout, group);
        return 0;
    }
    return e2b_usage_error("help", "no help for unknown command '%s'", words[used < n ? used : 0]);
}

const struct e2b_opt opts_version[] = {E2B_OPT_END};

int cmd_version(struct e2b_ctx *ctx, struct e2b_args *args)
{
    if (ctx->json)
        printf("{\"version\":\"%s\"}\n", E2B_VERSION);
    else
        printf("e2b %s\n", E2B_VERSION);
    return 0;
}

/* e2b __complete -- WORD... CURRENT: print candidates for CURRENT, one a
 * line. A lone line "@files" or "@dirs" asks the shell to complete paths. */
const struct e2b_opt opts_complete[] = {
    E2B_OPT_ARGS("words", E2B_OPTF_STOP, "command line words after 'e2b', the last one being completed"),
    E2B_OPT_END,
};

static void emit(const char *cand, const char *cur)
{
    if (e2b_str_has_prefix(cand, cur))
        printf("%s\n", cand);
}

static void complete_value(const struct e2b_opt *o, const char *cur)
{
    switch (o->complete) {
    case E2B_COMPLETE_FILE:
        printf("@files\n");
        break;
    case E2B_COMPLETE_DIR:
        printf("@dirs\n");
        break;
    case E2B_COMPLETE_SANDBOX:
        e2b_cli_complete_sandboxes(cur);
        break;
    case E2B_COMPLETE_TEMPLATE:
        e2b_cli_complete_templates(cur);
        break;
    case E2B_COMPLETE_VOLUME:
        e2b_cli_complete_volumes(cur);
        break;
    case E2B_COMPLETE_CHOICES: {
        _cleanup_free_ char *copy = xstrdup(o->choices);
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            emit(t, cur);
        break;
    }
    default:
        break;
    }
}

static void complete_options(const struct e2b_opt *table, const char *cur)
{
    for (const struct e2b_opt *o = table; o && o->type; o++) {
        if (e2b_opt_is_positional(o) || (o->flags & E2B_OPTF_HIDDEN))
            continue;
        _cleanup_free_ char *l = xasprintf("--%s", o->long_name);
        emit(l, cur);
    }
}

static const struct e2b_opt *find_value_opt(const struct e2b_command *c, const char *word)
{
    bool raw = c && (c->flags & E2B_CMD_RAW);
    const struct e2b_opt *tables[] = { c ? c->opts : NULL, raw ? NULL : e2b_global_opts };
    for (size_t t = 0; t < 2; t++)
        for (const struct e2b_opt *o = tables[t]; o && o->type; o++) {
            if (e2b_opt_is_positional(o) || !e2b_opt_takes_value(o))
                continue;
            bool m = word[0] == '-' && word[1] == '-' ? STREQ(word + 2, o->long_name)
                                                      : (word[1] == o->short_name && !word[2]);
            if (m)
                return o;
        }
    return NULL;
}

int cmd_complete(struct e2b_ctx *ctx, struct e2b_args *args)
{
    size_t n;
    const char *const *words = e2b_args_list(args, "words", &n);
    const char *cur = n ? words[n - 1] : "";
    if (n > 0)
        n--; /* words before the one being completed */

    /* Skip leading global options (and their values). */
    size_t start = 0;
    while (start < n && words[start][0] == '-') {
        const struct e2b_opt *o = find_value_opt(NULL, words[start]);
        start += o ? 2 : 1;
    }
    if (start > n)
        start = n;
    if (start == n && n > 0 && words[n - 1][0] == '-') {
        const struct e2b_opt *o = find_value_opt(NULL, words[n - 1]);
        if (o) {
            complete_value(o, cur);
            return 0;
        }
    }
    const char *group;
    size_t used;
    const struct e2b_command *c = resolve(words + start, n - start, &group, &used);
    if (!c) {
        if (start + used < n) /* an unknown word: nothing to offer */
            return 0;
        if (cur[0] == '-') {
            complete_options(e2b_global_opts, cur);
            if (!group)
                emit("--help", cur), emit("--version", cur);
            return 0;
        }
        for (const struct e2b_group *g = e2b_groups; g->name; g++) {
            const char *sp = strrchr(g->name, ' ');
            bool child = group ? (sp && (size_t)(sp - g->name) == strlen(group) &&
                                  !strncmp(g->name, group, strlen(group)))
                               : !sp;
            if (child)
                emit(sp ? sp + 1 : g->name, cur);
        }
        for (const struct e2b_command *x = e2b_commands; x->name; x++)
            if (in_group(x->group, group) && !(x->flags & E2B_CMD_HIDDEN))
                emit(x->name, cur);
        return 0;
    }
    /* Inside a command: option values, options, or positionals. */
    size_t first_arg = start + used;
    if (n > first_arg) {
        const struct e2b_opt *o = find_value_opt(c, words[n - 1]);
        if (o) {
            complete_value(o, cur);
            return 0;
        }
    }
    if (cur[0] == '-') {
        complete_options(c->opts, cur);
        if (!(c->flags & E2B_CMD_RAW))
            complete_options(e2b_global_opts, cur);
        emit("--help", cur);
        return 0;
    }
    size_t npos = 0;
    for (size_t i = first_arg; i < n; i++) {
        if (words[i][0] == '-') {
            if (find_value_opt(c, words[i]))
                i++;
            continue;
        }
        npos++;
    }
    size_t k = 0;
    for (const struct e2b_opt *o = c->opts; o->type; o++) {
        if (!e2b_opt_is_positional(o))
            continue;
        if (o->type == E2B_OPT_ARGS_ || k++ == npos) {
            complete_value(o, cur);
            break;
        }
    }
    return 0;
}

/* e2b __man synopsis|options|commands WORD...: scdoc fragments for man/. */
const struct e2b_opt opts_man[] = {
    E2B_OPT_ARG("what", E2B_OPTF_REQUIRED, "synopsis, options or commands"),
    E2B_OPT_ARGS("command", 0, "command words"),
    E2B_OPT_END,
};

static void scdoc_escape(struct strbuf *sb, const char *s)
{
    for (; *s; s++) {
        if (*s == '*' || *s == '_' || *s == '\\')
            strbuf_addch(sb, '\\');
        strbuf_addch(sb, *s);
    }
}

static void man_options(struct strbuf *sb, const struct e2b_opt *table)
{
    for (const struct e2b_opt *o = table; o->type; o++) {
        if ((o->flags & E2B_OPTF_HIDDEN) || e2b_opt_is_positional(o))
            continue;
        if (o->short_name)
            strbuf_addf(sb, "*-%c*, ", o->short_name);
        strbuf_addstr(sb, "*--");
        scdoc_escape(sb, o->long_name);
        strbuf_addch(sb, '*');
        if (e2b_opt_takes_value(o))
            strbuf_addf(sb, " _%s_", o->arg_name ? o->arg_name : "VALUE");
        strbuf_addstr(sb, "\n\t");
        scdoc_escape(sb, o->help);
        strbuf_addstr(sb, "\n\n");
    }
}

int cmd_man(struct e2b_ctx *ctx, struct e2b_args *args)
{
    const char *what = e2b_args_str(args, "what");
    size_t n;
    const char *const *words = e2b_args_list(args, "command", &n);
    struct strbuf sb = STRBUF_INIT;
    if (STREQ(what, "commands")) {
        for (const struct e2b_command *c = e2b_commands; c->name; c++) {
            if (c->flags & E2B_CMD_HIDDEN)
                continue;
            _cleanup_free_ char *path = e2b_command_path(c);
            _cleanup_free_ char *page = xstrdup(path);
            for (char *p = page; *p; p++)
                if (*p == ' ')
                    *p = '-';
            strbuf_addf(&sb, "*e2b %s*\n\t", path);
            scdoc_escape(&sb, c->summary);
            strbuf_addf(&sb, " See *e2b-%s*(1).\n\n", page);
        }
        strbuf_addstr(&sb, "# GLOBAL OPTIONS\n\n");
        man_options(&sb, e2b_global_opts);
        fputs(sb.buf, stdout);
        strbuf_release(&sb);
        return 0;
    }
    const char *group;
    size_t used;
    const struct e2b_command *c = resolve(words, n, &group, &used);
    if (n == 1 && !c) { /* a man page name: "sandbox-set-timeout" */
        for (const struct e2b_command *x = e2b_commands; x->name && !c; x++) {
            _cleanup_free_ char *page = e2b_command_path(x);
            for (char *p = page; *p; p++)
                if (*p == ' ')
                    *p = '-';
            if (STREQ(page, words[0]))
                c = x, used = 1;
        }
    }
    if (!c || used != n) {
        strbuf_release(&sb);
        return e2b_usage_error("__man", "no such command");
    }
    _cleanup_free_ char *path = e2b_command_path(c);
    if (STREQ(what, "synopsis")) {
        _cleanup_free_ char *pos = e2b_opt_positionals(c->opts);
        strbuf_addf(&sb, "*e2b %s* [_options_]", path);
        if (*pos) {
            strbuf_addch(&sb, ' ');
            scdoc_escape(&sb, pos);
        }
        strbuf_addch(&sb, '\n');
        if (c->alias)
            strbuf_addf(&sb, "\nAliases: %s\n", c->alias);
    } else if (STREQ(what, "options")) {
        bool any = false;
        for (const struct e2b_opt *o = c->opts; o->type; o++)
            any |= e2b_opt_is_positional(o) && !(o->flags & E2B_OPTF_HIDDEN);
        if (any) {
            strbuf_addstr(&sb, "# ARGUMENTS\n\n");
            for (const struct e2b_opt *o = c->opts; o->type; o++) {
                if (!e2b_opt_is_positional(o) || (o->flags & E2B_OPTF_HIDDEN))
                    continue;
                _cleanup_free_ char *l = e2b_opt_label(o);
                strbuf_addch(&sb, '_');
                scdoc_escape(&sb, l);
                strbuf_addstr(&sb, "_\n\t");
                scdoc_escape(&sb, o->help);
                strbuf_addstr(&sb, "\n\n");
            }
        }
        strbuf_addstr(&sb, "# OPTIONS\n\n");
        man_options(&sb, c->opts);
        strbuf_addstr(&sb, "*-h*, *--help*\n\tshow help\n\n");
        if (!(c->flags & E2B_CMD_RAW))
            strbuf_addstr(&sb, "Global options (see *e2b*(1)) are accepted too.\n");
    } else {
        strbuf_release(&sb);
        return e2b_usage_error("__man", "unknown fragment '%s'", what);
    }
    fputs(sb.buf, stdout);
    strbuf_release(&sb);
    return 0;
}
