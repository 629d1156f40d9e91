/* template-steps.c - see template-steps.h */
#include "template-steps.h"
#include "base-image.h"
#include "dockerfile.h"
#include "envd-crypto.h"
#include "fsutil.h"
#include "strbuf.h"

#include <ctype.h>
#include <fcntl.h>
#include <search.h>
#include <stdarg.h>
#include <sys/stat.h>

/* ---- steps -> Dockerfile ---- */

struct gen {
    struct strbuf df;
    char **labels, **texts;
    size_t n;
    const char *label;
    char *text; /* for the next instruction emitted (taken), or NULL */
};

static void emit(struct gen *g, const char *fmt, ...) _printf_(2, 3);
static void emit(struct gen *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *line = xvasprintf(fmt, ap);
    va_end(ap);
    strbuf_addstr(&g->df, line);
    strbuf_addch(&g->df, '\n');
    g->labels = xrealloc(g->labels, (g->n + 1) * sizeof(char *));
    g->texts = xrealloc(g->texts, (g->n + 1) * sizeof(char *));
    g->texts[g->n] = g->text; /* NULL: not shown */
    g->text = NULL;
    g->labels[g->n++] = xstrdup(g->label);
}

/* What the log shows for a step: its type and arguments, as E2B does. */
static char *step_text(const char *type, json_t *args)
{
    struct strbuf b = STRBUF_INIT;
    strbuf_addstr(&b, type);
    size_t i;
    json_t *a;
    json_array_foreach(args, i, a)
        if (json_is_string(a) && *json_string_value(a)) {
            strbuf_addch(&b, ' ');
            strbuf_addstr(&b, json_string_value(a));
        }
    return strbuf_detach(&b, NULL);
}

/* A JSON string without line breaks (jansson escapes them). */
static char *json_str(const char *s)
{
    json_t *j = json_string(s);
    char *out = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(j);
    return out;
}

/* A path for COPY's JSON form: the builder expands $VAR in it and removes
 * quotes, so \, $ and quotes are escaped to stay what they are (''.. was
 * .. once the builder read it). */
static char *copy_path(const char *s)
{
    struct strbuf b = STRBUF_INIT;
    for (; *s; s++) {
        if (strchr("\\$'\"", *s))
            strbuf_addch(&b, '\\');
        strbuf_addch(&b, *s);
    }
    char *j = json_str(b.buf ? b.buf : "");
    strbuf_release(&b);
    return j;
}

static bool has_newline(const char *s) { return strchr(s, '\n') || strchr(s, '\r'); }

static bool env_key_ok(const char *k)
{
    if (!*k || !(isalpha((unsigned char)*k) || *k == '_'))
        return false;
    for (; *k; k++)
        if (!(isalnum((unsigned char)*k) || *k == '_'))
            return false;
    return true;
}

/* USER names and owners: one word of printable characters. */
static bool word_ok(const char *s)
{
    if (!*s || strlen(s) > 256)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == '"' || *s == '\\' || *s == '$')
            return false;
    return true;
}

static bool hex64(const char *s)
{
    size_t n = strspn(s, "0123456789abcdef");
    return n == 64 && !s[n];
}

static const char *arg(json_t *args, size_t i)
{
    json_t *a = json_array_get(args, i);
    return json_is_string(a) ? json_string_value(a) : NULL;
}

void e2b_steps_plan_free(struct e2b_steps_plan *p)
{
    free(p->dockerfile);
    for (size_t i = 0; i < p->n_labels; i++) {
        free(p->labels[i]);
        free(p->texts[i]);
    }
    free(p->labels);
    free(p->texts);
    e2b_strv_free(p->copies);
    free(p->from_template);
    memset(p, 0, sizeof(*p));
}

static int step_error(struct e2b_error **err, size_t n, const char *type, const char *fmt, ...)
    _printf_(4, 5);
static int step_error(struct e2b_error **err, size_t n, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = xvasprintf(fmt, ap);
    va_end(ap);
    return e2b_error_set(err, E2B_ERR_INVALID, "step %zu (%s): %s", n, type, m);
}

int e2b_steps_plan(const json_t *start, struct e2b_steps_plan *ret, struct e2b_error **err)
{
    memset(ret, 0, sizeof(*ret));
    if (!json_is_object(start))
        return e2b_error_set(err, E2B_ERR_INVALID, "the build is not a JSON object");
    json_t *img = json_object_get(start, "fromImage"),
           *tpl = json_object_get(start, "fromTemplate");
    bool has_img = json_is_string(img) && *json_string_value(img);
    bool has_tpl = json_is_string(tpl) && *json_string_value(tpl);
    if (has_img == has_tpl)
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "exactly one of fromImage and fromTemplate must be given");
    const char *base = has_img ? json_string_value(img) : json_string_value(tpl);
    if (has_newline(base) || strchr(base, ' ') || strchr(base, '\t'))
        return e2b_error_set(err, E2B_ERR_INVALID, "invalid base '%s'", base);
    if (has_img && e2b_base_ref_is_template(base)) { /* FROM e2b-template:NAME sent by E2B's CLI */
        base += strlen(E2B_TEMPLATE_REF_PREFIX);
        has_img = false, has_tpl = true;
    }
    if (has_tpl && (!*base || e2b_base_ref_is_template(base) || strchr(base, '/')))
        return e2b_error_set(err, E2B_ERR_INVALID, "invalid template name '%s'", base);
    json_t *steps = json_object_get(start, "steps");
    if (steps && !json_is_null(steps) && !json_is_array(steps))
        return e2b_error_set(err, E2B_ERR_INVALID, "steps must be an array");
    json_t *force = json_object_get(start, "force");
    if (force && !json_is_null(force) && !json_is_boolean(force))
        return e2b_error_set(err, E2B_ERR_INVALID, "force must be true or false");

    struct gen g = { .df = STRBUF_INIT, .label = "base" };
    _cleanup_free_ char *cur_user = xstrdup("user");
    g.text = xasprintf("FROM %s%s", has_tpl ? "template " : "", base);
    if (has_tpl)
        emit(&g, "FROM %s%s", E2B_TEMPLATE_REF_PREFIX, base);
    else
        emit(&g, "FROM %s", base);
    g.text = xstrdup("DEFAULT USER user");
    emit(&g, "USER user"); /* E2B's default user, made when missing */
    if (json_is_true(force))
        ret->force_from = 1;
    size_t i;
    json_t *st;
    int r = 0;
    json_array_foreach(steps, i, st) {
        size_t n = i + 1;
        char label[32];
        snprintf(label, sizeof(label), "%zu", n);
        g.label = label;
        json_t *jt = json_object_get(st, "type"), *args = json_object_get(st, "args");
        const char *type = json_is_string(jt) ? json_string_value(jt) : NULL;
        if (!json_is_object(st) || !type) {
            r = e2b_error_set(err, E2B_ERR_INVALID, "step %zu: not an object with a type", n);
            break;
        }
        if (args && !json_is_null(args) && !json_is_array(args)) {
            r = step_error(err, n, type, "args must be an array of strings");
            break;
        }
        size_t na = json_array_size(args);
        for (size_t k = 0; k < na && r == 0; k++)
            if (!arg(args, k))
                r = step_error(err, n, type, "args must be an array of strings");
        if (r < 0)
            break;
        json_t *sf = json_object_get(st, "force");
        if (json_is_true(sf) && !ret->force_from)
            ret->force_from = g.n + 1;
        free(g.text);
        g.text = step_text(type, args); /* on the step's first instruction */
        if (!strcasecmp(type, "RUN")) {
            const char *cmd = arg(args, 0), *user = arg(args, 1);
            if (!cmd || na > 2) {
                r = step_error(err, n, type, "args are [command, user?]");
                break;
            }
            if (user && *user && !word_ok(user)) {
                r = step_error(err, n, type, "invalid user '%s'", user);
                break;
            }
            bool switch_user = user && *user && !STREQ(user, cur_user);
            if (switch_user) { /* the USER around it is not shown, the RUN says it */
                free(g.text);
                g.text = NULL;
                emit(&g, "USER %s", user);
                g.text = xasprintf("RUN %s (as %s)", cmd, user);
            }
            _cleanup_free_ char *c = json_str(cmd);
            emit(&g, "RUN [\"/bin/sh\", \"-c\", %s]", c);
            if (switch_user)
                emit(&g, "USER %s", cur_user);
        } else if (!strcasecmp(type, "COPY") || !strcasecmp(type, "ADD")) {
            const char *src = arg(args, 0), *dest = arg(args, 1), *owner = arg(args, 2),
                       *mode = arg(args, 3);
            json_t *fh = json_object_get(st, "filesHash");
            const char *hash = json_is_string(fh) ? json_string_value(fh) : NULL;
            if (!src || !dest || na > 4) {
                r = step_error(err, n, type, "args are [source, destination, owner?, mode?]");
                break;
            }
            if (!hash || !hex64(hash)) {
                r = step_error(err, n, type,
                               "filesHash must be the 64 hex digits of the files' SHA-256");
                break;
            }
            _cleanup_error_ struct e2b_error *ce = NULL;
            _cleanup_free_ char *clean = e2b_context_clean(src, &ce);
            if (!clean || src[0] == '/' || has_newline(src) || has_newline(dest) || !*dest) {
                r = step_error(err, n, type, "source '%s' must be a path inside the build context",
                               src);
                break;
            }
            if (owner && *owner && !word_ok(owner)) {
                r = step_error(err, n, type, "invalid owner '%s'", owner);
                break;
            }
            if (mode && *mode && (strspn(mode, "01234567") != strlen(mode) || strlen(mode) > 4)) {
                r = step_error(err, n, type, "mode '%s' is not an octal mode", mode);
                break;
            }
            _cleanup_free_ char *own =
                owner && *owner
                    ? (strchr(owner, ':') ? xstrdup(owner) : xasprintf("%s:%s", owner, owner))
                    : xasprintf("%s:%s", cur_user, cur_user);
            _cleanup_free_ char *from = xasprintf("%s/%s", hash, clean);
            _cleanup_free_ char *js = copy_path(from), *jd = copy_path(dest);
            if (mode && *mode)
                emit(&g, "COPY --chown=%s --chmod=%s [%s, %s]", own, mode, js, jd);
            else
                emit(&g, "COPY --chown=%s [%s, %s]", own, js, jd);
            char *c = xasprintf("%zu\t%s\t%s\t%s", n, hash, src, dest);
            ret->copies = e2b_strv_push(ret->copies, c);
            free(c);
        } else if (!strcasecmp(type, "ENV") || !strcasecmp(type, "ARG")) {
            if (na == 0 || na % 2) {
                r = step_error(err, n, type, "args are [key, value, key, value ...]");
                break;
            }
            struct strbuf line = STRBUF_INIT;
            strbuf_addstr(&line, "ENV");
            for (size_t k = 0; k < na && r == 0; k += 2) {
                const char *key = arg(args, k), *v = arg(args, k + 1);
                if (!env_key_ok(key))
                    r = step_error(err, n, type, "invalid variable name '%s'", key);
                else if (has_newline(v))
                    r = step_error(err, n, type, "the value of %s has a line break", key);
                strbuf_addf(&line, " %s=\"", key);
                for (const char *p = v; r == 0 && *p; p++) {
                    if (*p == '"' || *p == '\\')
                        strbuf_addch(&line, '\\');
                    strbuf_addch(&line, *p);
                }
                strbuf_addch(&line, '"');
            }
            if (r == 0)
                emit(&g, "%s", line.buf);
            strbuf_release(&line);
            if (r < 0)
                break;
        } else if (!strcasecmp(type, "WORKDIR")) {
            const char *dir = arg(args, 0);
            if (!dir || !*dir || na > 1 || has_newline(dir)) {
                r = step_error(err, n, type, "args are [directory]");
                break;
            }
            emit(&g, "WORKDIR %s", dir);
        } else if (!strcasecmp(type, "USER")) {
            const char *user = arg(args, 0);
            if (!user || !word_ok(user) || na > 2) {
                r = step_error(err, n, type, "args are [user name]");
                break;
            }
            free(cur_user);
            cur_user = xstrdup(user);
            emit(&g, "USER %s", user);
        } else {
            r = e2b_error_set(
                err, E2B_ERR_INVALID,
                "step %zu: unknown step type '%s' (known: RUN, COPY, ENV, WORKDIR, USER)", n, type);
            break;
        }
        ret->n_steps = n;
    }
    free(g.text);
    if (r < 0) {
        strbuf_release(&g.df);
        for (size_t k = 0; k < g.n; k++) {
            free(g.labels[k]);
            free(g.texts[k]);
        }
        free(g.labels);
        free(g.texts);
        e2b_strv_free(ret->copies);
        memset(ret, 0, sizeof(*ret));
        return -1;
    }
    ret->dockerfile = strbuf_detach(&g.df, NULL);
    ret->labels = g.labels;
    ret->texts = g.texts;
    ret->n_labels = g.n;
    ret->from_template = has_tpl ? xstrdup(base) : NULL;
    /* What the builder will not read (a quote in an image name, `${` left
     * open in a value it expands) is refused now, naming the step, rather
     * than failing the build later: one line per instruction, so a line
     * is an instruction is a step. */
    struct e2b_dockerfile *df = NULL;
    struct e2b_build_args ba = { 0 };
    _cleanup_error_ struct e2b_error *pe = NULL;
    if (e2b_dockerfile_parse("steps", ret->dockerfile, strlen(ret->dockerfile), &ba, &df, &pe) ==
            0 &&
        df->n_stages == 1 && df->stages[0].n_instrs == ret->n_labels) {
        e2b_dockerfile_free(df);
        return 0;
    }
    e2b_dockerfile_free(df);
    unsigned line = 0;
    int skip = 0;
    const char *why = pe ? pe->msg : "it does not make one instruction per line";
    if (pe && sscanf(pe->msg, "steps:%u:%n", &line, &skip) == 1 && skip) {
        why = pe->msg + skip;
        unsigned col;
        int more = 0;
        if (sscanf(why, "%u:%n", &col, &more) == 1 && more)
            why += more;
        why += strspn(why, " ");
    }
    const char *label = line >= 1 && line <= ret->n_labels ? ret->labels[line - 1] : NULL;
    if (label && STREQ(label, "base"))
        e2b_error_set(err, E2B_ERR_INVALID, "%s '%s': %s", has_tpl ? "fromTemplate" : "fromImage",
                      base, why);
    else if (label)
        e2b_error_set(err, E2B_ERR_INVALID, "step %s: %s", label, why);
    else
        e2b_error_set(err, E2B_ERR_INVALID, "the steps cannot be built: %s", why);
    e2b_steps_plan_free(ret);
    return -1;
}

/* ---- Dockerfile -> steps ---- */

static json_t *step(const char *type, json_t *args)
{
    return json_pack("{s:s, s:o, s:b}", "type", type, "args", args, "force", 0);
}

int e2b_steps_from_dockerfile(const char *path, const char *const *build_args, size_t n_build_args,
                              json_t **ret, char ***ret_ignored, struct e2b_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (e2b_read_file(path, &text, &len, err) < 0)
        return -1;
    struct e2b_build_args ba = { .args = build_args, .n_args = n_build_args };
    const char *slash = strrchr(path, '/');
    _cleanup_dockerfile_ struct e2b_dockerfile *df = NULL;
    if (e2b_dockerfile_parse(slash ? slash + 1 : path, text, len, &ba, &df, err) < 0)
        return -1;
    if (df->n_stages != 1)
        return e2b_error_set(
            err, E2B_ERR_UNSUPPORTED,
            "%s has %zu stages: a build through an E2B API takes one FROM (build it here "
            "with --api-url \"\", or keep one stage)",
            df->name, df->n_stages);
    const struct e2b_df_stage *sg = &df->stages[0];
    json_t *steps = json_array();
    char **ignored = NULL;
    bool user_set = false, workdir_set = false;
    json_array_append_new(steps, step("USER", json_pack("[s]", "root")));
    json_array_append_new(steps, step("WORKDIR", json_pack("[s]", "/")));
    int r = 0;
    for (size_t i = 1; r == 0 && i < sg->n_instrs; i++) {
        const struct e2b_df_instr *in = &sg->instrs[i];
        const char *kind = e2b_df_kind_name(in->kind);
        switch (in->kind) {
        case E2B_DF_RUN: {
            struct strbuf cmd = STRBUF_INIT;
            if (in->n_heredocs) {
                if (in->n_args == 1 && in->n_heredocs == 1 && !strncmp(in->args[0], "<<", 2) &&
                    !strchr(in->args[0], ' '))
                    strbuf_addstr(&cmd, in->heredocs[0].content);
                else
                    r = e2b_error_set(
                        err, E2B_ERR_UNSUPPORTED,
                        "%s:%d: a RUN with heredocs cannot be sent to an E2B API (only `RUN <<EOF` "
                        "alone)",
                        df->name, in->line);
            } else if (in->json) {
                for (size_t k = 0; k < in->n_args; k++) {
                    if (k)
                        strbuf_addch(&cmd, ' ');
                    strbuf_add_shell_quoted(&cmd, in->args[k]);
                }
            } else {
                strbuf_addstr(&cmd, in->n_args ? in->args[0] : "");
            }
            if (r == 0)
                json_array_append_new(steps, step("RUN", json_pack("[s]", cmd.buf ? cmd.buf : "")));
            strbuf_release(&cmd);
            break;
        }
        case E2B_DF_COPY:
        case E2B_DF_ADD: {
            const char *from = e2b_df_flag(in, "from", NULL);
            if (from || in->n_heredocs) {
                r = e2b_error_set(
                    err, E2B_ERR_UNSUPPORTED,
                    "%s:%d: %s %s cannot be sent to an E2B API (only files of the context)",
                    df->name, in->line, kind, from ? "--from" : "with a heredoc");
                break;
            }
            const char *chown = e2b_df_flag(in, "chown", NULL),
                       *chmod = e2b_df_flag(in, "chmod", NULL);
            if (chmod && strspn(chmod, "01234567") != strlen(chmod)) {
                r = e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                                  "%s:%d: %s --chmod=%s: an E2B API takes an octal mode", df->name,
                                  in->line, kind, chmod);
                break;
            }
            for (size_t k = 0; r == 0 && k + 1 < in->n_args; k++) {
                const char *src = in->args[k];
                if (strstr(src, "://")) {
                    r = e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                                      "%s:%d: ADD of a URL cannot be sent to an E2B API", df->name,
                                      in->line);
                    break;
                }
                while (src[0] == '.' && src[1] == '/')
                    src += 2;
                _cleanup_free_ char *mode =
                    chmod ? xasprintf("%04lo", strtoul(chmod, NULL, 8)) : NULL;
                json_array_append_new(
                    steps, step("COPY", json_pack("[s, s, s, s]", *src ? src : ".",
                                                  in->args[in->n_args - 1], chown ? chown : "",
                                                  mode ? mode : "")));
            }
            break;
        }
        case E2B_DF_ENV:
        case E2B_DF_ARG: {
            json_t *a = json_array();
            for (size_t k = 0; k < in->n_kvs; k++) {
                json_array_append_new(a, json_string(in->kvs[k].key));
                json_array_append_new(a, json_string(in->kvs[k].value ? in->kvs[k].value : ""));
            }
            if (json_array_size(a))
                json_array_append_new(steps, step("ENV", a));
            else
                json_decref(a);
            break;
        }
        case E2B_DF_WORKDIR:
            workdir_set = true;
            json_array_append_new(
                steps, step("WORKDIR", json_pack("[s]", in->n_args ? in->args[0] : "/")));
            break;
        case E2B_DF_USER:
            user_set = true;
            json_array_append_new(
                steps, step("USER", json_pack("[s]", in->n_args ? in->args[0] : "root")));
            break;
        default: {
            char *s = xasprintf("%s (line %d)", kind, in->line);
            ignored = e2b_strv_push(ignored, s);
            free(s);
        }
        }
    }
    if (r < 0) {
        json_decref(steps);
        e2b_strv_free(ignored);
        return -1;
    }
    if (!user_set)
        json_array_append_new(steps, step("USER", json_pack("[s]", "user")));
    if (!workdir_set)
        json_array_append_new(steps, step("WORKDIR", json_pack("[s]", "/home/user")));
    if (e2b_base_ref_is_template(sg->base)) /* a template of the API's own */
        *ret = json_pack("{s:s, s:o, s:b}", "fromTemplate",
                         sg->base + strlen(E2B_TEMPLATE_REF_PREFIX), "steps", steps, "force", 0);
    else
        *ret = json_pack("{s:s, s:o, s:b}", "fromImage", sg->base, "steps", steps, "force", 0);
    if (ret_ignored)
        *ret_ignored = ignored;
    else
        e2b_strv_free(ignored);
    return 0;
}

/* ---- filesHash ---- */

static bool has_glob(const char *s) { return strpbrk(s, "*?[") != NULL; }

/* Path order as the SDK sorts full paths: the context itself ("."), first. */
static int cmp_str(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    return strcmp(STREQ(x, ".") ? "" : x, STREQ(y, ".") ? "" : y);
}

/* rel and everything below it (when a directory), unless ignored. */
static void collect(const char *context, const char *rel, const struct e2b_ignore *ig, char ***out,
                    void **seen)
{
    if (ig && e2b_ignore_match(ig, rel))
        return;
    if (!tfind(rel, seen, (int (*)(const void *, const void *))strcmp)) {
        char *k = xstrdup(rel);
        tsearch(k, seen, (int (*)(const void *, const void *))strcmp);
        *out = e2b_strv_push(*out, rel);
    }
    _cleanup_free_ char *p = e2b_path_join(context, rel);
    struct stat st;
    if (lstat(p, &st) < 0 || !S_ISDIR(st.st_mode))
        return;
    _cleanup_closedir_ DIR *d = opendir(p);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
            continue;
        _cleanup_free_ char *sub =
            STREQ(rel, ".") ? xstrdup(de->d_name) : xasprintf("%s/%s", rel, de->d_name);
        collect(context, sub, ig, out, seen);
    }
}

/* Paths of the context matching a glob (every depth the pattern has). */
static void glob_walk(const char *context, const char *rel, const char *pattern, size_t depth,
                      size_t max, char ***out)
{
    _cleanup_free_ char *p = rel ? e2b_path_join(context, rel) : xstrdup(context);
    _cleanup_closedir_ DIR *d = opendir(p);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
            continue;
        _cleanup_free_ char *sub = rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
        if (e2b_glob_match(pattern, sub))
            *out = e2b_strv_push(*out, sub);
        else if (depth + 1 < max && de->d_type == DT_DIR)
            glob_walk(context, sub, pattern, depth + 1, max, out);
    }
}

static void hash_str(struct e2b_sha256 *c, const char *s) { e2b_sha256_update(c, s, strlen(s)); }

static void hash_num(struct e2b_sha256 *c, unsigned long long v)
{
    char b[32];
    snprintf(b, sizeof(b), "%llu", v);
    hash_str(c, b);
}

int e2b_files_hash(const char *context, const char *src, const char *dest,
                   const struct e2b_ignore *ig, char out[65], char ***ret_paths, bool *has_dirs,
                   struct e2b_error **err)
{
    _cleanup_free_ char *clean = e2b_context_clean(src, err);
    if (!clean)
        return -1;
    char **matches = NULL;
    if (has_glob(clean)) {
        size_t depth = 1;
        for (const char *p = clean; *p; p++)
            depth += *p == '/';
        glob_walk(context, NULL, clean, 0, strstr(clean, "**") ? 64 : depth, &matches);
    } else {
        _cleanup_free_ char *p = e2b_path_join(context, clean);
        struct stat st;
        if (lstat(p, &st) == 0)
            matches = e2b_strv_push(matches, clean);
    }
    char **paths = NULL;
    void *seen = NULL;
    for (char **m = matches; m && *m; m++)
        collect(context, *m, ig, &paths, &seen);
    tdestroy(seen, free);
    e2b_strv_free(matches);
    if (!paths)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "no files match '%s' in %s", src, context);
    size_t n = e2b_strv_len(paths);
    qsort(paths, n, sizeof(char *), cmp_str);
    struct e2b_sha256 c;
    e2b_sha256_init(&c);
    _cleanup_free_ char *head = xasprintf("COPY %s %s", src, dest);
    hash_str(&c, head);
    bool dirs = false;
    int r = 0;
    for (size_t i = 0; r == 0 && i < n; i++) {
        _cleanup_free_ char *p = e2b_path_join(context, paths[i]);
        struct stat st;
        hash_str(&c, STREQ(paths[i], ".") ? "" : paths[i]);
        if (lstat(p, &st) < 0) {
            r = e2b_error_sys(err, errno, "%s", p);
            break;
        }
        hash_num(&c, st.st_mode);
        hash_num(&c, (unsigned long long)st.st_size);
        if (S_ISLNK(st.st_mode)) {
            char t[4096];
            ssize_t l = readlink(p, t, sizeof(t));
            if (l > 0)
                e2b_sha256_update(&c, t, (size_t)l);
        } else if (S_ISREG(st.st_mode)) {
            _cleanup_close_ int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            char buf[65536];
            ssize_t l;
            if (fd < 0) {
                r = e2b_error_sys(err, errno, "%s", p);
                break;
            }
            while ((l = read(fd, buf, sizeof(buf))) > 0)
                e2b_sha256_update(&c, buf, (size_t)l);
            if (l < 0)
                r = e2b_error_sys(err, errno, "%s", p);
        } else if (S_ISDIR(st.st_mode)) {
            dirs = true;
        }
    }
    uint8_t d[E2B_SHA256_LEN];
    e2b_sha256_final(&c, d);
    for (size_t i = 0; i < E2B_SHA256_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    if (has_dirs)
        *has_dirs = dirs;
    if (r == 0 && ret_paths)
        *ret_paths = paths;
    else
        e2b_strv_free(paths);
    return r;
}
