/* config.h - ~/.e2b/config.json (E2B CLI's format), environment, and paths.
 *
 * The file is E2B's: {"version":2, "projectApiKey":"e2b_...", "email":..}
 * plus our own "apiUrl"/"domain"/"sandboxUrl" defaults set by `e2b auth
 * login` and `e2b auth configure`.
 * It is only ever written atomically, mode 0600, in a 0700 directory.
 */
#ifndef E2B_CONFIG_H
#define E2B_CONFIG_H

#include "json.h"

struct e2b_config {
    char *path;    /* the config file */
    json_t *doc;   /* always an object after load */
    bool exists;   /* the file was there */
};

/* $E2B_CONFIG, else $HOME/.e2b/config.json. Caller frees. */
char *e2b_config_path(void);
/* Load (a missing file is an empty config; bad JSON is an error naming
 * the file and line). */
int e2b_config_load(struct e2b_config *cfg, struct e2b_error **err);
int e2b_config_save(struct e2b_config *cfg, struct e2b_error **err);
/* Remove the file. */
int e2b_config_remove(struct e2b_config *cfg, struct e2b_error **err);
void e2b_config_release(struct e2b_config *cfg);
const char *e2b_config_get(const struct e2b_config *cfg, const char *key);
void e2b_config_set(struct e2b_config *cfg, const char *key, const char *value);

/* Where API calls go and with what key. api_url NULL means the local backend
 * (also forced by an empty --api-url). */
struct e2b_endpoint {
    char *api_url;
    char *api_key;
    const char *api_url_source; /* "--api-url", "E2B_API_URL", "config", "E2B_DOMAIN" */
    const char *api_key_source; /* "--api-key", "E2B_API_KEY", "config" */
    char *sandbox_url;          /* envd base for every sandbox, or NULL (then per sandbox) */
    const char *sandbox_url_source; /* "E2B_SANDBOX_URL", "config" (only with the config's API) */
    char *domain;
};
int e2b_endpoint_resolve(const char *flag_url, const char *flag_key, struct e2b_endpoint *ep,
                         struct e2b_error **err);
void e2b_endpoint_release(struct e2b_endpoint *ep);

/* "e2b_1234…cdef" → "e2b_…cdef": never print a whole key. */
char *e2b_mask_key(const char *key);
/* E2B API keys look like e2b_<hex>. */
bool e2b_api_key_valid(const char *key);

/* Run-time state: $E2B_RUNTIME_DIR, /run/e2b as root, $XDG_RUNTIME_DIR/e2b, /tmp/e2b-<uid>. */
char *e2b_runtime_dir(void);
/* Templates and caches: $E2B_DATA_DIR, /var/lib/e2b as root, $XDG_DATA_HOME/e2b, ~/.local/share/e2b. */
char *e2b_data_dir(void);

#endif
