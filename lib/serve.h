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

#include "backend.h"

struct e2b_serve_opts {
    const char *listen;          /* "127.0.0.1:3000" */
    const char *domain;          /* for <port>-<id>.<domain> hosts; NULL: any, 20-char IDs */
    struct e2b_backend *backend; /* where sandboxes live (local) */
    const char *keys_path;       /* serve-keys file */
    bool deny_internet;          /* sandboxes get internet only when asked for it */
    int max_connections;         /* 0: the default (1024) */
    int head_timeout_ms;         /* a request head must arrive within; 0: 30 s */
    int idle_timeout_ms;         /* a kept-alive connection may idle for; 0: 120 s */
    volatile int *stop;          /* set non-zero to stop (signal handler) */
    struct e2b_serve_spawner *spawner; /* set by e2b_serve_run (serve-spawn.h) */
    void (*on_ready)(const char *addr, void *ud); /* called once listening */
    void *ud;
};

int e2b_serve_run(const struct e2b_serve_opts *o, struct e2b_error **err);

#endif
