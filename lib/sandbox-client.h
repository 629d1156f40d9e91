/* sandbox-client.h - the client side of E2B's envd protocol, over libcurl:
 * the one place that builds envd requests.
 *
 * Everything the CLI does inside a sandbox goes through here: Connect-RPC
 * with the JSON codec (unary calls and server streams) to process.Process
 * and filesystem.Filesystem, and /files uploads and downloads. The envd is
 * reached through a struct e2b_envd_endpoint: a unix socket
 * ("unix:/run/e2b/<id>/envd.sock") or a TCP base URL, directly or through a
 * router (then E2b-Sandbox-Id / E2b-Sandbox-Port name the sandbox). The user
 * rides in `Authorization: Basic base64("user:")`, the access token in
 * X-Access-Token. Running processes (exec, attach, a terminal) is built on
 * this in process-client.h.
 *
 * Streams are read as they arrive: the response body is cut into Connect
 * envelopes (1 flag byte, 4-byte big-endian length, JSON) by an incremental
 * decoder, so a frame split across reads or several frames in one read are
 * both fine. Flag 0x02 marks the end-of-stream frame, whose optional
 * {"error":{"code","message"}} becomes the call's error.
 *
 * Whole files never sit in memory: uploads read from a descriptor as curl
 * sends, downloads write to one as bytes come.
 */
#ifndef E2B_SANDBOX_CLIENT_H
#define E2B_SANDBOX_CLIENT_H

#include "backend.h"
#include "error.h"
#include "json.h"
#include "strbuf.h"

#define E2B_ENVD_PORT 49983

/* ---- Connect envelopes ------------------------------------------------- */

#define E2B_CONNECT_FLAG_COMPRESSED 0x01
#define E2B_CONNECT_FLAG_END 0x02
/* Frames larger than this are refused (a broken or hostile peer). */
#define E2B_CONNECT_MAX_FRAME (64u << 20)

/* Called with each message frame (not the end frame), already parsed;
 * the callback borrows msg. Return <0 to stop reading (the call then ends
 * with no error of its own). */
typedef int e2b_connect_msg_fn(json_t *msg, void *ud);

struct e2b_connect_decoder {
    struct strbuf buf;          /* bytes of the frame not complete yet */
    e2b_connect_msg_fn *on_msg;
    void *ud;
    bool ended;                 /* the end-of-stream frame was seen */
    bool stopped;               /* on_msg asked to stop */
    size_t frames;              /* message frames delivered */
    struct e2b_error *err;      /* end-stream error or a malformed stream */
};

void e2b_connect_decoder_init(struct e2b_connect_decoder *d, e2b_connect_msg_fn *on_msg, void *ud);
void e2b_connect_decoder_release(struct e2b_connect_decoder *d);
/* Feed bytes as they arrive. Returns 0 to go on, <0 when reading should stop:
 * d->stopped (the callback's wish), d->err (bad frame, error end frame) or
 * d->ended with bytes after the end frame (an error too). */
int e2b_connect_decoder_feed(struct e2b_connect_decoder *d, const void *data, size_t len);
/* At the end of the body: was the stream whole? Returns 0 when it ended with
 * a clean end frame (or the callback stopped it); else -1 and *err (taken
 * from d->err, or "ended before its end frame"). */
int e2b_connect_decoder_finish(struct e2b_connect_decoder *d, struct e2b_error **err);
/* Append one envelope (flags, length, JSON of msg) to out. */
void e2b_connect_envelope(struct strbuf *out, unsigned flags, const json_t *msg);
/* A Connect error code ("not_found") to an e2b error code. */
int e2b_connect_errcode(const char *code);

/* ---- the client -------------------------------------------------------- */

struct e2b_envd_client {
    const struct e2b_envd_endpoint *ep;  /* base, sandbox id (router), access token */
    const char *user;                    /* Basic auth user; NULL: the sandbox's default */
    unsigned port;                       /* E2b-Sandbox-Port; 0: 49983 */
    unsigned keepalive_s;                /* Keepalive-Ping-Interval on streams; 0: none */
    long unary_timeout_ms;               /* unary calls; 0: 30 s, <0: no limit */
};

/* One unary call: POST /<procedure> with req as JSON. *ret (may be NULL)
 * gets the reply object. Connect errors become e2b errors with the server's
 * message ("envd: not_found: /x: no such file or directory"). */
int e2b_envd_unary(const struct e2b_envd_client *c, const char *procedure, const json_t *req,
                   json_t **ret, struct e2b_error **err);

/* ---- process.Process ---------------------------------------------------- */

/* Which process: pid when tag is NULL. */
struct e2b_process_sel {
    unsigned pid;
    const char *tag;
};

enum e2b_output_kind { E2B_OUT_STDOUT, E2B_OUT_STDERR, E2B_OUT_PTY };

struct e2b_process_end {
    int exit_code;     /* 0..255, or 128+N when killed by signal N */
    bool exited;       /* ended by exit(), not a signal */
    const char *status; /* "exit status 1", "signal: killed" (borrowed) */
    const char *error;  /* or NULL (borrowed) */
};

/* What a Start or Connect stream reports; any callback may be NULL.
 * Returning <0 from one stops the stream (the process goes on). */
struct e2b_process_events {
    int (*on_start)(unsigned pid, void *ud);
    int (*on_output)(enum e2b_output_kind kind, const void *data, size_t len, void *ud);
    int (*on_end)(const struct e2b_process_end *end, void *ud);
    void *ud;
};

/* Decode one ProcessEvent ({"event":{...}} message) into the callbacks. */
int e2b_process_event_dispatch(json_t *msg, const struct e2b_process_events *ev);
/* An EndEvent's exit status as a shell would show it (128+signal). */
int e2b_process_end_code(const json_t *end);

/* StartRequest {process:{cmd,args,envs,cwd}, pty?, tag?, stdin}. */
json_t *e2b_process_start_request(const char *const *argv, const json_t *envs, const char *cwd,
                                  const char *tag, bool stdin_open, unsigned pty_cols,
                                  unsigned pty_rows);
int e2b_envd_process_start(const struct e2b_envd_client *c, const json_t *start_req, long timeout_ms,
                           const struct e2b_process_events *ev, struct e2b_error **err);
int e2b_envd_process_connect(const struct e2b_envd_client *c, struct e2b_process_sel sel,
                             const struct e2b_process_events *ev, struct e2b_error **err);
int e2b_envd_process_send_input(const struct e2b_envd_client *c, struct e2b_process_sel sel, bool pty,
                                const void *data, size_t len, struct e2b_error **err);
int e2b_envd_process_close_stdin(const struct e2b_envd_client *c, struct e2b_process_sel sel,
                                 struct e2b_error **err);
/* signum: 9 or 15 (the protocol has only these two). */
int e2b_envd_process_signal(const struct e2b_envd_client *c, struct e2b_process_sel sel, int signum,
                            struct e2b_error **err);
int e2b_envd_process_resize(const struct e2b_envd_client *c, struct e2b_process_sel sel,
                            unsigned cols, unsigned rows, struct e2b_error **err);

/* ---- filesystem.Filesystem --------------------------------------------- */

/* The unary calls (Stat, ListDir, MakeDir, Move, Remove) go through
 * e2b_envd_unary with their JSON as the protocol has it. */

/* WatchDir stream: fn gets each FilesystemEvent object {name, type, entry?};
 * on_started (may be NULL) runs once the watch is in place. timeout_ms (0:
 * none) bounds the watch; its end is then an E2B_ERR_TIMEOUT error. */
int e2b_envd_fs_watch(const struct e2b_envd_client *c, const char *path, bool recursive,
                      long timeout_ms, int (*on_started)(void *ud), int (*fn)(json_t *event, void *ud), void *ud,
                      struct e2b_error **err);
/* "FILE_TYPE_DIRECTORY" -> "dir" etc.; "EVENT_TYPE_CREATE" -> "create". */
const char *e2b_envd_short_type(const char *proto_enum);

/* ---- /files ------------------------------------------------------------ */

/* GET /files: the file's bytes go to fd as they come. fd_name says where
 * that is in errors ("stdout", "'out.txt'"): a write that fails ends the
 * download with "cannot write to stdout: No space left on device". */
int e2b_envd_file_download(const struct e2b_envd_client *c, const char *path, int fd,
                           const char *fd_name, struct e2b_error **err);
/* POST /files as application/octet-stream, read from fd as curl sends
 * (Content-Length when fd is a regular file, else chunked); fd_name names
 * it in errors. envd makes the parent directories. */
int e2b_envd_file_upload(const struct e2b_envd_client *c, const char *path, int fd,
                         const char *fd_name, struct e2b_error **err);

#endif
