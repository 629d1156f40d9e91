/* serve-auth.h - what E2B's CLI (`@e2b/cli`) logs in with, on `e2b serve`.
 *
 * `e2b auth login` of E2B's CLI opens <E2B_DOCS_BASE>/api/cli?next=
 * http://localhost:<port> in a browser, expects a redirect back to that
 * port with an email, OAuth access and refresh tokens and the token and
 * revoke endpoints, then asks GET /teams (Bearer access token) for its
 * project's API key. Here, with E2B_DOCS_BASE=<server>/docs:
 *
 *   GET  /docs/api/cli?next=...      a page asking for an API key of this
 *                                    server (`e2b key create`)
 *   POST /docs/api/cli               the key checked, then 302 to `next`
 *                                    (only http://localhost or 127.0.0.1)
 *                                    with tokens that stand for that key
 *   GET  /teams                      [{teamID, name, apiKey, isDefault}]
 *   POST /oauth/token                refresh_token -> new tokens
 *   POST /oauth/revoke               forget them
 *
 * Tokens live in the server's memory (a restart logs everyone out) and
 * stand for their key only while `e2b key` still knows it.
 */
#ifndef E2B_SERVE_AUTH_H
#define E2B_SERVE_AUTH_H

#include "http1.h"
#include "serve-conn.h"

/* One of the routes above (they take no X-API-Key): true when answered. */
bool e2b_serve_auth(const struct e2b_serve_opts *o, const struct e2b_http1_head *r,
                    const struct strbuf *body, struct e2b_serve_reply *out);

#endif
