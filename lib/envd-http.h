/* envd-http.h - a small event-driven HTTP/1.1 server on libevent bufferevents.
 *
 * Why not evhttp: libevent 2.1's evhttp reads a whole request body into
 * memory before it calls the handler (there is no server-side hook between
 * the headers and the body), and envd must stream uploads of any size to
 * disk and read client-streaming RPC bodies as they arrive. This layer keeps
 * evhttp's model (one thread, callbacks, keep-alive, chunked replies) and
 * adds body streaming, 100-continue, zero-copy file replies and peer-close
 * notification for long-lived streams. Heads and body framing are read by
 * http1.c, the parser `e2b serve` uses too, so the router in front of envd
 * and envd can never disagree on where a request ends.
 *
 * The handler is called once the request head is parsed. It must then
 * either reply, or take the body with e2b_http_read_body (buffered, bounded)
 * or e2b_http_stream_body (callbacks per piece). A body left untaken when the
 * reply completes is drained and dropped.
 *
 * Like upstream envd there is no connection cap and no header or idle
 * timeout: an idle connection costs one bufferevent; descriptors
 * (RLIMIT_NOFILE, raised to its hard limit) are the cap, and at EMFILE the
 * listeners pause 100 ms instead of spinning. Memory per connection is
 * bounded: a head by 64 KiB, a buffered body by its handler's max, a
 * streamed body by pausing (e2b_http_pause_body), replies by the
 * handlers' flow control (e2b_http_pending, drain callbacks).
 */
#ifndef E2B_ENVD_HTTP_H
#define E2B_ENVD_HTTP_H

#include "error.h"

struct event_base;
struct evbuffer;
struct e2b_http_server;
struct e2b_http_req;

typedef void (*e2b_http_handler)(struct e2b_http_req *req, void *arg);

struct e2b_http_server *e2b_http_server_new(struct event_base *base, e2b_http_handler h, void *arg);
void e2b_http_server_free(struct e2b_http_server *srv);
/* addr may be NULL (0.0.0.0). */
int e2b_http_listen_tcp(struct e2b_http_server *srv, const char *addr, int port, struct e2b_error **err);
int e2b_http_listen_unix(struct e2b_http_server *srv, const char *path, struct e2b_error **err);
/* A socket already bound and listening (its owner bound it where envd cannot see). */
int e2b_http_listen_fd(struct e2b_http_server *srv, int fd, struct e2b_error **err);
/* Number of open connections. */
size_t e2b_http_nconns(const struct e2b_http_server *srv);
/* Drop every connection that came over a unix socket, as if its client
 * went: what they were doing ends (a command's stream; the command runs on). */
void e2b_http_drop_unix_conns(struct e2b_http_server *srv);
/* The loop a request is served on (for the timers of a long reply). */
struct event_base *e2b_http_event_base(const struct e2b_http_req *req);
/* A header every response carries (CORS, say), even the server's own 400s.
 * Returns <0 (and adds nothing) when name or value is not a valid header. */
int e2b_http_server_add_header(struct e2b_http_server *srv, const char *name, const char *value);

const char *e2b_http_method(const struct e2b_http_req *req);
/* The decoded path, without the query string. */
const char *e2b_http_path(const struct e2b_http_req *req);
/* A decoded query parameter, NULL when absent. */
const char *e2b_http_query(const struct e2b_http_req *req, const char *key);
/* A request header (case-insensitive name), NULL when absent. */
const char *e2b_http_header(const struct e2b_http_req *req, const char *name);
/* Iterate headers: returns false past the end. */
bool e2b_http_header_at(const struct e2b_http_req *req, size_t i, const char **name,
                        const char **value);

/* Buffer the whole body (at most max bytes, else 413) then call done; done
 * gets body NULL when the body was refused or cut (the reply is then made). */
typedef void (*e2b_http_body_done)(struct e2b_http_req *req, struct evbuffer *body, void *arg);
void e2b_http_read_body(struct e2b_http_req *req, size_t max, e2b_http_body_done done, void *arg);
/* Stream the body. on_data returns <0 to stop taking data (the rest is then
 * drained and dropped); on_end gets complete=false when the body was cut. */
typedef int (*e2b_http_body_data)(struct e2b_http_req *req, const char *data, size_t len, void *arg);
typedef void (*e2b_http_body_end)(struct e2b_http_req *req, bool complete, void *arg);
void e2b_http_stream_body(struct e2b_http_req *req, e2b_http_body_data on_data, e2b_http_body_end on_end,
                          void *arg);
/* Backpressure for a streamed body: while paused no more data is handed to
 * on_data (not even the rest of what was read) and the socket is not read,
 * so the peer waits in TCP. Resuming goes on where it stopped. */
void e2b_http_pause_body(struct e2b_http_req *req, bool pause);

/* Replies. Headers must be added before the reply starts. A name that is
 * not a token or a value with a control character (CR, LF: header
 * injection) is refused: nothing is added and the call returns <0. */
int e2b_http_add_header(struct e2b_http_req *req, const char *name, const char *value);
/* Whether name: value may go into a response head as it is. */
bool e2b_http_header_valid(const char *name, const char *value);
void e2b_http_reply(struct e2b_http_req *req, int status, const char *ctype, const void *body, size_t len);
/* A reply whose body is moved out of buf (no copy); buf is left empty. */
void e2b_http_reply_buffer(struct e2b_http_req *req, int status, const char *ctype, struct evbuffer *buf);
/* A reply whose body is a range of an open file (sent with sendfile); takes fd. */
void e2b_http_reply_file(struct e2b_http_req *req, int status, const char *ctype, int fd, off_t len);
/* Streaming reply (chunked for HTTP/1.1). */
void e2b_http_reply_start(struct e2b_http_req *req, int status, const char *ctype);
void e2b_http_reply_chunk(struct e2b_http_req *req, const void *data, size_t len);
void e2b_http_reply_end(struct e2b_http_req *req);
/* Bytes queued for the peer and not yet written. */
size_t e2b_http_pending(const struct e2b_http_req *req);
/* Called when the output drains below the low mark during a streaming reply. */
void e2b_http_set_drain_cb(struct e2b_http_req *req, void (*cb)(struct e2b_http_req *, void *), void *arg);
/* Called once when the peer goes away before the reply ended. The request
 * is freed right after it returns; never touch req afterwards. */
void e2b_http_set_close_cb(struct e2b_http_req *req, void (*cb)(struct e2b_http_req *, void *), void *arg);

#endif
