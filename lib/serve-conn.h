/* serve-conn.h - a client connection of `e2b serve`: reading with
 * deadlines, and E2B-shaped answers ({code, message} JSON errors). */
#ifndef E2B_SERVE_CONN_H
#define E2B_SERVE_CONN_H

#include "json.h"
#include "serve-opts.h"
#include "strbuf.h"

/* An API answer, made before it is sent. */
struct e2b_serve_reply {
    int status;
    json_t *body;  /* NULL: none */
    char *headers; /* extra "Name: value\r\n" lines, or NULL */
    char *raw;     /* a body that is not JSON (a page), or NULL */
    const char *raw_type; /* its Content-Type */
};
void e2b_serve_reply_release(struct e2b_serve_reply *out);

struct e2b_serve_conn {
    const struct e2b_serve_opts *o;
    int fd;
    struct strbuf in; /* bytes read and not used yet */
};

/* Append what the peer sent next to c->in, waiting until deadline_ms
 * (e2b_now_ms() clock; 0: no deadline). 1: bytes came; 0: the peer closed;
 * -1: error or deadline passed. */
int e2b_serve_conn_fill(struct e2b_serve_conn *c, int64_t deadline_ms);

/* Send a whole answer. body: JSON or NULL (no body; 1xx, 204 and 304 get no
 * Content-Length). extra_headers: "Name: value\r\n" lines or NULL. */
bool e2b_serve_respond(int fd, int status, const json_t *body, const char *extra_headers,
                       bool close_conn);
/* The same with a body that is not JSON (NUL-terminated). */
bool e2b_serve_respond_raw(int fd, int status, const char *type, const char *body, const char *extra_headers,
                           bool close_conn);
/* E2B's error body {code, message}. */
json_t *e2b_serve_error_body(int status, const char *fmt, ...) _printf_(2, 3);
/* The status E2B gives an e2b error: 404 not found, 400 invalid or
 * unsupported, 409 exists (or in use), 401, 403, 507 no space, else 500. */
int e2b_serve_status_of(const struct e2b_error *e);
/* What every API area answers with: E2B's error body and status in out
 * (replacing what was there); an e2b error with e2b_serve_status_of's. */
void e2b_serve_reply_error(struct e2b_serve_reply *out, int status, const char *fmt, ...) _printf_(3, 4);
void e2b_serve_reply_fail(struct e2b_serve_reply *out, const struct e2b_error *e);
/* A query parameter of plain digits within lo..hi (absent: def); false,
 * with a 400 in out, for anything else. */
bool e2b_serve_query_num(const char *query, struct e2b_serve_reply *out, const char *name, long long def,
                         long long lo, long long hi, long long *ret);
/* Answer an error and close: the answer first, then what the client still
 * sends is read and dropped for a while (bounded), so it reads the answer
 * instead of a reset caused by unread data. */
void e2b_serve_fail_and_close(struct e2b_serve_conn *c, int status, json_t *body);

#endif
