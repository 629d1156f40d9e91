/* resp.c - see resp.h */
#include "resp.h"
#include "util.h"

#include <limits.h>
#include <string.h>

void e2b_resp_free(struct e2b_resp *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        e2b_resp_free(r->elems[i]);
    free(r->elems);
    free(r->str);
    free(r);
}

/* The line starting at buf (after the type byte): its length up to CR LF,
 * -1 incomplete, -2 malformed (a lone CR or LF, or too long). */
static long line_len(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\r') {
            if (i + 1 == len)
                return -1;
            return buf[i + 1] == '\n' ? (long)i : -2;
        }
        if (buf[i] == '\n')
            return -2;
        if (i >= E2B_RESP_MAX_LINE)
            return -2;
    }
    return len > E2B_RESP_MAX_LINE ? -2 : -1;
}

/* A signed decimal of at most 18 digits, the whole of s[0..n). */
static bool number(const char *s, size_t n, long long *ret)
{
    size_t i = 0;
    bool neg = false;
    if (n && s[0] == '-')
        neg = true, i = 1;
    if (i == n || n - i > 18)
        return false;
    long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *ret = neg ? -v : v;
    return true;
}

static long parse(const char *buf, size_t len, int depth, struct e2b_resp **ret)
{
    *ret = NULL;
    if (depth > E2B_RESP_MAX_DEPTH)
        return -1;
    if (len < 1)
        return 0;
    char type = buf[0];
    if (type == '\0' || !strchr("+-:$*", type))
        return -1;
    long ll = line_len(buf + 1, len - 1);
    if (ll == -1)
        return 0;
    if (ll < 0)
        return -1;
    const char *line = buf + 1;
    size_t used = 1 + (size_t)ll + 2;
    struct e2b_resp *r = xcalloc(1, sizeof(*r));
    long long n = 0;
    switch (type) {
    case '+':
    case '-':
        r->type = type == '+' ? E2B_RESP_STRING : E2B_RESP_ERROR;
        r->str = xstrndup(line, (size_t)ll);
        r->len = (size_t)ll;
        break;
    case ':':
        r->type = E2B_RESP_INT;
        if (!number(line, (size_t)ll, &r->integer))
            goto bad;
        break;
    case '$':
        if (!number(line, (size_t)ll, &n) || n < -1 || n > E2B_RESP_MAX_BULK)
            goto bad;
        if (n == -1) {
            r->type = E2B_RESP_NIL;
            break;
        }
        if (len - used < (size_t)n + 2) {
            e2b_resp_free(r);
            return 0;
        }
        if (buf[used + (size_t)n] != '\r' || buf[used + (size_t)n + 1] != '\n')
            goto bad;
        r->type = E2B_RESP_BULK;
        r->str = xmalloc((size_t)n + 1);
        memcpy(r->str, buf + used, (size_t)n);
        r->str[n] = '\0';
        r->len = (size_t)n;
        used += (size_t)n + 2;
        break;
    case '*':
        if (!number(line, (size_t)ll, &n) || n < -1 || n > E2B_RESP_MAX_ARRAY)
            goto bad;
        if (n == -1) {
            r->type = E2B_RESP_NIL;
            break;
        }
        r->type = E2B_RESP_ARRAY;
        /* every element takes at least 3 bytes (":0\r\n" is 4): a count the
         * buffer cannot hold yet is not allocated for yet */
        if ((size_t)n > (len - used) / 3) {
            e2b_resp_free(r);
            return 0;
        }
        r->elems = xcalloc(n ? (size_t)n : 1, sizeof(*r->elems));
        for (long long i = 0; i < n; i++) {
            long k = parse(buf + used, len - used, depth + 1, &r->elems[i]);
            if (k <= 0) {
                r->n = (size_t)i;
                e2b_resp_free(r);
                return k;
            }
            r->n = (size_t)i + 1;
            used += (size_t)k;
        }
        break;
    }
    if (used > LONG_MAX)
        goto bad;
    *ret = r;
    return (long)used;
bad:
    e2b_resp_free(r);
    return -1;
}

long e2b_resp_parse(const char *buf, size_t len, struct e2b_resp **ret)
{
    return parse(buf, len, 0, ret);
}

void e2b_resp_command(struct strbuf *out, size_t argc, const char *const *argv, const size_t *lens)
{
    strbuf_addf(out, "*%zu\r\n", argc);
    for (size_t i = 0; i < argc; i++) {
        size_t n = lens ? lens[i] : strlen(argv[i]);
        strbuf_addf(out, "$%zu\r\n", n);
        strbuf_add(out, argv[i], n);
        strbuf_add(out, "\r\n", 2);
    }
}

const char *e2b_resp_str(const struct e2b_resp *r)
{
    return r && (r->type == E2B_RESP_STRING || r->type == E2B_RESP_BULK) ? r->str : NULL;
}

const struct e2b_resp *e2b_resp_elem(const struct e2b_resp *r, size_t i)
{
    return r && r->type == E2B_RESP_ARRAY && i < r->n ? r->elems[i] : NULL;
}
