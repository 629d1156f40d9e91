/* serve.h - `e2b serve`: E2B's REST API over a backend, and the envd router.
 *
 * One listener. A request carrying `E2b-Sandbox-Id` (or a Host
 * `<port>-<sandboxID>.<domain>`) is relayed to that sandbox's envd (port
 * 49983) or to whatever listens on that port on the sandbox's loopback
 * (serve-router.h). Everything else is the REST API (serve-api.h),
 * authenticated by `X-API-Key` against the keys of serve-keys.h. Each
 * connection has its own thread, so a long stream never holds up another
 * request; heads and bodies must arrive in bounded time and the number of
 * connections is capped, so slow or many clients cannot starve the rest.
 */
#ifndef E2B_SERVE_H
#define E2B_SERVE_H

#include "serve-opts.h"

int e2b_serve_run(const struct e2b_serve_opts *o, struct e2b_error **err);

#endif
