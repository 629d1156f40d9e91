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
    /* the collector holds it exclusively only while it moves a build away */
    int fd = e2b_pin_shared(lk, 0644);
    if (fd < 0 && errno == ESTALE)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                             "the template build '%s' was removed while the sandbox started (the template "
                             "was rebuilt or deleted); try again", dir);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot pin the template build '%s'", dir);
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

static bool tags_name_build(json_t *tags, const char *build_id)
{
    const char *k;
    json_t *v;
    json_object_foreach(tags, k, v) if (STREQ(e2b_json_str(v, "buildID") ?: "", build_id)) return true;
    return false;
}

/* Builds of a template (or of a deleted template's tree) other than keep
 * and those a tag names. */
static void gc_builds(struct e2b_store *store, const char *tdir, const char *keep, json_t *tags,
                      char ***victims)
{
    _cleanup_free_ char *builds = e2b_path_join(tdir, "builds");
    _cleanup_closedir_ DIR *d = opendir(builds);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.' || (keep && STREQ(de->d_name, keep)) || tags_name_build(tags, de->d_name))
            continue;
        _cleanup_free_ char *b = e2b_path_join(builds, de->d_name);
        char *v = gc_take(store, b);
        if (v) {
            *victims = e2b_strv_push(*victims, v);
            free(v);
        }
    }
}

static json_t *tags_load(struct e2b_store *store, const char *id);

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
        _cleanup_json_ json_t *tags = tags_load(store, de->d_name);
        if (keep)
            gc_builds(store, tdir, keep, tags, &victims);
    }
    /* deleted templates: their builds as sandboxes let go of them */
    _cleanup_free_ char *staging = e2b_path_join(store->root, ".staging");
    _cleanup_closedir_ DIR *sd = opendir(staging);
    while (sd && (de = readdir(sd))) {
        if (!e2b_str_has_prefix(de->d_name, "deleted-"))
            continue;
        _cleanup_free_ char *tdir = e2b_path_join(staging, de->d_name);
        gc_builds(store, tdir, NULL, NULL, &victims);
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

/* <templateID>/tags.json: {"<tag>": {"buildID": ..., "createdAt": ...}}.
 * NULL when the template has none (built before tags were kept there). */
static json_t *tags_load(struct e2b_store *store, const char *id)
{
    _cleanup_free_ char *p = xasprintf("%s/%s/tags.json", store->root, id);
    json_t *t = NULL;
    if (access(p, F_OK) < 0 || e2b_json_load_file(p, &t, NULL) < 0 || !json_is_object(t)) {
        json_decref(t);
        return NULL;
    }
    return t;
}

static int tags_save(struct e2b_store *store, const char *id, json_t *tags, struct e2b_error **err)
{
    _cleanup_free_ char *p = xasprintf("%s/%s/tags.json", store->root, id);
    return e2b_json_save_file(p, tags, 0644, err);
}

/* The template ID a name, an alias or an ID (without a tag) stands for. */
static char *resolve_id(struct e2b_store *store, const char *name)
{
    _cleanup_free_ char *dir = current_dir(store, name);
    if (dir)
        return xstrdup(name);
    _cleanup_closedir_ DIR *d = opendir(store->root);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_free_ char *cand = current_dir(store, de->d_name);
        _cleanup_json_ json_t *m = NULL;
        if (cand && load_meta(cand, &m, NULL) == 0 && meta_has_name(m, name))
            return xstrdup(de->d_name);
    }
    return NULL;
}

/* The build directory `tag` names in template `id`, or NULL. */
static char *tagged_dir(struct e2b_store *store, const char *id, const char *tag)
{
    _cleanup_json_ json_t *tags = tags_load(store, id);
    if (!tags) { /* the tags its current build was made with */
        _cleanup_free_ char *cur = current_dir(store, id);
        _cleanup_json_ json_t *m = NULL;
        if (cur && load_meta(cur, &m, NULL) == 0 && meta_has_tag(m, tag))
            return TAKE_PTR(cur);
        return NULL;
    }
    const char *bid = e2b_json_str(json_object_get(tags, tag), "buildID");
    if (!bid)
        return NULL;
    char *dir = xasprintf("%s/%s/builds/%s", store->root, id, bid);
    if (access(dir, F_OK) < 0) {
        free(dir);
        return NULL;
    }
    return dir;
}

int e2b_store_find(struct e2b_store *store, const char *id_or_alias, json_t **ret_meta,
                   char **ret_dir, struct e2b_error **err)
{
    if (!id_or_alias || !*id_or_alias || strchr(id_or_alias, '/') || id_or_alias[0] == '.')
        return e2b_error_set(err, E2B_ERR_INVALID, "invalid template name '%s'",
                             id_or_alias ? id_or_alias : "");
    const char *colon = strchr(id_or_alias, ':');
    _cleanup_free_ char *name = colon ? xstrndup(id_or_alias, (size_t)(colon - id_or_alias))
                                      : xstrdup(id_or_alias);
    _cleanup_free_ char *id = *name ? resolve_id(store, name) : NULL;
    _cleanup_free_ char *dir = NULL;
    if (id)
        dir = colon ? tagged_dir(store, id, colon + 1) : current_dir(store, id);
    json_t *meta = NULL;
    if (dir && load_meta(dir, &meta, err) < 0)
        return -1;
    if (!dir && (STREQ(id_or_alias, "base") || e2b_str_has_prefix(id_or_alias, "base:")))
        return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                             "template '%s' not found (it is the default template: build it from e2b's "
                             "sources with 'e2b template build -n base templates/base'; its apt-get step "
                             "needs network)", id_or_alias);
    if (!dir && id && colon)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "template '%s' has no tag '%s'", name, colon + 1);
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

static bool id_valid(const char *id, bool dash)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = id; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || (dash && *p == '-')))
            return false;
    return true;
}

int e2b_store_begin(struct e2b_store *store, const char *name, const char *template_id,
                         const char *build_id, struct e2b_store_txn *txn, struct e2b_error **err)
{
    memset(txn, 0, sizeof(*txn));
    txn->store = store;
    if ((template_id && !id_valid(template_id, false)) || (build_id && !id_valid(build_id, true)))
        return e2b_error_set(err, E2B_ERR_INVALID, "invalid template or build ID '%s'",
                             template_id && !id_valid(template_id, false) ? template_id : build_id);
    _cleanup_json_ json_t *meta = NULL;
    _cleanup_error_ struct e2b_error *find_err = NULL;
    if (template_id) {
        _cleanup_free_ char *cur = current_dir(store, template_id);
        txn->template_id = xstrdup(template_id);
        txn->existing = cur != NULL;
    } else if (name && e2b_store_find(store, name, &meta, NULL, &find_err) == 0) {
        txn->template_id = xstrdup(e2b_json_str(meta, "templateID"));
        txn->existing = true;
    } else {
        txn->template_id = e2b_random_id();
    }
    txn->build_id = build_id ? xstrdup(build_id) : e2b_random_id();
    /* The owner's pid in the name lets a later run clean up after a kill -9. */
    txn->dir = xasprintf("%s/.staging/%s.%ld", store->root, txn->build_id, (long)getpid());
    if (e2b_mkdir_p(txn->dir, 0755, err) < 0) {
        e2b_store_abort(txn);
        return -1;
    }
    return 0;
}

/* Point each tag of meta (its "tags") at its build; under the store lock. */
static void tags_commit(struct e2b_store *store, const char *id, json_t *meta)
{
    json_t *tags = tags_load(store, id);
    if (!tags) { /* the first build with tags.json: keep what the current build carried */
        tags = json_object();
        _cleanup_free_ char *cur = current_dir(store, id);
        _cleanup_json_ json_t *old = NULL;
        if (cur && load_meta(cur, &old, NULL) == 0) {
            size_t i;
            json_t *t;
            json_t *list = json_object_get(old, "tags");
            json_array_foreach(list, i, t) if (json_is_string(t)) json_object_set_new(
                tags, json_string_value(t),
                json_pack("{s:O?, s:O?}", "buildID", json_object_get(old, "buildID"), "createdAt",
                          json_object_get(old, "createdAt")));
        }
    }
    size_t i;
    json_t *t;
    _cleanup_free_ char *now = e2b_rfc3339(e2b_wall_ms());
    json_array_foreach(json_object_get(meta, "tags"), i, t) if (json_is_string(t)) json_object_set_new(
        tags, json_string_value(t),
        json_pack("{s:O?, s:s}", "buildID", json_object_get(meta, "buildID"), "createdAt", now));
    tags_save(store, id, tags, NULL);
    json_decref(tags);
}

int e2b_store_commit(struct e2b_store_txn *txn, json_t *meta, struct e2b_error **err)
{
    struct e2b_store *store = txn->store;
    _cleanup_free_ char *meta_path = e2b_path_join(txn->dir, "template.json");
    _cleanup_free_ char *old_dir = current_dir(store, txn->template_id);
    _cleanup_json_ json_t *old = NULL;
    if (old_dir && load_meta(old_dir, &old, NULL) == 0 && json_is_true(json_object_get(old, "public")))
        json_object_set_new(meta, "public", json_true()); /* publishing is the template's, not a build's */
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
    tags_commit(store, txn->template_id, meta); /* before the switch: it reads the old current */
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
    e2b_store_count(store, txn->template_id, false);
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

/* ---- counters ------------------------------------------------------------------- */

static char *counts_path(struct e2b_store *store, const char *template_id)
{
    return xasprintf("%s/.stats/%s.json", store->root, template_id);
}

void e2b_store_count(struct e2b_store *store, const char *template_id, bool spawn)
{
    if (!template_id || strchr(template_id, '/') || template_id[0] == '.')
        return;
    _cleanup_free_ char *dir = e2b_path_join(store->root, ".stats");
    if (e2b_mkdir_p(dir, 0755, NULL) < 0)
        return;
    _cleanup_free_ char *lp = e2b_path_join(dir, ".lock");
    _cleanup_close_ int lk = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lk < 0 || flock(lk, LOCK_EX) < 0)
        return;
    _cleanup_free_ char *p = counts_path(store, template_id);
    json_t *c = NULL;
    if (e2b_json_load_file(p, &c, NULL) < 0 || !json_is_object(c)) {
        json_decref(c);
        c = json_object();
    }
    if (spawn) {
        json_object_set_new(c, "spawnCount", json_integer(e2b_json_int(c, "spawnCount", 0) + 1));
        _cleanup_free_ char *now = e2b_rfc3339(e2b_wall_ms());
        json_object_set_new(c, "lastSpawnedAt", json_string(now));
    } else {
        json_object_set_new(c, "buildCount", json_integer(e2b_json_int(c, "buildCount", 0) + 1));
    }
    e2b_json_save_file(p, c, 0644, NULL);
    json_decref(c);
}

json_t *e2b_store_counts(struct e2b_store *store, const char *template_id)
{
    _cleanup_free_ char *p = template_id && !strchr(template_id, '/') ? counts_path(store, template_id) : NULL;
    json_t *c = NULL;
    if (!p || e2b_json_load_file(p, &c, NULL) < 0 || !json_is_object(c)) {
        json_decref(c);
        c = json_object();
    }
    return c;
}

/* ---- tags and publishing ---- */

/* tags.json of a template, made from its current build's tags when it has
 * none yet (new reference). */
static json_t *tags_get(struct e2b_store *store, const char *id)
{
    json_t *tags = tags_load(store, id);
    if (tags)
        return tags;
    tags = json_object();
    _cleanup_free_ char *cur = current_dir(store, id);
    _cleanup_json_ json_t *m = NULL;
    if (cur && load_meta(cur, &m, NULL) == 0) {
        json_t *list = json_object_get(m, "tags"), *t;
        size_t i;
        if (!json_is_array(list))
            json_object_set_new(tags, "default",
                                json_pack("{s:O?, s:O?}", "buildID", json_object_get(m, "buildID"),
                                          "createdAt", json_object_get(m, "createdAt")));
        json_array_foreach(list, i, t) if (json_is_string(t)) json_object_set_new(
            tags, json_string_value(t),
            json_pack("{s:O?, s:O?}", "buildID", json_object_get(m, "buildID"), "createdAt",
                      json_object_get(m, "createdAt")));
    }
    return tags;
}

static int find_id(struct e2b_store *store, const char *name, char **ret_id, struct e2b_error **err)
{
    _cleanup_json_ json_t *meta = NULL;
    if (e2b_store_find(store, name, &meta, NULL, err) < 0)
        return -1;
    *ret_id = xstrdup(e2b_json_str(meta, "templateID") ?: name);
    return 0;
}

int e2b_store_tag_list(struct e2b_store *store, const char *id_or_name, json_t **ret,
                       struct e2b_error **err)
{
    _cleanup_free_ char *id = NULL;
    if (strchr(id_or_name, ':'))
        return e2b_error_set(err, E2B_ERR_INVALID, "'%s': name the template without a tag", id_or_name);
    if (find_id(store, id_or_name, &id, err) < 0)
        return -1;
    int lk = store_lock(store);
    _cleanup_json_ json_t *tags = tags_get(store, id);
    store_unlock(lk);
    json_t *list = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(tags, k, v) json_array_append_new(
        list, json_pack("{s:s, s:O?, s:O?}", "tag", k, "buildID", json_object_get(v, "buildID"), "createdAt",
                        json_object_get(v, "createdAt")));
    *ret = list;
    return 0;
}

int e2b_store_tag_assign(struct e2b_store *store, const char *target, const char *const *tags,
                         char **ret_build_id, struct e2b_error **err)
{
    for (const char *const *t = tags; t && *t; t++)
        if (!e2b_template_tag_valid(*t))
            return e2b_error_set(err, E2B_ERR_INVALID,
                                 "invalid tag '%s': use letters, digits, ., - and _ (at most 128)", *t);
    if (!tags || !*tags)
        return e2b_error_set(err, E2B_ERR_INVALID, "no tags to assign");
    _cleanup_json_ json_t *meta = NULL;
    if (e2b_store_find(store, target, &meta, NULL, err) < 0)
        return -1;
    const char *id = e2b_json_str(meta, "templateID"), *bid = e2b_json_str(meta, "buildID");
    if (!id || !bid)
        return e2b_error_set(err, E2B_ERR_INVALID, "template '%s' has no ID or build ID", target);
    int lk = store_lock(store);
    _cleanup_json_ json_t *all = tags_get(store, id);
    _cleanup_free_ char *now = e2b_rfc3339(e2b_wall_ms());
    for (const char *const *t = tags; *t; t++)
        json_object_set_new(all, *t, json_pack("{s:s, s:s}", "buildID", bid, "createdAt", now));
    int r = tags_save(store, id, all, err);
    store_unlock(lk);
    if (r == 0 && ret_build_id)
        *ret_build_id = xstrdup(bid);
    return r;
}

int e2b_store_tag_remove(struct e2b_store *store, const char *id_or_name, const char *const *tags,
                         struct e2b_error **err)
{
    _cleanup_free_ char *id = NULL;
    if (strchr(id_or_name, ':'))
        return e2b_error_set(err, E2B_ERR_INVALID, "'%s': name the template without a tag", id_or_name);
    if (find_id(store, id_or_name, &id, err) < 0)
        return -1;
    int lk = store_lock(store);
    _cleanup_json_ json_t *all = tags_get(store, id);
    int r = 0;
    for (const char *const *t = tags; r == 0 && t && *t; t++)
        if (!json_object_get(all, *t))
            r = e2b_error_set(err, E2B_ERR_NOT_FOUND, "template '%s' has no tag '%s'", id_or_name, *t);
    for (const char *const *t = tags; r == 0 && t && *t; t++)
        json_object_del(all, *t);
    if (r == 0)
        r = tags_save(store, id, all, err);
    store_unlock(lk);
    if (r == 0)
        collect_garbage(store); /* a build only a removed tag kept */
    return r;
}

int e2b_store_set_public(struct e2b_store *store, const char *id_or_name, bool public, json_t **ret_meta,
                         struct e2b_error **err)
{
    _cleanup_json_ json_t *meta = NULL;
    _cleanup_free_ char *dir = NULL;
    if (e2b_store_find(store, id_or_name, &meta, &dir, err) < 0)
        return -1;
    json_object_set_new(meta, "public", json_boolean(public));
    _cleanup_free_ char *now = e2b_rfc3339(e2b_wall_ms());
    json_object_set_new(meta, "updatedAt", json_string(now));
    _cleanup_free_ char *p = e2b_path_join(dir, "template.json");
    int lk = store_lock(store);
    int r = e2b_json_save_file(p, meta, 0644, err);
    store_unlock(lk);
    if (r == 0 && ret_meta)
        *ret_meta = TAKE_PTR(meta);
    return r;
}
