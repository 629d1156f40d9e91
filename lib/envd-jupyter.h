/* envd-jupyter.h - Jupyter kernels driven over the Jupyter messaging
 * protocol (5.3) on ZeroMQ (envd-zmtp.h), with no Jupyter server between.
 *
 * A kernel is found by name in the kernel specs Jupyter would find
 * ($JUPYTER_PATH, ~/.local/share/jupyter, /usr/local/share/jupyter,
 * /usr/share/jupyter: <dir>/kernels/<name>/kernel.json), started with a
 * connection file of its own (127.0.0.1, five free ports, a random
 * HMAC-SHA256 key, mode 0600 in a private directory) in a new session (so
 * its process group can be signalled and killed whole), and reached on its
 * five channels: shell, control and stdin (DEALER, one identity), iopub
 * (SUB, everything) and hb (REQ). Every message is signed and every
 * message received is checked against the key; an unsigned or badly signed
 * one is dropped.
 *
 * A kernel is ready once it answered kernel_info_request on shell and its
 * iopub status for one of them arrived (so nothing it publishes later can
 * be missed): the request is sent again every 200 ms until then, as
 * jupyter_client does. Interrupts follow the spec's interrupt_mode:
 * "signal" (the default) sends SIGINT to the kernel's process group,
 * "message" an interrupt_request on control. Shutdown asks on control and
 * kills the group after a grace period. The kernel's exit (SIGCHLD, reaped
 * here) is reported once; the rest of its process group is killed then.
 */
#ifndef E2B_ENVD_JUPYTER_H
#define E2B_ENVD_JUPYTER_H

#include "error.h"
#include "json.h"

struct event_base;
struct e2b_kernel;

struct e2b_kernelspec {
    char *name;     /* directory name: "python3" */
    char *dir;      /* its directory ({resource_dir}) */
    char **argv;    /* with {connection_file} and {resource_dir} unexpanded */
    char *language; /* "python" */
    char *display_name;
    json_t *env;            /* extra environment, or NULL */
    bool interrupt_message; /* interrupt_mode "message" */
};

void e2b_kernelspec_free(struct e2b_kernelspec *ks);
static inline void e2b_kernelspec_freep(struct e2b_kernelspec **ks) { e2b_kernelspec_free(*ks); }
/* The spec named `name` (E2B_ERR_NOT_FOUND when no directory has it). */
int e2b_kernelspec_find(const char *name, struct e2b_kernelspec **ret, struct e2b_error **err);

struct e2b_kernel_events {
    /* ready: kernel_info answered and iopub flowing */
    void (*on_ready)(struct e2b_kernel *k, void *arg);
    /* A message of the kernel on iopub or shell: {header, parent_header,
     * metadata, content}, borrowed. */
    void (*on_iopub)(struct e2b_kernel *k, json_t *msg, void *arg);
    void (*on_shell)(struct e2b_kernel *k, json_t *msg, void *arg);
    /* The kernel process ended (a wait status); called once, from the loop.
     * The kernel may be freed in it. */
    void (*on_exit)(struct e2b_kernel *k, int status, void *arg);
    void *arg;
};

/* Install the SIGCHLD handling on base (once, before starting kernels). */
int e2b_kernels_init(struct event_base *base, struct e2b_error **err);

/* Start a kernel of spec ks in cwd, with the process's environment plus
 * the spec's env and `env` (may be NULL). */
int e2b_kernel_start(const struct e2b_kernelspec *ks, const char *cwd, const json_t *env,
                     const struct e2b_kernel_events *ev, struct e2b_kernel **ret,
                     struct e2b_error **err);
int e2b_kernel_pid(const struct e2b_kernel *k);
/* Send execute_request on shell; returns its msg_id (the kernel's to free). */
const char *e2b_kernel_execute(struct e2b_kernel *k, const char *code, bool silent,
                               bool store_history);
void e2b_kernel_interrupt(struct e2b_kernel *k);
/* shutdown_request on control, then SIGKILL to the group after grace_ms. */
void e2b_kernel_shutdown(struct e2b_kernel *k, int grace_ms);
/* Frees the kernel (killing it first if it still runs); on_exit is not called. */
void e2b_kernel_free(struct e2b_kernel *k);


/* A new random UUID4 string (36 chars). */
char *e2b_uuid4(void);

#endif
