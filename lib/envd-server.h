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
#include "envd-watch.h"
#include "opt.h"

#define E2B_ENVD_DEFAULT_PORT 49983

#define E2B_ENVD_STR_(x)      #x
#define E2B_ENVD_STR(x)       E2B_ENVD_STR_(x)
/* envd's options, written once: the table envd's parser and its --help use
 * and `e2b envd`'s (cmd/envd.c) are both this list, so `envd --help` and
 * `e2b envd --help` name the same options. The last three are upstream
 * envd's, which its starters may pass. */
#define E2B_ENVD_OPTIONS                                                                           \
    E2B_OPT_STRING(0, "port", "PORT",                                                              \
                   "TCP port on 0.0.0.0 (default " E2B_ENVD_STR(E2B_ENVD_DEFAULT_PORT) ")"),       \
        E2B_OPT_LIST(0, "listen", "ADDR:PORT", "listen on this TCP address instead (repeatable)"), \
        E2B_OPT_STRING_C(0, "unix", "PATH", "also listen on a unix socket", E2B_COMPLETE_FILE),    \
        E2B_OPT_FLAG(0, "no-tcp", "no TCP listener (with --unix or --listen-fd)"),                 \
        E2B_OPT_STRING(0, "user", "USER", "default user before /init (default root)"),             \
        E2B_OPT_STRING(0, "access-token", "TOKEN",                                                 \
                       "require X-Access-Token, as /init would set it"),                           \
        E2B_OPT_FLAG(0, "sync-clock", "let /init's timestamp set the system clock"),               \
        E2B_OPT_STRING(0, "ready-fd", "N",                                                         \
                       "write one byte to fd N once listening, then close it"),                    \
        E2B_OPT_STRING(0, "listen-fd", "N", "also accept on fd N, a socket already listening"),    \
        E2B_OPT_STRING(0, "local-listen", "ADDR:PORT",                                             \
                       "serve only /health and /envs there (for the sandbox's own processes)"),    \
        E2B_OPT_STRING(0, "init-fd", "N",                                                          \
                       "read a POST /init body from fd N (to EOF) before listening"),              \
        E2B_OPT_STRING(                                                                            \
            0, "watcher-idle-timeout", "SECONDS",                                                  \
            "remove a polled watcher nobody polled for this long (default " E2B_ENVD_STR(          \
                E2B_WATCH_IDLE_TIMEOUT_DEFAULT) ")"),                                              \
        E2B_OPT_FLAG('v', "verbose", "log requests to stderr"),                                    \
        E2B_OPT_FLAG(0, "version", "print the version"),                                           \
        E2B_OPT_FLAG(0, "isnotfc", "upstream envd's: no effect here"),                             \
        E2B_OPT_FLAG(0, "no-cgroups", "upstream envd's: no effect here"),                          \
        E2B_OPT_STRING(0, "cgroup-root", "PATH", "upstream envd's: no effect here")

/* The envd applet: `envd [options]`; Go's flag package, which upstream
 * envd uses, takes -name as well as --name, and so does this. */
int e2b_envd_main(int argc, char **argv);
/* envd with its options parsed against E2B_ENVD_OPTIONS: runs until
 * SIGTERM or SIGINT. 0, 1 when it cannot serve, 2 on a bad option value. */
int e2b_envd_run(const struct e2b_args *args);
/* What e2b_envd_main sets up before it listens: e2b_envd.base, e2b_envd.http
 * (no listeners: add them with e2b_http_listen_*) and the services' state.
 * A harness can drive a whole envd through this, in its own loop. */
int e2b_envd_serve_init(struct e2b_error **err);

/* Handlers of Connect procedures. msg and user belong to the caller. */
typedef void (*e2b_envd_rpc_fn)(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);

#endif
