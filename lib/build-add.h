/* build-add.h - the COPY and ADD steps of template builds: where their
 * sources are (context files with wildcards and .dockerignore, another
 * stage or image with --from, heredocs, URLs, local tar archives that ADD
 * unpacks) and how they land in the step's root (--chown, --chmod,
 * --parents, --exclude). The file work itself is build-copy.h's. */
#ifndef E2B_BUILD_ADD_H
#define E2B_BUILD_ADD_H

#include "build-src.h"
#include "dockerfile.h"
#include "envd-crypto.h"

struct e2b_build_add_src;

/* The resolved sources of one COPY/ADD. */
struct e2b_build_add {
    struct e2b_build_add_src *v;
    size_t n;
};

/* Resolve the sources and hash what the step's result depends on into kc;
 * downloads and heredoc bodies are written into tmpdir. */
int e2b_build_add_sources(const struct e2b_build_src *src, const struct e2b_df_instr *in, const char *tmpdir,
                          struct e2b_build_add *ret, struct e2b_sha256 *kc, struct e2b_error **err);
/* Copy them into root (the step's merged root; relative destinations from workdir). */
int e2b_build_add_apply(const struct e2b_build_src *src, const struct e2b_df_instr *in, const char *workdir,
                        const char *root, const struct e2b_build_add *add, struct e2b_error **err);
void e2b_build_add_release(struct e2b_build_add *add);

#endif
