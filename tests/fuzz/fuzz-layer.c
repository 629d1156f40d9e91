/* fuzz-layer.c - applying an image layer (layer.h): libarchive's tar and
 * gzip/zstd readers as the applier drives them, then what the applier makes
 * of each entry (paths, whiteouts, links, devices, metadata, xattrs).
 *
 * Input: one control byte, then the blob. Control bit 0 wraps the blob in
 * gzip here (zlib, in memory) before the applier sees it, which finds the
 * compression by itself; bit 1 fills the root first with a lower layer
 * (files to white out, and symlinks that point out of the root, absolute
 * and relative, for entries to go through); bit 2 passes the blob's right
 * digest as the expected one, bit 3 a wrong one. Each input is applied in
 * the jail to a fresh /root-N, with canaries around it: files, a
 * directory, symlinks into it, and the blob itself.
 *
 * Checked: nothing outside /root-N is created, changed or removed (every
 * path's type, mode, owner, size, link count, inode, times and symlink
 * target before and after); no descriptor is left open; the root stays a
 * directory; a success reports the blob's own sha256, its size, the
 * compression its first bytes say and no more whiteouts than entries, and
 * a wrong expected digest never succeeds; a failure carries a message
 * naming the layer.
 */
#include "dl-archive.h"
#include "envd-crypto.h"
#include "fsutil.h"
#include "fuzz.h"
#include "layer.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define BLOB_MAX (1024 * 1024)
#define LAYER "fuzz-layer"

static unsigned long iteration;
static bool verbose; /* FUZZ_VERBOSE=1: say what each input did (to check a corpus) */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    FUZZ_ASSERT(d != NULL);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void write_blob(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_ASSERT(fd >= 0);
    FUZZ_ASSERT(len == 0 || write(fd, data, len) == (ssize_t)len);
    close(fd);
}

static uint8_t *gzip(const uint8_t *data, size_t len, size_t *ret_len)
{
    z_stream z = {0};
    FUZZ_ASSERT(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t cap = deflateBound(&z, (uLong)len) + 64;
    uint8_t *out = xmalloc(cap);
    z.next_in = (uint8_t *)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    FUZZ_ASSERT(deflate(&z, Z_FINISH) == Z_STREAM_END);
    *ret_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static void symlink_or_die(const char *target, const char *path) { FUZZ_ASSERT(symlink(target, path) == 0); }

/* The machine around the root: what an escape would hit. */
static void plant_canaries(void)
{
    fuzz_write_file("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0644);
    fuzz_write_file("/outside/secret", "SECRET\n", 0600);
    fuzz_write_file("/outside/dir/file", "x\n", 0644);
    symlink_or_die("/outside", "/outside-link");
    symlink_or_die("secret", "/outside/secret-link");
    FUZZ_ASSERT(mkfifo("/outside/fifo", 0644) == 0);
}

/* A lower layer in the root: things to white out, and links out of it. */
static void plant_lower(const char *root)
{
    char p[256];
#define AT(rel) (snprintf(p, sizeof(p), "%s/%s", root, rel), p)
    fuzz_write_file(AT("etc/passwd"), "lower\n", 0644);
    fuzz_write_file(AT("lower/file"), "lower\n", 0644);
    fuzz_write_file(AT("lower/dir/file"), "lower\n", 0644);
    fuzz_write_file(AT("opq/a"), "lower\n", 0644);
    fuzz_write_file(AT("opq/sub/b"), "lower\n", 0644);
    symlink_or_die("/outside", AT("escape"));
    symlink_or_die("../outside", AT("rel-escape"));
    symlink_or_die("../../../../outside/secret", AT("lower/secret"));
    symlink_or_die("/outside/dir", AT("lower/dirlink"));
    symlink_or_die("/", AT("slash"));
    symlink_or_die(".", AT("dot"));
    FUZZ_ASSERT(link("/outside/dir/file", AT("lower/hardlink-out")) == 0);
#undef AT
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct e2b_error *err = NULL;
    if (e2b_archive_load(&err) < 0) { /* libarchive is gone once in the jail */
        fprintf(stderr, "fuzz-layer: %s\n", err->msg);
        abort();
    }
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    FUZZ_ASSERT(fuzz_jail_enter(128) == 0);
    umask(022);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > BLOB_MAX)
        return 0;
    unsigned ctl = data[0];
    const uint8_t *blob = data + 1;
    size_t blen = size - 1;
    uint8_t *wrapped = NULL;
    if (ctl & 1)
        blob = wrapped = gzip(blob, blen, &blen);

    char root[64];
    snprintf(root, sizeof(root), "/root-%lu", iteration++);
    fuzz_jail_wipe(NULL);
    plant_canaries();
    FUZZ_ASSERT(mkdir(root, 0755) == 0);
    if (ctl & 2)
        plant_lower(root);
    write_blob("/blob", blob, blen);

    uint8_t sum[E2B_SHA256_LEN];
    e2b_sha256(blob, blen, sum);
    char digest[72] = "sha256:";
    for (size_t i = 0; i < sizeof(sum); i++)
        sprintf(digest + 7 + 2 * i, "%02x", sum[i]);
    const char *compression = e2b_layer_compression(blob, blen);
    static const char wrong[] = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    struct e2b_layer_opts o = {.name = LAYER};
    if (ctl & 4)
        o.expect_digest = digest;
    if (ctl & 8)
        o.expect_digest = wrong;

    /* The lower layer links /outside/dir/file in: removing that link (a
     * whiteout, an entry replacing it) changes its link count and ctime,
     * and must change nothing else (no write through the link). */
    const char *const skip[] = {root, NULL}, *const loose[] = {"/outside/dir/file", NULL};
    struct fuzz_tree before, after;
    fuzz_tree_snapshot(&before, skip, loose);
    int fds = count_fds();
    struct e2b_layer_result r;
    struct e2b_error *err = NULL;
    int rc = e2b_layer_apply("/blob", root, &o, &r, &err);
    FUZZ_ASSERT(count_fds() == fds);
    fuzz_tree_snapshot(&after, skip, loose);
    fuzz_tree_assert_same(&before, &after);
    fuzz_tree_release(&before);
    fuzz_tree_release(&after);
    struct stat st;
    FUZZ_ASSERT(lstat(root, &st) == 0 && S_ISDIR(st.st_mode));

    if (verbose)
        fprintf(stderr, "fuzz-layer: %s: %lu entries, %lu whiteouts, %lu skipped\n", rc == 0 ? "applied" : err->msg,
                (unsigned long)r.entries, (unsigned long)r.whiteouts, (unsigned long)r.skipped);
    if (rc == 0) {
        FUZZ_ASSERT(err == NULL);
        FUZZ_ASSERT(!(ctl & 8) || !strcmp(digest, wrong));
        FUZZ_ASSERT(!strcmp(r.digest, digest));
        FUZZ_ASSERT(r.bytes_read == blen);
        FUZZ_ASSERT(compression && r.compression && !strcmp(r.compression, compression));
        FUZZ_ASSERT(r.whiteouts <= r.entries && r.skipped <= r.entries);
        FUZZ_ASSERT(!strncmp(r.diff_id, "sha256:", 7) && strlen(r.diff_id) == 71);
        if (!strcmp(compression, "none"))
            FUZZ_ASSERT(!strcmp(r.diff_id, r.digest) && r.bytes_tar == r.bytes_read);
    } else {
        FUZZ_ASSERT(err && err->msg && strstr(err->msg, LAYER));
    }
    e2b_error_free(err);
    free(wrapped);
    return 0;
}
