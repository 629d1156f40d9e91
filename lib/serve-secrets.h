/* serve-secrets.h - E2B's /secrets in `e2b serve`: create, list (paged),
 * get, update and delete through the backend's secrets area; no answer ever
 * carries a value (secret-store.h keeps them sealed). */
#ifndef E2B_SERVE_SECRETS_H
#define E2B_SERVE_SECRETS_H

#include "http1.h"
#include "serve-conn.h"
#include "serve-opts.h"

/* /secrets[/{id or name}], authenticated already. */
void e2b_serve_secrets(const struct e2b_serve_opts *o, const struct e2b_http1_head *r,
                       const struct strbuf *body, struct e2b_serve_reply *out);

#endif
