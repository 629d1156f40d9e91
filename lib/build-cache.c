/* build-cache.c - see build-cache.h */
#include "build-cache.h"
#include "config.h"
#include "fsutil.h"
#include "template-store.h"

#include <signal.h>
#include <sys/stat.h>

/* ---- step keys ---- */

void e2b_build_key_str(struct e2b_sha256 *c, const char *s)
{
    uint64_t n = s ? strlen(s) : UINT64_MAX;
    e2b_sha256_update(c, &n, sizeof(n));
    if (s)
        e2b_sha256_update(c, s, strlen(s));
}

/* A JSON value into a key: compact, keys sorted. */
static void key_json(struct e2b_sha256 *c, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    e2b_build_key_str(c, s);
    free(s);
}

void e2b_build_key_instr(struct e2b_sha256 *c, const struct e2b_df_instr *in)
{
    json_t *j = e2b_dockerfile_instr_to_json(in);
    json_object_del(j, "line");
    json_object_del(j, "end_line");
    json_object_del(j, "original");
    json_object_del(j, "from_stage");
    key_json(c, j);
    json_decref(j);
}

/* ---- the cache ---- */

char *e2b_build_cache_lookup(const struct e2b_build_cache *c, const char *key)
{
    if (c->off)
        return NULL;
    _cleanup_free_ char *link = xasprintf("%s/steps/%s", c->dir, key);
    _cleanup_free_ char *upper = xasprintf("%s/upper", link);
    struct stat s;
    if (stat(upper, &s) < 0 || !S_ISDIR(s.st_mode))
        return NULL;
    return realpath(upper, NULL);
}

char *e2b_build_cache_layer_new(const struct e2b_build_cache *c, struct e2b_error **err)
{
    _cleanup_free_ char *id = e2b_random_id();
    char *dir = xasprintf("%s/layers/%s.tmp-%d", c->dir, id, (int)getpid());
    _cleanup_free_ char *up = e2b_path_join(dir, "upper"), *wk = e2b_path_join(dir, "work");
    if (e2b_mkdir_p(up, 0755, err) < 0 || e2b_mkdir_p(wk, 0700, err) < 0) {
        free(dir);
        return NULL;
    }
    return dir;
}

char *e2b_build_cache_layer_commit(const struct e2b_build_cache *c, const char *tmp, const char *key,
                                    struct e2b_error **err)
{
    _cleanup_free_ char *wk = e2b_path_join(tmp, "work");
    e2b_rm_rf(wk, NULL);
    _cleanup_free_ char *final = xstrndup(tmp, (size_t)(strstr(tmp, ".tmp-") - tmp));
    if (rename(tmp, final) < 0) {
        e2b_error_sys(err, errno, "rename %s", tmp);
        return NULL;
    }
    const char *id = strrchr(final, '/') + 1;
    _cleanup_free_ char *target = xasprintf("../layers/%s", id);
    _cleanup_free_ char *link = xasprintf("%s/steps/%s", c->dir, key);
    _cleanup_free_ char *ltmp = xasprintf("%s.tmp-%d", link, (int)getpid());
    unlink(ltmp);
    if (symlink(target, ltmp) < 0 || rename(ltmp, link) < 0) {
        e2b_error_sys(err, errno, "step cache %s", link);
        unlink(ltmp);
        return NULL;
    }
    return e2b_path_join(final, "upper");
}

/* Layers and links of builds whose process is gone. */
static void clean_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *t = strstr(de->d_name, ".tmp-");
        if (!t)
            continue;
        pid_t pid = (pid_t)atoi(t + 5);
        if (pid > 0 && pid != getpid() && kill(pid, 0) < 0 && errno == ESRCH) {
            _cleanup_free_ char *p = e2b_path_join(dir, de->d_name);
            e2b_rm_rf(p, NULL);
        }
    }
    closedir(d);
}

int e2b_build_cache_open(struct e2b_build_cache *c, bool no_cache, struct e2b_error **err)
{
    _cleanup_free_ char *data = e2b_data_dir();
    *c = (struct e2b_build_cache){.dir = e2b_path_join(data, "cache/build"), .off = no_cache};
    _cleanup_free_ char *ld = e2b_path_join(c->dir, "layers"), *sd = e2b_path_join(c->dir, "steps");
    if (e2b_mkdir_p(ld, 0700, err) < 0 || e2b_mkdir_p(sd, 0700, err) < 0)
        return -1;
    clean_stale(ld);
    clean_stale(sd);
    return 0;
}

void e2b_build_cache_close(struct e2b_build_cache *c)
{
    free(c->dir);
    c->dir = NULL;
}

char *e2b_build_cache_mount_dir(const struct e2b_build_cache *c, const char *template_name, const char *id)
{
    struct e2b_sha256 h;
    e2b_sha256_init(&h);
    e2b_build_key_str(&h, id);
    char hex[E2B_SHA256_HEX_SIZE];
    e2b_sha256_final_hex(&h, hex);
    return xasprintf("%s/mounts/%s/%.32s", c->dir, template_name ? template_name : "_", hex);
}
