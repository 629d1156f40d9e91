/* qcow2.c - see qcow2.h. The layout is QEMU's docs/interop/qcow2.txt. */
#include "qcow2.h"
#include "fsutil.h"

#include <endian.h>
#include <fcntl.h>
#include <sys/stat.h>

#define QCOW2_MAGIC        0x514649fbu /* "QFI\xfb" */
#define CLUSTER_BITS       16
#define CLUSTER_SIZE       (UINT64_C(1) << CLUSTER_BITS)
#define HEADER_V3_LENGTH   104
#define EXT_BACKING_FORMAT 0xe2792acau
#define REFCOUNT_ORDER     4 /* 16-bit refcounts */
#define MAX_BACKING_NAME   1023

static void put32(unsigned char *p, uint32_t v)
{
    v = htobe32(v);
    memcpy(p, &v, 4);
}

static void put64(unsigned char *p, uint64_t v)
{
    v = htobe64(v);
    memcpy(p, &v, 8);
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return be32toh(v);
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return be64toh(v);
}

int e2b_qcow2_create_overlay(const char *path, const char *backing, const char *backing_format,
                             uint64_t virtual_size, struct e2b_error **err)
{
    size_t blen = strlen(backing), flen = strlen(backing_format);
    if (blen == 0 || blen > MAX_BACKING_NAME || backing[0] != '/')
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "cannot make a disk overlay over '%s': "
                             "the backing file must be an absolute path of at most %d bytes",
                             backing, MAX_BACKING_NAME);
    if (!STREQ(backing_format, "raw") && !STREQ(backing_format, "qcow2"))
        return e2b_error_set(err, E2B_ERR_INVALID, "backing format '%s' is not raw or qcow2",
                             backing_format);
    if (virtual_size == 0 || virtual_size % 512)
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "disk size %llu is not a positive multiple of 512",
                             (unsigned long long)virtual_size);
    /* one L2 table (a cluster of 8-byte entries) maps CLUSTER_SIZE/8 clusters */
    uint64_t per_l2 = CLUSTER_SIZE / 8 * CLUSTER_SIZE;
    uint64_t l1_size = (virtual_size + per_l2 - 1) / per_l2;
    uint64_t l1_clusters = (l1_size * 8 + CLUSTER_SIZE - 1) / CLUSTER_SIZE;
    uint64_t l1_off = 3 * CLUSTER_SIZE, clusters = 3 + l1_clusters;
    if (clusters > CLUSTER_SIZE / 2) /* one refcount block's worth */
        return e2b_error_set(err, E2B_ERR_INVALID, "disk size %llu is too large for an overlay",
                             (unsigned long long)virtual_size);

    /* cluster 0: header, the backing format extension, the end, the name */
    unsigned char *c0 = xcalloc(1, CLUSTER_SIZE);
    size_t ext = HEADER_V3_LENGTH;
    put32(c0 + ext, EXT_BACKING_FORMAT);
    put32(c0 + ext + 4, (uint32_t)flen);
    memcpy(c0 + ext + 8, backing_format, flen);
    ext += 8 + ((flen + 7) & ~(size_t)7);
    ext += 8; /* end of extensions: type 0, length 0 */
    size_t name_off = ext;
    memcpy(c0 + name_off, backing, blen);
    put32(c0 + 0, QCOW2_MAGIC);
    put32(c0 + 4, 3);
    put64(c0 + 8, name_off);
    put32(c0 + 16, (uint32_t)blen);
    put32(c0 + 20, CLUSTER_BITS);
    put64(c0 + 24, virtual_size);
    put32(c0 + 32, 0); /* no encryption */
    put32(c0 + 36, (uint32_t)l1_size);
    put64(c0 + 40, l1_off);
    put64(c0 + 48, CLUSTER_SIZE); /* refcount table: cluster 1 */
    put32(c0 + 56, 1);
    /* 60: no snapshots; 72..95: no feature bits */
    put32(c0 + 96, REFCOUNT_ORDER);
    put32(c0 + 100, HEADER_V3_LENGTH);
    /* cluster 1: the refcount table's one entry; cluster 2: its block */
    unsigned char table[8], block[2];
    put64(table, 2 * CLUSTER_SIZE);

    _cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int r = -1;
    if (fd < 0) {
        e2b_error_sys(err, errno, "cannot create '%s'", tmp);
        goto out;
    }
    bool ok = ftruncate(fd, (off_t)(clusters * CLUSTER_SIZE)) == 0 &&
              e2b_pwrite_all(fd, c0, name_off + blen, 0) == 0 &&
              e2b_pwrite_all(fd, table, sizeof(table), (off_t)CLUSTER_SIZE) == 0;
    for (uint64_t i = 0; ok && i < clusters; i++) { /* each metadata cluster is used once */
        block[0] = 0, block[1] = 1;
        ok = e2b_pwrite_all(fd, block, 2, (off_t)(2 * CLUSTER_SIZE + i * 2)) == 0;
    }
    if (!ok) { /* not synced: an overlay lives in a runtime directory (a save syncs its copy) */
        e2b_error_sys(err, errno, "cannot write '%s'", tmp);
        goto out;
    }
    if (rename(tmp, path) < 0) {
        e2b_error_sys(err, errno, "cannot make '%s'", path);
        goto out;
    }
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    if (r < 0)
        unlink(tmp);
    free(c0);
    return r;
}

bool e2b_qcow2_is(const char *path)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    unsigned char m[4];
    return fd >= 0 && pread(fd, m, 4, 0) == 4 && get32(m) == QCOW2_MAGIC;
}

int e2b_qcow2_info(const char *path, uint64_t *ret_size, char **ret_backing,
                   char **ret_backing_format, struct e2b_error **err)
{
    if (ret_backing)
        *ret_backing = NULL;
    if (ret_backing_format)
        *ret_backing_format = NULL;
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot open '%s'", path);
    unsigned char h[4096];
    ssize_t n = pread(fd, h, sizeof(h), 0);
    if (n < 72 || get32(h) != QCOW2_MAGIC)
        return e2b_error_set(err, E2B_ERR_INVALID, "'%s' is not a qcow2 image", path);
    uint32_t version = get32(h + 4);
    uint64_t name_off = get64(h + 8);
    uint32_t name_len = get32(h + 16);
    uint32_t hlen = version >= 3 && n >= HEADER_V3_LENGTH ? get32(h + 100) : 72;
    if (version < 2 || version > 3 || hlen < 72 || hlen > (uint32_t)n ||
        name_len > MAX_BACKING_NAME || (name_len && name_off + name_len > (uint64_t)n))
        return e2b_error_set(err, E2B_ERR_INVALID, "'%s' has a qcow2 header this e2b cannot read",
                             path);
    if (ret_size)
        *ret_size = get64(h + 24);
    if (name_len && ret_backing)
        *ret_backing = xstrndup((const char *)h + name_off, name_len);
    /* the header extensions, up to the end marker or the backing name */
    for (size_t p = hlen; ret_backing_format && p + 8 <= (size_t)n;) {
        uint32_t type = get32(h + p), len = get32(h + p + 4);
        if (type == 0 || p + 8 + len > (size_t)n)
            break;
        if (type == EXT_BACKING_FORMAT) {
            *ret_backing_format = xstrndup((const char *)h + p + 8, len);
            break;
        }
        p += 8 + ((len + 7) & ~(size_t)7);
    }
    return 0;
}
