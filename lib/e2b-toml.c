/* e2b-toml.c - the subset of TOML that e2b.toml uses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2b-toml.h"
#include "fsutil.h"
#include "strbuf.h"
#include "util.h"

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Parse a value at s; returns a new string (numbers as their text) or NULL. */
static char *parse_value(const char *s, bool *is_str, const char **end)
{
    *is_str = false;
    if (*s == '"') {
        struct strbuf b = STRBUF_INIT;
        s++;
        while (*s && *s != '"') {
            if (*s == '\\' && s[1]) {
                s++;
                switch (*s) {
                case 'n': strbuf_addch(&b, '\n'); break;
                case 't': strbuf_addch(&b, '\t'); break;
                case 'r': strbuf_addch(&b, '\r'); break;
                default: strbuf_addch(&b, *s); break;
                }
            } else {
                strbuf_addch(&b, *s);
            }
            s++;
        }
        if (*s != '"') {
            strbuf_release(&b);
            return NULL;
        }
        *end = s + 1;
        *is_str = true;
        return strbuf_detach(&b, NULL);
    }
    if (*s == '\'') {
        const char *e = strchr(s + 1, '\'');
        if (!e)
            return NULL;
        *end = e + 1;
        *is_str = true;
        return xstrndup(s + 1, (size_t)(e - s - 1));
    }
    const char *e = s;
    while (*e && *e != ' ' && *e != '\t' && *e != '#')
        e++;
    if (e == s)
        return NULL;
    *end = e;
    return xstrndup(s, (size_t)(e - s));
}

int e2b_toml_parse(struct e2b_toml *t, const char *text, struct e2b_error **err)
{
    memset(t, 0, sizeof(*t));
    const char *s = text;
    int lineno = 0;
    while (*s) {
        lineno++;
        const char *eol = strchrnul(s, '\n');
        _cleanup_free_ char *line = xstrndup(s, (size_t)(eol - s));
        s = *eol ? eol + 1 : eol;
        const char *p = skip_ws(line);
        if (!*p || *p == '#' || *p == '\r' || *p == '[')
            continue;
        const char *k = p;
        while (*p && *p != '=' && *p != ' ' && *p != '\t')
            p++;
        _cleanup_free_ char *key = xstrndup(k, (size_t)(p - k));
        p = skip_ws(p);
        if (*p != '=')
            return e2b_error_set(err, E2B_ERR_INVALID, "e2b.toml:%d: expected `key = value`", lineno);
        p = skip_ws(p + 1);
        bool is_str;
        const char *end;
        char *val = parse_value(p, &is_str, &end);
        if (!val)
            return e2b_error_set(err, E2B_ERR_INVALID, "e2b.toml:%d: bad value for %s", lineno, key);
        end = skip_ws(end);
        if (*end && *end != '#' && *end != '\r') {
            free(val);
            return e2b_error_set(err, E2B_ERR_INVALID, "e2b.toml:%d: junk after the value of %s",
                                 lineno, key);
        }
        char **slot = NULL;
        long *num = NULL;
        if (!strcmp(key, "template_id") || !strcmp(key, "id"))
            slot = &t->template_id;
        else if (!strcmp(key, "dockerfile"))
            slot = &t->dockerfile;
        else if (!strcmp(key, "template_name") || !strcmp(key, "name"))
            slot = &t->template_name;
        else if (!strcmp(key, "start_cmd"))
            slot = &t->start_cmd;
        else if (!strcmp(key, "ready_cmd"))
            slot = &t->ready_cmd;
        else if (!strcmp(key, "team_id"))
            slot = &t->team_id;
        else if (!strcmp(key, "runtime"))
            slot = &t->runtime;
        else if (!strcmp(key, "cpu_count"))
            num = &t->cpu_count;
        else if (!strcmp(key, "memory_mb"))
            num = &t->memory_mb;
        if (slot) {
            /* the new key wins over its old name, whatever the order */
            bool old = !strcmp(key, "id") || !strcmp(key, "name");
            if (!*slot || !old) {
                free(*slot);
                *slot = val;
            } else {
                free(val);
            }
        } else if (num) {
            char *e;
            errno = 0;
            long v = strtol(val, &e, 10);
            bool bad = is_str || *e || errno || v < 1;
            free(val);
            if (bad)
                return e2b_error_set(err, E2B_ERR_INVALID, "e2b.toml:%d: %s must be a positive integer",
                                     lineno, key);
            *num = v;
        } else {
            free(val);
        }
    }
    return 0;
}

int e2b_toml_load(struct e2b_toml *t, const char *path, bool optional, struct e2b_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    memset(t, 0, sizeof(*t));
    if (optional && access(path, F_OK) < 0 && errno == ENOENT)
        return 0;
    if (e2b_read_file(path, &text, &len, err) < 0)
        return -1;
    if (e2b_toml_parse(t, text, err) < 0) {
        e2b_toml_free(t);
        return e2b_error_wrap(err, "%s", path);
    }
    return 0;
}

void e2b_toml_free(struct e2b_toml *t)
{
    free(t->template_id);
    free(t->dockerfile);
    free(t->template_name);
    free(t->start_cmd);
    free(t->ready_cmd);
    free(t->runtime);
    free(t->team_id);
    memset(t, 0, sizeof(*t));
}

static void add_quoted(struct strbuf *b, const char *v)
{
    strbuf_addch(b, '"');
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            strbuf_addch(b, '\\');
        if (*v == '\n')
            strbuf_addstr(b, "\\n");
        else
            strbuf_addch(b, *v);
    }
    strbuf_addch(b, '"');
}

static bool line_has_key(const char *line, const char *key)
{
    const char *p = skip_ws(line);
    size_t n = strlen(key);
    if (strncmp(p, key, n) != 0)
        return false;
    p = skip_ws(p + n);
    return *p == '=';
}

int e2b_toml_set(const char *path, const char *key, const char *value, struct e2b_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (access(path, F_OK) == 0) {
        if (e2b_read_file(path, &text, &len, err) < 0)
            return -1;
    } else {
        text = xstrdup("# This is a config for E2B sandbox template.\n"
                       "# You can use template ID or template name to create a sandbox from it.\n\n");
    }
    const char *oldkey = !strcmp(key, "template_id") ? "id" : !strcmp(key, "template_name") ? "name" : NULL;
    struct strbuf out = STRBUF_INIT;
    bool done = false;
    const char *s = text;
    while (*s) {
        const char *eol = strchrnul(s, '\n');
        _cleanup_free_ char *line = xstrndup(s, (size_t)(eol - s));
        s = *eol ? eol + 1 : eol;
        if (line_has_key(line, key) || (oldkey && line_has_key(line, oldkey))) {
            if (done)
                continue;
            strbuf_addstr(&out, key);
            strbuf_addstr(&out, " = ");
            add_quoted(&out, value);
            strbuf_addch(&out, '\n');
            done = true;
            continue;
        }
        strbuf_addstr(&out, line);
        strbuf_addch(&out, '\n');
    }
    if (!done) {
        strbuf_addstr(&out, key);
        strbuf_addstr(&out, " = ");
        add_quoted(&out, value);
        strbuf_addch(&out, '\n');
    }
    int r = e2b_write_file_atomic(path, out.buf, out.len, 0644, err);
    strbuf_release(&out);
    return r;
}
