/* dockerfile-lex.c - Dockerfile lines, directives, continuations, heredocs; see dockerfile-lex.h. */
#include "dockerfile-lex.h"
#include "dockerfile-expand.h"
#include "json.h"
#include "strbuf.h"

#include <ctype.h>
#include <strings.h>

/* Grow an array that holds n elements so it can take one more: capacity
 * doubles (at 0 and each power of two), keeping appends linear. */
static void *grow(void *p, size_t n, size_t size)
{
    if (n && (n & (n - 1)))
        return p;
    return xrealloc(p, (n ? 2 * n : 1) * size);
}

static bool blank(char c) { return c == ' ' || c == '\t'; }
static bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

void e2b_df_words_free(struct e2b_df_word *w, size_t n)
{
    for (size_t i = 0; w && i < n; i++)
        free(w[i].text);
    free(w);
}

static void words_add(struct e2b_df_word **w, size_t *n, char *text, size_t off)
{
    *w = grow(*w, *n, sizeof(**w));
    (*w)[*n] = (struct e2b_df_word){text, off};
    (*n)++;
}

void e2b_df_logical_pos(const struct e2b_df_logical *l, size_t off, int *line, int *col)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n_segs; i++)
        if (l->segs[i].off <= off)
            k = i;
    if (!l->n_segs) {
        *line = l->line;
        *col = (int)off + 1;
        return;
    }
    *line = l->segs[k].line;
    *col = l->segs[k].col + (int)(off - l->segs[k].off);
}

void e2b_df_split_command(const char *line, size_t *cmd_off, size_t *cmd_len,
                          struct e2b_df_word **flags, size_t *n_flags, size_t *rest_off)
{
    size_t len = strlen(line), pos = 0;
    while (pos < len && space(line[pos]))
        pos++;
    *cmd_off = pos;
    while (pos < len && !space(line[pos]))
        pos++;
    *cmd_len = pos - *cmd_off;
    *flags = NULL;
    *n_flags = 0;

    /* --flags: words starting with "--" until the first other word */
    for (;;) {
        while (pos < len && space(line[pos]))
            pos++;
        if (pos + 1 >= len || line[pos] != '-' || line[pos + 1] != '-') {
            *rest_off = pos;
            return;
        }
        size_t start = pos;
        _cleanup_strbuf_ struct strbuf w = STRBUF_INIT;
        bool blank_ok = false;
        strbuf_init(&w);
        while (pos < len && !space(line[pos])) {
            char c = line[pos++];
            if (c == '\'' || c == '"') {
                char q = c;
                blank_ok = true;
                while (pos < len && line[pos] != q) {
                    c = line[pos++];
                    if (c == '\\') {
                        if (pos >= len)
                            break;
                        c = line[pos++];
                    }
                    strbuf_addch(&w, c);
                }
                if (pos < len)
                    pos++; /* closing quote */
                continue;
            }
            if (c == '\\') {
                if (pos >= len)
                    continue;
                c = line[pos++];
            }
            strbuf_addch(&w, c);
        }
        if (!strcmp(w.buf, "--")) {
            *rest_off = pos;
            return;
        }
        if (blank_ok || w.len)
            words_add(flags, n_flags, strbuf_detach(&w, NULL), start);
    }
}

void e2b_df_quoted_words(const char *s, char escape, struct e2b_df_word **ret, size_t *n)
{
    size_t len = strlen(s), pos = 0;
    *ret = NULL;
    *n = 0;
    while (pos < len) {
        while (pos < len && space(s[pos]))
            pos++;
        if (pos >= len)
            break;
        size_t start = pos;
        _cleanup_strbuf_ struct strbuf w = STRBUF_INIT;
        bool blank_ok = false;
        char quote = 0;
        strbuf_init(&w);
        for (; pos < len; pos++) {
            char c = s[pos];
            if (!quote) {
                if (space(c))
                    break;
                if (c == '\'' || c == '"') {
                    quote = c;
                    blank_ok = true;
                } else if (c == escape) {
                    if (pos + 1 >= len)
                        continue; /* an escape at the end is dropped */
                    strbuf_addch(&w, c);
                    c = s[++pos];
                }
                strbuf_addch(&w, c);
                continue;
            }
            if (c == quote) {
                quote = 0;
            } else if (c == escape && quote != '\'') {
                if (pos + 1 >= len)
                    continue;
                strbuf_addch(&w, c);
                c = s[++pos];
            }
            strbuf_addch(&w, c);
        }
        if (blank_ok || w.len)
            words_add(ret, n, strbuf_detach(&w, NULL), start);
    }
}

void e2b_df_fields(const char *s, struct e2b_df_word **ret, size_t *n)
{
    size_t len = strlen(s), pos = 0;
    *ret = NULL;
    *n = 0;
    while (pos < len) {
        while (pos < len && space(s[pos]))
            pos++;
        if (pos >= len)
            break;
        size_t start = pos;
        while (pos < len && !space(s[pos]))
            pos++;
        words_add(ret, n, xstrndup(s + start, pos - start), start);
    }
}

int e2b_df_json_array(const char *s, char ***ret)
{
    while (space(*s))
        s++;
    if (*s != '[')
        return -1;
    json_error_t e;
    /* Like Docker's decoder: one value, anything after it is ignored. */
    json_t *j = json_loads(s, JSON_DISABLE_EOF_CHECK, &e);
    if (!j)
        return -1;
    char **v = e2b_json_to_strv(j);
    json_decref(j);
    if (!v)
        return -1;
    *ret = v;
    return 0;
}

bool e2b_df_heredoc_marker(const char *word, struct e2b_df_raw_heredoc *ret)
{
    const char *p = word;
    long fd = -1;
    if (isdigit((unsigned char)*p)) {
        fd = 0;
        while (isdigit((unsigned char)*p)) {
            if (fd < 1000000)
                fd = fd * 10 + (*p - '0');
            p++;
        }
    }
    if (p[0] != '<' || p[1] != '<')
        return false;
    p += 2;
    bool strip = *p == '-';
    if (strip)
        p++;
    if (!*p || strchr(p, '<'))
        return false;

    _cleanup_free_ char *name = NULL, *raw = NULL;
    _cleanup_error_ struct e2b_error *e = NULL;
    _cleanup_strv_ char **parts = NULL;
    if (e2b_df_expand_words(p, '\\', NULL, NULL, &parts, &e) < 0 || e2b_strv_len(parts) != 1 ||
        e2b_df_expand_word(p, '\\', 0, NULL, NULL, &name, &e) < 0 ||
        e2b_df_expand_word(p, '\\', E2B_DF_EXPAND_KEEP_QUOTES, NULL, NULL, &raw, &e) < 0 || !name[0])
        return false;
    *ret = (struct e2b_df_raw_heredoc){
        .quoted = strcmp(name, raw) != 0,
        .strip_tabs = strip,
        .fd = (int)fd,
    };
    ret->name = TAKE_PTR(name);
    return true;
}

/* --- lines --------------------------------------------------------------- */

struct line {
    const char *s;
    size_t len;
};

/* "# key = value" with a known key; *known false for other comments. */
static bool directive(const char *s, size_t len, char **key, char **value)
{
    size_t i = 1, ks, ke, vs, ve;
    if (!len || s[0] != '#')
        return false;
    while (i < len && space(s[i]))
        i++;
    ks = i;
    if (i >= len || !isalpha((unsigned char)s[i]))
        return false;
    while (i < len && isalnum((unsigned char)s[i]))
        i++;
    ke = i;
    while (i < len && space(s[i]))
        i++;
    if (i >= len || s[i] != '=')
        return false;
    i++;
    while (i < len && space(s[i]))
        i++;
    vs = i;
    ve = len;
    while (ve > vs && space(s[ve - 1]))
        ve--;
    if (ve == vs)
        return false;
    *key = xstrndup(s + ks, ke - ks);
    for (char *c = *key; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    *value = xstrndup(s + vs, ve - vs);
    return true;
}

/* Does the line end in the escape character and blanks? Returns the length
 * without them, or -1. */
static ssize_t continuation(const char *s, size_t len, char esc)
{
    while (len && blank(s[len - 1]))
        len--;
    if (len && s[len - 1] == esc)
        return (ssize_t)(len - 1);
    return -1;
}

static bool is_comment(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && space(s[i]))
        i++;
    return i < len && s[i] == '#';
}

static bool is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!space(s[i]))
            return false;
    return true;
}

static void logical_release(struct e2b_df_logical *l)
{
    free(l->text);
    free(l->segs);
    for (size_t i = 0; i < l->n_heredocs; i++) {
        free(l->heredocs[i].name);
        free(l->heredocs[i].content);
    }
    free(l->heredocs);
}

void e2b_df_lexed_release(struct e2b_df_lexed *lx)
{
    for (size_t i = 0; i < lx->n_lines; i++)
        logical_release(&lx->lines[i]);
    free(lx->lines);
    free(lx->syntax);
    free(lx->check);
    memset(lx, 0, sizeof(*lx));
}

/* RUN/COPY/ADD not in JSON form may carry heredocs. */
static bool may_have_heredocs(const char *text)
{
    size_t cmd_off, cmd_len, nf, rest;
    struct e2b_df_word *flags = NULL;
    _cleanup_strv_ char **arr = NULL;
    bool ok;
    e2b_df_split_command(text, &cmd_off, &cmd_len, &flags, &nf, &rest);
    e2b_df_words_free(flags, nf);
    ok = (cmd_len == 3 && (!strncasecmp(text + cmd_off, "run", 3) || !strncasecmp(text + cmd_off, "add", 3))) ||
         (cmd_len == 4 && !strncasecmp(text + cmd_off, "copy", 4));
    if (!ok || !strstr(text, "<<"))
        return false;
    return e2b_df_json_array(text + rest, &arr) < 0;
}

int e2b_df_lex(const char *name, const char *text, size_t len, struct e2b_df_lexed *ret,
               struct e2b_error **err)
{
    struct e2b_df_lexed lx = {.escape = '\\'};
    _cleanup_free_ struct line *lines = NULL;
    size_t n = 0, cap = 0;
    bool directives_done = false, seen_escape = false;

    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
        text += 3;
        len -= 3;
    }
    for (size_t i = 0, start = 0; i <= len; i++) {
        if (i < len && text[i] == '\0')
            return e2b_error_set(err, E2B_ERR_INVALID, "%s:%zu: NUL byte in the file", name, n + 1);
        if (i == len || text[i] == '\n') {
            if (i == len && start == len)
                break;
            size_t l = i - start;
            if (l && text[start + l - 1] == '\r')
                l--;
            if (n == cap)
                lines = xrealloc(lines, (cap = cap ? cap * 2 : 64) * sizeof(*lines));
            lines[n++] = (struct line){text + start, l};
            start = i + 1;
        }
    }

    for (size_t i = 0; i < n;) {
        const char *s = lines[i].s;
        size_t l = lines[i].len, lead = 0;
        int lineno = (int)++i;

        while (lead < l && space(s[lead]))
            lead++;
        if (!directives_done) {
            _cleanup_free_ char *key = NULL, *value = NULL;
            if (directive(s + lead, l - lead, &key, &value) &&
                (STREQ(key, "escape") || STREQ(key, "syntax") || STREQ(key, "check"))) {
                char **slot = STREQ(key, "syntax") ? &lx.syntax : STREQ(key, "check") ? &lx.check : NULL;
                if ((slot && *slot) || (!slot && seen_escape)) {
                    e2b_error_set(err, E2B_ERR_INVALID, "%s:%d: only one %s parser directive can be used",
                                  name, lineno, key);
                    goto fail;
                }
                if (slot) {
                    *slot = TAKE_PTR(value);
                } else {
                    if (strcmp(value, "\\") && strcmp(value, "`")) {
                        e2b_error_set(err, E2B_ERR_INVALID,
                                      "%s:%d: invalid escape token '%s' does not match ` or \\", name,
                                      lineno, value);
                        goto fail;
                    }
                    lx.escape = value[0];
                    seen_escape = true;
                }
                continue;
            }
            directives_done = true;
        }
        if (lead == l || s[lead] == '#')
            continue;

        /* an instruction: join its continuation lines */
        struct e2b_df_logical lg = {.line = lineno};
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        size_t nseg = 0;
        ssize_t c;
        strbuf_init(&sb);
        lg.segs = xmalloc(sizeof(*lg.segs));
        lg.segs[nseg++] = (struct e2b_df_seg){0, lineno, (int)lead + 1};
        c = continuation(s + lead, l - lead, lx.escape);
        strbuf_add(&sb, s + lead, c >= 0 ? (size_t)c : l - lead);
        lg.end_line = lineno;
        while (c >= 0 && i < n) {
            s = lines[i].s;
            l = lines[i].len;
            lineno = (int)++i;
            lg.end_line = lineno;
            if (is_comment(s, l) || is_blank(s, l))
                continue;
            lg.segs = grow(lg.segs, nseg, sizeof(*lg.segs));
            lg.segs[nseg++] = (struct e2b_df_seg){sb.len, lineno, 1};
            c = continuation(s, l, lx.escape);
            strbuf_add(&sb, s, c >= 0 ? (size_t)c : l);
        }
        strbuf_rtrim(&sb);
        lg.n_segs = nseg;
        if (!sb.len) { /* nothing but an escape */
            free(lg.segs);
            continue;
        }
        lg.text = strbuf_detach(&sb, NULL);

        /* heredoc bodies follow the instruction */
        if (may_have_heredocs(lg.text)) {
            struct e2b_df_word *w = NULL;
            size_t nw = 0;
            e2b_df_quoted_words(lg.text, '\\', &w, &nw);
            for (size_t k = 0; k < nw; k++) {
                struct e2b_df_raw_heredoc h;
                if (!e2b_df_heredoc_marker(w[k].text, &h))
                    continue;
                h.off = w[k].off;
                h.line = (int)i + 1;
                _cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
                bool done = false;
                strbuf_init(&body);
                while (i < n) {
                    const char *bs = lines[i].s;
                    size_t bl = lines[i].len;
                    i++;
                    if (h.strip_tabs)
                        while (bl && *bs == '\t')
                            bs++, bl--;
                    if (bl == strlen(h.name) && !memcmp(bs, h.name, bl)) {
                        done = true;
                        break;
                    }
                    strbuf_add(&body, bs, bl);
                    strbuf_addch(&body, '\n');
                }
                if (!done) {
                    int hl, hc;
                    e2b_df_logical_pos(&lg, h.off, &hl, &hc);
                    e2b_error_set(err, E2B_ERR_INVALID, "%s:%d:%d: unterminated heredoc '%s'", name, hl, hc,
                                  h.name);
                    free(h.name);
                    e2b_df_words_free(w, nw);
                    logical_release(&lg);
                    goto fail;
                }
                h.content = strbuf_detach(&body, NULL);
                lg.heredocs = grow(lg.heredocs, lg.n_heredocs, sizeof(*lg.heredocs));
                lg.heredocs[lg.n_heredocs++] = h;
            }
            e2b_df_words_free(w, nw);
        }
        lx.lines = grow(lx.lines, lx.n_lines, sizeof(*lx.lines));
        lx.lines[lx.n_lines++] = lg;
    }
    *ret = lx;
    return 0;

fail:
    e2b_df_lexed_release(&lx);
    return -1;
}
