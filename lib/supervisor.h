/* supervisor.h - the process that owns one local sandbox.
 *
 * e2b_supervisor_start forks it double (setsid: it outlives the CLI that
 * created the sandbox; there is no daemon). The supervisor holds the
 * sandbox's supervisor.lock for the sandbox's whole life, starts it through
 * its runtime (runtime.h), runs the template's start and ready commands
 * through envd, writes the sandbox's log (envd's output, the start
 * command's, its own), and waits for the end: the deadline (kill, or pause
 * for a sandbox whose lifecycle says onTimeout: pause), SIGTERM (kill), or
 * the runtime's process gone, or a pause that saved the sandbox to disk
 * (sandbox-state.h: the state names where). Then it stops the runtime and
 * removes the state directory. SIGUSR1 tells it the state changed (a new deadline, a
 * pause, a resume). If the supervisor itself dies, the runtime takes the
 * sandbox down and the next e2b run reaps what is left (sandbox-state.h).
 */
#ifndef E2B_SUPERVISOR_H
#define E2B_SUPERVISOR_H

#include "runtime.h"

struct e2b_supervisor_args {
    const char *id;
    const char *dir;                  /* state directory (e2b_sandbox_dir_create_held) */
    int lock_fd;                      /* its supervisor.lock, held: passed on, closed here */
    const struct e2b_runtime_ops *rt;
    struct e2b_runtime_spec *spec;
    json_t *state;                    /* as written; the supervisor adds its pid */
    /* Restore the sandbox from the runtime's save there (runtime.h) instead
     * of starting it: a sandbox paused to disk, or a template's snapshot.
     * The template's start and ready commands ran before the save. With
     * restore_fallback, a save that cannot be restored here is said in the
     * sandbox's log and the sandbox starts afresh. */
    const char *restore_from;
    bool restore_fallback;
};

/* envd's /init body for the sandbox id with this state (JSON): its envs
 * (with E2B_SANDBOX_ID ...), default user and workdir, token ("" for none),
 * the clock now. envd reads it before it listens; a restore or a warm
 * sandbox's hand-out posts it. Caller frees. */
char *e2b_envd_init_body(const char *id, const json_t *state);

/* Start the supervisor and wait for its word. 0: the sandbox runs (envd
 * answers, the template's ready command succeeded). Else the reason: the
 * directory is gone if nothing was started; if the supervisor started, the
 * sandbox is on its way out (kill it to be sure). */
int e2b_supervisor_start(const struct e2b_supervisor_args *a, struct e2b_error **err);

#endif
