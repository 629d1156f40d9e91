/* guest-main.c - the static guest binary: busybox-style applets.
 *
 * The applet is basename(argv[0]) (`envd`, later `init`); when argv[0] is
 * not an applet name, the first argument names it (`build/e2b-guest envd ...`).
 */
#include "envd-server.h"

#include <libgen.h>

struct applet {
    const char *name;
    int (*main)(int argc, char **argv);
};

static const struct applet applets[] = {
    {"envd", e2b_envd_main},
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
    const struct applet *a = find(name);
    if (a)
        return a->main(argc, argv);
    if (argc > 1 && (a = find(argv[1])))
        return a->main(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown applet; usage: envd [options] (or: %s envd [options])\n", name, name);
    return 2;
}
