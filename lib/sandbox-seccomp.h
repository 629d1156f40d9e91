/* sandbox-seccomp.h - the system call filter every sandbox process runs under.
 * Denies (EPERM) what container runtimes deny: mounts, modules, keyrings,
 * bpf, perf, ptrace and what gets round it (process_vm_*, pidfd_getfd,
 * process_madvise), kexec, reboot, clock changes, swap, NUMA placement, new
 * namespaces, io_uring, handle-based opens, userfaultfd, personalities but
 * Docker's few, and the like. Loading needs no_new_privs or CAP_SYS_ADMIN. */
#ifndef E2B_SANDBOX_SECCOMP_H
#define E2B_SANDBOX_SECCOMP_H

#include "error.h"

#include <linux/filter.h>

/* The filter compiled once, to load in more than one process. */
struct e2b_seccomp_prog {
    struct sock_filter *insns;
    unsigned short len;
};
int e2b_seccomp_build(struct e2b_seccomp_prog *ret, struct e2b_error **err);
int e2b_seccomp_load(const struct e2b_seccomp_prog *p, struct e2b_error **err);
void e2b_seccomp_prog_release(struct e2b_seccomp_prog *p);
/* Build and load in this process. */
int e2b_seccomp_apply(struct e2b_error **err);

#endif
