/* escape-probe.c - run inside a sandbox: try what a sandbox must not do and
 * print one line per attempt, "BLOCKED <name>" or "ALLOWED <name>".
 * Arguments: a port on the host's 127.0.0.1 to try, and envd's pid (which
 * also says it runs in a sandbox, whose pid 1 is init).
 * Built statically by tests/e2e/t4100-sandbox-escape.sh and sent in on stdin. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void report(const char *name, long r)
{
    if (r < 0) {
        printf("BLOCKED %s (%s)\n", name, strerror(errno));
    } else {
        printf("ALLOWED %s\n", name);
        failures++;
    }
}

/* The host's first disk, from /proc/partitions (not namespaced). */
static int host_disk(unsigned *maj, unsigned *min, char *name, size_t len)
{
    FILE *f = fopen("/proc/partitions", "r");
    char line[256], nm[64];
    unsigned a, b;
    unsigned long long blocks;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, " %u %u %llu %63s", &a, &b, &blocks, nm) == 4 && a != 7 /* loop */) {
            *maj = a, *min = b;
            snprintf(name, len, "%s", nm);
            fclose(f);
            return 0;
        }
    if (f)
        fclose(f);
    return -1;
}

/* Make a device node in DIR and open it: with the host's disk, what
 * debugfs -w needs to rewrite the host's file system; with a loop device,
 * what reads another sandbox's template or attaches any file. */
static long mknod_open(const char *dir, mode_t type, unsigned maj, unsigned min)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/e2b-probe-node", dir);
    unlink(p);
    if (mknod(p, type | 0600, makedev(maj, min)) < 0)
        return -1;
    int fd = open(p, O_RDONLY | O_NONBLOCK);
    int e = errno;
    unlink(p);
    if (fd >= 0)
        close(fd);
    errno = e;
    return fd;
}

/* Open PATH (a /proc/PID/mem) read-write and read the first page of PID's
 * first mapping back through it: what a write into its code needs. */
static long mem_rw(pid_t pid, const char *path)
{
    char maps[64], line[256];
    unsigned long start = 0;
    snprintf(maps, sizeof(maps), "/proc/%d/maps", (int)pid);
    FILE *f = fopen(maps, "r");
    if (f && fgets(line, sizeof(line), f))
        start = strtoul(line, NULL, 16);
    if (f)
        fclose(f);
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return -1;
    char buf[64];
    ssize_t n = start ? pread(fd, buf, sizeof(buf), (off_t)start) : -1;
    int e = errno;
    close(fd);
    if (n == (ssize_t)sizeof(buf))
        return 0;
    errno = n < 0 ? e : ENODATA; /* 0 bytes: /dev/null over it */
    return -1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* every line out, even if an attempt kills us */
    int host_port = argc > 1 ? atoi(argv[1]) : 0;
    pid_t envd = argc > 2 ? atoi(argv[2]) : 2;
    report("mount tmpfs", mount("none", "/mnt", "tmpfs", 0, NULL));
    report("remount root read-write", mount(NULL, "/usr", NULL, MS_REMOUNT | MS_BIND, NULL));
    report("umount /proc", umount2("/proc", MNT_DETACH));
    report("init_module", syscall(SYS_init_module, "", 0, ""));
    report("finit_module", syscall(SYS_finit_module, 0, "", 0));
    report("delete_module", syscall(SYS_delete_module, "loop", 0));
    report("add_key", syscall(SYS_add_key, "user", "e2b", "x", 1, -2 /* session keyring */));
    report("keyctl", syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3, 0));
    report("bpf", syscall(SYS_bpf, 0 /* MAP_CREATE */, NULL, 0));
    struct perf_event_attr pe = {.type = PERF_TYPE_SOFTWARE, .size = sizeof(pe),
                                 .config = PERF_COUNT_SW_CPU_CLOCK};
    report("perf_event_open", syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0));
    report("ptrace envd", ptrace(PTRACE_ATTACH, envd, NULL, NULL));
    report("ptrace init", ptrace(PTRACE_ATTACH, 1, NULL, NULL));
    report("process_vm_readv", syscall(SYS_process_vm_readv, 1, NULL, 0, NULL, 0, 0));
    /* what gets round the ptrace denial: envd's fds and memory */
    int pfd = (int)syscall(SYS_pidfd_open, envd, 0);
    long got = -1;
    for (int fd = 0; pfd >= 0 && fd < 16 && got < 0; fd++)
        got = syscall(SYS_pidfd_getfd, pfd, fd, 0);
    report("pidfd_getfd of envd's fds", pfd < 0 ? -1 : got);
    report("process_madvise of envd", pfd < 0 ? -1 : syscall(SYS_process_madvise, pfd, NULL, 0, MADV_COLD, 0));
    if (argc > 2) { /* in a sandbox, given envd's pid: pid 1 is the sandbox's init */
        char mem[64];
        snprintf(mem, sizeof(mem), "/proc/%d/mem", (int)envd);
        report("read and write envd's memory through /proc/PID/mem", mem_rw(envd, mem));
        snprintf(mem, sizeof(mem), "/proc/%d/task/%d/mem", (int)envd, (int)envd);
        report("read and write envd's memory through /proc/PID/task/PID/mem", mem_rw(envd, mem));
        report("read and write init's memory through /proc/1/mem", mem_rw(1, "/proc/1/mem"));
        report("open init's /proc/1/fd/0", open("/proc/1/fd/0", O_RDONLY));
    }
    report("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC));
    long pers = personality(READ_IMPLIES_EXEC);
    report("personality READ_IMPLIES_EXEC", pers);
    if (pers >= 0)
        personality(PER_LINUX);
    pers = personality(ADDR_NO_RANDOMIZE);
    report("personality ADDR_NO_RANDOMIZE", pers);
    if (pers >= 0)
        personality(PER_LINUX);
    if (personality(0xffffffff) < 0 || personality(PER_LINUX32) < 0 || personality(PER_LINUX) < 0)
        printf("# personality query or PER_LINUX32 refused (Docker allows them)\n"), failures++;
    report("fsopen tmpfs", syscall(SYS_fsopen, "tmpfs", 0));
    report("swapon", syscall(SYS_swapon, "/tmp/e2b-probe-swap", 0));
    report("pivot_root", syscall(SYS_pivot_root, ".", "."));
    int nsfd = open("/proc/1/ns/mnt", O_RDONLY);
    report("setns into init's mount namespace", nsfd < 0 ? -1 : setns(nsfd, 0));
    long child = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
    if (child == 0)
        _exit(0);
    if (child > 0)
        waitpid((pid_t)child, NULL, 0);
    report("clone(CLONE_NEWUSER)", child);
    report("mbind", syscall(SYS_mbind, NULL, 0, 0, NULL, 0, 0));
    report("set_mempolicy", syscall(SYS_set_mempolicy, 0, NULL, 0));
    report("move_pages", syscall(SYS_move_pages, 0, 0, NULL, NULL, NULL, 0));
    report("migrate_pages", syscall(SYS_migrate_pages, 0, 0, NULL, NULL));
    report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
    report("reboot", syscall(SYS_reboot, 0xfee1dead, 672274793, RB_AUTOBOOT, NULL));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    report("clock_settime", clock_settime(CLOCK_REALTIME, &ts));
    report("swapoff", syscall(SYS_swapoff, "/dev/null"));
    report("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0));
    report("iopl", syscall(SYS_iopl, 3));
    report("io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL));
    struct {
        char name[64];
        mode_t type;
        unsigned maj, min;
    } nodes[3] = {{"loop0", S_IFBLK, 7, 0}, {"kmsg", S_IFCHR, 1, 11}, {"", S_IFBLK, 0, 0}};
    if (host_disk(&nodes[2].maj, &nodes[2].min, nodes[2].name, sizeof(nodes[2].name)) < 0)
        printf("# no host disk in /proc/partitions\n");
    /* every writable place: /dev (a tmpfs), /run/e2b, /tmp, /dev/shm, home, the root */
    static const char *const dirs[] = {"/dev", "/run/e2b", "/tmp", "/dev/shm", "/root", "/"};
    for (size_t n = 0; n < 3; n++)
        for (size_t i = 0; nodes[n].name[0] && i < sizeof(dirs) / sizeof(dirs[0]); i++) {
            char name[320];
            snprintf(name, sizeof(name), "mknod and open the host's %s (%s %u:%u) in %s", nodes[n].name,
                     nodes[n].type == S_IFBLK ? "b" : "c", nodes[n].maj, nodes[n].min, dirs[i]);
            report(name, mknod_open(dirs[i], nodes[n].type, nodes[n].maj, nodes[n].min));
        }
    report("write /proc/sysrq-trigger", open("/proc/sysrq-trigger", O_WRONLY));
    report("write /proc/sys/kernel/hostname", open("/proc/sys/kernel/hostname", O_WRONLY));
    report("read /proc/kcore", ({ int fd = open("/proc/kcore", O_RDONLY); char c; fd < 0 ? -1 : read(fd, &c, 1) > 0 ? 0 : -1; }));
    if (host_port) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(host_port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        report("connect to the host's 127.0.0.1 listener", connect(s, (struct sockaddr *)&a, sizeof(a)));
    }
    /* last: where they work, the probe is in new namespaces from here */
    report("unshare mount namespace", unshare(CLONE_NEWNS));
    report("unshare user namespace", unshare(CLONE_NEWUSER));
    printf("%d allowed\n", failures);
    return failures ? 1 : 0;
}
