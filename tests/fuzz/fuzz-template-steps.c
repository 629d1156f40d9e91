/* fuzz-template-steps.c - E2B's template build steps (the body of POST
 * /v2/templates/{id}/builds/{build}, outside input of `e2b serve`) made a
 * Dockerfile by e2b_steps_plan.
 *
 * Checked: a refusal says what was wrong (and names the step when a step
 * was); a plan's Dockerfile parses with the builder's own parser into one
 * stage whose instructions are exactly the plan's labels, FROM first and
 * labelled "base"; every COPY reads from <filesHash>/ inside the context
 * (no absolute path, no "..") and every RUN is the exec form the plan
 * wrote, so no step can become more (or other) instructions than it was.
 */
#include "dockerfile.h"
#include "fuzz.h"
#include "template-steps.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (!j)
        return 0;
    struct e2b_steps_plan p;
    struct e2b_error *err = NULL;
    if (e2b_steps_plan(j, &p, &err) < 0) {
        FUZZ_ASSERT(err && err->msg && *err->msg && err->code == E2B_ERR_INVALID);
        e2b_error_free(err);
        json_decref(j);
        return 0;
    }
    FUZZ_ASSERT(p.dockerfile && p.n_labels >= 2 && !strcmp(p.labels[0], "base"));
    struct e2b_dockerfile *df = NULL;
    struct e2b_build_args ba = { 0 };
    int r = e2b_dockerfile_parse("Dockerfile", p.dockerfile, strlen(p.dockerfile), &ba, &df, &err);
    if (r < 0)
        fprintf(stderr, "plan does not parse: %s\n%s", err->msg, p.dockerfile);
    FUZZ_ASSERT(r == 0);
    FUZZ_ASSERT(df->n_stages == 1 && df->stages[0].n_instrs == p.n_labels);
    for (size_t i = 0; i < df->stages[0].n_instrs; i++) {
        const struct e2b_df_instr *in = &df->stages[0].instrs[i];
        FUZZ_ASSERT((i == 0) == (in->kind == E2B_DF_FROM));
        if (in->kind == E2B_DF_RUN)
            FUZZ_ASSERT(in->json && in->n_args == 3 && !strcmp(in->args[0], "/bin/sh"));
        if (in->kind == E2B_DF_COPY) {
            FUZZ_ASSERT(in->n_args == 2 && in->args[0][0] != '/' && strlen(in->args[0]) > 65 &&
                        in->args[0][64] == '/');
            FUZZ_ASSERT(!strstr(in->args[0], "/../") &&
                        strcmp(in->args[0] + strlen(in->args[0]) - 3, "/.."));
        }
        FUZZ_ASSERT(in->kind == E2B_DF_FROM || in->kind == E2B_DF_RUN || in->kind == E2B_DF_COPY ||
                    in->kind == E2B_DF_ENV || in->kind == E2B_DF_WORKDIR ||
                    in->kind == E2B_DF_USER);
    }
    e2b_dockerfile_free(df);
    e2b_steps_plan_free(&p);
    json_decref(j);
    return 0;
}
