/* build-context.c - .dockerignore matching and context path checks. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "build-context.h"
#include "fsutil.h"
#include "util.h"

/* Lexically clean a path: drop `.` and empty components, fold `x/..`.
 * Leading `..` components stay (the caller decides). */
static char *clean_path(const char *p)
{
    size_t len = strlen(p);
    char *out = xmalloc(len + 2);
    size_t o = 0;
    const char *s = p;
    while (*s) {
        while (*s == '/')
            s++;
        if (!*s)
            break;
        const char *e = strchrnul(s, '/');
        size_t n = (size_t)(e - s);
        if (n == 1 && s[0] == '.') {
            /* skip */
        } else if (n == 2 && s[0] == '.' && s[1] == '.') {
            /* fold unless out is empty or ends in `..` */
            bool up = o >= 2 && out[o - 1] == '.' && out[o - 2] == '.' &&
                      (o == 2 || out[o - 3] == '/');
            if (o == 0 || up) {
                if (o)
                    out[o++] = '/';
                out[o++] = '.';
                out[o++] = '.';
            } else {
                while (o > 0 && out[o - 1] != '/')
                    o--;
                if (o > 0)
                    o--;
            }
        } else {
            if (o)
                out[o++] = '/';
            memcpy(out + o, s, n);
            o += n;
        }
        s = e;
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
    return out;
}

static bool class_match(const char **pp, char c)
{
    const char *p = *pp + 1;
    bool neg = false, hit = false;
    if (*p == '!' || *p == '^') {
        neg = true;
        p++;
    }
    bool first = true;
    while (*p && (first || *p != ']')) {
        first = false;
        char lo = *p;
        if (lo == '\\' && p[1])
            lo = *++p;
        char hi = lo;
        if (p[1] == '-' && p[2] && p[2] != ']') {
            hi = p[2];
            if (hi == '\\' && p[3])
                hi = p[3], p++;
            p += 2;
        }
        if (c >= lo && c <= hi)
            hit = true;
        p++;
    }
    if (*p == ']')
        p++;
    *pp = p;
    return hit != neg;
}

bool e2b_glob_match(const char *p, const char *s)
{
    while (*p) {
        if (p[0] == '*' && p[1] == '*') {
            const char *rest = p + 2;
            /* `**\/` also matches zero directories */
            if (*rest == '/') {
                if (e2b_glob_match(rest + 1, s))
                    return true;
            }
            for (const char *t = s;; t++) {
                if (e2b_glob_match(rest, t))
                    return true;
                if (!*t)
                    return false;
            }
        }
        if (*p == '*') {
            for (const char *t = s;; t++) {
                if (e2b_glob_match(p + 1, t))
                    return true;
                if (!*t || *t == '/')
                    return false;
            }
        }
        if (!*s)
            return false;
        if (*p == '?') {
            if (*s == '/')
                return false;
            p++;
        } else if (*p == '[') {
            if (*s == '/' || !class_match(&p, *s))
                return false;
        } else {
            if (*p == '\\' && p[1])
                p++;
            if (*p != *s)
                return false;
            p++;
        }
        s++;
    }
    return *s == '\0';
}

void e2b_ignore_parse(struct e2b_ignore *ig, const char *text)
{
    memset(ig, 0, sizeof(*ig));
    const char *s = text;
    while (*s) {
        const char *e = strchrnul(s, '\n');
        char *line = xstrndup(s, (size_t)(e - s));
        s = *e ? e + 1 : e;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        char *l = line;
        while (*l == ' ' || *l == '\t')
            l++;
        if (!*l || *l == '#') {
            free(line);
            continue;
        }
        bool neg = false;
        if (*l == '!') {
            neg = true;
            l++;
            while (*l == ' ' || *l == '\t')
                l++;
        }
        char *c = clean_path(l);
        free(line);
        if (strcmp(c, ".") == 0) {
            free(c);
            continue;
        }
        ig->patterns = xrealloc(ig->patterns, (ig->n + 1) * sizeof(char *));
        ig->negate = xrealloc(ig->negate, (ig->n + 1) * sizeof(bool));
        ig->patterns[ig->n] = c;
        ig->negate[ig->n] = neg;
        ig->n++;
    }
}

int e2b_ignore_load(struct e2b_ignore *ig, const char *dir, struct e2b_error **err)
{
    _cleanup_free_ char *path = e2b_path_join(dir, ".dockerignore");
    _cleanup_free_ char *text = NULL;
    size_t len;
    memset(ig, 0, sizeof(*ig));
    if (access(path, F_OK) < 0)
        return 0;
    if (e2b_read_file(path, &text, &len, err) < 0)
        return e2b_error_wrap(err, ".dockerignore");
    e2b_ignore_parse(ig, text);
    return 0;
}

void e2b_ignore_free(struct e2b_ignore *ig)
{
    for (size_t i = 0; i < ig->n; i++)
        free(ig->patterns[i]);
    free(ig->patterns);
    free(ig->negate);
    memset(ig, 0, sizeof(*ig));
}

/* Does the pattern match the path or one of its parent directories? */
static bool pattern_hits(const char *pat, const char *path)
{
    if (e2b_glob_match(pat, path))
        return true;
    size_t n = strlen(path);
    char *buf = xstrdup(path);
    bool hit = false;
    for (size_t i = n; i-- > 0;) {
        if (buf[i] == '/') {
            buf[i] = '\0';
            if (e2b_glob_match(pat, buf)) {
                hit = true;
                break;
            }
        }
    }
    free(buf);
    return hit;
}

bool e2b_ignore_match(const struct e2b_ignore *ig, const char *relpath)
{
    _cleanup_free_ char *p = clean_path(relpath);
    bool excluded = false;
    for (size_t i = 0; i < ig->n; i++) {
        if (ig->negate[i] == excluded && pattern_hits(ig->patterns[i], p))
            excluded = !ig->negate[i];
    }
    return excluded;
}

bool e2b_ignore_may_include_below(const struct e2b_ignore *ig, const char *dir)
{
    _cleanup_free_ char *d = clean_path(dir);
    size_t dl = strlen(d);
    for (size_t i = 0; i < ig->n; i++) {
        if (!ig->negate[i])
            continue;
        /* the pattern's literal start, up to its first wildcard */
        const char *p = ig->patterns[i];
        size_t pl = strlen(p), lit = strcspn(p, "*?[\\");
        /* below dir ("dir/x"), or dir itself inside it ("di" for "di/r") */
        if (pl > dl && !strncmp(p, d, dl) && p[dl] == '/')
            return true;
        if (pl <= dl && !strncmp(d, p, pl) && (d[pl] == '/' || !d[pl]))
            return true;
        /* a wildcard after a literal start that dir may still continue */
        if (lit < pl && (lit <= dl ? !strncmp(p, d, lit) : !strncmp(p, d, dl) && p[dl] == '/'))
            return true;
    }
    return false;
}

char *e2b_context_clean(const char *src, struct e2b_error **err)
{
    char *c = clean_path(src);
    if (strcmp(c, "..") == 0 || e2b_str_has_prefix(c, "../")) {
        free(c);
        e2b_error_set(err, E2B_ERR_PERMISSION, "%s: outside the build context", src);
        return NULL;
    }
    return c;
}
