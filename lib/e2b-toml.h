/* e2b-toml.h - e2b.toml as E2B's CLI writes it (flat `key = value` lines).
 *
 * Keys: template_id (old: id), dockerfile, template_name (old: name),
 * start_cmd, ready_cmd, cpu_count, memory_mb, team_id; and ours, runtime
 * (the runtime of the template's sandboxes). Unknown keys are kept
 * when the file is rewritten.
 */
#ifndef E2B_E2B_TOML_H
#define E2B_E2B_TOML_H

#include <stdbool.h>
#include "error.h"

struct e2b_toml {
    char *template_id;
    char *dockerfile;
    char *template_name;
    char *start_cmd;
    char *ready_cmd;
    char *team_id;
    char *runtime;    /* ours: the runtime of the template's sandboxes (ns, vm, auto) */
    long cpu_count;   /* 0: unset */
    long memory_mb;   /* 0: unset */
};

/* Parse text; errors name the line. */
int e2b_toml_parse(struct e2b_toml *t, const char *text, struct e2b_error **err);
/* Read a file; a missing file gives an empty config when optional. */
int e2b_toml_load(struct e2b_toml *t, const char *path, bool optional, struct e2b_error **err);
void e2b_toml_free(struct e2b_toml *t);

/* Set `key = "value"` in the file (replacing the key or its old name, or
 * appending; a new file gets E2B's header comment), atomically. */
int e2b_toml_set(const char *path, const char *key, const char *value, struct e2b_error **err);

#endif
