/* runtime-vm.c - the microVM runtime: a sandbox is a QEMU `microvm` whose
 * guest kernel (vm-kernel.h) boots e2b's initramfs, whose init (envd-vm.h)
 * makes the root from the template's rootfs.ext4 (read-only, shared by
 * every VM of the template) under the sandbox's own writable disk and runs
 * envd there. Reached only through e2b_runtime_vm (runtime.h).
 *
 * In the state directory:
 *   disk.ext4          the writable layer: an empty ext4 of --disk MiB,
 *                      sparse (a few hundred KiB until the guest writes)
 *   qmp.sock           QEMU's machine protocol (qmp.h): pause, resume, quit
 *   envd.sock          envd, through the supervisor's relay (vm-relay.h)
 *   ports.sock         TCP ports in the guest, the same way (port_connect)
 *   console.log(.1)    the guest's serial console (kernel messages, panics)
 *   qemu.log           QEMU's own messages
 *   qemu.pid           "PID STARTTIME": the reaper kills that QEMU only
 * The link to the guest is a socket pair, one end QEMU's virtio-serial
 * chardev, the other the relay's (a thread of the supervisor).
 *
 * QEMU runs in a network namespace of its own with nothing in it (with
 * --internet, slirp4netns gives that namespace outbound access, and QEMU's
 * user-mode network gives it to the guest: the host's loopback stays out
 * of reach), under its seccomp sandbox, in the sandbox's cgroups (memory:
 * the VM's plus QEMU's overhead), and dies with the supervisor
 * (PR_SET_PDEATHSIG). pause and resume are QMP stop and cont: the VM stays
 * in memory.
 */
#include "runtime.h"
#include "cgroup.h"
#include "ext4.h"
#include "fsutil.h"
#include "qmp.h"
#include "slirp.h"
#include "strbuf.h"
#include "vm-accel.h"
#include "vm-kernel.h"
#include "vm-relay.h"
#include "envd-vm.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define QEMU               "qemu-system-x86_64"
#define QMP_TIMEOUT_MS     5000
#define MEMORY_OVERHEAD_MB 256 /* QEMU itself and TCG's translation cache (tb-size) */
#define TB_SIZE_MB         64

struct vm_run {
    struct e2b_vm_relay *relay;
    int pidfd;
    int slirp_exit_w;
    pid_t slirp_pid;
    bool ready; /* envd answered: QEMU runs the guest and takes QMP */
    bool reaped;
};

/* QEMU in PATH (or $E2B_QEMU), or NULL. */
static char *find_qemu(void)
{
    const char *env = getenv("E2B_QEMU");
    if (env && *env)
        return access(env, X_OK) == 0 ? xstrdup(env) : NULL;
    const char *path = getenv("PATH");
    _cleanup_free_ char *copy = xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        _cleanup_free_ char *p = e2b_path_join(d, QEMU);
        if (access(p, X_OK) == 0)
            return TAKE_PTR(p);
    }
    return NULL;
}

static int vm_prepare(struct e2b_runtime_spec *spec, json_t *state, struct e2b_error **err)
{
    if (spec->host)
        return e2b_error_set(
            err, E2B_ERR_UNSUPPORTED,
            "the 'host' template cannot run as a VM (it is this machine's own programs); "
            "use --runtime ns, or a template built with 'e2b template build'");
    if (!spec->rootfs_image)
        return e2b_error_set(
            err, E2B_ERR_NOT_FOUND,
            "template '%s' has no ext4 image (rootfs.ext4), which the vm runtime boots "
            "(rebuild it with 'e2b template build')",
            spec->template_name);
    spec->rootfs_tree = NULL;
    _cleanup_free_ char *qemu = find_qemu();
    if (!qemu)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                             "the vm runtime needs QEMU (%s): install qemu-system-x86", QEMU);
    const char *accel;
    if (e2b_vm_accel(&accel, NULL, err) < 0)
        return -1;
    struct e2b_vm_kernel k;
    if (e2b_vm_kernel_find(spec->kernel, &k, err) < 0)
        return -1;
    _cleanup_free_ char *initrd = NULL, *image = NULL;
    int r = e2b_vm_initramfs(&k, spec->envd, &initrd, err);
    if (r == 0) {
        e2b_vm_kernel_boot_image(&k, &image);
        json_object_set_new(state, "accelerator", json_string(accel));
        json_t *vm = json_pack("{s:s, s:s, s:s, s:s, s:s}", "qemu", qemu, "kernel", k.path,
                               "kernelVersion", k.version, "bootImage", image, "initramfs", initrd);
        unsigned long khz = STREQ(accel, "tcg") ? e2b_vm_tsc_khz() : 0;
        if (khz)
            json_object_set_new(vm, "tscKhz", json_integer((json_int_t)khz));
        json_object_set_new(state, "vm", vm);
        if (spec->unprivileged)
            json_object_set_new(
                state, "limits",
                json_string("the VM's memory and vCPUs (unprivileged: no cgroup around QEMU)"));
    }
    e2b_vm_kernel_release(&k);
    return r;
}

/* ---- the end of QEMU ------------------------------------------------------- */

/* The last lines of console.log (and console.log.1 before it), at most max bytes. */
static char *console_tail(const char *dir, size_t max)
{
    _cleanup_free_ char *p = e2b_path_join(dir, "console.log");
    _cleanup_free_ char *p1 = e2b_path_join(dir, "console.log.1");
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    const char *files[] = { p1, p };
    for (size_t i = 0; i < 2; i++) {
        _cleanup_close_ int fd = open(files[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
            continue;
        off_t from = st.st_size > (off_t)max ? st.st_size - (off_t)max : 0;
        char buf[8192];
        ssize_t n;
        lseek(fd, from, SEEK_SET);
        while ((n = read(fd, buf, sizeof(buf))) > 0)
            strbuf_add(&sb, buf, (size_t)n);
    }
    /* printable, no \r, at most max bytes from the end, from a line's start */
    size_t start = sb.len > max ? sb.len - max : 0;
    if (start) {
        char *nl = memchr(sb.buf + start, '\n', sb.len - start);
        start = nl ? (size_t)(nl + 1 - sb.buf) : start;
    }
    struct strbuf out = STRBUF_INIT;
    for (size_t i = start; i < sb.len; i++) {
        unsigned char c = (unsigned char)sb.buf[i];
        if (c == '\r')
            continue;
        strbuf_addch(&out, c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f) ? (char)c : '?');
    }
    strbuf_rtrim(&out);
    return strbuf_detach(&out, NULL);
}

/* "Kernel panic - not syncing: <why>" in the console's last part, or NULL. */
static char *panic_reason(const char *dir)
{
    _cleanup_free_ char *tail = console_tail(dir, 64 << 10);
    const char *k = NULL, *p = tail;
    while ((p = strstr(p, "Kernel panic - not syncing")))
        k = p++;
    if (!k)
        return NULL;
    const char *why = strstr(k, "not syncing: ");
    why = why ? why + strlen("not syncing: ") : k;
    return xstrndup(why, strcspn(why, "\n"));
}

static char *qemu_log_tail(const char *dir)
{
    _cleanup_free_ char *p = e2b_path_join(dir, "qemu.log");
    _cleanup_free_ char *log = NULL;
    if (e2b_read_file_untrusted(p, 4096, &log, NULL, NULL) < 0)
        return NULL;
    size_t n = strlen(log);
    while (n && (log[n - 1] == '\n' || log[n - 1] == '\r'))
        log[--n] = '\0';
    return n ? TAKE_PTR(log) : NULL;
}

static char *why_ended(const char *dir, int status)
{
    _cleanup_free_ char *panic = panic_reason(dir);
    if (panic)
        return xasprintf("the guest kernel panicked: %s", panic);
    if (WIFSIGNALED(status))
        return xasprintf("QEMU was killed (signal %d)", WTERMSIG(status));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return xstrdup("the VM shut down");
    _cleanup_free_ char *log = qemu_log_tail(dir);
    return xasprintf("QEMU exited with status %d%s%s", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                     log ? ": " : "", log ? log : "");
}

/* ---- QMP -------------------------------------------------------------------- */

static int qmp_run(const char *dir, const char *cmd, int timeout_ms, struct e2b_error **err)
{
    int fd = e2b_vm_unix_connect(dir, "qmp.sock", err);
    struct e2b_qmp *q = NULL;
    if (fd < 0 || e2b_qmp_open(fd, timeout_ms, &q, err) < 0)
        return -1;
    int r = e2b_qmp_execute(q, cmd, NULL, timeout_ms, NULL, err);
    e2b_qmp_close(q);
    return r;
}

/* ---- starting QEMU -------------------------------------------------------------- */

/* A value inside a QEMU option: a comma is written twice. */
static char *qemu_escape(const char *s)
{
    struct strbuf sb = STRBUF_INIT;
    for (; *s; s++) {
        strbuf_addch(&sb, *s);
        if (*s == ',')
            strbuf_addch(&sb, ',');
    }
    return strbuf_detach(&sb, NULL);
}

static char **push_arg(char **v, const char *fmt, ...) _printf_(2, 3);
static char **push_arg(char **v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *a = xvasprintf(fmt, ap);
    va_end(ap);
    return e2b_strv_push(v, a);
}

static char **qemu_argv(const struct e2b_runtime_sandbox *sb, const struct e2b_runtime_spec *spec,
                        const char *qemu, const char *accel)
{
    const json_t *vm = json_object_get(sb->state, "vm");
    _cleanup_free_ char *kernel =
        qemu_escape(e2b_json_str(vm, "bootImage") ?: e2b_json_str(vm, "kernel"));
    _cleanup_free_ char *initrd = qemu_escape(e2b_json_str(vm, "initramfs"));
    _cleanup_free_ char *root = qemu_escape(spec->rootfs_image);
    _cleanup_free_ char *disk_path = e2b_path_join(sb->dir, "disk.ext4");
    _cleanup_free_ char *disk = qemu_escape(disk_path);
    char **v = NULL;
#define ARG(...) (v = push_arg(v, __VA_ARGS__))
    ARG("%s", qemu);
    ARG("-name"), ARG("e2b-%s", sb->id);
    ARG("-M"), ARG("microvm,isa-serial=on");
    if (STREQ(accel, "kvm"))
        ARG("-accel"), ARG("kvm"), ARG("-cpu"), ARG("host");
    else
        ARG("-accel"), ARG("tcg,tb-size=%d", TB_SIZE_MB), ARG("-cpu"), ARG("max");
    ARG("-m"), ARG("%d", spec->memory_mb > 0 ? spec->memory_mb : 512);
    ARG("-smp"), ARG("%u", spec->cpu_count ? spec->cpu_count : 1);
    ARG("-nodefaults"), ARG("-no-user-config"), ARG("-nographic"), ARG("-no-reboot");
    ARG("-sandbox"), ARG("on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    ARG("-kernel"), ARG("%s", kernel);
    ARG("-initrd"), ARG("%s", initrd);
    /* panic=-1 and -no-reboot: a panic ends QEMU; no probing of what microvm
     * does not have; after "--", init's own arguments */
    _cleanup_free_ char *tsc = e2b_json_int(vm, "tscKhz", 0) > 0
                                   ? xasprintf(" tsc_early_khz=%lld", e2b_json_int(vm, "tscKhz", 0))
                                   : xstrdup("");
    ARG("-append");
    ARG("console=ttyS0 quiet panic=-1 reboot=t%s 8250.nr_uarts=1 pci=off i8042.noaux i8042.nokbd no_timer_check "
        "cryptomgr.notests random.trust_cpu=on -- --vm",
        tsc);
    ARG("-chardev"), ARG("stdio,id=con,signal=off");
    ARG("-serial"), ARG("chardev:con");
    ARG("-drive"), ARG("id=root,file=%s,format=raw,if=none,readonly=on", root);
    ARG("-device"), ARG("virtio-blk-device,drive=root,serial=%s", E2B_VM_ROOT_SERIAL);
    ARG("-drive"), ARG("id=disk,file=%s,format=raw,if=none,cache=unsafe", disk);
    ARG("-device"), ARG("virtio-blk-device,drive=disk,serial=%s", E2B_VM_DISK_SERIAL);
    ARG("-device"), ARG("virtio-serial-device");
    ARG("-chardev"), ARG("socket,id=link,fd=3");
    ARG("-device"), ARG("virtserialport,chardev=link,name=%s", E2B_VM_PORT_NAME);
    ARG("-chardev"), ARG("socket,id=qmp,fd=4,server=on,wait=off");
    ARG("-mon"), ARG("chardev=qmp,mode=control");
    if (spec->internet) {
        ARG("-netdev"), ARG("user,id=net0,ipv6=off");
        ARG("-device"), ARG("virtio-net-device,netdev=net0");
    }
#undef ARG
    return v;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* In QEMU's child, before exec: a network namespace with nothing in it
 * (and a mount namespace, for the resolver slirp4netns offers), dying with
 * the supervisor. Only async-signal-safe calls (the supervisor has threads). */
struct child_args {
    pid_t parent;
    char **argv;
    const char *uid_map, *gid_map; /* unprivileged: a user namespace with these */
    const char *resolv;
    int sync_w, go_r;
    int fds[5]; /* become 0..4 */
};

static _noreturn_ void qemu_child(const struct child_args *a)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != a->parent)
        _exit(1);
    if (unshare(CLONE_NEWNET | CLONE_NEWNS | (a->uid_map ? CLONE_NEWUSER : 0)) < 0)
        _exit(2);
    if (a->uid_map) { /* the caller's own ids, mapped to themselves */
        if (write_file("/proc/self/uid_map", a->uid_map) < 0 ||
            write_file("/proc/self/setgroups", "deny") < 0 ||
            write_file("/proc/self/gid_map", a->gid_map) < 0)
            _exit(3);
        /* new capabilities (in the namespace) cleared the death signal */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != a->parent)
            _exit(1);
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        _exit(4);
    if (a->resolv && mount(a->resolv, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0)
        _exit(5);
    char c = 'n', go = 0;
    if (write(a->sync_w, &c, 1) != 1 || read(a->go_r, &go, 1) != 1 || go != 'g')
        _exit(6);
    int up[5];
    for (int i = 0; i < 5; i++)
        if ((up[i] = fcntl(a->fds[i], F_DUPFD_CLOEXEC, 10)) < 0)
            _exit(7);
    for (int i = 0; i < 5; i++)
        if (dup2(up[i], i) < 0)
            _exit(7);
    close_range(5, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    execv(a->argv[0], a->argv);
    _exit(127);
}

/* "PID STARTTIME" of a process (field 22 of /proc/PID/stat), or NULL. */
static char *pid_identity(pid_t pid)
{
    _cleanup_free_ char *p = xasprintf("/proc/%d/stat", (int)pid);
    _cleanup_free_ char *st = NULL;
    if (e2b_read_file(p, &st, NULL, NULL) < 0)
        return NULL;
    char *s = strrchr(st, ')');
    for (int field = 2; s && field < 22; field++)
        s = strchr(s + 1, ' ');
    if (!s)
        return NULL;
    return xasprintf("%d %llu", (int)pid, strtoull(s + 1, NULL, 10));
}

static void reap_qemu(struct e2b_runtime_run *run)
{
    struct vm_run *vr = run->priv;
    if (run->pid > 0 && !vr->reaped) {
        while (waitpid(run->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        vr->reaped = true;
    }
}

/* QMP quit, then SIGKILL when QEMU does not go within a moment. */
static void end_qemu(const struct e2b_runtime_sandbox *sb, struct e2b_runtime_run *run, bool gently)
{
    struct vm_run *vr = run->priv;
    if (run->pid <= 0 || vr->reaped)
        return;
    if (gently && vr->ready && qmp_run(sb->dir, "quit", 1000, NULL) == 0 && vr->pidfd >= 0) {
        struct pollfd p = { .fd = vr->pidfd, .events = POLLIN };
        while (poll(&p, 1, 2000) < 0 && errno == EINTR)
            ;
    }
    if (vr->pidfd >= 0)
        syscall(SYS_pidfd_send_signal, vr->pidfd, SIGKILL, NULL, 0);
    else
        kill(run->pid, SIGKILL);
    reap_qemu(run);
}

/* Why start failed, once QEMU is gone: a panic, QEMU's own complaint, the
 * console's last lines. */
static void explain_failure(const struct e2b_runtime_sandbox *sb, struct e2b_runtime_run *run,
                            bool exited, struct e2b_error **err)
{
    struct vm_run *vr = run->priv;
    int status = 0;
    if (exited && run->pid > 0 && !vr->reaped) {
        while (waitpid(run->pid, &status, 0) < 0 && errno == EINTR)
            ;
        vr->reaped = true;
    }
    end_qemu(sb, run, false);
    e2b_vm_relay_stop(vr->relay); /* the console's last words are written */
    vr->relay = NULL;
    _cleanup_free_ char *why = exited ? why_ended(sb->dir, status) : NULL;
    _cleanup_free_ char *tail = console_tail(sb->dir, 1500);
    if (why) {
        e2b_error_free(*err);
        *err = NULL;
        e2b_error_set(err, E2B_ERR_GENERIC, "%s", why);
    }
    if (err && *err && tail && *tail) {
        char *m = xasprintf("%s\nthe VM's console ends with:\n%s", (*err)->msg, tail);
        free((*err)->msg);
        (*err)->msg = m;
    }
}

static int vm_start(const struct e2b_runtime_sandbox *sb, const struct e2b_runtime_spec *spec,
                    struct e2b_runtime_run *run, struct e2b_error **err)
{
    struct vm_run *vr = xcalloc(1, sizeof(*vr));
    *vr = (struct vm_run){ .pidfd = -1, .slirp_exit_w = -1 };
    *run = (struct e2b_runtime_run){ .pid = -1, .log_fd = -1, .priv = vr };
    const json_t *vm = json_object_get(sb->state, "vm");
    const char *qemu = e2b_json_str(vm, "qemu"), *accel = e2b_json_str(sb->state, "accelerator");
    if (!qemu || !accel || !e2b_json_str(vm, "kernel") || !e2b_json_str(vm, "initramfs"))
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "the sandbox's state lacks its VM (was it prepared?)");
    bool userns = spec->unprivileged;
    struct e2b_cgroup_limits lim = {
        .memory_bytes =
            (uint64_t)((spec->memory_mb > 0 ? spec->memory_mb : 512) + MEMORY_OVERHEAD_MB) << 20,
        .pids_max = (uint64_t)spec->pids_max,
        .cpu_count = spec->cpu_count,
    };
    if (!userns && e2b_cgroup_create(sb->id, &lim, err) < 0)
        return -1;
    _cleanup_free_ char *disk = e2b_path_join(sb->dir, "disk.ext4");
    if (e2b_ext4_blank(disk, (uint64_t)(spec->disk_mb > 0 ? spec->disk_mb : 1024), err) < 0)
        return e2b_error_wrap(err, "cannot make the sandbox's disk");
    _cleanup_free_ char *resolv = NULL;
    if (spec->internet) { /* for QEMU's user-mode network: slirp4netns's resolver */
        resolv = e2b_path_join(sb->dir, "resolv.conf");
        if (e2b_write_file_atomic(resolv, "nameserver 10.0.2.3\n", 20, 0644, err) < 0)
            return -1;
    }

    /* the guest's settings: envd's /init body (the token) goes on the link, never the command line */
    json_t *cfg =
        json_pack("{s:i, s:s, s:s, s:b, s:s, s:s?, s:s?}", "version", 1, "user",
                  spec->user ? spec->user : "root", "hostname", "e2b", "internet", spec->internet,
                  "sandboxID", sb->id, "templateID", spec->template_id, "buildID", spec->build_id);
    if (spec->envd_init)
        json_object_set_new(cfg, "envdInit", json_string(spec->envd_init));
    _cleanup_free_ char *config = e2b_json_dump(cfg, 0);
    json_decref(cfg);

    int link[2] = { -1, -1 }, con[2] = { -1, -1 }, syncp[2] = { -1, -1 }, gop[2] = { -1, -1 };
    int qmp = -1, null = -1, qlog = -1, r = -1;
    _cleanup_strv_ char **argv = qemu_argv(sb, spec, qemu, accel);
    _cleanup_free_ char *qlogp = e2b_path_join(sb->dir, "qemu.log");
    _cleanup_free_ char *uid_map = NULL, *gid_map = NULL, *ident = NULL, *pidp = NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, link) < 0 || pipe2(con, O_CLOEXEC) < 0 ||
        pipe2(syncp, O_CLOEXEC) < 0 || pipe2(gop, O_CLOEXEC) < 0 ||
        (null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0 ||
        (qlog = open(qlogp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
        e2b_error_sys(err, errno, "cannot start QEMU");
        goto out;
    }
    if ((qmp = e2b_vm_unix_listen(sb->dir, "qmp.sock", err)) < 0)
        goto out;
    struct e2b_vm_relay_opts ro = {
        .dir = sb->dir, .link_fd = link[0], .console_fd = con[0], .config = config
    };
    if (e2b_vm_relay_start(&ro, &vr->relay, &run->log_fd, err) < 0) {
        link[0] = con[0] = -1; /* the relay's, closed */
        goto out;
    }
    link[0] = con[0] = -1;
    pid_t self = getpid();
    if (userns) {
        uid_map = xasprintf("%u %u 1\n", (unsigned)getuid(), (unsigned)getuid());
        gid_map = xasprintf("%u %u 1\n", (unsigned)getgid(), (unsigned)getgid());
    }
    struct child_args ca = { .parent = self,
                             .argv = argv,
                             .uid_map = uid_map,
                             .gid_map = gid_map,
                             .resolv = resolv,
                             .sync_w = syncp[1],
                             .go_r = gop[0],
                             .fds = { null, con[1], qlog, link[1], qmp } };
    pid_t pid = fork();
    if (pid < 0) {
        e2b_error_sys(err, errno, "cannot start QEMU");
        goto out;
    }
    if (pid == 0)
        qemu_child(&ca);
    run->pid = pid;
    vr->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    close(syncp[1]), close(gop[0]), close(link[1]), close(con[1]), close(qmp), close(qlog),
        close(null);
    syncp[1] = gop[0] = link[1] = con[1] = qmp = qlog = null = -1;
    /* into the sandbox's cgroups (all but devices: QEMU opens /dev/kvm), out of the creator's */
    if (!userns) {
        if (e2b_cgroup_add_helper(sb->id, pid, err) < 0)
            goto out;
        e2b_cgroup_leave_creator(pid, false);
        e2b_cgroup_leave_creator(self, true);
    }
    char c;
    if (read(syncp[0], &c, 1) != 1) { /* the child's exit status says which step */
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        vr->reaped = true;
        e2b_error_set(err, E2B_ERR_GENERIC, "cannot make QEMU's namespaces (step %d)%s",
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                      userns ? ": unprivileged, the vm runtime needs user namespaces" : "");
        goto out;
    }
    if (spec->internet &&
        e2b_slirp_start(sb->id, pid, userns, &vr->slirp_exit_w, &vr->slirp_pid, err) < 0)
        goto out;
    ident = pid_identity(pid);
    pidp = e2b_path_join(sb->dir, "qemu.pid");
    if (ident)
        e2b_write_file_atomic(pidp, ident, strlen(ident), 0600, NULL);
    if (write(gop[1], "g", 1) != 1) {
        e2b_error_sys(err, errno, "cannot start QEMU");
        goto out;
    }
    if (e2b_vm_relay_wait_ready(vr->relay, vr->pidfd, E2B_RUNTIME_READY_MS, err) < 0) {
        bool exited = (*err)->code == E2B_ERR_CANCELLED;
        if (!exited)
            e2b_error_wrap(err, "the VM did not start");
        explain_failure(sb, run, exited, err);
        goto out;
    }
    vr->ready = true;
    r = 0;
out : {
    int fds_left[] = { link[0], link[1], con[0], con[1], syncp[0], syncp[1],
                       gop[0],  gop[1],  qmp,    null,   qlog };
    for (size_t i = 0; i < ARRAY_SIZE(fds_left); i++)
        if (fds_left[i] >= 0)
            close(fds_left[i]);
}
    return r;
}

static char *vm_ended(const struct e2b_runtime_sandbox *sb, struct e2b_runtime_run *run, int status)
{
    struct vm_run *vr = run->priv;
    if (vr) {
        vr->reaped = true;            /* the supervisor reaped it */
        e2b_vm_relay_stop(vr->relay); /* after the console's last words */
        vr->relay = NULL;
    }
    return why_ended(sb->dir, status);
}

/* A QEMU the reaper finds: only the one qemu.pid names (same start time). */
static void kill_recorded_qemu(const char *dir)
{
    _cleanup_free_ char *p = e2b_path_join(dir, "qemu.pid");
    _cleanup_free_ char *want = NULL;
    if (e2b_read_file_untrusted(p, 64, &want, NULL, NULL) < 0)
        return;
    pid_t pid = (pid_t)strtol(want, NULL, 10);
    if (pid <= 1)
        return;
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    _cleanup_free_ char *have = pid_identity(pid);
    if (pidfd >= 0 && have && STREQ(have, want))
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    if (pidfd >= 0)
        close(pidfd);
}

static void vm_stop(const struct e2b_runtime_sandbox *sb, struct e2b_runtime_run *run)
{
    if (run && run->priv) {
        struct vm_run *vr = run->priv;
        end_qemu(sb, run, true);
        e2b_vm_relay_stop(vr->relay);
        if (vr->slirp_exit_w >= 0)
            close(vr->slirp_exit_w); /* slirp4netns exits */
        if (vr->slirp_pid > 0)
            while (waitpid(vr->slirp_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        if (vr->pidfd >= 0)
            close(vr->pidfd);
        free(vr); /* run->log_fd is the supervisor's to close */
        run->priv = NULL;
        run->pid = -1;
    } else if (!run) {
        kill_recorded_qemu(sb->dir);
    }
    e2b_cgroup_destroy(sb->id);
}

static int vm_pause(const struct e2b_runtime_sandbox *sb, struct e2b_error **err)
{
    if (qmp_run(sb->dir, "stop", QMP_TIMEOUT_MS, err) < 0)
        return e2b_error_wrap(err, "cannot pause the VM of sandbox '%s'", sb->id);
    return 0;
}

static int vm_resume(const struct e2b_runtime_sandbox *sb, struct e2b_error **err)
{
    if (qmp_run(sb->dir, "cont", QMP_TIMEOUT_MS, err) < 0)
        return e2b_error_wrap(err, "cannot resume the VM of sandbox '%s'", sb->id);
    return 0;
}

static int vm_snapshot(const struct e2b_runtime_sandbox *sb, const char *dir,
                       struct e2b_error **err)
{
    return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "VM snapshots are not supported yet");
}

static int vm_restore(const struct e2b_runtime_sandbox *sb, const struct e2b_runtime_spec *spec,
                      const char *dir, struct e2b_runtime_run *run, struct e2b_error **err)
{
    return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "VM snapshots are not supported yet");
}

static int vm_envd_channel(const struct e2b_runtime_sandbox *sb, char **ret, struct e2b_error **err)
{
    *ret = xasprintf("unix:%s/envd.sock", sb->dir);
    return 0;
}

static int vm_port_connect(const struct e2b_runtime_sandbox *sb, int port, int *ret_fd,
                           struct e2b_error **err)
{
    if (e2b_vm_port_connect(sb->dir, port, ret_fd, err) < 0)
        return e2b_error_wrap(err, "sandbox '%s'", sb->id);
    return 0;
}

/* QEMU's own figures where there is no cgroup (unprivileged). */
static int proc_stats(pid_t pid, struct e2b_runtime_stats *ret, struct e2b_error **err)
{
    _cleanup_free_ char *p = xasprintf("/proc/%d/stat", (int)pid);
    _cleanup_free_ char *st = NULL;
    if (pid <= 0 || e2b_read_file(p, &st, NULL, err) < 0)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "the VM's QEMU is not running");
    char *s = strrchr(st, ')');
    unsigned long long f[25] = { 0 };
    for (int i = 3; s && i <= 24; i++) {
        s = strchr(s + 1, ' ');
        if (s)
            f[i] = strtoull(s + 1, NULL, 10);
    }
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    /* fields 14, 15: utime, stime; 24: rss in pages */
    ret->cpu_usage_ns =
        (f[14] + f[15]) * (1000000000ULL / (unsigned long long)(tick > 0 ? tick : 100));
    ret->memory_bytes = f[24] * (unsigned long long)page;
    ret->pids = 1;
    return 0;
}

static int vm_stats(const struct e2b_runtime_sandbox *sb, struct e2b_runtime_stats *ret,
                    struct e2b_error **err)
{
    *ret = (struct e2b_runtime_stats){ 0 };
    struct e2b_cgroup_stats cs;
    if (e2b_cgroup_stats(sb->id, &cs, NULL) == 0) {
        ret->cpu_usage_ns = cs.cpu_usage_ns;
        ret->memory_bytes = cs.memory_bytes;
        ret->pids = cs.pids;
    } else if (proc_stats((pid_t)e2b_json_int(sb->state, "initPid", 0), ret, err) < 0) {
        return -1;
    }
    /* the writable disk as the host sees it: what the guest has written */
    _cleanup_free_ char *disk = e2b_path_join(sb->dir, "disk.ext4");
    struct stat st;
    if (stat(disk, &st) == 0) {
        ret->has_disk = true;
        ret->disk_used = (uint64_t)st.st_blocks * 512;
        ret->disk_total = (uint64_t)st.st_size;
    }
    return 0;
}

const struct e2b_runtime_ops e2b_runtime_vm = {
    E2B_RUNTIME_OPS("vm", vm_),
    .snapshot = vm_snapshot,
    .restore = vm_restore,
};
