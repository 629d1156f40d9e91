/* sandbox-seccomp.h - the system call filter every sandbox process runs under.
 * Denies (EPERM) what container runtimes deny: mounts, modules, keyrings,
 * bpf, perf, ptrace, kexec, reboot, clock changes, new namespaces, io_uring,
 * handle-based opens and the like. Needs no_new_privs or CAP_SYS_ADMIN. */
#ifndef E2B_SANDBOX_SECCOMP_H
#define E2B_SANDBOX_SECCOMP_H

#include "error.h"

int e2b_seccomp_apply(struct e2b_error **err);

#endif
