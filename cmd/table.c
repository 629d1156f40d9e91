/* table.c - instantiates commands.def and the global options. */
#include "cmd.h"

const struct e2b_command e2b_commands[] = {
#define CMD(id, group, name, alias, flags, summary)                                                \
    {group, name, alias, cmd_##id, opts_##id, summary, flags},
#define GROUP(name, alias, summary)
#include "commands.def"
#undef CMD
#undef GROUP
    {NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct e2b_group e2b_groups[] = {
#define CMD(id, group, name, alias, flags, summary)
#define GROUP(name, alias, summary) {name, alias, summary},
#include "commands.def"
#undef CMD
#undef GROUP
    {NULL, NULL, NULL},
};

/* Accepted before the command and among its own options. */
const struct e2b_opt e2b_global_opts[] = {
    E2B_OPT_FLAG(0, "json", "print data as JSON"),
    E2B_OPT_CHOICE(0, "format", "FORMAT", "output format: pretty or json", "pretty,json"),
    E2B_OPT_FLAG('q', "quiet", "print only what scripts need, no progress"),
    E2B_OPT_FLAG('v', "verbose", "print more about what is happening"),
    E2B_OPT_STRING(0, "api-url", "URL", "E2B-compatible API to use (\"\" for this machine; default: local unless configured)"),
    E2B_OPT_STRING(0, "api-key", "KEY", "API key (default: E2B_API_KEY, then the stored one)"),
    E2B_OPT_END,
};

bool e2b_command_matches(const struct e2b_command *c, const char *word)
{
    if (STREQ(c->name, word))
        return true;
    size_t n = strlen(word);
    for (const char *a = c->alias; a && *a;) {
        size_t len = strcspn(a, " ");
        if (len == n && strncmp(a, word, n) == 0)
            return true;
        a += len;
        a += strspn(a, " ");
    }
    return false;
}

char *e2b_command_path(const struct e2b_command *c)
{
    return c->group ? xasprintf("%s %s", c->group, c->name) : xstrdup(c->name);
}

const struct e2b_group *e2b_group_find(const char *word, const char *parent)
{
    for (const struct e2b_group *g = e2b_groups; g->name; g++) {
        const char *sp = strrchr(g->name, ' ');
        const char *last = sp ? sp + 1 : g->name;
        size_t plen = sp ? (size_t)(sp - g->name) : 0;
        bool parent_ok = parent ? (plen == strlen(parent) && !strncmp(g->name, parent, plen))
                                : plen == 0;
        if (parent_ok && (STREQ(last, word) || (g->alias && STREQ(g->alias, word))))
            return g;
    }
    return NULL;
}
