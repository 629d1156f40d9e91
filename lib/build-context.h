/* build-context.h - a template build's context directory and its .dockerignore.
 *
 * Patterns follow Docker's rules: one per line, `#` comments, blank lines
 * skipped, leading `/` and `./` dropped, `*` and `?` within one path
 * component, `**` across components, `[...]` classes, `!` re-includes.
 * The last matching pattern decides; a pattern that matches a directory
 * excludes everything below it.
 */
#ifndef E2B_BUILD_CONTEXT_H
#define E2B_BUILD_CONTEXT_H

#include <stdbool.h>
#include "error.h"

struct e2b_ignore {
    char **patterns;  /* cleaned patterns without the `!` */
    bool *negate;
    size_t n;
};

/* Parse .dockerignore text (NUL-terminated). */
void e2b_ignore_parse(struct e2b_ignore *ig, const char *text);
/* Read <dir>/.dockerignore; no file means no patterns. */
int e2b_ignore_load(struct e2b_ignore *ig, const char *dir, struct e2b_error **err);
void e2b_ignore_free(struct e2b_ignore *ig);

/* Is the context-relative path (no leading `/`) excluded? */
bool e2b_ignore_match(const struct e2b_ignore *ig, const char *relpath);

/* Could an exception (`!pattern`) re-include something below the excluded
 * directory dir? (Conservative: true unless no exception can reach it.)
 * Docker walks into such a directory and copies only what is re-included. */
bool e2b_ignore_may_include_below(const struct e2b_ignore *ig, const char *dir);

/* One glob against one whole string (`*` stops at `/`, `**` does not). */
bool e2b_glob_match(const char *pattern, const char *s);

/* Resolve a source path given in COPY/ADD inside the context: refuses
 * `..` escapes and absolute paths leaving it. Returns the cleaned relative
 * path ("." for the context itself); caller frees. */
char *e2b_context_clean(const char *src, struct e2b_error **err);

#endif
