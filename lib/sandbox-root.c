/* sandbox-root.c - see sandbox-root.h */
#include "sandbox-root.h"
#include "cgroup.h"
#include "fsutil.h"
#include "sandbox-seccomp.h"
#include "slirp.h"
#include "strbuf.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/loop.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

void e2b_sandbox_root_release(struct e2b_sandbox_root *r)
{
    free(r->lower);
    free(r->image);
    free(r->envd);
    free(r->state_dir);
    free(r->user);
    free(r->template_id);
    free(r->build_id);
    free(r->envd_init);
    free(r->trust_pem);
    json_decref(r->volumes);
    memset(r, 0, sizeof(*r));
}

/* ---- inside init: errors go to the boot log, then init exits ------------- */

static int boot_log = -1;

static _noreturn_ void die(const char *fmt, ...) _printf_(1, 2);
static _noreturn_ void die(const char *fmt, ...)
{
    int e = errno;
    va_list ap;
    va_start(ap, fmt);
    if (boot_log >= 0) {
        vdprintf(boot_log, fmt, ap);
        dprintf(boot_log, e ? ": %s\n" : "\n", strerror(e));
    }
    va_end(ap);
    _exit(1);
}

static void must_mount(const char *src, const char *dst, const char *type, unsigned long flags,
                       const char *data)
{
    if (mount(src, dst, type, flags, data) < 0)
        die("cannot mount %s on %s", type ? type : src ? src : "(remount)", dst);
}

/* Remount a bind read-only, keeping the flags it has: in a user namespace
 * the kernel refuses to clear flags locked by the outer mount. */
static void remount_ro(const char *dst, unsigned long extra)
{
    unsigned long keep = 0;
    struct statvfs vfs;
    if (statvfs(dst, &vfs) == 0) {
        static const struct {
            unsigned long st, ms;
        } map[] = {{ST_NOSUID, MS_NOSUID}, {ST_NODEV, MS_NODEV}, {ST_NOEXEC, MS_NOEXEC},
                   {ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME}};
        for (size_t i = 0; i < ARRAY_SIZE(map); i++)
            if (vfs.f_flag & map[i].st)
                keep |= map[i].ms;
    }
    must_mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep | extra, NULL);
}

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

/* Decode mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_mountinfo(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
            r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* dst and every mount below it read-only, nosuid and nodev: one
 * mount_setattr(AT_RECURSIVE) (Linux 5.12), else a remount of each mount
 * under dst from mountinfo. Flags are only added, so the ones a user
 * namespace locks stay as they are. */
static void make_ro_tree(const char *dst)
{
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
    if (syscall(SYS_mount_setattr, AT_FDCWD, dst, AT_RECURSIVE, &attr, sizeof(attr)) == 0)
        return;
    if (errno != ENOSYS)
        die("cannot make %s read-only", dst);
    remount_ro(dst, MS_NOSUID | MS_NODEV);
    _cleanup_free_ char *info = NULL;
    if (e2b_read_file("/proc/self/mountinfo", &info, NULL, NULL) < 0)
        die("cannot read the mount table");
    size_t n = strlen(dst);
    char *save = NULL;
    for (char *line = strtok_r(info, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f = line;
        for (int i = 0; i < 4 && f; i++) /* id parent major:minor root mount-point */
            f = strchr(f, ' ') ? strchr(f, ' ') + 1 : NULL;
        char *end = f ? strchr(f, ' ') : NULL;
        if (!end)
            continue;
        *end = '\0';
        unescape_mountinfo(f);
        if (strncmp(f, dst, n) == 0 && f[n] == '/')
            remount_ro(f, MS_NOSUID | MS_NODEV);
    }
}

static void bind_ro(const char *src, const char *dst)
{
    must_mount(src, dst, NULL, MS_BIND | MS_REC, NULL);
    make_ro_tree(dst);
}

/* The sandbox's /etc is a copy of the host's taken at create, in its
 * writable layer (read-only), not a view of it: a mask over a live /etc is lost when the host
 * renames a new file over the masked one (passwd, useradd and package
 * upgrades rewrite shadow and friends that way), and a secret the host adds
 * later would never be masked at all. Without a user namespace the
 * sandbox's root has CAP_DAC_OVERRIDE, so what the host keeps from others
 * (shadow, keytabs, credentials, NetworkManager and wireguard secrets, old
 * passwords ...) is not copied: an empty file stands for each file others
 * may not read, an empty directory for each directory they may not enter
 * or list. Sockets, fifos and device nodes are left out. */
#define ETC_COPY_DEPTH 16

static void copy_etc_file(int from_dir, const char *name, const char *to, const struct stat *st)
{
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0)
        die("cannot create %s", to);
    int in = (st->st_mode & S_IROTH) ? openat(from_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    char buf[65536];
    ssize_t n = 0;
    while (in >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
        if (e2b_write_all(out, buf, (size_t)n) < 0)
            die("cannot copy /etc into the sandbox (%s)", to);
    if (in >= 0)
        close(in);
    /* an id a user namespace does not map (EINVAL) keeps ours */
    if ((fchown(out, st->st_uid, st->st_gid) < 0 && errno != EINVAL) || fchmod(out, st->st_mode & 07777) < 0)
        die("cannot set the owner and mode of %s", to);
    struct timespec times[2] = {st->st_atim, st->st_mtim};
    futimens(out, times);
    close(out);
}

static void copy_etc(const char *host, const char *dst, int depth)
{
    _cleanup_closedir_ DIR *d = opendir(host);
    if (!d)
        return; /* unreadable to an unprivileged caller: stays empty */
    struct dirent *de;
    while ((de = readdir(d))) {
        if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* removed since it was listed */
        _cleanup_free_ char *to = e2b_path_join(dst, de->d_name);
        if (S_ISDIR(st.st_mode)) {
            if (mkdir(to, 0755) < 0)
                die("cannot create %s", to);
            bool open_to_others = (st.st_mode & (S_IROTH | S_IXOTH)) == (S_IROTH | S_IXOTH);
            if (open_to_others && depth < ETC_COPY_DEPTH) {
                _cleanup_free_ char *sub = e2b_path_join(host, de->d_name);
                copy_etc(sub, to, depth + 1);
                if ((lchown(to, st.st_uid, st.st_gid) < 0 && errno != EINVAL) || chmod(to, st.st_mode & 07777) < 0)
                    die("cannot set the owner and mode of %s", to);
            }
        } else if (S_ISREG(st.st_mode)) {
            copy_etc_file(dirfd(d), de->d_name, to, &st);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
            if (n <= 0)
                continue;
            target[n] = '\0';
            if (symlink(target, to) < 0)
                die("cannot link %s", to);
        }
    }
}

/* /etc of the host, copied into dst and made read-only: into the empty
 * directory of the sandbox's writable layer (a checkpoint saves it with
 * the layer, no file system of its own to save) made read-only by a bind
 * over itself; or, where a template's layer has an /etc there already
 * (own_fs: a template built on host), onto a tmpfs of its own. */
static void snapshot_etc(const char *dst, bool own_fs)
{
    if (own_fs)
        must_mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=755");
    copy_etc("/etc", dst, 0);
    if (!own_fs)
        must_mount(dst, dst, NULL, MS_BIND, NULL);
    remount_ro(dst, MS_NOSUID | MS_NODEV);
}

static void mkdir_in(const char *root, const char *rel, mode_t mode)
{
    _cleanup_free_ char *p = e2b_path_join(root, rel);
    if (e2b_mkdir_p(p, mode, NULL) < 0)
        die("cannot create %s", p);
    chmod(p, mode);
}

/* /home is fresh: an empty home for each host account whose home is
 * /home/<name> (E2B's `user` among them), owned by it, so that exec -u NAME
 * starts there and can write. Best effort: unmapped ids cannot own files. */
static void make_homes(const char *root)
{
    FILE *f = fopen("/etc/passwd", "re");
    char line[1024];
    while (f && fgets(line, sizeof(line), f)) {
        char *fld[7] = {0}, *p = line;
        int n = 0;
        line[strcspn(line, "\n")] = '\0';
        for (char *t = strsep(&p, ":"); t && n < 7; t = strsep(&p, ":"))
            fld[n++] = t;
        if (n < 6 || !e2b_str_has_prefix(fld[5], "/home/") || strchr(fld[5] + 6, '/') || !fld[5][6] ||
            STREQ(fld[5] + 6, ".") || STREQ(fld[5] + 6, ".."))
            continue;
        _cleanup_free_ char *h = e2b_path_join(root, fld[5]);
        if (mkdir(h, 0750) == 0 && chown(h, (uid_t)strtoul(fld[2], NULL, 10), (gid_t)strtoul(fld[3], NULL, 10)) < 0)
            rmdir(h); /* not ours to give: no home rather than root's */
    }
    if (f)
        fclose(f);
}

/* The host's programs, read-only, secrets masked; everything else fresh.
 * A template built on `host` (delta: its tree, the sandbox's root is an
 * overlay of it) puts its layer of each host directory over the host's
 * (whiteouts in it hide the host's files), read-only as well. */
static void build_host_root(const char *root, const char *delta)
{
    static const char *const top[] = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"};
    for (size_t i = 0; i < ARRAY_SIZE(top); i++) {
        _cleanup_free_ char *src = xasprintf("/%s", top[i]);
        _cleanup_free_ char *dst = e2b_path_join(root, top[i]);
        struct stat st;
        if (lstat(src, &st) < 0)
            continue;
        struct stat dst_st;
        if (S_ISLNK(st.st_mode)) { /* merged /usr: keep the same links */
            char target[256];
            ssize_t n = readlink(src, target, sizeof(target) - 1);
            if (n <= 0 || (delta && lstat(dst, &dst_st) == 0))
                continue;
            target[n] = '\0';
            if (symlink(target, dst) < 0)
                die("cannot link %s", dst);
            continue;
        }
        if (!S_ISDIR(st.st_mode))
            continue;
        mkdir_in(root, top[i], 0755);
        bool etc = STREQ(top[i], "etc");
        _cleanup_free_ char *layer = delta ? e2b_path_join(delta, top[i]) : NULL;
        bool layered = layer && lstat(layer, &dst_st) == 0 && S_ISDIR(dst_st.st_mode);
        if (etc) /* the overlay below, if any, reads the copy: its path is dst until then */
            snapshot_etc(dst, delta != NULL);
        if (layered) {
            _cleanup_free_ char *ov = xasprintf("lowerdir=%s:%s", layer, etc ? dst : src);
            must_mount("overlay", dst, "overlay", MS_RDONLY | MS_NODEV, ov);
        } else if (!etc) {
            bind_ro(src, dst);
        }
    }
    /* Masks: what others may read in the host's /etc but should not see. */
    static const char *const files[] = {"etc/machine-id"};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        _cleanup_free_ char *p = e2b_path_join(root, files[i]);
        if (access(p, F_OK) == 0)
            must_mount("/dev/null", p, NULL, MS_BIND, NULL);
    }
    static const char *const dirs[] = {"etc/ssh", "etc/ssl/private", "etc/sudoers.d", "etc/e2b"};
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
        _cleanup_free_ char *p = e2b_path_join(root, dirs[i]);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & S_IROTH))
            must_mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=755");
    }
    mkdir_in(root, "root", 0700);
    mkdir_in(root, "home", 0755);
    make_homes(root);
    mkdir_in(root, "var/tmp", 01777);
    mkdir_in(root, "var/lib", 0755);
    mkdir_in(root, "var/cache", 0755);
    mkdir_in(root, "opt", 0755);
}

/* /dev: a nodev tmpfs with the host's few harmless nodes bound in, so a
 * node made here (or anywhere: every writable file system is nodev) cannot
 * be opened; CAP_MKNOD is gone and the devices cgroup allows only these. */
/* /.e2b as E2B has it: the build's ENV_ID, TEMPLATE_ID and BUILD_ID (what
 * the template's own file says, else its metadata) and this SANDBOX_ID. */
static void write_marker(const char *root, const struct e2b_sandbox_root *r, const char *id)
{
    _cleanup_free_ char *p = e2b_path_join(root, ".e2b");
    _cleanup_free_ char *old = NULL;
    _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
    bool env = false, tpl = false, build = false;
    if (!r->host && e2b_read_file_untrusted(p, 64 << 10, &old, NULL, NULL) == 0) {
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
    const char *t = r->template_id ? r->template_id : r->host ? "host" : "";
    if (!env)
        strbuf_addf(&out, "ENV_ID=%s\n", t);
    if (!tpl)
        strbuf_addf(&out, "TEMPLATE_ID=%s\n", t);
    if (!build)
        strbuf_addf(&out, "BUILD_ID=%s\n", r->build_id ? r->build_id : t);
    strbuf_addf(&out, "SANDBOX_ID=%s\n", id);
    if (e2b_write_file_atomic(p, out.buf, out.len, 0644, NULL) < 0)
        die("cannot write %s", p);
}

static void make_dev(const char *root, bool userns)
{
    _cleanup_free_ char *dev = e2b_path_join(root, "dev");
    must_mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, "size=64k,mode=755");
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
        _cleanup_free_ char *p = e2b_path_join(dev, nodes[i]);
        _cleanup_free_ char *host = xasprintf("/dev/%s", nodes[i]);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0)
            die("cannot create %s", p);
        close(fd);
        must_mount(host, p, NULL, MS_BIND, NULL);
    }
    mkdir_in(dev, "pts", 0755);
    mkdir_in(dev, "shm", 01777);
    _cleanup_free_ char *pts = e2b_path_join(dev, "pts");
    /* gid 5 (tty) exists only when the user namespace maps more than root */
    must_mount("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC,
               userns ? "newinstance,ptmxmode=0666,mode=0620" : "newinstance,ptmxmode=0666,mode=0620,gid=5");
    _cleanup_free_ char *shm = e2b_path_join(dev, "shm");
    must_mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777");
    static const char *const links[][2] = {{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"},
                                           {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
                                           {"/proc/self/fd/2", "stderr"}};
    for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
        _cleanup_free_ char *p = e2b_path_join(dev, links[i][1]);
        if (symlink(links[i][0], p) < 0)
            die("cannot link %s", p);
    }
}

/* A path of the root opened as the root would resolve it (symlinks stay
 * inside it): a template's link cannot lead to the host's files. */
static int open_in_root(const char *root, const char *path, int flags)
{
    _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
                            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
    return rfd < 0 ? -1 : (int)syscall(SYS_openat2, rfd, path, &how, sizeof(how));
}

/* The egress CA (egress-tls.h) among what the sandbox's TLS clients trust:
 * as /run/e2b/egress-ca.pem, and at the end of the root's system bundle
 * (etc/ssl/certs/ca-certificates.crt, where it has one): bound over the
 * host's copy, written into a template's (and kept for its
 * update-ca-certificates in usr/local/share/ca-certificates). */
static void trust_ca(const char *root, const char *run, bool host, const char *pem)
{
    _cleanup_free_ char *own = e2b_path_join(run, "egress-ca.pem");
    if (e2b_write_file_atomic(own, pem, strlen(pem), 0644, NULL) < 0)
        die("cannot write %s", own);
    static const char bundle[] = "etc/ssl/certs/ca-certificates.crt";
    _cleanup_close_ int fd = open_in_root(root, bundle, O_RDONLY | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (8 << 20))
        return; /* no bundle: nothing there does TLS with the system's roots */
    struct strbuf all = STRBUF_INIT;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        strbuf_add(&all, buf, (size_t)n);
    if (all.len && all.buf[all.len - 1] != '\n')
        strbuf_addch(&all, '\n');
    strbuf_addstr(&all, pem);
    if (host) { /* /etc is a read-only copy: the bundle bound over its file */
        _cleanup_free_ char *copy = e2b_path_join(run, "ca-certificates.crt");
        _cleanup_free_ char *target = xasprintf("/proc/self/fd/%d", fd);
        if (e2b_write_file_atomic(copy, all.buf, all.len, 0644, NULL) < 0)
            die("cannot write %s", copy);
        must_mount(copy, target, NULL, MS_BIND, NULL);
    } else {
        static const char tmp[] = ".ca-certificates.crt.e2b";
        _cleanup_close_ int dir = open_in_root(root, "etc/ssl/certs", O_PATH | O_DIRECTORY);
        if (dir >= 0)
            unlinkat(dir, tmp, 0);
        _cleanup_close_ int out =
            dir < 0 ? -1
                    : openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (out < 0 || e2b_write_fd(out, all.buf, all.len, bundle, NULL) < 0 ||
            renameat(dir, tmp, dir, "ca-certificates.crt") < 0)
            die("cannot add the egress CA to %s", bundle);
        _cleanup_close_ int local =
            open_in_root(root, "usr/local/share/ca-certificates", O_PATH | O_DIRECTORY);
        _cleanup_close_ int keep =
            local < 0 ? -1
                      : openat(local, "e2b-egress-ca.crt",
                               O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (keep >= 0)
            e2b_write_fd(keep, pem, strlen(pem), "e2b-egress-ca.crt", NULL);
    }
    strbuf_release(&all);
}

/* The volumes: each host directory bound read-write (no devices, no
 * setuid) at its path in the root. The mount point is made and opened one
 * component at a time, never following a symlink of the template's, so a
 * link in the template cannot send the mount elsewhere. */
static void bind_volumes(const char *root, const json_t *volumes)
{
    size_t i;
    json_t *v;
    json_array_foreach(volumes, i, v) {
        const char *host = e2b_json_str(v, "host"), *path = e2b_json_str(v, "path");
        int dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *copy = xstrdup(path);
        char *save = NULL;
        for (char *c = strtok_r(copy, "/", &save); c && dfd >= 0; c = strtok_r(NULL, "/", &save)) {
            if (mkdirat(dfd, c, 0755) < 0 && errno != EEXIST)
                die("cannot make the mount point %s of a volume", path);
            int next = openat(dfd, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            close(dfd);
            dfd = next;
        }
        if (dfd < 0)
            die("the mount point %s of a volume is not a directory (a symlink?) in the template", path);
        _cleanup_free_ char *at = xasprintf("/proc/self/fd/%d", dfd);
        must_mount(host, at, NULL, MS_BIND, NULL);
        close(dfd);
        _cleanup_free_ char *dst = xasprintf("%s%s", root, path);
        must_mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV, NULL);
    }
}

/* Attach the image read-only to a free loop device and mount it on dst. The
 * device is autoclear and only this mount namespace holds it: it is detached
 * when the sandbox's processes are gone, whoever kills them. */
static void mount_image(const char *image, const char *dst)
{
    int img = open(image, O_RDONLY | O_CLOEXEC);
    if (img < 0)
        die("cannot open the template image %s", image);
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0)
        die("cannot open /dev/loop-control for the template image");
    for (int tries = 0;; tries++) {
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (n < 0)
            die("no free loop device for the template image");
        char dev[32];
        snprintf(dev, sizeof(dev), "/dev/loop%d", n);
        int lfd = open(dev, O_RDONLY | O_CLOEXEC);
        if (lfd < 0)
            die("cannot open %s", dev);
        struct loop_config cfg = {.fd = (uint32_t)img,
                                  .info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR};
        snprintf((char *)cfg.info.lo_file_name, LO_NAME_SIZE, "%s", image);
        if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0) {
            close(img);
            close(ctl);
            /* noload: never replay a journal on a shared, read-only image */
            if (mount(dev, dst, "ext4", MS_RDONLY | MS_NODEV, "noload") < 0)
                die("the template image %s is not a valid ext4 file system (corrupt?)", image);
            close(lfd); /* the mount holds the device now; autoclear frees it after */
            return;
        }
        int e = errno;
        close(lfd);
        /* another sandbox took that device between GET_FREE and CONFIGURE */
        if (e != EBUSY || tries >= 100) {
            errno = e;
            die("cannot attach the template image %s to %s", image, dev);
        }
    }
}

/* The writable layer: a tmpfs of r->disk_mb at scratch. */
static void mount_scratch(const struct e2b_sandbox_root *r, const char *scratch)
{
    mkdir(scratch, 0700);
    _cleanup_free_ char *opts = xasprintf("size=%dm,mode=755", r->disk_mb);
    must_mount("e2b-sandbox", scratch, "tmpfs", MS_NOSUID | MS_NODEV, opts);
}

/* The root at <scratch>/root: the template's tree or image under the
 * writable layer (upper/ and work/ in scratch), or for `host` a directory
 * of the layer itself. fresh: a new sandbox, whose host directories are
 * bound in here; a restore's come back with CRIU, as every other mount. */
static void mount_root(const struct e2b_sandbox_root *r, const char *id, const char *scratch,
                       bool fresh)
{
    _cleanup_free_ char *root = e2b_path_join(scratch, "root");
    _cleanup_free_ char *upper = e2b_path_join(scratch, "upper");
    mkdir(root, 0755);
    if (!fresh && access(upper, F_OK) < 0) { /* the layer saved is the root itself: `host` */
        must_mount(root, root, NULL, MS_BIND, NULL);
    } else if (!fresh && r->host && !r->lower) {
        errno = 0;
        die("the checkpoint has an overlay's layer, and the `host` template has nothing under it");
    } else if (r->host && r->lower) { /* a template built on host: its tree over the host's */
        mkdir_in(scratch, "upper", 0755);
        mkdir_in(scratch, "work", 0755);
        _cleanup_free_ char *ov =
            xasprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", r->lower, scratch, scratch);
        must_mount("overlay", root, "overlay", MS_NODEV, ov);
        if (fresh)
            build_host_root(root, r->lower);
    } else if (r->host) {
        must_mount(root, root, NULL, MS_BIND, NULL); /* pivot_root wants a mount point */
        if (fresh)
            build_host_root(root, NULL);
    } else {
        mkdir_in(scratch, "upper", 0755);
        mkdir_in(scratch, "work", 0755);
        _cleanup_free_ char *lower = r->lower ? xstrdup(r->lower) : e2b_path_join(scratch, "lower");
        if (r->image) {
            mkdir_in(scratch, "lower", 0755);
            mount_image(r->image, lower);
            _cleanup_error_ struct e2b_error *e = NULL;
            if (fresh && !r->userns && e2b_cgroup_drop_loop(id, &e) < 0) {
                errno = 0;
                die("%s", e->msg);
            }
        }
        _cleanup_free_ char *ov =
            xasprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", lower, scratch, scratch);
        must_mount("overlay", root, "overlay", MS_NODEV, ov); /* device nodes only in /dev */
    }
}

/* lo up in this thread's network namespace: 0 or an errno. */
static int lo_up(void)
{
    _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        return errno;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    return ioctl(s, SIOCSIFFLAGS, &ifr) < 0 ? errno : 0;
}

static void loopback_up(void)
{
    int e = lo_up();
    if (e) {
        errno = e;
        die("cannot bring loopback up");
    }
}

/* A new network namespace is made by a short-lived thread, which enters
 * it, opens it and ends: no thread of ours stays in it. */
struct netns_new {
    const char *listen_dir;
    int fd, listen_fd;
    int err;
};

static void *netns_new_main(void *ud)
{
    struct netns_new *n = ud;
    if (unshare(CLONE_NEWNET) < 0) {
        n->err = errno;
        return NULL;
    }
    n->err = lo_up();
    if (!n->err && (n->fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
        n->err = errno;
    /* envd's socket, made in here as init makes it: in the sandbox's namespace */
    _cleanup_close_ int dfd = n->err ? -1 : open(n->listen_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    snprintf(un.sun_path, sizeof(un.sun_path), "/proc/self/fd/%d/envd.sock", dfd);
    if (!n->err && (dfd < 0 || (n->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0))
        n->err = errno;
    if (!n->err) {
        unlinkat(dfd, "envd.sock", 0);
        if (bind(n->listen_fd, (struct sockaddr *)&un, sizeof(un)) < 0 ||
            listen(n->listen_fd, 128) < 0)
            n->err = errno;
    }
    return NULL;
}

int e2b_sandbox_netns_new(const char *listen_dir, int *ret_listen_fd, struct e2b_error **err)
{
    struct netns_new n = { .listen_dir = listen_dir, .fd = -1, .listen_fd = -1 };
    pthread_t t;
    int e = pthread_create(&t, NULL, netns_new_main, &n);
    if (e == 0) {
        pthread_join(t, NULL);
        e = n.err;
    }
    if (e) {
        if (n.fd >= 0)
            close(n.fd);
        if (n.listen_fd >= 0)
            close(n.listen_fd);
        return e2b_error_sys(err, e, "cannot make a network namespace with envd's socket in %s",
                             listen_dir);
    }
    *ret_listen_fd = n.listen_fd;
    return n.fd;
}

/* /proc entries that reveal or change the host: hidden or read-only. */
static void restrict_proc(void)
{
    static const char *const hidden[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list",
                                         "/proc/sched_debug", "/proc/kallsyms", "/proc/latency_stats",
                                         "/proc/timer_stats"};
    for (size_t i = 0; i < ARRAY_SIZE(hidden); i++)
        if (access(hidden[i], F_OK) == 0)
            mount("/dev/null", hidden[i], NULL, MS_BIND, NULL);
    static const char *const hidden_dirs[] = {"/proc/acpi", "/proc/scsi", "/proc/asound"};
    for (size_t i = 0; i < ARRAY_SIZE(hidden_dirs); i++)
        if (access(hidden_dirs[i], F_OK) == 0)
            mount("tmpfs", hidden_dirs[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k");
    static const char *const ro[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus",
                                     "/proc/fs"};
    for (size_t i = 0; i < ARRAY_SIZE(ro); i++)
        if (access(ro[i], F_OK) == 0) {
            mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL);
            make_ro_tree(ro[i]);
        }
}

/* Keep what a container's root user needs; SYS_ADMIN, SYS_PTRACE, SYS_MODULE,
 * NET_ADMIN, SYS_TIME, BPF, PERFMON, MKNOD (without a user namespace the
 * sandbox's root is the host's: a block node of the host's disk would be its
 * disk) and the rest are gone for good. */
static void drop_capabilities(void)
{
    static const int keep[] = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL,
                               CAP_SETGID, CAP_SETUID, CAP_SETPCAP, CAP_NET_BIND_SERVICE,
                               CAP_SYS_CHROOT, CAP_AUDIT_WRITE, CAP_SETFCAP};
    int last = CAP_LAST_CAP;
    _cleanup_free_ char *s = NULL;
    if (e2b_read_file("/proc/sys/kernel/cap_last_cap", &s, NULL, NULL) == 0)
        last = atoi(s);
    uint64_t kept = 0;
    for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
        kept |= 1ULL << keep[i];
    for (int c = 0; c <= last; c++)
        if (!(kept & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            die("cannot drop capability %d", c);
    /* And from init's own sets, so nothing it runs can regain them. */
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2] = {{0}};
    /* inheritable empty, as Docker: nothing regains a capability through file caps */
    data[0].effective = data[0].permitted = (uint32_t)kept;
    data[1].effective = data[1].permitted = (uint32_t)(kept >> 32);
    if (syscall(SYS_capset, &hdr, data) < 0)
        die("cannot set capabilities");
}

/* envd with fd 0 /dev/null, 1 and 2 the log pipe, 3 the readiness pipe and
 * 4 the listening socket (moved up first: dup2 must not overwrite a source). */
/* What every sandbox process lives under from here: the capabilities a
 * container's root keeps, no_new_privs, the seccomp filter. */
static void lock_down(const struct e2b_seccomp_prog *prog)
{
    drop_capabilities();
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        die("cannot set no_new_privs");
    _cleanup_error_ struct e2b_error *err = NULL;
    if (e2b_seccomp_load(prog, &err) < 0) {
        errno = 0;
        die("%s", err->msg);
    }
}

/* envd's /init body in a memfd at offset 0 (it holds the access token:
 * only init and envd ever have it open), or -1 when there is none. */
static int init_body_fd(const char *body)
{
    if (!body)
        return -1;
    int fd = memfd_create("envd-init", MFD_CLOEXEC);
    size_t len = strlen(body);
    if (fd < 0 || e2b_write_all(fd, body, len) < 0 || lseek(fd, 0, SEEK_SET) != 0)
        die("cannot hand envd its settings");
    return fd;
}

static _noreturn_ void run_envd(const char *user, int ready_w, int log_w, int listen_fd, int init_fd)
{
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int rdy = fcntl(ready_w, F_DUPFD_CLOEXEC, 10), lg = fcntl(log_w, F_DUPFD_CLOEXEC, 10),
        ls = fcntl(listen_fd, F_DUPFD_CLOEXEC, 10),
        in = init_fd >= 0 ? fcntl(init_fd, F_DUPFD_CLOEXEC, 10) : -1;
    /* dup2 clears close-on-exec on the targets */
    if (null < 0 || rdy < 0 || lg < 0 || ls < 0 || (init_fd >= 0 && in < 0) || dup2(null, 0) < 0 ||
        dup2(lg, 1) < 0 || dup2(lg, 2) < 0 || dup2(rdy, 3) < 0 || dup2(ls, 4) < 0 ||
        (in >= 0 && dup2(in, 5) < 0))
        _exit(127);
    setsid();
    /* --local-listen: /health and /envs for the sandbox's own processes on
     * its loopback, where E2B's envd is (the code interpreter reads them) */
    char *const argv[] = {"envd", "--listen-fd", "4", "--no-tcp", "--ready-fd", "3",
                          "--local-listen", "127.0.0.1:49983", "--user", (char *)user,
                          in >= 0 ? "--init-fd" : NULL, "5", NULL};
    char *const envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "HOME=/root", "E2B_SANDBOX=true", "LANG=C.UTF-8", NULL};
    execve("/run/e2b/envd", argv, envp);
    dprintf(2, "cannot run envd: %s\n", strerror(errno));
    _exit(127);
}

/* envd's socket, bound in the host's state directory (relative to it: no
 * sun_path limit on the directory's length) before init leaves the host's
 * root, so nothing inside can replace it. */
static int listen_in(const char *dir, const char *name)
{
    int here = open(".", O_PATH | O_CLOEXEC);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", name);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || chdir(dir) < 0)
        die("cannot make envd's socket in %s", dir);
    unlink(name);
    if (bind(fd, (struct sockaddr *)&un, sizeof(un)) < 0 || listen(fd, 128) < 0)
        die("cannot listen on %s/%s", dir, name);
    if (here >= 0) {
        (void)!fchdir(here);
        close(here);
    }
    return fd;
}

/* Close every fd but 0-2 and the ones given: the supervisor's lock and its
 * pipe to the CLI must not live on in the sandbox's pid 1. */
static void close_others(const int *keep, size_t n)
{
    int k[8];
    size_t m = 0;
    for (size_t i = 0; i < n && m < ARRAY_SIZE(k); i++)
        if (keep[i] > 2)
            k[m++] = keep[i];
    for (size_t i = 1; i < m; i++) /* sort: a handful */
        for (size_t j = i; j > 0 && k[j - 1] > k[j]; j--) {
            int t = k[j];
            k[j] = k[j - 1], k[j - 1] = t;
        }
    unsigned lo = 3;
    for (size_t i = 0; i < m; i++) {
        if ((unsigned)k[i] > lo)
            close_range(lo, (unsigned)k[i] - 1, 0);
        lo = (unsigned)k[i] + 1;
    }
    close_range(lo, ~0U, 0);
}

/* init becomes the guest binary's `init --ns` (envd-init.h): the reaper
 * runs from a file inside the sandbox, so that nothing of the host's e2b is
 * mapped in its pid 1 and CRIU can checkpoint the whole tree. It keeps the
 * sandbox's writable layer open as fd 3 (E2B_SANDBOX_SCRATCH_FD) and, on
 * cgroup v1, the freezer's state as fd 4, to thaw before it kills. */
static _noreturn_ void exec_reaper(pid_t envd, int scratch_fd, int thaw_fd)
{
    int s = fcntl(scratch_fd, F_DUPFD_CLOEXEC, 10);
    int t = thaw_fd >= 0 ? fcntl(thaw_fd, F_DUPFD_CLOEXEC, 10) : -1;
    /* and 0-2 the sandbox's own /dev/null, not the host's */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (s < 0 || null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 ||
        dup2(s, E2B_SANDBOX_SCRATCH_FD) < 0 || (thaw_fd >= 0 && (t < 0 || dup2(t, 4) < 0)))
        die("cannot hand init its files");
    close_range(thaw_fd >= 0 ? 5 : 4, ~0U, CLOSE_RANGE_CLOEXEC); /* the boot log stays for die() */
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)envd);
    char *const argv[] = { "init", "--ns", "--envd-pid", pid, thaw_fd >= 0 ? "--thaw-fd" : NULL,
                           "4",    NULL };
    char *const envp[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           NULL };
    execve("/run/e2b/envd", argv, envp);
    die("cannot run init");
}

/* pid 1 of the sandbox: set up, start envd, then become the reaper. */
static _noreturn_ void init_main(struct e2b_sandbox_root *r, const char *id, int go_fd, int net_fd,
                                 int ready_w, int log_w, const char *logp)
{
    /* Every signal waits for the loop at the end: pid 1 of a namespace would
     * drop an unhandled SIGTERM (the supervisor's death, PDEATHSIG). */
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    const int keep[] = {go_fd, net_fd, ready_w, log_w};
    close_others(keep, ARRAY_SIZE(keep));
    /* The go byte: in a user namespace our ids are mapped once it came;
     * otherwise init builds the sandbox while the supervisor moves it into
     * its cgroups (that waits for an RCU grace period), and only envd,
     * the first process of the sandbox proper, waits for it. */
    char go;
    if (r->userns && read(go_fd, &go, 1) != 1)
        _exit(1); /* the supervisor gave up */
    /* No host file stays open in the sandbox's pid 1 (the supervisor's log
     * was 1 and 2). */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0)
        dup2(null, 0), dup2(null, 1), dup2(null, 2), close(null);
    boot_log = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (r->userns && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
        die("cannot become root in the user namespace");
    if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
        die("cannot create namespaces");
    if (net_fd >= 0) { /* let the supervisor attach user-mode networking, wait for it */
        (void)!write(net_fd, "n", 1);
        if (read(net_fd, &go, 1) != 1 || go != 'g')
            die("user-mode networking did not start");
        close(net_fd);
    }
    /* Nothing in the sandbox may open init's fds or memory through /proc.
     * Only now: slirp4netns, run by an unprivileged caller, had to open
     * /proc/<init>/ns/{user,net}, which a non-dumpable process's owner
     * cannot (the files then belong to root); no sandbox process exists
     * yet to use the window. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    must_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    int listen_fd = listen_in(r->state_dir, "envd.sock");
    /* v1: envd joins the part the freezer freezes; init stays out of it and
     * keeps the means to thaw it (see the loop) */
    int frozen_procs = r->userns ? -1 : e2b_cgroup_open_frozen_part(id, "cgroup.procs", O_WRONLY);
    int frozen_state = r->userns ? -1 : e2b_cgroup_open_frozen_part(id, "freezer.state", O_WRONLY);

    _cleanup_free_ char *scratch = e2b_path_join(r->state_dir, "mnt");
    mount_scratch(r, scratch);
    /* init keeps it (E2B_SANDBOX_SCRATCH_FD): past the pivot nothing else
     * reaches the writable layer, which a checkpoint copies */
    int scratch_fd = open(scratch, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (scratch_fd < 0)
        die("cannot open %s", scratch);
    _cleanup_free_ char *root = e2b_path_join(scratch, "root");
    mount_root(r, id, scratch, true);
    mkdir_in(root, "proc", 0555);
    mkdir_in(root, "dev", 0755);
    mkdir_in(root, "tmp", 01777);
    mkdir_in(root, "run/e2b", 0755);
    make_dev(root, r->userns);
    _cleanup_free_ char *proc = e2b_path_join(root, "proc");
    must_mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    /* /run/e2b: the sandbox's own small tmpfs; it cannot fill the host's /run */
    _cleanup_free_ char *run = e2b_path_join(root, "run/e2b");
    must_mount("e2b-run", run, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4m,mode=755");
    /* The agent: the host's static binary, read-only, never copied into the template. */
    _cleanup_free_ char *slot = e2b_path_join(run, "envd");
    int fd = open(slot, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
    if (fd < 0)
        die("cannot create %s", slot);
    close(fd);
    must_mount(r->envd, slot, NULL, MS_BIND, NULL);
    make_ro_tree(slot);
    write_marker(root, r, id);
    if (r->internet) { /* slirp4netns's resolver */
        _cleanup_free_ char *resolv = e2b_path_join(run, "resolv.conf");
        e2b_write_file_atomic(resolv, "nameserver 10.0.2.3\n", 20, 0644, NULL);
        _cleanup_free_ char *etc_resolv = e2b_path_join(root, "etc/resolv.conf");
        if (r->host)
            mount(resolv, etc_resolv, NULL, MS_BIND, NULL);
        else
            e2b_write_file_atomic(etc_resolv, "nameserver 10.0.2.3\n", 20, 0644, NULL);
    }

    if (r->trust_pem)
        trust_ca(root, run, r->host, r->trust_pem);
    bind_volumes(root, r->volumes);
    if (sethostname("e2b", 3) < 0)
        die("cannot set the hostname");
    loopback_up();
    if (chdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
        die("cannot pivot into the sandbox root");
    if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
        die("cannot detach the host root");
    restrict_proc();
    /* Unprivileged there is no cgroup: a process limit per user inside the
     * sandbox (counted in its user namespace) at least stops a fork bomb. */
    if (r->userns && r->pids_max > 0) {
        struct rlimit rl = {.rlim_cur = (rlim_t)r->pids_max, .rlim_max = (rlim_t)r->pids_max};
        if (setrlimit(RLIMIT_NPROC, &rl) < 0)
            die("cannot limit the sandbox's processes");
    }

    /* The filter is built once, for init and envd. */
    _cleanup_error_ struct e2b_error *err = NULL;
    struct e2b_seccomp_prog prog;
    if (e2b_seccomp_build(&prog, &err) < 0) {
        errno = 0;
        die("%s", err->msg);
    }
    if (!r->userns && read(go_fd, &go, 1) != 1)
        _exit(1); /* the supervisor gave up; init is in the sandbox's cgroups from here */
    close(go_fd);
    /* rooted where init is now: the sandbox sees its own cgroup as / */
    if (unshare(CLONE_NEWCGROUP) < 0)
        die("cannot create the cgroup namespace");
    int init_fd = init_body_fd(r->envd_init);
    pid_t envd = fork();
    if (envd < 0)
        die("cannot start envd");
    if (envd == 0) {
        if (frozen_procs >= 0 && write(frozen_procs, "0", 1) != 1) /* 0: the writer */
            die("cannot move envd into the sandbox's freezer cgroup");
        lock_down(&prog);
        sigprocmask(SIG_UNBLOCK, &all, NULL);
        run_envd(r->user, ready_w, log_w, listen_fd, init_fd);
    }
    if (init_fd >= 0)
        close(init_fd);
    lock_down(&prog);
    e2b_seccomp_prog_release(&prog);
    /* envd holds these now: its death before listening is EOF on ready_w */
    close(ready_w);
    close(log_w);
    close(listen_fd);
    if (frozen_procs >= 0)
        close(frozen_procs);
    exec_reaper(envd, scratch_fd, frozen_state);
}

/* ---- checkpoints: the writable layer out and in --------------------------- */

/* Run tar with argv; its complaint (the first line of its stderr) in the
 * error when it fails. */
static int run_tar(char **argv, struct e2b_error **err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return e2b_error_sys(err, errno, "cannot run tar");
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]), close(p[1]);
        return e2b_error_sys(err, errno, "cannot run tar");
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(p[1], 2) < 0)
            _exit(127);
        execvp("tar", argv);
        dprintf(2, "cannot run tar: %s\n", strerror(errno));
        _exit(127);
    }
    close(p[1]);
    _cleanup_free_ char *said = NULL;
    size_t n = 0;
    e2b_read_fd(p[0], "tar", 4096, &said, &n, NULL);
    close(p[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return e2b_error_sys(err, errno, "cannot wait for tar");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (said)
        said[strcspn(said, "\n")] = '\0';
    return e2b_error_set(err, E2B_ERR_GENERIC, "%s", said && *said ? said : "tar failed");
}

int e2b_sandbox_root_save_layer(pid_t init_pid, const char *tar_path, struct e2b_error **err)
{
    _cleanup_free_ char *scratch =
        xasprintf("/proc/%d/fd/%d", (int)init_pid, E2B_SANDBOX_SCRATCH_FD);
    _cleanup_free_ char *upper = e2b_path_join(scratch, "upper");
    struct stat st;
    if (stat(scratch, &st) < 0 || !S_ISDIR(st.st_mode))
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                             "the sandbox's init holds no writable layer (a sandbox started before "
                             "checkpoints existed: start it again)");
    const char *what = access(upper, F_OK) == 0 ? "upper" : "root";
    char *argv[] = { "tar",
                     "--create",
                     "--file",
                     (char *)tar_path,
                     "--directory",
                     scratch,
                     "--xattrs",
                     "--xattrs-include=*",
                     "--numeric-owner",
                     "--sparse",
                     "--one-file-system",
                     (char *)what,
                     NULL };
    if (run_tar(argv, err) < 0)
        return e2b_error_wrap(err, "cannot save the sandbox's files");
    return 0;
}

int e2b_sandbox_root_remake(const struct e2b_sandbox_root *r, const char *id, const char *layer_tar,
                            int log_fd, char **ret_root)
{
    boot_log = log_fd;
    if (unshare(CLONE_NEWNS) < 0)
        die("cannot create a mount namespace");
    must_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    _cleanup_free_ char *scratch = e2b_path_join(r->state_dir, "mnt");
    mount_scratch(r, scratch);
    char *argv[] = { "tar",
                     "--extract",
                     "--file",
                     (char *)layer_tar,
                     "--directory",
                     scratch,
                     "--xattrs",
                     "--xattrs-include=*",
                     "--numeric-owner",
                     "--same-owner",
                     "--same-permissions",
                     NULL };
    _cleanup_error_ struct e2b_error *e = NULL;
    if (run_tar(argv, &e) < 0) {
        errno = 0;
        die("cannot restore the sandbox's files from %s: %s", layer_tar, e->msg);
    }
    mount_root(r, id, scratch, false);
    _cleanup_free_ char *root = e2b_path_join(scratch, "root");
    write_marker(root, r, id);
    int fd = open(scratch, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        die("cannot open %s", scratch);
    *ret_root = TAKE_PTR(root);
    return fd;
}

/* This user's range in /etc/subuid or /etc/subgid ("name-or-id:start:count"). */
static bool subid_range(const char *file, const char *name, unsigned long id, unsigned long *start,
                        unsigned long *count)
{
    _cleanup_free_ char *data = NULL;
    if (e2b_read_file(file, &data, NULL, NULL) < 0)
        return false;
    char idbuf[24];
    snprintf(idbuf, sizeof(idbuf), "%lu", id);
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = '\0';
        if ((name && STREQ(line, name)) || STREQ(line, idbuf)) {
            *start = strtoul(c1 + 1, NULL, 10);
            *count = strtoul(c2 + 1, NULL, 10);
            return *count > 0;
        }
    }
    return false;
}

static int run_idmap(const char *prog, pid_t pid, unsigned long outer, unsigned long start,
                     unsigned long count)
{
    char a[5][24];
    snprintf(a[0], 24, "%d", (int)pid);
    snprintf(a[1], 24, "%lu", outer);
    snprintf(a[2], 24, "%lu", start);
    snprintf(a[3], 24, "%lu", count);
    pid_t c = fork();
    if (c < 0)
        return -1;
    if (c == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0), dup2(null, 1), dup2(null, 2);
        execlp(prog, prog, a[0], "0", a[1], "1", "1", a[2], a[3], (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(c, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int write_proc(pid_t pid, const char *file, const char *text)
{
    _cleanup_free_ char *p = xasprintf("/proc/%d/%s", (int)pid, file);
    _cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
    return fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -1;
}

bool e2b_sandbox_userns_ranges(void)
{
    struct passwd *pw = getpwuid(getuid());
    unsigned long st, n;
    return subid_range("/etc/subuid", pw ? pw->pw_name : NULL, getuid(), &st, &n) &&
           subid_range("/etc/subgid", pw ? pw->pw_name : NULL, getuid(), &st, &n) &&
           access("/usr/bin/newuidmap", X_OK) == 0;
}

/* Map the caller to root in init's user namespace: with its subordinate
 * ranges (newuidmap/newgidmap) when it has them, else that one id. */
static int map_ids(pid_t pid, struct e2b_error **err)
{
    uid_t uid = getuid();
    gid_t gid = getgid();
    struct passwd *pw = getpwuid(uid);
    const char *name = pw ? pw->pw_name : NULL;
    unsigned long us, uc, gs, gc;
    if (subid_range("/etc/subuid", name, uid, &us, &uc) && subid_range("/etc/subgid", name, uid, &gs, &gc) &&
        run_idmap("newuidmap", pid, uid, us, uc) == 0 && run_idmap("newgidmap", pid, gid, gs, gc) == 0)
        return 0;
    char map[64];
    snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
    if (write_proc(pid, "uid_map", map) < 0)
        return e2b_error_sys(err, errno, "cannot map uid %u into the sandbox's user namespace", (unsigned)uid);
    if (write_proc(pid, "setgroups", "deny") < 0 && errno != ENOENT)
        return e2b_error_sys(err, errno, "cannot set up the sandbox's user namespace");
    snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
    if (write_proc(pid, "gid_map", map) < 0)
        return e2b_error_sys(err, errno, "cannot map gid %u into the sandbox's user namespace", (unsigned)gid);
    return 0;
}

int e2b_sandbox_root_spawn(struct e2b_sandbox_root *r, const char *id, pid_t *ret_init_pid,
                           struct e2b_error **err)
{
    int gop[2], netp[2] = {-1, -1}, readyp[2], logp[2];
    if (pipe2(gop, O_CLOEXEC) < 0)
        return e2b_error_sys(err, errno, "cannot start the sandbox");
    if (pipe2(readyp, O_CLOEXEC) < 0) {
        close(gop[0]), close(gop[1]);
        return e2b_error_sys(err, errno, "cannot start the sandbox");
    }
    if (pipe2(logp, O_CLOEXEC) < 0) {
        close(gop[0]), close(gop[1]), close(readyp[0]), close(readyp[1]);
        return e2b_error_sys(err, errno, "cannot start the sandbox");
    }
    if (r->internet && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, netp) < 0)
        return e2b_error_sys(err, errno, "cannot start the sandbox");
    _cleanup_free_ char *bootp = xasprintf("%s/init.log", r->state_dir);
    pid_t supervisor = getpid();
    /* fork() into a new pid namespace: init is pid 1 there, and the
     * supervisor's other children (slirp4netns) stay outside it. */
    unsigned long flags = CLONE_NEWPID | SIGCHLD | (r->userns ? CLONE_NEWUSER : 0);
    pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
    if (pid < 0)
        return e2b_error_sys(err, errno, "cannot start the sandbox");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* init thaws and kills the sandbox, then exits */
        close(gop[1]);
        if (netp[0] >= 0)
            close(netp[0]);
        close(readyp[0]);
        close(logp[0]);
        init_main(r, id, gop[0], netp[1], readyp[1], logp[1], bootp);
    }
    close(gop[0]);
    close(readyp[1]);
    close(logp[1]);
    r->ready_fd = readyp[0];
    r->log_fd = logp[0];
    if (netp[1] >= 0)
        close(netp[1]);
    *ret_init_pid = pid;
    /* init and envd are the sandbox: shield them from the OOM killer where
     * the host allows it (it needs CAP_SYS_RESOURCE); envd also raises its
     * children's score, which works everywhere. */
    _cleanup_free_ char *oom = xasprintf("/proc/%d/oom_score_adj", (int)pid);
    int oomfd = open(oom, O_WRONLY | O_CLOEXEC);
    if (oomfd >= 0) {
        (void)!write(oomfd, "-1000", 5);
        close(oomfd);
    }
    if (r->userns ? map_ids(pid, err) < 0 : e2b_cgroup_add(id, pid, err) < 0) {
        close(gop[1]);
        return -1;
    }
    /* Out of the creator's cgroups (its systemd scope, its job), so that
     * killing those leaves the sandbox: init (what the sandbox's controllers
     * do not hold) and the supervisor itself. Cgroup moves wait for an RCU
     * grace period, once for a batch: init builds the sandbox meanwhile. */
    if (!r->userns) {
        e2b_cgroup_leave_creator(pid, false);
        e2b_cgroup_leave_creator(supervisor, true);
    }
    if (write(gop[1], "g", 1) != 1) {
        close(gop[1]);
        return e2b_error_sys(err, errno, "the sandbox's init died");
    }
    close(gop[1]);
    if (r->internet) {
        char c;
        int slirp_exit = -1;
        if (read(netp[0], &c, 1) != 1)
            return e2b_error_set(err, E2B_ERR_GENERIC, "the sandbox's init died");
        pid_t slirp_pid = 0;
        if (e2b_slirp_start(id, pid, r->userns, &slirp_exit, &slirp_pid, err) < 0) {
            close(netp[0]);
            return -1;
        }
        (void)!write(netp[0], "g", 1);
        close(netp[0]);
        (void)slirp_exit; /* stays open: slirp4netns lives until the supervisor exits */
        r->helper_pid = slirp_pid;
    }
    return 0;
}
