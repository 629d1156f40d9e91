/* vm-kernel.c - see vm-kernel.h */
#include "vm-kernel.h"
#include "config.h"
#include "envd-crypto.h"
#include "envd-vm.h"
#include "fsutil.h"
#include "strbuf.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

/* The modules the guest loads: at boot, and for networking. */
static const char *const boot_modules[] = { "virtio_mmio", "virtio_blk", "virtio_console",
                                            "overlay", NULL };
static const char *const net_modules[] = { "virtio_net", NULL };

#define MISSING_HINT "install linux-image-cloud-amd64 or pass --kernel"

void e2b_vm_kernel_release(struct e2b_vm_kernel *k)
{
    free(k->path);
    free(k->version);
    free(k->modules);
    *k = (struct e2b_vm_kernel){ 0 };
}

/* A bzImage says its release in its setup header: "HdrS" at 0x202, the
 * offset of the version string (less 0x200) at 0x20e. */
static char *bzimage_version(const char *path)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    unsigned char h[0x210];
    if (fd < 0 || pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
        memcmp(h + 0x202, "HdrS", 4) != 0)
        return NULL;
    unsigned off = (unsigned)h[0x20e] | (unsigned)h[0x20f] << 8;
    char v[256] = { 0 };
    if (off == 0 || pread(fd, v, sizeof(v) - 1, (off_t)off + 0x200) <= 0)
        return NULL;
    v[strcspn(v, " \n")] = '\0';
    return *v ? xstrdup(v) : NULL;
}

static int by_version(const void *a, const void *b)
{
    return strverscmp(*(const char *const *)a, *(const char *const *)b);
}

/* The newest /boot/vmlinuz-<version> matching pattern, or NULL. */
static char *newest(const char *pattern)
{
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0)
        return NULL;
    qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), by_version);
    char *r = g.gl_pathc ? xstrdup(g.gl_pathv[g.gl_pathc - 1]) : NULL;
    globfree(&g);
    return r;
}

int e2b_vm_kernel_find(const char *path, struct e2b_vm_kernel *k, struct e2b_error **err)
{
    *k = (struct e2b_vm_kernel){ 0 };
    const char *env = getenv("E2B_VM_KERNEL");
    if (path && *path)
        k->path = xstrdup(path);
    else if (env && *env)
        k->path = xstrdup(env);
    else if (!(k->path = newest("/boot/vmlinuz-*-cloud-amd64")) &&
             !(k->path = newest("/boot/vmlinuz-*")))
        return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                             "no guest kernel for the vm runtime in /boot (" MISSING_HINT ")");
    if (access(k->path, R_OK) < 0) {
        int e = errno;
        e2b_error_sys(err, e, "cannot read the guest kernel %s (" MISSING_HINT ")", k->path);
        (*err)->code = e == ENOENT ? E2B_ERR_NOT_FOUND : E2B_ERR_PERMISSION;
        e2b_vm_kernel_release(k);
        return -1;
    }
    k->version = bzimage_version(k->path);
    if (!k->version) {
        const char *base = strrchr(k->path, '/') ? strrchr(k->path, '/') + 1 : k->path;
        if (!e2b_str_has_prefix(base, "vmlinuz-")) {
            e2b_error_set(err, E2B_ERR_INVALID, "%s is not a bzImage kernel (" MISSING_HINT ")",
                          k->path);
            e2b_vm_kernel_release(k);
            return -1;
        }
        k->version = xstrdup(base + strlen("vmlinuz-"));
    }
    const char *mods = getenv("E2B_VM_MODULES");
    k->modules = mods && *mods ? xstrdup(mods) : xasprintf("/lib/modules/%s", k->version);
    _cleanup_free_ char *dep = e2b_path_join(k->modules, "modules.dep");
    if (access(dep, R_OK) < 0) {
        e2b_error_set(err, E2B_ERR_NOT_FOUND,
                      "no modules for the guest kernel %s (%s: %s; " MISSING_HINT ")", k->version,
                      dep, strerror(errno));
        e2b_vm_kernel_release(k);
        return -1;
    }
    return 0;
}

/* ---- the cache -------------------------------------------------------------- */

#define CACHE_KEEP_S (7 * 24 * 3600)

/* A cached file is touched at each use; what no create used for a week
 * (an older guest binary's initramfs, an old kernel's vmlinux) goes when a
 * new one is made. */
static void cache_used(const char *path) { utimensat(AT_FDCWD, path, NULL, 0); }

static void cache_sweep(const char *cache)
{
    _cleanup_closedir_ DIR *d = opendir(cache);
    struct dirent *de;
    struct stat st;
    while (d && (de = readdir(d)))
        if ((e2b_str_has_prefix(de->d_name, "initramfs-") ||
             e2b_str_has_prefix(de->d_name, "vmlinux-")) &&
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            time(NULL) - st.st_mtime > CACHE_KEEP_S)
            unlinkat(dirfd(d), de->d_name, 0);
}

/* ---- the uncompressed kernel ------------------------------------------------- */

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A whole ELF64 x86-64 kernel (every segment inside the file) with Xen's
 * PHYS32_ENTRY note, the PVH entry QEMU needs. */
static bool pvh_elf(const char *path)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    unsigned char eh[64];
    if (fd < 0 || fstat(fd, &st) < 0 || pread(fd, eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
        memcmp(eh,
               "\x7f"
               "ELF\x02\x01",
               6) != 0 ||
        eh[18] != 62 /* EM_X86_64 */)
        return false;
    uint64_t phoff = (uint64_t)le32(eh + 32) | (uint64_t)le32(eh + 36) << 32;
    unsigned phentsize = (unsigned)eh[54] | (unsigned)eh[55] << 8,
             phnum = (unsigned)eh[56] | (unsigned)eh[57] << 8;
    bool pvh = false;
    for (unsigned i = 0; i < phnum && phentsize >= 56; i++) {
        unsigned char ph[56];
        if (pread(fd, ph, sizeof(ph), (off_t)(phoff + (uint64_t)i * phentsize)) !=
            (ssize_t)sizeof(ph))
            return false;
        uint32_t type = le32(ph);
        uint64_t off = (uint64_t)le32(ph + 8) | (uint64_t)le32(ph + 12) << 32;
        uint64_t filesz = (uint64_t)le32(ph + 32) | (uint64_t)le32(ph + 36) << 32;
        if (off + filesz > (uint64_t)st.st_size)
            return false; /* cut short */
        if (type != 4 /* PT_NOTE */ || filesz > (1 << 20))
            continue;
        _cleanup_free_ unsigned char *n = xmalloc(filesz);
        if (pread(fd, n, filesz, (off_t)off) != (ssize_t)filesz)
            return false;
        for (uint64_t at = 0; at + 12 <= filesz;) {
            uint32_t namesz = le32(n + at), descsz = le32(n + at + 4), ntype = le32(n + at + 8);
            if (namesz == 4 && at + 16 <= filesz && memcmp(n + at + 12, "Xen", 4) == 0 &&
                ntype == 18)
                pvh = true;
            at += 12 + ((namesz + 3) & ~3u) + ((descsz + 3) & ~3u);
        }
    }
    return pvh;
}

/* The decompressor for a payload, by its magic. */
static const char *decompressor(const unsigned char *p, size_t n)
{
    static const struct {
        const char *magic;
        size_t len;
        const char *prog;
    } kinds[] = {
        { "\x1f\x8b", 2, "gzip" },
        { "\xfd"
          "7zXZ\x00",
          6, "xz" },
        { "\x28\xb5\x2f\xfd", 4, "zstd" },
        { "\x02\x21\x4c\x18", 4, "lz4" },
        { "BZh", 3, "bzip2" },
        { "\x5d\x00\x00", 3, "lzma" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
        if (n >= kinds[i].len && memcmp(p, kinds[i].magic, kinds[i].len) == 0)
            return kinds[i].prog;
    return NULL;
}

/* prog -dc < in > out; 0 when it ran (the caller checks what came out:
 * the kernel's payload ends in its size, which some tools call garbage). */
static int run_decompressor(const char *prog, const char *in, const char *out)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int i = open(in, O_RDONLY | O_CLOEXEC),
            o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (i < 0 || o < 0 || null < 0 || dup2(i, 0) < 0 || dup2(o, 1) < 0 || dup2(null, 2) < 0)
            _exit(127);
        execlp(prog, prog, "-dc", (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) != 127 ? 0 : -1;
}

/* The bzImage's payload (boot protocol 2.08: offset and length in the
 * setup header) into out, uncompressed; 0 if that is a PVH kernel. */
static int extract_vmlinux(const char *bz, const char *out)
{
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    if (e2b_read_file(bz, &data, &len, NULL) < 0 || len < 0x250)
        return -1;
    const unsigned char *u = (const unsigned char *)data;
    unsigned version = (unsigned)u[0x206] | (unsigned)u[0x207] << 8;
    size_t off = ((size_t)(u[0x1f1] ? u[0x1f1] : 4) + 1) * 512 + le32(u + 0x248),
           plen = le32(u + 0x24c);
    if (memcmp(u + 0x202, "HdrS", 4) != 0 || version < 0x208 || off + plen > len)
        return -1;
    const char *prog = decompressor(u + off, plen);
    if (!prog)
        return -1;
    _cleanup_free_ char *payload = xasprintf("%s.payload", out);
    int r = -1;
    if (e2b_write_file_atomic(payload, data + off, plen, 0600, NULL) == 0 &&
        run_decompressor(prog, payload, out) == 0 && pvh_elf(out))
        r = 0;
    unlink(payload);
    return r;
}

void e2b_vm_kernel_boot_image(const struct e2b_vm_kernel *k, char **ret)
{
    *ret = NULL;
    struct stat st;
    _cleanup_free_ char *data_dir = e2b_data_dir();
    _cleanup_free_ char *cache = e2b_path_join(data_dir, "cache/vm");
    if (stat(k->path, &st) == 0 && e2b_mkdir_p(cache, 0755, NULL) == 0) {
        _cleanup_free_ char *id = xasprintf("%s %s %lld %lld", k->path, k->version,
                                            (long long)st.st_size, (long long)st.st_mtime);
        struct e2b_sha256 c;
        unsigned char d[32];
        e2b_sha256_init(&c);
        e2b_sha256_update(&c, id, strlen(id));
        e2b_sha256_final(&c, d);
        _cleanup_free_ char *path = xasprintf("%s/vmlinux-%s-%02x%02x%02x%02x%02x%02x", cache,
                                              k->version, d[0], d[1], d[2], d[3], d[4], d[5]);
        _cleanup_free_ char *no = xasprintf("%s.none", path); /* tried: not to be had */
        if (access(path, R_OK) == 0) {
            cache_used(path);
            *ret = TAKE_PTR(path);
        } else if (access(no, F_OK) < 0) {
            cache_sweep(cache);
            _cleanup_free_ char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
            if (extract_vmlinux(k->path, tmp) == 0 && rename(tmp, path) == 0)
                *ret = TAKE_PTR(path);
            else
                e2b_write_file_atomic(no, "", 0, 0644, NULL);
            unlink(tmp);
        }
    }
    if (!*ret)
        *ret = xstrdup(k->path);
}

/* ---- modules -------------------------------------------------------------- */

/* A module's name from its file: the base name without .ko[.xz|.zst|.gz],
 * '-' as '_' (as the kernel compares them). */
static char *module_name(const char *path)
{
    const char *b = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char *n = xstrndup(b, strcspn(b, "."));
    for (char *p = n; *p; p++)
        if (*p == '-')
            *p = '_';
    return n;
}

struct modset {
    char *dep, *builtin; /* modules.dep and modules.builtin, as read */
    char **chosen;       /* paths relative to the modules directory, in load order */
};

static const char *dep_line(const char *dep, const char *want, const char **ret_deps,
                            size_t *ret_len)
{
    for (const char *line = dep; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        const char *colon = memchr(line, ':', len);
        if (colon) {
            _cleanup_free_ char *path = xstrndup(line, (size_t)(colon - line));
            _cleanup_free_ char *name = module_name(path);
            if (STREQ(name, want)) {
                *ret_deps = colon + 1;
                *ret_len = len - (size_t)(colon + 1 - line);
                return line;
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return NULL;
}

static bool builtin(const char *list, const char *want)
{
    _cleanup_free_ char *copy = xstrdup(list ? list : "");
    char *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        _cleanup_free_ char *n = module_name(l);
        if (STREQ(n, want))
            return true;
    }
    return false;
}

static bool chosen(char **v, const char *path)
{
    for (; v && *v; v++)
        if (STREQ(*v, path))
            return true;
    return false;
}

/* want and what it needs, dependencies first (modules.dep lists them in
 * the reverse of their load order). */
static int add_module(struct modset *ms, const char *version, const char *want, bool optional,
                      int depth, struct e2b_error **err)
{
    if (depth > 32)
        return e2b_error_set(err, E2B_ERR_INVALID, "modules.dep of kernel %s loops at %s", version,
                             want);
    if (builtin(ms->builtin, want))
        return 0;
    const char *deps;
    size_t dlen;
    const char *line = dep_line(ms->dep, want, &deps, &dlen);
    if (!line)
        return optional
                   ? 0
                   : e2b_error_set(err, E2B_ERR_NOT_FOUND,
                                   "the guest kernel %s has no module %s (neither built in nor in "
                                   "modules.dep; " MISSING_HINT ")",
                                   version, want);
    _cleanup_free_ char *path = xstrndup(line, strcspn(line, ":"));
    if (chosen(ms->chosen, path))
        return 0;
    _cleanup_free_ char *d = xstrndup(deps, dlen);
    _cleanup_strv_ char **dv = NULL;
    char *save = NULL;
    for (char *t = strtok_r(d, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
        dv = e2b_strv_push(dv, t);
    for (size_t i = e2b_strv_len(dv); i > 0; i--) {
        _cleanup_free_ char *n = module_name(dv[i - 1]);
        if (add_module(ms, version, n, false, depth + 1, err) < 0)
            return -1;
    }
    if (!chosen(ms->chosen, path)) /* a dependency may have pulled it in */
        ms->chosen = e2b_strv_push(ms->chosen, path);
    return 0;
}

/* ---- the archive ------------------------------------------------------------ */

static void cpio_entry(struct strbuf *sb, unsigned *ino, const char *name, unsigned mode,
                       unsigned rmajor, unsigned rminor, const void *data, size_t len)
{
    size_t nlen = strlen(name) + 1;
    strbuf_addf(sb, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", (*ino)++, mode,
                0u, 0u, (mode & 0170000) == 0040000 ? 2u : 1u, 0u, (unsigned)len, 0u, 0u, rmajor,
                rminor, (unsigned)nlen, 0u);
    strbuf_add(sb, name, nlen);
    while (sb->len % 4)
        strbuf_addch(sb, '\0');
    strbuf_add(sb, data, len);
    while (sb->len % 4)
        strbuf_addch(sb, '\0');
}

static int file_digest(const char *path, char hex[65], struct e2b_error **err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot read %s", path);
    struct e2b_sha256 c;
    e2b_sha256_init(&c);
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        e2b_sha256_update(&c, buf, (size_t)n);
    if (n < 0)
        return e2b_error_sys(err, errno, "cannot read %s", path);
    unsigned char d[32];
    e2b_sha256_final(&c, d);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return 0;
}

static int add_file(struct strbuf *sb, unsigned *ino, const char *name, const char *path,
                    unsigned mode, struct e2b_error **err)
{
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    if (e2b_read_file(path, &data, &len, err) < 0)
        return -1;
    cpio_entry(sb, ino, name, mode, 0, 0, data, len);
    return 0;
}

static const char *base_name(const char *p) { return strrchr(p, '/') ? strrchr(p, '/') + 1 : p; }

int e2b_vm_initramfs(const struct e2b_vm_kernel *k, const char *init, char **ret_path,
                     struct e2b_error **err)
{
    struct modset ms = { 0 };
    int r = -1;
    size_t n_boot = 0;
    _cleanup_free_ char *depp = e2b_path_join(k->modules, "modules.dep");
    _cleanup_free_ char *bip = e2b_path_join(k->modules, "modules.builtin");
    _cleanup_free_ char *data_dir = e2b_data_dir();
    _cleanup_free_ char *cache = e2b_path_join(data_dir, "cache/vm");
    _cleanup_free_ char *path = NULL, *head = NULL;
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT, boot = STRBUF_INIT, net = STRBUF_INIT;
    if (e2b_read_file(depp, &ms.dep, NULL, err) < 0)
        goto out;
    (void)e2b_read_file(bip, &ms.builtin, NULL, NULL); /* none: nothing is built in */
    for (const char *const *m = boot_modules; *m; m++)
        if (add_module(&ms, k->version, *m, false, 0, err) < 0)
            goto out;
    n_boot = e2b_strv_len(ms.chosen);
    for (const char *const *m = net_modules; *m; m++)
        if (add_module(&ms, k->version, *m, true, 0, err) < 0)
            goto out;

    /* the key: what the archive is made of */
    char init_hex[65], key[65];
    if (file_digest(init, init_hex, err) < 0)
        goto out;
    struct e2b_sha256 c;
    e2b_sha256_init(&c);
    head = xasprintf("e2b-initramfs 1\n%s\n%s\n", k->version, init_hex);
    e2b_sha256_update(&c, head, strlen(head));
    for (char **p = ms.chosen; p && *p; p++) {
        _cleanup_free_ char *full = e2b_path_join(k->modules, *p);
        struct stat st;
        if (stat(full, &st) < 0) {
            e2b_error_sys(err, errno, "cannot read the guest kernel's module %s", full);
            goto out;
        }
        _cleanup_free_ char *line =
            xasprintf("%s %lld %lld\n", *p, (long long)st.st_size, (long long)st.st_mtime);
        e2b_sha256_update(&c, line, strlen(line));
    }
    unsigned char d[32];
    e2b_sha256_final(&c, d);
    for (int i = 0; i < 32; i++)
        snprintf(key + 2 * i, 3, "%02x", d[i]);
    path = xasprintf("%s/initramfs-%.16s.cpio", cache, key);
    if (access(path, R_OK) == 0) {
        cache_used(path);
        *ret_path = TAKE_PTR(path);
        r = 0;
        goto out;
    }
    cache_sweep(cache);

    unsigned ino = 1;
    static const char *const dirs[] = {
        "dev", "proc", "sys", "mnt", "newroot", "lib", "lib/modules"
    };
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
        cpio_entry(&sb, &ino, dirs[i], 0040755, 0, 0, NULL, 0);
    cpio_entry(&sb, &ino, "dev/console", 0020600, 5, 1, NULL, 0);
    if (add_file(&sb, &ino, "init", init, 0100755, err) < 0)
        goto out;
    size_t i = 0;
    for (char **p = ms.chosen; p && *p; p++, i++) {
        _cleanup_free_ char *full = e2b_path_join(k->modules, *p);
        _cleanup_free_ char *name = xasprintf("lib/modules/%s", base_name(*p));
        if (add_file(&sb, &ino, name, full, 0100644, err) < 0)
            goto out;
        strbuf_addf(i < n_boot ? &boot : &net, "%s\n", base_name(*p));
    }
    cpio_entry(&sb, &ino, &E2B_VM_MODULES_BOOT[1], 0100644, 0, 0, boot.buf, boot.len);
    cpio_entry(&sb, &ino, &E2B_VM_MODULES_NET[1], 0100644, 0, 0, net.buf, net.len);
    cpio_entry(&sb, &ino, "TRAILER!!!", 0, 0, 0, NULL, 0);
    if (e2b_mkdir_p(cache, 0755, err) < 0 ||
        e2b_write_file_atomic(path, sb.buf, sb.len, 0644, err) < 0)
        goto out;
    *ret_path = TAKE_PTR(path);
    r = 0;
out:
    free(ms.dep);
    free(ms.builtin);
    e2b_strv_free(ms.chosen);
    return r;
}
