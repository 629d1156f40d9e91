/* secret-store.c - see secret-store.h */
#include "secret-store.h"
#include "config.h"
#include "dl-crypto.h"
#include "envd-crypto.h"
#include "fsutil.h"
#include "strbuf.h"
#include "template-store.h"

#include <ctype.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define VALUE_MAX (64 * 1024)
#define NAME_MAX_LEN 128
#define META_ENTRIES 32
#define META_KEY_MAX 128
#define META_VALUE_MAX 1024
#define META_TOTAL_MAX 8192

struct store {
    char *dir, *path;
    int lock;
    json_t *doc; /* {"secrets": [...]} */
};

static void store_close(struct store *s)
{
    if (s->lock >= 0)
        close(s->lock);
    json_decref(s->doc);
    e2b_free_many(&s->dir, &s->path);
}

static int store_open(const char *dir, struct store *s, struct e2b_error **err)
{
    *s = (struct store){.lock = -1};
    if (dir) {
        s->dir = xstrdup(dir);
    } else {
        _cleanup_free_ char *data = e2b_data_dir();
        s->dir = xasprintf("%s/serve", data);
    }
    s->path = e2b_path_join(s->dir, "secrets.json");
    if (e2b_mkdir_p(s->dir, 0700, err) < 0)
        return -1;
    _cleanup_free_ char *lp = e2b_path_join(s->dir, "secrets.lock");
    s->lock = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock < 0)
        return e2b_error_sys(err, errno, "cannot open '%s'", lp);
    while (flock(s->lock, LOCK_EX) < 0)
        if (errno != EINTR)
            return e2b_error_sys(err, errno, "cannot lock '%s'", lp);
    if (access(s->path, F_OK) < 0) {
        s->doc = json_pack("{s:[]}", "secrets");
        return 0;
    }
    if (e2b_json_load_file(s->path, &s->doc, err) < 0)
        return -1;
    if (!json_is_array(json_object_get(s->doc, "secrets")))
        return e2b_error_set(err, E2B_ERR_INVALID, "'%s' is not a secret store", s->path);
    return 0;
}

static int store_save(struct store *s, struct e2b_error **err)
{
    return e2b_json_save_file(s->path, s->doc, 0600, err);
}

/* The key, made once (32 bytes from the kernel, 0600, atomically). */
static int load_key(const char *dir, uint8_t key[KEY_LEN], struct e2b_error **err)
{
    _cleanup_free_ char *p = e2b_path_join(dir, "secrets.key");
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    if (access(p, F_OK) < 0) {
        uint8_t fresh[KEY_LEN];
        if (getrandom(fresh, sizeof(fresh), 0) != (ssize_t)sizeof(fresh))
            return e2b_error_sys(err, errno, "cannot make the secrets key");
        int r = e2b_write_file_atomic(p, fresh, sizeof(fresh), 0600, err);
        explicit_bzero(fresh, sizeof(fresh));
        if (r < 0)
            return -1;
    }
    struct stat st;
    if (stat(p, &st) == 0 && (st.st_mode & 077))
        return e2b_error_set(err, E2B_ERR_PERMISSION,
                             "the secrets key '%s' is readable by others (mode %04o): chmod 600 it", p,
                             (unsigned)(st.st_mode & 07777));
    if (e2b_read_file(p, &data, &len, err) < 0)
        return -1;
    if (len != KEY_LEN) {
        explicit_bzero(data, len);
        return e2b_error_set(err, E2B_ERR_INVALID, "the secrets key '%s' is not %d bytes", p, KEY_LEN);
    }
    memcpy(key, data, KEY_LEN);
    explicit_bzero(data, len);
    return 0;
}

static char *aad_of(const char *id, long long version) { return xasprintf("%s:%lld", id, version); }

/* {nonce, sealed} in base64: the value under the key, bound to id and version. */
static int seal(const char *dir, const char *id, long long version, const char *value, json_t **ret,
                struct e2b_error **err)
{
    uint8_t key[KEY_LEN], nonce[NONCE_LEN];
    if (e2b_crypto_load(err) < 0)
        return e2b_error_wrap(err, "cannot seal secrets (OpenSSL's libcrypto)");
    if (load_key(dir, key, err) < 0)
        return -1;
    if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce)) {
        explicit_bzero(key, sizeof(key));
        return e2b_error_sys(err, errno, "cannot make a nonce");
    }
    _cleanup_free_ char *aad = aad_of(id, version);
    size_t n = strlen(value);
    uint8_t *out = xmalloc(n + TAG_LEN);
    int len = 0, fin = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    bool ok = ctx && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
              EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
              EVP_EncryptUpdate(ctx, NULL, &len, (const uint8_t *)aad, (int)strlen(aad)) == 1 &&
              EVP_EncryptUpdate(ctx, out, &len, (const uint8_t *)value, (int)n) == 1 &&
              EVP_EncryptFinal_ex(ctx, out + len, &fin) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + n) == 1;
    EVP_CIPHER_CTX_free(ctx);
    explicit_bzero(key, sizeof(key));
    if (!ok) {
        free(out);
        return e2b_error_set(err, E2B_ERR_GENERIC, "cannot seal the secret");
    }
    _cleanup_free_ char *b_nonce = e2b_base64_encode(nonce, sizeof(nonce), true);
    _cleanup_free_ char *b_sealed = e2b_base64_encode(out, n + TAG_LEN, true);
    free(out);
    *ret = json_pack("{s:s, s:s}", "nonce", b_nonce, "sealed", b_sealed);
    return 0;
}

static int unseal(const char *dir, const json_t *s, char **ret, struct e2b_error **err)
{
    const char *id = e2b_json_str(s, "secretID");
    long long version = e2b_json_int(s, "currentVersion", 0);
    const char *bn = e2b_json_str(s, "nonce"), *bs = e2b_json_str(s, "sealed");
    if (!id || !bn || !bs)
        return e2b_error_set(err, E2B_ERR_INVALID, "secret '%s' has no sealed value", id ? id : "?");
    _cleanup_free_ uint8_t *nonce = NULL, *sealed = NULL;
    ssize_t nn = e2b_base64_decode(bn, strlen(bn), &nonce);
    ssize_t ns = e2b_base64_decode(bs, strlen(bs), &sealed);
    if (nn != NONCE_LEN || ns < TAG_LEN)
        return e2b_error_set(err, E2B_ERR_INVALID, "secret '%s' is damaged", id);
    uint8_t key[KEY_LEN];
    if (e2b_crypto_load(err) < 0)
        return e2b_error_wrap(err, "cannot open secrets (OpenSSL's libcrypto)");
    if (load_key(dir, key, err) < 0)
        return -1;
    _cleanup_free_ char *aad = aad_of(id, version);
    size_t n = (size_t)ns - TAG_LEN;
    char *out = xmalloc(n + 1);
    int len = 0, fin = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    bool ok = ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
              EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
              EVP_DecryptUpdate(ctx, NULL, &len, (const uint8_t *)aad, (int)strlen(aad)) == 1 &&
              EVP_DecryptUpdate(ctx, (uint8_t *)out, &len, sealed, (int)n) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, sealed + n) == 1 &&
              EVP_DecryptFinal_ex(ctx, (uint8_t *)out + len, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    explicit_bzero(key, sizeof(key));
    if (!ok) {
        explicit_bzero(out, n);
        free(out);
        return e2b_error_set(err, E2B_ERR_PERMISSION,
                             "secret '%s' does not open with this server's key (another key, or tampered)", id);
    }
    out[n] = '\0';
    *ret = out;
    return 0;
}

/* ---- checks ------------------------------------------------------------------ */

static int check_name(const char *name, struct e2b_error **err)
{
    size_t n = strlen(name);
    if (!n || n > NAME_MAX_LEN)
        return e2b_error_set(err, E2B_ERR_INVALID, "a secret name has 1 to %d characters", NAME_MAX_LEN);
    for (const char *p = name; *p; p++)
        if (*p == '{' || *p == '}' || iscntrl((unsigned char)*p) || *p == '/')
            return e2b_error_set(err, E2B_ERR_INVALID,
                                 "secret name '%s' has '{', '}', '/' or a control character", name);
    if (strncasecmp(name, "sec_", 4) == 0)
        return e2b_error_set(err, E2B_ERR_INVALID, "secret names cannot start with 'sec_' (secret IDs do)");
    return 0;
}

static int check_metadata(const json_t *m, struct e2b_error **err)
{
    if (!m || json_is_null(m))
        return 0;
    if (!json_is_object(m))
        return e2b_error_set(err, E2B_ERR_INVALID, "metadata must be an object of strings");
    if (json_object_size(m) > META_ENTRIES)
        return e2b_error_set(err, E2B_ERR_INVALID, "metadata has more than %d entries", META_ENTRIES);
    size_t total = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v) {
        if (!json_is_string(v))
            return e2b_error_set(err, E2B_ERR_INVALID, "metadata must be an object of strings");
        size_t kl = strlen(k), vl = json_string_length(v);
        if (kl > META_KEY_MAX || vl > META_VALUE_MAX)
            return e2b_error_set(err, E2B_ERR_INVALID,
                                 "metadata keys are at most %d bytes and values %d", META_KEY_MAX,
                                 META_VALUE_MAX);
        total += kl + vl;
    }
    if (total > META_TOTAL_MAX)
        return e2b_error_set(err, E2B_ERR_INVALID, "metadata is over %d bytes", META_TOTAL_MAX);
    return 0;
}

static int check_value(const char *value, struct e2b_error **err)
{
    if (!value)
        return e2b_error_set(err, E2B_ERR_INVALID, "value is required");
    if (strlen(value) > VALUE_MAX)
        return e2b_error_set(err, E2B_ERR_INVALID, "a secret value is at most %d bytes", VALUE_MAX);
    return 0;
}

static json_t *find(struct store *s, const char *id_or_name, size_t *ret_index)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(s->doc, "secrets"), i, e) {
        const char *id = e2b_json_str(e, "secretID"), *name = e2b_json_str(e, "name");
        if ((id && STREQ(id, id_or_name)) || (name && strcasecmp(name, id_or_name) == 0)) {
            if (ret_index)
                *ret_index = i;
            return e;
        }
    }
    return NULL;
}

/* What the API shows: no nonce, no sealed value. */
static json_t *public_view(const json_t *e)
{
    json_t *o = json_deep_copy(e);
    json_object_del(o, "nonce");
    json_object_del(o, "sealed");
    if (!json_is_object(json_object_get(o, "metadata")))
        json_object_set_new(o, "metadata", json_object());
    return o;
}

/* ---- the operations ------------------------------------------------------------- */

static int do_create(struct store *s, const char *name, const char *value, const json_t *metadata,
                     json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *lower = xstrdup(name);
    for (char *p = lower; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (find(s, lower, NULL))
        return e2b_error_set(err, E2B_ERR_EXISTS, "a secret named '%s' exists", lower);
    _cleanup_free_ char *rid = e2b_random_id();
    _cleanup_free_ char *id = xasprintf("sec_%s", rid);
    _cleanup_free_ char *now = e2b_rfc3339(e2b_wall_ms());
    json_t *sealed = NULL;
    if (seal(s->dir, id, 1, value, &sealed, err) < 0)
        return -1;
    json_t *e = json_pack("{s:s, s:s, s:o, s:i, s:s, s:s}", "secretID", id, "name", lower, "metadata",
                          metadata && json_is_object(metadata) ? json_deep_copy(metadata) : json_object(),
                          "currentVersion", 1, "createdAt", now, "updatedAt", now);
    json_object_update(e, sealed);
    json_decref(sealed);
    json_array_append_new(json_object_get(s->doc, "secrets"), e);
    if (store_save(s, err) < 0)
        return -1;
    *ret = public_view(e);
    return 0;
}

int e2b_secret_create(const char *dir, const char *name, const char *value, const json_t *metadata,
                      json_t **ret, struct e2b_error **err)
{
    if (!name)
        return e2b_error_set(err, E2B_ERR_INVALID, "name is required");
    if (check_name(name, err) < 0 || check_value(value, err) < 0 || check_metadata(metadata, err) < 0)
        return -1;
    struct store s;
    int r = store_open(dir, &s, err);
    if (r == 0)
        r = do_create(&s, name, value, metadata, ret, err);
    store_close(&s);
    return r;
}

static int do_update(struct store *s, const char *id_or_name, const char *value, const json_t *metadata,
                     json_t **ret, struct e2b_error **err)
{
    json_t *e = find(s, id_or_name, NULL);
    if (!e)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "secret '%s' not found", id_or_name);
    long long version = e2b_json_int(e, "currentVersion", 1) + 1;
    json_t *sealed = NULL;
    if (seal(s->dir, e2b_json_str(e, "secretID"), version, value, &sealed, err) < 0)
        return -1;
    json_object_update(e, sealed);
    json_decref(sealed);
    json_object_set_new(e, "currentVersion", json_integer(version));
    if (metadata && json_is_object(metadata))
        json_object_set(e, "metadata", (json_t *)metadata);
    _cleanup_free_ char *now = e2b_rfc3339(e2b_wall_ms());
    json_object_set_new(e, "updatedAt", json_string(now));
    if (store_save(s, err) < 0)
        return -1;
    *ret = public_view(e);
    return 0;
}

int e2b_secret_update(const char *dir, const char *id_or_name, const char *value,
                      const json_t *metadata, json_t **ret, struct e2b_error **err)
{
    if (check_value(value, err) < 0 || check_metadata(metadata, err) < 0)
        return -1;
    struct store s;
    int r = store_open(dir, &s, err);
    if (r == 0)
        r = do_update(&s, id_or_name, value, metadata, ret, err);
    store_close(&s);
    return r;
}

int e2b_secret_list(const char *dir, json_t **ret, struct e2b_error **err)
{
    struct store s;
    int r = -1;
    if (store_open(dir, &s, err) == 0) {
        json_t *list = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(s.doc, "secrets"), i, e)
            json_array_append_new(list, public_view(e));
        *ret = list;
        r = 0;
    }
    store_close(&s);
    return r;
}

int e2b_secret_get(const char *dir, const char *id_or_name, json_t **ret, struct e2b_error **err)
{
    struct store s;
    int r = -1;
    if (store_open(dir, &s, err) == 0) {
        json_t *e = find(&s, id_or_name, NULL);
        if (e) {
            *ret = public_view(e);
            r = 0;
        } else {
            r = e2b_error_set(err, E2B_ERR_NOT_FOUND, "secret '%s' not found", id_or_name);
        }
    }
    store_close(&s);
    return r;
}

int e2b_secret_delete(const char *dir, const char *id_or_name, struct e2b_error **err)
{
    struct store s;
    int r = -1;
    size_t i = 0;
    if (store_open(dir, &s, err) == 0) {
        if (!find(&s, id_or_name, &i)) {
            r = e2b_error_set(err, E2B_ERR_NOT_FOUND, "secret '%s' not found", id_or_name);
        } else {
            json_array_remove(json_object_get(s.doc, "secrets"), i);
            r = store_save(&s, err);
        }
    }
    store_close(&s);
    return r;
}

int e2b_secret_resolve(const char *dir, const char *id_or_name, char **ret_value, struct e2b_error **err)
{
    struct store s;
    int r = -1;
    if (store_open(dir, &s, err) == 0) {
        json_t *e = find(&s, id_or_name, NULL);
        r = e ? unseal(s.dir, e, ret_value, err)
              : e2b_error_set(err, E2B_ERR_INVALID, "secret '%s' does not exist", id_or_name);
    }
    store_close(&s);
    return r;
}

#define MARKER "${e2b.secrets."

int e2b_secret_fill(const char *dir, const char *s, char **ret, struct e2b_error **err)
{
    struct strbuf out = STRBUF_INIT;
    const char *p = s, *m;
    while ((m = strstr(p, MARKER))) {
        const char *name = m + strlen(MARKER), *end = strchr(name, '}');
        strbuf_add(&out, p, (size_t)(m - p));
        if (!end || end == name) { /* not a marker: literal text */
            strbuf_addstr(&out, MARKER);
            p = name;
            continue;
        }
        _cleanup_free_ char *n = xstrndup(name, (size_t)(end - name));
        char *value = NULL;
        if (e2b_secret_resolve(dir, n, &value, err) < 0) {
            explicit_bzero(out.buf, out.len);
            strbuf_release(&out);
            return -1;
        }
        strbuf_addstr(&out, value);
        explicit_bzero(value, strlen(value));
        free(value);
        p = end + 1;
    }
    strbuf_addstr(&out, p);
    *ret = strbuf_detach(&out, NULL);
    return 0;
}
