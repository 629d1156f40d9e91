/* json.c - see json.h */
#include "json.h"
#include "fsutil.h"
#include "strbuf.h"

int e2b_json_load_file(const char *path, json_t **ret, struct e2b_error **err)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        if (access(path, R_OK) < 0)
            return e2b_error_sys(err, errno, "cannot read '%s'", path);
        return e2b_error_set(err, E2B_ERR_INVALID, "%s:%d:%d: bad JSON: %s", path, jerr.line,
                             jerr.column, jerr.text);
    }
    *ret = j;
    return 0;
}

int e2b_json_parse(const char *data, size_t len, const char *what, json_t **ret,
                   struct e2b_error **err)
{
    json_error_t jerr;
    json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!j)
        return e2b_error_set(err, E2B_ERR_INVALID, "%s: bad JSON at line %d column %d: %s",
                             what, jerr.line, jerr.column, jerr.text);
    *ret = j;
    return 0;
}

char *e2b_json_dump(const json_t *j, size_t flags)
{
    char *s = json_dumps(j, flags | JSON_ENCODE_ANY);
    if (!s)
        abort();
    return s;
}

int e2b_json_save_file(const char *path, const json_t *j, mode_t mode, struct e2b_error **err)
{
    _cleanup_free_ char *s = e2b_json_dump(j, JSON_INDENT(2));
    size_t n = strlen(s);
    s = xrealloc(s, n + 2);
    s[n] = '\n';
    s[n + 1] = '\0';
    return e2b_write_file_atomic(path, s, n + 1, mode, err);
}

/* Length of the valid UTF-8 sequence at p (1 to 4), 0 when there is none. */
static size_t utf8_seq(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range: no overlongs, surrogates, > U+10FFFF */
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    for (size_t i = 1; i < n; i++)
        if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xbf))
            return 0;
    return n;
}

json_t *e2b_json_string_lossy(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    struct strbuf b = STRBUF_INIT;
    strbuf_init(&b);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_seq(p);
        if (n) {
            strbuf_add(&b, p, n);
            p += n;
        } else {
            strbuf_add(&b, "\xef\xbf\xbd", 3);
            p++;
        }
    }
    j = json_string(b.buf ? b.buf : "");
    strbuf_release(&b);
    return j ? j : json_string("");
}

const char *e2b_json_str(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

long long e2b_json_int(const json_t *obj, const char *key, long long def)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v)) { /* proto3 JSON encodes int64 as strings */
        char *end;
        long long r = strtoll(json_string_value(v), &end, 10);
        if (*end == '\0')
            return r;
    }
    return def;
}

bool e2b_json_bool(const json_t *obj, const char *key, bool def)
{
    json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

json_t *e2b_json_strv(char *const *v)
{
    json_t *a = json_array();
    for (; v && *v; v++)
        json_array_append_new(a, json_string(*v));
    return a;
}

char **e2b_json_to_strv(const json_t *a)
{
    if (!json_is_array(a))
        return NULL;
    char **v = xcalloc(json_array_size(a) + 1, sizeof(char *));
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) {
        if (!json_is_string(x)) {
            e2b_strv_free(v);
            return NULL;
        }
        v[i] = xstrdup(json_string_value(x));
    }
    return v;
}
