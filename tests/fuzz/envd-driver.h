/* envd-driver.h - a whole envd inside the fuzz jail, for the harnesses that
 * talk to it as a client would (fuzz-envd-http, fuzz-connect).
 *
 * envd's own state (e2b_envd_serve_init) with one listener, a unix socket
 * with an abstract address of its own; each exchange connects to it, sends
 * bytes, runs envd's libevent loop (in this thread) until envd has answered
 * and gone quiet, reads what came back and hangs up. Everything envd reaches
 * stays in the jail: a tmpfs with /etc/passwd and /etc/group (root, user,
 * nobody), /home/user and a few files, rewritten before every input.
 */
#ifndef E2B_FUZZ_ENVD_DRIVER_H
#define E2B_FUZZ_ENVD_DRIVER_H

#include "strbuf.h"

#include <stdbool.h>
#include <stddef.h>

#define FUZZ_ENVD_TOKEN "fuzz-token"
#define FUZZ_ENVD_HOME "/home/user"

/* Enter the jail and start envd in it (from LLVMFuzzerInitialize). */
void fuzz_envd_start(void);

/* Before each input: the jail's files as new, envd's settings as at start
 * (default user "user", or root when `root`; the access token
 * FUZZ_ENVD_TOKEN when `secured`), no processes, no watchers. */
void fuzz_envd_reset(bool root, bool secured);

struct fuzz_envd_exchange {
    struct strbuf out; /* what envd sent back */
    bool closed;       /* envd closed the connection */
};

/* One connection: send data (in pieces of varying size when split is not
 * 0, else at once), half-close after it when shut_wr, and collect the
 * answer. Checks that envd lets the connection go once we hang up. */
void fuzz_envd_exchange(const void *data, size_t len, unsigned split, bool shut_wr, struct fuzz_envd_exchange *x);
void fuzz_envd_exchange_release(struct fuzz_envd_exchange *x);

/* What a response of envd's must look like, as checked by
 * fuzz_envd_check_responses. */
struct fuzz_envd_response {
    int status;
    char *ctype;         /* Content-Type, or NULL */
    struct strbuf body;  /* payload, de-chunked */
    bool complete;       /* the whole body came */
    bool close;          /* Connection: close */
    unsigned continues;  /* interim "100 Continue"s before it */
};

/* Parse envd's answer as the sequence of responses it must be, with
 * serve's strict parser (serve relays envd's responses and refuses what it
 * cannot read): every head well-formed with a status line and CORS, bodies
 * correctly framed (request_method: the method of every request, or NULL
 * when HEAD may be among them: then only the first head is checked), only
 * the last one cut short, nothing after a "Connection: close" one, Connect
 * streams made of envelopes ending in exactly one end-of-stream frame.
 * Returns the number of responses (interim 100s not counted, nor returned). */
size_t fuzz_envd_check_responses(const struct fuzz_envd_exchange *x, const char *request_method,
                                 struct fuzz_envd_response **ret);
void fuzz_envd_responses_free(struct fuzz_envd_response *r, size_t n);

/* A Connect stream body: every frame's JSON is an object, the last frame
 * and only it is the end of the stream, whose error (if any) is
 * {code: <a Connect code>, message?}. Checks and returns the end message's
 * error code name, or NULL for success ("" when the stream was cut). */
const char *fuzz_envd_check_stream(const struct strbuf *body, bool complete);

#endif
