/* secret-store.h - the secrets of `e2b serve` (E2B's /secrets), sealed at rest.
 *
 * <data dir>/serve/secrets.json (0600) holds each secret's metadata and its
 * current value sealed with AES-256-GCM (a fresh 96-bit nonce per value;
 * the secret's ID and version as associated data, so no sealed value can
 * be moved to another secret or version) under the key in
 * <data dir>/serve/secrets.key (32 random bytes, 0600, made on first use).
 * Only the server's process reads the key; no call here returns a value but
 * e2b_secret_resolve, which the local backend uses to fill the
 * ${e2b.secrets.NAME} markers of a sandbox's network rules for its egress
 * filter (never written to disk in clear).
 *
 * A secret as E2B's API shows it: {secretID ("sec_" + 20 of [a-z0-9]),
 * name (lowercased), metadata {}, currentVersion, createdAt, updatedAt}.
 */
#ifndef E2B_SECRET_STORE_H
#define E2B_SECRET_STORE_H

#include "json.h"

/* The directory of secrets.json and secrets.key: NULL for <data dir>/serve. */
int e2b_secret_create(const char *dir, const char *name, const char *value, const json_t *metadata,
                      json_t **ret, struct e2b_error **err);
int e2b_secret_update(const char *dir, const char *id_or_name, const char *value,
                      const json_t *metadata, json_t **ret, struct e2b_error **err);
/* All, oldest first. */
int e2b_secret_list(const char *dir, json_t **ret, struct e2b_error **err);
int e2b_secret_get(const char *dir, const char *id_or_name, json_t **ret, struct e2b_error **err);
int e2b_secret_delete(const char *dir, const char *id_or_name, struct e2b_error **err);
/* The current value of a secret (by name or ID); caller frees (and should
 * wipe it with explicit_bzero). */
int e2b_secret_resolve(const char *dir, const char *id_or_name, char **ret_value,
                       struct e2b_error **err);
/* Replace every ${e2b.secrets.NAME} in s by the secret's value; an unknown
 * secret is an error (E2B_ERR_INVALID). *ret: a new string. */
int e2b_secret_fill(const char *dir, const char *s, char **ret, struct e2b_error **err);

#endif
