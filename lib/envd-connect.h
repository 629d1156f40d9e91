/* envd-connect.h - the Connect protocol (JSON codec) over envd-http.
 *
 * Unary calls: `application/json` bodies both ways; errors are HTTP statuses
 * with `{"code": "...", "message": "..."}`. Streams: `application/connect+json`
 * with enveloped frames (1 flag byte, 4-byte big-endian length, JSON); the
 * last frame has flag 0x02 and carries `{"error"?: {...}}`.
 * Also the proto3 JSON field readers the services use.
 */
#ifndef E2B_ENVD_CONNECT_H
#define E2B_ENVD_CONNECT_H

#include "envd-http.h"
#include "json.h"
#include "strbuf.h"

enum e2b_rpc_code {
    RPC_OK = 0,
    RPC_CANCELED,
    RPC_UNKNOWN,
    RPC_INVALID_ARGUMENT,
    RPC_DEADLINE_EXCEEDED,
    RPC_NOT_FOUND,
    RPC_ALREADY_EXISTS,
    RPC_PERMISSION_DENIED,
    RPC_RESOURCE_EXHAUSTED,
    RPC_FAILED_PRECONDITION,
    RPC_ABORTED,
    RPC_OUT_OF_RANGE,
    RPC_UNIMPLEMENTED,
    RPC_INTERNAL,
    RPC_UNAVAILABLE,
    RPC_DATA_LOSS,
    RPC_UNAUTHENTICATED,
};

#define E2B_RPC_FLAG_COMPRESSED 0x01
#define E2B_RPC_FLAG_END 0x02

const char *e2b_rpc_code_name(int code);
int e2b_rpc_code_http(int code);
int e2b_rpc_code_from_errno(int errnum);
/* From an e2b_error (its errno when set, else its code). */
int e2b_rpc_code_from_error(const struct e2b_error *err);

/* Unary replies. e2b_rpc_reply takes msg. */
void e2b_rpc_reply(struct e2b_http_req *req, json_t *msg);
void e2b_rpc_error(struct e2b_http_req *req, int code, const char *fmt, ...) _printf_(3, 4);
/* An error object {code, message} (for end-stream frames and unary bodies). */
json_t *e2b_rpc_error_json(int code, const char *msg);

/* Frame a message into buf (5-byte prefix + JSON). */
void e2b_rpc_frame(struct strbuf *buf, unsigned flags, const json_t *msg);
/* Parse one frame at data; returns its total size, 0 when incomplete, -1 when bad. */
ssize_t e2b_rpc_unframe(const char *data, size_t len, unsigned *flags, const char **payload,
                        size_t *plen);

/* Server streams. The stream frees itself when it ends (e2b_rpc_stream_end),
 * when the peer goes away, or when its deadline passes; on_gone runs in the
 * last two cases (reason RPC_CANCELED or RPC_DEADLINE_EXCEEDED) so the owner
 * can forget it. keepalive (taken, may be NULL) is sent every interval_s. */
struct e2b_rpc_stream;
typedef void (*e2b_rpc_stream_gone)(struct e2b_rpc_stream *s, int reason, void *arg);
struct e2b_rpc_stream *e2b_rpc_stream_start(struct e2b_http_req *req, json_t *keepalive,
                                            e2b_rpc_stream_gone on_gone, void *arg);
void e2b_rpc_stream_send(struct e2b_rpc_stream *s, json_t *msg);
/* End with code (RPC_OK for success) and free the stream. */
void e2b_rpc_stream_end(struct e2b_rpc_stream *s, int code, const char *msg);
/* The end-of-stream message itself: {}, {"error": {...}}, {"metadata": {...}}
 * (Connect wants each metadata value as an array of strings). Takes metadata. */
json_t *e2b_rpc_end_message(int code, const char *msg, json_t *metadata);
size_t e2b_rpc_stream_pending(const struct e2b_rpc_stream *s);
/* Called when the stream's queued output drains (for flow control). */
void e2b_rpc_stream_set_drain_cb(struct e2b_rpc_stream *s, void (*cb)(void *arg), void *arg);

/* Request headers. Connect-Timeout-Ms: returns 0 when absent, -1 when bad. */
int64_t e2b_rpc_timeout_ms(const struct e2b_http_req *req);

/* proto3 JSON readers: the field may be named in lowerCamelCase (jn) or as
 * in the .proto (pn); null counts as absent. On a wrong type they set err
 * (code E2B_ERR_INVALID) and return -1. Absent fields leave *ret untouched. */
json_t *e2b_pj_get(const json_t *obj, const char *jn, const char *pn);
int e2b_pj_str(const json_t *obj, const char *jn, const char *pn, const char **ret, struct e2b_error **err);
int e2b_pj_u32(const json_t *obj, const char *jn, const char *pn, uint32_t *ret, bool *present,
               struct e2b_error **err);
int e2b_pj_bool(const json_t *obj, const char *jn, const char *pn, bool *ret, struct e2b_error **err);
int e2b_pj_obj(const json_t *obj, const char *jn, const char *pn, json_t **ret, struct e2b_error **err);
/* bytes (base64); *ret malloc'd. */
int e2b_pj_bytes(const json_t *obj, const char *jn, const char *pn, uint8_t **ret, size_t *len,
                 bool *present, struct e2b_error **err);

/* RFC 3339 UTC with nanoseconds as protobuf Timestamp JSON wants it. */
char *e2b_rpc_timestamp(int64_t sec, long nsec);

#endif
