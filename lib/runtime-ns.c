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
#include "checkpoint-criu.h"
#include "fsutil.h"
#include "sandbox-root.h"
#include "slirp.h"
#include "strbuf.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/utsname.h>
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

/* The init to make for sb, from spec. */
static struct e2b_sandbox_root *root_of(const struct e2b_runtime_sandbox *sb,
                                        const struct e2b_runtime_spec *spec)
{
    struct e2b_sandbox_root *r = xcalloc(1, sizeof(*r));
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
    r->ready_fd = r->log_fd = -1;
    return r;
}

static struct e2b_cgroup_limits limits_of(const struct e2b_runtime_spec *spec)
{
    return (struct e2b_cgroup_limits){
        .memory_bytes = (uint64_t)spec->memory_mb << 20,
        .pids_max = (uint64_t)spec->pids_max,
        .cpu_count = spec->cpu_count,
        .loop_devices = !spec->rootfs_tree && spec->rootfs_image && !spec->host,
    };
}

static int ns_start(const struct e2b_runtime_sandbox *sb, const struct e2b_runtime_spec *spec,
                    struct e2b_runtime_run *run, struct e2b_error **err)
{
    struct e2b_sandbox_root *r = root_of(sb, spec);
    *run = (struct e2b_runtime_run){ .pid = -1, .log_fd = -1, .priv = r };
    struct e2b_cgroup_limits lim = limits_of(spec);
    lim.loop_devices = r->image != NULL;
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
    if (e2b_json_bool(sb->state, "unprivileged", false))
        return e2b_error_set(
            err, E2B_ERR_UNSUPPORTED,
            "sandbox '%s' runs without root, with no cgroup of its own: it cannot be paused, "
            "nor checkpointed (CRIU checkpoints need root)",
            sb->id);
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

/* ---- checkpoints, with CRIU ------------------------------------------------ */

/* A checkpoint of a sandbox is CRIU's dump of its process tree with its
 * memory (init down: checkpoint-criu.h) and a tar of its writable layer
 * (sandbox-root.h), taken while it is frozen, and snapshot.json: the keys
 * CRIU gave what lies outside the tree, the old access token, and the size
 * of every file, so that a damaged save is said before CRIU reads it.
 *
 * Outside the tree, so external to CRIU and made anew by a restore: the
 * network namespace (with slirp4netns when the sandbox has internet),
 * envd's listening socket in the state directory, envd's log pipe to the
 * supervisor, and init's fds of its writable layer and of the freezer.
 * Connections of host clients to envd (a command's output stream, a
 * watch) are the host's network namespace's, where CRIU does not look:
 * envd drops them first, so a snapshot ends such streams, as the vm
 * runtime's does; the commands run on. Bind mounts of host paths
 * (the host's programs, device nodes) are bound again from the same paths,
 * envd's binary from the one this e2b runs. */

#define CKPT_VERSION 1
#define CKPT_LAYER   "layer.tar"
#define CKPT_IMAGES  "criu"

/* envd's host pid: the child of init named envd. */
static pid_t envd_of(pid_t init)
{
    _cleanup_free_ char *p = xasprintf("/proc/%d/task/%d/children", (int)init, (int)init);
    _cleanup_free_ char *kids = NULL;
    if (init <= 0 || e2b_read_file(p, &kids, NULL, NULL) < 0)
        return -1;
    for (char *s = kids, *end; *s; s = end) {
        long k = strtol(s, &end, 10);
        if (end == s)
            break;
        _cleanup_free_ char *cp = xasprintf("/proc/%ld/comm", k), *comm = NULL;
        if (e2b_read_file(cp, &comm, NULL, NULL) == 0 && e2b_str_has_prefix(comm, "envd\n"))
            return (pid_t)k;
    }
    return -1;
}

/* What pid's fd is: "socket:[N]", "pipe:[N]" ... (malloc'd), or NULL. */
static char *fd_link(pid_t pid, int fd)
{
    _cleanup_free_ char *p = xasprintf("/proc/%d/fd/%d", (int)pid, fd);
    char buf[256];
    ssize_t n = readlink(p, buf, sizeof(buf) - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return xstrdup(buf);
}

/* The status flags of pid's fd (O_NONBLOCK ...), as fdinfo says them:
 * CRIU does not set them on a descriptor it is handed, so a restore does. */
static int fd_flags(pid_t pid, int fd)
{
    _cleanup_free_ char *info = xasprintf("/proc/%d/fdinfo/%d", (int)pid, fd), *text = NULL;
    char *f = e2b_read_file(info, &text, NULL, NULL) == 0 ? strstr(text, "flags:") : NULL;
    return f ? (int)strtol(f + 6, NULL, 8) & (O_NONBLOCK | O_APPEND) : 0;
}

/* CRIU's name of an open file: file[<mount id>:<inode>], in hex; NULL when
 * pid has no such fd. */
static char *file_key(pid_t pid, int fd)
{
    _cleanup_free_ char *info = xasprintf("/proc/%d/fdinfo/%d", (int)pid, fd), *text = NULL;
    _cleanup_free_ char *p = xasprintf("/proc/%d/fd/%d", (int)pid, fd);
    struct stat st;
    if (e2b_read_file(info, &text, NULL, NULL) < 0 || stat(p, &st) < 0)
        return NULL;
    char *m = strstr(text, "mnt_id:");
    if (!m)
        return NULL;
    return xasprintf("file[%lx:%llx]", strtoul(m + 7, NULL, 10), (unsigned long long)st.st_ino);
}

/* Does envd hold a connection of a host client (a command's stream, a
 * watch, a transfer)? Those sockets are the host's network namespace's,
 * where CRIU does not look; every socket of the sandbox's own is listed
 * in its /proc/net. */
static bool has_host_conns(pid_t init, pid_t envd)
{
    static const char *const tables[] = { "unix", "tcp",     "tcp6", "udp",
                                          "udp6", "netlink", "raw",  "raw6" };
    _cleanup_strbuf_ struct strbuf all = STRBUF_INIT;
    for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
        _cleanup_free_ char *p = xasprintf("/proc/%d/net/%s", (int)init, tables[i]), *t = NULL;
        if (e2b_read_file(p, &t, NULL, NULL) == 0)
            strbuf_addstr(&all, t);
    }
    strbuf_addch(&all, '\n');
    _cleanup_free_ char *fds = xasprintf("/proc/%d/fd", (int)envd);
    _cleanup_closedir_ DIR *d = opendir(fds);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        _cleanup_free_ char *link = fd_link(envd, atoi(de->d_name));
        if (!link || !e2b_str_has_prefix(link, "socket:["))
            continue;
        unsigned long ino = strtoul(link + 8, NULL, 10);
        char a[32], b[32];
        snprintf(a, sizeof(a), " %lu ", ino);
        snprintf(b, sizeof(b), " %lu\n", ino);
        if (!strstr(all.buf, a) && !strstr(all.buf, b))
            return true;
    }
    return false;
}

/* The paused sandbox frozen as a whole (init too: CRIU seizes a frozen
 * tree only through a frozen cgroup that holds all of it), with no host
 * client connected to envd: envd is asked to drop them (SIGUSR2), the
 * sandbox running a moment for it, and the freeze taken again, until none
 * came back in between (bounded). */
static int freeze_for_dump(const char *id, pid_t init, pid_t envd, struct e2b_error **err)
{
    for (int attempt = 0;; attempt++) {
        if (e2b_cgroup_freeze_whole(id, true, err) < 0)
            return -1;
        if (!has_host_conns(init, envd))
            return 0;
        if (attempt == 5)
            break;
        if (e2b_cgroup_freeze_whole(id, false, err) < 0 || e2b_cgroup_freeze(id, false, err) < 0)
            return -1;
        kill(envd, SIGUSR2);
        for (int i = 0; i < 200 && has_host_conns(init, envd); i++)
            usleep(5000);
        if (e2b_cgroup_freeze(id, true, err) < 0)
            return -1;
    }
    e2b_cgroup_freeze_whole(id, false, NULL);
    return e2b_error_set(
        err, E2B_ERR_UNSUPPORTED,
        "clients keep connecting to the envd of sandbox '%s' while it is checkpointed, and "
        "CRIU can save only connections inside the sandbox",
        id);
}

/* A template built on host with an /etc of its own has that /etc as an
 * overlay over a copy of the host's on a tmpfs the sandbox made: CRIU
 * would mount it again from the old sandbox's paths, so such a save could
 * never be restored. Is there one (mountinfo: "... /etc ... - overlay")? */
static bool has_etc_overlay(pid_t init)
{
    _cleanup_free_ char *p = xasprintf("/proc/%d/mountinfo", (int)init), *text = NULL;
    if (e2b_read_file(p, &text, NULL, NULL) < 0)
        return false;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char mp[256] = "", type[64] = "";
        char *sep = strstr(line, " - ");
        if (sep && sscanf(line, "%*s %*s %*s %*s %255s", mp) == 1 &&
            sscanf(sep + 3, "%63s", type) == 1 && STREQ(mp, "/etc") && STREQ(type, "overlay"))
            return true;
    }
    return false;
}

static long long file_size(const char *dir, const char *name)
{
    _cleanup_free_ char *p = e2b_path_join(dir, name);
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
}

/* { "layer.tar": bytes, "criu/core-1.img": bytes, ... }: every file the
 * restore reads. */
static json_t *files_of(const char *dir)
{
    json_t *files = json_object();
    json_object_set_new(files, CKPT_LAYER, json_integer(file_size(dir, CKPT_LAYER)));
    _cleanup_free_ char *images = e2b_path_join(dir, CKPT_IMAGES);
    _cleanup_closedir_ DIR *d = opendir(images);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.' || !strstr(de->d_name, ".img"))
            continue;
        _cleanup_free_ char *rel = xasprintf(CKPT_IMAGES "/%s", de->d_name);
        json_object_set_new(files, rel, json_integer(file_size(dir, rel)));
    }
    return files;
}

static int ns_snapshot(const struct e2b_runtime_sandbox *sb, const char *dir,
                       struct e2b_error **err)
{
    const json_t *st = sb->state;
    int64_t t0 = e2b_now_ms();
    if (e2b_json_bool(st, "unprivileged", false))
        return e2b_error_set(
            err, E2B_ERR_UNSUPPORTED,
            "sandbox '%s' runs without root, in a user namespace: CRIU checkpoints need root",
            sb->id);
    pid_t init = (pid_t)e2b_json_int(st, "initPid", 0), envd = envd_of(init);
    if (envd <= 0)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "sandbox '%s' has no running envd", sb->id);
    if (has_etc_overlay(init))
        return e2b_error_set(
            err, E2B_ERR_UNSUPPORTED,
            "sandbox '%s' runs a template built on host with an /etc of its own, an overlay "
            "over a copy of the host's that CRIU cannot mount again in a restore",
            sb->id);
    _cleanup_free_ char *images = e2b_path_join(dir, CKPT_IMAGES),
                        *layer = e2b_path_join(dir, CKPT_LAYER);
    if (mkdir(images, 0700) < 0)
        return e2b_error_sys(err, errno, "cannot create %s", images);
    _cleanup_free_ char *listen = fd_link(envd, 4), *log = fd_link(envd, 1);
    _cleanup_free_ char *scratch = file_key(init, E2B_SANDBOX_SCRATCH_FD),
                        *thaw = file_key(init, 4);
    _cleanup_free_ char *netns = xasprintf("/proc/%d/ns/net", (int)init);
    struct stat nst;
    if (!listen || !e2b_str_has_prefix(listen, "socket:[") || !log ||
        !e2b_str_has_prefix(log, "pipe:[") || !scratch || stat(netns, &nst) < 0)
        return e2b_error_set(
            err, E2B_ERR_UNSUPPORTED,
            "sandbox '%s' was not started as checkpoints need (started by an older e2b?)", sb->id);
    _cleanup_strv_ char **ext = NULL;
    ext = e2b_strv_push(ext, "mnt[]");                   /* host paths bound in: the same again */
    ext = e2b_strv_push(ext, "mnt[/run/e2b/envd]:envd"); /* envd: the one the restore runs */
    _cleanup_free_ char *net = xasprintf("net[%llu]:net", (unsigned long long)nst.st_ino);
    ext = e2b_strv_push(ext, net);
    _cleanup_free_ char *lsk = xasprintf("unix[%s", listen + 8); /* "unix[N]" from "socket:[N]" */
    ext = e2b_strv_push(ext, lsk);
    ext = e2b_strv_push(ext, scratch);
    if (thaw)
        ext = e2b_strv_push(ext, thaw);
    _cleanup_free_ char *cg = e2b_cgroup_freezer_dir(sb->id),
                        *dlog = e2b_path_join(sb->dir, "checkpoint.log");
    struct e2b_criu_dump d = { .pid = init,
                               .images_dir = images,
                               .log = dlog,
                               .freeze_cgroup = cg,
                               .externals = ext,
                               .leave_running = true };
    int r = freeze_for_dump(sb->id, init, envd, err);
    /* the files while it is frozen: the same instant as the memory */
    if (r == 0)
        r = e2b_sandbox_root_save_layer(init, layer, err);
    if (r == 0)
        r = e2b_criu_dump(&d, err);
    if (e2b_cgroup_freeze_whole(sb->id, false, r < 0 ? NULL : err) < 0)
        r = -1;
    if (r < 0)
        return e2b_error_wrap(err, "cannot checkpoint sandbox '%s'", sb->id);
    struct utsname u;
    uname(&u);
    json_t *keys = json_pack("{s:s, s:i, s:s, s:i, s:s, s:s?}", "listen", listen, "listenFlags",
                             fd_flags(envd, 4), "log", log, "logFlags", fd_flags(envd, 1),
                             "scratch", scratch, "thaw", thaw);
    _cleanup_json_ json_t *snap = json_pack(
        "{s:i, s:s, s:s, s:s, s:s?, s:s?, s:b, s:o, s:o, s:I}", "version", CKPT_VERSION, "runtime",
        "ns", "kernel", u.release, "sandboxID", sb->id, "templateID",
        e2b_json_str(st, "templateID"), "envdAccessToken", e2b_json_str(st, "envdAccessToken"),
        "internet", e2b_json_bool(st, "allowInternetAccess", false), "keys", keys, "files",
        files_of(dir), "saveMs", (json_int_t)(e2b_now_ms() - t0));
    _cleanup_free_ char *p = e2b_path_join(dir, "snapshot.json");
    _cleanup_free_ char *text = e2b_json_dump(snap, JSON_INDENT(2));
    return e2b_write_file_atomic(p, text, strlen(text), 0600, err);
}

/* Is the save in dir whole and one of ours? NULL, or why not; *damaged:
 * a file missing or of another size than saved. */
static char *restore_refusal(const json_t *snap, const char *dir, bool *damaged)
{
    *damaged = false;
    if (e2b_json_int(snap, "version", 0) != CKPT_VERSION ||
        !STREQ(e2b_json_str(snap, "runtime") ?: "", "ns"))
        return xstrdup("it is not a checkpoint this e2b's ns runtime made");
    *damaged = true;
    const json_t *files = json_object_get(snap, "files"), *keys = json_object_get(snap, "keys");
    if (!json_is_object(files) || !json_object_get(files, CKPT_LAYER) || !json_is_object(keys) ||
        !e2b_json_str(keys, "listen") || !e2b_json_str(keys, "log") ||
        !e2b_json_str(keys, "scratch"))
        return xstrdup("snapshot.json lacks what a restore needs");
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)files, name, v) {
        long long want = json_integer_value(v), have = file_size(dir, name);
        if (strstr(name, "..") || have != want)
            return have < 0
                       ? xasprintf("%s is missing", name)
                       : xasprintf("%s is %lld bytes, %lld when it was saved", name, have, want);
    }
    *damaged = false;
    return NULL;
}

/* The descriptors a restore hands CRIU, and what each stands for. */
struct handed {
    int fd[64];
    const char *key[64];
    size_t n;
};

static void hand(struct handed *h, int fd, const char *key, int flags)
{
    if (flags)
        fcntl(fd, F_SETFL, flags);
    if (h->n < ARRAY_SIZE(h->fd)) {
        h->fd[h->n] = fd;
        h->key[h->n++] = key;
    }
}

static void handed_close(struct handed *h)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->fd[i] >= 0)
            close(h->fd[i]);
    h->n = 0;
}

/* The child that remakes the root and runs criu restore in its mount
 * namespace. */
static _noreturn_ void restore_child(const struct e2b_runtime_sandbox *sb,
                                     const struct e2b_runtime_spec *spec, const char *dir,
                                     struct handed *h, char *scratch_key)
{
    _cleanup_free_ char *bootp = e2b_path_join(sb->dir, "init.log"),
                        *layer = e2b_path_join(dir, CKPT_LAYER);
    _cleanup_free_ char *images = e2b_path_join(dir, CKPT_IMAGES), *root = NULL;
    int boot = open(bootp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    struct e2b_sandbox_root *r = root_of(sb, spec);
    /* only what is handed goes on into criu */
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    int scratch = e2b_sandbox_root_remake(r, sb->id, layer, boot, &root);
    hand(h, scratch, scratch_key, 0);
    _cleanup_strv_ char **inherit = NULL, **ext = NULL, **cg = e2b_cgroup_roots(sb->id);
    for (size_t i = 0; i < h->n; i++) {
        fcntl(h->fd[i], F_SETFD, 0);
        _cleanup_free_ char *v = xasprintf("fd[%d]:%s", h->fd[i], h->key[i]);
        inherit = e2b_strv_push(inherit, v);
    }
    ext = e2b_strv_push(ext, "mnt[]");
    _cleanup_free_ char *envd_path =
        realpath(spec->envd, NULL); /* CRIU binds it from its own cwd */
    _cleanup_free_ char *envd = xasprintf("mnt[envd]:%s", envd_path ? envd_path : spec->envd);
    ext = e2b_strv_push(ext, envd);
    struct e2b_criu_restore cr = { .images_dir = images,
                                   .work_dir = sb->dir,
                                   .root = root,
                                   .externals = ext,
                                   .inherit = inherit,
                                   .cgroup_roots = cg };
    e2b_criu_restore_exec(&cr);
}

/* envd's /init as a new sandbox's: its token (none: "" clears the one it
 * had), envs and user, asked with the token it was saved with. One short
 * request on envd's socket (starting libcurl would be most of the
 * restore's tail); envd answers it at once. */
static int post_init(const struct e2b_runtime_sandbox *sb, const struct e2b_runtime_spec *spec,
                     const json_t *snap, struct e2b_error **err)
{
    const char *init = spec->envd_init ? spec->envd_init : "{}";
    _cleanup_json_ json_t *body = NULL;
    if (e2b_json_parse(init, strlen(init), "envd's /init", &body, err) < 0)
        return -1;
    if (!json_object_get(body, "accessToken"))
        json_object_set_new(body, "accessToken", json_string(""));
    _cleanup_free_ char *text = e2b_json_dump(body, JSON_COMPACT);
    const char *old = e2b_json_str(snap, "envdAccessToken");
    _cleanup_free_ char *auth = old ? xasprintf("X-Access-Token: %s\r\n", old) : xstrdup("");
    _cleanup_free_ char *req =
        xasprintf("POST /init HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
                  strlen(text), auth, text);
    _cleanup_close_ int dfd = open(sb->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    snprintf(un.sun_path, sizeof(un.sun_path), "/proc/self/fd/%d/envd.sock", dfd);
    struct timeval tv = { 10, 0 };
    if (dfd < 0 || fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0 ||
        e2b_send_all(fd, req, strlen(req)) < 0)
        return e2b_error_sys(err, errno, "cannot reach the restored envd of sandbox '%s'", sb->id);
    char head[128] = "";
    size_t n = 0;
    while (n < sizeof(head) - 1 && !memchr(head, '\n', n)) {
        ssize_t m = read(fd, head + n, sizeof(head) - 1 - n);
        if (m < 0 && errno == EINTR)
            continue;
        if (m <= 0)
            break;
        n += (size_t)m;
        head[n] = '\0';
    }
    if (!e2b_str_has_prefix(head, "HTTP/1.1 2"))
        return e2b_error_set(err, E2B_ERR_GENERIC,
                             "the restored envd of sandbox '%s' did not take its settings: %.*s",
                             sb->id, (int)strcspn(head, "\r\n"), *head ? head : "no answer");
    return 0;
}

static int ns_restore(const struct e2b_runtime_sandbox *sb, const struct e2b_runtime_spec *spec,
                      const char *dir, struct e2b_runtime_run *run, struct e2b_error **err)
{
    *run = (struct e2b_runtime_run){ .pid = -1, .log_fd = -1 };
    _cleanup_free_ char *sp = e2b_path_join(dir, "snapshot.json");
    _cleanup_json_ json_t *snap = NULL;
    if (e2b_json_load_file(sp, &snap, NULL) < 0)
        return e2b_error_set(
            err, E2B_ERR_INVALID,
            "cannot restore sandbox '%s': the checkpoint in %s is damaged: no snapshot.json",
            sb->id, dir);
    bool damaged;
    _cleanup_free_ char *why = restore_refusal(snap, dir, &damaged);
    if (why)
        return e2b_error_set(err, damaged ? E2B_ERR_INVALID : E2B_ERR_UNSUPPORTED,
                             "cannot restore sandbox '%s': the checkpoint in %s %s: %s", sb->id,
                             dir, damaged ? "is damaged" : "cannot be restored here", why);
    if (spec->unprivileged)
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                             "cannot restore sandbox '%s': a checkpoint needs root (CRIU)", sb->id);
    const json_t *keys = json_object_get(snap, "keys");
    struct e2b_cgroup_limits lim = limits_of(spec);
    if (e2b_cgroup_create(sb->id, &lim, err) < 0)
        return -1;
    struct handed h = { .n = 0 };
    int logp[2] = { -1, -1 }, r = -1;
    _cleanup_free_ char *scratch_key = xstrdup(e2b_json_str(keys, "scratch"));
    _cleanup_free_ char *bootp = e2b_path_join(sb->dir, "init.log"), *boot = NULL;
    int lfd = -1, netfd = e2b_sandbox_netns_new(sb->dir, &lfd, err);
    if (netfd < 0)
        goto out;
    hand(&h, netfd, "net", 0);
    hand(&h, lfd, e2b_json_str(keys, "listen"), (int)e2b_json_int(keys, "listenFlags", O_NONBLOCK));
    if (spec->internet) {
        _cleanup_free_ char *path = xasprintf("/proc/%d/fd/%d", (int)getpid(), netfd);
        int exit_w = -1;
        pid_t slirp = 0;
        if (e2b_slirp_start_netns(sb->id, path, &exit_w, &slirp, err) < 0)
            goto out;
        (void)exit_w; /* stays open: slirp4netns lives until the supervisor exits */
    }
    if (pipe2(logp, O_CLOEXEC) < 0) {
        e2b_error_sys(err, errno, "cannot make envd's log pipe");
        goto out;
    }
    hand(&h, logp[1], e2b_json_str(keys, "log"), (int)e2b_json_int(keys, "logFlags", 0));
    logp[1] = -1;
    if (e2b_json_str(keys, "thaw")) {
        int thaw = e2b_cgroup_open_frozen_part(sb->id, "freezer.state", O_WRONLY);
        if (thaw < 0) {
            e2b_error_set(
                err, E2B_ERR_UNSUPPORTED,
                "the checkpoint was made with cgroup v1's freezer, which this host does not have");
            goto out;
        }
        hand(&h, thaw, e2b_json_str(keys, "thaw"), 0);
    }
    pid_t child = fork();
    if (child < 0) {
        e2b_error_sys(err, errno, "cannot restore sandbox '%s'", sb->id);
        goto out;
    }
    if (child == 0)
        restore_child(sb, spec, dir, &h, scratch_key);
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    if (e2b_read_file_untrusted(bootp, 4096, &boot, NULL, NULL) == 0 && *boot) {
        boot[strcspn(boot, "\n")] = '\0';
        e2b_error_set(err, E2B_ERR_GENERIC, "cannot restore sandbox '%s': %s", sb->id, boot);
        goto out;
    }
    pid_t init;
    if (e2b_criu_restore_finish(&(struct e2b_criu_restore){ .work_dir = sb->dir }, status, &init,
                                err) < 0) {
        e2b_error_wrap(err, "cannot restore sandbox '%s'", sb->id);
        goto out;
    }
    run->pid = init; /* the supervisor's child (--restore-sibling): stop kills it from here */
    run->log_fd = logp[0];
    logp[0] = -1;
    /* CRIU leaves the freezer as the dump found it: frozen, as a whole */
    if (e2b_cgroup_freeze_whole(sb->id, false, err) < 0 ||
        e2b_cgroup_freeze(sb->id, false, err) < 0)
        goto out;
    r = post_init(sb, spec, snap, err);
out:
    handed_close(&h);
    if (logp[0] >= 0)
        close(logp[0]);
    if (logp[1] >= 0)
        close(logp[1]);
    return r;
}

const struct e2b_runtime_ops e2b_runtime_ns = { E2B_RUNTIME_OPS("ns", ns_), .snapshot = ns_snapshot,
                                                .restore = ns_restore };
