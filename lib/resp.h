/* resp.h - Redis's wire protocol (RESP2), pure: commands out, replies in.
 *
 * The cluster catalog (cluster.h) talks to Redis through redis.h, which
 * sends what e2b_resp_command makes and reads replies with e2b_resp_parse.
 * Our own rather than hiredis: the protocol is five line types, and a
 * parser of ours can be fuzzed like the others (tests/fuzz/fuzz-resp.c).
 *
 * A reply is one of: a simple string (+OK), an error (-ERR ...), an
 * integer (:1), a bulk string ($3 abc, binary-safe; $-1 is nil) or an array
 * (*2 ..., nested; *-1 is nil). Lengths and nesting are bounded, so a
 * malformed or hostile reply cannot make the client allocate without end.
 */
#ifndef E2B_RESP_H
#define E2B_RESP_H

#include "strbuf.h"

#include <stddef.h>

#define E2B_RESP_MAX_BULK  (64L << 20) /* longest bulk string read */
#define E2B_RESP_MAX_ARRAY (1L << 20)  /* most elements of one array */
#define E2B_RESP_MAX_DEPTH 8           /* arrays in arrays */
#define E2B_RESP_MAX_LINE  65536       /* a simple string, error or number line */

enum e2b_resp_type {
    E2B_RESP_STRING, /* +... */
    E2B_RESP_ERROR,  /* -... */
    E2B_RESP_INT,    /* :n */
    E2B_RESP_BULK,   /* $n ... */
    E2B_RESP_NIL,    /* $-1 or *-1 */
    E2B_RESP_ARRAY,  /* *n ... */
};

struct e2b_resp {
    enum e2b_resp_type type;
    long long integer;       /* INT */
    char *str;               /* STRING, ERROR, BULK: NUL-terminated copy (BULK may hold NULs) */
    size_t len;              /* its length */
    struct e2b_resp **elems; /* ARRAY */
    size_t n;
};

/* One reply from the start of buf. >0: bytes it took, *ret set (caller
 * frees with e2b_resp_free); 0: incomplete, read more; <0: malformed (a
 * bad type byte, a line without CRLF, a bad or too large length, too deep). */
long e2b_resp_parse(const char *buf, size_t len, struct e2b_resp **ret);
void e2b_resp_free(struct e2b_resp *r);
static inline void e2b_resp_freep(struct e2b_resp **r) { e2b_resp_free(*r); }
#define _cleanup_resp_ _cleanup_(e2b_resp_freep)

/* Append a command (an array of bulk strings) to out. lens NULL: each
 * argument is a C string. */
void e2b_resp_command(struct strbuf *out, size_t argc, const char *const *argv, const size_t *lens);

/* The string of a STRING or BULK reply, else NULL. */
const char *e2b_resp_str(const struct e2b_resp *r);
/* Element i of an ARRAY reply, else NULL. */
const struct e2b_resp *e2b_resp_elem(const struct e2b_resp *r, size_t i);

#endif
