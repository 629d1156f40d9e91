/* code-client.h - the client side of E2B's code-interpreter protocol (the
 * server on port 49999 of a sandbox: envd-ci.h), over libcurl.
 *
 * A sandbox's code interpreter is reached like the SDK reaches it: through
 * a router with E2b-Sandbox-Id and E2b-Sandbox-Port: 49999 (`e2b serve`, or
 * E2B's sandbox.<domain>), at https://49999-<id>.<domain>, or, for a local
 * sandbox, over a connection the caller makes to port 49999 inside it.
 * POST /execute streams newline-delimited JSON; each line goes to the
 * caller as it arrives.
 */
#ifndef E2B_CODE_CLIENT_H
#define E2B_CODE_CLIENT_H

#include "error.h"
#include "json.h"
#include "sandbox-endpoint.h"

#define E2B_CODE_PORT 49999

struct e2b_code_target {
    char *base;         /* "http://127.0.0.1:3000", "https://49999-<id>.<domain>" */
    char *sandbox_id;   /* router headers, when base is a router */
    char *access_token; /* X-Access-Token */
    /* a local sandbox: a new connection to its port 49999 (base is then
     * http://localhost:49999); -1 on failure */
    int (*connect)(void *ud);
    void *connect_ud;
};

/* The code interpreter of the sandbox whose envd is ep (a remote one: a
 * 49983-<id> host becomes 49999-<id>, a router base stays with the
 * sandbox's headers). */
void e2b_code_target_from_envd(const struct e2b_envd_endpoint *ep, struct e2b_code_target *t);
void e2b_code_target_release(struct e2b_code_target *t);

/* POST /execute with req ({code, context_id?, language?, env_vars?}); each
 * line of the answer goes to on_line (borrowed; return <0 to stop).
 * timeout_ms 0: none. Error answers (404 unknown context, 401 ...) become
 * errors with the server's message. */
int e2b_code_execute(const struct e2b_code_target *t, const json_t *req, long timeout_ms,
                     int (*on_line)(json_t *line, void *ud), void *ud, struct e2b_error **err);
/* Any other call (/contexts ...): body may be NULL; *ret (may be NULL) gets
 * the JSON answer. */
int e2b_code_call(const struct e2b_code_target *t, const char *method, const char *path,
                  const json_t *body, json_t **ret, struct e2b_error **err);

#endif
