/* serve-api.h - E2B's REST API (shared/reference/e2b-protocol.md section 2)
 * over a backend: sandboxes, their timeouts, pause and resume, metrics and
 * logs, and templates; E2B's status codes and {code, message} errors. */
#ifndef E2B_SERVE_API_H
#define E2B_SERVE_API_H

#include "http1.h"
#include "serve-conn.h"
#include "serve-opts.h"

/* Answer one API request (its body already read whole). Authenticates. */
void e2b_serve_api(const struct e2b_serve_opts *o, const struct e2b_http1_head *r,
                   const struct strbuf *body, struct e2b_serve_reply *out);

#endif
