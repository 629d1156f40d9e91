/* build-run.c - see build-run.h */
#include "build-run.h"
#include "build-copy.h"
#include "build-user.h"
#include "cgroup.h"
#include "fsutil.h"
#include "sandbox-seccomp.h"
#include "strbuf.h"

#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

/* ---- the step's process ---- */

/* An empty file to bind a file onto, made inside the root. */
static int touch_in_root(const char *root, const char *path, struct e2b_error **err)
{
    _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0)
        return e2b_error_sys(err, errno, "%s", root);
    _cleanup_free_ char *parent = xstrdup(path);
    char *slash = strrchr(parent, '/');
    const char *name = slash ? slash + 1 : path;
    if (slash)
        *slash = '\0';
    _cleanup_close_ int pfd = e2b_tree_mkdir_p(rfd, slash ? parent : ".", err);
    if (pfd < 0)
        return -1;
    _cleanup_close_ int fd = openat(pfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EISDIR && errno != ELOOP)
        return e2b_error_sys(err, errno, "mount target %s", path);
    return 0;
}

/* A new file system as a detached mount; kv: option pairs, NULL-ended. */
static int fs_new(const char *type, const char *const *kv, unsigned attrs)
{
    int fs = fsopen(type, FSOPEN_CLOEXEC);
    if (fs < 0)
        return -1;
    int m = -1;
    for (; kv && kv[0]; kv += 2)
        if (fsconfig(fs, FSCONFIG_SET_STRING, kv[0], kv[1], 0) < 0)
            goto out;
    if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
        m = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
out:;
    int e = errno;
    close(fs);
    errno = e;
    return m;
}

/* Attach a detached mount at target, resolved inside the root (a symlink
 * planted by an earlier step leads nowhere outside it). */
static int attach(int mfd, int rootfd, const char *target, const char *what)
{
    _cleanup_close_ int t = e2b_tree_open(rootfd, target, O_PATH);
    if (t < 0 || move_mount(mfd, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
        dprintf(2, "e2b build: cannot mount %s on %s: %m\n", what, target);
        return -1;
    }
    return 0;
}

/* The RUN step's process (pid 1 of new mount and pid namespaces, still the
 * host's root): pivot into the stage root (chroot alone can be climbed out
 * of by root), give it /proc and a minimal /dev of its own, and drop what a
 * container's root has no need for, as the sandbox runtime does. Messages
 * go to stderr (the step's output). */
static int enter_build_root(const struct e2b_run_spec *rs)
{
    static const struct {
        const char *name;
        unsigned maj, min;
    } nodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9},
                 {"tty", 5, 0}};
    static const char *const links[][2] = {{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
                                           {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}};
    static const int keep[] = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID,
                               CAP_SETUID, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
                               CAP_AUDIT_WRITE, CAP_SETFCAP};
    const char *root = rs->root;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0) { /* pivot_root wants a mount point;
                                                               * MS_REC: a host stage's overlays */
        dprintf(2, "e2b build: cannot set up the mounts of the build root: %m\n");
        return -1;
    }
    /* every mount point from here is resolved inside the root */
    _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0) {
        dprintf(2, "e2b build: cannot open the build root: %m\n");
        return -1;
    }
    (void)mkdirat(rfd, "proc", 0555);
    (void)mkdirat(rfd, "dev", 0755);
    static const char *const devopts[] = {"size", "64k", "mode", "755", NULL};
    int pm = fs_new("proc", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    int dm = fs_new("tmpfs", devopts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
    if (pm < 0 || dm < 0) {
        dprintf(2, "e2b build: cannot make /proc and /dev for the build root: %m\n");
        return -1;
    }
    if (attach(pm, rfd, "/proc", "proc") < 0 || attach(dm, rfd, "/dev", "/dev") < 0)
        return -1;
    close(pm);
    close(dm);
    _cleanup_close_ int dev = e2b_tree_open(rfd, "/dev", O_PATH | O_DIRECTORY);
    for (size_t i = 0; dev >= 0 && i < ARRAY_SIZE(nodes); i++) {
        if (mknodat(dev, nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0) {
            dprintf(2, "e2b build: cannot create /dev/%s: %m\n", nodes[i].name);
            return -1;
        }
        fchmodat(dev, nodes[i].name, 0666, 0);
    }
    for (size_t i = 0; dev >= 0 && i < ARRAY_SIZE(links); i++)
        (void)!symlinkat(links[i][0], dev, links[i][1]);
    /* RUN --mount: cache dirs, binds of the context or a stage, tmpfs */
    for (size_t i = 0; i < rs->n_mounts; i++)
        if (attach(rs->mounts[i].mfd, rfd, rs->mounts[i].target, rs->mounts[i].target) < 0)
            return -1;
    if (chdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0) {
        dprintf(2, "e2b build: cannot pivot into the build root: %m\n");
        return -1;
    }
    if (chdir(rs->workdir) < 0) {
        dprintf(2, "e2b build: cannot enter WORKDIR %s: %m\n", rs->workdir);
        return -1;
    }
    /* /proc/sys and friends read-only, as in a sandbox */
    static const char *const ro[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"};
    for (size_t i = 0; i < ARRAY_SIZE(ro); i++)
        if (mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL) == 0)
            mount(NULL, ro[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    /* the filter first, while CAP_SYS_ADMIN lets it in without no_new_privs
     * (setuid programs in RUN steps keep working) */
    _cleanup_error_ struct e2b_error *e = NULL;
    if (e2b_seccomp_apply(&e) < 0) {
        dprintf(2, "e2b build: %s\n", e->msg);
        return -1;
    }
    uint64_t kept = 0;
    for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
        kept |= 1ULL << keep[i];
    for (int c = 0; c <= 63; c++)
        if (!(kept & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) {
            dprintf(2, "e2b build: cannot drop capability %d: %m\n", c);
            return -1;
        }
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2] = {{0}};
    data[0].effective = data[0].permitted = data[0].inheritable = (uint32_t)kept;
    data[1].effective = data[1].permitted = data[1].inheritable = (uint32_t)(kept >> 32);
    if (syscall(SYS_capset, &hdr, data) < 0) {
        dprintf(2, "e2b build: cannot set capabilities: %m\n");
        return -1;
    }
    return 0;
}

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* Exec the step's program, found on the step's own PATH (its ENV, inside
 * the root), or a `#!` heredoc through its interpreter as BuildKit does. */
static _noreturn_ void run_exec(const struct e2b_run_spec *rs)
{
    environ = rs->envp;
    if (rs->script) {
        int fd = memfd_create("heredoc", MFD_EXEC);
        if (fd < 0)
            fd = memfd_create("heredoc", 0);
        /* no close-on-exec: the interpreter opens the script as /dev/fd/N */
        if (fd >= 0 && e2b_write_all(fd, rs->script, strlen(rs->script)) == 0)
            fexecve(fd, rs->argv, rs->envp);
        dprintf(2, "%s: cannot run the heredoc script: %m\n", rs->argv[0]);
        _exit(127);
    }
    execvp(rs->argv[0], rs->argv);
    dprintf(2, "%s: %m\n", rs->argv[0]);
    _exit(127);
}


/* In the builder's child: the step's pid 1, killed on SIGTERM (the deadline). */
static volatile pid_t step_init;
static void kill_step_init(int sig)
{
    (void)sig;
    if (step_init > 0)
        kill(step_init, SIGKILL);
}

int e2b_run_step(const struct e2b_run_spec *rs, const char *what, struct e2b_error **err)
{
    uid_t uid = 0;
    gid_t gid = 0;
    if (rs->user && *rs->user) {
        _cleanup_free_ char *u = xstrdup(rs->user);
        char *g = strchr(u, ':');
        if (g)
            *g++ = '\0';
        if (e2b_root_lookup_uid(rs->root, u, &uid, &gid, err) < 0 ||
            (g && e2b_root_lookup_gid(rs->root, g, &gid, err) < 0))
            return -1;
    }
    if (e2b_tree_mkdir_in(rs->root, rs->workdir, err) < 0)
        return -1;
    for (size_t i = 0; i < rs->n_mounts; i++)
        if ((rs->mounts[i].file ? touch_in_root : e2b_tree_mkdir_in)(rs->root, rs->mounts[i].target, err) < 0)
            return -1;
    _cleanup_free_ char *cg = NULL;
    if (rs->memory_mb > 0 || rs->cpu_count > 0) {
        cg = xasprintf("build-%d-%zu", (int)getpid(), rs->step);
        struct e2b_cgroup_limits lim = {
            .memory_bytes = (uint64_t)(rs->memory_mb > 0 ? rs->memory_mb : 0) << 20,
            .cpu_count = (unsigned)(rs->cpu_count > 0 ? rs->cpu_count : 0),
            .pids_max = 4096,
        };
        if (e2b_cgroup_create(cg, &lim, err) < 0)
            return e2b_error_wrap(err, "RUN cgroup");
    }
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        if (cg)
            e2b_cgroup_destroy(cg);
        return e2b_error_sys(err, errno, "pipe");
    }
    int gate[2];
    if (pipe2(gate, O_CLOEXEC) < 0) {
        close(pfd[0]);
        close(pfd[1]);
        if (cg)
            e2b_cgroup_destroy(cg);
        return e2b_error_sys(err, errno, "pipe");
    }
    pid_t builder = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        close(gate[0]);
        close(gate[1]);
        if (cg)
            e2b_cgroup_destroy(cg);
        return e2b_error_sys(err, e, "fork");
    }
    if (pid == 0) {
        /* a builder killed with -9 takes its step along: this process, then
         * (by its own PDEATHSIG) the step's pid 1 and its whole namespace,
         * and with them every mount the step had */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != builder)
            _exit(125);
        /* wait until the cgroup holds us */
        close(gate[1]);
        char c;
        while (read(gate[0], &c, 1) < 0 && errno == EINTR)
            ;
        int fl = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
        if (!rs->network_host)
            fl |= CLONE_NEWNET;
        if (unshare(fl) < 0)
            _exit(125);
        /* SIGTERM (the deadline) is turned into SIGKILL of the step's pid 1
         * by the handler below; blocked until it is in place */
        sigset_t term, old;
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        sigprocmask(SIG_BLOCK, &term, &old);
        pid_t ch = fork();
        if (ch < 0)
            _exit(125);
        if (ch > 0) {
            step_init = ch;
            struct sigaction sa = {.sa_handler = kill_step_init};
            sigaction(SIGTERM, &sa, NULL);
            sigprocmask(SIG_SETMASK, &old, NULL);
            /* pid 1's exit waits for every process of its namespace: when
             * this wait returns the step, its mounts and its cgroup
             * members are all gone, and the builder may clean up */
            int ws;
            while (waitpid(ch, &ws, 0) < 0 && errno == EINTR)
                ;
            _exit(WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
        /* pid 1 of the step: when the builder's child goes, the whole pid
         * namespace goes with it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        if (!rs->network_host) {
            /* loopback up in the new network namespace */
            int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            struct ifreq ifr = {0};
            strcpy(ifr.ifr_name, "lo");
            if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
                ifr.ifr_flags |= IFF_UP;
                ioctl(s, SIOCSIFFLAGS, &ifr);
            }
            if (s >= 0)
                close(s);
        }
        sethostname("e2b-build", 9);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        if (enter_build_root(rs) < 0)
            _exit(125);
        if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
            _exit(125);
        run_exec(rs);
    }
    close(pfd[1]);
    close(gate[0]);
    int r = 0;
    if (cg && e2b_cgroup_add(cg, pid, err) < 0) {
        kill(pid, SIGKILL);
        r = e2b_error_wrap(err, "RUN cgroup");
    }
    close(gate[1]);
    char tail[2048];
    size_t tlen = 0;
    char buf[4096];
    ssize_t m;
    int64_t deadline = rs->timeout_s > 0 ? e2b_now_ms() + (int64_t)rs->timeout_s * 1000 : 0;
    bool timed_out = false;
    for (;;) {
        if (deadline && !timed_out) {
            int64_t left = deadline - e2b_now_ms();
            struct pollfd p = {.fd = pfd[0], .events = POLLIN};
            int pr = left > 0 ? poll(&p, 1, (int)(left > INT32_MAX ? INT32_MAX : left)) : 0;
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr == 0) {
                /* our child kills the step's pid 1 and exits only once the
                 * whole namespace is gone (not SIGKILL of the child: the
                 * step would then die on its own time, after we return) */
                kill(pid, SIGTERM);
                timed_out = true;
            }
        }
        m = read(pfd[0], buf, sizeof(buf));
        if (m == 0)
            break;
        if (m < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (rs->output)
            rs->output(rs->data, buf, (size_t)m);
        for (ssize_t i = 0; i < m; i++) {
            if (tlen == sizeof(tail)) {
                memmove(tail, tail + 1024, 1024);
                tlen = 1024;
            }
            tail[tlen++] = buf[i];
        }
    }
    close(pfd[0]);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    bool oom = false;
    if (cg) {
        struct e2b_cgroup_stats cs = {0};
        if (e2b_cgroup_stats(cg, &cs, NULL) == 0)
            oom = cs.oom_killed;
        e2b_cgroup_destroy(cg);
    }
    int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    while (tlen && tail[tlen - 1] == '\n')
        tlen--;
    if (r == 0 && timed_out)
        r = e2b_error_set(err, E2B_ERR_TIMEOUT, "%s%sdid not finish within %d s (killed)%s%.*s", what ? what : "",
                          what ? ": " : "", rs->timeout_s, tlen ? "; last output:\n" : "", (int)tlen, tail);
    else if (r == 0 && code != 0)
        r = e2b_error_set(err, E2B_ERR_GENERIC, "%s%sexit code %d%s%s%.*s", what ? what : "", what ? ": " : "", code,
                          oom ? " (out of memory: --memory-mb)" : "", tlen ? "; last output:\n" : "",
                          (int)tlen, tail);
    return r;
}

/* ---- RUN --mount ---- */

/* A detached bind mount of src_fd, read-only or not. */
static int bind_detached(int src_fd, bool ro, struct e2b_error **err)
{
    int m = open_tree(src_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    if (m < 0)
        return e2b_error_sys(err, errno, "RUN --mount: bind");
    struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
    if (!ro)
        a.attr_set &= ~(uint64_t)MOUNT_ATTR_RDONLY;
    if (mount_setattr(m, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) < 0) {
        int e = errno;
        close(m);
        return e2b_error_sys(err, e, "RUN --mount: bind attributes");
    }
    return m;
}

/* A read-write bind whose writes are thrown away (BuildKit's rw): an
 * overlay of the source with an upper in the step's scratch dir. */
static int bind_scratch(int src_fd, const char *scratch, struct e2b_error **err)
{
    _cleanup_free_ char *up = e2b_path_join(scratch, "upper"), *wk = e2b_path_join(scratch, "work");
    if (e2b_mkdir_p(up, 0755, err) < 0 || e2b_mkdir_p(wk, 0700, err) < 0)
        return -1;
    char lower[64];
    snprintf(lower, sizeof(lower), "/proc/self/fd/%d", src_fd);
    int fs = fsopen("overlay", FSOPEN_CLOEXEC);
    if (fs < 0)
        return e2b_error_sys(err, errno, "RUN --mount: overlayfs");
    int m = -1;
    if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", lower, 0) == 0 &&
        fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", up, 0) == 0 &&
        fsconfig(fs, FSCONFIG_SET_STRING, "workdir", wk, 0) == 0 &&
        fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
        m = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    int e = errno;
    close(fs);
    if (m < 0)
        return e2b_error_sys(err, e, "RUN --mount: read-write bind");
    return m;
}

static void mount_push(struct e2b_run_spec *rs, int mfd, const char *target, bool file, int lock_fd)
{
    rs->mounts = xrealloc(rs->mounts, (rs->n_mounts + 1) * sizeof(*rs->mounts));
    rs->mounts[rs->n_mounts++] = (struct e2b_run_mount){.mfd = mfd, .target = xstrdup(target), .file = file,
                                                    .lock_fd = lock_fd};
}

int e2b_run_bind_file(struct e2b_run_spec *rs, const char *host_path, const char *target, struct e2b_error **err)
{
    _cleanup_close_ int fd = open(host_path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot open '%s'", host_path);
    int m = bind_detached(fd, true, err);
    if (m < 0)
        return -1;
    mount_push(rs, m, target, true, -1);
    return 0;
}

/* RUN --mount: cache dirs kept per template, binds from the context or a
 * stage (read-only, or read-write with the writes discarded), tmpfs. Bind
 * sources are resolved inside their tree. */
int e2b_run_mounts(struct e2b_run_spec *rs, const struct e2b_df_instr *in, const struct e2b_build_src *bs,
                   const struct e2b_build_cache *cache, const char *template_name, const char *tmpdir,
                   struct e2b_sha256 *kc, struct e2b_error **err)
{
    for (size_t i = 0; i < in->n_mounts; i++) {
        const struct e2b_df_mount *m = &in->mounts[i];
        if (!m->target)
            return e2b_error_set(err, E2B_ERR_INVALID, "RUN --mount: no target");
        const char *t = m->target;
        if (m->type == E2B_DF_MOUNT_TMPFS) {
            char size[32];
            snprintf(size, sizeof(size), "%llu", m->size);
            const char *kv[] = {"mode", "1777", m->size ? "size" : NULL, size, NULL};
            int mfd = fs_new("tmpfs", kv, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
            if (mfd < 0)
                return e2b_error_sys(err, errno, "RUN --mount=type=tmpfs");
            mount_push(rs, mfd, t, false, -1);
            continue;
        }
        if (m->type == E2B_DF_MOUNT_CACHE) {
            /* a persistent directory per template and cache id */
            _cleanup_free_ char *src = e2b_build_cache_mount_dir(cache, template_name, m->id ? m->id : t);
            if (e2b_mkdir_p(src, 0755, err) < 0)
                return -1;
            if (m->uid >= 0 || m->gid >= 0)
                if (chown(src, m->uid >= 0 ? (uid_t)m->uid : 0, m->gid >= 0 ? (gid_t)m->gid : 0) < 0)
                    return e2b_error_sys(err, errno, "chown cache mount");
            if (m->mode >= 0)
                chmod(src, (mode_t)m->mode);
            /* sharing: shared users hold it shared, locked waits for them to
             * leave, private takes a fresh directory while it is in use */
            int lk = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (lk < 0)
                return e2b_error_sys(err, errno, "cache mount %s", t);
            _cleanup_free_ char *priv = NULL;
            if (m->sharing == E2B_DF_SHARING_LOCKED)
                flock(lk, LOCK_EX);
            else if (m->sharing == E2B_DF_SHARING_PRIVATE && flock(lk, LOCK_EX | LOCK_NB) < 0) {
                close(lk);
                lk = -1;
                priv = xasprintf("%s/cache-%zu", tmpdir, i);
                if (e2b_mkdir_p(priv, 0755, err) < 0)
                    return -1;
            } else if (m->sharing == E2B_DF_SHARING_SHARED)
                flock(lk, LOCK_SH);
            _cleanup_close_ int sfd = open(priv ? priv : src, O_PATH | O_DIRECTORY | O_CLOEXEC);
            int mfd = sfd >= 0 ? bind_detached(sfd, m->readonly, err) : e2b_error_sys(err, errno, "%s", src);
            if (mfd < 0) {
                if (lk >= 0)
                    close(lk);
                return -1;
            }
            mount_push(rs, mfd, t, false, lk);
            continue;
        }
        if (m->type != E2B_DF_MOUNT_BIND)
            return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "RUN --mount=type=%s is not supported by this builder",
                                 m->type == E2B_DF_MOUNT_SECRET ? "secret" : "ssh");
        int tree = bs->ctx_fd;
        _cleanup_close_ int base_fd = -1;
        if (m->from_stage >= 0 || m->from) {
            const char *base, *key;
            if (bs->from(bs->ud, m->from_stage, m->from, NULL, &base, &key, err) < 0)
                return -1;
            e2b_build_key_str(kc, key);
            base_fd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (base_fd < 0)
                return e2b_error_sys(err, errno, "RUN --mount from %s", m->from);
            tree = base_fd;
        }
        _cleanup_free_ char *rel = e2b_context_clean(m->source ? m->source : ".", err);
        if (!rel)
            return e2b_error_wrap(err, "RUN --mount source");
        if (tree == bs->ctx_fd && strcmp(rel, ".") && e2b_ignore_match(bs->ignore, rel))
            return e2b_error_set(err, E2B_ERR_NOT_FOUND, "RUN --mount source %s: not in the build context", rel);
        _cleanup_close_ int sfd = e2b_tree_open(tree, rel, O_PATH);
        if (sfd < 0)
            return e2b_error_sys(err, errno, "RUN --mount source %s", rel);
        struct stat st;
        if (fstat(sfd, &st) < 0)
            return e2b_error_sys(err, errno, "RUN --mount source %s", rel);
        if (tree == bs->ctx_fd && e2b_copy_hash(kc, sfd, rel, bs->ignore, NULL, err) < 0)
            return -1;
        if (tree == bs->ctx_fd && bs->ignore->n && S_ISDIR(st.st_mode)) {
            /* the step sees the context as BuildKit sends it: without what
             * .dockerignore leaves out (a filtered copy, bound instead) */
            _cleanup_free_ char *fc = xasprintf("%s/ctx-%zu", tmpdir, i);
            _cleanup_close_ int tfd = -1;
            struct e2b_copy_opts co = {.ignore = bs->ignore};
            if (e2b_mkdir_p(fc, 0755, err) < 0)
                return -1;
            if ((tfd = open(fc, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
                return e2b_error_sys(err, errno, "%s", fc);
            if (e2b_copy_tree(&co, sfd, rel, tfd, "/", err) < 0)
                return e2b_error_wrap(err, "RUN --mount source %s", rel);
            close(sfd);
            sfd = TAKE_FD(tfd);
        }
        int mfd;
        if (m->readonly) {
            mfd = bind_detached(sfd, true, err);
        } else if (S_ISDIR(st.st_mode)) {
            _cleanup_free_ char *scratch = xasprintf("%s/bind-%zu", tmpdir, i);
            mfd = bind_scratch(sfd, scratch, err);
        } else {
            /* one file, read-write: a copy of it takes the writes */
            _cleanup_free_ char *scratch = xasprintf("%s/bind-%zu", tmpdir, i);
            _cleanup_close_ int tfd = -1;
            struct e2b_copy_opts co = {0};
            if (e2b_mkdir_p(scratch, 0755, err) < 0 ||
                (tfd = open(scratch, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 ||
                e2b_copy_tree(&co, sfd, rel, tfd, "/f", err) < 0)
                return e2b_error_wrap(err, "RUN --mount source %s", rel);
            _cleanup_close_ int cfd = openat(tfd, "f", O_PATH | O_NOFOLLOW | O_CLOEXEC);
            mfd = cfd >= 0 ? bind_detached(cfd, false, err) : e2b_error_sys(err, errno, "%s", scratch);
        }
        if (mfd < 0)
            return -1;
        mount_push(rs, mfd, t, !S_ISDIR(st.st_mode), -1);
    }
    return 0;
}

void e2b_run_spec_free(struct e2b_run_spec *rs)
{
    e2b_strv_free(rs->argv);
    e2b_strv_free(rs->envp);
    free(rs->script);
    for (size_t i = 0; i < rs->n_mounts; i++) {
        close(rs->mounts[i].mfd);
        if (rs->mounts[i].lock_fd >= 0)
            close(rs->mounts[i].lock_fd);
        free(rs->mounts[i].target);
    }
    free(rs->mounts);
}

/* ---- the instruction ---- */

char **e2b_run_env(const struct e2b_df_instr *in)
{
    char **v = NULL;
    bool path = false;
    for (char **e = in->env; e && *e; e++) {
        v = e2b_strv_push(v, *e);
        path = path || e2b_str_has_prefix(*e, "PATH=");
    }
    if (!path)
        v = e2b_strv_push(v, "PATH=" E2B_RUN_DEFAULT_PATH);
    return v;
}

char **e2b_run_argv(const json_t *shell, const struct e2b_df_instr *in, char **script)
{
    char **v = NULL;
    *script = NULL;
    if (in->json) {
        for (size_t i = 0; i < in->n_args; i++)
            v = e2b_strv_push(v, in->args[i]);
        return v;
    }
    const char *cmd = in->n_args ? in->args[0] : "";
    const char *p = cmd;
    while (*p == ' ' || *p == '\t')
        p++;
    bool alone = in->n_heredocs == 1 && e2b_str_has_prefix(p, "<<") && !strchr(p, ' ');
    if (alone && e2b_str_has_prefix(in->heredocs[0].content, "#!")) {
        *script = xstrdup(in->heredocs[0].content);
        return e2b_strv_push(NULL, in->heredocs[0].name);
    }
    if (shell && json_array_size(shell)) {
        size_t i;
        json_t *x;
        json_array_foreach(shell, i, x) v = e2b_strv_push(v, json_string_value(x) ?: "");
    } else {
        v = e2b_strv_push(v, "/bin/sh");
        v = e2b_strv_push(v, "-c");
    }
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    if (alone) {
        strbuf_addstr(&sb, in->heredocs[0].content);
    } else {
        strbuf_addstr(&sb, cmd);
        for (size_t i = 0; i < in->n_heredocs; i++) {
            strbuf_addch(&sb, '\n');
            strbuf_addstr(&sb, in->heredocs[i].content);
            strbuf_addstr(&sb, in->heredocs[i].name);
        }
    }
    char *c = strbuf_detach(&sb, NULL);
    v = e2b_strv_push(v, c);
    free(c);
    return v;
}

/* RUN cgroups (build-<pid>-<step>) of builders that were killed. */
void e2b_run_clean_stale(void)
{
    static const char *const pats[] = {"/sys/fs/cgroup/e2b/build-*", "/sys/fs/cgroup/*/e2b/build-*"};
    for (size_t i = 0; i < ARRAY_SIZE(pats); i++) {
        glob_t g;
        if (glob(pats[i], GLOB_NOSORT | GLOB_ONLYDIR, NULL, &g) != 0)
            continue;
        for (size_t k = 0; k < g.gl_pathc; k++) {
            const char *name = strrchr(g.gl_pathv[k], '/') + 1;
            pid_t pid = (pid_t)atoi(name + 6);
            if (pid > 0 && pid != getpid() && kill(pid, 0) < 0 && errno == ESRCH)
                e2b_cgroup_destroy(name);
        }
        globfree(&g);
    }
}

