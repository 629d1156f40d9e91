/* snapshot-store.c - see snapshot-store.h */
#include "snapshot-store.h"
#include "config.h"
#include "fsutil.h"
#include "template-store.h"

#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>

#define IN_USE  ".in-use"
#define HELD    ".held"
#define DELETED ".deleted"
#define META    "snapshot.json"

char *e2b_snapshots_dir(void)
{
    _cleanup_free_ char *d = e2b_data_dir();
    return e2b_path_join(d, "snapshots");
}

/* The store's lock (exclusive): an fd to close, or -1 with *err set. */
static int store_lock(const char *root, struct e2b_error **err)
{
    if (e2b_mkdir_p(root, 0700, err) < 0)
        return -1;
    _cleanup_free_ char *p = e2b_path_join(root, ".lock");
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot open '%s'", p);
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return e2b_error_sys(err, e, "cannot lock '%s'", p);
        }
    return fd;
}

static bool key_valid(const char *k)
{
    return strlen(k) == 20 && strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789") == 20;
}

/* "name:tag" -> base "name" and tag (default "default"); false when it is
 * not a name (or ID) with a valid tag. */
static bool split_ref(const char *ref, char **ret_base, char **ret_tag)
{
    const char *colon = strrchr(ref, ':');
    _cleanup_free_ char *base = colon ? xstrndup(ref, (size_t)(colon - ref)) : xstrdup(ref);
    const char *tag = colon ? colon + 1 : "default";
    if (!e2b_template_tag_valid(tag) || !e2b_template_name_valid(base))
        return false;
    *ret_base = TAKE_PTR(base);
    *ret_tag = xstrdup(tag);
    return true;
}

bool e2b_snapshot_name_valid(const char *name)
{
    _cleanup_free_ char *base = NULL, *tag = NULL;
    return name && split_ref(name, &base, &tag);
}

static bool marked(const char *dir, const char *name)
{
    _cleanup_free_ char *p = e2b_path_join(dir, name);
    return access(p, F_OK) == 0;
}

static bool held(const char *dir)
{
    _cleanup_free_ char *p = e2b_path_join(dir, HELD);
    _cleanup_closedir_ DIR *d = opendir(p);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.')
            return true;
    return false;
}

/* Who holds it, for a message: "sandbox a, snapshot b" (at most 5). */
static char *holders(const char *dir)
{
    _cleanup_free_ char *p = e2b_path_join(dir, HELD);
    _cleanup_closedir_ DIR *d = opendir(p);
    _cleanup_free_ char *root = e2b_snapshots_dir();
    struct dirent *de;
    char *out = xstrdup("");
    int n = 0;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n++ == 5) {
            char *o = xasprintf("%s, ...", out);
            free(out);
            return o;
        }
        _cleanup_free_ char *sd = e2b_path_join(root, de->d_name);
        bool snap = access(sd, F_OK) == 0;
        char *o = xasprintf("%s%s%s %s", out, *out ? ", " : "",
                            snap ? "snapshot" : "paused sandbox", de->d_name);
        free(out);
        out = o;
    }
    return out;
}

/* The live snapshots (not deleted, whole), each {dir, meta}. */
static json_t *scan(const char *root)
{
    json_t *all = json_array();
    _cleanup_closedir_ DIR *d = opendir(root);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!key_valid(de->d_name))
            continue;
        _cleanup_free_ char *dir = e2b_path_join(root, de->d_name);
        _cleanup_free_ char *mp = e2b_path_join(dir, META);
        json_t *meta = NULL;
        if (marked(dir, DELETED) || e2b_json_load_file(mp, &meta, NULL) < 0)
            continue;
        json_array_append_new(all, json_pack("{s:s, s:o}", "dir", dir, "meta", meta));
    }
    return all;
}

static bool meta_matches(const json_t *meta, const char *base, const char *tag)
{
    const char *tid = e2b_json_str(meta, "templateID") ?: "", *name = e2b_json_str(meta, "name");
    return STREQ(e2b_json_str(meta, "tag") ?: "default", tag) &&
           (STREQ(tid, base) || (name && STREQ(name, base)));
}

int e2b_snapshot_begin(const char *name, struct e2b_snapshot_txn *txn, struct e2b_error **err)
{
    memset(txn, 0, sizeof(*txn));
    _cleanup_free_ char *base = NULL, *tag = NULL;
    if (name && !split_ref(name, &base, &tag))
        return e2b_error_set(
            err, E2B_ERR_INVALID,
            "snapshot name '%s' is not one: lowercase letters, digits, '-' and '_', at "
            "most 128, and an optional :tag (no namespace/: this server has one team)",
            name);
    _cleanup_free_ char *root = e2b_snapshots_dir();
    if (e2b_mkdir_p(root, 0700, err) < 0)
        return -1;
    txn->tag = tag ? TAKE_PTR(tag) : xstrdup("default");
    txn->name = TAKE_PTR(base);
    if (txn->name) { /* a name that has a template already: a new snapshot of it */
        _cleanup_json_ json_t *all = scan(root);
        size_t i;
        json_t *e;
        json_array_foreach(all, i, e) {
            const json_t *m = json_object_get(e, "meta");
            if (e2b_json_str(m, "name") && STREQ(e2b_json_str(m, "name"), txn->name) &&
                e2b_json_str(m, "templateID")) {
                txn->template_id = xstrdup(e2b_json_str(m, "templateID"));
                break;
            }
        }
    }
    if (!txn->template_id)
        txn->template_id = e2b_random_id();
    txn->key = e2b_random_id();
    txn->staging = xasprintf("%s/.new-%s.%ld", root, txn->key, (long)getpid());
    txn->save_dir = e2b_path_join(txn->staging, "save");
    txn->final_dir = e2b_path_join(root, txn->key);
    if (mkdir(txn->staging, 0700) < 0 || mkdir(txn->save_dir, 0700) < 0) {
        e2b_error_sys(err, errno, "cannot create '%s'", txn->save_dir);
        e2b_snapshot_abort(txn);
        return -1;
    }
    return 0;
}

static void mark_deleted(const char *dir)
{
    _cleanup_free_ char *p = e2b_path_join(dir, DELETED);
    e2b_write_file_atomic(p, "", 0, 0600, NULL);
}

static void collect_locked(const char *root);

int e2b_snapshot_commit(struct e2b_snapshot_txn *txn, json_t *meta, json_t **ret_meta,
                        struct e2b_error **err)
{
    _cleanup_free_ char *root = e2b_snapshots_dir();
    _cleanup_free_ char *sid =
        xasprintf("%s:%s", txn->name ? txn->name : txn->template_id, txn->tag);
    json_object_set_new(meta, "snapshotID", json_string(sid));
    json_object_set_new(meta, "templateID", json_string(txn->template_id));
    json_object_set_new(meta, "tag", json_string(txn->tag));
    json_object_set_new(meta, "name", txn->name ? json_string(txn->name) : json_null());
    json_object_set_new(meta, "names", txn->name ? json_pack("[s]", txn->name) : json_array());
    json_object_set_new(meta, "key", json_string(txn->key));
    _cleanup_free_ char *mp = e2b_path_join(txn->staging, META);
    if (e2b_json_save_file(mp, meta, 0600, err) < 0)
        return -1;
    int lk = store_lock(root, err);
    if (lk < 0)
        return -1;
    /* the one it replaces (same template and tag) goes */
    _cleanup_json_ json_t *all = scan(root);
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e) {
        const json_t *m = json_object_get(e, "meta");
        if (STREQ(e2b_json_str(m, "templateID") ?: "", txn->template_id) &&
            STREQ(e2b_json_str(m, "tag") ?: "", txn->tag) && !e2b_json_bool(m, "internal", false))
            mark_deleted(e2b_json_str(e, "dir"));
    }
    int r = 0;
    if (rename(txn->staging, txn->final_dir) < 0)
        r = e2b_error_sys(err, errno, "cannot make the snapshot '%s'", txn->final_dir);
    else
        collect_locked(root);
    close(lk);
    if (r == 0 && ret_meta)
        *ret_meta = json_incref(meta);
    return r;
}

void e2b_snapshot_abort(struct e2b_snapshot_txn *txn)
{
    if (txn->staging && access(txn->staging, F_OK) == 0)
        e2b_rm_rf(txn->staging, NULL);
    e2b_free_many(&txn->key, &txn->staging, &txn->save_dir, &txn->template_id, &txn->tag,
                  &txn->name, &txn->final_dir);
}

int e2b_snapshot_find(const char *ref, json_t **ret_meta, char **ret_dir, struct e2b_error **err)
{
    _cleanup_free_ char *base = NULL, *tag = NULL;
    if (!ref || !split_ref(ref, &base, &tag))
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "snapshot '%s' not found", ref ? ref : "");
    _cleanup_free_ char *root = e2b_snapshots_dir();
    _cleanup_json_ json_t *all = scan(root);
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e) {
        json_t *m = json_object_get(e, "meta");
        if (!meta_matches(m, base, tag))
            continue;
        if (ret_meta)
            *ret_meta = json_incref(m);
        if (ret_dir)
            *ret_dir = xstrdup(e2b_json_str(e, "dir"));
        return 0;
    }
    return e2b_error_set(err, E2B_ERR_NOT_FOUND, "snapshot '%s' not found", ref);
}

static int newest_first(const void *a, const void *b)
{
    const json_t *x = json_object_get(*(json_t *const *)a, "meta");
    const json_t *y = json_object_get(*(json_t *const *)b, "meta");
    long long tx = e2b_json_int(x, "createdAtMs", 0), ty = e2b_json_int(y, "createdAtMs", 0);
    if (tx != ty)
        return tx > ty ? -1 : 1;
    return strcmp(e2b_json_str(x, "key") ?: "", e2b_json_str(y, "key") ?: "");
}

int e2b_snapshot_list(json_t **ret, struct e2b_error **err)
{
    e2b_snapshot_collect();
    _cleanup_free_ char *root = e2b_snapshots_dir();
    _cleanup_json_ json_t *all = scan(root);
    size_t n = json_array_size(all);
    json_t **v = xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(all, i);
    qsort(v, n, sizeof(*v), newest_first);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_object_get(v[i], "meta");
        if (!e2b_json_bool(m, "internal", false))
            json_array_append(list, m);
    }
    free(v);
    *ret = list;
    return 0;
}

int e2b_snapshot_delete(const char *ref, struct e2b_error **err)
{
    _cleanup_free_ char *root = e2b_snapshots_dir();
    int lk = store_lock(root, err);
    if (lk < 0)
        return -1;
    _cleanup_free_ char *dir = NULL;
    _cleanup_json_ json_t *meta = NULL;
    int r = e2b_snapshot_find(ref, &meta, &dir, err);
    if (r == 0 && held(dir)) {
        _cleanup_free_ char *who = holders(dir);
        r = e2b_error_set(
            err, E2B_ERR_INVALID,
            "cannot delete snapshot '%s' because there are paused sandboxes or snapshots "
            "using it (%s): kill or delete those first",
            e2b_json_str(meta, "snapshotID") ?: ref, who);
    } else if (r == 0) {
        mark_deleted(dir);
        collect_locked(root);
    }
    close(lk);
    return r;
}

void e2b_snapshot_delete_dir(const char *dir)
{
    _cleanup_free_ char *root = e2b_snapshots_dir();
    int lk = store_lock(root, NULL);
    mark_deleted(dir);
    if (lk >= 0) {
        collect_locked(root);
        close(lk);
    }
}

int e2b_snapshot_pin(const char *dir, struct e2b_error **err)
{
    _cleanup_free_ char *lk = e2b_path_join(dir, IN_USE);
    /* the collector holds it exclusively only while it moves the snapshot away */
    int fd = e2b_pin_shared(lk, 0600);
    if (fd < 0 && errno == ESTALE)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                             "the snapshot in '%s' was deleted while the sandbox started", dir);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot pin the snapshot in '%s'", dir);
    return fd;
}

int e2b_snapshot_hold(const char *dir, const char *holder, struct e2b_error **err)
{
    _cleanup_free_ char *h = e2b_path_join(dir, HELD);
    _cleanup_free_ char *p = e2b_path_join(h, holder);
    if ((mkdir(h, 0700) < 0 && errno != EEXIST) || e2b_write_file_atomic(p, "", 0, 0600, NULL) < 0)
        return e2b_error_sys(err, errno, "cannot hold the snapshot in '%s'", dir);
    return 0;
}

void e2b_snapshot_release(const char *dir, const char *holder)
{
    _cleanup_free_ char *p = xasprintf("%s/" HELD "/%s", dir, holder);
    unlink(p);
}

/* Remove a deleted snapshot that nothing uses; true when it went. */
static bool collect_one(const char *root, const char *key)
{
    _cleanup_free_ char *dir = e2b_path_join(root, key);
    if (!marked(dir, DELETED) || held(dir))
        return false;
    _cleanup_free_ char *lk = e2b_path_join(dir, IN_USE);
    _cleanup_close_ int fd = open(lk, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
        return false;
    _cleanup_free_ char *mp = e2b_path_join(dir, META);
    _cleanup_json_ json_t *meta = NULL;
    (void)e2b_json_load_file(mp, &meta, NULL);
    _cleanup_free_ char *gone = xasprintf("%s/.gc-%s", root, key);
    if (rename(dir, gone) < 0)
        return false;
    /* what it held: the template build, the snapshot it came from */
    if (e2b_json_str(meta, "rootfs"))
        e2b_store_release(e2b_json_str(meta, "rootfs"), key);
    if (e2b_json_str(meta, "parent"))
        e2b_snapshot_release(e2b_json_str(meta, "parent"), key);
    e2b_rm_rf(gone, NULL);
    return true;
}

/* A staging directory ".new-<key>.<pid>" whose process is gone. */
static bool stale_staging(const char *name)
{
    if (strncmp(name, ".new-", 5) || strlen(name) < 27 || name[25] != '.')
        return false;
    char *end = NULL;
    long pid = strtol(name + 26, &end, 10);
    return pid > 0 && end && !*end && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static void collect_locked(const char *root)
{
    for (bool again = true; again;) { /* a snapshot that went may free the one it held */
        again = false;
        _cleanup_closedir_ DIR *d = opendir(root);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            _cleanup_free_ char *p = e2b_path_join(root, de->d_name);
            if (key_valid(de->d_name))
                again |= collect_one(root, de->d_name);
            else if (stale_staging(de->d_name) || e2b_str_has_prefix(de->d_name, ".gc-"))
                e2b_rm_rf(p, NULL);
        }
    }
}

void e2b_snapshot_collect(void)
{
    _cleanup_free_ char *root = e2b_snapshots_dir();
    if (access(root, F_OK) < 0)
        return;
    int lk = store_lock(root, NULL);
    if (lk < 0)
        return;
    collect_locked(root);
    close(lk);
}
