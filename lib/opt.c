/* opt.c - see opt.h */
#include "opt.h"
#include "strbuf.h"

#include <ctype.h>

struct found {
    size_t t, i;
};

static bool find_long(const struct e2b_args *a, const char *name, size_t len, struct found *f)
{
    for (size_t t = 0; t < a->ntables; t++)
        for (size_t i = 0; a->tables[t][i].type != E2B_OPT_END_; i++) {
            const struct e2b_opt *o = &a->tables[t][i];
            if (e2b_opt_is_positional(o) || !o->long_name)
                continue;
            if (strlen(o->long_name) == len && strncmp(o->long_name, name, len) == 0) {
                f->t = t, f->i = i;
                return true;
            }
        }
    return false;
}

static bool find_short(const struct e2b_args *a, char c, struct found *f)
{
    for (size_t t = 0; t < a->ntables; t++)
        for (size_t i = 0; a->tables[t][i].type != E2B_OPT_END_; i++) {
            const struct e2b_opt *o = &a->tables[t][i];
            if (!e2b_opt_is_positional(o) && o->short_name == c) {
                f->t = t, f->i = i;
                return true;
            }
        }
    return false;
}

static void list_push(struct e2b_optval *v, const char *s)
{
    v->list = xrealloc(v->list, (v->count + 2) * sizeof(*v->list));
    v->list[v->count++] = s;
    v->list[v->count] = NULL;
}

static int store(struct e2b_args *a, struct found f, const char *shown, const char *value,
                 struct e2b_error **err)
{
    const struct e2b_opt *o = &a->tables[f.t][f.i];
    struct e2b_optval *v = &a->vals[f.t][f.i];
    v->set = true;
    switch (o->type) {
    case E2B_OPT_FLAG_:
        break;
    case E2B_OPT_INT_: {
        char *end = NULL;
        errno = 0;
        long long n = strtoll(value, &end, 10);
        if (!*value || *end || errno)
            return e2b_error_set(err, E2B_ERR_USAGE, "option '%s' needs a whole number, not '%s'",
                                 shown, value);
        v->number = n;
        v->value = value;
        break;
    }
    case E2B_OPT_STRING_:
        v->value = value;
        break;
    case E2B_OPT_LIST_:
        v->value = value;
        list_push(v, value);
        break;
    default:
        break;
    }
    return 0;
}

/* Positionals live in the first table. Returns the slot for the next one. */
static int next_positional(const struct e2b_args *a, size_t npos_given)
{
    const struct e2b_opt *t = a->tables[0];
    size_t n = 0;
    for (size_t i = 0; t[i].type != E2B_OPT_END_; i++) {
        if (t[i].type == E2B_OPT_ARGS_)
            return (int)i;
        if (t[i].type == E2B_OPT_ARG_ && n++ == npos_given)
            return (int)i;
    }
    return -1;
}

static int add_positional(struct e2b_args *a, size_t *npos, const char *arg, bool *stop,
                          struct e2b_error **err)
{
    int slot = next_positional(a, *npos);
    if (slot < 0)
        return e2b_error_set(err, E2B_ERR_USAGE, "unexpected argument '%s'", arg);
    const struct e2b_opt *o = &a->tables[0][slot];
    struct e2b_optval *v = &a->vals[0][slot];
    v->set = true;
    if (o->type == E2B_OPT_ARGS_) {
        list_push(v, arg);
        if (o->flags & E2B_OPTF_STOP)
            *stop = true;
    } else {
        v->value = arg;
        (*npos)++;
    }
    return 0;
}

int e2b_args_parse(struct e2b_args *a, const struct e2b_opt *const *tables, int argc, char **argv,
                   struct e2b_error **err)
{
    memset(a, 0, sizeof(*a));
    while (tables[a->ntables])
        a->ntables++;
    a->tables = xcalloc(a->ntables + 1, sizeof(*a->tables));
    a->vals = xcalloc(a->ntables + 1, sizeof(*a->vals));
    for (size_t t = 0; t < a->ntables; t++) {
        size_t n = 0;
        while (tables[t][n].type != E2B_OPT_END_)
            n++;
        a->tables[t] = tables[t];
        a->vals[t] = xcalloc(n + 1, sizeof(**a->vals));
    }

    size_t npos = 0;
    bool only_positionals = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (only_positionals || arg[0] != '-' || arg[1] == '\0') {
            if (add_positional(a, &npos, arg, &only_positionals, err) < 0)
                return -1;
            continue;
        }
        if (STREQ(arg, "--")) {
            only_positionals = true;
            continue;
        }
        struct found f;
        if (arg[1] == '-') {
            const char *name = arg + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            if (len == 4 && strncmp(name, "help", 4) == 0 && !find_long(a, name, len, &f)) {
                a->help = true;
                continue;
            }
            if (!find_long(a, name, len, &f))
                return e2b_error_set(err, E2B_ERR_USAGE, "unknown option '--%.*s'", (int)len, name);
            const struct e2b_opt *o = &a->tables[f.t][f.i];
            _cleanup_free_ char *shown = xasprintf("--%s", o->long_name);
            const char *value = NULL;
            if (e2b_opt_takes_value(o)) {
                if (eq)
                    value = eq + 1;
                else if (i + 1 < argc)
                    value = argv[++i];
                else
                    return e2b_error_set(err, E2B_ERR_USAGE, "option '%s' needs a value (%s)",
                                         shown, o->arg_name ? o->arg_name : "VALUE");
            } else if (eq) {
                return e2b_error_set(err, E2B_ERR_USAGE, "option '%s' takes no value", shown);
            }
            if (store(a, f, shown, value, err) < 0)
                return -1;
            continue;
        }
        /* One or more short options: -d, -abc, -eK=V, -e K=V */
        for (const char *p = arg + 1; *p; p++) {
            if (*p == 'h' && !find_short(a, 'h', &f)) {
                a->help = true;
                continue;
            }
            if (!find_short(a, *p, &f))
                return e2b_error_set(err, E2B_ERR_USAGE, "unknown option '-%c'", *p);
            const struct e2b_opt *o = &a->tables[f.t][f.i];
            char shown[3] = {'-', *p, '\0'};
            if (!e2b_opt_takes_value(o)) {
                if (store(a, f, shown, NULL, err) < 0)
                    return -1;
                continue;
            }
            const char *value;
            if (p[1])
                value = p + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else
                return e2b_error_set(err, E2B_ERR_USAGE, "option '%s' needs a value (%s)", shown,
                                     o->arg_name ? o->arg_name : "VALUE");
            if (store(a, f, shown, value, err) < 0)
                return -1;
            break;
        }
    }
    if (a->help)
        return 0;
    const struct e2b_opt *t = a->tables[0];
    for (size_t i = 0; t[i].type != E2B_OPT_END_; i++)
        if (e2b_opt_is_positional(&t[i]) && (t[i].flags & E2B_OPTF_REQUIRED) && !a->vals[0][i].set)
            return e2b_error_set(err, E2B_ERR_USAGE, "missing argument <%s>", t[i].long_name);
    return 0;
}

void e2b_args_release(struct e2b_args *a)
{
    for (size_t t = 0; t < a->ntables; t++) {
        for (size_t i = 0; a->tables[t][i].type != E2B_OPT_END_; i++)
            free(a->vals[t][i].list);
        free(a->vals[t]);
    }
    free(a->vals);
    free(a->tables);
    memset(a, 0, sizeof(*a));
}

static const struct e2b_optval *lookup(const struct e2b_args *a, const char *name)
{
    for (size_t t = 0; t < a->ntables; t++)
        for (size_t i = 0; a->tables[t][i].type != E2B_OPT_END_; i++)
            if (a->tables[t][i].long_name && STREQ(a->tables[t][i].long_name, name))
                return &a->vals[t][i];
    return NULL;
}

bool e2b_args_flag(const struct e2b_args *a, const char *name)
{
    const struct e2b_optval *v = lookup(a, name);
    return v && v->set;
}

bool e2b_args_has(const struct e2b_args *a, const char *name) { return e2b_args_flag(a, name); }

const char *e2b_args_str(const struct e2b_args *a, const char *name)
{
    const struct e2b_optval *v = lookup(a, name);
    return v && v->set ? v->value : NULL;
}

long long e2b_args_int(const struct e2b_args *a, const char *name, long long def)
{
    const struct e2b_optval *v = lookup(a, name);
    return v && v->set ? v->number : def;
}

const char *const *e2b_args_list(const struct e2b_args *a, const char *name, size_t *count)
{
    static const char *const empty[] = {NULL};
    const struct e2b_optval *v = lookup(a, name);
    if (count)
        *count = v ? v->count : 0;
    return v && v->list ? v->list : empty;
}

char *e2b_opt_label(const struct e2b_opt *o)
{
    struct strbuf sb = STRBUF_INIT;
    if (e2b_opt_is_positional(o)) {
        bool req = o->flags & E2B_OPTF_REQUIRED;
        strbuf_addf(&sb, "%c%s%c%s", req ? '<' : '[', o->long_name, req ? '>' : ']',
                    o->type == E2B_OPT_ARGS_ ? "..." : "");
        return strbuf_detach(&sb, NULL);
    }
    if (o->short_name)
        strbuf_addf(&sb, "-%c, ", o->short_name);
    else
        strbuf_addstr(&sb, "    ");
    strbuf_addf(&sb, "--%s", o->long_name);
    if (e2b_opt_takes_value(o))
        strbuf_addf(&sb, " %s", o->arg_name ? o->arg_name : "VALUE");
    return strbuf_detach(&sb, NULL);
}

char *e2b_opt_positionals(const struct e2b_opt *table)
{
    struct strbuf sb = STRBUF_INIT;
    for (; table && table->type != E2B_OPT_END_; table++) {
        if (!e2b_opt_is_positional(table) || (table->flags & E2B_OPTF_HIDDEN))
            continue;
        _cleanup_free_ char *l = e2b_opt_label(table);
        strbuf_addf(&sb, "%s%s", sb.len ? " " : "", l);
    }
    return strbuf_detach(&sb, NULL);
}

void e2b_opt_print_help(FILE *f, const struct e2b_opt *table, bool positionals)
{
    for (; table && table->type != E2B_OPT_END_; table++) {
        if ((table->flags & E2B_OPTF_HIDDEN) || e2b_opt_is_positional(table) != positionals)
            continue;
        _cleanup_free_ char *l = e2b_opt_label(table);
        if (strlen(l) <= 26)
            fprintf(f, "  %-26s  %s\n", l, table->help);
        else
            fprintf(f, "  %s\n  %-26s  %s\n", l, "", table->help);
    }
}
