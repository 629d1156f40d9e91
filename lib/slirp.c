/* slirp.c - see slirp.h */
#include "slirp.h"
#include "cgroup.h"

#include <fcntl.h>

/* slirp4netns gives the sandbox's netns outbound access; it exits with us
 * (--exit-fd), cannot reach the host's loopback (--disable-host-loopback),
 * and runs sandboxed itself (--enable-sandbox, --enable-seccomp): it parses
 * what the sandbox sends. */
static int start(const char *id, pid_t init_pid, const char *netns_path, bool userns,
                 int *ret_exit_w, pid_t *ret_pid, struct e2b_error **err);

int e2b_slirp_start(const char *id, pid_t init_pid, bool userns, int *ret_exit_w, pid_t *ret_pid,
                    struct e2b_error **err)
{
    return start(id, init_pid, NULL, userns, ret_exit_w, ret_pid, err);
}

int e2b_slirp_start_netns(const char *id, const char *netns_path, int *ret_exit_w, pid_t *ret_pid,
                          struct e2b_error **err)
{
    return start(id, 0, netns_path, false, ret_exit_w, ret_pid, err);
}

static int start(const char *id, pid_t init_pid, const char *netns_path, bool userns,
                 int *ret_exit_w, pid_t *ret_pid, struct e2b_error **err)
{
    /* slirp4netns opens /dev/net/tun as this user once inside the sandbox */
    if (userns && access("/dev/net/tun", R_OK | W_OK) < 0)
        return e2b_error_set(err, E2B_ERR_PERMISSION,
                             "--internet without root needs /dev/net/tun usable by this user (%s)",
                             strerror(errno));
    int exitp[2], readyp[2];
    if (pipe2(exitp, O_CLOEXEC) < 0 || pipe2(readyp, O_CLOEXEC) < 0)
        return e2b_error_sys(err, errno, "cannot start slirp4netns");
    pid_t pid = fork();
    if (pid < 0)
        return e2b_error_sys(err, errno, "cannot start slirp4netns");
    if (pid == 0) {
        dup2(exitp[0], 3);
        dup2(readyp[1], 4);
        char pidbuf[16];
        snprintf(pidbuf, sizeof(pidbuf), "%d", (int)init_pid);
        /* unprivileged, it must enter init's user namespace to join its netns */
        char userns_opt[64];
        snprintf(userns_opt, sizeof(userns_opt), "--userns-path=/proc/%d/ns/user", (int)init_pid);
        /* its own mount namespace with no capabilities left, and its seccomp filter */
        const char *argv[] = { "slirp4netns",
                               "--configure",
                               "--mtu=65520",
                               "--disable-host-loopback",
                               "--enable-sandbox",
                               "--enable-seccomp",
                               "--exit-fd=3",
                               "--ready-fd=4",
                               pidbuf,
                               "tap0",
                               NULL,
                               NULL };
        if (userns) { /* the option goes before the PID */
            memmove(&argv[9], &argv[8], 3 * sizeof(argv[0]));
            argv[8] = userns_opt;
        } else if (netns_path) { /* a network namespace with no process in it yet */
            memmove(&argv[9], &argv[8], 3 * sizeof(argv[0]));
            argv[8] = "--netns-type=path";
            argv[9] = (char *)netns_path;
        }
        execvp("slirp4netns", (char **)argv);
        _exit(127);
    }
    close(exitp[0]);
    close(readyp[1]);
    e2b_cgroup_add_helper(id, pid, NULL); /* it opens /dev/net/tun */
    if (!userns)
        e2b_cgroup_leave_creator(pid, false);
    char c;
    ssize_t n = read(readyp[0], &c, 1);
    close(readyp[0]);
    if (n != 1) {
        close(exitp[1]);
        return e2b_error_set(err, E2B_ERR_NETWORK, "slirp4netns did not start (is it installed?)");
    }
    *ret_exit_w = exitp[1]; /* held open by the supervisor for the sandbox's life */
    *ret_pid = pid;
    return 0;
}
