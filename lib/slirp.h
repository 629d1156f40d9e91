/* slirp.h - outbound network for a sandbox's network namespace: slirp4netns
 * (user-mode TCP/IP) attached to the namespace of a process, as tap0 with
 * 10.0.2.100/24, the gateway 10.0.2.2 and a resolver at 10.0.2.3, the
 * host's loopback unreachable (--disable-host-loopback). The ns runtime
 * attaches it to a sandbox's init; the vm runtime to QEMU's empty
 * namespace, beneath QEMU's own user-mode network.
 */
#ifndef E2B_SLIRP_H
#define E2B_SLIRP_H

#include "error.h"
#include <sys/types.h>

/* Attach slirp4netns to pid's network namespace (userns: the caller is not
 * root; pid is in a user namespace of its own), in sandbox id's cgroups.
 * *ret_exit_w: slirp4netns exits when this fd is closed (keep it for the
 * sandbox's life); *ret_pid: its pid. */
int e2b_slirp_start(const char *id, pid_t pid, bool userns, int *ret_exit_w, pid_t *ret_pid,
                    struct e2b_error **err);

/* The same for a network namespace named by a path (/proc/<pid>/fd/<fd>
 * of a namespace fd): a restore's, before any process is in it. Root only. */
int e2b_slirp_start_netns(const char *id, const char *netns_path, int *ret_exit_w, pid_t *ret_pid,
                          struct e2b_error **err);

#endif
