/* envd-state.h - what envd's services share, below them: the agent's state
 * (set from envd's options, --init-fd and POST /init), the user a request
 * acts as, the access-token check, file system access as that user, and
 * the error replies.
 *
 * The services (envd-process, envd-fs, envd-files, envd-watch) include this
 * and never envd-server.h: envd-server.c sits above them, routes requests to
 * them and runs the loop.
 */
#ifndef E2B_ENVD_STATE_H
#define E2B_ENVD_STATE_H

#include "envd-connect.h"
#include "envd-users.h"

#define E2B_ENVD_VERSION "0.6.13"

/* PATH for children when envd has none. */
#define E2B_ENVD_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct event_base;

struct e2b_envd {
    struct event_base *base;
    struct e2b_http_server *http;
    char *access_token;    /* NULL: sandbox not secured */
    char *default_user;    /* used when a request names none */
    char *default_workdir; /* NULL: the user's home */
    json_t *env;           /* global env vars, set by /init */
    bool verbose;
    bool sync_clock;       /* /init's timestamp may set the clock */
};

extern struct e2b_envd e2b_envd;

/* The user a request acts as: `Authorization: Basic base64(user:)`, else
 * name (when non-NULL, e.g. /files' username), else the default user. */
int e2b_envd_request_user(struct e2b_http_req *req, const char *name, struct e2b_user **ret,
                          struct e2b_error **err);
/* Whether the request carries the right X-Access-Token (true when none is set). */
bool e2b_envd_token_ok(struct e2b_http_req *req);
/* Fail a server stream before it started: 200 and an end-stream error. */
void e2b_envd_stream_error(struct e2b_http_req *req, int code, const char *fmt, ...) _printf_(3, 4);
/* A plain-HTTP error in envd's API shape {"code": status, "message": ...}. */
void e2b_envd_http_error(struct e2b_http_req *req, int status, const char *fmt, ...) _printf_(3, 4);

/* Filesystem access as a user: while switched, the file system checks and
 * new files use the user's ids (setfsuid; envd is single-threaded). */
void e2b_envd_fs_as(const struct e2b_user *u);
void e2b_envd_fs_restore(void);

#endif
