/* process-client.h - run processes in a sandbox through its envd
 * (process.Process over Connect JSON): foreground with output streamed and
 * stdin piped, background, and an interactive terminal. */
#ifndef E2B_PROCESS_CLIENT_H
#define E2B_PROCESS_CLIENT_H

#include "json.h"
#include "sandbox-endpoint.h"

struct e2b_run_opts {
    const char *const *argv;  /* argv[0] is the program; run through /bin/sh -c when shell */
    bool shell;               /* argv joined and run by /bin/bash -l -c (E2B SDK style) */
    json_t *envs;             /* {str:str} or NULL */
    const char *cwd;          /* NULL: the user's home / sandbox default */
    const char *user;         /* NULL: the sandbox's default user */
    const char *tag;
    bool send_stdin;          /* pipe our stdin to the process */
    long timeout_ms;          /* process lifetime (Connect-Timeout-Ms); 0: none */
    int out_fd, err_fd;       /* where output goes (1 and 2 normally) */
};

/* Run to the end. *ret_exit: the process's exit code (128+signal when killed). */
int e2b_process_run(const struct e2b_envd_endpoint *ep, const struct e2b_run_opts *o,
                    int *ret_exit, struct e2b_error **err);
/* Start and return once it runs; it keeps running without us. */
int e2b_process_start_background(const struct e2b_envd_endpoint *ep, const struct e2b_run_opts *o,
                                 unsigned *ret_pid, struct e2b_error **err);
/* Interactive terminal on our TTY (raw mode, resize on SIGWINCH) running the
 * user's login shell; returns its exit status. */
int e2b_process_terminal(const struct e2b_envd_endpoint *ep, const char *user, const char *cwd,
                         json_t *envs, int *ret_exit, struct e2b_error **err);

/* Re-attach to a running process (by pid, or by tag when tag is non-NULL):
 * its output streams to us, our stdin (if not a terminal) to it. */
int e2b_process_attach(const struct e2b_envd_endpoint *ep, const char *user, unsigned pid,
                       const char *tag, int *ret_exit, struct e2b_error **err);
/* One unary Connect call, e.g. "filesystem.Filesystem/ListDir"; *ret gets
 * the reply (may be NULL to ignore it). */
int e2b_envd_call(const struct e2b_envd_endpoint *ep, const char *user, const char *procedure,
                  json_t *msg, json_t **ret, struct e2b_error **err);
/* GET /files streamed into fd. */
int e2b_envd_download(const struct e2b_envd_endpoint *ep, const char *user, const char *path, int fd,
                      struct e2b_error **err);
/* POST /files (octet-stream) streamed from fd; parent dirs are created. */
int e2b_envd_upload(const struct e2b_envd_endpoint *ep, const char *user, const char *path, int fd,
                    struct e2b_error **err);

#endif
