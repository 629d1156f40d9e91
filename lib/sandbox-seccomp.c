/* sandbox-seccomp.c - see sandbox-seccomp.h */
#include "sandbox-seccomp.h"

#include <sched.h>
#include <seccomp.h>

static const char *const denied[] = {
    "mount", "umount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr",
    "init_module", "finit_module", "delete_module", "create_module", "query_module",
    "get_kernel_syms",
    "add_key", "request_key", "keyctl",
    "bpf", "perf_event_open", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "kexec_load", "kexec_file_load", "reboot",
    "clock_settime", "clock_adjtime", "settimeofday", "adjtimex", "stime",
    "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "lookup_dcookie", "syslog",
    "iopl", "ioperm", "vhangup", "nfsservctl", "uselib", "sysfs", "_sysctl",
    "unshare", "setns",
    "open_by_handle_at", "name_to_handle_at", "userfaultfd", "fanotify_init",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
};

int e2b_seccomp_apply(struct e2b_error **err)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return e2b_error_set(err, E2B_ERR_GENERIC, "cannot set up the seccomp filter");
    int r = 0;
    for (size_t i = 0; i < ARRAY_SIZE(denied) && r == 0; i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr == __NR_SCMP_ERROR || nr < 0)
            continue; /* not on this architecture */
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    /* clone may make processes and threads, but no namespaces: one rule per
     * flag (rules for one call are OR-ed). */
    static const unsigned long ns_flags[] = {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC,
                                             CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                                             CLONE_NEWCGROUP};
    for (size_t i = 0; i < ARRAY_SIZE(ns_flags) && r == 0; i++)
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    /* clone3 passes flags in memory a filter cannot read: make libc fall back to clone. */
    if (r == 0)
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (r == 0)
        r = seccomp_load(ctx);
    seccomp_release(ctx);
    if (r < 0)
        return e2b_error_sys(err, -r, "cannot load the seccomp filter");
    return 0;
}
