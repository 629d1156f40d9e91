/* gitctx.h - git repositories as build contexts (libgit2).
 *
 * Forms, as Docker accepts them: `https://host/repo.git#ref:subdir`,
 * `file:///path/repo.git#ref`, `git@host:repo.git`, `git://...`, and a local
 * repository path with a `#ref[:subdir]` suffix. The ref is a branch, tag or
 * commit (default: the remote's HEAD); subdir must stay inside the checkout.
 */
#ifndef E2B_GITCTX_H
#define E2B_GITCTX_H

#include <stdbool.h>
#include "error.h"

struct e2b_git_spec {
    char *url;     /* what is cloned */
    char *ref;     /* NULL: default branch */
    char *subdir;  /* cleaned, "." for the top */
};

/* Does the context argument name a git repository rather than a directory? */
bool e2b_git_context_is(const char *arg);
int e2b_git_spec_parse(const char *arg, struct e2b_git_spec *spec, struct e2b_error **err);
void e2b_git_spec_free(struct e2b_git_spec *spec);

/* Clone spec into a new directory under tmpdir (checkout of the ref).
 * ret_checkout: the clone (remove it when done); ret_context: the context
 * dir inside it. */
int e2b_git_fetch_context(const struct e2b_git_spec *spec, const char *tmpdir,
                          char **ret_checkout, char **ret_context, struct e2b_error **err);

#endif
