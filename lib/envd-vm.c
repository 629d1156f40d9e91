/* envd-vm.c - see envd-vm.h */
#include "envd-vm.h"
#include "fsutil.h"
#include "json.h"
#include "strbuf.h"
#include "vmlink.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

#define NEWROOT        "/newroot"
#define ENVD_DIR       "/run/e2b"
#define ENVD_BIN       ENVD_DIR "/envd"
#define ENVD_SOCK      ENVD_DIR "/envd.sock"
#define DEVICE_WAIT_MS 10000

struct vm {
    struct e2b_vmlink *link;
    bool configured, ready_sent;
    bool suspended; /* SUSPENDED said: nothing goes to the host until RESUME */
    char *user, *envd_init;
    int listen_fd;    /* envd's socket, kept across its restarts */
    int log_r, log_w; /* envd's stdout and stderr */
    int ready_r;      /* envd's ready byte */
    pid_t envd;
    int64_t restart_at; /* ms on the monotonic clock; 0: none due */
};

static struct vm vm = { .listen_fd = -1, .log_r = -1, .log_w = -1, .ready_r = -1 };

/* Before the link: the console (the host shows its tail in errors); after
 * it: the sandbox's log too. */
static void say(const char *fmt, ...) _printf_(1, 2);
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = xvasprintf(fmt, ap);
    va_end(ap);
    _cleanup_free_ char *line = xasprintf("init: %s\n", m);
    if (vm.link && !vm.suspended)
        e2b_vmlink_send(vm.link, E2B_VMLINK_LOG, line, strlen(line));
    (void)!write(2, line, strlen(line));
}

/* Before the link nothing else can say what went wrong: init ends, the
 * kernel panics ("Attempted to kill init"), the VM stops, and the host
 * reports the console's last lines, this one among them. */
static _noreturn_ void die(const char *fmt, ...) _printf_(1, 2);
static _noreturn_ void die(const char *fmt, ...)
{
    int e = errno;
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = xvasprintf(fmt, ap);
    va_end(ap);
    dprintf(2, "init: %s%s%s\n", m, e ? ": " : "", e ? strerror(e) : "");
    _exit(1);
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int set_error(struct e2b_error **err, const char *fmt, ...) _printf_(2, 3);
static int set_error(struct e2b_error **err, const char *fmt, ...)
{
    int e = errno;
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = xvasprintf(fmt, ap);
    va_end(ap);
    return e ? e2b_error_sys(err, e, "%s", m) : e2b_error_set(err, E2B_ERR_GENERIC, "%s", m);
}

static int do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
                    const char *data, struct e2b_error **err)
{
    mkdir(dst, 0755);
    if (mount(src, dst, type, flags, data) < 0)
        return set_error(err, "cannot mount %s on %s", type ? type : src, dst);
    return 0;
}

/* ---- boot: modules, the link's port, disks -------------------------------- */

/* From the initramfs, so before the root switch. */
static int load_modules(const char *list, struct e2b_error **err)
{
    _cleanup_free_ char *data = NULL;
    if (e2b_read_file(list, &data, NULL, NULL) < 0)
        return 0; /* none needed: all built in */
    char *save = NULL;
    for (char *name = strtok_r(data, "\n", &save); name; name = strtok_r(NULL, "\n", &save)) {
        _cleanup_free_ char *p = xasprintf("/lib/modules/%s", name);
        _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
        /* MODULE_INIT_COMPRESSED_FILE: the kernel unpacks .ko.xz and friends */
        int flags = e2b_str_has_suffix(name, ".ko") ? 0 : 4;
        if (fd < 0 || (syscall(SYS_finit_module, fd, "", flags) < 0 && errno != EEXIST))
            return set_error(err, "cannot load module %s", name);
        unlink(p); /* the initramfs is memory */
    }
    return 0;
}

/* The device node of what sysfs names so (virtio ports by name, disks by
 * serial), as devtmpfs makes it; NULL if there is none yet. */
static char *find_in_sysfs(const char *dir, const char *attr, const char *want)
{
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_free_ char *p = xasprintf("%s/%s/%s", dir, de->d_name, attr);
        _cleanup_free_ char *v = NULL;
        if (e2b_read_file(p, &v, NULL, NULL) < 0)
            continue;
        v[strcspn(v, "\n")] = '\0';
        _cleanup_free_ char *dev = xasprintf("/dev/%s", de->d_name);
        if (STREQ(v, want) && access(dev, F_OK) == 0)
            return TAKE_PTR(dev);
    }
    return NULL;
}

static char *wait_device(const char *dir, const char *attr, const char *want)
{
    for (int waited = 0; waited < DEVICE_WAIT_MS; waited += 5) {
        char *dev = find_in_sysfs(dir, attr, want);
        if (dev)
            return dev;
        sleep_ms(5);
    }
    return NULL;
}

/* ---- the root ------------------------------------------------------------- */

static int copy_file(const char *src, const char *dst, mode_t mode, struct e2b_error **err)
{
    _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
    _cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (in < 0 || out < 0)
        return set_error(err, "cannot copy %s to %s", src, dst);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (e2b_write_fd(out, buf, (size_t)n, dst, err) < 0)
            return -1;
    return n < 0 ? set_error(err, "cannot read %s", src) : 0;
}

/* /.e2b as E2B has it: the template's own lines (ENV_ID, BUILD_ID ...),
 * what they lack from the host's word, and this SANDBOX_ID. */
static void write_marker(const char *root, const json_t *cfg)
{
    _cleanup_free_ char *path = xasprintf("%s/.e2b", root);
    _cleanup_free_ char *old = NULL;
    _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
    bool env = false, tpl = false, build = false;
    if (e2b_read_file_untrusted(path, 64 << 10, &old, NULL, NULL) == 0) {
        char *save = NULL;
        for (char *line = strtok_r(old, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (e2b_str_has_prefix(line, "SANDBOX_ID="))
                continue;
            env = env || e2b_str_has_prefix(line, "ENV_ID=");
            tpl = tpl || e2b_str_has_prefix(line, "TEMPLATE_ID=");
            build = build || e2b_str_has_prefix(line, "BUILD_ID=");
            strbuf_addf(&out, "%s\n", line);
        }
    }
    const char *t = e2b_json_str(cfg, "templateID") ?: "";
    if (!env)
        strbuf_addf(&out, "ENV_ID=%s\n", t);
    if (!tpl)
        strbuf_addf(&out, "TEMPLATE_ID=%s\n", t);
    if (!build)
        strbuf_addf(&out, "BUILD_ID=%s\n", e2b_json_str(cfg, "buildID") ?: t);
    strbuf_addf(&out, "SANDBOX_ID=%s\n", e2b_json_str(cfg, "sandboxID") ?: "");
    if (e2b_write_file_atomic(path, out.buf, out.len, 0644, NULL) < 0)
        say("cannot write /.e2b");
}

/* envd's socket, bound before its directory turns read-only. */
static int listen_envd(struct e2b_error **err)
{
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", NEWROOT ENVD_SOCK);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&un, sizeof(un)) < 0 || listen(fd, 256) < 0 ||
        chmod(un.sun_path, 0600) < 0) {
        if (fd >= 0)
            close(fd);
        return set_error(err, "cannot listen on %s", ENVD_SOCK);
    }
    return fd;
}

/* The template read-only under the sandbox's disk, as the new root. */
static int build_root(const json_t *cfg, struct e2b_error **err)
{
    _cleanup_free_ char *root_dev = wait_device("/sys/block", "serial", E2B_VM_ROOT_SERIAL);
    _cleanup_free_ char *disk_dev = wait_device("/sys/block", "serial", E2B_VM_DISK_SERIAL);
    errno = 0;
    if (!root_dev || !disk_dev)
        return set_error(err, "the VM has no %s disk", root_dev ? "writable" : "template");
    if (do_mount(root_dev, "/mnt/lower", "ext4", MS_RDONLY, "noload", err) < 0 ||
        do_mount(disk_dev, "/mnt/rw", "ext4", MS_NOATIME, "noinit_itable", err) < 0)
        return -1;
    if ((mkdir("/mnt/rw/upper", 0755) < 0 && errno != EEXIST) ||
        (mkdir("/mnt/rw/work", 0700) < 0 && errno != EEXIST))
        return set_error(err, "cannot prepare the writable disk");
    if (do_mount("overlay", NEWROOT, "overlay", 0,
                 "lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work", err) < 0)
        return -1;
    static const char *const dirs[] = { NEWROOT "/dev", NEWROOT "/proc", NEWROOT "/sys",
                                        NEWROOT "/run", NEWROOT "/tmp" };
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
        mkdir(dirs[i], 0755);
    chmod(NEWROOT "/tmp", 01777); /* as the ns runtime has it, whatever the template says */
    if (mount("/dev", NEWROOT "/dev", NULL, MS_MOVE, NULL) < 0 ||
        mount("/proc", NEWROOT "/proc", NULL, MS_MOVE, NULL) < 0 ||
        mount("/sys", NEWROOT "/sys", NULL, MS_MOVE, NULL) < 0)
        return set_error(err, "cannot move /dev, /proc and /sys into the new root");
    if (do_mount("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                 "ptmxmode=0666,mode=0620,gid=5", err) < 0 ||
        do_mount("shm", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", err) < 0)
        return -1;
    if (e2b_mkdir_p(NEWROOT ENVD_DIR, 0755, NULL) < 0)
        return set_error(err, "cannot create %s", ENVD_DIR);
    if (do_mount("e2b-run", NEWROOT ENVD_DIR, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=755",
                 err) < 0 ||
        copy_file("/init", NEWROOT ENVD_BIN, 0755, err) < 0)
        return -1;
    vm.listen_fd = listen_envd(err);
    if (vm.listen_fd < 0)
        return -1;
    if (e2b_json_bool(cfg, "internet", false)) {
        static const char resolv[] = "nameserver " E2B_VM_DNS "\n";
        e2b_write_file_atomic(NEWROOT ENVD_DIR "/resolv.conf", resolv, sizeof(resolv) - 1, 0644,
                              NULL);
        unlink(NEWROOT "/etc/resolv.conf"); /* a link into /run in many images */
        e2b_write_file_atomic(NEWROOT "/etc/resolv.conf", resolv, sizeof(resolv) - 1, 0644, NULL);
    }
    /* the agent cannot be replaced from inside (short of root remounting) */
    if (mount(NULL, NEWROOT ENVD_DIR, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) <
        0)
        return set_error(err, "cannot make %s read-only", ENVD_DIR);
    write_marker(NEWROOT, cfg);
    unlink("/init"); /* copied; the initramfs is memory */
    if (chdir(NEWROOT) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 ||
        chdir("/") < 0)
        return set_error(err, "cannot switch to the new root");
    return 0;
}

/* ---- network ---------------------------------------------------------------- */

static int if_up(int s, const char *name)
{
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        return -1;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    return ioctl(s, SIOCSIFFLAGS, &ifr);
}

static void set_addr(struct sockaddr *sa, const char *ip)
{
    struct sockaddr_in *in = (struct sockaddr_in *)sa;
    *in = (struct sockaddr_in){ .sin_family = AF_INET };
    inet_pton(AF_INET, ip, &in->sin_addr);
}

/* QEMU's user-mode network: the guest at .15, the gateway at .2. */
static int configure_net(struct e2b_error **err)
{
    _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    char name[IF_NAMESIZE] = "";
    for (int waited = 0; !*name && waited < DEVICE_WAIT_MS; waited += 5) {
        struct if_nameindex *ifs = if_nameindex();
        for (struct if_nameindex *i = ifs; i && i->if_index; i++)
            if (!STREQ(i->if_name, "lo") && !*name)
                snprintf(name, sizeof(name), "%s", i->if_name);
        if_freenameindex(ifs);
        if (!*name)
            sleep_ms(5);
    }
    errno = 0;
    if (!*name)
        return set_error(err, "the VM has no network interface");
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    set_addr(&ifr.ifr_addr, E2B_VM_GUEST_IP);
    if (ioctl(s, SIOCSIFADDR, &ifr) < 0)
        return set_error(err, "cannot set the address of %s", name);
    set_addr(&ifr.ifr_netmask, "255.255.255.0");
    if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0 || if_up(s, name) < 0)
        return set_error(err, "cannot bring %s up", name);
    struct rtentry rt = { 0 };
    set_addr(&rt.rt_dst, "0.0.0.0");
    set_addr(&rt.rt_genmask, "0.0.0.0");
    set_addr(&rt.rt_gateway, E2B_VM_GATEWAY);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    rt.rt_dev = name;
    if (ioctl(s, SIOCADDRT, &rt) < 0)
        return set_error(err, "cannot add the default route");
    return 0;
}

/* ---- envd ------------------------------------------------------------------- */

static int memfd_with(const char *body)
{
    int fd = memfd_create("envd-init", MFD_CLOEXEC);
    size_t len = strlen(body);
    if (fd < 0 || write(fd, body, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* envd as under the ns runtime: fd 0 /dev/null, 1 and 2 the log, 3 the
 * ready pipe, 4 the listening socket, 5 the /init body. */
static int start_envd(struct e2b_error **err)
{
    int rp[2];
    if (pipe2(rp, O_CLOEXEC) < 0)
        return set_error(err, "cannot start envd");
    int init_fd = vm.envd_init ? memfd_with(vm.envd_init) : -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(rp[0]), close(rp[1]);
        return set_error(err, "cannot start envd");
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setsid();
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        int fds[] = { null, vm.log_w, vm.log_w, rp[1], vm.listen_fd, init_fd };
        int up[ARRAY_SIZE(fds)];
        for (size_t i = 0; i < ARRAY_SIZE(fds);
             i++) /* above 5 first: dup2 must not overwrite a source */
            up[i] = fds[i] >= 0 ? fcntl(fds[i], F_DUPFD_CLOEXEC, 10) : -1;
        for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
            if (up[i] >= 0 && dup2(up[i], (int)i) < 0)
                _exit(127);
        char *const argv[] = { "envd",     "--listen-fd", "4",
                               "--no-tcp", "--ready-fd",  "3",
                               "--user",   vm.user,       init_fd >= 0 ? "--init-fd" : NULL,
                               "5",        NULL };
        char *const envp[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                               "HOME=/root", "E2B_SANDBOX=true", "LANG=C.UTF-8", NULL };
        execve(ENVD_BIN, argv, envp);
        dprintf(2, "init: cannot run envd: %s\n", strerror(errno));
        _exit(127);
    }
    close(rp[1]);
    if (init_fd >= 0)
        close(init_fd);
    if (vm.ready_r >= 0)
        close(vm.ready_r);
    vm.ready_r = rp[0];
    vm.envd = pid;
    return 0;
}

/* ---- the link ---------------------------------------------------------------- */

static int configure(const json_t *cfg, struct e2b_error **err)
{
    const char *user = e2b_json_str(cfg, "user");
    vm.user = xstrdup(user && *user ? user : "root");
    if (e2b_json_str(cfg, "envdInit"))
        vm.envd_init = xstrdup(e2b_json_str(cfg, "envdInit"));
    int lp[2];
    if (pipe2(lp, O_CLOEXEC) < 0)
        return set_error(err, "cannot make envd's log");
    vm.log_r = lp[0];
    vm.log_w = lp[1];
    fcntl(vm.log_r, F_SETFL, O_NONBLOCK);
    bool internet = e2b_json_bool(cfg, "internet", false);
    if ((internet && load_modules(E2B_VM_MODULES_NET, err) < 0) || build_root(cfg, err) < 0)
        return -1;
    const char *host = e2b_json_str(cfg, "hostname") ?: "e2b";
    if (sethostname(host, strlen(host)) < 0)
        say("cannot set the hostname: %s", strerror(errno));
    _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0 || if_up(s, "lo") < 0)
        return set_error(err, "cannot bring loopback up");
    if (internet && configure_net(err) < 0)
        return -1;
    setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
    return start_envd(err);
}

/* ---- suspend and resume -------------------------------------------------------- */

/* POST body to envd's /init (its socket): the new sandbox's token, envs
 * and clock after a restore. envd takes it with the token it has now: the
 * one of the /init body it was given before (prev; a snapshot of a secured
 * sandbox restored as another sandbox), else the one the body names.
 * Blocking, and short: envd answers /init at once. */
static int envd_post_init(const char *prev, const char *body, struct e2b_error **err)
{
    _cleanup_json_ json_t *j = NULL, *pj = NULL;
    e2b_json_parse(body, strlen(body), "envdInit", &j, NULL);
    if (prev)
        e2b_json_parse(prev, strlen(prev), "envdInit", &pj, NULL);
    const char *token = e2b_json_str(pj, "accessToken");
    if (!token || !*token)
        token = e2b_json_str(j, "accessToken");
    _cleanup_free_ char *tok =
        token && *token ? xasprintf("X-Access-Token: %s\r\n", token) : xstrdup("");
    _cleanup_free_ char *req = xasprintf("POST /init HTTP/1.1\r\nHost: localhost\r\n"
                                         "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                                         "Connection: close\r\n%s\r\n%s",
                                         strlen(body), tok, body);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", ENVD_SOCK);
    _cleanup_close_ int fd = -1;
    /* envd may be restarting: a few tries */
    for (int i = 0; i < 100; i++) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&un, sizeof(un)) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
        sleep_ms(20);
    }
    if (fd < 0)
        return set_error(err, "cannot reach envd for /init");
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (e2b_write_fd(fd, req, strlen(req), "envd", err) < 0)
        return -1;
    char head[64] = "";
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
    errno = 0;
    if (!e2b_str_has_prefix(head, "HTTP/1.1 2"))
        return set_error(err, "envd refused /init: %.*s", (int)strcspn(head, "\r\n"), head);
    return 0;
}

/* RESUME: the VM runs again (resumed, or restored as a new sandbox). */
static int resume(const json_t *cfg, struct e2b_error **err)
{
    long long wall = e2b_json_int(cfg, "wallMs", 0);
    if (wall > 0) {
        struct timespec ts = { (time_t)(wall / 1000), (long)(wall % 1000) * 1000000L };
        if (clock_settime(CLOCK_REALTIME, &ts) < 0)
            say("cannot set the clock: %s", strerror(errno));
    }
    const char *host = e2b_json_str(cfg, "hostname");
    if (host && *host && sethostname(host, strlen(host)) < 0)
        say("cannot set the hostname: %s", strerror(errno));
    if (e2b_json_str(cfg, "sandboxID"))
        write_marker("", cfg);
    const char *init = e2b_json_str(cfg, "envdInit");
    if (!init)
        return 0;
    _cleanup_free_ char *prev = vm.envd_init;
    vm.envd_init = xstrdup(init); /* what a restarted envd starts with, from now on */
    return envd_post_init(prev, init, err);
}

static int on_message(void *ud, int type, const char *p, size_t len, struct e2b_error **err)
{
    if (type == E2B_VMLINK_SUSPEND && vm.ready_sent && !vm.suspended) {
        e2b_vmlink_reset(vm.link);
        e2b_vmlink_send(vm.link, E2B_VMLINK_SUSPENDED, "", 0);
        vm.suspended = true;
        return 0;
    }
    if (type == E2B_VMLINK_RESUME && vm.suspended) {
        vm.suspended = false;
        _cleanup_json_ json_t *cfg = NULL;
        _cleanup_error_ struct e2b_error *e = NULL;
        const char *msg = "";
        int64_t t0 = e2b_now_ms();
        if (e2b_json_parse(p, len, "the link's RESUME", &cfg, &e) < 0 || resume(cfg, &e) < 0)
            msg = e->msg;
        else
            say("resumed: clock, hostname and envd's /init in %lld ms",
                (long long)(e2b_now_ms() - t0));
        e2b_vmlink_send(vm.link, E2B_VMLINK_READY, msg, strlen(msg));
        return 0;
    }
    if (type != E2B_VMLINK_CONFIG || vm.configured)
        return 0;
    vm.configured = true;
    _cleanup_json_ json_t *cfg = NULL;
    _cleanup_error_ struct e2b_error *e = NULL;
    if (e2b_json_parse(p, len, "the link's CONFIG", &cfg, &e) < 0 || configure(cfg, &e) < 0) {
        const char *msg = e->msg;
        e2b_vmlink_send(vm.link, E2B_VMLINK_READY, msg, strlen(msg)); /* the host ends us */
        vm.ready_sent = true;
    }
    return 0;
}

static int connect_to(int family, const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, sa, len) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* OPEN: envd, or whatever listens on the port on the guest's loopback. */
static int on_open(void *ud, uint32_t port)
{
    if (port == E2B_VMLINK_PORT_ENVD) {
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        snprintf(un.sun_path, sizeof(un.sun_path), "%s", ENVD_SOCK);
        return connect_to(AF_UNIX, (struct sockaddr *)&un, sizeof(un));
    }
    if (port == 0 || port > 65535)
        return -EINVAL;
    struct sockaddr_in a4 = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = connect_to(AF_INET, (struct sockaddr *)&a4, sizeof(a4));
    if (fd == -ECONNREFUSED) {
        struct sockaddr_in6 a6 = { .sin6_family = AF_INET6,
                                   .sin6_port = htons((uint16_t)port),
                                   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        fd = connect_to(AF_INET6, (struct sockaddr *)&a6, sizeof(a6));
        if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL)
            fd = -ECONNREFUSED;
    }
    return fd;
}

static const struct e2b_vmlink_ops link_ops = { .message = on_message, .open = on_open };

static _noreturn_ void power_off(void)
{
    kill(-1, SIGTERM);
    sleep_ms(500);
    kill(-1, SIGKILL);
    sync();
    reboot(RB_POWER_OFF);
    _exit(0);
}

static void reap(void)
{
    pid_t p;
    int status;
    while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
        if (p != vm.envd)
            continue;
        vm.envd = 0;
        if (!vm.ready_sent) {
            _cleanup_free_ char *m =
                xasprintf("envd exited before it listened (status %d)", status);
            e2b_vmlink_send(vm.link, E2B_VMLINK_READY, m, strlen(m));
            vm.ready_sent = true;
        } else {
            say("envd exited (status %d); restarting", status);
            vm.restart_at = e2b_now_ms() + 1000; /* a bounded pace */
        }
    }
}

int e2b_init_vm_main(void)
{
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigfillset(&mask);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGPWR);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    _cleanup_error_ struct e2b_error *err = NULL;
    mkdir("/dev", 0755), mkdir("/proc", 0555), mkdir("/sys", 0555), mkdir("/mnt", 0755);
    if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") < 0 && errno != EBUSY)
        die("cannot mount /dev");
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ||
        mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        die("cannot mount /proc and /sys");
    if (fcntl(2, F_GETFD) < 0) { /* no console in the initramfs */
        int c = open("/dev/console", O_RDWR | O_CLOEXEC);
        if (c >= 0)
            dup2(c, 0), dup2(c, 1), dup2(c, 2), close(c);
    }
    if (load_modules(E2B_VM_MODULES_BOOT, &err) < 0)
        die("%s", err->msg);
    _cleanup_free_ char *port = wait_device("/sys/class/virtio-ports", "name", E2B_VM_PORT_NAME);
    errno = 0;
    if (!port)
        die("the VM has no link port named %s", E2B_VM_PORT_NAME);
    int pfd = open(port, O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (pfd < 0)
        die("cannot open %s", port);
    /* Until QEMU says the host's end is there, the port reads as closed
     * (POLLHUP, and EOF). */
    for (int waited = 0;; waited += 5) {
        struct pollfd p = { .fd = pfd, .events = POLLOUT };
        if (poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP))
            break;
        errno = 0;
        if (waited >= DEVICE_WAIT_MS)
            die("the host's end of the link did not connect");
        sleep_ms(5);
    }
    vm.link = e2b_vmlink_new(pfd, &link_ops, NULL);
    struct utsname u;
    uname(&u);
    _cleanup_free_ char *hello = xasprintf("{\"version\":1,\"kernel\":\"%s\"}", u.release);
    e2b_vmlink_send(vm.link, E2B_VMLINK_HELLO, hello, strlen(hello));

    for (;;) {
        struct pollfd ex[3] = {
            { .fd = sfd, .events = POLLIN },
            { .fd = vm.ready_r, .events = POLLIN },
            /* envd's output only while the link keeps up: a chatty envd waits */
            { .fd = vm.log_r,
              .events = !vm.suspended && e2b_vmlink_backlog(vm.link) < (256 << 10) ? POLLIN : 0 },
        };
        int timeout = -1;
        if (vm.restart_at) {
            int64_t left = vm.restart_at - e2b_now_ms();
            timeout = left > 0 ? (int)left : 0;
        }
        if (e2b_vmlink_poll(vm.link, ex, ARRAY_SIZE(ex), timeout, &err) < 0) {
            dprintf(2, "init: %s; powering off\n", err->msg);
            power_off();
        }
        if (ex[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGCHLD)
                    reap();
                else
                    power_off();
            }
        }
        if (ex[1].revents) {
            char c;
            ssize_t n = read(vm.ready_r, &c, 1);
            if (n == 1 && !vm.ready_sent) {
                _cleanup_free_ char *up = NULL;
                if (e2b_read_file("/proc/uptime", &up, NULL, NULL) == 0)
                    say("envd listens, %.*s s after the kernel started", (int)strcspn(up, " "), up);
                e2b_vmlink_send(vm.link, E2B_VMLINK_READY, "", 0);
                vm.ready_sent = true;
            }
            if (n <= 0 || n == 1) {
                close(vm.ready_r);
                vm.ready_r = -1;
            }
        }
        if (ex[2].revents & POLLIN) {
            char buf[16384];
            ssize_t n = read(vm.log_r, buf, sizeof(buf));
            if (n > 0)
                e2b_vmlink_send(vm.link, E2B_VMLINK_LOG, buf, (size_t)n);
        }
        if (vm.restart_at && e2b_now_ms() >= vm.restart_at) {
            vm.restart_at = 0;
            _cleanup_error_ struct e2b_error *e = NULL;
            if (start_envd(&e) < 0)
                say("%s", e->msg);
        }
    }
}
