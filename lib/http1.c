/* http1.c - see http1.h */
#include "http1.h"

#include <ctype.h>
#include <strings.h>

/* RFC 9110 tchar: what a method or header name may be made of. */
static bool tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Field-value bytes: visible, space, tab, obs-text; never CR, LF, NUL. */
static bool vchar(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

char *e2b_http1_unescape(const char *s, size_t n, bool form)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_grow(&sb, n);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1, lo = hi >= 0 ? hexval(s[i + 2]) : -1;
            if (lo < 0 || (hi | lo) == 0) { /* "%zz", "%4" at the end, "%00" */
                strbuf_release(&sb);
                return NULL;
            }
            strbuf_addch(&sb, (char)(hi * 16 + lo));
            i += 2;
        } else {
            strbuf_addch(&sb, form && s[i] == '+' ? ' ' : s[i]);
        }
    }
    return strbuf_detach(&sb, NULL);
}

void e2b_http1_head_release(struct e2b_http1_head *h)
{
    free(h->target);
    free(h->path);
    free(h->query);
    free(h->reason);
    e2b_strv_free(h->headers);
    memset(h, 0, sizeof(*h));
}

/* Find the end of the head: 0 when not there yet, -431 when it is too long,
 * -400 for a bare CR or LF or a NUL; else the length up to CRLFCRLF. */
static long head_end(const char *buf, size_t len, size_t start)
{
    size_t lim = len < E2B_HTTP1_MAX_HEAD ? len : E2B_HTTP1_MAX_HEAD;
    for (size_t i = start; i < lim; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == 0)
            return -400;
        if (c == '\n' && (i == start || buf[i - 1] != '\r'))
            return -400;
        if (c == '\r' && i + 1 < len && buf[i + 1] != '\n')
            return -400;
        if (c == '\n' && i >= start + 3 && buf[i - 2] == '\n')
            return (long)(i + 1);
    }
    return len >= E2B_HTTP1_MAX_HEAD ? -431 : 0;
}

/* Header lines from p (after the start line) to end (the final CRLF). */
static int parse_headers(const char *p, const char *end, struct e2b_http1_head *h)
{
    size_t n = 0;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        if (++n > E2B_HTTP1_MAX_HEADERS)
            return -431;
        const char *colon = p;
        while (colon < eol && tchar((unsigned char)*colon))
            colon++;
        /* no name, a space before the colon, or obs-fold (a line starting with white space) */
        if (colon == p || colon == eol || *colon != ':')
            return -400;
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (const char *q = v; q < ve; q++)
            if (!vchar((unsigned char)*q))
                return -400;
        char *line = xasprintf("%.*s: %.*s", (int)(colon - p), p, (int)(ve - v), v);
        h->headers = e2b_strv_push(h->headers, line);
        free(line);
        p = eol + 2;
    }
    if (!h->headers)
        h->headers = xcalloc(1, sizeof(char *));
    return 0;
}

static int parse_version(const char *p, size_t n, int *minor)
{
    if (n != 8 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1'))
        return -400;
    *minor = p[7] - '0';
    return 0;
}

long e2b_http1_parse_request(const char *buf, size_t len, struct e2b_http1_head *h)
{
    memset(h, 0, sizeof(*h));
    size_t start = 0;
    while (start + 1 < len && buf[start] == '\r' && buf[start + 1] == '\n' && start < 8)
        start += 2;
    long end = head_end(buf, len, start);
    if (end <= 0)
        return end;
    const char *line = buf + start, *head_stop = buf + end - 2;
    const char *eol = memmem(line, (size_t)(head_stop - line), "\r\n", 2);
    const char *sp1 = memchr(line, ' ', (size_t)(eol - line));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    int r = -400;
    if (!sp1 || !sp2 || sp1 == line || (size_t)(sp1 - line) >= sizeof(h->method) || sp2 == sp1 + 1)
        goto fail;
    for (const char *q = line; q < sp1; q++)
        if (!tchar((unsigned char)*q))
            goto fail;
    if ((size_t)(sp2 - sp1 - 1) > E2B_HTTP1_MAX_TARGET) {
        r = -414;
        goto fail;
    }
    for (const char *q = sp1 + 1; q < sp2; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
            goto fail;
    if (parse_version(sp2 + 1, (size_t)(eol - sp2 - 1), &h->minor) < 0)
        goto fail;
    memcpy(h->method, line, (size_t)(sp1 - line));
    h->target = xstrndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    /* origin-form "/p?q", absolute-form "http://host/p?q" (kept as its
     * origin form, what the router passes on) or "*" */
    const char *t = h->target;
    if (e2b_str_has_prefix(t, "http://") || e2b_str_has_prefix(t, "https://")) {
        t = strstr(t, "://") + 3;
        t += strcspn(t, "/?");
        char *origin = xasprintf("%s%s", *t == '/' ? "" : "/", t);
        free(h->target);
        h->target = origin;
        t = origin;
    } else if (*t != '/' && !STREQ(t, "*")) {
        goto fail;
    }
    size_t plen = strcspn(t, "?");
    h->query = xstrdup(t[plen] ? t + plen + 1 : "");
    h->path = e2b_http1_unescape(t, plen, false);
    if (!h->path)
        goto fail; /* a bad escape, or "%00" that would cut the path short */
    if ((r = parse_headers(eol + 2, head_stop, h)) < 0)
        goto fail;
    h->len = (size_t)end;
    return end;
fail:
    e2b_http1_head_release(h);
    return r;
}

long e2b_http1_parse_response(const char *buf, size_t len, struct e2b_http1_head *h)
{
    memset(h, 0, sizeof(*h));
    long end = head_end(buf, len, 0);
    if (end <= 0)
        return end;
    const char *head_stop = buf + end - 2;
    const char *eol = memmem(buf, (size_t)(head_stop - buf), "\r\n", 2);
    int r = -400;
    /* HTTP/1.x SP 3DIGIT [SP reason] */
    if (eol - buf < 12 || parse_version(buf, 8, &h->minor) < 0 || buf[8] != ' ' ||
        !isdigit((unsigned char)buf[9]) || !isdigit((unsigned char)buf[10]) ||
        !isdigit((unsigned char)buf[11]) || (eol - buf > 12 && buf[12] != ' '))
        goto fail;
    h->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (h->status < 100)
        goto fail;
    const char *reason = eol - buf > 12 ? buf + 13 : eol;
    for (const char *q = reason; q < eol; q++)
        if (!vchar((unsigned char)*q))
            goto fail;
    h->reason = xstrndup(reason, (size_t)(eol - reason));
    if ((r = parse_headers(eol + 2, head_stop, h)) < 0)
        goto fail;
    h->len = (size_t)end;
    return end;
fail:
    e2b_http1_head_release(h);
    return r;
}

static bool name_is(const char *line, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

const char *e2b_http1_header(const struct e2b_http1_head *h, const char *name)
{
    for (char **l = h->headers; l && *l; l++)
        if (name_is(*l, name))
            return *l + strlen(name) + 2;
    return NULL;
}

/* Does the comma-separated list v contain token t? */
static bool list_has(const char *v, const char *t, size_t tn)
{
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        size_t n = strcspn(v, ",");
        size_t m = n;
        while (m && (v[m - 1] == ' ' || v[m - 1] == '\t'))
            m--;
        if (m == tn && strncasecmp(v, t, tn) == 0)
            return true;
        v += n;
    }
    return false;
}

bool e2b_http1_header_has_token(const struct e2b_http1_head *h, const char *name, const char *token)
{
    for (char **l = h->headers; l && *l; l++)
        if (name_is(*l, name) && list_has(*l + strlen(name) + 2, token, strlen(token)))
            return true;
    return false;
}

bool e2b_http1_hop_by_hop(const struct e2b_http1_head *h, const char *line)
{
    static const char *const always[] = {"Connection", "Keep-Alive", "Proxy-Connection",
                                         "Proxy-Authenticate", "Proxy-Authorization", "TE",
                                         "Trailer", "Upgrade", NULL};
    for (const char *const *a = always; *a; a++)
        if (name_is(line, *a))
            return true;
    size_t n = strcspn(line, ":");
    for (char **l = h->headers; l && *l; l++)
        if (name_is(*l, "Connection")) {
            _cleanup_free_ char *name = xstrndup(line, n);
            if (list_has(*l + 12, name, n))
                return true;
        }
    return false;
}

char *e2b_http1_query_param(const char *query, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len >= n && strncmp(p, name, n) == 0 && (len == n || p[n] == '='))
            return e2b_http1_unescape(p + n + (len > n), len - n - (len > n), true);
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* Content-Length: digits only; every copy the same. 0 or -1. */
static int content_length(const struct e2b_http1_head *h, bool *present, uint64_t *ret)
{
    *present = false;
    for (char **l = h->headers; l && *l; l++) {
        if (!name_is(*l, "Content-Length"))
            continue;
        const char *v = *l + 16;
        uint64_t x = 0;
        size_t digits = strspn(v, "0123456789");
        if (!digits || v[digits] || digits > 18)
            return -1;
        for (size_t i = 0; i < digits; i++)
            x = x * 10 + (uint64_t)(v[i] - '0');
        if (*present && x != *ret)
            return -1;
        *present = true;
        *ret = x;
    }
    return 0;
}

int e2b_http1_body_request(struct e2b_http1_body *b, const struct e2b_http1_head *h, uint64_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
    bool has_cl;
    uint64_t cl = 0;
    if (content_length(h, &has_cl, &cl) < 0)
        return -400;
    size_t te_count = 0;
    const char *te = NULL;
    for (char **l = h->headers; l && *l; l++)
        if (name_is(*l, "Transfer-Encoding"))
            te_count++, te = *l + 19;
    if (te_count) {
        /* only plain chunked; never beside a Content-Length (smuggling) */
        if (te_count > 1 || has_cl || strcasecmp(te, "chunked") != 0 || h->minor == 0)
            return -400;
        b->kind = E2B_BODY_CHUNKED;
        return 0;
    }
    if (!has_cl || cl == 0) {
        b->kind = E2B_BODY_NONE;
        b->done = true;
        return 0;
    }
    if (max && cl > max)
        return -413;
    b->kind = E2B_BODY_LENGTH;
    b->left = cl;
    return 0;
}

int e2b_http1_body_response(struct e2b_http1_body *b, const struct e2b_http1_head *h,
                           const char *request_method)
{
    memset(b, 0, sizeof(*b));
    if (STREQ(request_method, "HEAD") || h->status < 200 || h->status == 204 || h->status == 304) {
        b->kind = E2B_BODY_NONE;
        b->done = true;
        return 0;
    }
    size_t te_count = 0;
    const char *te = NULL;
    for (char **l = h->headers; l && *l; l++)
        if (name_is(*l, "Transfer-Encoding"))
            te_count++, te = *l + 19;
    if (te_count) {
        b->kind = te_count == 1 && strcasecmp(te, "chunked") == 0 ? E2B_BODY_CHUNKED : E2B_BODY_CLOSE;
        return 0;
    }
    bool has_cl;
    uint64_t cl = 0;
    if (content_length(h, &has_cl, &cl) < 0)
        return -1;
    if (!has_cl) {
        b->kind = E2B_BODY_CLOSE;
        return 0;
    }
    b->kind = E2B_BODY_LENGTH;
    b->left = cl;
    b->done = cl == 0;
    return 0;
}

enum {
    CH_SIZE,       /* hex digits */
    CH_SIZE_TAIL,  /* white space, ";ext" until CR */
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER,    /* start of a trailer line (or the final CRLF) */
    CH_TRAILER_LINE,
    CH_TRAILER_LF,
    CH_FINAL_LF,
};

#define MAX_CHUNK_LINE 4096
#define MAX_TRAILERS 8192
#define MAX_CHUNK_DIGITS 15 /* < 2^60: no sum of sizes can overflow */

/* One step of the chunked decoder: framing bytes up to and including the
 * next run of payload (see e2b_http1_body_next). On an error *used counts
 * the bytes before the bad one. */
static int chunked_next(struct e2b_http1_body *b, const char *in, size_t len, size_t *used,
                        const char **data, size_t *dlen)
{
    size_t i = 0;
    int r = 0;
    while (i < len && !b->done && r == 0 && !*dlen) {
        unsigned char c = (unsigned char)in[i];
        switch (b->state) {
        case CH_SIZE:
        case CH_SIZE_TAIL:
            if (++b->line > MAX_CHUNK_LINE) {
                r = -400;
                break;
            }
            if (b->state == CH_SIZE && hexval((char)c) >= 0) {
                if (b->digits || c != '0')
                    b->digits++;
                if (b->digits > MAX_CHUNK_DIGITS) {
                    r = -400;
                    break;
                }
                b->left = b->left * 16 + (uint64_t)hexval((char)c);
                i++;
                break;
            }
            if (b->state == CH_SIZE && b->line == 1) {
                r = -400; /* no digits: "-1", "", "x" */
                break;
            }
            b->state = CH_SIZE_TAIL;
            if (c == '\r') {
                b->state = CH_SIZE_LF;
            } else if (c == ';') {
                b->digits = -1; /* in an extension: anything printable */
            } else if ((b->digits >= 0 && c != ' ' && c != '\t') || !vchar(c)) {
                r = -400;
                break;
            }
            i++;
            break;
        case CH_SIZE_LF:
            if (c != '\n') {
                r = -400;
                break;
            }
            if (b->left && b->max && b->left > b->max - b->total) {
                r = -413;
                break;
            }
            i++;
            b->line = 0;
            b->digits = 0;
            b->state = b->left == 0 ? CH_TRAILER : CH_DATA;
            break;
        case CH_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > b->left)
                n = (size_t)b->left;
            *data = in + i;
            *dlen = n;
            b->total += n;
            b->left -= n;
            i += n;
            if (b->left == 0)
                b->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
        case CH_DATA_LF:
            if (c != (b->state == CH_DATA_CR ? '\r' : '\n')) {
                r = -400;
                break;
            }
            b->state = b->state == CH_DATA_CR ? CH_DATA_LF : CH_SIZE;
            i++;
            break;
        case CH_TRAILER:
        case CH_TRAILER_LINE:
            if (++b->trailers > MAX_TRAILERS || (c != '\r' && !vchar(c))) {
                r = -400;
                break;
            }
            if (c == '\r')
                b->state = b->state == CH_TRAILER ? CH_FINAL_LF : CH_TRAILER_LF;
            else
                b->state = CH_TRAILER_LINE;
            i++;
            break;
        case CH_TRAILER_LF:
        case CH_FINAL_LF:
            if (c != '\n') {
                r = -400;
                break;
            }
            if (b->state == CH_FINAL_LF)
                b->done = true;
            b->state = CH_TRAILER;
            i++;
            break;
        }
    }
    *used = i;
    return r < 0 ? r : b->done ? 1 : 0;
}

int e2b_http1_body_next(struct e2b_http1_body *b, const char *in, size_t len, size_t *used,
                        const char **data, size_t *dlen)
{
    *used = 0;
    *data = NULL;
    *dlen = 0;
    if (b->done)
        return 1;
    size_t n = len;
    switch (b->kind) {
    case E2B_BODY_NONE:
        b->done = true;
        return 1;
    case E2B_BODY_LENGTH:
        if ((uint64_t)n > b->left)
            n = (size_t)b->left;
        b->left -= n;
        b->done = b->left == 0;
        break;
    case E2B_BODY_CHUNKED:
        return chunked_next(b, in, len, used, data, dlen);
    case E2B_BODY_CLOSE:
        break;
    }
    b->total += n;
    *used = n;
    *data = n ? in : NULL;
    *dlen = n;
    return b->done ? 1 : 0;
}

int e2b_http1_body_feed(struct e2b_http1_body *b, const char *in, size_t len, size_t *used,
                       struct strbuf *out)
{
    size_t off = 0;
    int r;
    do {
        size_t u;
        const char *data;
        size_t n;
        r = e2b_http1_body_next(b, in + off, len - off, &u, &data, &n);
        if (out && n)
            strbuf_add(out, data, n);
        off += u;
    } while (r == 0 && off < len);
    *used = off;
    return r;
}
