/* build-src.h - where a build step's files come from: the build context
 * (with its .dockerignore) or, with --from, another stage or an image.
 * The stage driver (build.c) knows the stages and images and answers;
 * COPY/ADD (build-add.c) and RUN --mount (build-run.c) ask. */
#ifndef E2B_BUILD_SRC_H
#define E2B_BUILD_SRC_H

#include "build-context.h"

struct e2b_build_src {
    int ctx_fd;                       /* the build context, O_PATH: context paths resolve in it */
    const struct e2b_ignore *ignore;  /* the context's .dockerignore */
    /* The root of stage `stage` (>= 0) or else of image `name`, and the key
     * that names its content (for the step's key). what: "COPY" or "ADD"
     * when the stage must be built already, else NULL. */
    int (*from)(void *ud, int stage, const char *name, const char *what, const char **ret_root,
                const char **ret_key, struct e2b_error **err);
    void (*progress)(void *ud, const char *line); /* may be NULL */
    void *ud;
};

#endif
