/* opt.h - table-driven command-line option parsing.
 *
 * A command declares one `struct e2b_opt` table: options and positional
 * arguments, each with its own help text. The same table drives parsing,
 * --help, the man pages' SYNOPSIS/OPTIONS and shell completion, so they
 * cannot drift apart. Parsed values are read back by long name:
 *
 *   static const struct e2b_opt opts[] = {
 *       E2B_OPT_STRING(0, "timeout", "SECONDS", "seconds until the sandbox is killed"),
 *       E2B_OPT_LIST('e', "env", "KEY=VALUE", "set an environment variable (repeatable)"),
 *       E2B_OPT_ARG("template", 0, "template to start"),
 *       E2B_OPT_END,
 *   };
 *   const char *t = e2b_args_str(args, "timeout");
 */
#ifndef E2B_OPT_H
#define E2B_OPT_H

#include "error.h"

enum e2b_opt_type {
    E2B_OPT_END_ = 0,
    E2B_OPT_FLAG_,   /* --name, no value */
    E2B_OPT_STRING_, /* --name VALUE, last one wins */
    E2B_OPT_INT_,    /* --name N, checked to be an integer */
    E2B_OPT_LIST_,   /* --name VALUE, repeatable, all kept */
    E2B_OPT_ARG_,    /* one positional argument */
    E2B_OPT_ARGS_,   /* all remaining positional arguments */
};

enum {
    E2B_OPTF_HIDDEN = 1 << 0,   /* parsed, but not shown in help, man or completion */
    E2B_OPTF_REQUIRED = 1 << 1, /* positional that must be present */
    E2B_OPTF_STOP = 1 << 2,     /* ARGS: options end at the first of them (exec CMD -x) */
};

/* What a value is, for shell completion. */
enum e2b_complete {
    E2B_COMPLETE_NONE = 0,
    E2B_COMPLETE_FILE,
    E2B_COMPLETE_DIR,
    E2B_COMPLETE_SANDBOX,
    E2B_COMPLETE_TEMPLATE,
    E2B_COMPLETE_CHOICES, /* from `choices`, comma separated */
    E2B_COMPLETE_VOLUME,
};

struct e2b_opt {
    enum e2b_opt_type type;
    char short_name;      /* 0 if none */
    const char *long_name;
    const char *arg_name; /* "SECONDS"; for positionals, the shown name */
    const char *help;
    unsigned flags;
    enum e2b_complete complete;
    const char *choices;
};

#define E2B_OPT_FLAG(s, l, h) {E2B_OPT_FLAG_, s, l, NULL, h, 0, E2B_COMPLETE_NONE, NULL}
#define E2B_OPT_STRING(s, l, a, h) {E2B_OPT_STRING_, s, l, a, h, 0, E2B_COMPLETE_NONE, NULL}
#define E2B_OPT_STRING_C(s, l, a, h, c) {E2B_OPT_STRING_, s, l, a, h, 0, c, NULL}
#define E2B_OPT_CHOICE(s, l, a, h, ch) {E2B_OPT_STRING_, s, l, a, h, 0, E2B_COMPLETE_CHOICES, ch}
#define E2B_OPT_INT(s, l, a, h) {E2B_OPT_INT_, s, l, a, h, 0, E2B_COMPLETE_NONE, NULL}
#define E2B_OPT_LIST(s, l, a, h) {E2B_OPT_LIST_, s, l, a, h, 0, E2B_COMPLETE_NONE, NULL}
#define E2B_OPT_HIDDEN_FLAG(s, l, h) {E2B_OPT_FLAG_, s, l, NULL, h, E2B_OPTF_HIDDEN, 0, NULL}
/* Positionals: `name` is how accessors find it; `fl` E2B_OPTF_REQUIRED etc. */
#define E2B_OPT_ARG(name, fl, h) {E2B_OPT_ARG_, 0, name, NULL, h, fl, E2B_COMPLETE_NONE, NULL}
#define E2B_OPT_ARG_C(name, fl, h, c) {E2B_OPT_ARG_, 0, name, NULL, h, fl, c, NULL}
#define E2B_OPT_ARGS(name, fl, h) {E2B_OPT_ARGS_, 0, name, NULL, h, fl, E2B_COMPLETE_NONE, NULL}
#define E2B_OPT_ARGS_C(name, fl, h, c) {E2B_OPT_ARGS_, 0, name, NULL, h, fl, c, NULL}
#define E2B_OPT_END {E2B_OPT_END_, 0, NULL, NULL, NULL, 0, E2B_COMPLETE_NONE, NULL}

struct e2b_optval {
    bool set;
    const char *value; /* STRING/INT/ARG: last value (points into argv) */
    long long number;  /* INT */
    const char **list; /* LIST/ARGS: NULL-terminated, array owned */
    size_t count;
};

/* The result of parsing one command line against one or more tables. */
struct e2b_args {
    const struct e2b_opt **tables; /* NULL-terminated */
    size_t ntables;
    struct e2b_optval **vals;      /* vals[t][i] for tables[t][i] */
    bool help;                     /* -h/--help was given */
};

/* Parse argv[0..argc) (no program or command name in it) against the
 * tables (NULL-terminated; the first holds the positionals). On a usage
 * error sets E2B_ERR_USAGE naming the bad option. */
int e2b_args_parse(struct e2b_args *args, const struct e2b_opt *const *tables, int argc,
                   char **argv, struct e2b_error **err);
void e2b_args_release(struct e2b_args *args);

/* Lookups by long name (options) or positional name; missing -> false/NULL. */
bool e2b_args_flag(const struct e2b_args *args, const char *name);
bool e2b_args_has(const struct e2b_args *args, const char *name);
const char *e2b_args_str(const struct e2b_args *args, const char *name);
long long e2b_args_int(const struct e2b_args *args, const char *name, long long def);
/* LIST/ARGS values; *count may be NULL. Never NULL: empty list is {NULL}. */
const char *const *e2b_args_list(const struct e2b_args *args, const char *name, size_t *count);

/* "-t, --timeout SECONDS" / "    --json" / "<template>" / "[template]" / "<command>..." */
char *e2b_opt_label(const struct e2b_opt *o);
/* Synopsis fragment for positionals: "[template]" "<id> <command>..." */
char *e2b_opt_positionals(const struct e2b_opt *table);
/* Print an option table as help text ("  -t, --timeout SECONDS  help"). */
void e2b_opt_print_help(FILE *f, const struct e2b_opt *table, bool positionals);
/* Does an option take a value? */
static inline bool e2b_opt_takes_value(const struct e2b_opt *o)
{
    return o->type == E2B_OPT_STRING_ || o->type == E2B_OPT_INT_ || o->type == E2B_OPT_LIST_;
}
static inline bool e2b_opt_is_positional(const struct e2b_opt *o)
{
    return o->type == E2B_OPT_ARG_ || o->type == E2B_OPT_ARGS_;
}

#endif
