/* template-store.c - see template-store.h */
#include "template-store.h"
#include "config.h"
#include "fsutil.h"

#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
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

static int load_meta(const char *build_dir, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *p = e2b_path_join(build_dir, "template.json");
    return e2b_json_load_file(p, ret, err);
}

static bool meta_has_name(json_t *meta, const char *name)
{
    static const char *const keys[] = {"aliases", "names"};
    for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
        json_t *arr = json_object_get(meta, keys[k]), *v;
        size_t i;
        json_array_foreach(arr, i, v) {
            const char *s = json_string_value(v);
            if (!s)
                continue;
            /* "name:tag" matches "name" and "name:tag" */
            size_t n = strlen(name);
            if (STREQ(s, name) || (strncmp(s, name, n) == 0 && s[n] == ':' && STREQ(s + n + 1, "default")))
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
    /* Move it out of sight first, so a half-deleted template is never found. */
    _cleanup_free_ char *from = e2b_path_join(store->root, id);
    _cleanup_free_ char *to = xasprintf("%s/.staging/deleted-%s-%ld", store->root, id, (long)getpid());
    if (rename(from, to) < 0)
        return e2b_error_sys(err, errno, "cannot delete template '%s'", id_or_alias);
    return e2b_rm_rf(to, err);
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
    if (rename(txn->dir, final) < 0)
        return e2b_error_sys(err, errno, "cannot store build '%s'", txn->build_id);
    _cleanup_free_ char *old = current_dir(store, txn->template_id);
    _cleanup_free_ char *target = xasprintf("builds/%s", txn->build_id);
    _cleanup_free_ char *tmplink = xasprintf("%s/current.tmp.%ld", tdir, (long)getpid());
    _cleanup_free_ char *link = e2b_path_join(tdir, "current");
    unlink(tmplink);
    if (symlink(target, tmplink) < 0 || rename(tmplink, link) < 0) {
        int e = errno;
        unlink(tmplink);
        e2b_rm_rf(final, NULL);
        return e2b_error_sys(err, e, "cannot switch template '%s' to its new build",
                             txn->template_id);
    }
    /* The old build may still be a running sandbox's lower dir: an overlay
     * keeps its own reference, so removing the directory tree is safe only
     * for files; keep it simple and remove it, sandboxes hold open mounts. */
    if (old)
        e2b_rm_rf(old, NULL);
    free(txn->dir);
    txn->dir = NULL;
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
        if (de->d_name[0] == '.')
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
}
