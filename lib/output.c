/* output.c - see output.h */
#include "output.h"
#include "strbuf.h"

struct e2b_table {
    const struct e2b_column *cols;
    json_t *rows;
};

struct e2b_table *e2b_table_new(const struct e2b_column *cols)
{
    struct e2b_table *t = xcalloc(1, sizeof(*t));
    t->cols = cols;
    t->rows = json_array();
    return t;
}

json_t *e2b_table_add_row(struct e2b_table *t)
{
    json_t *row = json_object();
    json_array_append_new(t->rows, row);
    return row;
}

json_t *e2b_table_rows(struct e2b_table *t) { return t->rows; }

/* Text form of a JSON value for a table cell ("" for null, k=v,.. for objects). */
static char *cell_text(const json_t *v)
{
    if (!v || json_is_null(v))
        return xstrdup("");
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_object(v)) {
        struct strbuf sb = STRBUF_INIT;
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            _cleanup_free_ char *c = cell_text(x);
            strbuf_addf(&sb, "%s%s=%s", sb.len ? "," : "", k, c);
        }
        return strbuf_detach(&sb, NULL);
    }
    if (json_is_array(v)) { /* names, tags: a list a person reads, not JSON */
        struct strbuf sb = STRBUF_INIT;
        size_t i;
        json_t *x;
        json_array_foreach((json_t *)v, i, x) {
            _cleanup_free_ char *c = cell_text(x);
            strbuf_addf(&sb, "%s%s", i ? "," : "", c);
        }
        return strbuf_detach(&sb, NULL);
    }
    return e2b_json_dump(v, 0);
}

void e2b_table_print(struct e2b_table *t, FILE *f, bool json)
{
    if (json) {
        _cleanup_free_ char *s = e2b_json_dump(t->rows, JSON_INDENT(2));
        fprintf(f, "%s\n", s);
        return;
    }
    size_t ncols = 0;
    while (t->cols[ncols].key)
        ncols++;
    size_t nrows = json_array_size(t->rows);
    size_t *width = xcalloc(ncols, sizeof(*width));
    char **cells = xcalloc(ncols * (nrows + 1), sizeof(*cells));
    for (size_t c = 0; c < ncols; c++) {
        cells[c] = xstrdup(t->cols[c].header);
        width[c] = strlen(cells[c]);
    }
    for (size_t r = 0; r < nrows; r++)
        for (size_t c = 0; c < ncols; c++) {
            char *s = cell_text(json_object_get(json_array_get(t->rows, r), t->cols[c].key));
            cells[(r + 1) * ncols + c] = s;
            if (strlen(s) > width[c])
                width[c] = strlen(s);
        }
    for (size_t r = 0; r <= nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *s = cells[r * ncols + c];
            if (c + 1 == ncols)
                fprintf(f, "%s", s);
            else
                fprintf(f, "%-*s  ", (int)width[c], s);
        }
        fputc('\n', f);
    }
    for (size_t i = 0; i < ncols * (nrows + 1); i++)
        free(cells[i]);
    free(cells);
    free(width);
}

void e2b_table_free(struct e2b_table *t)
{
    if (!t)
        return;
    json_decref(t->rows);
    free(t);
}

void e2b_object_print(const json_t *obj, const struct e2b_column *cols, FILE *f, bool json)
{
    if (json) {
        _cleanup_free_ char *s = e2b_json_dump(obj, JSON_INDENT(2));
        fprintf(f, "%s\n", s);
        return;
    }
    size_t w = 0;
    for (const struct e2b_column *c = cols; c->key; c++)
        if (strlen(c->header) > w)
            w = strlen(c->header);
    for (const struct e2b_column *c = cols; c->key; c++) {
        json_t *x = json_object_get(obj, c->key);
        if (!x || json_is_null(x)) /* text shows what is known; JSON shows all */
            continue;
        _cleanup_free_ char *v = cell_text(x);
        fprintf(f, "%s:%*s %s\n", c->header, (int)(w - strlen(c->header)), "", v);
    }
}
