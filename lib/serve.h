/* serve.h - `e2b serve`: E2B's REST API over a backend, and the envd router.
 *
 * One listener. A request carrying `E2b-Sandbox-Id` (or a Host
 * `<port>-<sandboxID>.<domain>`) is relayed byte for byte to that sandbox's
 * envd (port 49983) or to whatever listens on that port on the sandbox's
 * loopback (backend port_connect), streamed both ways, upgrades included; a
 * closed port or unknown sandbox gets E2B's 502 JSON. Everything else is the REST API, authenticated
 * by `X-API-Key` against the keys of serve-keys.h. Each connection has its
 * own thread, so a long stream never holds up another request.
 */
#ifndef E2B_SERVE_H
#define E2B_SERVE_H

#include "backend.h"

struct e2b_serve_opts {
    const char *listen;          /* "127.0.0.1:3000" */
    const char *domain;          /* for <port>-<id>.<domain> hosts; NULL: any */
    struct e2b_backend *backend; /* where sandboxes live (local) */
    const char *keys_path;       /* serve-keys file */
    volatile int *stop;          /* set non-zero to stop (signal handler) */
    void (*on_ready)(const char *addr, void *ud); /* called once listening */
    void *ud;
};

int e2b_serve_run(const struct e2b_serve_opts *o, struct e2b_error **err);

#endif
