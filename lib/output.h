/* output.h - print data as a text table or as JSON from the same calls.
 *
 * Commands build rows as JSON objects; the text form shows the chosen
 * columns, the JSON form shows every field. So `--json` cannot drift from
 * what the table shows (iproute2's print_string(PRINT_ANY, ...) idea).
 *
 *   static const struct e2b_column cols[] = {{"sandboxID", "SANDBOX ID"}, {NULL, NULL}};
 *   struct e2b_table *t = e2b_table_new(cols);
 *   json_t *row = e2b_table_add_row(t);
 *   json_object_set_new(row, "sandboxID", json_string(id));
 *   e2b_table_print(t, stdout, ctx->json);
 */
#ifndef E2B_OUTPUT_H
#define E2B_OUTPUT_H

#include "json.h"

struct e2b_column {
    const char *key;    /* JSON field */
    const char *header; /* text column title */
};

struct e2b_table;

struct e2b_table *e2b_table_new(const struct e2b_column *cols);
/* A new row object owned by the table, to fill with json_object_set*. */
json_t *e2b_table_add_row(struct e2b_table *t);
/* The rows as a JSON array (borrowed). */
json_t *e2b_table_rows(struct e2b_table *t);
void e2b_table_print(struct e2b_table *t, FILE *f, bool json);
void e2b_table_free(struct e2b_table *t);

/* One object: "Header:  value" lines for cols, or the JSON object. */
void e2b_object_print(const json_t *obj, const struct e2b_column *cols, FILE *f, bool json);

#endif
