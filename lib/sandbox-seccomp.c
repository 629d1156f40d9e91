/* sandbox-seccomp.c - see sandbox-seccomp.h */
#include "sandbox-seccomp.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>

/* libseccomp's SCMP_A0() leaves datum_b out, which clang (not gcc) reports. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* Denied outright: what Docker's default profile denies, or allows only
 * with capabilities a sandbox does not have (CAP_SYS_ADMIN, SYS_PTRACE,
 * SYS_NICE, SYS_MODULE, SYS_TIME, SYS_BOOT, SYS_PACCT, SYS_RAWIO ...). */
static const char *const denied[] = {
    /* mounts and handles */
    "mount", "umount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "open_by_handle_at", "name_to_handle_at",
    /* modules and the kernel */
    "init_module", "finit_module", "delete_module", "create_module", "query_module",
    "get_kernel_syms", "kexec_load", "kexec_file_load", "reboot", "syslog", "uselib", "sysfs",
    "_sysctl", "nfsservctl", "lookup_dcookie", "ustat", "vm86", "vm86old",
    /* keys, bpf, perf */
    "add_key", "request_key", "keyctl", "bpf", "perf_event_open", "fanotify_init", "userfaultfd",
    /* other processes: ptrace and what gets round it */
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
    /* clocks, swap, accounting, ports */
    "clock_settime", "clock_adjtime", "settimeofday", "adjtimex", "stime", "swapon", "swapoff",
    "acct", "quotactl", "quotactl_fd", "iopl", "ioperm", "vhangup",
    /* NUMA placement (CAP_SYS_NICE in Docker) */
    "mbind", "set_mempolicy", "set_mempolicy_home_node", "migrate_pages", "move_pages",
    /* namespaces and io_uring */
    "unshare", "setns", "io_uring_setup", "io_uring_enter", "io_uring_register",
};

/* personality: only what Docker lets through: 0 (Linux), 8 (Linux32),
 * 0x20000 (UNAME26), 0x20008 and the query 0xffffffff; READ_IMPLIES_EXEC,
 * ADDR_NO_RANDOMIZE and the rest are refused. A rule may test an argument
 * once and the default is allow, so the refusals are spelled out: a value
 * above 32 bits; bit 31 clear with a bit set outside 0x20008; bit 31 set
 * with any other bit clear (only the query has all 32). */
#define PERSONALITY_ALLOWED_BITS 0x20008UL

static int add_rules(scmp_filter_ctx ctx)
{
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
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
                             SCMP_A0(SCMP_CMP_GT, 0xffffffffUL));
    for (unsigned b = 0; b < 31 && r == 0; b++) {
        unsigned long bit = 1UL << b, top = 1UL << 31;
        if (!(bit & PERSONALITY_ALLOWED_BITS))
            r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
                                 SCMP_A0(SCMP_CMP_MASKED_EQ, bit | top, bit));
        if (r == 0)
            r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
                                 SCMP_A0(SCMP_CMP_MASKED_EQ, bit | top, top));
    }
    return r;
}

int e2b_seccomp_build(struct e2b_seccomp_prog *ret, struct e2b_error **err)
{
    memset(ret, 0, sizeof(*ret));
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return e2b_error_set(err, E2B_ERR_GENERIC, "cannot set up the seccomp filter");
    int r = add_rules(ctx);
    /* libseccomp 2.5 exports BPF only to an fd: a memfd, read back */
    int fd = r == 0 ? memfd_create("e2b-seccomp", MFD_CLOEXEC) : -1;
    if (r == 0 && fd < 0)
        r = -errno;
    if (r == 0)
        r = seccomp_export_bpf(ctx, fd);
    seccomp_release(ctx);
    struct stat st;
    if (r == 0 && fstat(fd, &st) < 0)
        r = -errno;
    if (r == 0 && (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) ||
                   st.st_size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS))
        r = -EINVAL;
    if (r == 0) {
        ret->insns = xmalloc((size_t)st.st_size);
        ret->len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
        if (pread(fd, ret->insns, (size_t)st.st_size, 0) != st.st_size)
            r = -EIO;
    }
    if (fd >= 0)
        close(fd);
    if (r < 0) {
        e2b_seccomp_prog_release(ret);
        return e2b_error_sys(err, -r, "cannot build the seccomp filter");
    }
    return 0;
}

int e2b_seccomp_load(const struct e2b_seccomp_prog *p, struct e2b_error **err)
{
    struct sock_fprog prog = {.len = p->len, .filter = p->insns};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
        return e2b_error_sys(err, errno, "cannot load the seccomp filter");
    return 0;
}

void e2b_seccomp_prog_release(struct e2b_seccomp_prog *p)
{
    free(p->insns);
    memset(p, 0, sizeof(*p));
}

int e2b_seccomp_apply(struct e2b_error **err)
{
    struct e2b_seccomp_prog p;
    if (e2b_seccomp_build(&p, err) < 0)
        return -1;
    int r = e2b_seccomp_load(&p, err);
    e2b_seccomp_prog_release(&p);
    return r;
}
