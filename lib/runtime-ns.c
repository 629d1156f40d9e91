/* runtime-ns.c - the namespace runtime: a sandbox is an init process in new
 * pid, mount, net, ipc, uts and cgroup namespaces (sandbox-root.h: the root
 * file system, envd, capabilities, the seccomp filter of
 * sandbox-seccomp.h), limited and frozen through its cgroups (cgroup.h).
 * Unprivileged, a user namespace maps the caller to root and there is no
 * delegated cgroup. Reached only through e2b_runtime_ns (runtime.h).
 *
 * When the supervisor dies, init gets SIGTERM (PDEATHSIG), thaws what a
 * pause froze (v1: envd and below are in a freezer cgroup init is not in),
 * kills it all and exits, and the namespaces go with it; the reaper then
 * removes the cgroups (stop with no run).
 */
#include "runtime.h"
#include "cgroup.h"
#include "fsutil.h"
#include "sandbox-root.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int ns_prepare(struct e2b_runtime_spec *spec, json_t *state, struct e2b_error **err)
{
    if (spec->host) {
        /* unprivileged with one mapped id, only root exists inside */
        if (spec->unprivileged && !e2b_sandbox_userns_ranges())
            json_object_set_new(state, "defaultUser", json_string("root"));
    } else if (spec->rootfs_tree) {
        /* the tree when the store has it: no block device, page cache
         * shared with the build */
        spec->rootfs_image = NULL;
    } else if (spec->rootfs_image && spec->unprivileged) {
        return e2b_error_set(err, E2B_ERR_PERMISSION,
                             "template '%s' has only an ext4 image, and loop devices need root (keep its rootfs/ tree)",
                             spec->template_name);
    }
    if (spec->unprivileged) {
        /* No delegated cgroup here: say so rather than pretend to limit. */
        json_object_set_new(state, "unprivileged", json_true());
        _cleanup_free_ char *lim = xasprintf("none but at most %d processes per user inside (unprivileged, "
                                             "no delegated cgroup: cpu and memory are not limited)",
                                             spec->pids_max);
        json_object_set_new(state, "limits", json_string(lim));
    }
    return 0;
}

/* envd writes one byte to the readiness pipe once it listens; EOF means
 * init or envd died first. No polling: the byte wakes us at once. */
static int wait_envd(int ready_fd, struct e2b_error **err)
{
    struct pollfd pfd = {.fd = ready_fd, .events = POLLIN};
    int64_t deadline = e2b_now_ms() + E2B_RUNTIME_READY_MS;
    for (;;) {
        int64_t left = deadline - e2b_now_ms();
        if (left <= 0)
            return e2b_error_set(err, E2B_ERR_TIMEOUT, "envd did not answer within %d s",
                                 E2B_RUNTIME_READY_MS / 1000);
        int n = poll(&pfd, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return e2b_error_sys(err, errno, "cannot wait for envd");
        if (n == 0)
            continue;
        char c;
        ssize_t r = read(ready_fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        return r == 1 ? 0 : e2b_error_set(err, E2B_ERR_GENERIC, "the sandbox exited while starting");
    }
}

static void kill_init(struct e2b_runtime_run *run)
{
    if (run->pid > 0) {
        kill(run->pid, SIGKILL);
        while (waitpid(run->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        run->pid = -1;
    }
}

/* What init said before it died, in front of our own error. */
static void wrap_boot_log(const char *dir, struct e2b_runtime_run *run, struct e2b_error **err)
{
    kill_init(run); /* the start failed: init's last words are written once it is gone */
    _cleanup_free_ char *boot = xasprintf("%s/init.log", dir);
    _cleanup_free_ char *log = NULL;
    if (e2b_read_file_untrusted(boot, 4096, &log, NULL, NULL) == 0 && *log) {
        size_t n = strlen(log);
        while (n && log[n - 1] == '\n')
            log[--n] = '\0';
        e2b_error_wrap(err, "%s", log);
    }
}

static char *strdup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static int ns_start(const struct e2b_runtime_sandbox *sb, const struct e2b_runtime_spec *spec,
                    struct e2b_runtime_run *run, struct e2b_error **err)
{
    struct e2b_sandbox_root *r = xcalloc(1, sizeof(*r));
    *run = (struct e2b_runtime_run){.pid = -1, .log_fd = -1, .priv = r};
    r->host = spec->host;
    r->lower = strdup_or_null(spec->rootfs_tree);
    r->image = strdup_or_null(spec->rootfs_image);
    r->envd = xstrdup(spec->envd);
    r->state_dir = xstrdup(sb->dir);
    r->user = strdup_or_null(spec->user);
    r->template_id = strdup_or_null(spec->template_id);
    r->build_id = strdup_or_null(spec->build_id);
    r->envd_init = strdup_or_null(spec->envd_init);
    r->disk_mb = spec->disk_mb;
    r->pids_max = spec->pids_max;
    r->internet = spec->internet;
    r->volumes = json_incref(spec->volumes);
    r->trust_pem = strdup_or_null(spec->trust_pem);
    r->userns = spec->unprivileged;
    struct e2b_cgroup_limits lim = {
        .memory_bytes = (uint64_t)spec->memory_mb << 20,
        .pids_max = (uint64_t)spec->pids_max,
        .cpu_count = spec->cpu_count,
        .loop_devices = r->image != NULL,
    };
    if (!r->userns && e2b_cgroup_create(sb->id, &lim, err) < 0)
        return -1;
    if (e2b_sandbox_root_spawn(r, sb->id, &run->pid, err) < 0) {
        wrap_boot_log(sb->dir, run, err);
        return -1;
    }
    int wr = wait_envd(r->ready_fd, err);
    close(r->ready_fd);
    if (wr < 0) {
        wrap_boot_log(sb->dir, run, err);
        return -1;
    }
    run->log_fd = r->log_fd;
    return 0;
}

static char *ns_ended(const struct e2b_runtime_sandbox *sb, struct e2b_runtime_run *run, int status)
{
    return xstrdup(WIFSIGNALED(status) ? "init was killed" : "envd exited");
}

static void ns_stop(const struct e2b_runtime_sandbox *sb, struct e2b_runtime_run *run)
{
    if (run) {
        e2b_cgroup_freeze(sb->id, false, NULL); /* frozen tasks cannot take SIGKILL */
        kill_init(run);
        if (run->priv) {
            e2b_sandbox_root_release(run->priv);
            free(run->priv);
            run->priv = NULL;
        }
    }
    e2b_cgroup_destroy(sb->id);
}

static int ns_pause(const struct e2b_runtime_sandbox *sb, struct e2b_error **err)
{
    return e2b_cgroup_freeze(sb->id, true, err);
}

static int ns_resume(const struct e2b_runtime_sandbox *sb, struct e2b_error **err)
{
    return e2b_cgroup_freeze(sb->id, false, err);
}

/* init binds envd's socket in the state directory before it pivots. */
static int ns_envd_channel(const struct e2b_runtime_sandbox *sb, char **ret, struct e2b_error **err)
{
    *ret = xasprintf("unix:%s/envd.sock", sb->dir);
    return 0;
}

/* A socket made inside a network namespace stays there whichever namespace
 * its user is in, so a short-lived thread enters the sandbox's, makes the
 * sockets and ends: no thread of ours is ever left in the wrong one. */
struct netns_socks {
    int pidfd;
    int fd4, fd6;
    int err;
};

static void *netns_socks_main(void *ud)
{
    struct netns_socks *n = ud;
    if (setns(n->pidfd, CLONE_NEWNET) < 0) {
        n->err = errno;
        return NULL;
    }
    n->fd4 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    n->fd6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (n->fd4 < 0)
        n->err = errno;
    return NULL;
}

/* Connect a nonblocking socket, waiting at most 10 s (loopback answers at
 * once unless the listener's backlog is full). 0 or an errno. */
static int connect_wait(int fd, const struct sockaddr *sa, socklen_t len)
{
    if (connect(fd, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return errno;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int r;
    while ((r = poll(&p, 1, 10000)) < 0 && errno == EINTR)
        ;
    if (r == 0)
        return ETIMEDOUT;
    int e = 0;
    socklen_t el = sizeof(e);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
    return e;
}

static int ns_port_connect(const struct e2b_runtime_sandbox *sb, int port, int *ret_fd, struct e2b_error **err)
{
    const char *id = sb->id;
    pid_t init = (pid_t)e2b_json_int(sb->state, "initPid", 0);
    struct netns_socks n = {.pidfd = init > 0 ? (int)syscall(SYS_pidfd_open, init, 0) : -1,
                            .fd4 = -1, .fd6 = -1};
    if (n.pidfd < 0)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "sandbox '%s' has no running init", id);
    pthread_t t;
    int pe = pthread_create(&t, NULL, netns_socks_main, &n);
    if (pe == 0)
        pthread_join(t, NULL);
    close(n.pidfd);
    if (pe != 0 || n.fd4 < 0) {
        if (n.fd6 >= 0)
            close(n.fd6);
        return e2b_error_sys(err, pe ? pe : n.err, "cannot enter the network of sandbox '%s'", id);
    }
    /* Whatever listens on the sandbox's loopback or on all its addresses. */
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
                              .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int fd = n.fd4, e = connect_wait(n.fd4, (struct sockaddr *)&a4, sizeof(a4));
    if (e == ECONNREFUSED && n.fd6 >= 0) {
        fd = n.fd6;
        e = connect_wait(n.fd6, (struct sockaddr *)&a6, sizeof(a6));
    }
    int other = fd == n.fd4 ? n.fd6 : n.fd4;
    if (other >= 0)
        close(other);
    if (e) {
        close(fd);
        if (e == ECONNREFUSED)
            return e2b_error_set(err, E2B_ERR_NETWORK, "nothing listens on port %d of sandbox '%s'",
                                 port, id);
        return e2b_error_sys(err, e, "cannot connect to port %d of sandbox '%s'", port, id);
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *ret_fd = fd;
    return 0;
}

static int ns_stats(const struct e2b_runtime_sandbox *sb, struct e2b_runtime_stats *ret, struct e2b_error **err)
{
    struct e2b_cgroup_stats cs;
    if (e2b_cgroup_stats(sb->id, &cs, err) < 0)
        return -1;
    *ret = (struct e2b_runtime_stats){.cpu_usage_ns = cs.cpu_usage_ns, .memory_bytes = cs.memory_bytes,
                                      .pids = cs.pids};
    /* The writable layer's file system, seen through init's root. */
    _cleanup_free_ char *rootp = xasprintf("/proc/%lld/root/", e2b_json_int(sb->state, "initPid", 0));
    struct statvfs vfs;
    if (statvfs(rootp, &vfs) == 0) {
        ret->has_disk = true;
        ret->disk_used = (uint64_t)(vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize;
        ret->disk_total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    }
    return 0;
}

/* no snapshot or restore: nothing here saves a process tree (CRIU would) */
const struct e2b_runtime_ops e2b_runtime_ns = { E2B_RUNTIME_OPS("ns", ns_) };
