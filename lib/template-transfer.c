/* template-transfer.c - see template-transfer.h */
#include "template-transfer.h"
#include "dl-archive.h"
#include "ext4.h"
#include "fsutil.h"
#include "json.h"
#include "layer.h"
#include "strbuf.h"
#include "template-store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#define IMPORT_MIN_HEADROOM_MB 16

struct walk {
    struct archive *a;
    struct strbuf path; /* "rootfs/..." of the entry being written */
    json_t *links;      /* "dev:ino" -> first path, for hardlinks */
    struct e2b_error **err;
};

static int add_xattrs(struct archive_entry *e, const char *full)
{
    char names[8192];
    ssize_t n = llistxattr(full, names, sizeof(names));
    for (ssize_t off = 0; n > 0 && off < n; off += (ssize_t)strlen(names + off) + 1) {
        const char *name = names + off;
        char value[65536];
        ssize_t vl = lgetxattr(full, name, value, sizeof(value));
        if (vl >= 0)
            archive_entry_xattr_add_entry(e, name, value, (size_t)vl);
    }
    return 0;
}

/* One entry (and, for a directory, everything below it), never following a
 * symlink: full is the path on disk, w->path the name in the tar. */
static int walk_entry(struct walk *w, const char *full)
{
    struct stat st;
    if (lstat(full, &st) < 0)
        return e2b_error_sys(w->err, errno, "cannot export '%s'", full);
    if (S_ISSOCK(st.st_mode))
        return 0;
    struct archive_entry *e = archive_entry_new();
    archive_entry_copy_stat(e, &st);
    archive_entry_set_pathname(e, w->path.buf);
    add_xattrs(e, full);
    char target[4096];
    if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlink(full, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        archive_entry_set_symlink(e, target);
    }
    bool data = S_ISREG(st.st_mode);
    if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
        _cleanup_free_ char *k =
            xasprintf("%lu:%lu", (unsigned long)st.st_dev, (unsigned long)st.st_ino);
        const char *first = e2b_json_str(w->links, k);
        if (first) {
            archive_entry_set_hardlink(e, first);
            archive_entry_set_size(e, 0);
            data = false;
        } else {
            json_object_set_new(w->links, k, json_string(w->path.buf));
        }
    }
    int r = 0;
    if (archive_write_header(w->a, e) != ARCHIVE_OK)
        r = e2b_error_set(w->err, E2B_ERR_GENERIC, "cannot export '%s': %s", full,
                          archive_error_string(w->a));
    archive_entry_free(e);
    if (r == 0 && data) {
        _cleanup_close_ int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return e2b_error_sys(w->err, errno, "cannot export '%s'", full);
        char buf[65536];
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
            if (archive_write_data(w->a, buf, (size_t)n) < 0)
                return e2b_error_set(w->err, E2B_ERR_GENERIC, "cannot export '%s': %s", full,
                                     archive_error_string(w->a));
        if (n < 0)
            return e2b_error_sys(w->err, errno, "cannot export '%s'", full);
    }
    if (r < 0 || !S_ISDIR(st.st_mode))
        return r;
    _cleanup_closedir_ DIR *d = opendir(full);
    if (!d)
        return e2b_error_sys(w->err, errno, "cannot export '%s'", full);
    struct dirent *de;
    size_t keep = w->path.len;
    while (r == 0 && (de = readdir(d))) {
        if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
            continue;
        strbuf_setlen(&w->path, keep);
        strbuf_addf(&w->path, "%s%s", keep && w->path.buf[keep - 1] == '/' ? "" : "/", de->d_name);
        _cleanup_free_ char *child = e2b_path_join(full, de->d_name);
        r = walk_entry(w, child);
    }
    strbuf_setlen(&w->path, keep);
    return r;
}

int e2b_template_export(const char *template_id, const char *build_id, int fd,
                        struct e2b_error **err)
{
    if (e2b_archive_load(err) < 0)
        return -1;
    struct e2b_store store;
    if (e2b_store_open(&store, err) < 0)
        return -1;
    _cleanup_json_ json_t *meta = NULL;
    _cleanup_free_ char *dir = NULL;
    int r = e2b_store_find(&store, template_id, &meta, &dir, err);
    e2b_store_close(&store);
    if (r < 0)
        return -1;
    if (!STREQ(e2b_json_str(meta, "templateID") ? e2b_json_str(meta, "templateID") : "",
               template_id) ||
        !e2b_json_str(meta, "buildID") || !STREQ(e2b_json_str(meta, "buildID"), build_id))
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "template '%s' has no current build '%s' here",
                             template_id, build_id);
    _cleanup_free_ char *root = e2b_path_join(dir, "rootfs");
    if (access(root, F_OK) < 0)
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                             "template '%s' has only an ext4 image here (no rootfs/ tree to send)",
                             template_id);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (archive_write_open_fd(a, fd) != ARCHIVE_OK) {
        r = e2b_error_set(err, E2B_ERR_GENERIC, "cannot write a tar: %s", archive_error_string(a));
        archive_write_free(a);
        return r;
    }
    /* template.json first: the importer reads it before the tree */
    _cleanup_free_ char *mj = e2b_json_dump(meta, JSON_INDENT(2));
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "template.json");
    archive_entry_copy_stat(e, &(struct stat){ .st_mode = S_IFREG | 0644,
                                               .st_size = (off_t)strlen(mj),
                                               .st_mtim = { .tv_sec = e2b_wall_ms() / 1000 } });
    r = archive_write_header(a, e) == ARCHIVE_OK && archive_write_data(a, mj, strlen(mj)) >= 0
            ? 0
            : e2b_error_set(err, E2B_ERR_GENERIC, "cannot write a tar: %s",
                            archive_error_string(a));
    archive_entry_free(e);
    struct walk w = { .a = a, .links = json_object(), .err = err };
    strbuf_init(&w.path);
    strbuf_addstr(&w.path, "rootfs");
    if (r == 0)
        r = walk_entry(&w, root);
    strbuf_release(&w.path);
    json_decref(w.links);
    if (archive_write_close(a) != ARCHIVE_OK && r == 0)
        r = e2b_error_set(err, E2B_ERR_GENERIC, "cannot finish the tar: %s",
                          archive_error_string(a));
    archive_write_free(a);
    return r;
}

/* template.json, the tar's first entry. */
static int read_meta(const char *tar, json_t **ret, struct e2b_error **err)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    archive_read_support_filter_none(a);
    int r = -1;
    struct archive_entry *e;
    if (archive_read_open_filename(a, tar, 65536) != ARCHIVE_OK ||
        archive_read_next_header(a, &e) != ARCHIVE_OK) {
        r = e2b_error_set(err, E2B_ERR_INVALID, "the template's tar cannot be read: %s",
                          archive_error_string(a));
    } else if (!STREQ(archive_entry_pathname(e), "template.json") ||
               archive_entry_size(e) > (1 << 20)) {
        r = e2b_error_set(err, E2B_ERR_INVALID,
                          "the template's tar does not start with template.json");
    } else {
        struct strbuf b = STRBUF_INIT;
        char buf[16384];
        ssize_t n;
        while ((n = archive_read_data(a, buf, sizeof(buf))) > 0)
            strbuf_add(&b, buf, (size_t)n);
        r = n < 0 ? e2b_error_set(err, E2B_ERR_INVALID, "the template's tar: %s",
                                  archive_error_string(a))
                  : e2b_json_parse(b.buf, b.len, "the template's template.json", ret, err);
        strbuf_release(&b);
    }
    archive_read_free(a);
    return r;
}

int e2b_template_import(const char *tar, struct e2b_error **err)
{
    if (e2b_archive_load(err) < 0)
        return -1;
    _cleanup_json_ json_t *meta = NULL;
    if (read_meta(tar, &meta, err) < 0)
        return -1;
    const char *tid = e2b_json_str(meta, "templateID"), *bid = e2b_json_str(meta, "buildID");
    if (!tid || !bid)
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "the template's template.json has no templateID or buildID");
    struct e2b_store store;
    if (e2b_store_open(&store, err) < 0)
        return -1;
    _cleanup_json_ json_t *have = NULL;
    if (e2b_store_find(&store, tid, &have, NULL, NULL) == 0 && e2b_json_str(have, "buildID") &&
        STREQ(e2b_json_str(have, "buildID"), bid)) {
        e2b_store_close(&store);
        return 0;
    }
    json_t *aliases = json_object_get(meta, "aliases");
    const char *name = json_is_string(json_array_get(aliases, 0))
                           ? json_string_value(json_array_get(aliases, 0))
                           : NULL;
    struct e2b_store_txn txn;
    int r = e2b_store_begin(&store, name, tid, bid, &txn, err);
    if (r == 0) {
        struct e2b_layer_opts lo = { .name = "the template from another node" };
        r = e2b_layer_apply(tar, txn.dir, &lo, NULL, err);
    }
    _cleanup_free_ char *root = r == 0 ? e2b_path_join(txn.dir, "rootfs") : NULL;
    if (r == 0 && access(root, F_OK) < 0)
        r = e2b_error_set(err, E2B_ERR_INVALID, "the template's tar has no rootfs/");
    if (r == 0) {
        struct e2b_tree_usage u;
        uint64_t want = (uint64_t)e2b_json_int(meta, "diskSizeMB", 0),
                 headroom = IMPORT_MIN_HEADROOM_MB;
        if (e2b_tree_usage(root, &u, NULL) == 0 &&
            want > u.bytes / (1 << 20) + IMPORT_MIN_HEADROOM_MB)
            headroom = want - u.bytes / (1 << 20) - 1;
        _cleanup_free_ char *image = e2b_path_join(txn.dir, "rootfs.ext4");
        r = e2b_ext4_from_dir(root, image, headroom, NULL, err);
    }
    if (r == 0)
        r = e2b_store_commit(&txn, meta, err);
    e2b_store_abort(&txn); /* after a commit: frees what is left */
    if (r < 0)
        e2b_error_wrap(err, "cannot import template '%s'", tid);
    e2b_store_close(&store);
    return r;
}
