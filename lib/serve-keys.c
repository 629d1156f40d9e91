/* serve-keys.c - see serve-keys.h */
#include "serve-keys.h"
#include "config.h"
#include "envd-crypto.h"
#include "fsutil.h"
#include "template-store.h"

#include <fcntl.h>
#include <libgen.h>
#include <sys/file.h>
#include <sys/random.h>

char *e2b_serve_keys_path(void)
{
    _cleanup_free_ char *data = e2b_data_dir();
    return xasprintf("%s/serve/keys.json", data);
}

static char *hash_hex(const char *key)
{
    char *hex = xmalloc(E2B_SHA256_HEX_SIZE);
    e2b_sha256_hex(key, strlen(key), hex);
    return hex;
}

static int load(const char *path, json_t **ret, struct e2b_error **err)
{
    if (access(path, F_OK) < 0) {
        *ret = json_array();
        return 0;
    }
    if (e2b_json_load_file(path, ret, err) < 0)
        return -1;
    if (!json_is_array(*ret)) {
        json_decref(*ret);
        return e2b_error_set(err, E2B_ERR_INVALID, "%s: expected a JSON array of keys", path);
    }
    return 0;
}

static int save(const char *path, json_t *keys, struct e2b_error **err)
{
    _cleanup_free_ char *dir = xstrdup(path);
    dirname(dir);
    if (e2b_mkdir_p(dir, 0700, err) < 0)
        return -1;
    return e2b_json_save_file(path, keys, 0600, err);
}

/* Changes are load-modify-save: one at a time, or two `key create`s at once
 * could each save a list without the other's key. */
static int lock_keys(const char *path, struct e2b_error **err)
{
    _cleanup_free_ char *dir = xstrdup(path);
    dirname(dir);
    if (e2b_mkdir_p(dir, 0700, err) < 0)
        return -1;
    _cleanup_free_ char *lp = xasprintf("%s.lock", path);
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot lock '%s'", lp);
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR) {
            close(fd);
            return e2b_error_sys(err, errno, "cannot lock '%s'", lp);
        }
    return fd;
}

int e2b_serve_key_create(const char *path, const char *name, char **ret_key, json_t **ret_entry,
                         struct e2b_error **err)
{
    _cleanup_close_ int lk = lock_keys(path, err);
    if (lk < 0)
        return -1;
    _cleanup_json_ json_t *keys = NULL;
    if (load(path, &keys, err) < 0)
        return -1;
    uint8_t raw[16];
    if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
        return e2b_error_sys(err, errno, "cannot make a key");
    char hex[2 * sizeof(raw) + 1];
    e2b_hex(raw, sizeof(raw), hex);
    _cleanup_free_ char *key = xasprintf("e2b_%s", hex);
    _cleanup_free_ char *hash = hash_hex(key);
    _cleanup_free_ char *id = e2b_random_id();
    _cleanup_free_ char *now = e2b_rfc3339(e2b_wall_ms());
    _cleanup_free_ char *prefix = xasprintf("e2b_%.4s…%s", hex, hex + 28);
    json_t *entry = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "name", name ? name : "",
                              "prefix", prefix, "createdAt", now, "sha256", hash);
    json_array_append(keys, entry);
    if (save(path, keys, err) < 0) {
        json_decref(entry);
        return -1;
    }
    json_object_del(entry, "sha256");
    *ret_entry = entry;
    *ret_key = TAKE_PTR(key);
    return 0;
}

int e2b_serve_key_list(const char *path, json_t **ret, struct e2b_error **err)
{
    if (load(path, ret, err) < 0)
        return -1;
    size_t i;
    json_t *k;
    json_array_foreach(*ret, i, k) json_object_del(k, "sha256");
    return 0;
}

int e2b_serve_key_revoke(const char *path, const char *id, struct e2b_error **err)
{
    _cleanup_close_ int lk = lock_keys(path, err);
    if (lk < 0)
        return -1;
    _cleanup_json_ json_t *keys = NULL;
    if (load(path, &keys, err) < 0)
        return -1;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        if (e2b_json_str(k, "id") && STREQ(e2b_json_str(k, "id"), id)) {
            json_array_remove(keys, i);
            return save(path, keys, err);
        }
    }
    return e2b_error_set(err, E2B_ERR_NOT_FOUND, "no API key with ID '%s'", id);
}

bool e2b_serve_key_check(const char *path, const char *key)
{
    if (!key || !*key)
        return false;
    json_t *keys = NULL;
    if (load(path, &keys, NULL) < 0)
        return false;
    _cleanup_free_ char *hash = hash_hex(key);
    bool ok = false;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        const char *h = e2b_json_str(k, "sha256");
        if (h && e2b_consttime_streq(h, hash))
            ok = true; /* no early exit: every key costs the same */
    }
    json_decref(keys);
    return ok;
}
