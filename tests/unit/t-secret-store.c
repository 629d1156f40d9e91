/* t-secret-store.c - secrets sealed at rest: never in clear on disk, the
 * key 0600, values bound to their secret, markers filled. */
#include "fsutil.h"
#include "secret-store.h"
#include "tap.h"

#include <sys/stat.h>

int main(void)
{
    char dir[] = "/tmp/t-secret-store.XXXXXX";
    ok(mkdtemp(dir) != NULL, "scratch dir");
    struct e2b_error *err = NULL;
    json_t *s = NULL, *t = NULL;
    ok(e2b_secret_create(dir, "OpenAI-Key", "sk-very-secret-value", NULL, &s, &err) == 0, "create");
    ok(STREQ(e2b_json_str(s, "name"), "openai-key") && e2b_str_has_prefix(e2b_json_str(s, "secretID"), "sec_") &&
           e2b_json_int(s, "currentVersion", 0) == 1 && json_object_size(json_object_get(s, "metadata")) == 0,
       "metadata only: lowercased name, sec_ ID, version 1");
    ok(!json_object_get(s, "value") && !json_object_get(s, "sealed"), "no value in what is returned");
    ok(e2b_secret_create(dir, "openai-key", "x", NULL, &t, &err) < 0 && err->code == E2B_ERR_EXISTS, "names unique");
    e2b_error_free(err), err = NULL;
    ok(e2b_secret_create(dir, "sec_x", "x", NULL, &t, &err) < 0, "sec_ is reserved");
    e2b_error_free(err), err = NULL;
    _cleanup_free_ char *store = xasprintf("%s/secrets.json", dir), *key = xasprintf("%s/secrets.key", dir);
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    ok(e2b_read_file(store, &data, &len, NULL) == 0 && !memmem(data, len, "very-secret", 11), "not in clear on disk");
    struct stat st;
    ok(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32, "the key: 32 bytes, 0600");
    ok(stat(store, &st) == 0 && (st.st_mode & 0777) == 0600, "the store 0600");
    char *v = NULL;
    ok(e2b_secret_resolve(dir, "OPENAI-KEY", &v, NULL) == 0 && STREQ(v, "sk-very-secret-value"), "resolves");
    free(v);
    char *filled = NULL;
    ok(e2b_secret_fill(dir, "Bearer ${e2b.secrets.openai-key}; ${e2b.secrets.}", &filled, NULL) == 0 &&
           STREQ(filled, "Bearer sk-very-secret-value; ${e2b.secrets.}"), "markers filled, a broken one kept");
    free(filled);
    ok(e2b_secret_fill(dir, "${e2b.secrets.nope}", &filled, &err) < 0 && err->code == E2B_ERR_INVALID,
       "an unknown secret is an error");
    e2b_error_free(err), err = NULL;
    json_t *u = NULL;
    ok(e2b_secret_update(dir, e2b_json_str(s, "secretID"), "second", NULL, &u, NULL) == 0 &&
           e2b_json_int(u, "currentVersion", 0) == 2, "update: a new version");
    json_decref(u);
    ok(e2b_secret_resolve(dir, "openai-key", &v, NULL) == 0 && STREQ(v, "second"), "the new value");
    free(v);
    /* a sealed value moved to another secret does not open there */
    ok(e2b_secret_create(dir, "other", "other-value", NULL, &t, NULL) == 0, "a second secret");
    json_t *doc = NULL;
    ok(e2b_json_load_file(store, &doc, NULL) == 0, "load the store");
    json_t *a = json_array_get(json_object_get(doc, "secrets"), 0), *b = json_array_get(json_object_get(doc, "secrets"), 1);
    json_object_set(b, "sealed", json_object_get(a, "sealed"));
    json_object_set(b, "nonce", json_object_get(a, "nonce"));
    ok(e2b_json_save_file(store, doc, 0600, NULL) == 0, "swap the sealed values");
    ok(e2b_secret_resolve(dir, "other", &v, &err) < 0 && err->code == E2B_ERR_PERMISSION, "refused: not its own");
    e2b_error_free(err), err = NULL;
    json_decref(doc);
    chmod(key, 0644);
    ok(e2b_secret_resolve(dir, "openai-key", &v, &err) < 0 && strstr(err->msg, "readable by others"),
       "a key others may read is refused");
    e2b_error_free(err), err = NULL;
    chmod(key, 0600);
    json_t *list = NULL;
    ok(e2b_secret_list(dir, &list, NULL) == 0 && json_array_size(list) == 2, "list");
    ok(e2b_secret_delete(dir, "openai-key", NULL) == 0 && e2b_secret_get(dir, "openai-key", &u, &err) < 0 &&
           err->code == E2B_ERR_NOT_FOUND, "delete");
    e2b_error_free(err);
    json_decref(list);
    json_decref(s);
    json_decref(t);
    e2b_rm_rf(dir, NULL);
    return tap_done();
}
