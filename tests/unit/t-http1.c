/* t-http1.c - the HTTP/1.1 parser of `e2b serve` and envd (lib/http1.c):
 * heads, bodies by length and chunks, response framing for the router, and
 * a seeded fuzz loop (mutated requests fed in random pieces must parse the
 * same as when fed whole, and never touch memory they should not: run under
 * ASan by make check-asan). */
#include "http1.h"
#include "tap.h"

static long req(const char *s, struct e2b_http1_head *h)
{
    return e2b_http1_parse_request(s, strlen(s), h);
}

static long req_status(const char *s)
{
    struct e2b_http1_head h;
    long r = req(s, &h);
    e2b_http1_head_release(&h);
    return r;
}

/* The payload of a whole chunked body given at once; the return of feed. */
static int chunked(const char *s, uint64_t max, struct strbuf *out, size_t *used)
{
    struct e2b_http1_body b = {.kind = E2B_BODY_CHUNKED, .max = max};
    return e2b_http1_body_feed(&b, s, strlen(s), used, out);
}

static int body_framing(const char *head, uint64_t max, struct e2b_http1_body *b)
{
    struct e2b_http1_head h;
    long r = req(head, &h);
    if (r <= 0)
        return (int)(r ? r : -1);
    int x = e2b_http1_body_request(b, &h, max);
    e2b_http1_head_release(&h);
    return x;
}

static void test_heads(void)
{
    struct e2b_http1_head h;
    const char *get = "GET /sandboxes/abc%2Fd?state=running&x=a+b HTTP/1.1\r\n"
                      "Host: 127.0.0.1\r\nX-API-Key:  e2b_12 \r\nConnection: keep-alive, Upgrade\r\n\r\nrest";
    long n = req(get, &h);
    is_int(n, (long)strlen(get) - 4, "a whole head: its length, the body after it not counted");
    is_str(h.method, "GET", "method");
    is_str(h.path, "/sandboxes/abc/d", "path decoded");
    is_str(h.query, "state=running&x=a+b", "query raw");
    is_str(e2b_http1_header(&h, "x-api-key"), "e2b_12", "header names case-insensitive, value trimmed");
    ok(e2b_http1_header_has_token(&h, "Connection", "upgrade"), "Connection tokens");
    ok(!e2b_http1_header_has_token(&h, "Connection", "close"), "no close token");
    _cleanup_free_ char *x = e2b_http1_query_param(h.query, "x");
    is_str(x, "a b", "query param decoded, + is a space");
    _cleanup_free_ char *st = e2b_http1_query_param(h.query, "stat");
    ok(!st, "a prefix of a name is not the name");
    e2b_http1_head_release(&h);

    size_t whole = strlen(get) - 4, more = 0;
    for (size_t k = 0; k < whole; k++) {
        long r = e2b_http1_parse_request(get, k, &h);
        if (r > 0)
            e2b_http1_head_release(&h);
        more += r == 0;
    }
    is_int((long)more, (long)whole, "every prefix of a head asks for more");

    is_int(req_status("\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 22, "empty lines before the request line are skipped");
    is_int(req_status("GET / HTTP/1.1\nHost: x\r\n\r\n"), -400, "bare LF");
    is_int(req_status("GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n"), -400, "bare CR");
    is_int(req_status("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"), -400, "obs-fold");
    is_int(req_status("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), -400, "space before the colon");
    is_int(req_status("GET / HTTP/1.1\r\n: x\r\n\r\n"), -400, "no header name");
    is_int(req_status("GET / HTTP/1.1\r\nNoColon\r\n\r\n"), -400, "no colon");
    is_int(req_status("GET / HTTP/2.0\r\n\r\n"), -400, "not HTTP/1.x");
    is_int(req_status("GET /  HTTP/1.1\r\n\r\n"), -400, "two spaces");
    is_int(req_status("G(T / HTTP/1.1\r\n\r\n"), -400, "method not a token");
    is_int(req_status("GET x HTTP/1.1\r\n\r\n"), -400, "target neither a path nor absolute");
    is_int(req_status("GET /a%00b HTTP/1.1\r\n\r\n"), -400, "a NUL in the decoded path");
    is_int(req_status("GET /a%zzb HTTP/1.1\r\n\r\n"), -400, "a bad escape in the path");
    is_int(req_status("GET /a%4 HTTP/1.1\r\n\r\n"), -400, "a cut escape at the end of the path");
    is_int(req_status("GET /a?x=%zz HTTP/1.1\r\n\r\n"), 25, "the query is not decoded with the head");
    char nul[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";
    is_int(e2b_http1_parse_request(nul, sizeof(nul) - 1, &h), -400, "a NUL byte in the head");

    n = req("GET http://h.example:3000/x?y=1 HTTP/1.1\r\n\r\n", &h);
    ok(n > 0, "absolute-form target");
    is_str(h.target, "/x?y=1", "absolute-form kept as its origin form");
    e2b_http1_head_release(&h);
    n = req("GET http://h.example HTTP/1.0\r\n\r\n", &h);
    ok(n > 0 && h.minor == 0, "HTTP/1.0");
    is_str(h.target, "/", "absolute-form without a path is /");
    e2b_http1_head_release(&h);

    struct strbuf big = STRBUF_INIT;
    strbuf_addstr(&big, "GET / HTTP/1.1\r\n");
    while (big.len < E2B_HTTP1_MAX_HEAD + 10)
        strbuf_addstr(&big, "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    is_int(e2b_http1_parse_request(big.buf, big.len, &h), -431, "a head over 64 KiB");
    strbuf_reset(&big);
    strbuf_addstr(&big, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < E2B_HTTP1_MAX_HEADERS + 1; i++)
        strbuf_addf(&big, "H%d: v\r\n", i);
    strbuf_addstr(&big, "\r\n");
    is_int(e2b_http1_parse_request(big.buf, big.len, &h), -431, "too many headers");
    strbuf_reset(&big);
    strbuf_addstr(&big, "GET /");
    for (int i = 0; i < E2B_HTTP1_MAX_TARGET; i++)
        strbuf_addch(&big, 'a');
    strbuf_addstr(&big, " HTTP/1.1\r\n\r\n");
    is_int(e2b_http1_parse_request(big.buf, big.len, &h), -414, "a target over 8 KiB");
    strbuf_release(&big);
}

static void test_unescape(void)
{
    _cleanup_free_ char *a = e2b_http1_unescape("a%2Fb+c%41", 10, false);
    is_str(a, "a/b+cA", "escapes decoded, + kept in a path");
    _cleanup_free_ char *q = e2b_http1_unescape("a+b%2b", 6, true);
    is_str(q, "a b+", "+ is a space in a query");
    ok(!e2b_http1_unescape("%zz", 3, true), "a bad escape is refused");
    ok(!e2b_http1_unescape("ab%2", 4, true), "a cut escape is refused");
    ok(!e2b_http1_unescape("a%00", 4, true), "an escaped NUL is refused");
    _cleanup_free_ char *bad = e2b_http1_query_param("x=%zz&y=1", "x");
    ok(!bad, "a parameter that cannot be decoded reads as absent");
    _cleanup_free_ char *y = e2b_http1_query_param("x=%zz&y=1", "y");
    is_str(y, "1", "and the others still read");
}

/* e2b_http1_body_next hands out runs of payload that point into its input. */
static void test_body_next(void)
{
    const char *s = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT";
    struct e2b_http1_body b = {.kind = E2B_BODY_CHUNKED};
    size_t off = 0, runs = 0, used, n;
    const char *data;
    struct strbuf out = STRBUF_INIT;
    bool inside = true;
    int r;
    do {
        r = e2b_http1_body_next(&b, s + off, strlen(s) - off, &used, &data, &n);
        if (n) {
            runs++;
            inside = inside && data >= s + off && data + n <= s + off + used;
            strbuf_add(&out, data, n);
        }
        off += used;
    } while (r == 0 && off < strlen(s));
    ok(r == 1 && STREQ(out.buf, "hello world"), "two chunks, step by step");
    is_int(runs, 2, "one run per chunk");
    ok(inside, "each run lies in the bytes taken in its step");
    is_str(s + off, "NEXT", "it stops at the end of the body");

    struct e2b_http1_body lb = {.kind = E2B_BODY_LENGTH, .left = 4};
    r = e2b_http1_body_next(&lb, "abcdef", 6, &used, &data, &n);
    ok(r == 1 && used == 4 && n == 4 && data && !memcmp(data, "abcd", 4), "a length body in one run");

    struct e2b_http1_body cb = {.kind = E2B_BODY_CHUNKED};
    r = e2b_http1_body_next(&cb, "3\r\nabcX", 8, &used, &data, &n);
    ok(r == 0 && n == 3 && used == 6, "the run before a framing error still comes out");
    r = e2b_http1_body_next(&cb, "X", 1, &used, &data, &n);
    ok(r == -400 && used == 0 && n == 0, "then the error, with nothing taken");
    strbuf_release(&out);
}

static void test_request_bodies(void)
{
    struct e2b_http1_body b;
    is_int(body_framing("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 100, &b), 0, "Content-Length");
    ok(b.kind == E2B_BODY_LENGTH && b.left == 5, "length 5");
    is_int(body_framing("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 100, &b), 0,
           "the same Content-Length twice");
    is_int(body_framing("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 100, &b), -400,
           "two different Content-Lengths");
    is_int(body_framing("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 100, &b), -400, "a signed length");
    is_int(body_framing("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 100, &b), -400, "a negative length");
    is_int(body_framing("POST / HTTP/1.1\r\nContent-Length: 5,5\r\n\r\n", 100, &b), -400, "a list as length");
    is_int(body_framing("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 0, &b), -400,
           "a length that overflows");
    is_int(body_framing("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 100, &b), -413, "over the limit");
    is_int(body_framing("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 100, &b),
           -400, "Transfer-Encoding beside Content-Length (smuggling)");
    is_int(body_framing("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 100, &b), -400,
           "a coding other than chunked");
    is_int(body_framing("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                        100, &b), -400, "Transfer-Encoding twice");
    is_int(body_framing("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 100, &b), -400,
           "chunked in HTTP/1.0");
    is_int(body_framing("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", 100, &b), 0, "chunked");
    ok(b.kind == E2B_BODY_CHUNKED, "chunked framing");
    is_int(body_framing("GET / HTTP/1.1\r\n\r\n", 100, &b), 0, "no body");
    ok(b.kind == E2B_BODY_NONE && b.done, "nothing to read");

    struct strbuf out = STRBUF_INIT;
    size_t used;
    const char *s = "5\r\nhello\r\n6;name=val\r\n world\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1";
    is_int(chunked(s, 100, &out, &used), 1, "chunks with an extension and a trailer end");
    is_str(out.buf, "hello world", "payload");
    is_int(used, strlen(s) - strlen("GET / HTTP/1.1"), "bytes after the body are not used");

    /* the same, a byte at a time */
    struct e2b_http1_body bb = {.kind = E2B_BODY_CHUNKED, .max = 100};
    strbuf_reset(&out);
    int r = 0;
    size_t i = 0;
    for (; i < strlen(s) && r == 0; i++) {
        r = e2b_http1_body_feed(&bb, s + i, 1, &used, &out);
        if (r == 0 && used != 1)
            break;
    }
    ok(r == 1 && STREQ(out.buf, "hello world") && i == strlen(s) - strlen("GET / HTTP/1.1"),
       "fed a byte at a time");

    strbuf_reset(&out);
    is_int(chunked("1\r\nX\r\nffffffffffffffff\r\nY", 1 << 20, &out, &used), -400,
           "a 16-digit chunk size after a chunk (the overflow that crashed the server)");
    strbuf_reset(&out);
    is_int(chunked("-1\r\nY", 1 << 20, &out, &used), -400, "a negative chunk size");
    strbuf_reset(&out);
    is_int(chunked("0x10\r\n", 1 << 20, &out, &used), -400, "0x prefix");
    strbuf_reset(&out);
    is_int(chunked("\r\n", 1 << 20, &out, &used), -400, "no digits");
    strbuf_reset(&out);
    is_int(chunked("fffffff\r\n", 1 << 20, &out, &used), -413, "a chunk over the limit, refused before its data");
    ok(out.len == 0, "nothing buffered for it");
    strbuf_reset(&out);
    is_int(chunked("6\r\n123456\r\n6\r\n123456\r\n", 10, &out, &used), -413, "chunks adding up over the limit");
    ok(out.len <= 10, "never more than the limit buffered");
    strbuf_reset(&out);
    is_int(chunked("000000000000000000000001\r\nZ\r\n0\r\n\r\n", 100, &out, &used), 1,
           "leading zeros are not significant digits");
    strbuf_reset(&out);
    is_int(chunked("3\r\nabcX\r\n", 100, &out, &used), -400, "no CRLF after the data");
    strbuf_reset(&out);
    is_int(chunked("3\nabc\r\n", 100, &out, &used), -400, "a bare LF after the size");
    strbuf_reset(&out);
    is_int(chunked("3 \t;a=\"b c\"\r\nabc\r\n0\r\n\r\n", 100, &out, &used), 1, "white space and a quoted extension");
    struct strbuf ext = STRBUF_INIT;
    strbuf_addstr(&ext, "1;");
    for (int k = 0; k < 5000; k++)
        strbuf_addch(&ext, 'e');
    strbuf_reset(&out);
    is_int(chunked(ext.buf, 100, &out, &used), -400, "a chunk-size line over 4 KiB");
    strbuf_reset(&ext);
    strbuf_addstr(&ext, "0\r\n");
    for (int k = 0; k < 1000; k++)
        strbuf_addstr(&ext, "T: xxxxxxxxxx\r\n");
    strbuf_reset(&out);
    is_int(chunked(ext.buf, 100, &out, &used), -400, "trailers over 8 KiB");
    strbuf_release(&ext);

    struct e2b_http1_body lb;
    body_framing("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n", 100, &lb);
    strbuf_reset(&out);
    is_int(e2b_http1_body_feed(&lb, "abcdef", 6, &used, &out), 1, "a length body ends");
    ok(used == 3 && STREQ(out.buf, "abc"), "only its bytes");
    strbuf_release(&out);
}

static void test_responses(void)
{
    struct e2b_http1_head h;
    struct e2b_http1_body b;
    const char *r1 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Secret\r\n"
                     "X-Secret: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: y\r\n\r\nhi";
    long n = e2b_http1_parse_response(r1, strlen(r1), &h);
    is_int(n, (long)strlen(r1) - 2, "a response head");
    is_int(h.status, 200, "status");
    is_str(h.reason, "OK", "reason");
    ok(e2b_http1_body_response(&b, &h, "GET") == 0 && b.kind == E2B_BODY_LENGTH && b.left == 2,
       "framed by Content-Length");
    ok(e2b_http1_body_response(&b, &h, "HEAD") == 0 && b.kind == E2B_BODY_NONE, "no body for HEAD");
    int hop = 0, kept = 0;
    for (char **l = h.headers; *l; l++) {
        if (e2b_http1_hop_by_hop(&h, *l))
            hop++;
        else
            kept++;
    }
    ok(hop == 3 && kept == 2, "Connection, Keep-Alive and what Connection names are hop-by-hop (%d/%d)", hop, kept);
    e2b_http1_head_release(&h);

    const char *r2 = "HTTP/1.1 204\r\n\r\n";
    ok(e2b_http1_parse_response(r2, strlen(r2), &h) > 0 && h.status == 204 && STREQ(h.reason, ""),
       "no reason phrase");
    ok(e2b_http1_body_response(&b, &h, "GET") == 0 && b.done, "204 has no body");
    e2b_http1_head_release(&h);
    const char *r3 = "HTTP/1.0 200 OK\r\n\r\nuntil close";
    ok(e2b_http1_parse_response(r3, strlen(r3), &h) > 0 && e2b_http1_body_response(&b, &h, "GET") == 0 &&
       b.kind == E2B_BODY_CLOSE, "no length: until close");
    e2b_http1_head_release(&h);
    const char *r4 = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n";
    ok(e2b_http1_parse_response(r4, strlen(r4), &h) > 0 && e2b_http1_body_response(&b, &h, "GET") == 0 &&
       b.kind == E2B_BODY_CHUNKED, "chunked wins over a length");
    e2b_http1_head_release(&h);
    const char *r5 = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
    ok(e2b_http1_parse_response(r5, strlen(r5), &h) > 0 && e2b_http1_body_response(&b, &h, "GET") < 0,
       "differing lengths: refused");
    e2b_http1_head_release(&h);
    is_int(e2b_http1_parse_response("HTTP/1.1 20 OK\r\n\r\n", 18, &h), -400, "a two-digit status");
    is_int(e2b_http1_parse_response("HTTP/1.1 200OK\r\n\r\n", 18, &h), -400, "no space after the status");
    is_int(e2b_http1_parse_response("SSH-2.0-x\r\n\r\n", 13, &h), -400, "not HTTP at all");
}

/* ---- the fuzz loop ----------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static const char *const seeds[] = {
    "POST /sandboxes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    "4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\nT: v\r\n\r\n",
    "POST /v2/sandboxes HTTP/1.1\r\nContent-Length: 11\r\nX-API-Key: e2b_1\r\n\r\n{\"a\":\"bc\"}x",
    "GET /sandboxes?state=running&metadata=a%3Db HTTP/1.1\r\nHost: 49983-abc.e2b.local:3000\r\n\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nX\r\nffffffff\r\nY",
};
static const char splice[] = "\r\n\0 :;-0fF9%+\t";

static void mutate(struct strbuf *s)
{
    for (int m = (int)rnd(4) + 1; m > 0 && s->len; m--) {
        size_t at = rnd((uint32_t)s->len);
        switch (rnd(5)) {
        case 0: s->buf[at] = (char)rnd(256); break;
        case 1: s->buf[at] = splice[rnd(sizeof(splice) - 1)]; break;
        case 2: strbuf_setlen(s, at); break;
        case 3: { /* insert a byte */
            char c = splice[rnd(sizeof(splice) - 1)];
            strbuf_addch(s, 0);
            memmove(s->buf + at + 1, s->buf + at, s->len - at - 1);
            s->buf[at] = c;
            break;
        }
        default: { /* repeat a run */
            size_t n = rnd(32) + 1;
            if (at + n > s->len)
                n = s->len - at;
            _cleanup_free_ char *run = xmalloc(n); /* the run may hold NULs */
            memcpy(run, s->buf + at, n);
            strbuf_add(s, run, n);
        }
        }
    }
}

/* Parse head then body, feeding the body in random pieces when `split`. */
static int parse_all(const char *buf, size_t len, bool split, struct strbuf *payload, size_t *ret_used)
{
    struct e2b_http1_head h;
    long n = e2b_http1_parse_request(buf, len, &h);
    if (n <= 0)
        return (int)n - 1000;
    struct e2b_http1_body b;
    int r = e2b_http1_body_request(&b, &h, 64);
    e2b_http1_head_release(&h);
    if (r < 0)
        return r - 2000;
    size_t off = (size_t)n;
    r = 0;
    while (r == 0 && off < len) {
        size_t piece = split ? rnd(7) + 1 : len - off, used = 0;
        if (piece > len - off)
            piece = len - off;
        /* only the piece is readable: a copy of just its bytes */
        char *p = xmalloc(piece);
        memcpy(p, buf + off, piece);
        r = e2b_http1_body_feed(&b, p, piece, &used, payload);
        free(p);
        if (used > piece)
            return -9999;
        off += used;
        if (r == 0 && used < piece)
            return -9998; /* a body that is not done takes all it is given */
    }
    *ret_used = off;
    return r;
}

static void test_fuzz(void)
{
    int disagree = 0, over_limit = 0, kinds[4] = {0}; /* head refused, framing refused, body done, other */
    for (int it = 0; it < 30000; it++) {
        struct strbuf s = STRBUF_INIT;
        strbuf_addstr(&s, seeds[rnd(sizeof(seeds) / sizeof(*seeds))]);
        mutate(&s);
        /* an exact-size heap copy, so ASan sees any read past the end */
        char *exact = xmalloc(s.len ? s.len : 1);
        memcpy(exact, s.buf, s.len);
        struct strbuf p1 = STRBUF_INIT, p2 = STRBUF_INIT;
        size_t u1 = 0, u2 = 0;
        int a = parse_all(exact, s.len, false, &p1, &u1);
        int b = parse_all(exact, s.len, true, &p2, &u2);
        if (a != b || (a >= 0 && (p1.len != p2.len || (p1.len && memcmp(p1.buf, p2.buf, p1.len)) || u1 != u2))) {
            if (disagree++ < 3)
                diag("disagreement on iteration %d: %d vs %d", it, a, b);
        }
        kinds[a < -1000 ? 0 : a < -1 ? 1 : a == 1 ? 2 : 3]++;
        if (p1.len > 64 || p2.len > 64)
            over_limit++;
        free(exact);
        strbuf_release(&s);
        strbuf_release(&p1);
        strbuf_release(&p2);
    }
    diag("outcomes: %d heads refused, %d framings refused, %d bodies complete, %d other", kinds[0],
         kinds[1], kinds[2], kinds[3]);
    ok(kinds[0] > 1000 && kinds[2] > 1000 && kinds[3] > 1000, "the mutations reach every outcome");
    is_int(disagree, 0, "30000 mutated requests: fed whole or in pieces, the same result");
    is_int(over_limit, 0, "no body payload ever over its 64-byte limit");
}

int main(void)
{
    test_heads();
    test_unescape();
    test_body_next();
    test_request_bodies();
    test_responses();
    test_fuzz();
    return tap_done();
}
