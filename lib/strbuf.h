/* strbuf.h - a growable, always NUL-terminated byte buffer. */
#ifndef E2B_STRBUF_H
#define E2B_STRBUF_H

#include "util.h"

struct strbuf {
    char *buf; /* never NULL after init: "" when empty */
    size_t len;
    size_t alloc;
};

#define STRBUF_INIT {.buf = NULL, .len = 0, .alloc = 0}

void strbuf_init(struct strbuf *sb);
void strbuf_release(struct strbuf *sb);
static inline void strbuf_releasep(struct strbuf *sb) { strbuf_release(sb); }
#define _cleanup_strbuf_ _cleanup_(strbuf_releasep)
/* Hand the buffer to the caller (never NULL) and reset sb. */
char *strbuf_detach(struct strbuf *sb, size_t *len);
void strbuf_reset(struct strbuf *sb);
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, char c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) _printf_(2, 3);
void strbuf_setlen(struct strbuf *sb, size_t len);
/* Remove n bytes from the front. */
void strbuf_consume(struct strbuf *sb, size_t n);
void strbuf_rtrim(struct strbuf *sb);
/* Shell-quote s ('...' with embedded quotes escaped) onto sb. */
void strbuf_add_shell_quoted(struct strbuf *sb, const char *s);

#endif
