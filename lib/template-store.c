/* template-store.c - see template-store.h */
#include "template-store.h"
#include "config.h"
#include "fsutil.h"

#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

char *e2b_random_id(void)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[20];
    char *id = xmalloc(21);
    for (size_t i = 0; i < sizeof(raw);) { /* rejection sampling keeps it uniform */
        unsigned char b;
        if (getrandom(&b, 1, 0) != 1)
            abort();
        if (b < 252)
            raw[i++] = b;
    }
    for (size_t i = 0; i < 20; i++)
        id[i] = alphabet[raw[i] % 36];
    id[20] = '\0';
    return id;
}

bool e2b_template_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 128)
        return false;
    for (const char *p = name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '_'))
            return false;
    return true;
}

bool e2b_template_tag_valid(const char *tag)
{
    size_t n = strlen(tag);
    if (n == 0 || n > 128)
        return false;
    for (const char *p = tag; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

char *e2b_rfc3339(int64_t wall_ms)
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[64];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    return xasprintf("%s.%03dZ", buf, (int)(wall_ms % 1000));
}

int e2b_store_open(struct e2b_store *store, struct e2b_error **err)
{
    _cleanup_free_ char *data = e2b_data_dir();
    store->root = e2b_path_join(data, "templates");
    _cleanup_free_ char *staging = e2b_path_join(store->root, ".staging");
    if (e2b_mkdir_p(staging, 0755, err) < 0) {
        free(store->root);
        store->root = NULL;
        return -1;
    }
    return 0;
}

void e2b_store_close(struct e2b_store *store)
{
    free(store->root);
    store->root = NULL;
}

/* The store-wide lock: a commit's rename and switch, a delete's rename and
 * the collector's choice of victims must not interleave (the collector
 * would take a just-renamed build that is not current yet for garbage). */
static int store_lock(struct e2b_store *store)
{
    _cleanup_free_ char *p = e2b_path_join(store->root, ".lock");
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd >= 0)
        while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
            ;
    return fd;
}

static void store_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

#define IN_USE ".in-use"

int e2b_store_pin(const char *path, struct e2b_error **err)
{
    if (!path)
        return 0;
    _cleanup_free_ char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return e2b_error_set(err, E2B_ERR_INVALID, "'%s' is not in a template build", path);
    *slash = '\0';
    _cleanup_free_ char *lk = e2b_path_join(dir, IN_USE);
    int fd = open(lk, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot pin the template build '%s'", dir);
    /* the collector holds it exclusively only while it moves a build away */
    while (flock(fd, LOCK_SH) < 0)
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return e2b_error_sys(err, e, "cannot lock '%s'", lk);
        }
    struct stat a, b;
    if (fstat(fd, &a) < 0 || stat(lk, &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
        close(fd);
        return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                             "the template build '%s' was removed while the sandbox started (the template "
                             "was rebuilt or deleted); try again", dir);
    }
    return 0; /* fd stays open: the pin lasts as long as this process */
}

static char *build_dir_of(const char *path)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    return dir;
}

int e2b_store_hold(const char *path, const char *id, struct e2b_error **err)
{
    _cleanup_free_ char *dir = build_dir_of(path);
    _cleanup_free_ char *held = e2b_path_join(dir, ".held");
    _cleanup_free_ char *lk = e2b_path_join(dir, IN_USE);
    _cleanup_close_ int fd = open(lk, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 || flock(fd, LOCK_SH) < 0)
        return e2b_error_sys(err, errno, "cannot hold the template build '%s'", dir);
    _cleanup_free_ char *p = e2b_path_join(held, id);
    if ((mkdir(held, 0755) < 0 && errno != EEXIST) ||
        e2b_write_file_atomic(p, "", 0, 0644, NULL) < 0)
        return e2b_error_sys(err, errno, "cannot hold the template build '%s'", dir);
    return 0;
}

void e2b_store_release(const char *path, const char *id)
{
    _cleanup_free_ char *dir = build_dir_of(path);
    _cleanup_free_ char *p = xasprintf("%s/.held/%s", dir, id);
    unlink(p);
}

static bool held(const char *dir)
{
    _cleanup_free_ char *p = e2b_path_join(dir, ".held");
    _cleanup_closedir_ DIR *d = opendir(p);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.')
            return true;
    return false;
}

/* Move a build no sandbox uses out of the store into .staging/gc-*; the
 * caller removes it there. NULL when it is in use (or already gone). */
static char *gc_take(struct e2b_store *store, const char *dir)
{
    _cleanup_free_ char *lk = e2b_path_join(dir, IN_USE);
    _cleanup_close_ int fd = open(lk, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0 || held(dir))
        return NULL;
    _cleanup_free_ char *id = e2b_random_id();
    char *to = xasprintf("%s/.staging/gc-%s.%ld", store->root, id, (long)getpid());
    if (rename(dir, to) < 0) {
        free(to);
        return NULL;
    }
    return to; /* unlocked on return: a pin that waited finds it gone */
}

/* Builds of a template (or of a deleted template's tree) other than keep. */
static void gc_builds(struct e2b_store *store, const char *tdir, const char *keep, char ***victims)
{
    _cleanup_free_ char *builds = e2b_path_join(tdir, "builds");
    _cleanup_closedir_ DIR *d = opendir(builds);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.' || (keep && STREQ(de->d_name, keep)))
            continue;
        _cleanup_free_ char *b = e2b_path_join(builds, de->d_name);
        char *v = gc_take(store, b);
        if (v) {
            *victims = e2b_strv_push(*victims, v);
            free(v);
        }
    }
}

static bool dir_empty(const char *path)
{
    _cleanup_closedir_ DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            return false;
    return true;
}

/* Remove every build that is neither current nor in use by a sandbox, and
 * deleted templates once no sandbox uses them. Never waits for a sandbox. */
static void collect_garbage(struct e2b_store *store)
{
    char **victims = NULL;
    int lk = store_lock(store);
    _cleanup_closedir_ DIR *d = opendir(store->root);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_free_ char *tdir = e2b_path_join(store->root, de->d_name);
        _cleanup_free_ char *link = e2b_path_join(tdir, "current");
        char target[512];
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n <= 0)
            continue; /* no current build: a template being made, leave it */
        target[n] = '\0';
        const char *keep = e2b_str_has_prefix(target, "builds/") ? target + 7 : NULL;
        if (keep)
            gc_builds(store, tdir, keep, &victims);
    }
    /* deleted templates: their builds as sandboxes let go of them */
    _cleanup_free_ char *staging = e2b_path_join(store->root, ".staging");
    _cleanup_closedir_ DIR *sd = opendir(staging);
    while (sd && (de = readdir(sd))) {
        if (!e2b_str_has_prefix(de->d_name, "deleted-"))
            continue;
        _cleanup_free_ char *tdir = e2b_path_join(staging, de->d_name);
        gc_builds(store, tdir, NULL, &victims);
        _cleanup_free_ char *builds = e2b_path_join(tdir, "builds");
        if (dir_empty(builds)) {
            _cleanup_free_ char *id = e2b_random_id();
            char *to = xasprintf("%s/gc-%s.%ld", staging, id, (long)getpid());
            if (rename(tdir, to) == 0)
                victims = e2b_strv_push(victims, to);
            free(to);
        }
    }
    store_unlock(lk);
    /* the slow part, outside the lock: the victims are ours alone now */
    for (char **v = victims; v && *v; v++)
        e2b_rm_rf(*v, NULL);
    e2b_strv_free(victims);
}

static int load_meta(const char *build_dir, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *p = e2b_path_join(build_dir, "template.json");
    return e2b_json_load_file(p, ret, err);
}

static bool meta_has_tag(json_t *meta, const char *tag)
{
    json_t *tags = json_object_get(meta, "tags"), *v;
    if (!json_is_array(tags))
        return STREQ(tag, "default"); /* builds from before tags */
    size_t i;
    json_array_foreach(tags, i, v) if (json_is_string(v) && STREQ(json_string_value(v), tag)) return true;
    return false;
}

/* "name" matches an alias or name; "name:tag" also needs the tag. */
static bool meta_has_name(json_t *meta, const char *name)
{
    static const char *const keys[] = {"aliases", "names"};
    const char *colon = strchr(name, ':');
    size_t n = colon ? (size_t)(colon - name) : strlen(name);
    if (colon && !meta_has_tag(meta, colon + 1))
        return false;
    for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
        json_t *arr = json_object_get(meta, keys[k]), *v;
        size_t i;
        json_array_foreach(arr, i, v) {
            const char *s = json_string_value(v);
            if (s && strlen(s) == n && !strncmp(s, name, n))
                return true;
        }
    }
    return false;
}

/* Current build dir of a template ID, or NULL if it has none. */
static char *current_dir(struct e2b_store *store, const char *id)
{
    _cleanup_free_ char *link = xasprintf("%s/%s/current", store->root, id);
    char target[512];
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
        return NULL;
    target[n] = '\0';
    return xasprintf("%s/%s/%s", store->root, id, target);
}

int e2b_store_find(struct e2b_store *store, const char *id_or_alias, json_t **ret_meta,
                   char **ret_dir, struct e2b_error **err)
{
    if (!id_or_alias || !*id_or_alias || strchr(id_or_alias, '/') || id_or_alias[0] == '.')
        return e2b_error_set(err, E2B_ERR_INVALID, "invalid template name '%s'",
                             id_or_alias ? id_or_alias : "");
    _cleanup_free_ char *dir = current_dir(store, id_or_alias);
    json_t *meta = NULL;
    if (dir && load_meta(dir, &meta, err) < 0)
        return -1;
    if (!dir) {
        _cleanup_closedir_ DIR *d = opendir(store->root);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            _cleanup_free_ char *cand = current_dir(store, de->d_name);
            json_t *m = NULL;
            if (!cand || load_meta(cand, &m, NULL) < 0)
                continue;
            if (meta_has_name(m, id_or_alias)) {
                meta = m;
                dir = TAKE_PTR(cand);
                break;
            }
            json_decref(m);
        }
    }
    if (!dir && (STREQ(id_or_alias, "base") || e2b_str_has_prefix(id_or_alias, "base:")))
        return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                             "template '%s' not found (it is the default template: build it from e2b's "
                             "sources with 'e2b template build -n base templates/base'; its apt-get step "
                             "needs network)", id_or_alias);
    if (!dir)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "template '%s' not found", id_or_alias);
    if (ret_meta)
        *ret_meta = meta;
    else
        json_decref(meta);
    if (ret_dir)
        *ret_dir = TAKE_PTR(dir);
    return 0;
}

int e2b_store_list(struct e2b_store *store, json_t **ret_list, struct e2b_error **err)
{
    collect_garbage(store);
    json_t *list = json_array();
    _cleanup_closedir_ DIR *d = opendir(store->root);
    if (!d) {
        json_decref(list);
        return e2b_error_sys(err, errno, "cannot read '%s'", store->root);
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_free_ char *dir = current_dir(store, de->d_name);
        json_t *m = NULL;
        if (dir && load_meta(dir, &m, NULL) == 0)
            json_array_append_new(list, m);
    }
    /* Newest first: createdAt is RFC 3339, so string order is time order. */
    size_t n = json_array_size(list);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            const char *a = e2b_json_str(json_array_get(list, j - 1), "createdAt");
            const char *b = e2b_json_str(json_array_get(list, j), "createdAt");
            if (!a || !b || strcmp(a, b) >= 0)
                break;
            json_t *x = json_incref(json_array_get(list, j - 1));
            json_array_set(list, j - 1, json_array_get(list, j));
            json_array_set_new(list, j, x);
        }
    *ret_list = list;
    return 0;
}

int e2b_store_delete(struct e2b_store *store, const char *id_or_alias, struct e2b_error **err)
{
    _cleanup_json_ json_t *meta = NULL;
    if (e2b_store_find(store, id_or_alias, &meta, NULL, err) < 0)
        return -1;
    const char *id = e2b_json_str(meta, "templateID");
    if (!id)
        return e2b_error_set(err, E2B_ERR_INVALID, "template '%s' has no ID", id_or_alias);
    /* Move it out of sight first, so a half-deleted template is never found;
     * the collector removes its builds as the sandboxes using them end. */
    _cleanup_free_ char *from = e2b_path_join(store->root, id);
    _cleanup_free_ char *rnd = e2b_random_id();
    _cleanup_free_ char *to = xasprintf("%s/.staging/deleted-%s-%s", store->root, id, rnd);
    int lk = store_lock(store);
    int r = rename(from, to);
    int e = errno;
    store_unlock(lk);
    if (r < 0)
        return e2b_error_sys(err, e, "cannot delete template '%s'", id_or_alias);
    collect_garbage(store);
    return 0;
}

int e2b_store_begin(struct e2b_store *store, const char *name, struct e2b_store_txn *txn,
                    struct e2b_error **err)
{
    memset(txn, 0, sizeof(*txn));
    txn->store = store;
    _cleanup_json_ json_t *meta = NULL;
    _cleanup_error_ struct e2b_error *find_err = NULL;
    if (name && e2b_store_find(store, name, &meta, NULL, &find_err) == 0) {
        txn->template_id = xstrdup(e2b_json_str(meta, "templateID"));
        txn->existing = true;
    } else {
        txn->template_id = e2b_random_id();
    }
    txn->build_id = e2b_random_id();
    /* The owner's pid in the name lets a later run clean up after a kill -9. */
    txn->dir = xasprintf("%s/.staging/%s.%ld", store->root, txn->build_id, (long)getpid());
    if (e2b_mkdir_p(txn->dir, 0755, err) < 0) {
        e2b_store_abort(txn);
        return -1;
    }
    return 0;
}

int e2b_store_commit(struct e2b_store_txn *txn, json_t *meta, struct e2b_error **err)
{
    struct e2b_store *store = txn->store;
    _cleanup_free_ char *meta_path = e2b_path_join(txn->dir, "template.json");
    if (e2b_json_save_file(meta_path, meta, 0644, err) < 0)
        return -1;
    _cleanup_free_ char *tdir = e2b_path_join(store->root, txn->template_id);
    _cleanup_free_ char *builds = e2b_path_join(tdir, "builds");
    if (e2b_mkdir_p(builds, 0755, err) < 0)
        return -1;
    _cleanup_free_ char *final = e2b_path_join(builds, txn->build_id);
    int lk = store_lock(store);
    if (rename(txn->dir, final) < 0) {
        int e = errno;
        store_unlock(lk);
        return e2b_error_sys(err, e, "cannot store build '%s'", txn->build_id);
    }
    _cleanup_free_ char *target = xasprintf("builds/%s", txn->build_id);
    _cleanup_free_ char *tmplink = xasprintf("%s/current.tmp.%ld", tdir, (long)getpid());
    _cleanup_free_ char *link = e2b_path_join(tdir, "current");
    unlink(tmplink);
    if (symlink(target, tmplink) < 0 || rename(tmplink, link) < 0) {
        int e = errno;
        unlink(tmplink);
        e2b_rm_rf(final, NULL);
        store_unlock(lk);
        return e2b_error_sys(err, e, "cannot switch template '%s' to its new build",
                             txn->template_id);
    }
    store_unlock(lk);
    free(txn->dir);
    txn->dir = NULL;
    /* The old build may be the lower tree of running sandboxes: the
     * collector leaves it until they end. */
    collect_garbage(store);
    return 0;
}

void e2b_store_abort(struct e2b_store_txn *txn)
{
    if (txn->dir)
        e2b_rm_rf(txn->dir, NULL);
    free(txn->dir);
    free(txn->template_id);
    free(txn->build_id);
    memset(txn, 0, sizeof(*txn));
}

void e2b_store_clean_stale(struct e2b_store *store)
{
    _cleanup_free_ char *staging = e2b_path_join(store->root, ".staging");
    _cleanup_closedir_ DIR *d = opendir(staging);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        /* deleted templates are the collector's: sandboxes may use them */
        if (de->d_name[0] == '.' || e2b_str_has_prefix(de->d_name, "deleted-"))
            continue;
        const char *dot = strrchr(de->d_name, '.');
        const char *dash = strrchr(de->d_name, '-');
        const char *pidstr = dot ? dot + 1 : dash ? dash + 1 : NULL;
        long pid = pidstr ? strtol(pidstr, NULL, 10) : 0;
        if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
            continue; /* its builder is still running */
        _cleanup_free_ char *p = e2b_path_join(staging, de->d_name);
        e2b_rm_rf(p, NULL);
    }
    collect_garbage(store);
}

json_t *e2b_template_meta_new(const struct e2b_template_info *t)
{
    _cleanup_free_ char *now = e2b_rfc3339(e2b_wall_ms());
    json_t *meta = json_pack("{s:s,s:s,s:i,s:i,s:i,s:b,s:[s],s:[s],s:s,s:s,s:s,s:s}", "templateID",
                             t->template_id, "buildID", t->build_id, "cpuCount", (int)(t->cpu_count ?: 2),
                             "memoryMB", (int)(t->memory_mb ?: 512), "diskSizeMB", (int)t->disk_mb, "public", 0,
                             "aliases", t->name, "names", t->name, "createdAt", now, "updatedAt", now,
                             "envdVersion", E2B_VERSION, "buildStatus", "ready");
    json_t *tags = e2b_json_strv((char *const *)t->tags);
    if (!json_array_size(tags))
        json_array_append_new(tags, json_string("default"));
    json_object_set_new(meta, "tags", tags);
    json_object_set_new(meta, "startCmd", t->start_cmd ? json_string(t->start_cmd) : json_null());
    json_object_set_new(meta, "readyCmd", t->ready_cmd ? json_string(t->ready_cmd) : json_null());
    if (t->runtime)
        json_object_set_new(meta, "runtime", json_string(t->runtime));
    return meta;
}
