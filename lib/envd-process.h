/* envd-process.h - the process.Process service: processes on pipes or a PTY,
 * run as the calling user, output broadcast to every attached stream. */
#ifndef E2B_ENVD_PROCESS_H
#define E2B_ENVD_PROCESS_H

#include "envd-state.h"

/* Install the SIGCHLD handler on the loop. */
int e2b_process_init(struct event_base *base, struct e2b_error **err);
/* Kill every child (at exit). */
void e2b_process_shutdown(void);
size_t e2b_process_count(void);

void e2b_process_start(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);
void e2b_process_connect(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);
void e2b_process_list(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);
void e2b_process_send_input(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);
void e2b_process_send_signal(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);
void e2b_process_close_stdin(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);
void e2b_process_update(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);
/* Client stream: takes the request body itself. */
void e2b_process_stream_input(struct e2b_http_req *req, const struct e2b_user *user);

/* The child's environment for user (PATH, HOME, USER, LOGNAME, globals, extra). */
char **e2b_process_env(const struct e2b_user *u, const json_t *extra);

#endif
