/* envd-ci.c - see envd-ci.h. Facts of the protocol: shared/reference/e2b-protocol.md section 6. */
#include "envd-ci.h"
#include "envd-http.h"
#include "envd-jupyter.h"
#include "http1.h"
#include "json.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#define MAX_BODY         (16u * 1024 * 1024)
#define KEEPALIVE_S      5
#define ENVD_TIMEOUT_S   5
#define MAX_QUICK_DEATHS 5 /* a kernel dying this often before it is ready: the context is broken */

struct ctx;

struct exec {
    struct exec *next;
    struct ctx *c;
    struct e2b_http_req *req; /* NULL once the client is gone */
    char *code;
    json_t *env_vars;    /* this request's, or NULL */
    json_t *global_envs; /* envd's at the request, or NULL */
    char *msg_id;        /* of the code's execute_request */
    bool got_idle, got_reply, errored, interrupted;
    struct event *keepalive;
};

struct ctx {
    struct ctx *next;
    char *id, *language, *cwd;
    struct e2b_kernelspec *ks;
    struct e2b_kernel *k;
    bool ready, restarting, deleting, broken;
    int quick_deaths;
    json_t *applied_envs; /* the global envs last set in the kernel */
    struct exec *run, *queue;
    struct waiter *waiters; /* POST /contexts and restarts, answered once ready */
    char *last_error;
};

struct waiter {
    struct waiter *next;
    struct e2b_http_req *req; /* NULL once gone */
    bool created;             /* answer with the context (else null) */
};

static struct {
    struct event_base *base;
    struct e2b_http_server *http;
    struct ctx *ctxs;
    struct ctx *defaults[8]; /* the default context per language */
    char *default_langs[8];
    size_t ndefaults;
    char *cwd;
    char *envd; /* "http://127.0.0.1:49983" or "unix:/path" */
    bool verbose;
    int starting; /* default contexts still starting */
    bool envd_missing_logged;
} ci;

/* ---- languages ---- */

static const char *kernel_name_of(const char *language, char **normalised)
{
    _cleanup_free_ char *l = NULL;
    if (!language || !*language) {
        l = xstrdup("python");
    } else {
        while (*language == ' ' || *language == '\t')
            language++;
        l = xstrdup(language);
        size_t n = strlen(l);
        while (n && (l[n - 1] == ' ' || l[n - 1] == '\t'))
            l[--n] = '\0';
        for (char *p = l; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
    if (!*l)
        return NULL;
    if (STREQ(l, "js")) {
        free(l);
        l = xstrdup("javascript");
    } else if (STREQ(l, "ts")) {
        free(l);
        l = xstrdup("typescript");
    }
    static const char *const map[][2] = { { "python", "python3" },
                                          { "javascript", "javascript" },
                                          { "typescript", "javascript" },
                                          { "bash", "bash" },
                                          { "r", "ir" },
                                          { "java", "java" } };
    const char *k = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(map) && !k; i++)
        if (STREQ(map[i][0], l))
            k = map[i][1];
    *normalised = TAKE_PTR(l);
    return k ? k : *normalised;
}

/* Code that sets (value non-NULL) or removes an environment variable in a
 * kernel of this language; NULL when the language has no way. */
static void env_code(struct strbuf *sb, const char *lang, const char *key, const char *value)
{
    _cleanup_free_ char *k = NULL, *v = NULL;
    json_t *jk = json_string(key), *jv = value ? json_string(value) : NULL;
    k = json_dumps(jk, JSON_ENCODE_ANY);
    v = jv ? json_dumps(jv, JSON_ENCODE_ANY) : NULL;
    json_decref(jk);
    json_decref(jv);
    if (!k || (value && !v))
        return;
    if (STREQ(lang, "python")) {
        if (value)
            strbuf_addf(sb, "__import__('os').environ[%s] = %s\n", k, v);
        else
            strbuf_addf(sb, "__import__('os').environ.pop(%s, None)\n", k);
    } else if (STREQ(lang, "javascript") || STREQ(lang, "typescript")) {
        if (value)
            strbuf_addf(sb, "process.env[%s] = %s;\n", k, v);
        else
            strbuf_addf(sb, "delete process.env[%s];\n", k);
    } else if (STREQ(lang, "r")) {
        if (value)
            strbuf_addf(sb, "do.call(Sys.setenv, setNames(list(%s), %s))\n", v, k);
        else
            strbuf_addf(sb, "Sys.unsetenv(%s)\n", k);
    } else if (STREQ(lang, "bash")) {
        bool name = *key && !(*key >= '0' && *key <= '9');
        for (const char *p = key; *p; p++)
            name = name && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                            (*p >= '0' && *p <= '9') || *p == '_');
        if (!name)
            return;
        if (value) {
            strbuf_addf(sb, "export %s=", key);
            strbuf_add_shell_quoted(sb, value);
            strbuf_addch(sb, '\n');
        } else {
            strbuf_addf(sb, "unset %s\n", key);
        }
    } else if (STREQ(lang, "java")) {
        if (value)
            strbuf_addf(sb, "System.setProperty(%s, %s);\n", k, v);
        else
            strbuf_addf(sb, "System.clearProperty(%s);\n", k);
    }
}

/* ---- replies ---- */

static void reply_text(struct e2b_http_req *req, int status, const char *fmt, ...) _printf_(3, 4);
static void reply_text(struct e2b_http_req *req, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *s = xvasprintf(fmt, ap);
    va_end(ap);
    if (ci.verbose)
        fprintf(stderr, "code-interpreter: %d %s\n", status, s);
    e2b_http_reply(req, status, "text/plain; charset=utf-8", s, strlen(s));
}

static void reply_json(struct e2b_http_req *req, int status, json_t *j)
{
    _cleanup_free_ char *s = e2b_json_dump(j, JSON_COMPACT);
    json_decref(j);
    e2b_http_reply(req, status, "application/json", s, strlen(s));
}

/* A request body FastAPI would refuse: 422 with its {"detail": [...]} shape. */
static void reply_invalid(struct e2b_http_req *req, const char *type, json_t *loc, const char *msg)
{
    if (ci.verbose)
        fprintf(stderr, "code-interpreter: 422 %s\n", msg);
    reply_json(req, 422,
               json_pack("{s:[{s:s,s:o,s:s}]}", "detail", "type", type, "loc", loc, "msg", msg));
}

static json_t *ctx_json(const struct ctx *c)
{
    return json_pack("{s:s,s:s,s:s}", "id", c->id, "language", c->language, "cwd", c->cwd);
}

/* ---- executions ---- */

static void exec_line(struct exec *x, json_t *line)
{
    if (x->req) {
        _cleanup_free_ char *s = e2b_json_dump(line, JSON_COMPACT);
        size_t n = strlen(s);
        s = xrealloc(s, n + 2);
        s[n] = '\n';
        e2b_http_reply_chunk(x->req, s, n + 1);
    }
    json_decref(line);
}

static void exec_error(struct exec *x, const char *name, const char *value, const char *traceback)
{
    if (x->errored)
        return;
    x->errored = true;
    exec_line(x, json_pack("{s:s,s:s,s:s,s:s}", "type", "error", "name", name ? name : "", "value",
                           value ? value : "", "traceback", traceback ? traceback : ""));
}

static void exec_free(struct exec *x)
{
    if (x->keepalive)
        event_free(x->keepalive);
    free(x->code);
    free(x->msg_id);
    json_decref(x->env_vars);
    json_decref(x->global_envs);
    free(x);
}

/* End the stream (if its client is still there) and free x. */
static void exec_end(struct exec *x)
{
    if (x->req) {
        e2b_http_set_close_cb(x->req, NULL, NULL);
        e2b_http_reply_chunk(x->req, "{\"type\":\"end_of_execution\"}\n", 28);
        e2b_http_reply_end(x->req);
        x->req = NULL;
    }
    exec_free(x);
}

static void exec_gone(struct e2b_http_req *req, void *arg);

static void keepalive_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct exec *x = arg;
    /* a write to a client that left is how a half-open connection shows */
    exec_line(x, json_pack("{s:s}", "type", "keepalive"));
    struct timeval tv = { KEEPALIVE_S, 0 };
    event_add(x->keepalive, &tv);
}

static void ctx_next(struct ctx *c);

static void run_silent(struct ctx *c, const char *code)
{
    if (*code)
        e2b_kernel_execute(c->k, code, true, false);
}

static void exec_start(struct ctx *c, struct exec *x)
{
    c->run = x;
    /* the sandbox's environment (when envd's changed since), then this request's */
    if (x->global_envs && !json_equal(x->global_envs, c->applied_envs)) {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        const char *k;
        json_t *v;
        json_object_foreach(c->applied_envs, k, v)
            if (!json_object_get(x->global_envs, k))
                env_code(&sb, c->language, k, NULL);
        json_object_foreach(x->global_envs, k, v)
            if (json_is_string(v))
                env_code(&sb, c->language, k, json_string_value(v));
        run_silent(c, sb.buf);
        json_decref(c->applied_envs);
        c->applied_envs = json_incref(x->global_envs);
    }
    if (x->env_vars && json_object_size(x->env_vars)) {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        const char *k;
        json_t *v;
        json_object_foreach(x->env_vars, k, v)
            env_code(&sb, c->language, k, json_string_value(v));
        run_silent(c, sb.buf);
    }
    x->msg_id = xstrdup(e2b_kernel_execute(c->k, x->code, false, true));
    if (ci.verbose)
        fprintf(stderr, "code-interpreter: execute %s in %s\n", x->msg_id, c->id);
}

/* The running execution is complete: undo its env_vars, end it, go on. */
static void exec_done(struct ctx *c)
{
    struct exec *x = c->run;
    c->run = NULL;
    if (x->env_vars && json_object_size(x->env_vars) && c->k && !x->interrupted) {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        const char *k;
        json_t *v;
        json_object_foreach(x->env_vars, k, v) {
            json_t *g = c->applied_envs ? json_object_get(c->applied_envs, k) : NULL;
            env_code(&sb, c->language, k, json_is_string(g) ? json_string_value(g) : NULL);
        }
        run_silent(c, sb.buf);
    }
    exec_end(x);
    ctx_next(c);
}

static void ctx_next(struct ctx *c)
{
    if (c->run || !c->ready || !c->queue)
        return;
    struct exec *x = c->queue;
    c->queue = x->next;
    x->next = NULL;
    exec_start(c, x);
}

static void exec_gone(struct e2b_http_req *req, void *arg)
{
    (void)req;
    struct exec *x = arg;
    x->req = NULL;
    struct ctx *c = x->c;
    if (ci.verbose)
        fprintf(stderr, "code-interpreter: client of %s gone (%s)\n",
                x->msg_id ? x->msg_id : "a waiting execution", c->run == x ? "running" : "waiting");
    if (c->run == x) {
        /* as E2B's server does: the kernel must not go on for nobody */
        if (!x->interrupted && c->k) {
            x->interrupted = true;
            if (ci.verbose)
                fprintf(stderr, "code-interpreter: client gone, interrupting %s\n", c->id);
            e2b_kernel_interrupt(c->k);
        }
        return;
    }
    for (struct exec **pp = &c->queue; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            exec_free(x);
            return;
        }
}

/* End every execution of c (running and waiting) with an error line. */
static void ctx_fail_all(struct ctx *c, const char *name, const char *value)
{
    if (c->run) {
        exec_error(c->run, name, value, "");
        exec_end(c->run);
        c->run = NULL;
    }
    while (c->queue) {
        struct exec *x = c->queue;
        c->queue = x->next;
        exec_error(x, name, value, "");
        exec_end(x);
    }
}

/* A result line from a display_data or execute_result bundle. */
static json_t *result_line(json_t *content, bool main)
{
    static const char *const fmt[][2] = {
        { "text/plain", "text" },        { "text/html", "html" },
        { "text/markdown", "markdown" }, { "image/svg+xml", "svg" },
        { "image/png", "png" },          { "image/jpeg", "jpeg" },
        { "application/pdf", "pdf" },    { "text/latex", "latex" },
        { "application/json", "json" },  { "application/javascript", "javascript" },
        { "e2b/data", "data" },          { "e2b/chart", "chart" },
    };
    json_t *line = json_pack("{s:s}", "type", "result");
    json_t *data = json_object_get(content, "data");
    json_t *extra = json_object();
    const char *mime;
    json_t *v;
    json_object_foreach(data, mime, v) {
        const char *key = NULL;
        for (size_t i = 0; i < ARRAY_SIZE(fmt) && !key; i++)
            if (STREQ(fmt[i][0], mime))
                key = fmt[i][1];
        if (!key) {
            json_object_set(extra, mime, v);
            continue;
        }
        if (STREQ(key, "text") && json_is_string(v)) {
            /* a string's repr comes back without its quotes, as E2B's does */
            const char *s = json_string_value(v);
            size_t n = strlen(s);
            if (n >= 2 &&
                ((s[0] == '\'' && s[n - 1] == '\'') || (s[0] == '"' && s[n - 1] == '"'))) {
                json_object_set_new(line, key, json_stringn(s + 1, n - 2));
                continue;
            }
        }
        json_object_set(line, key, v);
    }
    json_object_set_new(line, "extra", extra);
    json_object_set_new(line, "is_main_result", json_boolean(main));
    return line;
}

/* E2B joins a traceback's entries; ipykernel's have no newline at their
 * end, so one goes between them (else the lines run together). */
static void add_traceback_line(struct strbuf *tb, const char *l)
{
    if (tb->len && tb->buf[tb->len - 1] != '\n')
        strbuf_addch(tb, '\n');
    strbuf_addstr(tb, l);
}

static void check_done(struct ctx *c)
{
    if (c->run && c->run->got_idle && c->run->got_reply)
        exec_done(c);
}

static void on_iopub(struct e2b_kernel *k, json_t *msg, void *arg)
{
    (void)k;
    struct ctx *c = arg;
    struct exec *x = c->run;
    const char *parent = e2b_json_str(json_object_get(msg, "parent_header"), "msg_id");
    if (!x || !x->msg_id || !parent || !STREQ(parent, x->msg_id))
        return;
    json_t *header = json_object_get(msg, "header"), *content = json_object_get(msg, "content");
    const char *type = e2b_json_str(header, "msg_type");
    if (!type)
        return;
    if (STREQ(type, "stream")) {
        const char *name = e2b_json_str(content, "name");
        json_t *line =
            json_pack("{s:s,s:O}", "type", name && STREQ(name, "stderr") ? "stderr" : "stdout",
                      "text", json_object_get(content, "text") ?: json_string(""));
        if (e2b_json_str(header, "date"))
            json_object_set(line, "timestamp", json_object_get(header, "date"));
        exec_line(x, line);
    } else if (STREQ(type, "display_data") || STREQ(type, "execute_result")) {
        exec_line(x, result_line(content, STREQ(type, "execute_result")));
    } else if (STREQ(type, "error")) {
        _cleanup_strbuf_ struct strbuf tb = STRBUF_INIT;
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(content, "traceback"), i, l)
            if (json_is_string(l))
                add_traceback_line(&tb, json_string_value(l));
        exec_error(x, e2b_json_str(content, "ename"), e2b_json_str(content, "evalue"), tb.buf);
    } else if (STREQ(type, "execute_input")) {
        exec_line(x, json_pack("{s:s,s:I}", "type", "number_of_executions", "execution_count",
                               (json_int_t)e2b_json_int(content, "execution_count", 0)));
    } else if (STREQ(type, "status")) {
        const char *st = e2b_json_str(content, "execution_state");
        if (st && STREQ(st, "idle")) {
            x->got_idle = true;
            check_done(c);
        }
    }
}

static void on_shell(struct e2b_kernel *k, json_t *msg, void *arg)
{
    (void)k;
    struct ctx *c = arg;
    struct exec *x = c->run;
    const char *parent = e2b_json_str(json_object_get(msg, "parent_header"), "msg_id");
    const char *type = e2b_json_str(json_object_get(msg, "header"), "msg_type");
    if (!x || !x->msg_id || !parent || !STREQ(parent, x->msg_id) || !type ||
        !STREQ(type, "execute_reply"))
        return;
    json_t *content = json_object_get(msg, "content");
    const char *status = e2b_json_str(content, "status");
    if (status && STREQ(status, "error")) {
        _cleanup_strbuf_ struct strbuf tb = STRBUF_INIT;
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(content, "traceback"), i, l)
            if (json_is_string(l))
                add_traceback_line(&tb, json_string_value(l));
        exec_error(x, e2b_json_str(content, "ename"), e2b_json_str(content, "evalue"), tb.buf);
    } else if (status && (STREQ(status, "aborted") || STREQ(status, "abort"))) {
        exec_error(x, "ExecutionAborted", "Execution was aborted", "");
    }
    x->got_reply = true;
    check_done(c);
}

/* ---- contexts ---- */

static void waiters_answer(struct ctx *c, int status, const char *msg)
{
    while (c->waiters) {
        struct waiter *w = c->waiters;
        c->waiters = w->next;
        if (w->req) {
            e2b_http_set_close_cb(w->req, NULL, NULL);
            if (status != 200)
                reply_text(w->req, status, "%s", msg);
            else if (w->created)
                reply_json(w->req, 200, ctx_json(c));
            else
                reply_json(w->req, 200, json_null());
        }
        free(w);
    }
}

static void waiter_gone(struct e2b_http_req *req, void *arg)
{
    (void)req;
    struct waiter *w = arg;
    w->req = NULL;
}

static void ctx_wait(struct ctx *c, struct e2b_http_req *req, bool created)
{
    struct waiter *w = xcalloc(1, sizeof(*w));
    w->req = req;
    w->created = created;
    struct waiter **pp = &c->waiters;
    while (*pp)
        pp = &(*pp)->next;
    *pp = w;
    e2b_http_set_close_cb(req, waiter_gone, w);
}

static void ctx_free(struct ctx *c)
{
    for (struct ctx **pp = &ci.ctxs; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    for (size_t i = 0; i < ci.ndefaults; i++)
        if (ci.defaults[i] == c)
            ci.defaults[i] = NULL;
    e2b_kernel_free(c->k);
    e2b_kernelspec_free(c->ks);
    json_decref(c->applied_envs);
    free(c->id);
    free(c->language);
    free(c->cwd);
    free(c->last_error);
    free(c);
}

static void startup_step_done(void)
{
    if (ci.starting > 0 && --ci.starting == 0 && ci.verbose)
        fprintf(stderr, "code-interpreter: default contexts started\n");
}

static int ctx_spawn(struct ctx *c, struct e2b_error **err);

static void on_ready(struct e2b_kernel *k, void *arg)
{
    (void)k;
    struct ctx *c = arg;
    c->ready = true;
    c->restarting = false;
    c->quick_deaths = 0;
    if (ci.verbose)
        fprintf(stderr, "code-interpreter: context %s (%s, pid %d) ready\n", c->id, c->ks->name,
                e2b_kernel_pid(c->k));
    waiters_answer(c, 200, NULL);
    ctx_next(c);
}

static void respawn_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ctx *c = arg;
    _cleanup_error_ struct e2b_error *err = NULL;
    if (ctx_spawn(c, &err) < 0) {
        c->broken = true;
        free(c->last_error);
        c->last_error = xstrdup(err->msg);
        waiters_answer(c, 500, err->msg);
        ctx_fail_all(c, "ContextRestarting", err->msg);
    }
}

static void on_exit_kernel(struct e2b_kernel *k, int status, void *arg)
{
    struct ctx *c = arg;
    (void)k;
    _cleanup_free_ char *how = WIFSIGNALED(status)
                                   ? xasprintf("killed by signal %d", WTERMSIG(status))
                                   : xasprintf("exit status %d", WEXITSTATUS(status));
    bool was_ready = c->ready;
    e2b_kernel_free(c->k);
    c->k = NULL;
    c->ready = false;
    json_decref(c->applied_envs);
    c->applied_envs = NULL;
    if (c->deleting) {
        ctx_fail_all(c, "ContextRestarting", "Context was removed");
        waiters_answer(c, 200, NULL);
        ctx_free(c);
        return;
    }
    if (c->restarting) {
        ctx_fail_all(c, "ContextRestarting", "Context was restarted");
    } else {
        fprintf(stderr, "code-interpreter: kernel of context %s (%s) died (%s)\n", c->id,
                c->ks->name, how);
        _cleanup_free_ char *v = xasprintf(
            "The kernel of this context died (%s) and was restarted: its state is lost", how);
        /* the running execution ends; those waiting run on the new kernel */
        if (c->run) {
            exec_error(c->run, "ContextRestarting", v, "");
            exec_end(c->run);
            c->run = NULL;
        }
        if (!was_ready && ++c->quick_deaths >= MAX_QUICK_DEATHS) {
            c->broken = true;
            free(c->last_error);
            c->last_error =
                xasprintf("kernel '%s' keeps dying before it is ready (%s)", c->ks->name, how);
            waiters_answer(c, 500, c->last_error);
            ctx_fail_all(c, "ContextRestarting", c->last_error);
            return;
        }
    }
    /* start again from the loop, not from inside the reaper */
    struct timeval tv = { 0, c->quick_deaths ? 200000 : 0 };
    event_base_once(ci.base, -1, EV_TIMEOUT, respawn_tick, c, &tv);
}

static int ctx_spawn(struct ctx *c, struct e2b_error **err)
{
    struct e2b_kernel_events ev = { .on_ready = on_ready,
                                    .on_iopub = on_iopub,
                                    .on_shell = on_shell,
                                    .on_exit = on_exit_kernel,
                                    .arg = c };
    return e2b_kernel_start(c->ks, c->cwd, NULL, &ev, &c->k, err);
}

/* A new context; its kernel starts now. Errors: E2B_ERR_NOT_FOUND for a
 * language without a kernel here. */
static struct ctx *ctx_new(const char *language, const char *cwd, struct e2b_error **err)
{
    _cleanup_free_ char *lang = NULL;
    const char *kname = kernel_name_of(language, &lang);
    if (!kname) {
        e2b_error_set(err, E2B_ERR_INVALID, "language must not be empty");
        return NULL;
    }
    struct e2b_kernelspec *ks = NULL;
    if (e2b_kernelspec_find(kname, &ks, err) < 0)
        return NULL;
    struct stat st;
    if (stat(cwd, &st) < 0 || !S_ISDIR(st.st_mode)) {
        e2b_kernelspec_free(ks);
        e2b_error_set(err, E2B_ERR_INVALID, "cwd '%s' is not a directory", cwd);
        return NULL;
    }
    struct ctx *c = xcalloc(1, sizeof(*c));
    c->id = e2b_uuid4();
    c->language = TAKE_PTR(lang);
    c->cwd = xstrdup(cwd);
    c->ks = ks;
    if (ctx_spawn(c, err) < 0) {
        ctx_free(c);
        return NULL;
    }
    c->next = ci.ctxs;
    ci.ctxs = c;
    return c;
}

static struct ctx *ctx_find(const char *id)
{
    for (struct ctx *c = ci.ctxs; c; c = c->next)
        if (!c->deleting && STREQ(c->id, id))
            return c;
    return NULL;
}

/* The default context of a language, made on first use. */
static struct ctx *ctx_default(const char *language, struct e2b_error **err)
{
    _cleanup_free_ char *lang = NULL;
    if (!kernel_name_of(language, &lang)) {
        e2b_error_set(err, E2B_ERR_INVALID, "language must not be empty");
        return NULL;
    }
    for (size_t i = 0; i < ci.ndefaults; i++)
        if (STREQ(ci.default_langs[i], lang) && ci.defaults[i] && !ci.defaults[i]->broken)
            return ci.defaults[i];
    struct ctx *c = ctx_new(lang, ci.cwd, err);
    if (!c)
        return NULL;
    size_t i = 0;
    while (i < ci.ndefaults && !STREQ(ci.default_langs[i], lang))
        i++;
    if (i == ci.ndefaults) {
        if (ci.ndefaults == ARRAY_SIZE(ci.defaults))
            return c; /* not remembered: a context of its own each time */
        ci.default_langs[ci.ndefaults++] = xstrdup(lang);
    }
    ci.defaults[i] = c;
    return c;
}

static char *available_languages(void)
{
    static const char *const langs[][2] = { { "python", "python3" },
                                            { "javascript", "javascript" },
                                            { "bash", "bash" },
                                            { "r", "ir" },
                                            { "java", "java" } };
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    for (size_t i = 0; i < ARRAY_SIZE(langs); i++) {
        struct e2b_kernelspec *ks = NULL;
        if (e2b_kernelspec_find(langs[i][1], &ks, NULL) == 0) {
            strbuf_addf(&sb, "%s%s", sb.len ? ", " : "", langs[i][0]);
            e2b_kernelspec_free(ks);
        }
    }
    return strbuf_detach(&sb, NULL);
}

static void reply_ctx_error(struct e2b_http_req *req, const char *language, struct e2b_error *err)
{
    if (err->code == E2B_ERR_NOT_FOUND) {
        _cleanup_free_ char *avail = available_languages();
        reply_text(req, 404, "Language '%s' is not available here: %s (available: %s)",
                   language ? language : "", err->msg, *avail ? avail : "none");
    } else if (err->code == E2B_ERR_INVALID) {
        reply_text(req, 400, "%s", err->msg);
    } else {
        reply_text(req, 500, "Failed to create context: %s", err->msg);
    }
}

/* ---- envd: the token check and the sandbox's environment ---- */

struct envd_call {
    struct e2b_http_req *req; /* NULL once the client is gone */
    struct bufferevent *bev;
    struct event *timer;
    struct strbuf in;
    void (*done)(struct e2b_http_req *req, int status, json_t *envs, const char *body, void *arg);
    void *arg;
    bool finished;
};

static void envd_call_gone(struct e2b_http_req *req, void *arg)
{
    (void)req;
    struct envd_call *ec = arg;
    ec->req = NULL;
}

/* status 0: no envd here (nothing to check, no environment). */
static void envd_finish(struct envd_call *ec, int status, json_t *envs, const char *body)
{
    if (ec->finished)
        return;
    ec->finished = true;
    if (ec->bev)
        bufferevent_free(ec->bev);
    event_free(ec->timer);
    if (ec->req) {
        e2b_http_set_close_cb(ec->req, NULL, NULL);
        ec->done(ec->req, status, envs, body, ec->arg);
    } else {
        ec->done(NULL, status, envs, body, ec->arg);
    }
    strbuf_release(&ec->in);
    free(ec);
}

static void envd_parse(struct envd_call *ec, bool eof)
{
    struct e2b_http1_head h = { 0 };
    long hl = e2b_http1_parse_response(ec->in.buf, ec->in.len, &h);
    if (hl == 0 && !eof)
        return;
    if (hl <= 0) {
        e2b_http1_head_release(&h);
        envd_finish(ec, 502, NULL, "envd sent a bad answer");
        return;
    }
    struct e2b_http1_body b;
    if (e2b_http1_body_response(&b, &h, "GET") < 0) {
        e2b_http1_head_release(&h);
        envd_finish(ec, 502, NULL, "envd sent a bad answer");
        return;
    }
    _cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
    size_t used = 0;
    int r = e2b_http1_body_feed(&b, ec->in.buf + hl, ec->in.len - (size_t)hl, &used, &body);
    if (r == 0 && !(eof && b.kind == E2B_BODY_CLOSE)) {
        e2b_http1_head_release(&h);
        if (eof)
            envd_finish(ec, 502, NULL, "envd's answer was cut");
        return;
    }
    int status = h.status;
    e2b_http1_head_release(&h);
    if (r < 0) {
        envd_finish(ec, 502, NULL, "envd sent a bad answer");
        return;
    }
    if (status != 200) {
        envd_finish(ec, status, NULL, body.buf);
        return;
    }
    json_t *envs = json_loadb(body.buf, body.len, 0, NULL);
    if (!json_is_object(envs)) {
        json_decref(envs);
        envd_finish(ec, 502, NULL, "envd's /envs is not a JSON object");
        return;
    }
    envd_finish(ec, 200, envs, NULL);
    json_decref(envs);
}

static void envd_read(struct bufferevent *bev, void *arg)
{
    struct envd_call *ec = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    if (ec->in.len + n > 4u * 1024 * 1024) {
        envd_finish(ec, 502, NULL, "envd's answer is too large");
        return;
    }
    strbuf_grow(&ec->in, n);
    evbuffer_remove(in, ec->in.buf + ec->in.len, n);
    ec->in.len += n;
    ec->in.buf[ec->in.len] = '\0';
    envd_parse(ec, false);
}

static void envd_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct envd_call *ec = arg;
    if (what & BEV_EVENT_CONNECTED)
        return;
    if (what & BEV_EVENT_EOF) {
        envd_parse(ec, true);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        int e = EVUTIL_SOCKET_ERROR();
        if (ec->in.len == 0 && (e == ECONNREFUSED || e == ENOENT)) {
            if (!ci.envd_missing_logged && ci.verbose)
                fprintf(stderr,
                        "code-interpreter: no envd at %s: no token to check, no environment\n",
                        ci.envd);
            ci.envd_missing_logged = true;
            envd_finish(ec, 0, NULL, NULL);
        } else {
            envd_finish(ec, 502, NULL, "cannot reach envd");
        }
    }
}

static void envd_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    envd_finish(arg, 504, NULL, "envd did not answer");
}

static void envd_get_envs(struct e2b_http_req *req,
                          void (*done)(struct e2b_http_req *, int, json_t *, const char *, void *),
                          void *arg)
{
    struct envd_call *ec = xcalloc(1, sizeof(*ec));
    ec->req = req;
    ec->done = done;
    ec->arg = arg;
    strbuf_init(&ec->in);
    ec->timer = evtimer_new(ci.base, envd_timeout, ec);
    struct timeval tv = { ENVD_TIMEOUT_S, 0 };
    event_add(ec->timer, &tv);
    e2b_http_set_close_cb(req, envd_call_gone, ec);
    struct sockaddr_storage ss = { 0 };
    socklen_t sl;
    const char *host = "localhost";
    if (e2b_str_has_prefix(ci.envd, "unix:")) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof(un->sun_path), "%s", ci.envd + 5);
        sl = sizeof(*un);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        const char *hp = ci.envd + strlen("http://");
        const char *colon = strrchr(hp, ':');
        _cleanup_free_ char *ip = colon ? xstrndup(hp, (size_t)(colon - hp)) : xstrdup(hp);
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)(colon ? atoi(colon + 1) : 80));
        if (inet_pton(AF_INET, STREQ(ip, "localhost") ? "127.0.0.1" : ip, &in->sin_addr) != 1) {
            envd_finish(ec, 0, NULL, NULL);
            return;
        }
        sl = sizeof(*in);
    }
    ec->bev = bufferevent_socket_new(ci.base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(ec->bev, envd_read, NULL, envd_event, ec);
    bufferevent_enable(ec->bev, EV_READ | EV_WRITE);
    const char *token = req ? e2b_http_header(req, "X-Access-Token") : NULL;
    struct evbuffer *out = bufferevent_get_output(ec->bev);
    evbuffer_add_printf(
        out,
        "GET /envs HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nUser-Agent: e2b-code-interpreter\r\n",
        host);
    if (token && e2b_http_header_valid("X-Access-Token", token))
        evbuffer_add_printf(out, "X-Access-Token: %s\r\n", token);
    evbuffer_add(out, "\r\n", 2);
    if (bufferevent_socket_connect(ec->bev, (struct sockaddr *)&ss, (int)sl) < 0) {
        int e = errno;
        envd_finish(ec, (e == ECONNREFUSED || e == ENOENT) ? 0 : 502, NULL, "cannot reach envd");
    }
}

/* Turn envd's refusal into the reply; true when the request may go on. */
static bool envd_allows(struct e2b_http_req *req, int status, const char *body)
{
    if (status == 0 || status == 200)
        return true;
    if (status == 401 || status == 403) {
        const char *b =
            body && *body ? body : "{\"code\":401,\"message\":\"invalid access token\"}";
        e2b_http_reply(req, status, "application/json", b, strlen(b));
    } else {
        reply_text(req, 502, "cannot check the request with envd: %s", body ? body : "error");
    }
    return false;
}

/* ---- routes ---- */

static void execute_checked(struct e2b_http_req *req, int status, json_t *envs, const char *ebody,
                            void *arg)
{
    _cleanup_json_ json_t *body = arg;
    if (!req || !envd_allows(req, status, ebody))
        return;
    const char *code = e2b_json_str(body, "code"), *cid = e2b_json_str(body, "context_id"),
               *lang = e2b_json_str(body, "language");
    struct ctx *c = NULL;
    if (cid && *cid) {
        c = ctx_find(cid);
        if (!c) {
            reply_text(req, 404, "Context %s not found", cid);
            return;
        }
    } else {
        _cleanup_error_ struct e2b_error *err = NULL;
        c = ctx_default(lang && *lang ? lang : "python", &err);
        if (!c) {
            reply_ctx_error(req, lang, err);
            return;
        }
    }
    if (c->broken) {
        reply_text(req, 500, "Context %s is broken: %s", c->id, c->last_error ? c->last_error : "");
        return;
    }
    struct exec *x = xcalloc(1, sizeof(*x));
    x->c = c;
    x->req = req;
    x->code = xstrdup(code);
    json_t *ev = json_object_get(body, "env_vars");
    x->env_vars = json_is_object(ev) ? json_incref(ev) : NULL;
    x->global_envs = envs ? json_incref(envs) : NULL;
    x->keepalive = evtimer_new(ci.base, keepalive_tick, x);
    struct timeval tv = { KEEPALIVE_S, 0 };
    event_add(x->keepalive, &tv);
    e2b_http_add_header(req, "Cache-Control", "no-store");
    e2b_http_reply_start(req, 200, "application/x-ndjson");
    e2b_http_set_close_cb(req, exec_gone, x);
    struct exec **pp = &c->queue;
    while (*pp)
        pp = &(*pp)->next;
    *pp = x;
    ctx_next(c);
}

static void execute_body(struct e2b_http_req *req, struct evbuffer *buf, void *arg)
{
    (void)arg;
    if (!buf)
        return;
    size_t n = evbuffer_get_length(buf);
    json_error_t jerr;
    json_t *body = json_loadb(n ? (const char *)evbuffer_pullup(buf, -1) : "", n, 0, &jerr);
    if (!body) {
        reply_invalid(req, "json_invalid", json_pack("[s,i]", "body", jerr.position),
                      "JSON decode error");
        return;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        reply_invalid(req, "model_attributes_type", json_pack("[s]", "body"),
                      "Input should be a valid dictionary or object to extract fields from");
        return;
    }
    json_t *code = json_object_get(body, "code"), *cid = json_object_get(body, "context_id"),
           *lang = json_object_get(body, "language"), *ev = json_object_get(body, "env_vars");
    const char *bad = NULL, *why = NULL, *type = "string_type";
    if (!code)
        bad = "code", why = "Field required", type = "missing";
    else if (!json_is_string(code))
        bad = "code", why = "Input should be a valid string";
    else if (cid && !json_is_null(cid) && !json_is_string(cid))
        bad = "context_id", why = "Input should be a valid string";
    else if (lang && !json_is_null(lang) && !json_is_string(lang))
        bad = "language", why = "Input should be a valid string";
    else if (ev && !json_is_null(ev) && !json_is_object(ev))
        bad = "env_vars", why = "Input should be a valid dictionary", type = "dict_type";
    if (!bad && json_is_object(ev)) {
        const char *k;
        json_t *v;
        json_object_foreach(ev, k, v)
            if (!json_is_string(v))
                bad = "env_vars", why = "Input should be a valid string";
    }
    if (bad) {
        json_decref(body);
        reply_invalid(req, type, json_pack("[s,s]", "body", bad), why);
        return;
    }
    const char *cs = json_string_value(cid), *ls = json_string_value(lang);
    if (cs && *cs && ls && *ls) {
        json_decref(body);
        reply_text(req, 400, "Only one of context_id or language can be provided");
        return;
    }
    envd_get_envs(req, execute_checked, body);
}

static void contexts_post_checked(struct e2b_http_req *req, int status, json_t *envs,
                                  const char *ebody, void *arg)
{
    (void)envs;
    _cleanup_json_ json_t *body = arg;
    if (!req || !envd_allows(req, status, ebody))
        return;
    const char *lang = e2b_json_str(body, "language"), *cwd = e2b_json_str(body, "cwd");
    _cleanup_error_ struct e2b_error *err = NULL;
    struct ctx *c = ctx_new(lang && *lang ? lang : "python", cwd && *cwd ? cwd : ci.cwd, &err);
    if (!c) {
        reply_ctx_error(req, lang, err);
        return;
    }
    ctx_wait(c, req, true);
}

static void contexts_post(struct e2b_http_req *req, struct evbuffer *buf, void *arg)
{
    (void)arg;
    if (!buf)
        return;
    size_t n = evbuffer_get_length(buf);
    json_error_t jerr;
    json_t *body =
        n ? json_loadb((const char *)evbuffer_pullup(buf, -1), n, 0, &jerr) : json_object();
    if (!body) {
        reply_invalid(req, "json_invalid", json_pack("[s,i]", "body", jerr.position),
                      "JSON decode error");
        return;
    }
    json_t *lang = json_object_get(body, "language"), *cwd = json_object_get(body, "cwd");
    if (!json_is_object(body) || (lang && !json_is_null(lang) && !json_is_string(lang)) ||
        (cwd && !json_is_null(cwd) && !json_is_string(cwd))) {
        json_decref(body);
        reply_invalid(req, "string_type", json_pack("[s]", "body"),
                      "Input should be a valid string");
        return;
    }
    if (e2b_http_header(req, "X-Access-Token"))
        envd_get_envs(req, contexts_post_checked, body);
    else /* E2B's SDK sends no token here (E2B's server checks none) */
        contexts_post_checked(req, 0, NULL, NULL, body);
}

struct ctx_op {
    char *id;
    bool restart;
};

static void ctx_op_checked(struct e2b_http_req *req, int status, json_t *envs, const char *ebody,
                           void *arg)
{
    (void)envs;
    struct ctx_op *op = arg;
    _cleanup_free_ char *id = op->id;
    bool restart = op->restart;
    free(op);
    if (!req || !envd_allows(req, status, ebody))
        return;
    struct ctx *c = ctx_find(id);
    if (!c) {
        reply_text(req, 404, "Context %s not found", id);
        return;
    }
    if (restart) {
        if (c->k && !c->restarting) {
            c->restarting = true;
            c->broken = false;
            e2b_kernel_shutdown(c->k, 1000);
        } else if (!c->k && c->broken) { /* a broken context gets one more try */
            c->broken = false;
            c->quick_deaths = 0;
            c->restarting = true;
            struct timeval tv = { 0, 0 };
            event_base_once(ci.base, -1, EV_TIMEOUT, respawn_tick, c, &tv);
        }
        ctx_wait(c, req, false);
        return;
    }
    c->deleting = true;
    if (c->k) {
        e2b_kernel_shutdown(c->k, 1000);
        ctx_wait(c, req, false);
    } else {
        ctx_fail_all(c, "ContextRestarting", "Context was removed");
        waiters_answer(c, 404, "Context was removed");
        reply_json(req, 200, json_null());
        ctx_free(c);
    }
}

static void handle(struct e2b_http_req *req, void *arg)
{
    (void)arg;
    const char *path = e2b_http_path(req), *method = e2b_http_method(req);
    if (ci.verbose)
        fprintf(stderr, "code-interpreter: %s %s\n", method, path);
    if (STREQ(method, "OPTIONS")) {
        e2b_http_add_header(req, "Access-Control-Allow-Methods", "*");
        e2b_http_add_header(req, "Access-Control-Allow-Headers", "*");
        e2b_http_reply(req, 200, "text/plain", "OK", 2);
        return;
    }
    bool get = STREQ(method, "GET") || STREQ(method, "HEAD"), post = STREQ(method, "POST");
    if (STREQ(path, "/health")) {
        if (!get)
            reply_json(req, 405, json_pack("{s:s}", "detail", "Method Not Allowed"));
        else if (ci.starting > 0)
            reply_text(req, 503, "starting");
        else
            e2b_http_reply(req, 200, "application/json", "\"OK\"", 4);
        return;
    }
    if (STREQ(path, "/execute")) {
        if (!post)
            reply_json(req, 405, json_pack("{s:s}", "detail", "Method Not Allowed"));
        else
            e2b_http_read_body(req, MAX_BODY, execute_body, NULL);
        return;
    }
    if (STREQ(path, "/contexts")) {
        if (post) {
            e2b_http_read_body(req, 64 * 1024, contexts_post, NULL);
        } else if (get) {
            json_t *a = json_array();
            for (struct ctx *c = ci.ctxs; c; c = c->next)
                if (!c->deleting)
                    json_array_append_new(a, ctx_json(c));
            reply_json(req, 200, a);
        } else {
            reply_json(req, 405, json_pack("{s:s}", "detail", "Method Not Allowed"));
        }
        return;
    }
    if (e2b_str_has_prefix(path, "/contexts/")) {
        const char *rest = path + strlen("/contexts/");
        const char *slash = strchr(rest, '/');
        bool restart = slash && STREQ(slash, "/restart");
        if (slash && !restart) {
            reply_json(req, 404, json_pack("{s:s}", "detail", "Not Found"));
            return;
        }
        if ((restart && !post) || (!restart && !STREQ(method, "DELETE"))) {
            reply_json(req, 405, json_pack("{s:s}", "detail", "Method Not Allowed"));
            return;
        }
        struct ctx_op *op = xcalloc(1, sizeof(*op));
        op->id = slash ? xstrndup(rest, (size_t)(slash - rest)) : xstrdup(rest);
        op->restart = restart;
        if (e2b_http_header(req, "X-Access-Token"))
            envd_get_envs(req, ctx_op_checked, op);
        else
            ctx_op_checked(req, 0, NULL, NULL, op);
        return;
    }
    reply_json(req, 404, json_pack("{s:s}", "detail", "Not Found"));
}

/* ---- main ---- */

static void on_term(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    event_base_loopexit(ci.base, NULL);
}

struct start_watch {
    struct ctx *c;
    struct event *ev;
};

static void start_watch_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct start_watch *w = arg;
    bool done = true;
    for (struct ctx *c = ci.ctxs; c; c = c->next)
        if (c == w->c)
            done = c->ready || c->broken;
    if (done) {
        startup_step_done();
        event_free(w->ev);
        free(w);
        return;
    }
    struct timeval tv = { 0, 20000 };
    event_add(w->ev, &tv);
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: envd code-interpreter [--port N] [--listen ADDR:PORT] [--envd URL] [--cwd DIR]\n"
        "                             [--no-default-contexts] [-v]\n"
        "\n"
        "E2B's code-interpreter server: runs code in Jupyter kernels (the kernel\n"
        "specs of this system: python3, javascript, bash, ir ...) and streams its\n"
        "output as newline-delimited JSON.\n"
        "\n"
        "  --port N            TCP port on 0.0.0.0 (default %d)\n"
        "  --listen ADDR:PORT  address to listen on instead\n"
        "  --envd URL          envd, for tokens and the sandbox's environment\n"
        "                      (default http://127.0.0.1:49983; unix:PATH for a socket)\n"
        "  --cwd DIR           working directory of contexts (default /home/user, else .)\n"
        "  --no-default-contexts  start no python and javascript contexts at start\n"
        "  -v, --verbose       log requests and kernels to stderr\n",
        E2B_CI_DEFAULT_PORT);
}

int e2b_ci_main(int argc, char **argv)
{
    int port = E2B_CI_DEFAULT_PORT;
    const char *listen = NULL, *envd = "http://127.0.0.1:49983", *cwd = NULL;
    bool defaults = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] == '-')
            a++;
        bool needs =
            STREQ(a, "-port") || STREQ(a, "-listen") || STREQ(a, "-envd") || STREQ(a, "-cwd");
        const char *val = NULL;
        if (needs) {
            if (i + 1 >= argc) {
                fprintf(stderr, "code-interpreter: option '%s' needs a value\n", argv[i]);
                return 2;
            }
            val = argv[++i];
        }
        if (STREQ(a, "-port")) {
            char *e;
            long p = strtol(val, &e, 10);
            if (*e || p < 0 || p > 65535) {
                fprintf(stderr, "code-interpreter: bad port '%s'\n", val);
                return 2;
            }
            port = (int)p;
        } else if (STREQ(a, "-listen")) {
            listen = val;
        } else if (STREQ(a, "-envd")) {
            if (!e2b_str_has_prefix(val, "http://") && !e2b_str_has_prefix(val, "unix:")) {
                fprintf(stderr, "code-interpreter: --envd wants http://IP:PORT or unix:PATH\n");
                return 2;
            }
            envd = val;
        } else if (STREQ(a, "-cwd")) {
            cwd = val;
        } else if (STREQ(a, "-no-default-contexts")) {
            defaults = false;
        } else if (STREQ(a, "-v") || STREQ(a, "-verbose")) {
            ci.verbose = true;
        } else if (STREQ(a, "-h") || STREQ(a, "-help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "code-interpreter: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    const char *v = getenv("E2B_CI_VERBOSE"); /* a sandbox's envs reach a start command this way */
    if (v && *v && !STREQ(v, "0"))
        ci.verbose = true;
    struct stat st;
    if (cwd)
        ci.cwd = xstrdup(cwd);
    else if (stat("/home/user", &st) == 0 && S_ISDIR(st.st_mode))
        ci.cwd = xstrdup("/home/user");
    else
        ci.cwd = getcwd(NULL, 0) ?: xstrdup("/");
    ci.envd = xstrdup(envd);
    signal(SIGPIPE, SIG_IGN);
    /* the server does nothing at SIGINT a kernel's interrupt might send */
    struct event_config *cfg = event_config_new();
    event_config_avoid_method(cfg, "select");
    ci.base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    _cleanup_error_ struct e2b_error *err = NULL;
    if (!ci.base || e2b_kernels_init(ci.base, &err) < 0) {
        fprintf(stderr, "code-interpreter: %s\n", err ? err->msg : "cannot create event loop");
        return 1;
    }
    ci.http = e2b_http_server_new(ci.base, handle, NULL);
    e2b_http_server_add_header(ci.http, "Access-Control-Allow-Origin", "*");
    int rc;
    if (listen) {
        const char *colon = strrchr(listen, ':');
        if (!colon) {
            fprintf(stderr, "code-interpreter: --listen wants ADDR:PORT, got '%s'\n", listen);
            return 2;
        }
        _cleanup_free_ char *host = xstrndup(listen, (size_t)(colon - listen));
        rc = e2b_http_listen_tcp(ci.http, host, atoi(colon + 1), &err);
    } else {
        rc = e2b_http_listen_tcp(ci.http, NULL, port, &err);
    }
    if (rc < 0) {
        fprintf(stderr, "code-interpreter: %s\n", err->msg);
        return 1;
    }
    if (defaults) {
        static const char *const langs[] = { "python", "javascript" };
        for (size_t i = 0; i < ARRAY_SIZE(langs); i++) {
            _cleanup_error_ struct e2b_error *e = NULL;
            struct ctx *c = ctx_default(langs[i], &e);
            if (!c) {
                fprintf(stderr, "code-interpreter: no default %s context: %s\n", langs[i], e->msg);
                continue;
            }
            ci.starting++;
            struct start_watch *w = xcalloc(1, sizeof(*w));
            w->c = c;
            w->ev = evtimer_new(ci.base, start_watch_tick, w);
            struct timeval tv = { 0, 20000 };
            event_add(w->ev, &tv);
        }
    }
    struct event *sigterm = evsignal_new(ci.base, SIGTERM, on_term, NULL);
    struct event *sigint = evsignal_new(ci.base, SIGINT, on_term, NULL);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    if (ci.verbose) {
        if (listen)
            fprintf(stderr, "code-interpreter: listening on %s\n", listen);
        else
            fprintf(stderr, "code-interpreter: listening on 0.0.0.0:%d\n", port);
    }
    event_base_dispatch(ci.base);
    while (ci.ctxs) {
        struct ctx *c = ci.ctxs;
        ctx_fail_all(c, "ContextRestarting", "the code interpreter is stopping");
        waiters_answer(c, 503, "the code interpreter is stopping");
        ctx_free(c);
    }
    event_free(sigterm);
    event_free(sigint);
    e2b_http_server_free(ci.http);
    free(ci.cwd);
    free(ci.envd);
    return 0;
}
