/* runtime-vm.c - the microVM runtime: a sandbox is a QEMU `microvm` whose
 * guest kernel (vm-kernel.h) boots e2b's initramfs, whose init (envd-vm.h)
 * makes the root from the template's rootfs.ext4 (read-only, shared by
 * every VM of the template) under the sandbox's own writable disk and runs
 * envd there. Reached only through e2b_runtime_vm (runtime.h).
 *
 * In the state directory:
 *   disk.ext4          the writable layer: an empty ext4 of --disk MiB,
 *                      sparse (a few hundred KiB until the guest writes)
 *   disk.qcow2         instead, for a sandbox restored from a snapshot it
 *                      shares: a copy-on-write overlay (qcow2.h) over the
 *                      snapshot's disk, which holds only what it wrote
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
#include "qcow2.h"
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
#define LINK_TIMEOUT_MS    10000
/* What qemu_argv makes, in a number: a save made of another machine is not
 * loaded (one more whenever the machine, its devices or its kernel command
 * line change). */
#define MACHINE_REV     1
#define SAVE_TIMEOUT_MS 300000

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

/* "SIZE MTIME INODE" of a file: whether QEMU or a kernel is still the one
 * a snapshot was made with. NULL if it is not there. */
static char *file_identity(const char *path)
{
    struct stat st;
    if (!path || stat(path, &st) < 0)
        return NULL;
    return xasprintf("%lld %lld.%09ld %llu", (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                     st.st_mtim.tv_nsec, (unsigned long long)st.st_ino);
}

static int vm_prepare(struct e2b_runtime_spec *spec, json_t *state, struct e2b_error **err)
{
    if (spec->host)
        return e2b_error_set(
            err, E2B_ERR_UNSUPPORTED,
            "the 'host' template cannot run as a VM (it is this machine's own programs); "
            "use --runtime ns, or a template built with 'e2b template build'");
    /* a volume is its ext4 image as a disk of the VM, which the guest's
     * kernel mounts: one kernel at a time (e2b_volume_claim) */
    spec->volume_images = true;
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
        _cleanup_free_ char *qid = file_identity(qemu);
        json_t *vm = json_pack("{s:s, s:s?, s:s, s:s, s:s, s:s, s:s}", "qemu", qemu, "qemuId", qid,
                               "kernel", k.path, "kernelVersion", k.version, "bootImage", image,
                               "initramfs", initrd, "rootfsImage", spec->rootfs_image);
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

/* The machine QEMU makes: the same for a cold boot and for every restore of
 * a save of it (QEMU loads a save only into the machine it came from). */
struct machine {
    const json_t *vm;  /* kernel, initramfs, tscKhz: state.json's "vm" or the save's */
    const char *accel; /* "kvm" or "tcg" */
    const char *rootfs;
    int memory_mb;
    unsigned cpus;
    bool internet;
    const json_t *volumes; /* [{image, path}]: a disk each, after every other device */
    const char *mem_file; /* the VM's memory in this file (a template snapshot's), or NULL */
    bool mem_shared;      /* ... written through to it (the VM that is saved as one) */
    int incoming_fd;      /* -1, or the save to load (QEMU's fd 5) */
    const char *disk;     /* the writable disk's file name in the state directory */
    const char *disk_format; /* "raw" or "qcow2" */
};

/* The writable disk of the sandbox in dir: the overlay where it has one. */
static const char *disk_name(const char *dir)
{
    _cleanup_free_ char *q = e2b_path_join(dir, "disk.qcow2");
    return access(q, F_OK) == 0 ? "disk.qcow2" : "disk.ext4";
}

static const char *disk_format(const char *name)
{
    return e2b_str_has_suffix(name, ".qcow2") ? "qcow2" : "raw";
}

static char **qemu_argv(const struct e2b_runtime_sandbox *sb, const char *qemu,
                        const struct machine *m)
{
    const json_t *vm = m->vm;
    _cleanup_free_ char *kernel =
        qemu_escape(e2b_json_str(vm, "bootImage") ?: e2b_json_str(vm, "kernel"));
    _cleanup_free_ char *initrd = qemu_escape(e2b_json_str(vm, "initramfs"));
    _cleanup_free_ char *root = qemu_escape(m->rootfs);
    _cleanup_free_ char *disk_path = e2b_path_join(sb->dir, m->disk);
    _cleanup_free_ char *disk = qemu_escape(disk_path);
    _cleanup_free_ char *mem = m->mem_file ? qemu_escape(m->mem_file) : NULL;
    char **v = NULL;
#define ARG(...) (v = push_arg(v, __VA_ARGS__))
    ARG("%s", qemu);
    ARG("-name"), ARG("e2b-%s", sb->id);
    ARG("-M"), ARG("microvm,isa-serial=on,memory-backend=ram");
    if (STREQ(m->accel, "kvm"))
        ARG("-accel"), ARG("kvm"), ARG("-cpu"), ARG("host");
    else
        ARG("-accel"), ARG("tcg,tb-size=%d", TB_SIZE_MB), ARG("-cpu"), ARG("max");
    ARG("-m"), ARG("%d", m->memory_mb);
    /* the RAM block is "ram" whatever backs it, so a save loads into any of them */
    if (mem)
        ARG("-object"), ARG("memory-backend-file,id=ram,size=%dM,mem-path=%s,share=%s",
                            m->memory_mb, mem, m->mem_shared ? "on" : "off");
    else
        ARG("-object"), ARG("memory-backend-ram,id=ram,size=%dM", m->memory_mb);
    ARG("-smp"), ARG("%u", m->cpus);
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
    ARG("console=ttyS0 quiet panic=-1 reboot=t%s 8250.nr_uarts=1 pci=off i8042.noaux i8042.nokbd no_timer_check tsc=reliable nowatchdog "
        "cryptomgr.notests random.trust_cpu=on -- --vm",
        tsc);
    ARG("-chardev"), ARG("stdio,id=con,signal=off");
    ARG("-serial"), ARG("chardev:con");
    ARG("-drive"), ARG("id=root,file=%s,format=raw,if=none,readonly=on", root);
    ARG("-device"), ARG("virtio-blk-device,drive=root,serial=%s", E2B_VM_ROOT_SERIAL);
    ARG("-drive"), ARG("id=disk,file=%s,format=%s,if=none,cache=unsafe", disk, m->disk_format);
    ARG("-device"), ARG("virtio-blk-device,drive=disk,serial=%s", E2B_VM_DISK_SERIAL);
    ARG("-device"), ARG("virtio-serial-device");
    ARG("-chardev"), ARG("socket,id=link,fd=3");
    ARG("-device"), ARG("virtserialport,chardev=link,name=%s", E2B_VM_PORT_NAME);
    ARG("-chardev"), ARG("socket,id=qmp,fd=4,server=on,wait=off");
    ARG("-mon"), ARG("chardev=qmp,mode=control");
    if (m->internet) {
        ARG("-netdev"), ARG("user,id=net0,ipv6=off");
        ARG("-device"), ARG("virtio-net-device,netdev=net0");
    }
    /* the volumes last, so the devices before them keep their places */
    size_t i;
    json_t *vol;
    json_array_foreach(m->volumes, i, vol) {
        _cleanup_free_ char *img = qemu_escape(e2b_json_str(vol, "image") ?: "");
        ARG("-drive"), ARG("id=vol%zu,file=%s,format=raw,if=none,file.locking=on", i, img);
        ARG("-device"),
            ARG("virtio-blk-device,drive=vol%zu,serial=%s%zu", i, E2B_VM_VOLUME_SERIAL, i);
    }
    /* the save comes on fd 5, once QMP has said how (load_save) */
    if (m->incoming_fd >= 0)
        ARG("-incoming"), ARG("defer");
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
    int fds[6]; /* become 0..5 (-1: none) */
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
    int up[6];
    for (int i = 0; i < 6; i++)
        if ((up[i] = a->fds[i] >= 0 ? fcntl(a->fds[i], F_DUPFD_CLOEXEC, 10) : -1) < 0 && i < 5)
            _exit(7);
    for (int i = 0; i < 6; i++)
        if (up[i] >= 0 && dup2(up[i], i) < 0)
            _exit(7);
    close_range(up[5] >= 0 ? 6 : 5, ~0U, 0);
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

/* Tell a QEMU started with -incoming defer to load the save on its fd 5:
 * its memory is the template snapshot's file (x-ignore-shared, as it was
 * saved) or in the save. QEMU runs the VM once it has loaded it. */
static int load_save(const char *dir, bool memory_in_file, struct e2b_error **err)
{
    int qfd = e2b_vm_unix_connect(dir, "qmp.sock", err);
    struct e2b_qmp *q = NULL;
    if (qfd < 0 || e2b_qmp_open(qfd, QMP_TIMEOUT_MS, &q, err) < 0)
        return -1;
    json_t *caps = json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability", "x-ignore-shared",
                             "state", memory_in_file);
    json_t *uri = json_pack("{s:s}", "uri", "fd:5");
    int r = e2b_qmp_execute(q, "migrate-set-capabilities", caps, QMP_TIMEOUT_MS, NULL, err) < 0 ||
                    e2b_qmp_execute(q, "migrate-incoming", uri, QMP_TIMEOUT_MS, NULL, err) < 0
                ? -1
                : 0;
    json_decref(caps), json_decref(uri);
    /* loaded, the VM stays as it was saved (stopped): go on from there */
    for (int64_t deadline = e2b_now_ms() + SAVE_TIMEOUT_MS; r == 0;) {
        _cleanup_json_ json_t *st = NULL;
        if (e2b_qmp_execute(q, "query-status", NULL, QMP_TIMEOUT_MS, &st, err) < 0) {
            r = -1;
            break;
        }
        const char *status = e2b_json_str(st, "status") ?: "";
        if (STREQ(status, "running"))
            break;
        if (!STREQ(status, "inmigrate")) {
            r = e2b_qmp_execute(q, "cont", NULL, QMP_TIMEOUT_MS, NULL, err);
            break;
        }
        if (e2b_now_ms() > deadline) {
            r = e2b_error_set(err, E2B_ERR_TIMEOUT, "QEMU did not load the save within %d s",
                              SAVE_TIMEOUT_MS / 1000);
            break;
        }
        usleep(2000);
    }
    e2b_qmp_close(q);
    return r;
}

/* Start QEMU: a cold boot (from NULL), or the restore of the save in from
 * (snap: its snapshot.json, checked by the caller). */
static int boot(const struct e2b_runtime_sandbox *sb, const struct e2b_runtime_spec *spec,
                struct e2b_runtime_run *run, const char *from, const json_t *snap,
                struct e2b_error **err)
{
    struct vm_run *vr = xcalloc(1, sizeof(*vr));
    *vr = (struct vm_run){ .pidfd = -1, .slirp_exit_w = -1 };
    *run = (struct e2b_runtime_run){ .pid = -1, .log_fd = -1, .priv = vr };
    const json_t *vm = json_object_get(snap ? snap : sb->state, "vm");
    const char *qemu = e2b_json_str(json_object_get(sb->state, "vm"), "qemu");
    const char *accel = e2b_json_str(snap ? snap : sb->state, "accelerator");
    if (!qemu || !accel || !e2b_json_str(vm, "kernel") || !e2b_json_str(vm, "initramfs"))
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "the sandbox's state lacks its VM (was it prepared?)");
    _cleanup_free_ char *mem_file = NULL;
    _cleanup_close_ int incoming = -1;
    struct machine m = { .vm = vm,
                         .accel = accel,
                         .rootfs = spec->rootfs_image,
                         .memory_mb = spec->memory_mb > 0 ? spec->memory_mb : 512,
                         .cpus = spec->cpu_count ? spec->cpu_count : 1,
                         .internet = spec->internet,
                         .volumes = spec->volumes,
                         .incoming_fd = -1,
                         .disk = "disk.ext4",
                         .disk_format = "raw" };
    if (spec->snapshot_dir) { /* to be saved as the template's snapshot: its memory there */
        mem_file = e2b_path_join(spec->snapshot_dir, "memory");
        m.mem_shared = true;
    } else if (from && e2b_json_bool(snap, "memoryFile", false)) {
        mem_file = e2b_path_join(from, "memory");
    }
    m.mem_file = mem_file;
    if (from) {
        _cleanup_free_ char *vs = e2b_path_join(from, "vmstate");
        if ((incoming = open(vs, O_RDONLY | O_CLOEXEC)) < 0)
            return e2b_error_sys(err, errno, "cannot open the saved VM '%s'", vs);
        m.incoming_fd = incoming;
    }
    bool userns = spec->unprivileged;
    struct e2b_cgroup_limits lim = {
        .memory_bytes =
            (uint64_t)((spec->memory_mb > 0 ? spec->memory_mb : 512) + MEMORY_OVERHEAD_MB) << 20,
        .pids_max = (uint64_t)spec->pids_max,
        .cpu_count = spec->cpu_count,
    };
    if (!userns && e2b_cgroup_create(sb->id, &lim, err) < 0)
        return -1;
    const char *saved_name = from ? e2b_json_str(snap, "disk") ?: "disk.ext4" : NULL;
    if (from && spec->restore_shared) { /* an overlay over the saved disk, which stays */
        m.disk = "disk.qcow2", m.disk_format = "qcow2";
        _cleanup_free_ char *overlay = e2b_path_join(sb->dir, m.disk);
        _cleanup_free_ char *saved = e2b_path_join(from, saved_name);
        long long size = e2b_json_int(snap, "diskSize", e2b_json_int(snap, "diskBytes", 0));
        if (e2b_qcow2_create_overlay(overlay, saved, disk_format(saved_name), (uint64_t)size, err) <
            0)
            return e2b_error_wrap(err, "cannot make the sandbox's disk");
    } else if (from) { /* the saved disk, as the guest's page cache in the save knows it */
        m.disk = saved_name, m.disk_format = disk_format(saved_name);
        _cleanup_free_ char *disk = e2b_path_join(sb->dir, m.disk);
        _cleanup_free_ char *saved = e2b_path_join(from, saved_name);
        if (e2b_copy_file_sparse(saved, disk, 0600, err) < 0)
            return e2b_error_wrap(err, "cannot copy the saved disk");
    } else {
        _cleanup_free_ char *disk = e2b_path_join(sb->dir, m.disk);
        if (e2b_ext4_blank(disk, (uint64_t)(spec->disk_mb > 0 ? spec->disk_mb : 1024), err) < 0)
            return e2b_error_wrap(err, "cannot make the sandbox's disk");
    }
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
    if (spec->trust_pem) /* the egress CA, for the guest's TLS clients */
        json_object_set_new(cfg, "trust", json_string(spec->trust_pem));
    if (json_array_size(spec->volumes)) { /* the guest mounts disk <serial><i> at path */
        json_t *vols = json_array(), *vol;
        size_t i;
        json_array_foreach(spec->volumes, i, vol)
            json_array_append_new(
                vols, json_pack("{s:s, s:s?}", "serial", "", "path", e2b_json_str(vol, "path")));
        json_array_foreach(vols, i, vol) {
            _cleanup_free_ char *serial = xasprintf("%s%zu", E2B_VM_VOLUME_SERIAL, i);
            json_object_set_new(vol, "serial", json_string(serial));
        }
        json_object_set_new(cfg, "volumes", vols);
    }
    _cleanup_free_ char *config = e2b_json_dump(cfg, 0);
    json_decref(cfg);

    int link[2] = { -1, -1 }, con[2] = { -1, -1 }, syncp[2] = { -1, -1 }, gop[2] = { -1, -1 };
    int qmp = -1, null = -1, qlog = -1, r = -1;
    _cleanup_strv_ char **argv = qemu_argv(sb, qemu, &m);
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
    struct e2b_vm_relay_opts ro = { .dir = sb->dir,
                                    .link_fd = link[0],
                                    .console_fd = con[0],
                                    .config = config,
                                    .resume = from != NULL };
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
                             .fds = { null, con[1], qlog, link[1], qmp, incoming } };
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
    if (from && load_save(sb->dir, m.mem_file != NULL, err) < 0) {
        e2b_error_wrap(err, "cannot restore the VM");
        explain_failure(sb, run, false, err);
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

static int vm_start(const struct e2b_runtime_sandbox *sb, const struct e2b_runtime_spec *spec,
                    struct e2b_runtime_run *run, struct e2b_error **err)
{
    return boot(sb, spec, run, NULL, NULL, err);
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
        /* the guest writes its volumes' pages out when the link is
         * suspended: what it wrote outlives the VM, as on any disk */
        if (vr->ready && vr->relay && json_array_size(json_object_get(sb->state, "volumeMounts")))
            e2b_vm_link_control(sb->dir, "suspend", LINK_TIMEOUT_MS, NULL);
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

/* A pause quiets the link first (vmlink.h: SUSPEND), so that a save made
 * of the stopped VM has nothing of it in flight; a resume starts the VM and
 * then the link, which sets the guest's clock. */
static int vm_pause(const struct e2b_runtime_sandbox *sb, struct e2b_error **err)
{
    if (e2b_vm_link_control(sb->dir, "suspend", LINK_TIMEOUT_MS, err) < 0 ||
        qmp_run(sb->dir, "stop", QMP_TIMEOUT_MS, err) < 0)
        return e2b_error_wrap(err, "cannot pause the VM of sandbox '%s'", sb->id);
    return 0;
}

static int vm_resume(const struct e2b_runtime_sandbox *sb, struct e2b_error **err)
{
    if (qmp_run(sb->dir, "cont", QMP_TIMEOUT_MS, err) < 0 ||
        e2b_vm_link_control(sb->dir, "resume", LINK_TIMEOUT_MS, err) < 0)
        return e2b_error_wrap(err, "cannot resume the VM of sandbox '%s'", sb->id);
    return 0;
}

/* ---- saves ------------------------------------------------------------------- */

static long long file_size(const char *dir, const char *name)
{
    _cleanup_free_ char *p = e2b_path_join(dir, name);
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* QEMU's migration of the stopped VM into fd: its devices, and its memory
 * unless that is the template snapshot's file already (x-ignore-shared). */
static int migrate_to(const char *dir, int fd, bool memory_in_file, struct e2b_error **err)
{
    int qfd = e2b_vm_unix_connect(dir, "qmp.sock", err);
    struct e2b_qmp *q = NULL;
    if (qfd < 0 || e2b_qmp_open(qfd, QMP_TIMEOUT_MS, &q, err) < 0)
        return -1;
    json_t *caps = json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability", "x-ignore-shared",
                             "state", memory_in_file);
    /* QEMU's default is 32 MiB/s, for a network; this is a local file */
    json_t *params = json_pack("{s:I}", "max-bandwidth", (json_int_t)1 << 40);
    json_t *fdname = json_pack("{s:s}", "fdname", "e2b-save");
    json_t *uri = json_pack("{s:s}", "uri", "fd:e2b-save");
    int r = -1;
    if (e2b_qmp_execute(q, "migrate-set-capabilities", caps, QMP_TIMEOUT_MS, NULL, err) < 0 ||
        e2b_qmp_execute(q, "migrate-set-parameters", params, QMP_TIMEOUT_MS, NULL, err) < 0 ||
        e2b_qmp_execute_fd(q, "getfd", fdname, fd, QMP_TIMEOUT_MS, NULL, err) < 0 ||
        e2b_qmp_execute(q, "migrate", uri, QMP_TIMEOUT_MS, NULL, err) < 0)
        goto out;
    for (int64_t deadline = e2b_now_ms() + SAVE_TIMEOUT_MS;;) {
        _cleanup_json_ json_t *st = NULL;
        if (e2b_qmp_execute(q, "query-migrate", NULL, QMP_TIMEOUT_MS, &st, err) < 0)
            goto out;
        const char *status = e2b_json_str(st, "status") ?: "";
        if (STREQ(status, "completed"))
            break;
        if (STREQ(status, "failed") || STREQ(status, "cancelled")) {
            e2b_error_set(err, E2B_ERR_GENERIC, "QEMU could not save the VM: %s",
                          e2b_json_str(st, "error-desc") ?: status);
            goto out;
        }
        if (e2b_now_ms() > deadline) {
            e2b_error_set(err, E2B_ERR_TIMEOUT, "QEMU did not save the VM within %d s",
                          SAVE_TIMEOUT_MS / 1000);
            goto out;
        }
        usleep(5000);
    }
    r = 0;
out:
    json_decref(caps), json_decref(params), json_decref(fdname), json_decref(uri);
    e2b_qmp_close(q);
    return r;
}

/* In dir: vmstate (QEMU's migration stream), the writable disk (sparse:
 * disk.ext4, or the overlay disk.qcow2 whose backing file the save then
 * needs, diskBacking), memory when the VM was started to be a template's
 * snapshot (its RAM, written through all along), and snapshot.json last:
 * what the VM was made of, and the sizes that say a file is whole. */
static int vm_snapshot(const struct e2b_runtime_sandbox *sb, const char *dir,
                       struct e2b_error **err)
{
    _cleanup_free_ char *mem = e2b_path_join(dir, "memory");
    _cleanup_free_ char *tmp = e2b_path_join(dir, "vmstate.tmp");
    _cleanup_free_ char *vs = e2b_path_join(dir, "vmstate");
    const char *dname = disk_name(sb->dir);
    _cleanup_free_ char *disk = e2b_path_join(sb->dir, dname);
    _cleanup_free_ char *saved_disk = e2b_path_join(dir, dname);
    bool memory_in_file = access(mem, F_OK) == 0;
    int64_t t0 = e2b_now_ms();
    _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot create '%s'", tmp);
    if (migrate_to(sb->dir, fd, memory_in_file, err) < 0)
        return e2b_error_wrap(err, "cannot save the VM of sandbox '%s'", sb->id);
    /* not synced here: the caller does, once the VM runs again (runtime.h) */
    if (rename(tmp, vs) < 0)
        return e2b_error_sys(err, errno, "cannot write '%s'", vs);
    if (e2b_copy_file_sparse(disk, saved_disk, 0600, err) < 0)
        return e2b_error_wrap(err, "cannot save the disk of sandbox '%s'", sb->id);
    const json_t *st = sb->state;
    json_t *snap =
        json_pack("{s:i, s:O, s:s?, s:I, s:I, s:b, s:b, s:I, s:I, s:I}", "version", 1, "vm",
                  json_object_get(st, "vm"), "accelerator", e2b_json_str(st, "accelerator"),
                  "memoryMB", (json_int_t)e2b_json_int(st, "memoryMB", 512), "cpuCount",
                  (json_int_t)e2b_json_int(st, "cpuCount", 1), "internet", /* its network device */
                  e2b_json_bool(st, "netDevice", e2b_json_bool(st, "allowInternetAccess", false)),
                  "memoryFile", memory_in_file,
                  "vmstateBytes", (json_int_t)file_size(dir, "vmstate"), "diskBytes",
                  (json_int_t)file_size(dir, dname), "memoryBytes",
                  (json_int_t)(memory_in_file ? file_size(dir, "memory") : 0));
    json_object_set_new(snap, "machine", json_integer(MACHINE_REV));
    json_object_set_new(snap, "disk", json_string(dname));
    uint64_t vsize = (uint64_t)file_size(dir, dname);
    _cleanup_free_ char *backing = NULL;
    if (STREQ(disk_format(dname), "qcow2") &&
        e2b_qcow2_info(saved_disk, &vsize, &backing, NULL, err) < 0) {
        json_decref(snap);
        return e2b_error_wrap(err, "cannot save the disk of sandbox '%s'", sb->id);
    }
    json_object_set_new(snap, "diskSize", json_integer((json_int_t)vsize));
    if (backing)
        json_object_set_new(snap, "diskBacking", json_string(backing));
    json_object_set_new(
        snap, "volumes",
        json_integer((json_int_t)json_array_size(json_object_get(st, "volumeMounts"))));
    json_object_set_new(snap, "saveMs", json_integer(e2b_now_ms() - t0));
    _cleanup_free_ char *p = e2b_path_join(dir, "snapshot.json");
    _cleanup_free_ char *text = e2b_json_dump(snap, JSON_INDENT(2));
    json_decref(snap);
    return e2b_write_file_atomic(p, text, strlen(text), 0600, err);
}

/* Why the save in dir cannot be restored here, or NULL. *damaged: it is
 * not whole (a file cut short), rather than made elsewhere. */
static char *restore_refusal(const json_t *snap, const json_t *state,
                             const struct e2b_runtime_spec *spec, const char *dir, bool *damaged)
{
    const char *files[][2] = { { "vmstate", "vmstateBytes" },
                               { e2b_json_str(snap, "disk") ?: "disk.ext4", "diskBytes" },
                               { "memory", "memoryBytes" } };
    *damaged = true;
    if (e2b_json_int(snap, "version", 0) != 1)
        return xstrdup("snapshot.json is not a save this e2b made");
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        long long want = e2b_json_int(snap, files[i][1], -1), have = file_size(dir, files[i][0]);
        if (i == 2 && !e2b_json_bool(snap, "memoryFile", false))
            continue;
        if (want < 0 || have != want)
            return have < 0 ? xasprintf("%s is missing", files[i][0])
                            : xasprintf("%s is %lld bytes, %lld when it was saved", files[i][0],
                                        have, want);
    }
    const char *backing = e2b_json_str(snap, "diskBacking");
    if (backing && access(backing, R_OK) < 0)
        return xasprintf("the file its disk is an overlay of (%s) is gone", backing);
    *damaged = false;
    if (e2b_json_int(snap, "machine", 0) != MACHINE_REV)
        return xasprintf("it was made of another machine (revision %lld, this e2b makes %d)",
                         e2b_json_int(snap, "machine", 0), MACHINE_REV);
    const json_t *svm = json_object_get(snap, "vm"), *vm = json_object_get(state, "vm");
    const char *sacc = e2b_json_str(snap, "accelerator") ?: "";
    const char *acc = e2b_json_str(state, "accelerator") ?: "";
    if (!STREQ(sacc, acc))
        return xasprintf("it was made under %s, this VM runs under %s", sacc, acc);
    _cleanup_free_ char *qid = file_identity(e2b_json_str(vm, "qemu"));
    const char *sqid = e2b_json_str(svm, "qemuId");
    if (!STREQ(e2b_json_str(svm, "qemu") ?: "", e2b_json_str(vm, "qemu") ?: "") || !qid || !sqid ||
        !STREQ(qid, sqid))
        return xasprintf("it was made with another QEMU (%s)", e2b_json_str(svm, "qemu") ?: "?");
    if (!STREQ(e2b_json_str(svm, "kernelVersion") ?: "", e2b_json_str(vm, "kernelVersion") ?: ""))
        return xasprintf("it was made with kernel %s, this VM boots %s",
                         e2b_json_str(svm, "kernelVersion") ?: "?",
                         e2b_json_str(vm, "kernelVersion") ?: "?");
    if (!STREQ(e2b_json_str(svm, "initramfs") ?: "", e2b_json_str(vm, "initramfs") ?: "") ||
        access(e2b_json_str(svm, "initramfs") ?: "", R_OK) < 0)
        return xstrdup("it was made with another initramfs (another envd or kernel modules)");
    const char *boot = e2b_json_str(svm, "bootImage") ?: e2b_json_str(svm, "kernel");
    if (!boot || access(boot, R_OK) < 0)
        return xasprintf("the kernel it was made with (%s) is gone", boot ?: "?");
    if (!STREQ(e2b_json_str(svm, "rootfsImage") ?: "", spec->rootfs_image ?: ""))
        return xstrdup("it was made from another build of the template");
    int mem = spec->memory_mb > 0 ? spec->memory_mb : 512;
    unsigned cpus = spec->cpu_count ? spec->cpu_count : 1;
    if (e2b_json_int(snap, "memoryMB", 0) != mem || e2b_json_int(snap, "cpuCount", 0) != cpus)
        return xasprintf("it has %lld MiB and %lld vCPUs, this sandbox asks for %d MiB and %u",
                         e2b_json_int(snap, "memoryMB", 0), e2b_json_int(snap, "cpuCount", 0), mem,
                         cpus);
    long long disk = (long long)(spec->disk_mb > 0 ? spec->disk_mb : 1024) << 20;
    long long sdisk = e2b_json_int(snap, "diskSize", e2b_json_int(snap, "diskBytes", 0));
    if (sdisk != disk)
        return xasprintf("its disk is %lld MiB, this sandbox asks for %lld MiB", sdisk >> 20,
                         disk >> 20);
    /* the guest found its disks at boot: a save holds as many as it had */
    long long vols = e2b_json_int(snap, "volumes", 0),
              want = (long long)json_array_size(spec->volumes);
    if (vols != want)
        return xasprintf("it was made with %lld volume disk%s, this sandbox mounts %lld", vols,
                         vols == 1 ? "" : "s", want);
    if (e2b_json_bool(snap, "internet", false) != spec->internet)
        return xasprintf("it was made %s internet access, this sandbox asks %s it",
                         spec->internet ? "without" : "with", spec->internet ? "for" : "against");
    return NULL;
}

static int vm_restore(const struct e2b_runtime_sandbox *sb, const struct e2b_runtime_spec *spec,
                      const char *dir, struct e2b_runtime_run *run, struct e2b_error **err)
{
    *run = (struct e2b_runtime_run){ .pid = -1, .log_fd = -1 };
    _cleanup_free_ char *p = e2b_path_join(dir, "snapshot.json");
    _cleanup_json_ json_t *snap = NULL;
    if (e2b_json_load_file(p, &snap, NULL) < 0)
        return e2b_error_set(err, E2B_ERR_INVALID, "the save in %s is damaged: no snapshot.json",
                             dir);
    bool damaged;
    _cleanup_free_ char *why = restore_refusal(snap, sb->state, spec, dir, &damaged);
    if (why)
        return e2b_error_set(err, damaged ? E2B_ERR_INVALID : E2B_ERR_UNSUPPORTED,
                             "the save in %s %s: %s", dir,
                             damaged ? "is damaged" : "does not fit this VM", why);
    return boot(sb, spec, run, dir, snap, err);
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
    /* the writable disk as the host sees it: what the guest has written,
     * in the overlay and in the files below it (a snapshot's disk) */
    _cleanup_free_ char *disk = e2b_path_join(sb->dir, disk_name(sb->dir));
    struct stat st;
    if (stat(disk, &st) == 0) {
        ret->has_disk = true;
        ret->disk_used = (uint64_t)st.st_blocks * 512;
        ret->disk_total = (uint64_t)st.st_size;
        _cleanup_free_ char *layer = xstrdup(disk);
        uint64_t size;
        for (int depth = 0; depth < 16 && layer && e2b_qcow2_is(layer); depth++) {
            char *below = NULL;
            if (e2b_qcow2_info(layer, &size, &below, NULL, NULL) < 0)
                break;
            if (depth == 0)
                ret->disk_total = size;
            free(layer);
            layer = below;
            if (layer && stat(layer, &st) == 0)
                ret->disk_used += (uint64_t)st.st_blocks * 512;
        }
    }
    return 0;
}

const struct e2b_runtime_ops e2b_runtime_vm = {
    E2B_RUNTIME_OPS("vm", vm_),
    .snapshot = vm_snapshot,
    .restore = vm_restore,
    .pause_saves = true,
};
