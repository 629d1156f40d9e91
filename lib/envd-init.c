/* envd-init.c - see envd-init.h */
#include "envd-init.h"
#include "envd-vm.h"
#include "util.h"

#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

static void try_mount(const char *src, const char *dst, const char *type, unsigned long flags,
                      const char *data)
{
    mkdir(dst, 0755);
    if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY)
        fprintf(stderr, "init: cannot mount %s on %s: %s\n", type, dst, strerror(errno));
}

static void loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "lo");
    if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    if (s >= 0)
        close(s);
}

/* As pid 1 of a namespace, a signal from outside whose disposition is the
 * default is dropped by the kernel, even one we mean to sigwait for when it
 * lands before the mask is set: a handler makes every one count. */
static const int stop_signals[] = {SIGTERM, SIGINT, SIGPWR};
static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    stop_requested = sig;
}

static pid_t start_envd(const char *envd, char **envd_args)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    for (size_t i = 0; i < ARRAY_SIZE(stop_signals); i++)
        signal(stop_signals[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    size_t n = e2b_strv_len(envd_args);
    char **argv = xcalloc(n + 2, sizeof(*argv));
    argv[0] = "envd";
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = envd_args[i];
    execv(envd, argv);
    fprintf(stderr, "init: cannot run %s: %s\n", envd, strerror(errno));
    _exit(127);
}

/* init --ns: pid 1 of an e2b `ns` sandbox, exec'd by the host's setup
 * (sandbox-root.c) once envd runs: reap, end with envd, and when asked to
 * stop (SIGTERM: the supervisor died, PDEATHSIG) thaw what a pause froze
 * (thaw_fd: cgroup v1's freezer.state; frozen tasks ignore SIGKILL), kill
 * everything and go, so the namespaces go with it. Everything else it had
 * was set before the exec: the signal mask (all blocked), the capabilities,
 * no_new_privs and the seccomp filter. Being a file inside the sandbox, it
 * is what a checkpoint (CRIU) saves and restores as the sandbox's pid 1. */
static int ns_main(pid_t envd, int thaw_fd)
{
    /* /proc/1 stays closed to the sandbox's root (no CAP_SYS_PTRACE) */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* a session of its own: none of the sandbox's refers to one outside */
    setsid();
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        /* envd (or anything) may have ended before the exec: its SIGCHLD
         * is pending still, but reap first anyway */
        pid_t p;
        int status;
        while ((p = waitpid(-1, &status, WNOHANG)) > 0)
            if (p == envd)
                return 0; /* no agent, no sandbox: the kernel kills the rest with us */
        if (p < 0 && errno == ECHILD)
            return 0;
        siginfo_t si;
        int sig = sigwaitinfo(&all, &si);
        if (sig == SIGTERM || sig == SIGINT) {
            if (thaw_fd >= 0)
                (void)!write(thaw_fd, "THAWED", 6);
            kill(-1, SIGKILL);
            return 0;
        }
    }
}

int e2b_init_main(int argc, char **argv)
{
    if (argc >= 4 && STREQ(argv[1], "--ns") && STREQ(argv[2], "--envd-pid")) {
        int thaw_fd = argc >= 6 && STREQ(argv[4], "--thaw-fd") ? atoi(argv[5]) : -1;
        return ns_main((pid_t)atoi(argv[3]), thaw_fd);
    }

    struct sigaction sa = {.sa_handler = on_stop};
    sigfillset(&sa.sa_mask);
    for (size_t i = 0; i < ARRAY_SIZE(stop_signals); i++)
        sigaction(stop_signals[i], &sa, NULL);
    const char *hostname = "e2b", *envd = "/proc/self/exe";
    char **envd_args = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (STREQ(argv[i], "--") ) {
            i++;
            break;
        } else if (STREQ(argv[i], "--hostname") && i + 1 < argc) {
            hostname = argv[++i];
        } else if (STREQ(argv[i], "--envd") && i + 1 < argc) {
            envd = argv[++i];
        } else if (STREQ(argv[i], "--vm")) {
            return e2b_init_vm_main(); /* pid 1 of an e2b microVM: envd-vm.h */
        } else {
            fprintf(stderr, "usage: init [--vm] [--hostname NAME] [--envd PATH] [-- ENVD-ARGS...]\n");
            return 2;
        }
    }
    for (; i < argc; i++)
        envd_args = e2b_strv_push(envd_args, argv[i]);
    if (getpid() != 1)
        fprintf(stderr, "init: not pid 1; running anyway\n");

    try_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    try_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL);
    try_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=755");
    try_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
    try_mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    try_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    try_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755");
    if (sethostname(hostname, strlen(hostname)) < 0)
        fprintf(stderr, "init: cannot set hostname: %s\n", strerror(errno));
    loopback_up();
    setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 0);

    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    pid_t agent = start_envd(envd, envd_args);
    for (;;) {
        siginfo_t si;
        int sig = stop_requested ? stop_requested : sigwaitinfo(&all, &si);
        if (sig == SIGTERM || sig == SIGINT || sig == SIGPWR) {
            kill(-1, SIGTERM);
            sleep(1);
            kill(-1, SIGKILL);
            sync();
            if (getpid() == 1)
                reboot(RB_POWER_OFF); /* in a pid namespace this just ends it */
            return 0;
        }
        if (sig != SIGCHLD)
            continue;
        pid_t p;
        int status;
        while ((p = waitpid(-1, &status, WNOHANG)) > 0)
            if (p == agent) { /* the agent is the sandbox: bring it back (bounded pace) */
                fprintf(stderr, "init: envd exited (status %d); restarting\n", status);
                sleep(1);
                agent = start_envd(envd, envd_args);
            }
    }
}
