/* vm-relay.h - the host end of a microVM's link (vmlink.h): a thread of
 * the sandbox's supervisor that owns the link's socket to QEMU.
 *
 * In the state directory it listens on envd.sock (each connection becomes
 * a stream to envd in the guest, so the envd client, serve's router and
 * the SDKs reach a VM as they reach an ns sandbox) and on ports.sock (a
 * client writes "<port>\n" and reads "ok\n", then the stream, or
 * "error <errno> <reason>\n": e2b_vm_port_connect; or writes "suspend\n"
 * or "resume\n" and reads "ok\n" or the error: e2b_vm_link_control). It
 * answers the guest's HELLO with the CONFIG it was given (a guest restored
 * from a save gets RESUME with it instead), reports READY to the starting
 * supervisor, passes envd's output (LOG) to the supervisor's log pipe, and
 * copies QEMU's serial console to console.log (rotated to console.log.1 at
 * 1 MiB, so a guest cannot fill the host's disk). The thread knows nothing
 * of how QEMU was started: a VM restored from a snapshot gets a relay the
 * same way.
 */
#ifndef E2B_VM_RELAY_H
#define E2B_VM_RELAY_H

#include "error.h"

#define E2B_VM_CONSOLE_MAX (1 << 20)

struct e2b_vm_relay;

struct e2b_vm_relay_opts {
    const char *dir;    /* the sandbox's state directory */
    int link_fd;        /* our end of QEMU's chardev socket (owned from here) */
    int console_fd;     /* QEMU's serial output, read end (owned from here), or -1 */
    const char *config; /* the CONFIG message for the guest (JSON) */
    bool resume;        /* the guest was restored from a save: RESUME it with
                         * config at once (it says no HELLO) */
};

/* Bind envd.sock and ports.sock and start the thread. *ret_log_fd: the
 * read end of envd's output. */
int e2b_vm_relay_start(const struct e2b_vm_relay_opts *o, struct e2b_vm_relay **ret,
                       int *ret_log_fd, struct e2b_error **err);
/* Wait for the guest's READY: 0 once envd listens; the guest's reason,
 * E2B_ERR_TIMEOUT, or E2B_ERR_CANCELLED as soon as stop_fd (QEMU's pidfd)
 * is readable. */
int e2b_vm_relay_wait_ready(struct e2b_vm_relay *r, int stop_fd, int timeout_ms,
                            struct e2b_error **err);
/* End the thread (after the rest of the console, once QEMU is gone) and
 * free everything; every relayed connection is closed. */
void e2b_vm_relay_stop(struct e2b_vm_relay *r);

/* A connection to TCP port `port` on the guest's loopback, through the
 * relay of the sandbox in dir (a blocking socket). E2B_ERR_NETWORK when
 * nothing listens there. */
int e2b_vm_port_connect(const char *dir, int port, int *ret_fd, struct e2b_error **err);

/* Before the VM is stopped to be saved ("suspend": the link quiet, every
 * relayed connection closed, envd.sock taking none) and after it runs again
 * ("resume": the guest told the clock and its settings, READY back), through
 * the relay of the sandbox in dir. */
int e2b_vm_link_control(const char *dir, const char *what, int timeout_ms, struct e2b_error **err);

/* Unix sockets named name in dir, whatever the length of dir's path. */
int e2b_vm_unix_listen(const char *dir, const char *name, struct e2b_error **err);
int e2b_vm_unix_connect(const char *dir, const char *name, struct e2b_error **err);

#endif
