/* dockerfile-expand.h - Dockerfile variable substitution (the builder's shell-word rules).
 *
 * What Docker's builder does to the arguments of ADD COPY ENV EXPOSE FROM LABEL
 * STOPSIGNAL USER VOLUME WORKDIR (and ARG defaults, RUN --mount values, COPY
 * --chown/--chmod/--from): not a shell, a small word processor.
 *
 *   $NAME ${NAME}         value, "" when unset
 *   ${NAME:-w} ${NAME-w}  w when unset or empty / when unset
 *   ${NAME:+w} ${NAME+w}  w when set and non-empty / when set, else ""
 *   ${NAME:?m} ${NAME?m}  error "NAME: m" when unset or empty / when unset
 *   ${NAME#p} ${NAME##p}  remove the shortest / longest prefix matching glob p
 *   ${NAME%p} ${NAME%%p}  remove the shortest / longest suffix matching glob p
 *   ${NAME/p/r} ${NAME//p/r}  replace the first / every match of glob p by r
 *   w in the forms above is expanded itself (nesting works).
 *   Globs know * and ? (no [...]); \* \? \\ are literal, \} and \/ too.
 *
 *   'single quotes' keep everything literally; "double quotes" expand $ and
 *   let the escape character escape only " $ and itself; outside quotes the
 *   escape character makes the next character literal (\$ gives $) and is
 *   dropped at the end of the word. Quotes are removed from the result.
 *   A $ not followed by a name or { is literal ($ alone, "a$ b", "$/").
 *   $1 $12 (digits) and the special parameters $$ $@ $* $# $? $- $! $0 are
 *   looked up like names, and since none can be set they expand to "":
 *   `$$` is NOT an escape for a dollar sign (it is in Compose, not here);
 *   write \$ (or '$' in single quotes) for a literal dollar.
 *
 * Names are ASCII letters, digits and '_'.
 */
#ifndef E2B_DOCKERFILE_EXPAND_H
#define E2B_DOCKERFILE_EXPAND_H

#include "error.h"

/* Value of a variable, or NULL when it is not set. */
typedef const char *(*e2b_df_lookup_fn)(void *userdata, const char *name);

enum {
    /* Quotes are ordinary characters (heredoc bodies of COPY/ADD). */
    E2B_DF_EXPAND_KEEP_QUOTES = 1 << 0,
};

/* Expand one word into *ret (caller frees). `escape` is '\\' or '`'. Errors
 * carry no location: callers prefix "file:line:col". */
int e2b_df_expand_word(const char *word, char escape, unsigned flags, e2b_df_lookup_fn lookup,
                       void *userdata, char **ret, struct e2b_error **err);

/* Expand and split into words on unquoted whitespace, including whitespace
 * that came out of a variable's value (EXPOSE $PORTS). *ret is a NULL
 * terminated vector (strv, caller frees); empty words are dropped. */
int e2b_df_expand_words(const char *word, char escape, e2b_df_lookup_fn lookup, void *userdata,
                        char ***ret, struct e2b_error **err);

/* Whole-string glob match with Docker's pattern rules above; -1 on a bad
 * pattern (the message in *err), else 0/1. */
int e2b_df_glob_match(const char *pattern, const char *s, size_t len, struct e2b_error **err);

#endif
