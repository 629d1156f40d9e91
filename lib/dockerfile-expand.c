/* dockerfile-expand.c - Dockerfile variable substitution; rules in dockerfile-expand.h. */
#include "dockerfile-expand.h"
#include "strbuf.h"

#include <ctype.h>

struct words {
    struct strbuf cur;
    bool in_word;
    char **v;
    size_t n;
};

struct lexer {
    const char *s;
    size_t len, pos;
    char esc;
    unsigned flags;
    e2b_df_lookup_fn lookup;
    void *ud;
    unsigned depth; /* ${...} nesting, bounded so hostile input cannot exhaust the stack */
};

#define MAX_DEPTH 64
/* Bounds a hostile Dockerfile (one sent to `e2b serve`, say) cannot pass:
 * ${v//x/yyyy} multiplies a value's length, so a few ENV lines grow one
 * without end, and matching a pattern costs the square of the value's
 * length. Real values (paths, versions, flags) are far below both. */
#define PATTERN_VALUE_MAX (16 * 1024)
#define WORD_MAX (1024 * 1024)

static int pattern_value_check(size_t len, struct e2b_error **err)
{
    if (len > PATTERN_VALUE_MAX)
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "pattern substitution on a value of %zu bytes (at most %d KiB)", len,
                             PATTERN_VALUE_MAX / 1024);
    return 0;
}

static int word_size_check(size_t len, struct e2b_error **err)
{
    if (len > WORD_MAX)
        return e2b_error_set(err, E2B_ERR_INVALID, "an expanded word is longer than %d MiB",
                             WORD_MAX >> 20);
    return 0;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static void words_push(struct words *w)
{
    if (w->cur.len) {
        w->v = xrealloc(w->v, (w->n + 2) * sizeof(*w->v));
        w->v[w->n++] = strbuf_detach(&w->cur, NULL);
        w->v[w->n] = NULL;
    }
    w->in_word = false;
}

/* A character that may split words (unquoted text, expanded values). */
static void words_char(struct words *w, char c)
{
    if (!w)
        return;
    if (is_space(c)) {
        if (w->in_word && w->cur.len)
            words_push(w);
        return;
    }
    strbuf_addch(&w->cur, c);
    w->in_word = true;
}

static void words_raw(struct words *w, const char *s, size_t n)
{
    if (!w)
        return;
    strbuf_add(&w->cur, s, n);
    w->in_word = true;
}

/* --- globs ------------------------------------------------------------- */

enum { G_LIT, G_ANY, G_STAR };
struct gtok {
    unsigned char type;
    char c;
};

static int glob_compile(const char *p, size_t plen, struct gtok **ret, size_t *n,
                        struct e2b_error **err)
{
    _cleanup_free_ struct gtok *t = xmalloc((plen + 1) * sizeof(*t));
    size_t k = 0;
    for (size_t i = 0; i < plen; i++) {
        char c = p[i];
        if (c == '*') {
            if (k == 0 || t[k - 1].type != G_STAR) /* ** is * */
                t[k++] = (struct gtok){G_STAR, 0};
            continue;
        }
        if (c == '?') {
            t[k++] = (struct gtok){G_ANY, 0};
            continue;
        }
        if (c == '\\') {
            if (i + 1 < plen && (p[i + 1] == '}' || p[i + 1] == '/'))
                continue; /* the escape protected ${} syntax; not part of the pattern */
            if (i + 1 >= plen || (p[i + 1] != '*' && p[i + 1] != '?' && p[i + 1] != '\\'))
                return e2b_error_set(err, E2B_ERR_INVALID, "invalid pattern '%.*s': invalid escape '\\%s'",
                                     (int)plen, p, i + 1 < plen ? (char[]){p[i + 1], 0} : "");
            c = p[++i];
        }
        t[k++] = (struct gtok){G_LIT, c};
    }
    *ret = TAKE_PTR(t);
    *n = k;
    return 0;
}

/* Mark ends[k] for every k such that s[0..k) matches the whole pattern. An
 * NFA walk over the pattern positions: O(len * ntok). */
static void glob_prefix_ends(const struct gtok *t, size_t n, const char *s, size_t len, bool *ends)
{
    _cleanup_free_ bool *cur = xcalloc(n + 1, sizeof(bool));
    _cleanup_free_ bool *next = xcalloc(n + 1, sizeof(bool));
    bool any = true;

    cur[0] = true;
    for (size_t k = 0;; k++) {
        /* epsilon: a star may match nothing */
        for (size_t p = 0; p < n; p++)
            if (cur[p] && t[p].type == G_STAR)
                cur[p + 1] = true;
        ends[k] = cur[n];
        if (k == len || !any)
            break;
        memset(next, 0, (n + 1) * sizeof(bool));
        any = false;
        for (size_t p = 0; p < n; p++) {
            if (!cur[p])
                continue;
            if (t[p].type == G_STAR)
                next[p] = any = true;
            else if (t[p].type == G_ANY || t[p].c == s[k])
                next[p + 1] = any = true;
        }
        memcpy(cur, next, (n + 1) * sizeof(bool));
        if (!any) {
            for (size_t r = k + 1; r <= len; r++)
                ends[r] = false;
            break;
        }
    }
}

int e2b_df_glob_match(const char *pattern, const char *s, size_t len, struct e2b_error **err)
{
    _cleanup_free_ struct gtok *t = NULL;
    size_t n;
    if (glob_compile(pattern, strlen(pattern), &t, &n, err) < 0)
        return -1;
    _cleanup_free_ bool *ends = xcalloc(len + 1, sizeof(bool));
    glob_prefix_ends(t, n, s, len, ends);
    return ends[len] ? 1 : 0;
}

/* ${v#p} ${v##p} ${v%p} ${v%%p} */
static int trim_pattern(const char *value, const char *pat, bool suffix, bool greedy, char **ret,
                        struct e2b_error **err)
{
    size_t len = strlen(value), n;
    _cleanup_free_ struct gtok *t = NULL;
    if (pattern_value_check(len, err) < 0 || glob_compile(pat, strlen(pat), &t, &n, err) < 0)
        return -1;
    _cleanup_free_ bool *ends = xcalloc(len + 1, sizeof(bool));
    if (!suffix) {
        glob_prefix_ends(t, n, value, len, ends);
        for (size_t i = 0; i <= len; i++) {
            size_t k = greedy ? len - i : i;
            if (ends[k]) {
                *ret = xstrdup(value + k);
                return 0;
            }
        }
    } else {
        /* a suffix match is a prefix match of the reversed pattern on the reversed value */
        _cleanup_free_ char *rv = xmalloc(len + 1);
        for (size_t i = 0; i < len; i++)
            rv[i] = value[len - 1 - i];
        for (size_t i = 0; i < n / 2; i++) {
            struct gtok tmp = t[i];
            t[i] = t[n - 1 - i];
            t[n - 1 - i] = tmp;
        }
        glob_prefix_ends(t, n, rv, len, ends);
        for (size_t i = 0; i <= len; i++) {
            size_t k = greedy ? len - i : i; /* k = length of the suffix */
            if (ends[k]) {
                *ret = xstrndup(value, len - k);
                return 0;
            }
        }
    }
    *ret = xstrdup(value);
    return 0;
}

/* ${v/p/r} ${v//p/r}: leftmost, longest matches. */
static int replace_pattern(const char *value, const char *pat, const char *repl, bool all, char **ret,
                           struct e2b_error **err)
{
    size_t len = strlen(value), n;
    _cleanup_free_ struct gtok *t = NULL;
    _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
    if (pattern_value_check(len, err) < 0 || glob_compile(pat, strlen(pat), &t, &n, err) < 0)
        return -1;
    _cleanup_free_ bool *ends = xcalloc(len + 1, sizeof(bool));
    bool replaced = false, after_match = false;
    strbuf_init(&out);
    for (size_t i = 0; i <= len;) {
        ssize_t best = -1;
        if (!replaced || all) {
            glob_prefix_ends(t, n, value + i, len - i, ends);
            for (size_t k = len - i + 1; k-- > 0;)
                if (ends[k]) {
                    best = (ssize_t)k;
                    break;
                }
            if (best == 0 && after_match)
                best = -1; /* no empty match right after a match */
        }
        if (best >= 0) {
            strbuf_addstr(&out, repl);
            if (word_size_check(out.len, err) < 0)
                return -1;
            replaced = true;
            if (best > 0) {
                i += (size_t)best;
                after_match = true;
                continue;
            }
        }
        after_match = false;
        if (i < len)
            strbuf_addch(&out, value[i]);
        i++;
    }
    *ret = strbuf_detach(&out, NULL);
    return 0;
}

/* --- the lexer ---------------------------------------------------------- */

static int process(struct lexer *lx, int stop, bool raw_escapes, struct strbuf *out, struct words *w,
                   struct e2b_error **err);

static bool name_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

static char *read_name(struct lexer *lx)
{
    size_t start = lx->pos;
    if (lx->pos < lx->len && isdigit((unsigned char)lx->s[lx->pos])) {
        while (lx->pos < lx->len && isdigit((unsigned char)lx->s[lx->pos]))
            lx->pos++;
        return xstrndup(lx->s + start, lx->pos - start);
    }
    if (lx->pos < lx->len && strchr("@*#?-$!0", lx->s[lx->pos]) && lx->s[lx->pos]) {
        lx->pos++;
        return xstrndup(lx->s + start, 1);
    }
    while (lx->pos < lx->len && name_char(lx->s[lx->pos]))
        lx->pos++;
    return xstrndup(lx->s + start, lx->pos - start);
}

static const char *lookup(struct lexer *lx, const char *name)
{
    return lx->lookup ? lx->lookup(lx->ud, name) : NULL;
}

static int missing_brace(struct e2b_error **err)
{
    return e2b_error_set(err, E2B_ERR_INVALID, "syntax error: missing '}'");
}

/* Process up to `stop`, mapping running off the end to "missing '}'". */
static int process_in_braces(struct lexer *lx, int stop, bool raw, char **ret, struct e2b_error **err)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    _cleanup_error_ struct e2b_error *e = NULL;
    strbuf_init(&sb);
    if (process(lx, stop, raw, &sb, NULL, &e) < 0) {
        if (lx->pos >= lx->len)
            return stop == '/' ? e2b_error_set(err, E2B_ERR_INVALID, "syntax error: missing '/' in ${}")
                               : missing_brace(err);
        *err = TAKE_PTR(e);
        return -1;
    }
    *ret = strbuf_detach(&sb, NULL);
    return 0;
}

static int dollar_braces(struct lexer *lx, char **ret, struct e2b_error **err);

static int dollar(struct lexer *lx, char **ret, struct e2b_error **err)
{
    lx->depth++;
    int r = dollar_braces(lx, ret, err);
    lx->depth--;
    return r;
}

static int dollar_braces(struct lexer *lx, char **ret, struct e2b_error **err)
{
    lx->pos++; /* $ */
    if (lx->pos >= lx->len || lx->s[lx->pos] != '{') {
        _cleanup_free_ char *name = read_name(lx);
        const char *v;
        if (!name[0]) {
            *ret = xstrdup("$");
            return 0;
        }
        v = lookup(lx, name);
        *ret = xstrdup(v ? v : "");
        return 0;
    }
    lx->pos++; /* { */
    if (lx->pos >= lx->len)
        return missing_brace(err);
    if (lx->depth >= MAX_DEPTH)
        return e2b_error_set(err, E2B_ERR_INVALID, "substitutions nested more than %d deep", MAX_DEPTH);
    if (strchr("{}:", lx->s[lx->pos]))
        return e2b_error_set(err, E2B_ERR_INVALID, "syntax error: bad substitution");

    _cleanup_free_ char *name = read_name(lx);
    if (lx->pos >= lx->len)
        return missing_brace(err);
    char ch = lx->s[lx->pos++];
    bool null_is_unset = false;
    const char *value;

    if (ch == '}') {
        value = lookup(lx, name);
        *ret = xstrdup(value ? value : "");
        return 0;
    }
    if (ch == ':') {
        null_is_unset = true;
        if (lx->pos >= lx->len)
            return missing_brace(err);
        ch = lx->s[lx->pos++];
        if (ch != '-' && ch != '+' && ch != '?')
            return e2b_error_set(err, E2B_ERR_INVALID, "unsupported modifier (:%c) in substitution", ch);
    }
    if (ch == '-' || ch == '+' || ch == '?' || ch == '#' || ch == '%') {
        _cleanup_free_ char *word = NULL;
        if (process_in_braces(lx, '}', ch == '#' || ch == '%', &word, err) < 0)
            return -1;
        value = lookup(lx, name);
        bool set = value != NULL, empty = !value || !value[0];
        switch (ch) {
        case '-':
            *ret = xstrdup(!set || (null_is_unset && empty) ? word : value);
            return 0;
        case '+':
            *ret = xstrdup(!set || (null_is_unset && empty) ? "" : word);
            return 0;
        case '?':
            if (!set)
                return e2b_error_set(err, E2B_ERR_INVALID, "%s: %s", name,
                                     word[0] ? word : "is not allowed to be unset");
            if (null_is_unset && empty)
                return e2b_error_set(err, E2B_ERR_INVALID, "%s: %s", name,
                                     word[0] ? word : "is not allowed to be empty");
            *ret = xstrdup(value);
            return 0;
        default: {
            bool greedy = word[0] == ch;
            return trim_pattern(value ? value : "", word + (greedy ? 1 : 0), ch == '%', greedy, ret, err);
        }
        }
    }
    if (ch == '/') {
        bool all = lx->pos < lx->len && lx->s[lx->pos] == '/';
        _cleanup_free_ char *pat = NULL, *repl = NULL;
        if (all)
            lx->pos++;
        if (process_in_braces(lx, '/', true, &pat, err) < 0 ||
            process_in_braces(lx, '}', true, &repl, err) < 0)
            return -1;
        value = lookup(lx, name);
        return replace_pattern(value ? value : "", pat, repl, all, ret, err);
    }
    return e2b_error_set(err, E2B_ERR_INVALID, "unsupported modifier (%c) in substitution", ch);
}

static int single_quote(struct lexer *lx, struct strbuf *out, struct e2b_error **err)
{
    lx->pos++;
    while (lx->pos < lx->len) {
        char c = lx->s[lx->pos++];
        if (c == '\'')
            return 0;
        strbuf_addch(out, c);
    }
    return e2b_error_set(err, E2B_ERR_INVALID,
                         "unexpected end of statement while looking for matching single-quote");
}

static int double_quote(struct lexer *lx, struct strbuf *out, struct e2b_error **err)
{
    lx->pos++;
    while (lx->pos < lx->len) {
        char c = lx->s[lx->pos];
        if (c == '"') {
            lx->pos++;
            return 0;
        }
        if (c == '$') {
            _cleanup_free_ char *v = NULL;
            if (dollar(lx, &v, err) < 0)
                return -1;
            strbuf_addstr(out, v);
            continue;
        }
        lx->pos++;
        if (c == lx->esc) {
            if (lx->pos >= lx->len)
                continue; /* dropped at the end of the word */
            char nx = lx->s[lx->pos];
            if (nx == '"' || nx == '$' || nx == lx->esc) {
                c = nx;
                lx->pos++;
            }
        }
        strbuf_addch(out, c);
    }
    return e2b_error_set(err, E2B_ERR_INVALID,
                         "unexpected end of statement while looking for matching double-quote");
}

static int process(struct lexer *lx, int stop, bool raw_escapes, struct strbuf *out, struct words *w,
                   struct e2b_error **err)
{
    bool quotes = !(lx->flags & E2B_DF_EXPAND_KEEP_QUOTES);
    while (lx->pos < lx->len) {
        char c = lx->s[lx->pos];
        if (stop >= 0 && c == (char)stop) {
            lx->pos++;
            return 0;
        }
        if (c == '$') {
            _cleanup_free_ char *v = NULL;
            if (dollar(lx, &v, err) < 0)
                return -1;
            strbuf_addstr(out, v);
            for (const char *p = v; *p; p++)
                words_char(w, *p);
            continue;
        }
        if (quotes && (c == '\'' || c == '"')) {
            size_t before = out->len;
            if ((c == '\'' ? single_quote(lx, out, err) : double_quote(lx, out, err)) < 0)
                return -1;
            words_raw(w, out->buf + before, out->len - before);
            continue;
        }
        lx->pos++;
        if (c == lx->esc) {
            if (raw_escapes) {
                strbuf_addch(out, c);
                words_raw(w, &c, 1);
            }
            if (lx->pos >= lx->len)
                break;
            c = lx->s[lx->pos++];
            words_raw(w, &c, 1);
        } else {
            words_char(w, c);
        }
        strbuf_addch(out, c);
    }
    if (stop >= 0)
        return e2b_error_set(err, E2B_ERR_INVALID, "unexpected end of statement while looking for matching %c",
                             stop);
    return 0;
}

static int run(const char *word, char escape, unsigned flags, e2b_df_lookup_fn fn, void *ud, char **ret,
               char ***ret_words, struct e2b_error **err)
{
    struct lexer lx = {.s = word, .len = strlen(word), .esc = escape, .flags = flags, .lookup = fn, .ud = ud};
    _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
    struct words w = {.cur = STRBUF_INIT};
    int r;

    strbuf_init(&out);
    strbuf_init(&w.cur);
    r = process(&lx, -1, false, &out, ret_words ? &w : NULL, err);
    if (r == 0)
        r = word_size_check(out.len + w.cur.len, err);
    if (r < 0) {
        strbuf_release(&w.cur);
        e2b_strv_free(w.v);
        return -1;
    }
    if (ret)
        *ret = strbuf_detach(&out, NULL);
    if (ret_words) {
        words_push(&w);
        if (!w.v)
            w.v = xcalloc(1, sizeof(char *));
        *ret_words = w.v;
    }
    strbuf_release(&w.cur);
    return 0;
}

int e2b_df_expand_word(const char *word, char escape, unsigned flags, e2b_df_lookup_fn lookup_fn,
                       void *userdata, char **ret, struct e2b_error **err)
{
    return run(word, escape, flags, lookup_fn, userdata, ret, NULL, err);
}

int e2b_df_expand_words(const char *word, char escape, e2b_df_lookup_fn lookup_fn, void *userdata,
                        char ***ret, struct e2b_error **err)
{
    return run(word, escape, 0, lookup_fn, userdata, NULL, ret, err);
}
