/* serve-keys.h - API keys of `e2b serve`: e2b_<32 hex>, stored only as
 * SHA-256 hashes in a 0600 JSON file written atomically; changes take a
 * lock (keys.json.lock) so concurrent `key create`s do not lose a key. */
#ifndef E2B_SERVE_KEYS_H
#define E2B_SERVE_KEYS_H

#include "json.h"

/* <data dir>/serve/keys.json */
char *e2b_serve_keys_path(void);
/* Make a key; *ret_key is the only time the whole key exists. */
int e2b_serve_key_create(const char *path, const char *name, char **ret_key, json_t **ret_entry,
                         struct e2b_error **err);
/* [{id, name, prefix, createdAt}] (no hashes). */
int e2b_serve_key_list(const char *path, json_t **ret, struct e2b_error **err);
int e2b_serve_key_revoke(const char *path, const char *id, struct e2b_error **err);
/* Is this key one of ours? Constant time per stored key. */
bool e2b_serve_key_check(const char *path, const char *key);

#endif
