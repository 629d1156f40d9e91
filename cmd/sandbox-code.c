/* sandbox-code.c - `sandbox run-code`: code in a sandbox's code interpreter
 * (a Jupyter kernel per context, E2B's protocol on port 49999), its output
 * streamed, its results printed or saved; a REPL on a terminal. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "code-client.h"
#include "envd-crypto.h"
#include "fsutil.h"
#include "sandbox-cli.h"
#include "strbuf.h"
#include "usage.h"

const struct e2b_opt opts_sandbox_run_code[] = {
    E2B_OPT_STRING('l', "language", "LANG",
                   "python (default), js, bash, r ...: the language's default context"),
    E2B_OPT_STRING('c', "context", "ID",
                   "run in this context (see `--context list`, or `new`: a new one)"),
    E2B_OPT_LIST('e', "env", "KEY=VALUE", "environment variable for this run (repeatable)"),
    E2B_OPT_STRING(0, "save-results", "DIR", "write images and documents of results to DIR"),
    E2B_OPT_INT(0, "timeout", "SECONDS",
                "give up (and interrupt the code) after this long (default: none)"),
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "sandbox ID", E2B_COMPLETE_SANDBOX),
    E2B_OPT_ARG("code", 0, "the code; '-' or none: standard input (a REPL on a terminal)"),
    E2B_OPT_END,
};

struct run {
    struct e2b_ctx *ctx;
    const char *save_dir;
    int saved;
    json_t *results; /* --json: the execution as the SDK gives it */
    json_t *stdout_l, *stderr_l;
    json_t *error;
    long long count;
    bool failed_write;
};

static const struct {
    const char *key, *ext;
    bool b64;
} files[] = { { "png", "png", true },  { "jpeg", "jpg", true },   { "pdf", "pdf", true },
              { "svg", "svg", false }, { "html", "html", false }, { "latex", "tex", false } };

static void save_result(struct run *r, json_t *line)
{
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        const char *v = e2b_json_str(line, files[i].key);
        if (!v)
            continue;
        _cleanup_free_ char *path =
            xasprintf("%s/result-%d.%s", r->save_dir, ++r->saved, files[i].ext);
        _cleanup_free_ uint8_t *dec = NULL;
        ssize_t n = (ssize_t)strlen(v);
        const void *data = v;
        if (files[i].b64) {
            _cleanup_strbuf_ struct strbuf clean = STRBUF_INIT; /* Jupyter wraps base64 lines */
            for (const char *p = v; *p; p++)
                if (*p != '\n' && *p != '\r' && *p != ' ')
                    strbuf_addch(&clean, *p);
            n = e2b_base64_decode(clean.buf, clean.len, &dec);
            if (n < 0) {
                fprintf(stderr, "e2b: the %s of a result is not base64\n", files[i].key);
                continue;
            }
            data = dec;
        }
        _cleanup_error_ struct e2b_error *err = NULL;
        if (e2b_write_file_atomic(path, data, (size_t)n, 0644, &err) < 0) {
            e2b_fail(err);
            r->failed_write = true;
            continue;
        }
        if (!r->ctx->quiet)
            fprintf(stderr, "saved %s\n", path);
    }
}

static int on_line(json_t *line, void *ud)
{
    struct run *r = ud;
    const char *type = e2b_json_str(line, "type");
    if (!type)
        return 0;
    if (STREQ(type, "stdout") || STREQ(type, "stderr")) {
        const char *t = e2b_json_str(line, "text") ?: "";
        if (r->results) {
            json_array_append_new(STREQ(type, "stdout") ? r->stdout_l : r->stderr_l,
                                  json_string(t));
        } else {
            FILE *f = STREQ(type, "stdout") ? stdout : stderr;
            fputs(t, f);
            fflush(f);
        }
    } else if (STREQ(type, "result")) {
        if (r->save_dir)
            save_result(r, line);
        if (r->results) {
            json_t *res = json_deep_copy(line);
            json_object_del(res, "type");
            json_object_set(res, "isMainResult",
                            json_object_get(line, "is_main_result") ?: json_false());
            json_object_del(res, "is_main_result");
            json_array_append_new(r->results, res);
        } else {
            const char *t = e2b_json_str(line, "text");
            bool main = e2b_json_bool(line, "is_main_result", false);
            if (t && (main || !e2b_json_str(line, "png"))) {
                printf("%s\n", t);
            } else if (!t || !main) {
                _cleanup_strbuf_ struct strbuf f = STRBUF_INIT;
                const char *k;
                json_t *v;
                json_object_foreach(line, k, v)
                    if (!STREQ(k, "type") && !STREQ(k, "is_main_result") && !STREQ(k, "extra") &&
                        !STREQ(k, "text"))
                        strbuf_addf(&f, "%s%s", f.len ? ", " : "", k);
                printf("<result: %s%s>\n", f.buf,
                       r->save_dir ? "" : " (--save-results DIR saves them)");
            }
            fflush(stdout);
        }
    } else if (STREQ(type, "error")) {
        json_decref(r->error);
        r->error =
            json_pack("{s:O,s:O,s:O}", "name", json_object_get(line, "name") ?: json_string(""),
                      "value", json_object_get(line, "value") ?: json_string(""), "traceback",
                      json_object_get(line, "traceback") ?: json_string(""));
        if (!r->results) {
            const char *tb = e2b_json_str(line, "traceback");
            if (tb && *tb)
                fprintf(stderr, "%s\n", tb);
            else
                fprintf(stderr, "%s: %s\n", e2b_json_str(line, "name") ?: "Error",
                        e2b_json_str(line, "value") ?: "");
        }
    } else if (STREQ(type, "number_of_executions")) {
        r->count = e2b_json_int(line, "execution_count", 0);
    }
    return 0;
}

static int execute(struct e2b_ctx *ctx, const struct e2b_code_target *t, const char *code,
                   const char *context, const char *language, const json_t *envs, long timeout_ms,
                   const char *save_dir)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *req = json_pack("{s:s}", "code", code);
    if (context)
        json_object_set_new(req, "context_id", json_string(context));
    if (language)
        json_object_set_new(req, "language", json_string(language));
    if (envs)
        json_object_set(req, "env_vars", (json_t *)envs);
    struct run r = { .ctx = ctx, .save_dir = save_dir };
    if (ctx->json) {
        r.results = json_array();
        r.stdout_l = json_array();
        r.stderr_l = json_array();
    }
    int rc = e2b_code_execute(t, req, timeout_ms, on_line, &r, &err);
    json_decref(req);
    if (rc < 0) {
        if (err->code == E2B_ERR_TIMEOUT)
            e2b_error_wrap(&err, "no answer within --timeout");
        e2b_fail(err);
    } else if (ctx->json) {
        json_t *j = json_pack("{s:O,s:{s:O,s:O},s:O,s:I}", "results", r.results, "logs", "stdout",
                              r.stdout_l, "stderr", r.stderr_l, "error", r.error ?: json_null(),
                              "executionCount", (json_int_t)r.count);
        _cleanup_free_ char *s = e2b_json_dump(j, JSON_INDENT(2));
        json_decref(j);
        puts(s);
    }
    bool failed = r.error != NULL || r.failed_write;
    json_decref(r.results);
    json_decref(r.stdout_l);
    json_decref(r.stderr_l);
    json_decref(r.error);
    return rc < 0 ? (err && err->code == E2B_ERR_TIMEOUT ? 124 : 125) : failed ? 1 : 0;
}

/* Does the REPL wait for more lines? A line ending in ':' or '\' opens a
 * block, closed by an empty line; open brackets wait for their close. */
static bool needs_more(const struct strbuf *sb, bool last_empty)
{
    int depth = 0;
    char q = 0;
    for (size_t i = 0; i < sb->len; i++) {
        char c = sb->buf[i];
        if (q) {
            if (c == '\\')
                i++;
            else if (c == q)
                q = 0;
        } else if (c == '"' || c == '\'' || c == '`') {
            q = c;
        } else if (c == '#' && (i == 0 || sb->buf[i - 1] != '$')) {
            while (i < sb->len && sb->buf[i] != '\n')
                i++;
        } else if (c == '(' || c == '[' || c == '{') {
            depth++;
        } else if (c == ')' || c == ']' || c == '}') {
            depth--;
        }
    }
    if (depth > 0 || q)
        return true;
    size_t n = sb->len;
    while (n && (sb->buf[n - 1] == '\n' || sb->buf[n - 1] == ' '))
        n--;
    bool block = memchr(sb->buf, '\n', n) != NULL; /* several lines: a block until an empty line */
    if (n && (sb->buf[n - 1] == ':' || sb->buf[n - 1] == '\\'))
        return true;
    return block && !last_empty;
}

static int repl(struct e2b_ctx *ctx, const struct e2b_code_target *t, const char *context,
                const char *language, const json_t *envs, long timeout_ms, const char *save_dir)
{
    if (!ctx->quiet)
        fprintf(stderr,
                "%s in the sandbox's code interpreter; an empty line ends a block, Ctrl-D quits\n",
                language  ? language
                : context ? "code"
                          : "python");
    _cleanup_strbuf_ struct strbuf cell = STRBUF_INIT;
    char *line = NULL;
    size_t cap = 0;
    int last = 0;
    for (;;) {
        fputs(cell.len ? "... " : ">>> ", stderr);
        fflush(stderr);
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            fputc('\n', stderr);
            if (!cell.len)
                break;
        } else {
            strbuf_add(&cell, line, (size_t)n);
            bool empty = n <= 1;
            if (cell.len == (size_t)n && empty) {
                strbuf_reset(&cell);
                continue;
            }
            if (needs_more(&cell, empty))
                continue;
        }
        last = execute(ctx, t, cell.buf, context, language, envs, timeout_ms, save_dir);
        strbuf_reset(&cell);
        if (n < 0)
            break;
    }
    free(line);
    return last == 125 ? 125 : 0;
}

struct local_port {
    struct e2b_backend *b;
    const char *id;
};

static int connect_local(void *ud)
{
    struct local_port *lp = ud;
    _cleanup_error_ struct e2b_error *err = NULL;
    int fd = -1;
    if (lp->b->ops->edge.port_connect(lp->b, lp->id, E2B_CODE_PORT, &fd, &err) < 0) {
        e2b_fail(err);
        return -1;
    }
    return fd;
}

int cmd_sandbox_run_code(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *env = NULL;
    int usage = e2b_cli_parse_kv(e2b_args_list(args, "env", NULL), "--env", &env);
    if (usage)
        return usage;
    const char *language = e2b_args_str(args, "language"), *context = e2b_args_str(args, "context");
    if (language && context)
        return e2b_usage_error(
            "sandbox run-code",
            "--language and --context go one at a time (a context has its language)");
    long long timeout = e2b_args_int(args, "timeout", 0);
    if (timeout < 0)
        return e2b_usage_error("sandbox run-code", "--timeout cannot be negative");
    const char *save_dir = e2b_args_str(args, "save-results");
    if (save_dir) {
        _cleanup_error_ struct e2b_error *err = NULL;
        if (e2b_mkdir_p(save_dir, 0755, &err) < 0)
            return e2b_fail(err);
    }
    struct e2b_envd_endpoint ep;
    if (e2b_cli_envd_endpoint(ctx, args, &b, &ep) < 0)
        return 125;
    const char *id = e2b_args_str(args, "sandbox");
    struct e2b_code_target t;
    struct local_port lp = { .b = b, .id = id };
    if (b->ops->edge.port_connect && e2b_str_has_prefix(ep.base, "unix:")) {
        memset(&t, 0, sizeof(t));
        t.base = xasprintf("http://localhost:%d", E2B_CODE_PORT);
        t.access_token = ep.access_token ? xstrdup(ep.access_token) : NULL;
        t.connect = connect_local;
        t.connect_ud = &lp;
    } else {
        e2b_code_target_from_envd(&ep, &t);
    }
    e2b_envd_endpoint_release(&ep);
    int rc = 0;
    _cleanup_error_ struct e2b_error *err = NULL;
    if (context && STREQ(context, "list")) {
        json_t *list = NULL;
        if (e2b_code_call(&t, "GET", "/contexts", NULL, &list, &err) < 0) {
            rc = e2b_fail(err);
        } else if (ctx->json) {
            _cleanup_free_ char *s = e2b_json_dump(list, JSON_INDENT(2));
            puts(s);
        } else {
            size_t i;
            json_t *c;
            json_array_foreach(list, i, c)
                printf("%s  %-10s  %s\n", e2b_json_str(c, "id") ?: "",
                       e2b_json_str(c, "language") ?: "", e2b_json_str(c, "cwd") ?: "");
        }
        json_decref(list);
        e2b_code_target_release(&t);
        return rc;
    }
    _cleanup_free_ char *new_ctx = NULL;
    if (context && STREQ(context, "new")) {
        json_t *c = NULL;
        if (e2b_code_call(&t, "POST", "/contexts", json_object(), &c, &err) <
            0) { /* python, /home/user */
            e2b_code_target_release(&t);
            return e2b_fail(err);
        }
        new_ctx = xstrdup(e2b_json_str(c, "id") ?: "");
        json_decref(c);
        if (!ctx->quiet)
            fprintf(stderr, "context %s\n", new_ctx);
        context = new_ctx;
    }
    const char *code = e2b_args_str(args, "code");
    if ((!code || STREQ(code, "-")) && isatty(STDIN_FILENO)) {
        rc = repl(ctx, &t, context, language, env, timeout * 1000, save_dir);
    } else if (!code || STREQ(code, "-")) {
        _cleanup_free_ char *in = NULL;
        size_t len = 0;
        if (e2b_read_fd(STDIN_FILENO, "standard input", 64u << 20, &in, &len, &err) < 0)
            rc = e2b_fail(err);
        else
            rc = execute(ctx, &t, in, context, language, env, timeout * 1000, save_dir);
    } else {
        rc = execute(ctx, &t, code, context, language, env, timeout * 1000, save_dir);
    }
    e2b_code_target_release(&t);
    return rc;
}
