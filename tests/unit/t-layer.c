/* t-layer.c - applying layer tarballs: entry types, metadata, whiteouts, escapes. */
#include "envd-crypto.h"
#include "fsutil.h"
#include "layer.h"
#include "registry.h"
#include "tap.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

/* The entry tables below list only the fields they need. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* One tar entry to write. type: 'f' file, 'd' dir, 'l' symlink, 'h' hardlink,
 * 'c' char device, 'b' block device, 'p' fifo. */
struct ent {
    char type;
    const char *name;
    const char *data;    /* file content, or link target */
    unsigned perm;       /* 0: 0644 / 0755 */
    unsigned uid, gid;
    unsigned major, minor;
    const char *xname;   /* one xattr */
    const void *xval;
    size_t xlen;
    long mtime;          /* 0: 1700000000 */
};

static char base[256], root[512];

/* Write a tar with filter "gzip", "zstd" or NULL; the path is static. */
static const char *mktar(const char *name, const char *filter, const struct ent *v, size_t n)
{
    static char path[600];
    snprintf(path, sizeof(path), "%s/%s", base, name);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (filter && !strcmp(filter, "gzip"))
        archive_write_add_filter_gzip(a);
    else if (filter && !strcmp(filter, "zstd"))
        archive_write_add_filter_zstd(a);
    if (archive_write_open_filename(a, path) != ARCHIVE_OK) {
        diag("cannot write %s: %s", path, archive_error_string(a));
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        const struct ent *x = &v[i];
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, x->name);
        archive_entry_set_uid(e, x->uid);
        archive_entry_set_gid(e, x->gid);
        archive_entry_set_mtime(e, x->mtime ? x->mtime : 1700000000, 0);
        unsigned perm = x->perm ? x->perm : (x->type == 'd' ? 0755 : 0644);
        archive_entry_set_perm(e, perm);
        size_t size = 0;
        switch (x->type) {
        case 'f':
            archive_entry_set_filetype(e, AE_IFREG);
            size = x->data ? strlen(x->data) : 0;
            break;
        case 'd': archive_entry_set_filetype(e, AE_IFDIR); break;
        case 'l':
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, x->data);
            break;
        case 'h':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, x->data);
            break;
        case 'c': archive_entry_set_filetype(e, AE_IFCHR); break;
        case 'b': archive_entry_set_filetype(e, AE_IFBLK); break;
        case 'p': archive_entry_set_filetype(e, AE_IFIFO); break;
        }
        if (x->type == 'c' || x->type == 'b') {
            archive_entry_set_rdevmajor(e, x->major);
            archive_entry_set_rdevminor(e, x->minor);
        }
        archive_entry_set_size(e, (la_int64_t)size);
        if (x->xname)
            archive_entry_xattr_add_entry(e, x->xname, x->xval, x->xlen);
        if (archive_write_header(a, e) != ARCHIVE_OK)
            diag("header %s: %s", x->name, archive_error_string(a));
        if (size)
            archive_write_data(a, x->data, size);
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    return path;
}

static void fresh_root(void)
{
    e2b_rm_rf(root, NULL);
    mkdir(root, 0755);
}

static char *slurp(const char *rel)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    char *d = NULL;
    size_t len;
    if (e2b_read_file(p, &d, &len, NULL) < 0)
        return NULL;
    return d;
}

static int lst(const char *rel, struct stat *st)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    return lstat(p, st);
}

static bool exists(const char *rel)
{
    struct stat st;
    return lst(rel, &st) == 0;
}

static int apply(const char *blob, struct e2b_layer_result *r, struct e2b_error **err)
{
    struct e2b_layer_opts o = {.name = "sha256:test"};
    return e2b_layer_apply(blob, root, &o, r, err);
}

static bool sentinels_intact(void)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/etc/passwd", base);
    _cleanup_free_ char *d = NULL;
    size_t len;
    if (e2b_read_file(p, &d, &len, NULL) < 0 || strcmp(d, "SENTINEL\n"))
        return false;
    snprintf(p, sizeof(p), "%s/etc", base);
    DIR *dir = opendir(p);
    int n = 0;
    struct dirent *de;
    while (dir && (de = readdir(dir)))
        n++;
    if (dir)
        closedir(dir);
    struct stat st;
    snprintf(p, sizeof(p), "%s/etc/shadow", base);
    return n == 4 && stat(p, &st) == 0 && st.st_nlink == 1; /* ., .., passwd, shadow */
}

static uint64_t last_done, last_total;
static unsigned progress_calls;
static void on_progress(uint64_t done, uint64_t total, void *ud)
{
    (void)ud;
    last_done = done;
    last_total = total;
    progress_calls++;
}

static void test_types(const char *filter)
{
    fresh_root();
    /* file capability: cap_net_raw (13) permitted + effective, VFS_CAP_REVISION_2 */
    static const uint8_t cap[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00};
    const struct ent v[] = {
        {'d', "./", .perm = 0711},
        {'d', "etc/", .mtime = 1600000000},
        {'f', "etc/hello", "hello\n", 0640, 1000, 1001, .mtime = 1500000000},
        {'h', "etc/hello2", "etc/hello"},
        {'d', "usr/bin"},
        {'f', "usr/bin/su", "su", 04755},
        {'f', "usr/bin/ping", "ping", 0755, .xname = "security.capability", .xval = cap, .xlen = sizeof(cap)},
        {'f', "usr/bin/tagged", "t", .xname = "user.e2b", .xval = "yes", .xlen = 3},
        {'l', "bin", "usr/bin", .uid = 7, .gid = 8},
        {'c', "dev/null", .perm = 0666, .major = 1, .minor = 3},
        {'b', "dev/loop0", .perm = 0660, .major = 7, .minor = 0, .gid = 6},
        {'p', "run/fifo", .perm = 0600},
        {'f', "/abs/x", "abs"},
        {'f', "deep/implicit/dir/file", "d"},
    };
    char name[64];
    snprintf(name, sizeof(name), "types-%s.tar", filter ? filter : "none");
    const char *blob = mktar(name, filter, v, ARRAY_SIZE(v));
    struct e2b_layer_result r;
    _cleanup_error_ struct e2b_error *err = NULL;
    progress_calls = 0;
    struct e2b_layer_opts o = {.name = "t", .progress = on_progress};
    int rc = e2b_layer_apply(blob, root, &o, &r, &err);
    ok(rc == 0, "%s: applies (%s)", name, err ? err->msg : "");
    is_str(r.compression, filter ? filter : "none", "%s: compression detected", name);
    _cleanup_free_ char *dg = NULL;
    e2b_blob_digest_file(blob, &dg, NULL);
    is_str(r.digest, dg, "%s: digest is sha256 of the blob", name);
    ok(progress_calls > 0 && last_done == last_total && last_total == r.bytes_read, "%s: progress reaches the size",
       name);
    is_int(r.entries, ARRAY_SIZE(v), "%s: every entry seen", name);

    struct stat st;
    _cleanup_free_ char *hello = slurp("etc/hello");
    is_str(hello, "hello\n", "file content");
    ok(lst("etc/hello", &st) == 0 && (st.st_mode & 07777) == 0640 && st.st_uid == 1000 && st.st_gid == 1001 &&
           st.st_mtime == 1500000000 && st.st_nlink == 2,
       "file mode, owner, mtime, link count");
    struct stat st2;
    ok(lst("etc/hello2", &st2) == 0 && st2.st_ino == st.st_ino, "hardlink shares the inode");
    ok(lst("etc", &st) == 0 && st.st_mtime == 1600000000, "directory mtime survives the files written into it");
    ok(lst("", &st) == 0 && (st.st_mode & 07777) == 0711, "'./' sets the root's mode");
    ok(lst("usr/bin/su", &st) == 0 && (st.st_mode & 07777) == 04755, "setuid bit kept");
    ok(lst("bin", &st) == 0 && S_ISLNK(st.st_mode) && st.st_uid == 7 && st.st_gid == 8, "symlink and its owner");
    char tgt[64] = "";
    char p[1024];
    snprintf(p, sizeof(p), "%s/bin", root);
    ssize_t tn = readlink(p, tgt, sizeof(tgt) - 1);
    if (tn > 0)
        tgt[tn] = 0;
    is_str(tgt, "usr/bin", "symlink target");
    uint8_t got[64];
    snprintf(p, sizeof(p), "%s/usr/bin/ping", root);
    ssize_t gn = getxattr(p, "security.capability", got, sizeof(got));
    ok(gn == (ssize_t)sizeof(cap) && !memcmp(got, cap, sizeof(cap)), "file capability (security.capability) set");
    snprintf(p, sizeof(p), "%s/usr/bin/tagged", root);
    gn = getxattr(p, "user.e2b", got, sizeof(got));
    ok(gn == 3 && !memcmp(got, "yes", 3), "user xattr set");
    ok(lst("dev/null", &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3 &&
           (st.st_mode & 0777) == 0666,
       "char device 1:3");
    ok(lst("dev/loop0", &st) == 0 && S_ISBLK(st.st_mode) && major(st.st_rdev) == 7 && st.st_gid == 6,
       "block device 7:0");
    ok(lst("run/fifo", &st) == 0 && S_ISFIFO(st.st_mode) && (st.st_mode & 0777) == 0600, "fifo");
    _cleanup_free_ char *abs = slurp("abs/x");
    is_str(abs, "abs", "absolute name written under the root");
    ok(lst("deep/implicit/dir", &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0755,
       "missing parents created 0755");

    if (!filter) {
        ok(!strcmp(r.digest, r.diff_id), "uncompressed: diff_id equals digest");
    } else {
        /* the same entries uncompressed give the diff_id */
        const char *plain = mktar("types-plain.tar", NULL, v, ARRAY_SIZE(v));
        _cleanup_free_ char *pd = NULL;
        e2b_blob_digest_file(plain, &pd, NULL);
        is_str(r.diff_id, pd, "%s: diff_id is sha256 of the tar", name);
    }
}

static void test_whiteouts(void)
{
    fresh_root();
    const struct ent l1[] = {
        {'d', "d"}, {'f', "d/a", "a"}, {'f', "d/b", "b"}, {'d', "d/sub"}, {'f', "d/sub/c", "c"},
        {'f', "keep/x", "x"}, {'f', "gone", "g"}, {'f', "gonedir/y", "y"}, {'d', "f"}, {'f', "f/inner", "i"},
        {'f', "o/lower", "l"}, {'f', "o/sub/lower2", "l"},
    };
    const struct ent l2[] = {
        {'f', "d/early", "e"},
        {'f', "x2", "mine"},
        {'d', "o/sub"},
        {'f', "o/sub/new", "n"},
        {'f', "d/.wh..wh..opq"},
        {'f', "d/new", "n"},
        {'f', ".wh.gone"},
        {'f', "gonedir/.wh..wh..opq"},
        {'f', ".wh.gonedir"},
        {'f', ".wh.x2"},
        {'f', ".wh.nothere"},
        {'f', "nodir/.wh.x"},
        {'f', "f", "now a file"},
        {'f', "o/.wh..wh..opq"},
        {'f', "keep/.wh..wh.plnk"},
    };
    _cleanup_error_ struct e2b_error *err = NULL;
    struct e2b_layer_result r;
    ok(apply(mktar("w1.tar", "gzip", l1, ARRAY_SIZE(l1)), &r, &err) == 0, "whiteouts: layer 1");
    int rc = apply(mktar("w2.tar", "gzip", l2, ARRAY_SIZE(l2)), &r, &err);
    ok(rc == 0, "whiteouts: layer 2 (%s)", err ? err->msg : "");
    ok(!exists("d/a") && !exists("d/b") && !exists("d/sub"), "opaque dir drops the lower layer's entries");
    ok(exists("d/early") && exists("d/new"), "opaque dir keeps this layer's entries before and after the marker");
    ok(!exists("d/.wh..wh..opq") && !exists(".wh.gone"), "markers are not written");
    ok(!exists("gone") && !exists("gonedir"), "whiteout removes a file and a directory");
    _cleanup_free_ char *x2 = slurp("x2");
    is_str(x2, "mine", "a whiteout does not hide the same layer's file");
    ok(exists("keep/x"), "other entries stay");
    ok(!exists("nodir"), "a whiteout under a missing directory creates nothing");
    struct stat st;
    ok(lst("f", &st) == 0 && S_ISREG(st.st_mode), "a file replaces a directory");
    ok(!exists("o/lower") && !exists("o/sub/lower2") && exists("o/sub/new"),
       "opaque keeps this layer's subdirectory but not what was below in it");
    ok(r.whiteouts >= 5 && r.skipped == 1, "whiteouts counted, aufs metadata skipped");
}

/* Each attack runs on a fresh root; nothing outside may change. */
static void attack(const char *what, const struct ent *l1, size_t n1, const struct ent *l2, size_t n2,
                   const char *want_msg)
{
    fresh_root();
    _cleanup_error_ struct e2b_error *err = NULL;
    int rc = 0;
    if (l1) {
        rc = apply(mktar("a1.tar", NULL, l1, n1), NULL, &err);
        if (l2) {
            ok(rc == 0, "%s: first layer applies (%s)", what, err ? err->msg : "");
            rc = apply(mktar("a2.tar", "gzip", l2, n2), NULL, &err);
        }
    }
    ok(rc < 0, "%s: refused", what);
    if (err && want_msg)
        ok(strstr(err->msg, want_msg) != NULL, "%s: message '%s'", what, err->msg);
    else
        ok(0, "%s: an error with '%s'", what, want_msg ? want_msg : "");
    ok(sentinels_intact(), "%s: nothing written outside the root", what);
}

static void test_attacks(void)
{
    char outside[300];
    snprintf(outside, sizeof(outside), "%s/etc", base);
    char outside_pw[320];
    snprintf(outside_pw, sizeof(outside_pw), "%s/etc/passwd", base);

    const struct ent dotdot[] = {{'f', "../etc/passwd", "pwned\n"}};
    attack("../etc/passwd", dotdot, 1, NULL, 0, "layer sha256:test: entry '../etc/passwd' escapes the root");
    const struct ent dotdot2[] = {{'f', "a/../../etc/passwd", "pwned\n"}};
    attack("a/../../etc/passwd", dotdot2, 1, NULL, 0, "entry 'a/../../etc/passwd' escapes the root");
    const struct ent sym1[] = {{'l', "a", outside}, {'f', "a/passwd", "pwned\n"}};
    attack("symlink a -> etc outside, then a/passwd", sym1, 2, NULL, 0, "entry 'a/passwd' escapes the root");
    const struct ent sym2[] = {{'l', "a", "../etc"}, {'f', "a/newfile", "pwned\n"}};
    attack("symlink a -> ../etc, then a/newfile", sym2, 2, NULL, 0, "escapes the root");
    const struct ent sym3[] = {{'l', "a", "/"}, {'d', "a/x"}};
    attack("symlink a -> /, then directory a/x", sym3, 2, NULL, 0, "escapes the root");
    const struct ent plant[] = {{'l', "l", outside}};
    const struct ent through[] = {{'f', "l/passwd", "pwned\n"}};
    attack("symlink planted in layer 1, written through in layer 2", plant, 1, through, 1,
           "entry 'l/passwd' escapes the root");
    const struct ent plantdeep[] = {{'d', "x"}, {'l', "x/l", "../.."}};
    const struct ent throughdeep[] = {{'f', "x/l/etc/passwd", "pwned\n"}};
    attack("relative symlink in layer 1, deep write in layer 2", plantdeep, 2, throughdeep, 1, "escapes the root");
    const struct ent wh[] = {{'f', "l/.wh.passwd"}};
    attack("whiteout through a planted symlink", plant, 1, wh, 1, "escapes the root");
    const struct ent opq[] = {{'f', "l/.wh..wh..opq"}};
    attack("opaque marker through a planted symlink", plant, 1, opq, 1, "escapes the root");
    const struct ent whdot[] = {{'f', "d/.wh.."}};
    attack("whiteout of '..'", whdot, 1, NULL, 0, "escapes the root");
    const struct ent hl[] = {{'h', "h", "../../etc/shadow"}};
    attack("hardlink to ../../etc/shadow", hl, 1, NULL, 0, "entry 'h' escapes the root");
    const struct ent hl2[] = {{'l', "a", outside}, {'h', "h", "a/shadow"}};
    attack("hardlink through a symlink", hl2, 2, NULL, 0, "escapes the root");

    /* not attacks, but close: these must work and stay inside */
    fresh_root();
    _cleanup_error_ struct e2b_error *err = NULL;
    const struct ent absname[] = {{'f', "/etc/e2b-t-layer-abs", "in\n"}};
    ok(apply(mktar("abs.tar", NULL, absname, 1), NULL, &err) == 0, "absolute name applies");
    ok(exists("etc/e2b-t-layer-abs") && access("/etc/e2b-t-layer-abs", F_OK) < 0,
       "absolute name lands under the root, not in /etc");
    fresh_root();
    const struct ent leafsym[] = {{'l', "s", outside_pw}};
    const struct ent leafrep[] = {{'f', "s", "replaced\n"}};
    ok(apply(mktar("s1.tar", NULL, leafsym, 1), NULL, &err) == 0 &&
           apply(mktar("s2.tar", NULL, leafrep, 1), NULL, &err) == 0,
       "a file over a symlink to outside applies");
    struct stat st;
    ok(lst("s", &st) == 0 && S_ISREG(st.st_mode) && sentinels_intact(), "the symlink is replaced, not followed");
    fresh_root();
    const struct ent dirsym[] = {{'l', "d", outside}, {'d', "d"}};
    ok(apply(mktar("ds.tar", NULL, dirsym, 2), NULL, &err) == 0, "a directory over a symlink applies");
    ok(lst("d", &st) == 0 && S_ISDIR(st.st_mode) && sentinels_intact(), "the symlink is replaced by a directory");
    fresh_root();
    const struct ent hlsym[] = {{'l', "sl", outside_pw}, {'h', "h", "sl"}};
    ok(apply(mktar("hs.tar", NULL, hlsym, 2), NULL, &err) == 0 && lst("h", &st) == 0 && S_ISLNK(st.st_mode) &&
           sentinels_intact(),
       "a hardlink to a symlink links the symlink itself");
    fresh_root();
    const struct ent hlmiss[] = {{'h', "h", "nope"}};
    e2b_error_freep(&err);
    ok(apply(mktar("hm.tar", NULL, hlmiss, 1), NULL, &err) < 0 && err && strstr(err->msg, "not found"),
       "a hardlink to a missing file fails");
}

static void test_bad_blobs(void)
{
    fresh_root();
    const struct ent v[] = {{'f', "a", "a"}};
    const char *blob = mktar("good.tar.gz", "gzip", v, 1);
    _cleanup_error_ struct e2b_error *err = NULL;
    struct e2b_layer_opts o = {.name = "sha256:abc", .expect_digest = "sha256:0000"};
    {
        int rc_ = e2b_layer_apply(blob, root, &o, NULL, &err);
        ok(rc_ < 0 && err && strstr(err->msg, "layer sha256:abc") &&
               strstr(err->msg, "not sha256:0000"),
       "digest mismatch names the layer (%s)", err ? err->msg : "");
    }
    e2b_error_freep(&err);
    struct e2b_layer_result r;
    ok(e2b_layer_apply(blob, root, NULL, &r, &err) == 0, "no options");
    struct e2b_layer_opts o2 = {.expect_digest = r.digest, .expect_diff_id = r.diff_id};
    ok(e2b_layer_apply(blob, root, &o2, NULL, &err) == 0, "matching digest and diff_id");
    struct e2b_layer_opts o3 = {.expect_diff_id = r.digest};
    {
        int rc_ = e2b_layer_apply(blob, root, &o3, NULL, &err);
        ok(rc_ < 0 && err && strstr(err->msg, "diff_id"), "diff_id mismatch");
    }
    e2b_error_freep(&err);

    /* a truncated gzip */
    char p[600];
    snprintf(p, sizeof(p), "%s/trunc.tar.gz", base);
    _cleanup_free_ char *d = NULL;
    size_t len;
    e2b_read_file(blob, &d, &len, NULL);
    e2b_write_file_atomic(p, d, len / 2, 0644, NULL);
    {
        int rc_ = e2b_layer_apply(p, root, NULL, NULL, &err);
        ok(rc_ < 0 && err, "truncated gzip fails: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);
    snprintf(p, sizeof(p), "%s/junk", base);
    e2b_write_file_atomic(p, "this is not a tar archive at all, really not", 44, 0644, NULL);
    {
        int rc_ = e2b_layer_apply(p, root, NULL, NULL, &err);
        ok(rc_ < 0 && err, "junk fails: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);
    snprintf(p, sizeof(p), "%s/x.xz", base);
    e2b_write_file_atomic(p, "\xfd" "7zXZ\0\0\0\0", 10, 0644, NULL);
    {
        int rc_ = e2b_layer_apply(p, root, NULL, NULL, &err);
        ok(rc_ < 0 && err && strstr(err->msg, "unsupported compression"),
       "xz refused: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);
    snprintf(p, sizeof(p), "%s/empty", base);
    e2b_write_file_atomic(p, "", 0, 0644, NULL);
    ok(e2b_layer_apply(p, root, NULL, &r, &err) == 0 && r.entries == 0, "an empty blob is an empty layer (%s)",
       err ? err->msg : "");
    e2b_error_freep(&err);
    ok(e2b_layer_apply("/nonexistent/blob", root, NULL, NULL, &err) < 0 && err && err->code == E2B_ERR_NOT_FOUND,
       "missing blob");
}

/* A layer written by GNU tar (pax xattr records, long names, hardlinks). */
static void test_gnu_tar(void)
{
    if (system("command -v setcap >/dev/null && command -v tar >/dev/null") != 0) {
        ok(1, "# SKIP setcap or tar missing");
        return;
    }
    fresh_root();
    char cmd[2048];
    const char *longname = "a-very-long-directory-name-that-is-longer-than-one-hundred-characters-in-total-for-sure/"
                           "and-a-long-file-name-too.txt";
    snprintf(cmd, sizeof(cmd),
             "set -e; s='%s/gsrc'; rm -rf \"$s\"; mkdir -p \"$s/bin\" \"$s/$(dirname %s)\"; echo ping > \"$s/bin/ping\";"
             " setcap cap_net_raw+ep \"$s/bin/ping\"; echo long > \"$s/%s\"; ln \"$s/bin/ping\" \"$s/bin/ping6\";"
             " tar --xattrs --xattrs-include='*' --format=posix --numeric-owner -C \"$s\" -czf '%s/gnu.tar.gz' .",
             base, longname, longname, base);
    ok(system(cmd) == 0, "GNU tar layer written");
    char blob[600];
    snprintf(blob, sizeof(blob), "%s/gnu.tar.gz", base);
    _cleanup_error_ struct e2b_error *err = NULL;
    int rc = apply(blob, NULL, &err);
    ok(rc == 0, "GNU tar layer applies (%s)", err ? err->msg : "");
    char a[1024], b[1024];
    snprintf(a, sizeof(a), "%s/gsrc/bin/ping", base);
    snprintf(b, sizeof(b), "%s/bin/ping", root);
    uint8_t va[64], vb[64];
    ssize_t na = getxattr(a, "security.capability", va, sizeof(va));
    ssize_t nb = getxattr(b, "security.capability", vb, sizeof(vb));
    ok(na > 0 && na == nb && !memcmp(va, vb, (size_t)na), "file capability from GNU tar's pax record");
    struct stat s1, s2;
    ok(lst("bin/ping", &s1) == 0 && lst("bin/ping6", &s2) == 0 && s1.st_ino == s2.st_ino, "GNU tar hardlink");
    _cleanup_free_ char *l = slurp(longname);
    is_str(l, "long\n", "long name");
}

int main(void)
{
    if (geteuid() != 0)
        tap_skip_all("needs root (owners, device nodes, security xattrs)");
    umask(077); /* modes must come from the layer, not the umask */
    snprintf(base, sizeof(base), "/tmp/t-layer-%d", (int)getpid());
    snprintf(root, sizeof(root), "%s/root", base);
    mkdir(base, 0755);
    char p[600];
    snprintf(p, sizeof(p), "%s/etc", base);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/etc/passwd", base);
    e2b_write_file_atomic(p, "SENTINEL\n", 9, 0644, NULL);
    snprintf(p, sizeof(p), "%s/etc/shadow", base);
    e2b_write_file_atomic(p, "SECRET\n", 7, 0600, NULL);

    test_types("gzip");
    test_types("zstd");
    test_types(NULL);
    test_whiteouts();
    test_attacks();
    test_bad_blobs();
    test_gnu_tar();

    e2b_rm_rf(base, NULL);
    return tap_done();
}
