/* http1.h - the HTTP/1.1 wire format: request and response heads, and where
 * a message body ends (Content-Length or chunked). Pure functions over
 * buffers, with no I/O and nothing host-only, so that `e2b serve` (its API
 * server and its router) and envd (in the static guest binary) read every
 * request the same way.
 *
 * Strict on purpose: the server faces unauthenticated clients, the router
 * faces programs in sandboxes, and a request the router passes on must mean
 * the same to envd behind it. So anything two parsers could read two ways
 * (bare CR or LF, obs-fold, both Transfer-Encoding and Content-Length,
 * differing Content-Lengths, chunk sizes with signs or overflow, bad
 * percent escapes in the path) is refused rather than guessed at.
 */
#ifndef E2B_HTTP1_H
#define E2B_HTTP1_H

#include "strbuf.h"

#define E2B_HTTP1_MAX_HEAD (64 * 1024)
#define E2B_HTTP1_MAX_HEADERS 128
#define E2B_HTTP1_MAX_TARGET 8192

struct e2b_http1_head {
    /* requests */
    char method[16];
    char *target;  /* as sent: path?query */
    char *path;    /* percent-decoded, no query */
    char *query;   /* raw query, "" when none */
    /* responses */
    int status;
    char *reason;
    /* both */
    int minor;     /* HTTP/1.<minor> */
    char **headers; /* "Name: value" (value trimmed), names as sent */
    size_t len;    /* bytes of the head in the buffer, final CRLFCRLF included */
};

/* Parse the head at the start of buf. Returns its length (also h->len) when
 * complete, 0 when more bytes are needed, or -status when it is malformed
 * (-400, -414 target too long, -431 head or header count too large). Empty
 * lines before a request line are skipped (RFC 9112 2.2). A bad percent
 * escape or an escaped NUL in the path is -400. */
long e2b_http1_parse_request(const char *buf, size_t len, struct e2b_http1_head *h);
long e2b_http1_parse_response(const char *buf, size_t len, struct e2b_http1_head *h);
void e2b_http1_head_release(struct e2b_http1_head *h);

/* First value of a header (case-insensitive name), or NULL. */
const char *e2b_http1_header(const struct e2b_http1_head *h, const char *name);
/* Does any header `name` list `token` (comma-separated, case-insensitive)? */
bool e2b_http1_header_has_token(const struct e2b_http1_head *h, const char *name, const char *token);
/* Is the header hop-by-hop for this message (Connection, Keep-Alive, ...,
 * or named in its Connection header)? A proxy must not pass those on. */
bool e2b_http1_hop_by_hop(const struct e2b_http1_head *h, const char *line);

/* Percent-decode s[0..n) ("+" is a space when form is true, as in a query).
 * NULL when an escape is bad ("%zz", "%4") or decodes to a NUL. */
char *e2b_http1_unescape(const char *s, size_t n, bool form);
/* A query parameter, decoded; NULL when absent or not decodable. The name
 * is matched as sent (not decoded). */
char *e2b_http1_query_param(const char *query, const char *name);

/* Where a body ends. */
enum e2b_http1_body_kind {
    E2B_BODY_NONE,    /* no body */
    E2B_BODY_LENGTH,  /* Content-Length bytes */
    E2B_BODY_CHUNKED, /* chunked transfer coding, trailers included */
    E2B_BODY_CLOSE,   /* until the connection closes (responses only) */
};

struct e2b_http1_body {
    enum e2b_http1_body_kind kind;
    int state;          /* chunked decoder state */
    uint64_t left;      /* bytes left of the body (LENGTH) or of this chunk */
    uint64_t total;     /* payload bytes so far */
    uint64_t max;       /* payload limit, 0 for none */
    size_t line;        /* bytes of the current chunk-size or trailer line */
    size_t trailers;    /* bytes of trailers so far */
    int digits;         /* significant hex digits of the chunk size */
    bool done;
};

/* A request's body: 0, -400 (bad or ambiguous framing) or -413 (its
 * Content-Length is over max; max 0: no limit). */
int e2b_http1_body_request(struct e2b_http1_body *b, const struct e2b_http1_head *h, uint64_t max);
/* A response's body, given the request's method: 0, or -1 when its framing
 * is bad (the router then refuses to relay it). */
int e2b_http1_body_response(struct e2b_http1_body *b, const struct e2b_http1_head *h,
                           const char *request_method);
/* Take body bytes from in[0..len): *used of them belong to the body; its
 * payload (de-chunked) is appended to out unless out is NULL. Returns 1 once
 * the body has ended (bytes after it are not used), 0 when more is needed,
 * -400 on malformed chunking, -413 when the payload goes over max. */
int e2b_http1_body_feed(struct e2b_http1_body *b, const char *in, size_t len, size_t *used,
                       struct strbuf *out);
/* The same one step at a time and without a copy, for a server that hands
 * payload on as it comes: takes framing bytes from in[0..len) up to and
 * including the next run of payload, which is then *data[0..*dlen) (a
 * pointer into in; *dlen 0 when none). Returns like e2b_http1_body_feed;
 * 0 with *used < len means "call again with the rest". */
int e2b_http1_body_next(struct e2b_http1_body *b, const char *in, size_t len, size_t *used,
                        const char **data, size_t *dlen);

#endif
