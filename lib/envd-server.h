/* envd-server.h - envd, the in-sandbox agent: routing and the entry point.
 *
 * One thread, one libevent loop. Routes: Connect services process.Process
 * and filesystem.Filesystem (envd-process, envd-fs, envd-watch), /files
 * (envd-files), /health, /init, /envs, /metrics (here). What the services
 * share (state, users, tokens, error replies) is below them in envd-state.
 * See shared/reference/e2b-protocol.md section 3 for the wire facts.
 */
#ifndef E2B_ENVD_SERVER_H
#define E2B_ENVD_SERVER_H

#include "envd-state.h"

#define E2B_ENVD_DEFAULT_PORT 49983

/* The envd applet: `envd [--port N] [--listen ADDR:PORT] [--unix PATH] [--no-tcp]
 * [--local-listen ADDR:PORT] [-v]`. */
int e2b_envd_main(int argc, char **argv);
/* What e2b_envd_main sets up before it listens: e2b_envd.base, e2b_envd.http
 * (no listeners: add them with e2b_http_listen_*) and the services' state.
 * A harness can drive a whole envd through this, in its own loop. */
int e2b_envd_serve_init(struct e2b_error **err);

/* Handlers of Connect procedures. msg and user belong to the caller. */
typedef void (*e2b_envd_rpc_fn)(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);

#endif
