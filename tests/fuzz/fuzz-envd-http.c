/* fuzz-envd-http.c - envd's HTTP server as a whole, as a client reaches it:
 * the request parser and body framing of envd-http, then every route behind
 * it (/health, /envs, /metrics, /init, /files up- and downloads with
 * multipart, gzip and signatures, /files/compose, the Connect procedures of
 * process.Process and filesystem.Filesystem, unary and streaming).
 *
 * envd runs in the jail (envd-driver.c), started once. Input: one control
 * byte, then the bytes a client sends on one connection (any number of
 * pipelined requests). Control bits 0-2: 0 sends them at once, else in
 * pieces of varying size (1 is the smallest); bit 3 secures envd with an
 * access token first; bit 4 makes root the default user; bit 5 half-closes
 * the connection after the last byte.
 *
 * Checked: envd never crashes and leaks nothing; what it sends back is a
 * sequence of responses serve's strict parser reads (a status line, the
 * CORS headers every response carries, well-framed bodies; only the last
 * one cut short, and only when the exchange was; none after one that said
 * Connection: close, which envd then closes); interim 100s only for an
 * Expect: 100-continue; never more answers than requests; Connect streams
 * end in exactly one end-of-stream frame; and once the client hangs up envd
 * lets the connection, its streams and its watchers go.
 *
 * And, since envd reads requests with the parser `e2b serve` uses (http1.c):
 * a first request that parser refuses (both Transfer-Encoding and
 * Content-Length, two Content-Lengths, a signed chunk size, a NUL in a
 * header, bare LF line ends: corpus 28 and 32) gets a 4xx or 5xx from envd,
 * and the connection closes.
 */
#include "envd-driver.h"
#include "http1.h"
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define INPUT_MAX (256 * 1024)

static bool verbose; /* FUZZ_VERBOSE=1: print the answers (to check a corpus) */

static size_t count(const uint8_t *d, size_t n, const char *what)
{
    size_t c = 0, wl = strlen(what);
    for (const uint8_t *p = d; n >= wl && (p = memmem(p, n - (size_t)(p - d), what, wl)); p += wl)
        c++;
    return c;
}

static bool contains_nocase(const uint8_t *d, size_t n, const char *what)
{
    size_t wl = strlen(what);
    for (size_t i = 0; i + wl <= n; i++)
        if (!strncasecmp((const char *)d + i, what, wl))
            return true;
    return false;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    fuzz_envd_start();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > INPUT_MAX)
        return 0;
    unsigned ctl = data[0];
    const uint8_t *req = data + 1;
    size_t len = size - 1;
    fuzz_envd_reset(ctl & 16, ctl & 8);

    struct fuzz_envd_exchange x;
    fuzz_envd_exchange(req, len, ctl & 7, ctl & 32, &x);
    /* HEAD replies have no body whatever their Content-Length says: with a
     * HEAD among the requests, only the first response can be read */
    bool head = count(req, len, "HEAD") > 0;
    struct fuzz_envd_response *r = NULL;
    size_t n = fuzz_envd_check_responses(&x, head ? NULL : "GET", &r);
    /* one answer per request at most: each has a request line with an
     * HTTP version in it, or is garbage envd answers with 400 and a close */
    FUZZ_ASSERT(n <= count(req, len, " HTTP/1.") + 1);
    if (n && r[n - 1].close && r[n - 1].complete)
        FUZZ_ASSERT(x.closed); /* it said it would close, and did */
    for (size_t i = 0; verbose && i < n; i++) {
        bool stream = r[i].ctype && !strcmp(r[i].ctype, "application/connect+json");
        const char *end = stream ? fuzz_envd_check_stream(&r[i].body, r[i].complete) : NULL;
        fprintf(stderr, "envd-http: %d %s%s: %s%.*s\n", r[i].status, r[i].ctype ? r[i].ctype : "-",
                r[i].complete ? "" : " (cut)", stream ? (end ? end : "ok") : "",
                stream ? 0 : (int)(r[i].body.len > 160 ? 160 : r[i].body.len), r[i].body.buf ? r[i].body.buf : "");
    }
    /* one parser for both servers: a first request that http1 (what
     * `e2b serve` reads with) refuses, head or framing, envd refuses too,
     * and closes: no two readings of where a request ends */
    struct e2b_http1_head h = {0};
    long hn = e2b_http1_parse_request((const char *)req, len, &h);
    bool refused = hn < 0;
    if (hn > 0) {
        struct e2b_http1_body b = {0};
        refused = e2b_http1_body_request(&b, &h, 0) < 0;
    }
    e2b_http1_head_release(&h);
    if (refused && n)
        FUZZ_ASSERT(r[0].status >= 400 && r[0].close);
    for (size_t i = 0; i < n; i++) /* no 100 Continue unasked for */
        FUZZ_ASSERT(!r[i].continues || contains_nocase(req, len, "100-continue"));
    fuzz_envd_responses_free(r, n);
    fuzz_envd_exchange_release(&x);
    return 0;
}
