/* volume-store.c - see volume-store.h */
#include "volume-store.h"
#include "config.h"
#include "envd-crypto.h"
#include "ext4.h"
#include "fsutil.h"
#include "sandbox-state.h"
#include "strbuf.h"
#include "template-store.h"

#include <ctype.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define QUOTA_MAX_MB (1024LL * 1024)
#define NAME_MAX_LEN 64
#define RELEASE_WAIT_MS 3000 /* for a kernel to let go of an image (a loop device, a QEMU) */

/* ---- the store --------------------------------------------------------------- */

static char *volumes_dir(void)
{
    _cleanup_free_ char *data = e2b_data_dir();
    return e2b_path_join(data, "volumes");
}

static int lock_file(const char *path, int how, struct e2b_error **err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot open '%s'", path);
    while (flock(fd, how) < 0)
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return e2b_error_sys(err, e, "cannot lock '%s'", path);
        }
    return fd;
}

static int lock_store(int how, struct e2b_error **err)
{
    _cleanup_free_ char *root = volumes_dir();
    if (e2b_mkdir_p(root, 0700, err) < 0)
        return -1;
    _cleanup_free_ char *p = e2b_path_join(root, ".lock");
    return lock_file(p, how, err);
}

static bool name_valid(const char *n)
{
    size_t len = strlen(n);
    if (!len || len > NAME_MAX_LEN || !isalnum((unsigned char)n[0]))
        return false;
    for (const char *p = n; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return false;
    return true;
}

static bool id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n != 20)
        return false;
    for (const char *p = id; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p))
            return false;
    return true;
}

static int load_meta(const char *dir, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *p = e2b_path_join(dir, "volume.json");
    return e2b_json_load_file(p, ret, err);
}

/* By ID, else by name: its directory and volume.json. */
static int find(const char *id_or_name, char **ret_dir, json_t **ret_meta, struct e2b_error **err)
{
    _cleanup_free_ char *root = volumes_dir();
    if (id_valid(id_or_name)) {
        _cleanup_free_ char *dir = e2b_path_join(root, id_or_name);
        json_t *m = NULL;
        if (access(dir, F_OK) == 0 && load_meta(dir, &m, NULL) == 0) {
            *ret_dir = TAKE_PTR(dir);
            *ret_meta = m;
            return 0;
        }
    }
    _cleanup_closedir_ DIR *d = opendir(root);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!id_valid(de->d_name))
            continue;
        _cleanup_free_ char *dir = e2b_path_join(root, de->d_name);
        json_t *m = NULL;
        if (load_meta(dir, &m, NULL) < 0)
            continue;
        const char *name = e2b_json_str(m, "name");
        if (name && STREQ(name, id_or_name)) {
            *ret_dir = TAKE_PTR(dir);
            *ret_meta = m;
            return 0;
        }
        json_decref(m);
    }
    return e2b_error_set(err, E2B_ERR_NOT_FOUND, "volume '%s' not found", id_or_name);
}

static int by_created(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    const char *cx = e2b_json_str(x, "createdAt"), *cy = e2b_json_str(y, "createdAt");
    int c = strcmp(cx ? cx : "", cy ? cy : "");
    return c ? c : strcmp(e2b_json_str(x, "volumeID"), e2b_json_str(y, "volumeID"));
}

int e2b_volume_list(json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *root = volumes_dir();
    _cleanup_closedir_ DIR *d = opendir(root);
    json_t **all = NULL;
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!id_valid(de->d_name))
            continue;
        _cleanup_free_ char *dir = e2b_path_join(root, de->d_name);
        json_t *m = NULL;
        if (load_meta(dir, &m, NULL) == 0 && e2b_json_str(m, "volumeID") && e2b_json_str(m, "name")) {
            all = xrealloc(all, (n + 1) * sizeof(*all));
            all[n++] = m;
        } else {
            json_decref(m);
        }
    }
    if (n)
        qsort(all, n, sizeof(*all), by_created);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, all[i]);
    free(all);
    *ret = list;
    return 0;
}

int e2b_volume_get(const char *id_or_name, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *dir = NULL;
    return find(id_or_name, &dir, ret, err);
}

/* ---- mounting ------------------------------------------------------------------- */

static bool is_mounted(const char *dir, const char *fs)
{
    struct stat a, b;
    return stat(dir, &a) == 0 && stat(fs, &b) == 0 && a.st_dev != b.st_dev;
}

/* The image on a free loop device (autoclear: detached once unmounted), mounted on fs. */
static int mount_image(const char *image, const char *fs, struct e2b_error **err)
{
    _cleanup_close_ int img = open(image, O_RDWR | O_CLOEXEC);
    if (img < 0)
        return e2b_error_sys(err, errno, "cannot open the volume image '%s'", image);
    _cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0)
        return e2b_error_sys(err, errno, "cannot open /dev/loop-control for the volume");
    for (int tries = 0;; tries++) {
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (n < 0)
            return e2b_error_sys(err, errno, "no free loop device for the volume");
        char dev[32];
        snprintf(dev, sizeof(dev), "/dev/loop%d", n);
        _cleanup_close_ int lfd = open(dev, O_RDWR | O_CLOEXEC);
        if (lfd < 0)
            return e2b_error_sys(err, errno, "cannot open %s", dev);
        /* direct I/O to the image: its pages are cached once (the volume's
         * file system's), not twice, and a write is as fast as one to the
         * disk's own file system; a backing file system without it (tmpfs)
         * goes through the cache */
        struct loop_config cfg = {.fd = (uint32_t)img, .info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO};
        snprintf((char *)cfg.info.lo_file_name, LO_NAME_SIZE, "%s", image);
        int c = ioctl(lfd, LOOP_CONFIGURE, &cfg);
        if (c < 0 && errno == EINVAL) {
            cfg.info.lo_flags &= ~(uint32_t)LO_FLAGS_DIRECT_IO;
            c = ioctl(lfd, LOOP_CONFIGURE, &cfg);
        }
        if (c == 0) {
            if (mount(dev, fs, "ext4", MS_NOSUID | MS_NODEV, NULL) < 0)
                return e2b_error_sys(err, errno, "cannot mount the volume image '%s'", image);
            return 0;
        }
        if (errno != EBUSY || tries >= 100)
            return e2b_error_sys(err, errno, "cannot attach the volume image '%s' to %s", image, dev);
    }
}

/* Does any loop device of this machine have the image as its backing file? */
static bool on_a_loop_device(const char *image)
{
    _cleanup_free_ char *want = realpath(image, NULL);
    _cleanup_closedir_ DIR *d = opendir("/sys/block");
    struct dirent *de;
    while (want && d && (de = readdir(d))) {
        if (!e2b_str_has_prefix(de->d_name, "loop"))
            continue;
        _cleanup_free_ char *p = xasprintf("/sys/block/%s/loop/backing_file", de->d_name);
        _cleanup_free_ char *v = NULL;
        if (e2b_read_file(p, &v, NULL, NULL) < 0)
            continue;
        v[strcspn(v, "\n")] = '\0';
        if (STREQ(v, want))
            return true;
    }
    return false;
}

/* Does a process hold a lock on the image (QEMU locks the images it has
 * open, with OFD locks)? */
static bool locked_by_qemu(const char *image)
{
    _cleanup_close_ int fd = open(image, O_RDONLY | O_CLOEXEC);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    return fd >= 0 && fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

/* Wait (bounded) until no QEMU has the image open, and with loop too no
 * loop device backs it: 0, or -1 when something still does. */
static int wait_released(const char *image, bool loop)
{
    for (int waited = 0;; waited += 20) {
        if (!locked_by_qemu(image) && !(loop && on_a_loop_device(image)))
            return 0;
        if (waited >= RELEASE_WAIT_MS)
            return -1;
        usleep(20000);
    }
}

/* fs/ holds the volume's files: mounted if its storage is an image. */
static int attach(const char *dir, const json_t *meta, struct e2b_error **err)
{
    _cleanup_free_ char *fs = e2b_path_join(dir, "fs");
    const char *storage = e2b_json_str(meta, "storage");
    if (!storage || !STREQ(storage, "ext4") || is_mounted(dir, fs))
        return 0;
    _cleanup_free_ char *lp = e2b_path_join(dir, "mount.lock");
    _cleanup_close_ int lk = lock_file(lp, LOCK_EX, err);
    if (lk < 0)
        return -1;
    if (is_mounted(dir, fs)) /* another process did meanwhile */
        return 0;
    _cleanup_free_ char *img = e2b_path_join(dir, "volume.img");
    /* a VM that had it may be on its way out: its QEMU lets go first */
    if (wait_released(img, false) < 0)
        return e2b_error_set(err, E2B_ERR_EXISTS, "volume '%s' is still open in a VM's QEMU",
                             e2b_json_str(meta, "name"));
    if (mount_image(img, fs, err) < 0)
        return -1;
    /* a new file system: open to every user of a sandbox, no lost+found */
    _cleanup_free_ char *lf = e2b_path_join(fs, "lost+found");
    rmdir(lf);
    if (!e2b_json_bool(meta, "initialised", false)) {
        chmod(fs, 0777);
        _cleanup_json_ json_t *m = json_deep_copy(meta);
        json_object_set_new(m, "initialised", json_true());
        _cleanup_free_ char *mp = e2b_path_join(dir, "volume.json");
        e2b_json_save_file(mp, m, 0600, NULL);
    }
    return 0;
}

int e2b_volume_create(const char *name, long long quota_mb, json_t **ret, struct e2b_error **err)
{
    if (!name || !name_valid(name))
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "volume name '%s' must be 1 to %d of [A-Za-z0-9._-], starting with a letter or digit",
                             name ? name : "", NAME_MAX_LEN);
    if (quota_mb < 0 || quota_mb > QUOTA_MAX_MB || (quota_mb && quota_mb < 8))
        return e2b_error_set(err, E2B_ERR_INVALID, "a volume's quota is 8 MiB to %lld MiB", QUOTA_MAX_MB);
    if (!quota_mb)
        quota_mb = E2B_VOLUME_QUOTA_MB;
    _cleanup_close_ int lk = lock_store(LOCK_EX, err);
    if (lk < 0)
        return -1;
    _cleanup_free_ char *dir0 = NULL;
    json_t *other = NULL;
    if (find(name, &dir0, &other, NULL) == 0) {
        json_decref(other);
        return e2b_error_set(err, E2B_ERR_EXISTS, "a volume named '%s' exists", name);
    }
    _cleanup_free_ char *root = volumes_dir();
    _cleanup_free_ char *id = e2b_random_id();
    _cleanup_free_ char *t1 = e2b_random_id();
    _cleanup_free_ char *t2 = e2b_random_id();
    _cleanup_free_ char *token = xasprintf("%s%s", t1, t2);
    _cleanup_free_ char *now = e2b_rfc3339(e2b_wall_ms());
    /* made under a temporary name, renamed into place when complete */
    _cleanup_free_ char *tmp = xasprintf("%s/.new-%s", root, id);
    _cleanup_free_ char *dir = e2b_path_join(root, id);
    _cleanup_free_ char *fs = e2b_path_join(tmp, "fs");
    if (e2b_mkdir_p(fs, 0700, err) < 0)
        return -1;
    bool image = geteuid() == 0;
    json_t *m = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "volumeID", id, "name", name, "token", token,
                          "quotaMB", (json_int_t)quota_mb, "createdAt", now, "storage", image ? "ext4" : "dir");
    if (!image) {
        chmod(fs, 0777);
        json_object_set_new(m, "limits", json_string("the quota holds only for the content API "
                                                     "(unprivileged: no loop device for a file system "
                                                     "of the volume's own)"));
    }
    _cleanup_free_ char *img = e2b_path_join(tmp, "volume.img");
    _cleanup_free_ char *mp = e2b_path_join(tmp, "volume.json");
    if ((image && (e2b_ext4_blank(img, (uint64_t)quota_mb, err) < 0 || chmod(img, 0600) < 0)) ||
        e2b_json_save_file(mp, m, 0600, err) < 0 || rename(tmp, dir) < 0) {
        if (err && !*err)
            e2b_error_sys(err, errno, "cannot create volume '%s'", name);
        e2b_rm_rf(tmp, NULL);
        json_decref(m);
        return -1;
    }
    *ret = m;
    return 0;
}

int e2b_volume_delete(const char *id_or_name,
                      int (*in_use)(const char *volume_id, void *ud, struct e2b_error **err), void *ud,
                      struct e2b_error **err)
{
    _cleanup_close_ int lk = lock_store(LOCK_EX, err);
    if (lk < 0)
        return -1;
    _cleanup_free_ char *dir = NULL;
    _cleanup_json_ json_t *m = NULL;
    if (find(id_or_name, &dir, &m, err) < 0)
        return -1;
    _cleanup_free_ char *vlp = e2b_path_join(dir, "lock");
    _cleanup_close_ int vl = lock_file(vlp, LOCK_EX, err);
    if (vl < 0 || (in_use && in_use(e2b_json_str(m, "volumeID"), ud, err) < 0))
        return -1;
    _cleanup_free_ char *root = volumes_dir();
    _cleanup_free_ char *gone = xasprintf("%s/.deleted-%s", root, e2b_json_str(m, "volumeID"));
    if (rename(dir, gone) < 0)
        return e2b_error_sys(err, errno, "cannot delete volume '%s'", id_or_name);
    _cleanup_free_ char *fs = e2b_path_join(gone, "fs");
    if (is_mounted(gone, fs))
        umount2(fs, MNT_DETACH);
    return e2b_rm_rf(gone, err);
}

/* ---- a VM's claim ------------------------------------------------------------ */

/* The sandbox whose VM has the volume's image (its "holder" file), while
 * that sandbox exists (running, paused, or saved to disk), else NULL. */
static char *vm_holder(const char *dir)
{
    _cleanup_free_ char *p = e2b_path_join(dir, "holder");
    _cleanup_free_ char *id = NULL;
    if (e2b_read_file_untrusted(p, 64, &id, NULL, NULL) < 0)
        return NULL;
    id[strcspn(id, "\n")] = '\0';
    if (!e2b_sandbox_id_valid(id) || e2b_sandbox_load(id, NULL, NULL, NULL) < 0)
        return NULL;
    return TAKE_PTR(id);
}

int e2b_volume_claim(const char *id_or_name, const char *holder,
                     int (*in_use)(const char *volume_id, void *ud, struct e2b_error **err),
                     void *ud, struct e2b_volume *v, struct e2b_error **err)
{
    *v = (struct e2b_volume){ .root_fd = -1, .lock_fd = -1 };
    _cleanup_free_ char *vlp = NULL, *who = NULL, *fs = NULL, *hp = NULL;
    if (find(id_or_name, &v->dir, &v->meta, err) < 0)
        return -1;
    const char *name = e2b_json_str(v->meta, "name") ?: id_or_name;
    const char *storage = e2b_json_str(v->meta, "storage");
    if (!storage || !STREQ(storage, "ext4")) {
        e2b_volume_close(v);
        return e2b_error_set(
            err, E2B_ERR_UNSUPPORTED,
            "volume '%s' is a directory of this machine (made without root, no image of its "
            "own): a VM cannot mount it; use --runtime ns",
            name);
    }
    vlp = e2b_path_join(v->dir, "lock");
    v->lock_fd = lock_file(vlp, LOCK_EX, err);
    if (v->lock_fd >= 0 && access(v->dir, F_OK) < 0) {
        e2b_volume_close(v);
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "volume '%s' not found", id_or_name);
    }
    if (v->lock_fd < 0)
        goto fail;
    v->image = e2b_path_join(v->dir, "volume.img");
    who = vm_holder(v->dir);
    if (who && STREQ(who, holder))
        return 0; /* its own again: a resume */
    if (who) {
        e2b_error_set(
            err, E2B_ERR_EXISTS,
            "volume '%s' is in use by sandbox %s, a VM (a volume is one kernel's at a time: kill "
            "that sandbox first)",
            name, who);
        goto fail;
    }
    if (in_use && in_use(e2b_json_str(v->meta, "volumeID"), ud, err) < 0) {
        e2b_error_wrap(err, "a VM needs volume '%s' alone", name);
        goto fail;
    }
    /* made ready once on this machine (its root open to the sandbox's
     * users), then let go of: from here only the VM's kernel mounts it */
    fs = e2b_path_join(v->dir, "fs");
    if (attach(v->dir, v->meta, err) < 0)
        goto fail;
    if (is_mounted(v->dir, fs) && umount2(fs, UMOUNT_NOFOLLOW) < 0) {
        e2b_error_sys(err, errno, "volume '%s' is busy on this machine", name);
        if (errno == EBUSY)
            (*err)->code = E2B_ERR_EXISTS;
        goto fail;
    }
    if (wait_released(v->image, true) < 0) {
        e2b_error_set(err, E2B_ERR_EXISTS,
                      "volume '%s' is still mounted on this machine (a sandbox that just ended?)",
                      name);
        goto fail;
    }
    hp = e2b_path_join(v->dir, "holder");
    if (e2b_write_file_atomic(hp, holder, strlen(holder), 0600, err) < 0)
        goto fail;
    return 0;
fail:
    e2b_volume_close(v);
    return -1;
}

void e2b_volume_unclaim(struct e2b_volume *v, const char *holder)
{
    _cleanup_free_ char *hp = v->dir ? e2b_path_join(v->dir, "holder") : NULL;
    _cleanup_free_ char *who = NULL;
    if (hp && e2b_read_file_untrusted(hp, 64, &who, NULL, NULL) == 0 && STREQ(who, holder))
        unlink(hp);
}

int e2b_volume_open(const char *id_or_name, struct e2b_volume *v, struct e2b_error **err)
{
    *v = (struct e2b_volume){.root_fd = -1, .lock_fd = -1};
    if (find(id_or_name, &v->dir, &v->meta, err) < 0)
        return -1;
    _cleanup_free_ char *vlp = e2b_path_join(v->dir, "lock");
    v->lock_fd = lock_file(vlp, LOCK_SH, err);
    /* deleted between the find and the lock: it is gone */
    if (v->lock_fd >= 0 && access(v->dir, F_OK) < 0) {
        e2b_volume_close(v);
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "volume '%s' not found", id_or_name);
    }
    _cleanup_free_ char *who = v->lock_fd >= 0 ? vm_holder(v->dir) : NULL;
    if (who) {
        e2b_error_set(
            err, E2B_ERR_EXISTS,
            "volume '%s' is in use by sandbox %s, a VM: its files are that VM's until the "
            "sandbox ends (a volume is one kernel's at a time)",
            e2b_json_str(v->meta, "name") ?: id_or_name, who);
        e2b_volume_close(v);
        return -1;
    }
    if (v->lock_fd < 0 || attach(v->dir, v->meta, err) < 0) {
        e2b_volume_close(v);
        return -1;
    }
    v->root = e2b_path_join(v->dir, "fs");
    v->root_fd = open(v->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (v->root_fd < 0) {
        e2b_error_sys(err, errno, "cannot open volume '%s'", id_or_name);
        e2b_volume_close(v);
        return -1;
    }
    v->quota = (uint64_t)e2b_json_int(v->meta, "quotaMB", E2B_VOLUME_QUOTA_MB) << 20;
    const char *storage = e2b_json_str(v->meta, "storage");
    v->api_quota = !storage || !STREQ(storage, "ext4");
    return 0;
}

void e2b_volume_close(struct e2b_volume *v)
{
    json_decref(v->meta);
    if (v->root_fd >= 0)
        close(v->root_fd);
    if (v->lock_fd >= 0)
        close(v->lock_fd);
    e2b_free_many(&v->dir, &v->root, &v->image);
    *v = (struct e2b_volume){.root_fd = -1, .lock_fd = -1};
}

bool e2b_volume_token_ok(const struct e2b_volume *v, const char *token)
{
    const char *want = e2b_json_str(v->meta, "token");
    return want && token && e2b_consttime_streq(want, token);
}

/* ---- paths ---------------------------------------------------------------------- */

/* An API path to one relative to the root ("" for the root itself). */
static int rel_path(const char *path, char **ret, struct e2b_error **err)
{
    struct strbuf out = STRBUF_INIT;
    strbuf_addstr(&out, "");
    const char *p = path ? path : "";
    while (*p) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (!n)
            break;
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            strbuf_release(&out);
            return e2b_error_set(err, E2B_ERR_PERMISSION, "path '%s' goes up ('..') out of the volume", path);
        }
        if (!(n == 1 && p[0] == '.')) {
            if (out.len)
                strbuf_addch(&out, '/');
            strbuf_add(&out, p, n);
        }
        p += n;
    }
    for (size_t i = 0; i < out.len; i++)
        if ((unsigned char)out.buf[i] < 0x20) {
            strbuf_release(&out);
            return e2b_error_set(err, E2B_ERR_INVALID, "path '%s' has a control character", path);
        }
    *ret = strbuf_detach(&out, NULL);
    return 0;
}

static int open_beneath(int root_fd, const char *rel, int flags, mode_t mode)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
    };
    return (int)syscall(SYS_openat2, root_fd, *rel ? rel : ".", &how, sizeof(how));
}

static int path_error(int e, const char *path, struct e2b_error **err)
{
    switch (e) {
    case ENOENT:
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "path '%s' not found in the volume", path);
    case EXDEV:
    case ELOOP:
        return e2b_error_set(err, E2B_ERR_PERMISSION, "path '%s' leads out of the volume (a symlink)", path);
    case ENOTDIR:
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "path '%s': a part of it is not a directory", path);
    case ENOSPC:
    case EDQUOT:
        return e2b_error_set(err, E2B_ERR_NOSPACE, "the volume is full (its quota)");
    default:
        return e2b_error_sys(err, e, "cannot use '%s' in the volume", path);
    }
}

/* The directory holding rel's last component, and that component. */
static int open_parent(int root_fd, const char *rel, const char *path, int *ret_fd, const char **ret_name,
                       struct e2b_error **err)
{
    const char *slash = strrchr(rel, '/');
    _cleanup_free_ char *parent = slash ? xstrndup(rel, (size_t)(slash - rel)) : xstrdup("");
    int fd = open_beneath(root_fd, parent, O_PATH | O_DIRECTORY, 0);
    if (fd < 0)
        return path_error(errno, path, err);
    *ret_fd = fd;
    *ret_name = slash ? slash + 1 : rel;
    return 0;
}

static json_t *entry_json(const char *name, const char *rel, const struct stat *st, const char *target)
{
    const char *type = S_ISREG(st->st_mode)   ? "file"
                       : S_ISDIR(st->st_mode) ? "directory"
                       : S_ISLNK(st->st_mode) ? "symlink"
                                              : "unknown";
    _cleanup_free_ char *at = e2b_rfc3339((int64_t)st->st_atim.tv_sec * 1000 + st->st_atim.tv_nsec / 1000000);
    _cleanup_free_ char *mt = e2b_rfc3339((int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000);
    _cleanup_free_ char *ct = e2b_rfc3339((int64_t)st->st_ctim.tv_sec * 1000 + st->st_ctim.tv_nsec / 1000000);
    _cleanup_free_ char *p = xasprintf("/%s", rel);
    json_t *e = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:s}", "name", *name ? name : "/",
                          "path", p, "type", type, "size", (json_int_t)st->st_size, "mode",
                          (json_int_t)(st->st_mode & 07777), "uid", (json_int_t)st->st_uid, "gid",
                          (json_int_t)st->st_gid, "atime", at, "mtime", mt, "ctime", ct);
    if (target)
        json_object_set_new(e, "target", e2b_json_string_lossy(target));
    return e;
}

/* The entry of name in dir_fd, not following a final symlink. */
static int stat_at(int dir_fd, const char *name, const char *rel, const char *path, json_t **ret,
                   struct e2b_error **err)
{
    struct stat st;
    if (fstatat(dir_fd, *name ? name : "", &st, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH)) < 0)
        return path_error(errno, path, err);
    char target[4096];
    ssize_t tn = S_ISLNK(st.st_mode) ? readlinkat(dir_fd, name, target, sizeof(target) - 1) : -1;
    if (tn >= 0)
        target[tn] = '\0';
    *ret = entry_json(name, rel, &st, tn >= 0 ? target : NULL);
    return 0;
}

int e2b_volume_stat(const struct e2b_volume *v, const char *path, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *rel = NULL;
    if (rel_path(path, &rel, err) < 0)
        return -1;
    if (!*rel)
        return stat_at(v->root_fd, "", "", path, ret, err);
    _cleanup_close_ int pfd = -1;
    const char *name;
    if (open_parent(v->root_fd, rel, path, &pfd, &name, err) < 0)
        return -1;
    return stat_at(pfd, name, rel, path, ret, err);
}

static int list_into(int root_fd, const char *rel, const char *path, int depth, json_t *out,
                     struct e2b_error **err)
{
    int fd = open_beneath(root_fd, rel, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return path_error(errno, path, err);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return e2b_error_sys(err, errno, "cannot list '%s'", path);
    }
    struct dirent *de;
    int r = 0;
    while (r == 0 && (de = readdir(d))) {
        if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
            continue;
        _cleanup_free_ char *crel = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
        json_t *e = NULL;
        if (stat_at(dirfd(d), de->d_name, crel, path, &e, NULL) < 0)
            continue; /* gone meanwhile */
        bool dir = STREQ(e2b_json_str(e, "type"), "directory");
        json_array_append_new(out, e);
        if (dir && depth > 1)
            r = list_into(root_fd, crel, path, depth - 1, out, err);
    }
    closedir(d);
    return r;
}

int e2b_volume_list_dir(const struct e2b_volume *v, const char *path, int depth, json_t **ret,
                        struct e2b_error **err)
{
    _cleanup_free_ char *rel = NULL;
    if (rel_path(path, &rel, err) < 0)
        return -1;
    json_t *out = json_array();
    if (list_into(v->root_fd, rel, path, depth < 1 ? 1 : depth > 32 ? 32 : depth, out, err) < 0) {
        json_decref(out);
        return -1;
    }
    *ret = out;
    return 0;
}

static int apply_attrs(int dir_fd, const char *name, const struct e2b_volume_attrs *a, bool is_new,
                       bool is_dir, const char *path, struct e2b_error **err)
{
    long long uid = a ? a->uid : -1, gid = a ? a->gid : -1, mode = a ? a->mode : -1;
    if (is_new && mode < 0)
        mode = is_dir ? 0755 : 0644;
    if ((uid >= 0 || gid >= 0) &&
        fchownat(dir_fd, name, uid >= 0 ? (uid_t)uid : (uid_t)-1, gid >= 0 ? (gid_t)gid : (gid_t)-1,
                 AT_SYMLINK_NOFOLLOW) < 0)
        return e2b_error_sys(err, errno, "cannot set the owner of '%s'", path);
    if (mode >= 0 && fchmodat(dir_fd, name, (mode_t)(mode & 07777), 0) < 0 && errno != EOPNOTSUPP)
        return e2b_error_sys(err, errno, "cannot set the mode of '%s'", path);
    return 0;
}

static int check_attrs(const struct e2b_volume_attrs *a, struct e2b_error **err)
{
    if (a && ((a->mode >= 0 && a->mode > 07777) || a->uid > 0xfffffffeLL || a->gid > 0xfffffffeLL))
        return e2b_error_set(err, E2B_ERR_INVALID, "mode is at most 07777, uid and gid at most 4294967294");
    return 0;
}

/* mkdir -p of rel below the root, each step beneath it. */
static int make_parents(int root_fd, const char *rel, const char *path, const struct e2b_volume_attrs *a,
                        struct e2b_error **err)
{
    _cleanup_free_ char *copy = xstrdup(rel);
    for (char *s = strchr(copy, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        _cleanup_close_ int pfd = -1;
        const char *name;
        if (open_parent(root_fd, copy, path, &pfd, &name, err) < 0)
            return -1;
        if (mkdirat(pfd, name, 0755) == 0) {
            if (apply_attrs(pfd, name, a, true, true, path, err) < 0)
                return -1;
        } else if (errno != EEXIST) {
            return path_error(errno, path, err);
        }
        *s = '/';
    }
    return 0;
}

int e2b_volume_mkdir(const struct e2b_volume *v, const char *path, const struct e2b_volume_attrs *a,
                     bool parents, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *rel = NULL;
    if (check_attrs(a, err) < 0 || rel_path(path, &rel, err) < 0)
        return -1;
    if (!*rel)
        return e2b_error_set(err, E2B_ERR_EXISTS, "the volume's root exists");
    if (parents && make_parents(v->root_fd, rel, path, a, err) < 0)
        return -1;
    _cleanup_close_ int pfd = -1;
    const char *name;
    if (open_parent(v->root_fd, rel, path, &pfd, &name, err) < 0)
        return -1;
    if (mkdirat(pfd, name, 0755) < 0) {
        struct stat st;
        if (errno == EEXIST && parents && fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(st.st_mode))
            return stat_at(pfd, name, rel, path, ret, err);
        if (errno == EEXIST)
            return e2b_error_set(err, E2B_ERR_EXISTS, "'%s' exists in the volume", path);
        return path_error(errno, path, err);
    }
    if (apply_attrs(pfd, name, a, true, true, path, err) < 0)
        return -1;
    return stat_at(pfd, name, rel, path, ret, err);
}

int e2b_volume_set_attrs(const struct e2b_volume *v, const char *path, const struct e2b_volume_attrs *a,
                         json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *rel = NULL;
    if (check_attrs(a, err) < 0 || rel_path(path, &rel, err) < 0)
        return -1;
    _cleanup_close_ int pfd = -1;
    const char *name = "";
    if (*rel && open_parent(v->root_fd, rel, path, &pfd, &name, err) < 0)
        return -1;
    int dfd = *rel ? pfd : v->root_fd;
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH)) < 0)
        return path_error(errno, path, err);
    if (!*name) { /* the root: through a real fd */
        _cleanup_close_ int rfd = open_beneath(v->root_fd, "", O_RDONLY | O_DIRECTORY, 0);
        if (rfd < 0 || (a->uid >= 0 || a->gid >= 0 ? fchown(rfd, a->uid >= 0 ? (uid_t)a->uid : (uid_t)-1,
                                                            a->gid >= 0 ? (gid_t)a->gid : (gid_t)-1)
                                                   : 0) < 0 ||
            (a->mode >= 0 && fchmod(rfd, (mode_t)a->mode) < 0))
            return e2b_error_sys(err, errno, "cannot change the volume's root");
        return stat_at(v->root_fd, "", "", path, ret, err);
    }
    struct e2b_volume_attrs b = *a;
    if (S_ISLNK(st.st_mode))
        b.mode = -1; /* a symlink has no mode of its own */
    if (apply_attrs(dfd, name, &b, false, false, path, err) < 0)
        return -1;
    return stat_at(dfd, name, rel, path, ret, err);
}

/* name in dir_fd and all below, never following a symlink. */
static int remove_at(int dir_fd, const char *name, const char *path, int depth, struct e2b_error **err)
{
    if (unlinkat(dir_fd, name, 0) == 0)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return path_error(errno, path, err);
    if (depth > 256)
        return e2b_error_set(err, E2B_ERR_INVALID, "'%s' is nested too deep to remove", path);
    int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return path_error(errno, path, err);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return e2b_error_sys(err, errno, "cannot remove '%s'", path);
    }
    struct dirent *de;
    int r = 0;
    while (r == 0 && (de = readdir(d)))
        if (!STREQ(de->d_name, ".") && !STREQ(de->d_name, ".."))
            r = remove_at(dirfd(d), de->d_name, path, depth + 1, err);
    closedir(d);
    if (r == 0 && unlinkat(dir_fd, name, AT_REMOVEDIR) < 0)
        return path_error(errno, path, err);
    return r;
}

int e2b_volume_remove(const struct e2b_volume *v, const char *path, struct e2b_error **err)
{
    _cleanup_free_ char *rel = NULL;
    if (rel_path(path, &rel, err) < 0)
        return -1;
    if (!*rel)
        return e2b_error_set(err, E2B_ERR_INVALID, "the volume's root cannot be removed (delete the volume)");
    _cleanup_close_ int pfd = -1;
    const char *name;
    if (open_parent(v->root_fd, rel, path, &pfd, &name, err) < 0)
        return -1;
    return remove_at(pfd, name, path, 0, err);
}

int e2b_volume_open_read(const struct e2b_volume *v, const char *path, int *ret_fd, uint64_t *ret_size,
                         struct e2b_error **err)
{
    _cleanup_free_ char *rel = NULL;
    if (rel_path(path, &rel, err) < 0)
        return -1;
    int fd = open_beneath(v->root_fd, rel, O_RDONLY, 0);
    if (fd < 0)
        return path_error(errno, path, err);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return e2b_error_set(err, E2B_ERR_INVALID, "'%s' is not a file", path);
    }
    *ret_fd = fd;
    *ret_size = (uint64_t)st.st_size;
    return 0;
}

/* ---- writing --------------------------------------------------------------------- */

int e2b_volume_write_begin(const struct e2b_volume *v, const char *path, const struct e2b_volume_attrs *a,
                           struct e2b_volume_writer *w, struct e2b_error **err)
{
    *w = (struct e2b_volume_writer){.dir_fd = -1, .fd = -1, .room = UINT64_MAX};
    _cleanup_free_ char *rel = NULL;
    if (check_attrs(a, err) < 0 || rel_path(path, &rel, err) < 0)
        return -1;
    if (!*rel)
        return e2b_error_set(err, E2B_ERR_INVALID, "'%s' is the volume's root, not a file", path);
    if (make_parents(v->root_fd, rel, path, NULL, err) < 0)
        return -1;
    const char *name;
    if (open_parent(v->root_fd, rel, path, &w->dir_fd, &name, err) < 0)
        return -1;
    struct stat st;
    bool exists = fstatat(w->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        close(w->dir_fd);
        w->dir_fd = -1;
        return e2b_error_set(err, E2B_ERR_EXISTS, "'%s' is a directory in the volume", path);
    }
    /* a symlink: replaced by the file, and refused if it leads out (a
     * writer must not learn that it could have been followed) */
    if (exists && S_ISLNK(st.st_mode)) {
        int fd = open_beneath(v->root_fd, rel, O_PATH, 0);
        int e = errno;
        if (fd >= 0)
            close(fd);
        else if (e == EXDEV || e == ELOOP) {
            close(w->dir_fd);
            w->dir_fd = -1;
            return path_error(e, path, err);
        }
    }
    if (v->api_quota) {
        struct e2b_tree_usage u = {0};
        e2b_tree_usage(v->root, &u, NULL);
        w->room = u.bytes < v->quota ? v->quota - u.bytes : 0;
    }
    w->name = xstrdup(name);
    w->path = xstrdup(path);
    w->attrs = a ? *a : E2B_VOLUME_ATTRS_NONE;
    for (int i = 0; i < 8 && w->fd < 0; i++) {
        _cleanup_free_ char *r = e2b_random_id();
        free(w->tmp);
        w->tmp = xasprintf(".%s.e2b-%s", name, r);
        w->fd = openat(w->dir_fd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    if (w->fd < 0) {
        int e = errno;
        e2b_volume_write_abort(w);
        return path_error(e, path, err);
    }
    return 0;
}

int e2b_volume_write(struct e2b_volume_writer *w, const void *data, size_t len, struct e2b_error **err)
{
    if (len > w->room)
        return e2b_error_set(err, E2B_ERR_NOSPACE, "the volume is full (its quota)");
    if (w->room != UINT64_MAX)
        w->room -= len;
    if (e2b_write_all(w->fd, data, len) < 0)
        return path_error(errno, w->path, err);
    return 0;
}

static int commit(struct e2b_volume_writer *w, json_t **ret, struct e2b_error **err)
{
    if (fsync(w->fd) < 0)
        return path_error(errno, w->path, err);
    close(w->fd);
    w->fd = -1;
    if (apply_attrs(w->dir_fd, w->tmp, &w->attrs, true, false, w->path, err) < 0)
        return -1;
    if (renameat(w->dir_fd, w->tmp, w->dir_fd, w->name) < 0)
        return path_error(errno, w->path, err);
    free(w->tmp);
    w->tmp = NULL;
    _cleanup_free_ char *rel = NULL;
    if (rel_path(w->path, &rel, err) < 0)
        return -1;
    return stat_at(w->dir_fd, w->name, rel, w->path, ret, err);
}

int e2b_volume_write_commit(struct e2b_volume_writer *w, const struct e2b_volume *v, json_t **ret,
                            struct e2b_error **err)
{
    int r = commit(w, ret, err);
    e2b_volume_write_abort(w);
    return r;
}

void e2b_volume_write_abort(struct e2b_volume_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp && w->dir_fd >= 0)
        unlinkat(w->dir_fd, w->tmp, 0);
    if (w->dir_fd >= 0)
        close(w->dir_fd);
    e2b_free_many(&w->name, &w->tmp, &w->path);
    w->fd = w->dir_fd = -1;
}
