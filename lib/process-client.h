/* process-client.h - run processes in a sandbox through its envd, on top of
 * sandbox-client.h: in the foreground with output streamed and stdin piped,
 * in the background, re-attached, and as an interactive terminal.
 *
 * Output that cannot be written where it goes (a full disk, a closed pipe
 * with SIGPIPE ignored) ends the call with an error naming it ("cannot write
 * to stdout: No space left on device"): the command's output is never lost
 * silently. A process we started (run, terminal) is then killed, as a local
 * one ends on a closed pipe, since envd would keep it running; one we only
 * attached to goes on.
 */
#ifndef E2B_PROCESS_CLIENT_H
#define E2B_PROCESS_CLIENT_H

#include "json.h"
#include "sandbox-client.h"
#include "sandbox-endpoint.h"

struct e2b_run_opts {
    const char *const *argv;  /* argv[0] is the program (no shell is added) */
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
/* Re-attach to a running process (by pid, or by tag when sel.tag is set):
 * its output streams to our stdout and stderr, our stdin (if not a
 * terminal) to it. */
int e2b_process_attach(const struct e2b_envd_endpoint *ep, const char *user,
                       struct e2b_process_sel sel, int *ret_exit, struct e2b_error **err);

struct e2b_terminal_opts {
    const char *const *argv;  /* NULL: the user's login shell (bash, else sh) */
    json_t *envs;             /* {str:str} or NULL; TERM and LANG are added when missing */
    const char *cwd;
    const char *user;
};

/* An interactive terminal on our stdin and stdout: a pty in the sandbox,
 * our TTY (when stdin is one) in raw mode and put back on every way out,
 * the signals that end us included; SIGWINCH resizes the remote pty. Input
 * that is not a terminal is sent as typed, then ^D when it runs out.
 * *ret_exit: the program's exit status. */
int e2b_process_terminal(const struct e2b_envd_endpoint *ep, const struct e2b_terminal_opts *o,
                         int *ret_exit, struct e2b_error **err);

#endif
