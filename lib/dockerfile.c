/* dockerfile.c - Dockerfile instructions, scopes and stages; see dockerfile.h. */
#include "dockerfile.h"
#include "platform.h"
#include "dockerfile-expand.h"
#include "dockerfile-lex.h"
#include "envd-crypto.h"
#include "json.h"
#include "strbuf.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <strings.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* --- instruction and flag tables ----------------------------------------- */

enum flag_type { F_STRING, F_BOOL, F_MULTI };
struct flag_spec {
    const char *name;
    enum flag_type type;
    bool expand;
};

static const struct flag_spec from_flags[] = {{"platform", F_STRING, true}, {NULL, 0, 0}};
static const struct flag_spec run_flags[] = {
    {"mount", F_MULTI, false}, {"network", F_STRING, false}, {"security", F_STRING, false}, {NULL, 0, 0}};
static const struct flag_spec copy_flags[] = {
    {"from", F_STRING, true}, {"chown", F_STRING, true}, {"chmod", F_STRING, true}, {"link", F_BOOL, false},
    {"parents", F_BOOL, false}, {"exclude", F_MULTI, true}, {NULL, 0, 0}};
static const struct flag_spec add_flags[] = {
    {"chown", F_STRING, true}, {"chmod", F_STRING, true}, {"link", F_BOOL, false},
    {"checksum", F_STRING, true}, {"keep-git-dir", F_BOOL, false}, {"unpack", F_BOOL, false},
    {"exclude", F_MULTI, true}, {NULL, 0, 0}};
static const struct flag_spec health_flags[] = {
    {"interval", F_STRING, false}, {"timeout", F_STRING, false}, {"start-period", F_STRING, false},
    {"start-interval", F_STRING, false}, {"retries", F_STRING, false}, {NULL, 0, 0}};
static const struct flag_spec no_flags[] = {{NULL, 0, 0}};

static const struct kind_spec {
    const char *name;
    enum e2b_df_kind kind;
    const struct flag_spec *flags;
} kinds[] = {
    {"ADD", E2B_DF_ADD, add_flags},
    {"ARG", E2B_DF_ARG, no_flags},
    {"CMD", E2B_DF_CMD, no_flags},
    {"COPY", E2B_DF_COPY, copy_flags},
    {"ENTRYPOINT", E2B_DF_ENTRYPOINT, no_flags},
    {"ENV", E2B_DF_ENV, no_flags},
    {"EXPOSE", E2B_DF_EXPOSE, no_flags},
    {"FROM", E2B_DF_FROM, from_flags},
    {"HEALTHCHECK", E2B_DF_HEALTHCHECK, health_flags},
    {"LABEL", E2B_DF_LABEL, no_flags},
    {"MAINTAINER", E2B_DF_MAINTAINER, no_flags},
    {"ONBUILD", E2B_DF_ONBUILD, no_flags},
    {"RUN", E2B_DF_RUN, run_flags},
    {"SHELL", E2B_DF_SHELL, no_flags},
    {"STOPSIGNAL", E2B_DF_STOPSIGNAL, no_flags},
    {"USER", E2B_DF_USER, no_flags},
    {"VOLUME", E2B_DF_VOLUME, no_flags},
    {"WORKDIR", E2B_DF_WORKDIR, no_flags},
};

const char *e2b_df_kind_name(enum e2b_df_kind kind)
{
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
        if (kinds[i].kind == kind)
            return kinds[i].name;
    return "?";
}

/* Grow an array that holds n elements so it can take one more: capacity
 * doubles (at 0 and each power of two), keeping appends linear. */
static void *grow(void *p, size_t n, size_t size)
{
    if (n && (n & (n - 1)))
        return p;
    return xrealloc(p, (n ? 2 * n : 1) * size);
}

/* --- variables ------------------------------------------------------------ */

/* An ordered name -> value list; a NULL value is "declared, no value". */
struct vars {
    char **k;
    char **v;
    size_t n;
};

static void vars_clear(struct vars *vs)
{
    for (size_t i = 0; i < vs->n; i++) {
        free(vs->k[i]);
        free(vs->v[i]);
    }
    free(vs->k);
    free(vs->v);
    memset(vs, 0, sizeof(*vs));
}

static ssize_t vars_find(const struct vars *vs, const char *k)
{
    for (size_t i = 0; i < vs->n; i++)
        if (STREQ(vs->k[i], k))
            return (ssize_t)i;
    return -1;
}

static bool vars_has(const struct vars *vs, const char *k) { return vars_find(vs, k) >= 0; }

static const char *vars_get(const struct vars *vs, const char *k)
{
    ssize_t i = vars_find(vs, k);
    return i < 0 ? NULL : vs->v[i];
}

static void vars_set(struct vars *vs, const char *k, const char *v)
{
    ssize_t i = vars_find(vs, k);
    if (i >= 0) {
        free(vs->v[i]);
        vs->v[i] = v ? xstrdup(v) : NULL;
        return;
    }
    vs->k = grow(vs->k, vs->n, sizeof(char *));
    vs->v = grow(vs->v, vs->n, sizeof(char *));
    vs->k[vs->n] = xstrdup(k);
    vs->v[vs->n] = v ? xstrdup(v) : NULL;
    vs->n++;
}

/* "K=V" entries (the first '=' splits). */
static void vars_set_kv(struct vars *vs, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq) {
        vars_set(vs, kv, "");
        return;
    }
    _cleanup_free_ char *k = xstrndup(kv, (size_t)(eq - kv));
    vars_set(vs, k, eq + 1);
}

static char **vars_strv(const struct vars *vs)
{
    char **r = xcalloc(vs->n + 1, sizeof(char *));
    size_t j = 0;
    for (size_t i = 0; i < vs->n; i++)
        if (vs->v[i])
            r[j++] = xasprintf("%s=%s", vs->k[i], vs->v[i]);
    return r;
}

/* --- parse state ----------------------------------------------------------- */

static const char *const platform_args[] = {
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
};
static const char *const proxy_args[] = {
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
    "ftp_proxy",  "NO_PROXY",   "no_proxy",    "ALL_PROXY",   "all_proxy",
};

struct pstate {
    const char *name;
    char esc;
    const struct e2b_build_args *ba;
    struct e2b_error **err;
    struct e2b_dockerfile *df;

    struct vars build_args;
    bool *ba_used;
    struct vars autos;   /* automatic platform args */
    struct vars globals; /* global ARG values */

    /* the current stage */
    bool in_stage;
    struct vars env;
    struct vars args;

    /* the line being parsed and where the instruction text starts in it */
    const struct e2b_df_logical *lg;
    size_t base;
};

static int perr(struct pstate *st, ssize_t off, const char *fmt, ...) _printf_(3, 4);
static int perr(struct pstate *st, ssize_t off, const char *fmt, ...)
{
    _cleanup_free_ char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    if (off < 0)
        return e2b_error_set(st->err, E2B_ERR_INVALID, "%s:%d: %s", st->name, st->lg->line, msg);
    int line, col;
    e2b_df_logical_pos(st->lg, st->base + (size_t)off, &line, &col);
    return e2b_error_set(st->err, E2B_ERR_INVALID, "%s:%d:%d: %s", st->name, line, col, msg);
}

enum scope { SCOPE_NONE, SCOPE_GLOBAL, SCOPE_STAGE };

static const char *lookup_global(void *ud, const char *name)
{
    struct pstate *st = ud;
    ssize_t i = vars_find(&st->globals, name);
    if (i >= 0)
        return st->globals.v[i];
    return vars_get(&st->autos, name);
}

static const char *lookup_stage(void *ud, const char *name)
{
    struct pstate *st = ud;
    ssize_t i = vars_find(&st->env, name);
    if (i >= 0)
        return st->env.v[i];
    return vars_get(&st->args, name);
}

/* Expand `word` (at `off` in the instruction text) in a scope; SCOPE_NONE
 * copies it. */
static int expand(struct pstate *st, enum scope sc, const char *word, size_t off, unsigned flags, char **ret)
{
    _cleanup_error_ struct e2b_error *e = NULL;
    if (sc == SCOPE_NONE) {
        *ret = xstrdup(word);
        return 0;
    }
    if (e2b_df_expand_word(word, (flags & E2B_DF_EXPAND_KEEP_QUOTES) ? '\\' : st->esc, flags,
                           sc == SCOPE_GLOBAL ? lookup_global : lookup_stage, st, ret, &e) < 0)
        return perr(st, (ssize_t)off, "cannot expand '%.*s%s': %s", strlen(word) > 80 ? 77 : (int)strlen(word),
                    word, strlen(word) > 80 ? "..." : "", e->msg);
    return 0;
}

/* --- small validators ------------------------------------------------------ */

static bool parse_go_bool(const char *s, bool *ret)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < ARRAY_SIZE(t); i++)
        if (STREQ(s, t[i])) {
            *ret = true;
            return true;
        }
    for (size_t i = 0; i < ARRAY_SIZE(f); i++)
        if (STREQ(s, f[i])) {
            *ret = false;
            return true;
        }
    return false;
}

int e2b_df_parse_duration(const char *s, long long *ret_ns)
{
    static const struct {
        const char *u;
        long long ns;
    } units[] = {{"ns", 1},           {"us", 1000LL},          {"\xc2\xb5s", 1000LL}, {"\xce\xbcs", 1000LL},
                 {"ms", 1000000LL},   {"s", 1000000000LL},     {"m", 60000000000LL},  {"h", 3600000000000LL}};
    bool neg = false;
    long double total = 0;

    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (STREQ(s, "0")) {
        *ret_ns = 0;
        return 0;
    }
    if (!*s)
        return -1;
    while (*s) {
        long double v = 0, scale = 1;
        bool digits = false;
        while (isdigit((unsigned char)*s)) {
            v = v * 10 + (*s++ - '0');
            digits = true;
        }
        if (*s == '.') {
            s++;
            while (isdigit((unsigned char)*s)) {
                scale /= 10;
                v += scale * (*s++ - '0');
                digits = true;
            }
        }
        if (!digits)
            return -1;
        size_t best = 0;
        long long mult = 0;
        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
            size_t l = strlen(units[i].u);
            if (!strncmp(s, units[i].u, l) && l > best) {
                best = l;
                mult = units[i].ns;
            }
        }
        if (!best)
            return -1;
        s += best;
        total += v * mult;
        if (total > (long double)LLONG_MAX)
            return -1;
    }
    *ret_ns = (long long)(neg ? -total : total);
    return 0;
}

/* go-units RAMInBytes: "64m", "1.5GiB", "512" */
static bool parse_size(const char *s, unsigned long long *ret)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0 || !isdigit((unsigned char)*s))
        return false;
    if (*end == ' ')
        end++;
    unsigned long long mult = 1;
    const char *u = "kmgtp";
    if (*end && strchr(u, tolower((unsigned char)*end))) {
        for (const char *p = u; *p; p++) {
            mult *= 1024;
            if (*p == tolower((unsigned char)*end))
                break;
        }
        end++;
        if (tolower((unsigned char)*end) == 'i')
            end++;
    }
    if (tolower((unsigned char)*end) == 'b')
        end++;
    if (*end || v * (double)mult > 1.8e19)
        return false;
    *ret = (unsigned long long)(v * (double)mult);
    return true;
}

static bool valid_port(const char *p)
{
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (slash && strcasecmp(slash + 1, "tcp") && strcasecmp(slash + 1, "udp") && strcasecmp(slash + 1, "sctp"))
        return false;
    long lo = -1, hi = -1;
    const char *s = p, *end = p + n;
    for (int part = 0; part < 2; part++) {
        long v = 0;
        const char *b = s;
        while (s < end && isdigit((unsigned char)*s)) {
            v = v * 10 + (*s++ - '0');
            if (v > 65535)
                return false;
        }
        if (s == b)
            return false;
        if (part == 0) {
            lo = hi = v;
            if (s == end)
                break;
            if (*s++ != '-')
                return false;
        } else {
            hi = v;
            if (s != end)
                return false;
        }
    }
    return lo <= hi;
}

static bool valid_signal(const char *s)
{
    static const char *const names[] = {
        "ABRT", "ALRM",  "BUS",  "CHLD", "CLD",    "CONT", "FPE",  "HUP",  "ILL",    "INT",  "IO",
        "IOT",  "KILL",  "PIPE", "POLL", "PROF",   "PWR",  "QUIT", "SEGV", "STKFLT", "STOP", "SYS",
        "TERM", "TRAP",  "TSTP", "TTIN", "TTOU",   "URG",  "USR1", "USR2", "VTALRM", "WINCH", "XCPU",
        "XFSZ", "RTMIN", "RTMAX", "UNUSED",
    };
    char *end;
    long n = strtol(s, &end, 10);
    if (*s && !*end)
        return n >= 1 && n <= 64;
    if (!strncasecmp(s, "SIG", 3))
        s += 3;
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        size_t l = strlen(names[i]);
        if (strncasecmp(s, names[i], l))
            continue;
        if (!s[l])
            return true;
        if ((STREQ(names[i], "RTMIN") && s[l] == '+') || (STREQ(names[i], "RTMAX") && s[l] == '-')) {
            n = strtol(s + l + 1, &end, 10);
            return isdigit((unsigned char)s[l + 1]) && !*end && n >= 1 && n <= 30;
        }
    }
    return false;
}

bool e2b_dockerfile_chmod_valid(const char *s)
{
    if (isdigit((unsigned char)*s)) {
        char *end;
        unsigned long m = strtoul(s, &end, 8);
        return !*end && m <= 07777;
    }
    /* symbolic: [ugoa]*[-+=][rwxXst]* (,...) */
    if (!*s)
        return false;
    for (;;) {
        while (*s && strchr("ugoa", *s))
            s++;
        if (!*s || !strchr("+-=", *s))
            return false;
        while (*s && strchr("+-=", *s)) {
            s++;
            while (*s && strchr("rwxXst", *s))
                s++;
        }
        if (!*s)
            return true;
        if (*s++ != ',')
            return false;
    }
}

static bool valid_digest(const char *s)
{
    static const struct {
        const char *algo;
        size_t hexlen;
    } algos[] = {{"sha256:", 64}, {"sha384:", 96}, {"sha512:", 128}};
    for (size_t i = 0; i < ARRAY_SIZE(algos); i++) {
        size_t l = strlen(algos[i].algo);
        if (strncmp(s, algos[i].algo, l))
            continue;
        s += l;
        return strlen(s) == algos[i].hexlen && e2b_hex_span(s) == algos[i].hexlen;
    }
    return false;
}

static bool valid_stage_name(const char *s)
{
    if (!islower((unsigned char)*s))
        return false;
    for (s++; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && !strchr("-_.", *s))
            return false;
    return true;
}

static char *lowercase(const char *s)
{
    char *r = xstrdup(s);
    for (char *p = r; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return r;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* --- freeing --------------------------------------------------------------- */

static void instr_release(struct e2b_df_instr *in)
{
    if (!in)
        return;
    free(in->name);
    free(in->original);
    for (size_t i = 0; i < in->n_flags; i++) {
        free(in->flags[i].name);
        free(in->flags[i].value);
    }
    free(in->flags);
    e2b_strv_free(in->args);
    for (size_t i = 0; i < in->n_kvs; i++) {
        free(in->kvs[i].key);
        free(in->kvs[i].value);
    }
    free(in->kvs);
    for (size_t i = 0; i < in->n_heredocs; i++) {
        free(in->heredocs[i].name);
        free(in->heredocs[i].content);
    }
    free(in->heredocs);
    for (size_t i = 0; i < in->n_mounts; i++) {
        struct e2b_df_mount *m = &in->mounts[i];
        free(m->target);
        free(m->source);
        free(m->from);
        free(m->id);
        free(m->env);
    }
    free(in->mounts);
    if (in->health) {
        e2b_strv_free(in->health->test);
        free(in->health);
    }
    if (in->trigger) {
        instr_release(in->trigger);
        free(in->trigger);
    }
    e2b_strv_free(in->env);
    memset(in, 0, sizeof(*in));
}

static void kvs_free(struct e2b_df_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

void e2b_dockerfile_free(struct e2b_dockerfile *df)
{
    if (!df)
        return;
    free(df->name);
    free(df->syntax);
    free(df->check);
    for (size_t i = 0; i < df->n_global_args; i++)
        instr_release(&df->global_args[i]);
    free(df->global_args);
    kvs_free(df->globals, df->n_globals);
    for (size_t s = 0; s < df->n_stages; s++) {
        struct e2b_df_stage *sg = &df->stages[s];
        free(sg->name);
        free(sg->base);
        free(sg->platform);
        for (size_t i = 0; i < sg->n_instrs; i++)
            instr_release(&sg->instrs[i]);
        free(sg->instrs);
        e2b_strv_free(sg->env);
        free(sg->deps);
    }
    free(df->stages);
    e2b_strv_free(df->unused_build_args);
    free(df);
}

/* --- building blocks of instructions ---------------------------------------- */

static void args_push(struct e2b_df_instr *in, char *s)
{
    in->args = xrealloc(in->args, (in->n_args + 2) * sizeof(char *));
    in->args[in->n_args++] = s;
    in->args[in->n_args] = NULL;
}

static void kv_push(struct e2b_df_instr *in, char *k, char *v)
{
    in->kvs = grow(in->kvs, in->n_kvs, sizeof(*in->kvs));
    in->kvs[in->n_kvs++] = (struct e2b_df_kv){k, v};
}

static void kv_args(struct e2b_df_instr *in)
{
    for (size_t i = 0; i < in->n_kvs; i++)
        args_push(in, in->kvs[i].value ? xasprintf("%s=%s", in->kvs[i].key, in->kvs[i].value)
                                       : xstrdup(in->kvs[i].key));
}

static const struct e2b_df_flag *flag_find(const struct e2b_df_instr *in, const char *name)
{
    const struct e2b_df_flag *r = NULL;
    for (size_t i = 0; i < in->n_flags; i++)
        if (STREQ(in->flags[i].name, name))
            r = &in->flags[i];
    return r;
}

const char *e2b_df_flag(const struct e2b_df_instr *in, const char *name, bool *present)
{
    const struct e2b_df_flag *f = flag_find(in, name);
    if (present)
        *present = f != NULL;
    return f ? f->value : NULL;
}

/* Check and expand the --flags against the instruction's table. */
static int parse_flags(struct pstate *st, struct e2b_df_instr *in, const struct kind_spec *ks,
                       struct e2b_df_word *fw, size_t nf, enum scope sc)
{
    const char *kname = ks->name;
    for (size_t i = 0; i < nf; i++) {
        const char *w = fw[i].text + 2;
        const char *eq = strchr(w, '=');
        _cleanup_free_ char *fname = eq ? xstrndup(w, (size_t)(eq - w)) : xstrdup(w);
        const struct flag_spec *fs = NULL;
        for (const struct flag_spec *p = ks->flags; p->name; p++)
            if (STREQ(p->name, fname))
                fs = p;
        if (!fs)
            return perr(st, (ssize_t)fw[i].off, "unknown flag '--%s' for %s", fname, kname);
        if (fs->type != F_MULTI && flag_find(in, fname))
            return perr(st, (ssize_t)fw[i].off, "duplicate flag '--%s' for %s", fname, kname);
        _cleanup_free_ char *value = NULL;
        if (fs->type == F_BOOL) {
            bool b = true;
            if (eq && !parse_go_bool(eq + 1, &b))
                return perr(st, (ssize_t)fw[i].off, "%s --%s expects true or false, not '%s'", kname, fname,
                            eq + 1);
            value = eq ? xstrdup(b ? "true" : "false") : NULL;
        } else {
            if (!eq)
                return perr(st, (ssize_t)fw[i].off, "%s --%s needs a value (--%s=...)", kname, fname, fname);
            if (expand(st, fs->expand ? sc : SCOPE_NONE, eq + 1, fw[i].off, 0, &value) < 0)
                return -1;
        }
        in->flags = grow(in->flags, in->n_flags, sizeof(*in->flags));
        in->flags[in->n_flags++] = (struct e2b_df_flag){TAKE_PTR(fname), TAKE_PTR(value)};
    }
    return 0;
}

/* RUN/CMD/ENTRYPOINT/HEALTHCHECK CMD arguments: exec or shell form. */
static void exec_or_shell(struct e2b_df_instr *in, const char *rest)
{
    char **arr = NULL;
    if (e2b_df_json_array(rest, &arr) == 0) {
        in->json = true;
        in->args = arr;
        in->n_args = e2b_strv_len(arr);
    } else {
        in->args = xcalloc(1, sizeof(char *));
        if (*rest)
            args_push(in, xstrdup(rest));
    }
}

/* Docker's "k=v k2=v2" or legacy "k v" (ENV, LABEL) into raw pairs. */
static int name_values(struct pstate *st, const char *what, const char *rest, size_t rest_off,
                       struct e2b_df_word **keys, struct e2b_df_word **vals, size_t *n)
{
    struct e2b_df_word *w = NULL;
    size_t nw = 0;
    e2b_df_quoted_words(rest, st->esc, &w, &nw);
    *keys = *vals = NULL;
    *n = 0;
    if (!nw) {
        e2b_df_words_free(w, nw);
        return perr(st, -1, "%s requires at least one argument", what);
    }
    if (!strchr(w[0].text, '=')) {
        /* legacy: the first word is the key, the rest of the line the value */
        size_t i = 0;
        while (rest[i] && !isspace((unsigned char)rest[i]))
            i++;
        size_t ks = i;
        while (rest[i] && isspace((unsigned char)rest[i]))
            i++;
        if (!rest[i]) {
            e2b_df_words_free(w, nw);
            return perr(st, (ssize_t)rest_off, "%s %.*s needs a value: %s <key>=<value>", what, (int)ks, rest,
                        what);
        }
        *keys = xcalloc(1, sizeof(**keys));
        *vals = xcalloc(1, sizeof(**vals));
        (*keys)[0] = (struct e2b_df_word){xstrndup(rest, ks), rest_off};
        (*vals)[0] = (struct e2b_df_word){xstrdup(rest + i), rest_off + i};
        *n = 1;
        e2b_df_words_free(w, nw);
        return 0;
    }
    *keys = xcalloc(nw, sizeof(**keys));
    *vals = xcalloc(nw, sizeof(**vals));
    for (size_t i = 0; i < nw; i++) {
        char *eq = strchr(w[i].text, '=');
        if (!eq) {
            int r = perr(st, (ssize_t)(rest_off + w[i].off), "%s: can't find = in '%s'; use %s <key>=<value>",
                         what, w[i].text, what);
            e2b_df_words_free(w, nw);
            e2b_df_words_free(*keys, *n);
            e2b_df_words_free(*vals, *n);
            *keys = *vals = NULL;
            return r;
        }
        (*keys)[i] = (struct e2b_df_word){xstrndup(w[i].text, (size_t)(eq - w[i].text)), rest_off + w[i].off};
        (*vals)[i] = (struct e2b_df_word){xstrdup(eq + 1), rest_off + w[i].off + (size_t)(eq - w[i].text) + 1};
        (*n)++;
    }
    e2b_df_words_free(w, nw);
    return 0;
}

/* --- RUN --mount ---------------------------------------------------------- */

static int csv_fields(const char *s, char ***ret)
{
    char **v = xcalloc(1, sizeof(char *));
    _cleanup_strbuf_ struct strbuf f = STRBUF_INIT;
    strbuf_init(&f);
    for (;;) {
        if (*s == '"') {
            s++;
            for (;;) {
                if (!*s) {
                    e2b_strv_free(v);
                    return -1;
                }
                if (*s == '"' && s[1] == '"') {
                    strbuf_addch(&f, '"');
                    s += 2;
                } else if (*s == '"') {
                    s++;
                    break;
                } else {
                    strbuf_addch(&f, *s++);
                }
            }
            if (*s && *s != ',') {
                e2b_strv_free(v);
                return -1;
            }
        } else {
            while (*s && *s != ',')
                strbuf_addch(&f, *s++);
        }
        v = e2b_strv_push(v, f.buf);
        strbuf_reset(&f);
        if (!*s)
            break;
        s++;
    }
    *ret = v;
    return 0;
}

/* Does `from` name the stage being parsed? */
static bool self_reference(struct pstate *st, const char *from)
{
    if (!st->in_stage || !st->df->n_stages)
        return false;
    const char *cur = st->df->stages[st->df->n_stages - 1].name;
    return cur && !strcasecmp(cur, from);
}

static int parse_mount(struct pstate *st, const char *spec, size_t off, enum scope sc, size_t nth,
                       struct e2b_df_mount *m)
{
    _cleanup_strv_ char **fields = NULL;
    bool ro_auto = true;
    *m = (struct e2b_df_mount){.type = E2B_DF_MOUNT_BIND, .from_stage = -1, .mode = -1, .uid = -1, .gid = -1};

    if (csv_fields(spec, &fields) < 0)
        return perr(st, (ssize_t)off, "RUN --mount: bad quoting in '%s'", spec);
    /* the type first: other keys depend on it */
    for (char **f = fields; *f; f++) {
        if (strncasecmp(*f, "type=", 5))
            continue;
        const char *t = *f + 5;
        if (!strcasecmp(t, "bind"))
            m->type = E2B_DF_MOUNT_BIND;
        else if (!strcasecmp(t, "cache"))
            m->type = E2B_DF_MOUNT_CACHE;
        else if (!strcasecmp(t, "tmpfs"))
            m->type = E2B_DF_MOUNT_TMPFS;
        else if (!strcasecmp(t, "secret"))
            m->type = E2B_DF_MOUNT_SECRET;
        else if (!strcasecmp(t, "ssh"))
            m->type = E2B_DF_MOUNT_SSH;
        else
            return perr(st, (ssize_t)off, "RUN --mount: unsupported mount type '%s' (bind, cache, tmpfs, secret or ssh)", t);
    }
    bool secretish = m->type == E2B_DF_MOUNT_SECRET || m->type == E2B_DF_MOUNT_SSH;
    for (char **f = fields; *f; f++) {
        if (!**f)
            continue;
        char *eq = strchr(*f, '=');
        _cleanup_free_ char *key = eq ? xstrndup(*f, (size_t)(eq - *f)) : xstrdup(*f);
        for (char *p = key; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (!eq) {
            if (STREQ(key, "readonly") || STREQ(key, "ro")) {
                m->readonly = true;
                ro_auto = false;
                continue;
            }
            if (STREQ(key, "readwrite") || STREQ(key, "rw")) {
                m->readonly = false;
                ro_auto = false;
                continue;
            }
            if (STREQ(key, "required") && secretish) {
                m->required = true;
                continue;
            }
            return perr(st, (ssize_t)off, "RUN --mount: '%s' must be a key=value pair", *f);
        }
        _cleanup_free_ char *value = NULL;
        if (expand(st, sc, eq + 1, off, 0, &value) < 0)
            return -1;
        bool b;
        char *end;
        if (STREQ(key, "type")) {
            continue;
        } else if (STREQ(key, "from")) {
            free(m->from);
            m->from = TAKE_PTR(value);
        } else if (STREQ(key, "source") || STREQ(key, "src")) {
            free(m->source);
            m->source = TAKE_PTR(value);
        } else if (STREQ(key, "target") || STREQ(key, "dst") || STREQ(key, "destination")) {
            free(m->target);
            m->target = TAKE_PTR(value);
        } else if (STREQ(key, "readonly") || STREQ(key, "ro") || STREQ(key, "readwrite") || STREQ(key, "rw")) {
            if (!parse_go_bool(value, &b))
                return perr(st, (ssize_t)off, "RUN --mount: %s expects true or false, not '%s'", key, value);
            m->readonly = key[0] == 'r' && (key[1] == 'o' || STREQ(key, "readonly")) ? b : !b;
            ro_auto = false;
        } else if (STREQ(key, "required") && secretish) {
            if (!parse_go_bool(value, &b))
                return perr(st, (ssize_t)off, "RUN --mount: required expects true or false, not '%s'", value);
            m->required = b;
        } else if (STREQ(key, "id") && m->type != E2B_DF_MOUNT_BIND && m->type != E2B_DF_MOUNT_TMPFS) {
            free(m->id);
            m->id = TAKE_PTR(value);
        } else if (STREQ(key, "sharing") && m->type == E2B_DF_MOUNT_CACHE) {
            if (!strcasecmp(value, "shared"))
                m->sharing = E2B_DF_SHARING_SHARED;
            else if (!strcasecmp(value, "private"))
                m->sharing = E2B_DF_SHARING_PRIVATE;
            else if (!strcasecmp(value, "locked"))
                m->sharing = E2B_DF_SHARING_LOCKED;
            else
                return perr(st, (ssize_t)off, "RUN --mount: unsupported sharing value '%s' (shared, private or locked)", value);
        } else if ((STREQ(key, "mode") || STREQ(key, "uid") || STREQ(key, "gid")) &&
                   (secretish || m->type == E2B_DF_MOUNT_CACHE)) {
            errno = 0;
            unsigned long v = strtoul(value, &end, key[0] == 'm' ? 8 : 10);
            if (!*value || *end || errno || v > UINT32_MAX || value[0] == '-' || value[0] == '+')
                return perr(st, (ssize_t)off, "RUN --mount: invalid %s '%s'", key, value);
            if (key[0] == 'm')
                m->mode = (long)v;
            else if (key[0] == 'u')
                m->uid = (long)v;
            else
                m->gid = (long)v;
        } else if (STREQ(key, "size") && m->type == E2B_DF_MOUNT_TMPFS) {
            if (!parse_size(value, &m->size))
                return perr(st, (ssize_t)off, "RUN --mount: invalid size '%s'", value);
        } else if (STREQ(key, "env") && m->type == E2B_DF_MOUNT_SECRET) {
            free(m->env);
            m->env = TAKE_PTR(value);
        } else {
            return perr(st, (ssize_t)off, "RUN --mount: unexpected key '%s' for a %s mount", key,
                        (const char *[]){"bind", "cache", "tmpfs", "secret", "ssh"}[m->type]);
        }
    }
    if (ro_auto)
        m->readonly = m->type == E2B_DF_MOUNT_BIND;
    switch (m->type) {
    case E2B_DF_MOUNT_SECRET:
        if (m->from)
            return perr(st, (ssize_t)off, "RUN --mount: a secret mount takes no from=");
        if (!m->id && m->target) {
            const char *b = strrchr(m->target, '/');
            m->id = xstrdup(b ? b + 1 : m->target);
        }
        if (!m->id || !m->id[0])
            return perr(st, (ssize_t)off, "RUN --mount: a secret mount needs id= or target=");
        if (!m->target && !m->env)
            m->target = xasprintf("/run/secrets/%s", m->id);
        break;
    case E2B_DF_MOUNT_SSH:
        if (m->from)
            return perr(st, (ssize_t)off, "RUN --mount: an ssh mount takes no from=");
        if (!m->id)
            m->id = xstrdup("default");
        if (!m->target)
            m->target = xasprintf("/run/buildkit/ssh_agent.%zu", nth);
        break;
    default:
        if (!m->target || !m->target[0])
            return perr(st, (ssize_t)off, "RUN --mount: a %s mount needs target=",
                        (const char *[]){"bind", "cache", "tmpfs"}[m->type]);
        if (m->type == E2B_DF_MOUNT_TMPFS && (m->from || m->source))
            return perr(st, (ssize_t)off, "RUN --mount: a tmpfs mount takes no from= or source=");
        if (m->type == E2B_DF_MOUNT_CACHE && !m->id)
            m->id = xstrdup(m->target);
        break;
    }
    if (m->from && sc != SCOPE_NONE && self_reference(st, m->from))
        return perr(st, (ssize_t)off, "circular dependency: stage '%s' mounts itself", m->from);
    if (m->from && all_digits(m->from)) {
        long idx = strtol(m->from, NULL, 10);
        if (!st->in_stage || strlen(m->from) > 9 || idx >= (long)st->df->n_stages - 1)
            return perr(st, (ssize_t)off, "RUN --mount from=%s refers to the current or a later stage", m->from);
        m->from_stage = (int)idx;
    }
    return 0;
}

/* --- instruction parsers ---------------------------------------------------- */

struct ictx {
    struct pstate *st;
    struct e2b_df_instr *in;
    const char *rest;   /* arguments after the flags */
    size_t rest_off;    /* their offset in the instruction text */
    enum scope sc;      /* where variables come from; NONE for ONBUILD triggers */
    const struct e2b_df_word *fw; /* the flags as written, for positions */
    const struct e2b_df_logical *lg; /* heredocs; NULL for triggers */
};

static int parse_from(struct ictx *c)
{
    struct pstate *st = c->st;
    _cleanup_free_ char *lname = NULL;
    struct e2b_df_word *w = NULL;
    size_t n = 0;
    int r = -1;
    e2b_df_fields(c->rest, &w, &n);
    if (n == 0) {
        r = perr(st, -1, "FROM requires an image name");
        goto out;
    }
    if (n == 2 || n > 3 || (n == 3 && strcasecmp(w[1].text, "as"))) {
        r = perr(st, (ssize_t)(c->rest_off + w[n > 1 ? 1 : 0].off),
                 "FROM requires either one or three arguments: FROM [--platform=...] <image> [AS <name>]");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char *v = NULL;
        if (expand(st, i == 0 ? (c->sc == SCOPE_NONE ? SCOPE_NONE : SCOPE_GLOBAL) : SCOPE_NONE, w[i].text,
                   c->rest_off + w[i].off, 0, &v) < 0)
            goto out;
        args_push(c->in, v);
    }
    if (!c->in->args[0][0]) {
        r = perr(st, (ssize_t)(c->rest_off + w[0].off), "FROM: base name '%s' should not be blank", w[0].text);
        goto out;
    }
    lname = n == 3 ? lowercase(c->in->args[2]) : NULL;
    if (lname && !valid_stage_name(lname)) {
        r = perr(st, (ssize_t)(c->rest_off + w[2].off),
                 "invalid stage name '%s': it must start with a letter and contain only letters, digits, '-', '_' and '.'",
                 w[2].text);
        goto out;
    }
    r = 0;
out:
    e2b_df_words_free(w, n);
    return r;
}

static int parse_arg(struct ictx *c)
{
    struct pstate *st = c->st;
    struct e2b_df_word *w = NULL;
    size_t n = 0;
    int r = -1;
    e2b_df_quoted_words(c->rest, st->esc, &w, &n);
    if (!n) {
        r = perr(st, -1, "ARG requires at least one argument");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr(w[i].text, '=');
        if (eq == w[i].text) {
            r = perr(st, (ssize_t)(c->rest_off + w[i].off), "ARG names can not be blank");
            goto out;
        }
        char *v = NULL;
        if (eq && expand(st, c->sc, eq + 1, c->rest_off + w[i].off + (size_t)(eq - w[i].text) + 1, 0, &v) < 0)
            goto out;
        kv_push(c->in, eq ? xstrndup(w[i].text, (size_t)(eq - w[i].text)) : xstrdup(w[i].text), v);
    }
    r = 0;
out:
    e2b_df_words_free(w, n);
    return r;
}

static int parse_env_label(struct ictx *c, const char *what)
{
    struct pstate *st = c->st;
    struct e2b_df_word *k = NULL, *v = NULL;
    size_t n = 0;
    int r = -1;
    if (name_values(st, what, c->rest, c->rest_off, &k, &v, &n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char *ek = NULL, *ev = NULL;
        if (expand(st, c->sc, k[i].text, k[i].off, 0, &ek) < 0)
            goto out;
        if (expand(st, c->sc, v[i].text, v[i].off, 0, &ev) < 0) {
            free(ek);
            goto out;
        }
        kv_push(c->in, ek, ev);
        if (!ek[0]) {
            r = perr(st, (ssize_t)k[i].off, "%s names can not be blank", what);
            goto out;
        }
    }
    r = 0;
out:
    e2b_df_words_free(k, n);
    e2b_df_words_free(v, n);
    return r;
}

static int add_heredocs(struct ictx *c, bool expand_content)
{
    if (!c->lg)
        return 0;
    for (size_t i = 0; i < c->lg->n_heredocs; i++) {
        const struct e2b_df_raw_heredoc *h = &c->lg->heredocs[i];
        struct e2b_df_heredoc out = {
            .name = xstrdup(h->name),
            .expand = !h->quoted,
            .strip_tabs = h->strip_tabs,
            .fd = h->fd,
            .line = h->line,
        };
        if (expand_content && out.expand && c->sc != SCOPE_NONE) {
            if (expand(c->st, c->sc, h->content, h->off - c->st->base, E2B_DF_EXPAND_KEEP_QUOTES, &out.content) < 0) {
                free(out.name);
                return -1;
            }
        } else {
            out.content = xstrdup(h->content);
        }
        c->in->heredocs = xrealloc(c->in->heredocs, (c->in->n_heredocs + 1) * sizeof(out));
        c->in->heredocs[c->in->n_heredocs++] = out;
    }
    return 0;
}

static int parse_run(struct ictx *c)
{
    struct pstate *st = c->st;
    struct e2b_df_instr *in = c->in;
    exec_or_shell(in, c->rest);
    if (!in->json && !in->n_args)
        return perr(st, -1, "RUN requires at least one argument");
    const char *net = e2b_df_flag(in, "network", NULL);
    if (net && strcmp(net, "none") && strcmp(net, "host") && strcmp(net, "default"))
        return perr(st, -1, "RUN --network=%s: expected none, host or default", net);
    const char *sec = e2b_df_flag(in, "security", NULL);
    if (sec && strcmp(sec, "sandbox") && strcmp(sec, "insecure"))
        return perr(st, -1, "RUN --security=%s: expected sandbox or insecure", sec);
    size_t nssh = 0;
    for (size_t i = 0; i < in->n_flags; i++) {
        if (!STREQ(in->flags[i].name, "mount"))
            continue;
        struct e2b_df_mount m;
        in->mounts = xrealloc(in->mounts, (in->n_mounts + 1) * sizeof(m));
        if (parse_mount(st, in->flags[i].value, c->fw[i].off, c->sc, nssh, &m) < 0) {
            in->mounts[in->n_mounts++] = m; /* freed with the instruction */
            return -1;
        }
        if (m.type == E2B_DF_MOUNT_SSH)
            nssh++;
        in->mounts[in->n_mounts++] = m;
        /* the raw value stays in flags; mounts[] has the expanded fields */
    }
    return add_heredocs(c, false);
}

static int parse_cmd_like(struct ictx *c, const char *what)
{
    exec_or_shell(c->in, c->rest);
    if (!c->in->json && !c->in->n_args)
        return perr(c->st, -1, "%s requires at least one argument", what);
    return 0;
}

static int parse_shell(struct ictx *c)
{
    char **arr = NULL;
    if (e2b_df_json_array(c->rest, &arr) < 0)
        return perr(c->st, -1, "SHELL requires a JSON array, e.g. SHELL [\"/bin/sh\", \"-c\"]");
    c->in->json = true;
    c->in->args = arr;
    c->in->n_args = e2b_strv_len(arr);
    if (!c->in->n_args)
        return perr(c->st, -1, "SHELL requires at least one argument");
    return 0;
}

static int parse_copy(struct ictx *c, bool is_add)
{
    struct pstate *st = c->st;
    struct e2b_df_instr *in = c->in;
    const char *what = is_add ? "ADD" : "COPY";
    char **arr = NULL;
    struct e2b_df_word *w = NULL;
    size_t n = 0, heredoc_i = 0;
    int r = -1;

    if (e2b_df_json_array(c->rest, &arr) == 0) {
        in->json = true;
        n = e2b_strv_len(arr);
        w = xcalloc(n ? n : 1, sizeof(*w));
        for (size_t i = 0; i < n; i++)
            w[i] = (struct e2b_df_word){arr[i], 0};
        free(arr);
    } else {
        e2b_df_fields(c->rest, &w, &n);
    }
    if (n < 2) {
        r = perr(st, -1, n ? "%s requires at least two arguments, but only one was provided: "
                             "the destination could not be determined"
                           : "%s requires at least two arguments: a source and a destination",
                 what);
        goto out;
    }
    in->args = xcalloc(1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        struct e2b_df_raw_heredoc h;
        size_t off = in->json ? 0 : c->rest_off + w[i].off;
        if (!in->json && c->lg && heredoc_i < c->lg->n_heredocs && e2b_df_heredoc_marker(w[i].text, &h)) {
            free(h.name);
            if (i == n - 1) {
                r = perr(st, (ssize_t)off, "%s cannot have a heredoc as the destination", what);
                goto out;
            }
            heredoc_i++;
            args_push(in, xstrdup(w[i].text));
            continue;
        }
        char *v = NULL;
        if (expand(st, c->sc, w[i].text, off, 0, &v) < 0)
            goto out;
        args_push(in, v);
    }
    if (c->sc != SCOPE_NONE) {
        const char *chmod = e2b_df_flag(in, "chmod", NULL);
        if (chmod && *chmod && !e2b_dockerfile_chmod_valid(chmod)) {
            r = perr(st, -1, "%s --chmod=%s: expected an octal mode (0755) or a symbolic one (u+x)", what, chmod);
            goto out;
        }
        const char *sum = e2b_df_flag(in, "checksum", NULL);
        if (sum && !valid_digest(sum)) {
            r = perr(st, -1, "ADD --checksum=%s: expected sha256:<64 hex digits> (or sha384, sha512)", sum);
            goto out;
        }
    }
    const char *from = e2b_df_flag(in, "from", NULL);
    if (from && !from[0]) {
        r = perr(st, -1, "%s --from needs a stage name, index or image", what);
        goto out;
    }
    if (from && c->sc != SCOPE_NONE && self_reference(st, from)) {
        r = perr(st, -1, "circular dependency: stage '%s' copies from itself", from);
        goto out;
    }
    if (from && all_digits(from) && c->sc != SCOPE_NONE) {
        long idx = strtol(from, NULL, 10);
        if (idx >= (long)st->df->n_stages - 1 || strlen(from) > 9) {
            r = perr(st, -1, "%s --from=%s refers to the current or a later stage", what, from);
            goto out;
        }
        in->from_stage = (int)idx;
    }
    r = add_heredocs(c, true);
out:
    e2b_df_words_free(w, n);
    return r;
}

static int parse_health_duration(struct ictx *c, const char *flag, long long *ret)
{
    const char *v = e2b_df_flag(c->in, flag, NULL);
    long long ns;
    *ret = 0;
    if (!v || !*v)
        return 0;
    if (e2b_df_parse_duration(v, &ns) < 0)
        return perr(c->st, -1, "HEALTHCHECK --%s=%s: not a duration (30s, 1m30s, 500ms)", flag, v);
    if (ns < 0)
        return perr(c->st, -1, "HEALTHCHECK --%s=%s: cannot be negative", flag, v);
    if (ns > 0 && ns < 1000000)
        return perr(c->st, -1, "HEALTHCHECK --%s=%s: cannot be less than 1ms", flag, v);
    *ret = ns;
    return 0;
}

static int parse_healthcheck(struct ictx *c)
{
    struct pstate *st = c->st;
    struct e2b_df_instr *in = c->in;
    struct e2b_df_healthcheck *h = in->health = xcalloc(1, sizeof(*h));
    const char *s = c->rest;
    size_t i = 0;
    while (s[i] && !isspace((unsigned char)s[i]))
        i++;
    if (!i)
        return perr(st, -1, "HEALTHCHECK requires NONE or CMD <command>");
    if (i == 4 && !strncasecmp(s, "NONE", 4)) {
        if (s[i])
            return perr(st, (ssize_t)(c->rest_off + i), "HEALTHCHECK NONE takes no arguments");
        h->none = true;
        h->test = e2b_strv_push(NULL, "NONE");
        in->args = e2b_strv_push(NULL, "NONE");
        in->n_args = 1;
        return 0;
    }
    if (i != 3 || strncasecmp(s, "CMD", 3))
        return perr(st, (ssize_t)c->rest_off, "unknown type '%.*s' in HEALTHCHECK (try CMD)", (int)i, s);
    while (s[i] && isspace((unsigned char)s[i]))
        i++;
    exec_or_shell(in, s + i);
    if (!in->json && !in->n_args)
        return perr(st, -1, "missing command after HEALTHCHECK CMD");
    if (in->json) {
        h->test = e2b_strv_push(NULL, "CMD");
        for (size_t k = 0; k < in->n_args; k++)
            h->test = e2b_strv_push(h->test, in->args[k]);
    } else {
        h->test = e2b_strv_push(e2b_strv_push(NULL, "CMD-SHELL"), in->args[0]);
    }
    if (parse_health_duration(c, "interval", &h->interval_ns) < 0 ||
        parse_health_duration(c, "timeout", &h->timeout_ns) < 0 ||
        parse_health_duration(c, "start-period", &h->start_period_ns) < 0 ||
        parse_health_duration(c, "start-interval", &h->start_interval_ns) < 0)
        return -1;
    const char *rt = e2b_df_flag(in, "retries", NULL);
    if (rt && *rt) {
        char *end;
        errno = 0;
        long v = strtol(rt, &end, 10);
        if (*end || errno || v > INT_MAX)
            return perr(st, -1, "HEALTHCHECK --retries=%s: not a number", rt);
        if (v < 0)
            return perr(st, -1, "HEALTHCHECK --retries cannot be negative (%ld)", v);
        h->retries = (int)v;
    }
    return 0;
}

static int parse_expose(struct ictx *c)
{
    struct pstate *st = c->st;
    struct e2b_df_word *w = NULL;
    size_t n = 0;
    int r = -1;
    e2b_df_fields(c->rest, &w, &n);
    if (!n) {
        r = perr(st, -1, "EXPOSE requires at least one argument");
        goto out;
    }
    c->in->args = xcalloc(1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        if (c->sc == SCOPE_NONE) {
            args_push(c->in, xstrdup(w[i].text));
            continue;
        }
        _cleanup_strv_ char **ports = NULL;
        _cleanup_error_ struct e2b_error *e = NULL;
        if (e2b_df_expand_words(w[i].text, st->esc, lookup_stage, st, &ports, &e) < 0) {
            r = perr(st, (ssize_t)(c->rest_off + w[i].off), "cannot expand '%s': %s", w[i].text, e->msg);
            goto out;
        }
        for (char **p = ports; *p; p++) {
            if (!valid_port(*p)) {
                r = perr(st, (ssize_t)(c->rest_off + w[i].off),
                         "EXPOSE: invalid port '%s' (expected 80, 80/tcp, 8000-8010/udp)", *p);
                goto out;
            }
            args_push(c->in, xstrdup(*p));
        }
    }
    r = 0;
out:
    e2b_df_words_free(w, n);
    return r;
}

static int parse_volume(struct ictx *c)
{
    struct pstate *st = c->st;
    char **arr = NULL;
    struct e2b_df_word *w = NULL;
    size_t n = 0;
    int r = -1;
    if (e2b_df_json_array(c->rest, &arr) == 0) {
        c->in->json = true;
        n = e2b_strv_len(arr);
        w = xcalloc(n ? n : 1, sizeof(*w));
        for (size_t i = 0; i < n; i++)
            w[i] = (struct e2b_df_word){arr[i], 0};
        free(arr);
    } else {
        e2b_df_fields(c->rest, &w, &n);
    }
    if (!n) {
        r = perr(st, -1, "VOLUME requires at least one argument");
        goto out;
    }
    c->in->args = xcalloc(1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        char *v = NULL;
        size_t off = c->in->json ? 0 : c->rest_off + w[i].off;
        if (expand(st, c->sc, w[i].text, off, 0, &v) < 0)
            goto out;
        args_push(c->in, v);
        if (!v[0]) {
            r = perr(st, c->in->json ? -1 : (ssize_t)off, "VOLUME specified can not be an empty string");
            goto out;
        }
    }
    r = 0;
out:
    e2b_df_words_free(w, n);
    return r;
}

/* WORKDIR USER STOPSIGNAL MAINTAINER: the rest of the line is one value. */
static int parse_single(struct ictx *c, const char *what, bool do_expand)
{
    struct pstate *st = c->st;
    char *v = NULL;
    if (!c->rest[0])
        return perr(st, -1, "%s requires exactly one argument", what);
    if (expand(st, do_expand ? c->sc : SCOPE_NONE, c->rest, c->rest_off, 0, &v) < 0)
        return -1;
    c->in->args = e2b_strv_push(NULL, v);
    c->in->n_args = 1;
    free(v);
    if (c->sc == SCOPE_NONE || !do_expand)
        return 0;
    v = c->in->args[0];
    if (!v[0])
        return perr(st, (ssize_t)c->rest_off, "%s: '%s' expands to an empty value", what, c->rest);
    if (c->in->kind == E2B_DF_STOPSIGNAL && !valid_signal(v))
        return perr(st, (ssize_t)c->rest_off, "STOPSIGNAL: invalid signal '%s'", v);
    return 0;
}

static int parse_instruction(struct pstate *st, const char *text, enum scope sc,
                             const struct e2b_df_logical *lg, struct e2b_df_instr *in);

static int parse_onbuild(struct ictx *c)
{
    struct pstate *st = c->st;
    if (!c->rest[0])
        return perr(st, -1, "ONBUILD requires at least one argument");
    c->in->args = e2b_strv_push(NULL, c->rest);
    c->in->n_args = 1;
    {
        /* refuse ONBUILD ONBUILD before recursing into it */
        size_t co, cl, nf, ro;
        struct e2b_df_word *fw = NULL;
        e2b_df_split_command(c->rest, &co, &cl, &fw, &nf, &ro);
        e2b_df_words_free(fw, nf);
        if (cl == 7 && !strncasecmp(c->rest + co, "onbuild", 7))
            return perr(st, (ssize_t)c->rest_off, "ONBUILD ONBUILD is not allowed");
    }
    struct e2b_df_instr *t = c->in->trigger = xcalloc(1, sizeof(*t));
    size_t saved = st->base;
    st->base += c->rest_off;
    int r = parse_instruction(st, c->rest, SCOPE_NONE, NULL, t);
    st->base = saved;
    if (r < 0)
        return -1;
    switch (t->kind) {
    case E2B_DF_ONBUILD:
        return perr(st, (ssize_t)c->rest_off, "ONBUILD ONBUILD is not allowed");
    case E2B_DF_FROM:
    case E2B_DF_MAINTAINER:
        return perr(st, (ssize_t)c->rest_off, "%s isn't allowed as an ONBUILD trigger", e2b_df_kind_name(t->kind));
    default:
        return 0;
    }
}

/* Parse one instruction from `text` (offsets relative to st->base in st->lg).
 * `sc` NONE: no expansion (ONBUILD triggers). */
static int parse_instruction(struct pstate *st, const char *text, enum scope sc,
                             const struct e2b_df_logical *lg, struct e2b_df_instr *in)
{
    size_t cmd_off, cmd_len, nf, rest_off;
    struct e2b_df_word *fw = NULL;
    const struct kind_spec *ks = NULL;
    _cleanup_free_ char *rest = NULL; /* before any goto: it is freed at every exit */
    int r = -1;

    e2b_df_split_command(text, &cmd_off, &cmd_len, &fw, &nf, &rest_off);
    in->name = xstrndup(text + cmd_off, cmd_len);
    in->original = xstrdup(text);
    in->line = st->lg->line;
    in->end_line = st->lg->end_line;
    in->from_stage = -1;
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
        if (!strcasecmp(kinds[i].name, in->name))
            ks = &kinds[i];
    if (!ks) {
        r = perr(st, (ssize_t)cmd_off, "unknown instruction '%s'", in->name);
        goto out;
    }
    in->kind = ks->kind;
    if (sc != SCOPE_NONE && !st->in_stage && in->kind != E2B_DF_ARG && in->kind != E2B_DF_FROM) {
        r = perr(st, (ssize_t)cmd_off, "%s before the first FROM: only ARG may come before FROM", ks->name);
        goto out;
    }
    /* FROM's --platform sees the global scope */
    if (parse_flags(st, in, ks, fw, nf, in->kind == E2B_DF_FROM && sc != SCOPE_NONE ? SCOPE_GLOBAL : sc) < 0)
        goto out;

    while (text[rest_off] && isspace((unsigned char)text[rest_off]))
        rest_off++; /* after "--" */
    rest = xstrdup(text + rest_off);
    {
        size_t l = strlen(rest);
        while (l && isspace((unsigned char)rest[l - 1]))
            rest[--l] = '\0';
    }
    struct ictx c = {.st = st, .in = in, .rest = rest, .rest_off = rest_off, .sc = sc, .fw = fw, .lg = lg};
    switch (in->kind) {
    case E2B_DF_FROM:
        r = parse_from(&c);
        break;
    case E2B_DF_ARG:
        r = parse_arg(&c);
        break;
    case E2B_DF_ENV:
        r = parse_env_label(&c, "ENV");
        break;
    case E2B_DF_LABEL:
        r = parse_env_label(&c, "LABEL");
        break;
    case E2B_DF_RUN:
        r = parse_run(&c);
        break;
    case E2B_DF_CMD:
        r = parse_cmd_like(&c, "CMD");
        break;
    case E2B_DF_ENTRYPOINT:
        r = parse_cmd_like(&c, "ENTRYPOINT");
        break;
    case E2B_DF_SHELL:
        r = parse_shell(&c);
        break;
    case E2B_DF_COPY:
        r = parse_copy(&c, false);
        break;
    case E2B_DF_ADD:
        r = parse_copy(&c, true);
        break;
    case E2B_DF_HEALTHCHECK:
        r = parse_healthcheck(&c);
        break;
    case E2B_DF_EXPOSE:
        r = parse_expose(&c);
        break;
    case E2B_DF_VOLUME:
        r = parse_volume(&c);
        break;
    case E2B_DF_WORKDIR:
        r = parse_single(&c, "WORKDIR", true);
        break;
    case E2B_DF_USER:
        r = parse_single(&c, "USER", true);
        break;
    case E2B_DF_STOPSIGNAL:
        r = parse_single(&c, "STOPSIGNAL", true);
        break;
    case E2B_DF_MAINTAINER:
        r = parse_single(&c, "MAINTAINER", false);
        break;
    case E2B_DF_ONBUILD:
        r = parse_onbuild(&c);
        break;
    }
    if (r >= 0 && !in->args)
        in->args = xcalloc(1, sizeof(char *));
    /* ARGs get their "k=v" args once their values are known (apply_arg) */
    if (r >= 0 && (in->kind == E2B_DF_ENV || in->kind == E2B_DF_LABEL || (in->kind == E2B_DF_ARG && sc == SCOPE_NONE)))
        kv_args(in);
out:
    e2b_df_words_free(fw, nf);
    return r;
}

/* --- scopes -------------------------------------------------------------------- */

static void mark_used(struct pstate *st, const char *key)
{
    ssize_t i = vars_find(&st->build_args, key);
    if (i >= 0)
        st->ba_used[i] = true;
}

/* The value an ARG gets: build arg, automatic arg, default, then (in a stage)
 * the global of the same name. */
static const char *arg_value(struct pstate *st, const char *key, const char *def, bool global)
{
    mark_used(st, key);
    ssize_t i = vars_find(&st->build_args, key);
    if (i >= 0)
        return st->build_args.v[i];
    i = vars_find(&st->autos, key);
    if (i >= 0 && !def)
        return st->autos.v[i];
    if (def)
        return def;
    if (!global) {
        i = vars_find(&st->globals, key);
        if (i >= 0)
            return st->globals.v[i];
    }
    return NULL;
}

static int apply_arg(struct pstate *st, struct e2b_df_instr *in, bool global)
{
    /* every default was expanded before any is set */
    for (size_t i = 0; i < in->n_kvs; i++) {
        const char *v = arg_value(st, in->kvs[i].key, in->kvs[i].value, global);
        _cleanup_free_ char *copy = v ? xstrdup(v) : NULL;
        vars_set(global ? &st->globals : &st->args, in->kvs[i].key, copy);
        free(in->kvs[i].value);
        in->kvs[i].value = TAKE_PTR(copy);
    }
    return 0;
}

static char **run_env(struct pstate *st)
{
    struct vars all = {0};
    for (size_t i = 0; i < st->env.n; i++)
        vars_set(&all, st->env.k[i], st->env.v[i]);
    for (size_t i = 0; i < st->args.n; i++)
        if (st->args.v[i] && !vars_has(&all, st->args.k[i]))
            vars_set(&all, st->args.k[i], st->args.v[i]);
    /* the proxy args need no ARG */
    for (size_t i = 0; i < ARRAY_SIZE(proxy_args); i++) {
        const char *v = vars_get(&st->build_args, proxy_args[i]);
        if (v && !vars_has(&all, proxy_args[i]))
            vars_set(&all, proxy_args[i], v);
    }
    char **r = vars_strv(&all);
    vars_clear(&all);
    return r;
}

static void stage_finish(struct pstate *st)
{
    if (!st->in_stage)
        return;
    struct e2b_df_stage *sg = &st->df->stages[st->df->n_stages - 1];
    sg->env = vars_strv(&st->env);
}

static int start_stage(struct pstate *st, struct e2b_df_instr *in)
{
    struct e2b_dockerfile *df = st->df;
    struct e2b_df_stage sg = {.index = df->n_stages, .base_stage = -1};
    const char *platform = e2b_df_flag(in, "platform", NULL);

    stage_finish(st);
    sg.base = xstrdup(in->args[0]);
    sg.platform = platform ? xstrdup(platform) : NULL;
    if (in->n_args == 3) {
        sg.name = lowercase(in->args[2]);
        for (size_t i = 0; i < df->n_stages; i++)
            if (df->stages[i].name && STREQ(df->stages[i].name, sg.name)) {
                int line = df->stages[i].instrs[0].line;
                free(sg.name);
                free(sg.base);
                free(sg.platform);
                return perr(st, -1, "duplicate stage name '%s' (first used on line %d)", in->args[2], line);
            }
    }
    _cleanup_free_ char *lbase = lowercase(sg.base);
    for (size_t i = 0; i < df->n_stages; i++)
        if (df->stages[i].name && STREQ(df->stages[i].name, lbase))
            sg.base_stage = (int)i;

    vars_clear(&st->env);
    vars_clear(&st->args);
    if (sg.base_stage >= 0) {
        for (char **e = df->stages[sg.base_stage].env; *e; e++)
            vars_set_kv(&st->env, *e);
    } else {
        _cleanup_strv_ char **ienv = NULL;
        if (st->ba && st->ba->image_env && strcmp(sg.base, "scratch") &&
            st->ba->image_env(st->ba->userdata, sg.base, sg.platform, &ienv, st->err) < 0) {
            free(sg.name);
            free(sg.base);
            free(sg.platform);
            return e2b_error_wrap(st->err, "%s:%d: FROM %s", st->name, in->line, in->args[0]);
        }
        for (char **e = ienv; e && *e; e++)
            vars_set_kv(&st->env, *e);
        if (!vars_has(&st->env, "PATH"))
            vars_set(&st->env, "PATH", DEFAULT_PATH);
    }
    sg.instrs = grow(NULL, 0, sizeof(*sg.instrs));
    sg.instrs[0] = *in;
    sg.n_instrs = 1;
    df->stages = grow(df->stages, df->n_stages, sizeof(sg));
    df->stages[df->n_stages++] = sg;
    st->in_stage = true;
    return 0;
}

/* "os/arch[/variant]" into the four automatic args with `prefix`. */
static void set_platform_args(struct vars *vs, const char *prefix, const char *platform)
{
    char os[64] = "", arch[64] = "", variant[64] = "";
    _cleanup_free_ char *k = NULL;
    if (!platform || !*platform)
        platform = e2b_host_platform(); /* NULL on an unknown architecture: the pull says so */
    if (platform && *platform) {
        _cleanup_free_ char *p = xstrdup(platform);
        char *a = strchr(p, '/'), *v = NULL;
        if (a) {
            *a++ = '\0';
            v = strchr(a, '/');
            if (v)
                *v++ = '\0';
        }
        snprintf(os, sizeof(os), "%s", p);
        snprintf(arch, sizeof(arch), "%s", a ? a : "");
        snprintf(variant, sizeof(variant), "%s", v ? v : "");
    }
    _cleanup_free_ char *full = variant[0] ? xasprintf("%s/%s/%s", os, arch, variant) : xasprintf("%s/%s", os, arch);
    k = xasprintf("%sPLATFORM", prefix);
    vars_set(vs, k, full);
    free(k);
    k = xasprintf("%sOS", prefix);
    vars_set(vs, k, os);
    free(k);
    k = xasprintf("%sARCH", prefix);
    vars_set(vs, k, arch);
    free(k);
    k = xasprintf("%sVARIANT", prefix);
    vars_set(vs, k, variant);
}

/* --- stages: --from names, dependencies, cycles ---------------------------- */

static int stage_by_name(const struct e2b_dockerfile *df, const char *name)
{
    _cleanup_free_ char *l = lowercase(name);
    for (size_t i = 0; i < df->n_stages; i++)
        if (df->stages[i].name && STREQ(df->stages[i].name, l))
            return (int)i;
    return -1;
}

static void add_dep(struct e2b_df_stage *sg, size_t d)
{
    for (size_t i = 0; i < sg->n_deps; i++)
        if (sg->deps[i] == d)
            return;
    sg->deps = xrealloc(sg->deps, (sg->n_deps + 1) * sizeof(size_t));
    sg->deps[sg->n_deps++] = d;
}

/* Depth-first search for a cycle, with an explicit stack (stage chains can be long). */
static int find_cycle(const struct e2b_dockerfile *df, size_t start, unsigned char *color, size_t *stack,
                      size_t *next, int *cyc)
{
    size_t sp = 0;
    stack[sp++] = start;
    color[start] = 1;
    while (sp) {
        size_t s = stack[sp - 1];
        const struct e2b_df_stage *sg = &df->stages[s];
        if (next[s] >= sg->n_deps) {
            color[s] = 2;
            sp--;
            continue;
        }
        size_t d = sg->deps[next[s]++];
        if (color[d] == 1) {
            *cyc = (int)d;
            return -1;
        }
        if (color[d] == 0) {
            color[d] = 1;
            stack[sp++] = d;
        }
    }
    return 0;
}

static int link_stages(struct pstate *st)
{
    struct e2b_dockerfile *df = st->df;
    for (size_t s = 0; s < df->n_stages; s++) {
        struct e2b_df_stage *sg = &df->stages[s];
        if (sg->base_stage >= 0)
            add_dep(sg, (size_t)sg->base_stage);
        for (size_t i = 1; i < sg->n_instrs; i++) {
            struct e2b_df_instr *in = &sg->instrs[i];
            if (in->kind == E2B_DF_COPY || in->kind == E2B_DF_ADD) {
                const char *from = e2b_df_flag(in, "from", NULL);
                if (from && !all_digits(from))
                    in->from_stage = stage_by_name(df, from);
                if (in->from_stage == (int)s)
                    return e2b_error_set(st->err, E2B_ERR_INVALID,
                                         "%s:%d: circular dependency: stage '%s' copies from itself", st->name,
                                         in->line, from);
                if (in->from_stage >= 0)
                    add_dep(sg, (size_t)in->from_stage);
            }
            for (size_t m = 0; m < in->n_mounts; m++) {
                struct e2b_df_mount *mt = &in->mounts[m];
                if (mt->from && !all_digits(mt->from))
                    mt->from_stage = stage_by_name(df, mt->from);
                if (mt->from_stage == (int)s)
                    return e2b_error_set(st->err, E2B_ERR_INVALID,
                                         "%s:%d: circular dependency: stage '%s' mounts itself", st->name,
                                         in->line, mt->from);
                if (mt->from_stage >= 0)
                    add_dep(sg, (size_t)mt->from_stage);
            }
        }
    }
    _cleanup_free_ unsigned char *color = xcalloc(df->n_stages + 1, 1);
    _cleanup_free_ size_t *stack = xmalloc((df->n_stages + 1) * sizeof(size_t));
    _cleanup_free_ size_t *next = xcalloc(df->n_stages + 1, sizeof(size_t));
    for (size_t s = 0; s < df->n_stages; s++) {
        int cyc = -1;
        if (!color[s] && find_cycle(df, s, color, stack, next, &cyc) < 0) {
            const struct e2b_df_stage *c = &df->stages[cyc];
            return e2b_error_set(st->err, E2B_ERR_INVALID, "%s:%d: circular dependency detected on stage '%s'",
                                 st->name, c->instrs[0].line, c->name ? c->name : c->base);
        }
    }
    return 0;
}

/* --- the parser ------------------------------------------------------------- */

static int resolve_build_args(struct pstate *st)
{
    const struct e2b_build_args *ba = st->ba;
    for (size_t i = 0; ba && i < ba->n_args; i++) {
        const char *a = ba->args[i];
        if (!a)
            continue;
        if (strchr(a, '=')) {
            if (a[0] == '=')
                return e2b_error_set(st->err, E2B_ERR_USAGE, "build arg '%s' has no name", a);
            vars_set_kv(&st->build_args, a);
        } else if (getenv(a)) {
            vars_set(&st->build_args, a, getenv(a));
        }
    }
    st->ba_used = xcalloc(st->build_args.n + 1, sizeof(bool));
    set_platform_args(&st->autos, "BUILD", ba ? ba->build_platform : NULL);
    set_platform_args(&st->autos, "TARGET", ba ? ba->target_platform : NULL);
    for (size_t i = 0; i < ARRAY_SIZE(platform_args); i++)
        mark_used(st, platform_args[i]);
    for (size_t i = 0; i < ARRAY_SIZE(proxy_args); i++)
        mark_used(st, proxy_args[i]);
    return 0;
}

static int parse_all(struct pstate *st, const struct e2b_df_lexed *lx)
{
    struct e2b_dockerfile *df = st->df;
    for (size_t i = 0; i < lx->n_lines; i++) {
        const struct e2b_df_logical *lg = &lx->lines[i];
        struct e2b_df_instr in = {0};
        st->lg = lg;
        st->base = 0;
        if (parse_instruction(st, lg->text, st->in_stage ? SCOPE_STAGE : SCOPE_GLOBAL, lg, &in) < 0) {
            instr_release(&in);
            return -1;
        }
        if (in.kind == E2B_DF_FROM) {
            if (start_stage(st, &in) < 0) {
                instr_release(&in);
                return -1;
            }
            continue;
        }
        if (!st->in_stage) { /* a global ARG */
            apply_arg(st, &in, true);
            kv_args(&in);
            df->global_args = grow(df->global_args, df->n_global_args, sizeof(in));
            df->global_args[df->n_global_args++] = in;
            continue;
        }
        switch (in.kind) {
        case E2B_DF_ARG:
            apply_arg(st, &in, false);
            kv_args(&in);
            break;
        case E2B_DF_ENV:
            for (size_t k = 0; k < in.n_kvs; k++)
                vars_set(&st->env, in.kvs[k].key, in.kvs[k].value);
            break;
        case E2B_DF_RUN:
            in.env = run_env(st);
            break;
        default:
            break;
        }
        struct e2b_df_stage *sg = &df->stages[df->n_stages - 1];
        sg->instrs = grow(sg->instrs, sg->n_instrs, sizeof(in));
        sg->instrs[sg->n_instrs++] = in;
    }
    stage_finish(st);
    return 0;
}

int e2b_dockerfile_parse(const char *name, const char *text, size_t len,
                         const struct e2b_build_args *build_args, struct e2b_dockerfile **ret,
                         struct e2b_error **err)
{
    struct e2b_df_lexed lx = {0};
    struct e2b_dockerfile *df = NULL;
    struct pstate st = {.name = name ? name : "Dockerfile", .ba = build_args, .err = err};
    int r = -1;

    *ret = NULL;
    if (e2b_df_lex(st.name, text, len, &lx, err) < 0)
        return -1;
    df = xcalloc(1, sizeof(*df));
    df->name = xstrdup(st.name);
    df->escape = lx.escape;
    df->syntax = lx.syntax ? xstrdup(lx.syntax) : NULL;
    df->check = lx.check ? xstrdup(lx.check) : NULL;
    st.df = df;
    st.esc = lx.escape;

    if (resolve_build_args(&st) < 0)
        goto out;
    if (!lx.n_lines) {
        e2b_error_set(err, E2B_ERR_INVALID, "%s: file with no instructions", st.name);
        goto out;
    }
    if (parse_all(&st, &lx) < 0)
        goto out;
    if (!df->n_stages) {
        e2b_error_set(err, E2B_ERR_INVALID, "%s: no FROM instruction: a Dockerfile needs at least one stage",
                      st.name);
        goto out;
    }
    if (link_stages(&st) < 0)
        goto out;

    df->n_globals = st.globals.n;
    df->globals = xcalloc(st.globals.n + 1, sizeof(*df->globals));
    for (size_t i = 0; i < st.globals.n; i++)
        df->globals[i] = (struct e2b_df_kv){xstrdup(st.globals.k[i]),
                                             st.globals.v[i] ? xstrdup(st.globals.v[i]) : NULL};
    df->unused_build_args = xcalloc(1, sizeof(char *));
    for (size_t i = 0; i < st.build_args.n; i++)
        if (!st.ba_used[i])
            df->unused_build_args = e2b_strv_push(df->unused_build_args, st.build_args.k[i]);
    *ret = TAKE_PTR(df);
    r = 0;
out:
    e2b_dockerfile_free(df);
    e2b_df_lexed_release(&lx);
    vars_clear(&st.build_args);
    vars_clear(&st.autos);
    vars_clear(&st.globals);
    vars_clear(&st.env);
    vars_clear(&st.args);
    free(st.ba_used);
    return r;
}

/* --- stage selection ----------------------------------------------------------- */

const struct e2b_df_stage *e2b_dockerfile_find_stage(const struct e2b_dockerfile *df, const char *name)
{
    int i = stage_by_name(df, name);
    if (i >= 0)
        return &df->stages[i];
    if (all_digits(name) && strlen(name) < 10) {
        long idx = strtol(name, NULL, 10);
        if (idx < (long)df->n_stages)
            return &df->stages[idx];
    }
    return NULL;
}

static void need(const struct e2b_dockerfile *df, size_t s, bool *needed)
{
    _cleanup_free_ size_t *work = xmalloc((df->n_stages + 1) * sizeof(size_t));
    size_t n = 0;
    needed[s] = true;
    work[n++] = s;
    while (n) {
        const struct e2b_df_stage *sg = &df->stages[work[--n]];
        for (size_t i = 0; i < sg->n_deps; i++)
            if (!needed[sg->deps[i]]) {
                needed[sg->deps[i]] = true;
                work[n++] = sg->deps[i];
            }
    }
}

int e2b_dockerfile_select(const struct e2b_dockerfile *df, const char *target, size_t *ret_stage,
                          bool **ret_needed, struct e2b_error **err)
{
    size_t t = df->n_stages - 1;
    if (target && *target) {
        const struct e2b_df_stage *sg = e2b_dockerfile_find_stage(df, target);
        if (!sg) {
            _cleanup_strbuf_ struct strbuf names = STRBUF_INIT;
            strbuf_init(&names);
            for (size_t i = 0; i < df->n_stages; i++)
                if (df->stages[i].name)
                    strbuf_addf(&names, "%s%s", names.len ? ", " : "", df->stages[i].name);
            return e2b_error_set(err, E2B_ERR_NOT_FOUND, "%s: target stage '%s' could not be found%s%s%s",
                                 df->name, target, names.len ? " (stages: " : "", names.buf,
                                 names.len ? ")" : "");
        }
        t = sg->index;
    }
    bool *needed = xcalloc(df->n_stages, sizeof(bool));
    need(df, t, needed);
    *ret_stage = t;
    if (ret_needed)
        *ret_needed = needed;
    else
        free(needed);
    return 0;
}

/* --- JSON ---------------------------------------------------------------------- */

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

json_t *e2b_dockerfile_instr_to_json(const struct e2b_df_instr *in)
{
    json_t *o = json_object();
    json_object_set_new(o, "line", json_integer(in->line));
    if (in->end_line != in->line)
        json_object_set_new(o, "end_line", json_integer(in->end_line));
    json_object_set_new(o, "instruction", json_string(e2b_df_kind_name(in->kind)));
    json_object_set_new(o, "name", json_string(in->name));
    json_t *flags = json_array();
    for (size_t i = 0; i < in->n_flags; i++)
        json_array_append_new(flags, json_pack("{s:s,s:o}", "name", in->flags[i].name, "value",
                                               in->flags[i].value ? json_string(in->flags[i].value) : json_true()));
    json_object_set_new(o, "flags", flags);
    json_object_set_new(o, "args", e2b_json_strv(in->args));
    json_object_set_new(o, "json", json_boolean(in->json));
    if (in->n_kvs) {
        json_t *kv = json_array();
        for (size_t i = 0; i < in->n_kvs; i++)
            json_array_append_new(kv, json_pack("{s:s,s:o}", "key", in->kvs[i].key, "value",
                                                str_or_null(in->kvs[i].value)));
        json_object_set_new(o, "pairs", kv);
    }
    if (in->n_heredocs) {
        json_t *hs = json_array();
        for (size_t i = 0; i < in->n_heredocs; i++) {
            const struct e2b_df_heredoc *h = &in->heredocs[i];
            json_t *ho = json_pack("{s:s,s:s,s:b,s:b,s:i}", "name", h->name, "content", h->content, "expand",
                                   h->expand, "strip_tabs", h->strip_tabs, "line", h->line);
            if (h->fd >= 0)
                json_object_set_new(ho, "fd", json_integer(h->fd));
            json_array_append_new(hs, ho);
        }
        json_object_set_new(o, "heredocs", hs);
    }
    if (in->n_mounts) {
        static const char *const types[] = {"bind", "cache", "tmpfs", "secret", "ssh"};
        static const char *const sharing[] = {"shared", "private", "locked"};
        json_t *ms = json_array();
        for (size_t i = 0; i < in->n_mounts; i++) {
            const struct e2b_df_mount *m = &in->mounts[i];
            json_t *mo = json_pack("{s:s,s:o,s:b}", "type", types[m->type], "target", str_or_null(m->target),
                                   "readonly", m->readonly);
            if (m->source)
                json_object_set_new(mo, "source", json_string(m->source));
            if (m->from)
                json_object_set_new(mo, "from", json_string(m->from));
            if (m->from_stage >= 0)
                json_object_set_new(mo, "from_stage", json_integer(m->from_stage));
            if (m->id)
                json_object_set_new(mo, "id", json_string(m->id));
            if (m->env)
                json_object_set_new(mo, "env", json_string(m->env));
            if (m->type == E2B_DF_MOUNT_CACHE)
                json_object_set_new(mo, "sharing", json_string(sharing[m->sharing]));
            if (m->type == E2B_DF_MOUNT_SECRET || m->type == E2B_DF_MOUNT_SSH)
                json_object_set_new(mo, "required", json_boolean(m->required));
            if (m->mode >= 0)
                json_object_set_new(mo, "mode", json_integer(m->mode));
            if (m->uid >= 0)
                json_object_set_new(mo, "uid", json_integer(m->uid));
            if (m->gid >= 0)
                json_object_set_new(mo, "gid", json_integer(m->gid));
            if (m->size)
                json_object_set_new(mo, "size", json_integer((json_int_t)m->size));
            json_array_append_new(ms, mo);
        }
        json_object_set_new(o, "mounts", ms);
    }
    if (in->health) {
        const struct e2b_df_healthcheck *h = in->health;
        json_object_set_new(o, "healthcheck",
                            json_pack("{s:o,s:I,s:I,s:I,s:I,s:i}", "test", e2b_json_strv(h->test),
                                      "interval_ns", (json_int_t)h->interval_ns, "timeout_ns",
                                      (json_int_t)h->timeout_ns, "start_period_ns",
                                      (json_int_t)h->start_period_ns, "start_interval_ns",
                                      (json_int_t)h->start_interval_ns, "retries", h->retries));
    }
    if (in->trigger)
        json_object_set_new(o, "trigger", e2b_dockerfile_instr_to_json(in->trigger));
    if (in->from_stage >= 0)
        json_object_set_new(o, "from_stage", json_integer(in->from_stage));
    if (in->env)
        json_object_set_new(o, "env", e2b_json_strv(in->env));
    json_object_set_new(o, "original", json_string(in->original));
    return o;
}

json_t *e2b_dockerfile_to_json(const struct e2b_dockerfile *df, const bool *needed, size_t target)
{
    json_t *o = json_object();
    json_object_set_new(o, "file", json_string(df->name));
    json_object_set_new(o, "escape", json_stringn(&df->escape, 1));
    json_object_set_new(o, "syntax", str_or_null(df->syntax));
    if (df->check)
        json_object_set_new(o, "check", json_string(df->check));
    json_t *ga = json_array();
    for (size_t i = 0; i < df->n_globals; i++)
        json_array_append_new(ga, json_pack("{s:s,s:o}", "key", df->globals[i].key, "value",
                                            str_or_null(df->globals[i].value)));
    json_object_set_new(o, "global_args", ga);
    json_t *gi = json_array();
    for (size_t i = 0; i < df->n_global_args; i++)
        json_array_append_new(gi, e2b_dockerfile_instr_to_json(&df->global_args[i]));
    json_object_set_new(o, "global_instructions", gi);
    if (needed && target < df->n_stages)
        json_object_set_new(o, "target", json_integer((json_int_t)target));
    json_t *stages = json_array();
    for (size_t s = 0; s < df->n_stages; s++) {
        const struct e2b_df_stage *sg = &df->stages[s];
        json_t *so = json_pack("{s:I,s:o,s:s,s:o}", "index", (json_int_t)sg->index, "name", str_or_null(sg->name),
                               "base", sg->base, "platform", str_or_null(sg->platform));
        if (sg->base_stage >= 0)
            json_object_set_new(so, "base_stage", json_integer(sg->base_stage));
        if (needed)
            json_object_set_new(so, "needed", json_boolean(needed[s]));
        json_t *deps = json_array();
        for (size_t i = 0; i < sg->n_deps; i++)
            json_array_append_new(deps, json_integer((json_int_t)sg->deps[i]));
        json_object_set_new(so, "depends_on", deps);
        json_t *ins = json_array();
        for (size_t i = 0; i < sg->n_instrs; i++)
            json_array_append_new(ins, e2b_dockerfile_instr_to_json(&sg->instrs[i]));
        json_object_set_new(so, "instructions", ins);
        json_object_set_new(so, "env", e2b_json_strv(sg->env));
        json_array_append_new(stages, so);
    }
    json_object_set_new(o, "stages", stages);
    json_object_set_new(o, "unused_build_args", e2b_json_strv(df->unused_build_args));
    return o;
}
