/* fuzz-http1.c - the HTTP/1.1 parser of `e2b serve`, its router and envd:
 * request and response heads, then the body framing that follows them.
 *
 * Input: one control byte, then the message. Control bit 0 picks request
 * or response; the other bits seed the sizes of the pieces the body is fed
 * in. Checked: a parsed head's length is within the input and ends in
 * CRLFCRLF; every header line is "Name: value" with no CR, LF or NUL; the
 * body decoder never claims bytes it was not given, gives the same payload
 * and the same verdict whether it gets the body at once or in pieces, never
 * more payload than it was fed, and stays within its limit.
 */
#include "fuzz.h"
#include "http1.h"

#include <stdlib.h>
#include <string.h>

struct feed_result {
    int rc;            /* last feed result: 1 done, 0 more, <0 error */
    size_t used;       /* body bytes consumed */
    struct strbuf out; /* payload */
};

static void feed(const struct e2b_http1_body *init, const char *in, size_t len, unsigned seed,
                 struct feed_result *r)
{
    struct e2b_http1_body b = *init;
    strbuf_init(&r->out);
    r->rc = 0;
    r->used = 0;
    size_t off = 0;
    while (off < len) {
        size_t piece = len - off;
        if (seed) { /* pieces of 1..seed bytes, varying */
            piece = 1 + (seed + off * 7) % seed;
            if (piece > len - off)
                piece = len - off;
        }
        size_t used = 0;
        int rc = e2b_http1_body_feed(&b, in + off, piece, &used, &r->out);
        FUZZ_ASSERT(used <= piece);
        r->used += used;
        r->rc = rc;
        if (rc != 0)
            break;
        FUZZ_ASSERT(used == piece); /* "more needed" means it took all it got */
        off += used;
    }
    FUZZ_ASSERT(r->out.len <= r->used);
    if (init->max)
        FUZZ_ASSERT(r->out.len <= init->max);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 256 * 1024)
        return 0;
    unsigned ctl = data[0];
    const char *msg = (const char *)data + 1;
    size_t len = size - 1;
    bool response = ctl & 1;
    struct e2b_http1_head h = {0};
    long n = response ? e2b_http1_parse_response(msg, len, &h) : e2b_http1_parse_request(msg, len, &h);
    if (n <= 0) {
        FUZZ_ASSERT(n == 0 || n == -400 || n == -414 || n == -431 || n == -505 || n == -501);
        e2b_http1_head_release(&h);
        return 0;
    }
    FUZZ_ASSERT((size_t)n <= len && (size_t)n == h.len && n >= 4);
    FUZZ_ASSERT(!memcmp(msg + n - 4, "\r\n\r\n", 4));
    for (char **l = h.headers; l && *l; l++) {
        FUZZ_ASSERT(strchr(*l, ':') != NULL);
        FUZZ_ASSERT(!strpbrk(*l, "\r\n"));
    }
    if (!response) {
        FUZZ_ASSERT(h.target && h.path && h.query);
        /* the query helpers on whatever the client sent */
        char *v = e2b_http1_query_param(h.query, "signature");
        free(v);
        (void)e2b_http1_header_has_token(&h, "connection", "close");
        for (char **l = h.headers; l && *l; l++)
            (void)e2b_http1_hop_by_hop(&h, *l);
    }

    struct e2b_http1_body b = {0};
    int br = response ? e2b_http1_body_response(&b, &h, (ctl & 2) ? "HEAD" : "GET")
                      : e2b_http1_body_request(&b, &h, (ctl & 2) ? 1024 : 0);
    if (br == 0) {
        const char *body = msg + n;
        size_t blen = len - (size_t)n;
        struct feed_result whole, pieces;
        feed(&b, body, blen, 0, &whole);
        feed(&b, body, blen, (ctl >> 2) + 1, &pieces);
        FUZZ_ASSERT(whole.rc == pieces.rc);
        FUZZ_ASSERT(whole.used == pieces.used);
        FUZZ_ASSERT(whole.out.len == pieces.out.len && !memcmp(whole.out.buf, pieces.out.buf, whole.out.len));
        if (b.kind == E2B_BODY_LENGTH && whole.rc == 1)
            FUZZ_ASSERT(whole.out.len == b.left);
        strbuf_release(&whole.out);
        strbuf_release(&pieces.out);
    } else {
        FUZZ_ASSERT(br == -400 || br == -413 || br == -1);
    }
    e2b_http1_head_release(&h);
    return 0;
}
