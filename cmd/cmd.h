/* cmd.h - the command table and what every command handler receives.
 *
 * To add a command: write `int cmd_<id>(struct e2b_ctx *, struct e2b_args *)`
 * and `const struct e2b_opt opts_<id>[]` in a cmd/ file, add one CMD() line
 * to commands.def, and a man/e2b-<group>-<verb>.1.scd page. Help, man
 * SYNOPSIS/OPTIONS and shell completion all come from the table.
 */
#ifndef E2B_CMD_H
#define E2B_CMD_H

#include "error.h"
#include "opt.h"

struct e2b_ctx {
    const char *prog;                   /* "e2b" */
    const struct e2b_command *cmd;      /* the command being run */
    bool json;                          /* --json or --format json */
    bool quiet;
    int verbose;
    const char *api_url;                /* --api-url */
    const char *api_key;                /* --api-key */
};

typedef int e2b_cmd_fn(struct e2b_ctx *ctx, struct e2b_args *args);

enum {
    E2B_CMD_HIDDEN = 1 << 0, /* not listed in help or completion */
    E2B_CMD_RAW = 1 << 1,    /* gets argv untouched: no global options parsed */
};

struct e2b_command {
    const char *group;    /* "sandbox", "sandbox files", NULL for top level */
    const char *name;     /* "create" */
    const char *alias;    /* "cr", several as "cr spawn sp", or NULL */
    e2b_cmd_fn *fn;
    const struct e2b_opt *opts;
    const char *summary;  /* one line, lowercase, no full stop */
    unsigned flags;
};

struct e2b_group {
    const char *name;     /* "sandbox" or "sandbox files" */
    const char *alias;    /* "sbx", or NULL */
    const char *summary;
};

#define CMD(id, group, name, alias, flags, summary)                                                \
    extern const struct e2b_opt opts_##id[];                                                       \
    int cmd_##id(struct e2b_ctx *ctx, struct e2b_args *args);
#define GROUP(name, alias, summary)
#include "commands.def"
#undef CMD
#undef GROUP

extern const struct e2b_command e2b_commands[];
extern const struct e2b_group e2b_groups[];
extern const struct e2b_opt e2b_global_opts[];

/* Is word the command's name or one of its aliases? */
bool e2b_command_matches(const struct e2b_command *c, const char *word);
/* "sandbox create" / "serve": the command's full name; caller frees. */
char *e2b_command_path(const struct e2b_command *c);
const struct e2b_group *e2b_group_find(const char *name_or_alias, const char *parent);

/* Print "e2b: <message>" for an error and return its exit code. */
int e2b_fail(struct e2b_error *err);
/* Print a usage error with a hint naming the help to read; returns 2. */
int e2b_usage_error(const char *hint_cmd, const char *fmt, ...) _printf_(2, 3);
/* Flush stdout: 0, or 1 when it cannot take the data (a full disk), said
 * once on stderr ("e2b: cannot write to stdout: ..."; nothing for a closed
 * pipe), here or when the command returns, not both. Commands that print as
 * they go (watch, logs -f) call it to stop instead of going on. */
int e2b_stdout_check(void);

void e2b_print_command_help(FILE *f, const struct e2b_command *c);
void e2b_print_group_help(FILE *f, const char *group);
void e2b_print_main_help(FILE *f);

#endif
