/* template-steps.h - E2B's template build steps and Dockerfiles, both ways.
 *
 * E2B's template SDK sends a build as TemplateBuildStartV2 (e2b-protocol.md
 * 2.3 and 7): a base (fromImage or fromTemplate) and steps
 * {type, args[], filesHash?, force?} of five types: RUN [cmd, user?], COPY
 * [src, dest, owner?, mode?] (the files come as a tar named by filesHash),
 * ENV [k, v, ...], WORKDIR [dir], USER [name]; every helper of the SDK
 * (aptInstall, pipInstall, npmInstall, gitClone, makeDir, remove, rename,
 * makeSymlink ...) is a RUN. E2B runs them as `user` in its home unless a
 * step says otherwise, and a USER step makes a missing account.
 *
 * e2b_steps_plan turns such a build into a Dockerfile for lib/build.c
 * (built with e2b_steps set, see build.h): `FROM image` (or
 * `e2b-template:NAME`), `USER user`, then each step as one or more
 * instructions, and for each instruction the step it belongs to ("base",
 * "1".., as E2B's build logs and errors name steps). A COPY's sources are
 * `<filesHash>/<src>` in a context whose <filesHash> directories hold the
 * uploaded files.
 *
 * e2b_steps_from_dockerfile goes the other way for `e2b template build`
 * against an API, the way E2B's CLI does it (Template.fromDockerfile):
 * `USER root` and `WORKDIR /` first, one COPY step per source, ARG as ENV,
 * then `USER user` / `WORKDIR /home/user` unless the Dockerfile set them.
 *
 * e2b_files_hash is the SDK's filesHash of a COPY (calculateFilesHash):
 * sha256 over "COPY <src> <dest>" and, for each matching path in path
 * order (a directory brings everything below it), its relative path, its
 * st_mode and st_size in decimal, and a file's bytes or a link's target.
 */
#ifndef E2B_TEMPLATE_STEPS_H
#define E2B_TEMPLATE_STEPS_H

#include "build-context.h"
#include "json.h"

struct e2b_steps_plan {
    char *dockerfile; /* the Dockerfile */
    char **labels;    /* per instruction (0: FROM): the step it belongs to */
    char **texts;     /* per instruction: what the log shows as it starts, or NULL */
    size_t n_labels;
    char **copies;       /* per COPY step: "<n>\t<filesHash>\t<src>\t<dest>", NULL-ended */
    size_t force_from;   /* 1-based instruction from which the cache is skipped; 0: none */
    size_t n_steps;      /* E2B steps */
    char *from_template; /* fromTemplate, or NULL */
};

/* The plan for a TemplateBuildStartV2 body. Bad input: E2B_ERR_INVALID
 * naming the step ("step 3 (RUN): ..."); an unknown step type is one. */
int e2b_steps_plan(const json_t *start, struct e2b_steps_plan *ret, struct e2b_error **err);
void e2b_steps_plan_free(struct e2b_steps_plan *p);

/* A TemplateBuildStartV2 body {fromImage, steps, startCmd?, readyCmd?,
 * force} from a one-stage Dockerfile. ignored: instructions an E2B build
 * has no use for (CMD, EXPOSE ...), one "NAME (line N)" string each. */
int e2b_steps_from_dockerfile(const char *path, const char *const *build_args, size_t n_build_args,
                              json_t **ret, char ***ret_ignored, struct e2b_error **err);

/* The SDK's filesHash of `COPY src dest` over context (hex into out), and
 * the context-relative paths it covers in order (NULL-ended, for the tar;
 * may be NULL). ig: .dockerignore patterns, or NULL. No match: E2B_ERR_NOT_FOUND.
 * has_dirs: whether a directory is among them (a tar does not carry a
 * directory's size, so a tree unpacked elsewhere may hash differently). */
int e2b_files_hash(const char *context, const char *src, const char *dest,
                   const struct e2b_ignore *ig, char out[65], char ***ret_paths, bool *has_dirs,
                   struct e2b_error **err);

#endif
