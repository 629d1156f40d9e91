/* json.h - helpers over jansson: file loading with positions, typed getters,
 * string vectors. */
#ifndef E2B_JSON_H
#define E2B_JSON_H

#include "error.h"
#include <jansson.h>

static inline void e2b_json_decrefp(json_t **j)
{
    if (*j)
        json_decref(*j);
}
#define _cleanup_json_ _cleanup_(e2b_json_decrefp)

/* Parse a file; errors name the file, line and column. */
int e2b_json_load_file(const char *path, json_t **ret, struct e2b_error **err);
/* Parse a buffer; `what` names it in errors ("request body"). */
int e2b_json_parse(const char *data, size_t len, const char *what, json_t **ret,
                   struct e2b_error **err);
/* Serialise compactly (flags 0) or indented (JSON_INDENT(2)); caller frees. */
char *e2b_json_dump(const json_t *j, size_t flags);
/* Write atomically with `mode`. */
int e2b_json_save_file(const char *path, const json_t *j, mode_t mode, struct e2b_error **err);

/* A JSON string of s even when s is not UTF-8 (a path, header or file name
 * from outside; json_string and json_pack's "s" fail on those, and a NULL
 * dumped ends the program): each byte that is not part of a valid UTF-8
 * sequence becomes U+FFFD, as Go's encoding/json does. */
json_t *e2b_json_string_lossy(const char *s);

/* Getters that tolerate missing keys and wrong types. */
const char *e2b_json_str(const json_t *obj, const char *key);     /* NULL if absent */
long long e2b_json_int(const json_t *obj, const char *key, long long def);
bool e2b_json_bool(const json_t *obj, const char *key, bool def);

/* A string vector as a JSON array (NULL: an empty one), and back: NULL
 * when a is not an array of strings, else a NULL-terminated vector to free
 * with e2b_strv_free ([] gives an empty one, not NULL). */
json_t *e2b_json_strv(char *const *v);
char **e2b_json_to_strv(const json_t *a);

#endif
