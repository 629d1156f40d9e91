/* guest-main.c - the static guest binary: busybox-style applets.
 *
 * The applet is the first argument when it names one (`envd init ...`),
 * else basename(argv[0]) (`envd`, or `init` through a link of that name).
 */
#include "envd-ci.h"
#include "envd-init.h"
#include "envd-server.h"

#include <libgen.h>

struct applet {
    const char *name;
    int (*main)(int argc, char **argv);
};

static const struct applet applets[] = {
    {"envd", e2b_envd_main},
    {"init", e2b_init_main},
    {"code-interpreter", e2b_ci_main},
};

static const struct applet *find(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(applets); i++)
        if (STREQ(applets[i].name, name))
            return &applets[i];
    return NULL;
}

int main(int argc, char **argv)
{
    _cleanup_free_ char *self = xstrdup(argc > 0 && argv[0] ? argv[0] : "envd");
    const char *name = basename(self);
    if (name[0] == '-')
        name++; /* login-shell style */
    /* An applet named as the first argument wins (`envd init ...`): envd's
     * own arguments are all options, so this never takes one of them. */
    const struct applet *a = argc > 1 ? find(argv[1]) : NULL;
    if (a)
        return a->main(argc - 1, argv + 1);
    if ((a = find(name)))
        return a->main(argc, argv);
    fprintf(stderr, "%s: unknown applet; usage: envd [options] (or: %s envd [options])\n", name, name);
    return 2;
}
