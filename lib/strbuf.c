/* strbuf.c - see strbuf.h */
#include "strbuf.h"

#include <ctype.h>
#include <stdarg.h>

static char empty_[1];

void strbuf_init(struct strbuf *sb)
{
    sb->buf = empty_;
    sb->len = sb->alloc = 0;
}

void strbuf_release(struct strbuf *sb)
{
    if (sb->alloc)
        free(sb->buf);
    strbuf_init(sb);
}

char *strbuf_detach(struct strbuf *sb, size_t *len)
{
    char *r = sb->alloc ? sb->buf : xstrdup("");
    if (len)
        *len = sb->len;
    strbuf_init(sb);
    return r;
}

void strbuf_reset(struct strbuf *sb) { strbuf_setlen(sb, 0); }

void strbuf_grow(struct strbuf *sb, size_t extra)
{
    if (!sb->buf)
        strbuf_init(sb);
    if (sb->len + extra + 1 <= sb->alloc)
        return;
    size_t want = sb->alloc ? sb->alloc : 64;
    while (want < sb->len + extra + 1)
        want *= 2;
    if (sb->alloc) {
        sb->buf = xrealloc(sb->buf, want);
    } else {
        char *n = xmalloc(want);
        memcpy(n, sb->buf, sb->len);
        n[sb->len] = '\0';
        sb->buf = n;
    }
    sb->alloc = want;
}

void strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
    strbuf_grow(sb, len);
    memcpy(sb->buf + sb->len, data, len);
    sb->len += len;
    sb->buf[sb->len] = '\0';
}

void strbuf_addstr(struct strbuf *sb, const char *s) { strbuf_add(sb, s, strlen(s)); }
void strbuf_addch(struct strbuf *sb, char c) { strbuf_add(sb, &c, 1); }

void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    strbuf_grow(sb, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void strbuf_setlen(struct strbuf *sb, size_t len)
{
    if (!sb->buf)
        strbuf_init(sb);
    if (!sb->alloc) /* the shared empty buffer stays "" */
        return;
    sb->len = len < sb->len ? len : sb->len;
    sb->buf[sb->len] = '\0';
}

void strbuf_consume(struct strbuf *sb, size_t n)
{
    if (n >= sb->len) {
        strbuf_setlen(sb, 0);
        return;
    }
    memmove(sb->buf, sb->buf + n, sb->len - n);
    strbuf_setlen(sb, sb->len - n);
}

void strbuf_rtrim(struct strbuf *sb)
{
    size_t n = sb->len;
    while (n && isspace((unsigned char)sb->buf[n - 1]))
        n--;
    strbuf_setlen(sb, n);
}

void strbuf_add_shell_quoted(struct strbuf *sb, const char *s)
{
    strbuf_addch(sb, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            strbuf_addstr(sb, "'\\''");
        else
            strbuf_addch(sb, *s);
    }
    strbuf_addch(sb, '\'');
}
