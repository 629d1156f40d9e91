/* serve-templates.c - see serve-templates.h */
#include "serve-templates.h"
#include "config.h"
#include "fsutil.h"
#include "layer.h"
#include "template-steps.h"
#include "template-store.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define DEFAULT_MAX_BUILDS      2
#define DEFAULT_UPLOAD_LIMIT_MB 1024
#define MAX_QUEUED              64    /* builds waiting for a thread; more: 429 */
#define MAX_KEPT                500   /* finished builds remembered (their logs) */
#define MAX_LOG_ENTRIES         20000 /* per build; the rest is dropped, and said so */
#define STATUS_LIMIT            100
#define UPLOAD_TTL_MS           (3600 * 1000)
#define UPLOAD_TIMEOUT_MS       (3600 * 1000)
#define READY_TIMEOUT_S         120
#define REASON_LINES            20 /* log entries of the failed step in reason */

extern char **environ;

enum bstate { B_WAITING, B_QUEUED, B_BUILDING, B_READY, B_ERROR };

struct logent {
    int64_t ms;
    char *ts, *message, *step;
    const char *level;
};

struct tbuild {
    char *template_id, *build_id, *name;
    char **tags;
    long cpu, mem, disk;
    enum bstate state;
    json_t *start;    /* the steps (TemplateBuildStartV2), once started */
    char *dockerfile; /* v1: the Dockerfile text */
    char *reason, *reason_step;
    struct logent *logs;
    size_t n_logs;
    bool logs_cut;
    int64_t created_ms, finished_ms;
    pid_t pid;    /* the worker while it runs */
    char *cancel; /* why it is being cancelled */
    struct tbuild *next;
};

struct upload {
    char token[41];
    char *hash, *template_id;
    int64_t expires;
    bool busy;
    struct upload *next;
};

struct e2b_serve_builds {
    const struct e2b_serve_opts *o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct tbuild *all; /* newest first */
    struct tbuild **queue;
    size_t n_queue;
    struct upload *uploads;
    pthread_t *threads;
    int n_threads;
    bool stopping;
    char *exe, *files, *work;
    uint64_t upload_limit;
};

static const char *const state_names[] = { "waiting", "waiting", "building", "ready", "error" };

/* ---- replies ---- */

static bool json_body(const struct strbuf *body, struct e2b_serve_reply *out, json_t **ret)
{
    *ret = NULL;
    json_error_t je;
    json_t *j = body->len ? json_loadb(body->buf, body->len, 0, &je) : NULL;
    if (!j || !json_is_object(j)) {
        if (!body->len)
            e2b_serve_reply_error(out, 400, "Invalid request body: a JSON object is required");
        else
            e2b_serve_reply_error(out, 400, "Invalid request body: %s", j ? "not a JSON object" : je.text);
        json_decref(j);
        return false;
    }
    *ret = j;
    return true;
}

static void not_allowed(const struct e2b_http1_head *r, struct e2b_serve_reply *out,
                        const char *allow)
{
    e2b_serve_reply_error(out, 405, "method %s is not allowed on %s (allowed: %s)", r->method, r->path,
                allow);
    out->headers = xasprintf("Allow: %s\r\n", allow);
}

/* ---- the registry ---- */

static char *uuid4(void)
{
    uint8_t b[16];
    if (getrandom(b, sizeof(b), 0) != sizeof(b))
        abort();
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    return xasprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                     b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                     b[13], b[14], b[15]);
}

static void build_free(struct tbuild *t)
{
    free(t->template_id);
    free(t->build_id);
    free(t->name);
    e2b_strv_free(t->tags);
    json_decref(t->start);
    free(t->dockerfile);
    free(t->reason);
    free(t->reason_step);
    for (size_t i = 0; i < t->n_logs; i++) {
        free(t->logs[i].ts);
        free(t->logs[i].message);
        free(t->logs[i].step);
    }
    free(t->logs);
    free(t->cancel);
    free(t);
}

/* Under mu. */
static struct tbuild *find_build(struct e2b_serve_builds *b, const char *template_id,
                                 const char *build_id)
{
    for (struct tbuild *t = b->all; t; t = t->next)
        if (STREQ(t->build_id, build_id) && (!template_id || STREQ(t->template_id, template_id)))
            return t;
    return NULL;
}

/* Under mu: one log entry. */
static void add_log(struct tbuild *t, const char *level, const char *step, const char *msg)
{
    if (t->n_logs >= MAX_LOG_ENTRIES) {
        t->logs_cut = true;
        return;
    }
    if (!(t->n_logs & (t->n_logs - 1)) || !t->n_logs) /* powers of two */
        t->logs = xrealloc(t->logs, (t->n_logs ? t->n_logs * 2 : 16) * sizeof(*t->logs));
    int64_t now = e2b_wall_ms();
    t->logs[t->n_logs++] = (struct logent){ .ms = now,
                                            .ts = e2b_rfc3339(now),
                                            .message = xstrdup(msg),
                                            .step = step ? xstrdup(step) : NULL,
                                            .level = level };
}

static void add_logf(struct tbuild *t, const char *level, const char *step, const char *fmt, ...)
    _printf_(4, 5);
static void add_logf(struct tbuild *t, const char *level, const char *step, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = xvasprintf(fmt, ap);
    va_end(ap);
    add_log(t, level, step, m);
}

/* Under mu: stop a build that is queued or running. */
static void cancel_build(struct e2b_serve_builds *b, struct tbuild *t, const char *why)
{
    if (t->state == B_QUEUED) {
        for (size_t i = 0; i < b->n_queue; i++)
            if (b->queue[i] == t) {
                memmove(&b->queue[i], &b->queue[i + 1], (b->n_queue - i - 1) * sizeof(*b->queue));
                b->n_queue--;
                break;
            }
    }
    if (t->state == B_WAITING || t->state == B_QUEUED) {
        t->state = B_ERROR;
        t->reason = xstrdup(why);
        t->finished_ms = e2b_wall_ms();
        add_log(t, "error", NULL, why);
    } else if (t->state == B_BUILDING && !t->cancel) {
        t->cancel = xstrdup(why);
        if (t->pid > 0)
            kill(-t->pid, SIGTERM);
    }
}

/* Under mu: forget the oldest finished builds beyond MAX_KEPT. */
static void prune(struct e2b_serve_builds *b)
{
    size_t n = 0;
    for (struct tbuild **p = &b->all; *p;) {
        struct tbuild *t = *p;
        if (++n > MAX_KEPT && (t->state == B_READY || t->state == B_ERROR)) {
            *p = t->next;
            build_free(t);
            continue;
        }
        p = &t->next;
    }
}

static json_t *log_json(const struct logent *l)
{
    json_t *j =
        json_pack("{s:s, s:s, s:s}", "timestamp", l->ts, "level", l->level, "message", l->message);
    if (l->step)
        json_object_set_new(j, "step", json_string(l->step));
    return j;
}

static int level_rank(const char *l)
{
    static const char *const names[] = { "debug", "info", "warn", "error", NULL };
    for (int i = 0; l && names[i]; i++)
        if (!strcasecmp(l, names[i]))
            return i;
    return -1;
}

/* ---- the build threads ---- */

/* What the worker needs: the Dockerfile, the spec it reads. */
static int prepare(struct e2b_serve_builds *b, struct tbuild *t, char **ret_dir, char **ret_spec,
                   json_t **ret_labels, struct e2b_error **err)
{
    _cleanup_free_ char *dir = xasprintf("%s/%s", b->work, t->build_id);
    e2b_rm_rf(dir, NULL);
    if (e2b_mkdir_p(dir, 0700, err) < 0)
        return -1;
    _cleanup_free_ char *df = e2b_path_join(dir, "Dockerfile");
    _cleanup_free_ char *empty = e2b_path_join(dir, "context");
    json_t *spec =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:i}", "dockerfile", df, "name", t->name,
                  "templateID", t->template_id, "buildID", t->build_id, "cpuCount",
                  (json_int_t)t->cpu, "memoryMB", (json_int_t)t->mem, "network",
                  b->o->deny_internet ? "none" : "host", "readyTimeout", READY_TIMEOUT_S);
    json_t *tags = json_array();
    for (char **g = t->tags; g && *g; g++)
        json_array_append_new(tags, json_string(*g));
    json_object_set_new(spec, "tags", tags);
    json_t *labels = json_array();
    int r = 0;
    if (!t->dockerfile) {
        struct e2b_steps_plan p;
        if (e2b_steps_plan(t->start, &p, err) < 0) {
            r = -1;
        } else {
            r = e2b_write_file_atomic(df, p.dockerfile, strlen(p.dockerfile), 0600, err);
            json_t *texts = json_array();
            for (size_t i = 0; i < p.n_labels; i++) {
                json_array_append_new(labels, json_string(p.labels[i]));
                json_array_append_new(texts, p.texts[i] ? json_string(p.texts[i]) : json_null());
            }
            json_object_set_new(spec, "texts", texts);
            json_object_set_new(spec, "steps", json_integer((json_int_t)p.n_steps));
            json_object_set_new(spec, "context", json_string(b->files));
            json_object_set_new(spec, "e2bSteps", json_true());
            json_object_set_new(spec, "forceFrom", json_integer((json_int_t)p.force_from));
            e2b_steps_plan_free(&p);
        }
        json_t *reg = json_object_get(t->start, "fromImageRegistry");
        if (json_is_object(reg))
            json_object_set_new(spec, "registry",
                                json_pack("{s:O?, s:O?}", "username",
                                          json_object_get(reg, "username"), "password",
                                          json_object_get(reg, "password")));
    } else {
        r = e2b_write_file_atomic(df, t->dockerfile, strlen(t->dockerfile), 0600, err);
        if (r == 0 && mkdir(empty, 0755) < 0)
            r = e2b_error_sys(err, errno, "mkdir %s", empty);
        json_object_set_new(spec, "context", json_string(empty));
    }
    static const char *const keys[] = { "startCmd", "readyCmd" };
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(t->start, keys[i]);
        if (json_is_string(v) && *json_string_value(v))
            json_object_set(spec, keys[i], v);
    }
    json_object_set(spec, "labels", labels);
    _cleanup_free_ char *sp = e2b_path_join(dir, "spec.json");
    if (r == 0)
        r = e2b_json_save_file(sp, spec, 0600, err);
    json_decref(spec);
    if (r < 0) {
        json_decref(labels);
        e2b_rm_rf(dir, NULL);
        return -1;
    }
    *ret_dir = TAKE_PTR(dir);
    *ret_spec = TAKE_PTR(sp);
    *ret_labels = labels;
    return 0;
}

/* One line of the worker: a log entry, or its last word. */
static void worker_line(struct e2b_serve_builds *b, struct tbuild *t, const char *line,
                        json_t **ret_done)
{
    json_t *j = json_loads(line, 0, NULL);
    pthread_mutex_lock(&b->mu);
    if (!json_is_object(j)) {
        if (*line)
            add_log(t, "warn", NULL, line);
    } else if (json_object_get(j, "done")) {
        *ret_done = json_incref(json_object_get(j, "done"));
    } else if (json_object_get(j, "error")) {
        free(t->reason);
        free(t->reason_step);
        t->reason = xstrdup(e2b_json_str(j, "error") ?: "the build failed");
        t->reason_step = e2b_json_str(j, "step") ? xstrdup(e2b_json_str(j, "step")) : NULL;
    } else {
        const char *lvl = e2b_json_str(j, "level");
        add_log(t,
                level_rank(lvl) >= 0
                    ? (const char *[]){ "debug", "info", "warn", "error" }[level_rank(lvl)]
                    : "info",
                e2b_json_str(j, "step"), e2b_json_str(j, "message") ?: "");
    }
    pthread_mutex_unlock(&b->mu);
    json_decref(j);
}

static void run_build(struct e2b_serve_builds *b, struct tbuild *t)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_free_ char *dir = NULL, *spec = NULL;
    _cleanup_json_ json_t *labels = NULL, *done = NULL;
    int64_t t0 = e2b_now_ms();
    if (prepare(b, t, &dir, &spec, &labels, &err) < 0) {
        pthread_mutex_lock(&b->mu);
        t->state = B_ERROR;
        t->reason = xstrdup(err->msg);
        t->finished_ms = e2b_wall_ms();
        add_logf(t, "error", NULL, "Build failed: %s", err->msg);
        pthread_mutex_unlock(&b->mu);
        return;
    }
    int pfd[2] = { -1, -1 };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    pid_t pid = -1;
    int sr = pipe2(pfd, O_CLOEXEC) < 0 ? errno : 0;
    if (sr == 0) {
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
        sigset_t none, def;
        sigemptyset(&none);
        sigemptyset(&def);
        sigaddset(&def, SIGPIPE);
        sigaddset(&def, SIGTERM);
        sigaddset(&def, SIGINT);
        posix_spawnattr_setsigmask(&at, &none);
        posix_spawnattr_setsigdefault(&at, &def);
        posix_spawnattr_setpgroup(&at, 0);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                          POSIX_SPAWN_SETSIGDEF);
        char *argv[] = { "e2b", "__template-worker", spec, NULL };
        pthread_mutex_lock(&b->mu);
        if (t->cancel) {
            sr = ECANCELED;
        } else {
            sr = posix_spawn(&pid, b->exe, &fa, &at, argv, environ);
            if (sr == 0)
                t->pid = pid;
        }
        pthread_mutex_unlock(&b->mu);
        close(pfd[1]);
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (sr == 0) {
        struct strbuf in = STRBUF_INIT;
        char buf[16384];
        for (;;) {
            ssize_t n = read(pfd[0], buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            strbuf_add(&in, buf, (size_t)n);
            char *nl;
            while ((nl = memchr(in.buf, '\n', in.len))) {
                *nl = '\0';
                worker_line(b, t, in.buf, &done);
                strbuf_consume(&in, (size_t)(nl - in.buf) + 1);
            }
        }
        if (in.len) {
            strbuf_addch(&in, '\0');
            worker_line(b, t, in.buf, &done);
        }
        strbuf_release(&in);
    }
    if (pfd[0] >= 0)
        close(pfd[0]);
    int ws = 0;
    while (pid > 0 && waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    e2b_rm_rf(dir, NULL);
    pthread_mutex_lock(&b->mu);
    t->pid = 0;
    t->finished_ms = e2b_wall_ms();
    double secs = (double)(e2b_now_ms() - t0) / 1000.0;
    if (done && !t->cancel) {
        t->state = B_READY;
        add_logf(t, "info", "finalize", "Build finished, took %.1fs", secs);
    } else {
        t->state = B_ERROR;
        if (t->cancel) {
            free(t->reason);
            t->reason = xstrdup(t->cancel);
        } else if (!t->reason) {
            t->reason = sr ? xasprintf("cannot start the builder: %s", strerror(sr))
                        : WIFSIGNALED(ws)
                            ? xasprintf("the builder was killed by signal %d", WTERMSIG(ws))
                            : xasprintf("the builder exited with status %d", WEXITSTATUS(ws));
        }
        add_logf(t, "error", t->reason_step, "Build failed: %s", t->reason);
    }
    pthread_mutex_unlock(&b->mu);
}

static void *build_thread(void *ud)
{
    struct e2b_serve_builds *b = ud;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->stopping && !b->n_queue)
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->stopping)
            break;
        struct tbuild *t = b->queue[0];
        memmove(&b->queue[0], &b->queue[1], (b->n_queue - 1) * sizeof(*b->queue));
        b->n_queue--;
        t->state = B_BUILDING;
        add_logf(t, "info", "base", "Building template %s/%s", t->template_id, t->build_id);
        pthread_mutex_unlock(&b->mu);
        run_build(b, t);
        pthread_mutex_lock(&b->mu);
        prune(b);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

int e2b_serve_builds_start(const struct e2b_serve_opts *o, struct e2b_serve_builds **ret,
                           struct e2b_error **err)
{
    struct e2b_serve_builds *b = xcalloc(1, sizeof(*b));
    b->o = o;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        free(b);
        return e2b_error_sys(err, errno, "cannot find this program (/proc/self/exe)");
    }
    exe[n] = '\0';
    b->exe = xstrdup(exe);
    _cleanup_free_ char *data = e2b_data_dir(), *run = e2b_runtime_dir();
    b->files = xasprintf("%s/cache/template-files", data);
    b->work = xasprintf("%s/serve-builds.%ld", run, (long)getpid());
    b->upload_limit =
        (uint64_t)(o->upload_limit_mb > 0 ? o->upload_limit_mb : DEFAULT_UPLOAD_LIMIT_MB) << 20;
    if (e2b_mkdir_p(b->files, 0700, err) < 0 || e2b_mkdir_p(b->work, 0700, err) < 0) {
        free(b->exe);
        free(b->files);
        free(b->work);
        free(b);
        return -1;
    }
    /* what an earlier server left: its work dir (if it was killed), unfinished uploads */
    _cleanup_closedir_ DIR *rd = opendir(run);
    struct dirent *re;
    while (rd && (re = readdir(rd))) {
        long pid =
            e2b_str_has_prefix(re->d_name, "serve-builds.") ? strtol(re->d_name + 13, NULL, 10) : 0;
        if (pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
            _cleanup_free_ char *p = e2b_path_join(run, re->d_name);
            e2b_rm_rf(p, NULL);
        }
    }
    _cleanup_closedir_ DIR *d = opendir(b->files);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] == '.' && strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            _cleanup_free_ char *p = e2b_path_join(b->files, de->d_name);
            e2b_rm_rf(p, NULL);
        }
    int nt = o->max_builds > 0 ? o->max_builds : DEFAULT_MAX_BUILDS;
    b->threads = xcalloc((size_t)nt, sizeof(pthread_t));
    for (int i = 0; i < nt; i++)
        if (pthread_create(&b->threads[b->n_threads], NULL, build_thread, b) == 0)
            b->n_threads++;
    *ret = b;
    return 0;
}

void e2b_serve_builds_stop(struct e2b_serve_builds *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->stopping = true;
    for (struct tbuild *t = b->all; t; t = t->next)
        if (t->state == B_BUILDING || t->state == B_QUEUED)
            cancel_build(b, t, "The build was canceled because e2b serve stopped.");
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < b->n_threads; i++)
        pthread_join(b->threads[i], NULL);
    free(b->threads);
    while (b->all) {
        struct tbuild *t = b->all;
        b->all = t->next;
        build_free(t);
    }
    while (b->uploads) {
        struct upload *u = b->uploads;
        b->uploads = u->next;
        free(u->hash);
        free(u->template_id);
        free(u);
    }
    free(b->queue);
    e2b_rm_rf(b->work, NULL);
    free(b->exe);
    free(b->files);
    free(b->work);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b);
}

/* ---- requests ---- */

struct call {
    const struct e2b_serve_opts *o;
    struct e2b_serve_builds *b;
    const struct e2b_http1_head *r;
    const struct strbuf *body;
    struct e2b_serve_reply *out;
};

/* The template a store name, alias or ID stands for: its ID and meta. */
static int store_find(const char *name, json_t **ret_meta, struct e2b_error **err)
{
    struct e2b_store store;
    if (e2b_store_open(&store, err) < 0)
        return -1;
    int r = e2b_store_find(&store, name, ret_meta, NULL, err);
    e2b_store_close(&store);
    return r;
}

/* Does the template (store or pending) exist? Its ID in *ret_id. */
static bool template_known(struct call *c, const char *id_or_name, char **ret_id)
{
    _cleanup_json_ json_t *meta = NULL;
    if (!strchr(id_or_name, ':') && store_find(id_or_name, &meta, NULL) == 0) {
        *ret_id = xstrdup(e2b_json_str(meta, "templateID") ?: id_or_name);
        return true;
    }
    pthread_mutex_lock(&c->b->mu);
    for (struct tbuild *t = c->b->all; t; t = t->next)
        if (STREQ(t->template_id, id_or_name) || (t->name && STREQ(t->name, id_or_name))) {
            *ret_id = xstrdup(t->template_id);
            pthread_mutex_unlock(&c->b->mu);
            return true;
        }
    pthread_mutex_unlock(&c->b->mu);
    return false;
}

static bool cpu_mem(struct call *c, json_t *body, long *cpu, long *mem, long *disk)
{
    json_t *v = json_object_get(body, "cpuCount");
    *cpu = 2, *mem = 1024, *disk = 0;
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 64 ||
            (json_integer_value(v) > 1 && json_integer_value(v) % 2)) {
            e2b_serve_reply_error(c->out, 400, "cpuCount must be 1 or an even number up to 64");
            return false;
        }
        *cpu = (long)json_integer_value(v);
    }
    v = json_object_get(body, "memoryMB");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 128 || json_integer_value(v) % 2 ||
            json_integer_value(v) > 1048576) {
            e2b_serve_reply_error(c->out, 400, "memoryMB must be an even number of at least 128");
            return false;
        }
        *mem = (long)json_integer_value(v);
    }
    v = json_object_get(body, "minFreeDiskMb");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1048576) {
            e2b_serve_reply_error(c->out, 400, "minFreeDiskMb must be between 0 and 1048576");
            return false;
        }
        *disk = (long)json_integer_value(v);
    }
    return true;
}

/* Register a build of `name` (waiting): the template's ID (found or new). */
static struct tbuild *register_build(struct call *c, const char *name, char **tags, long cpu,
                                     long mem, long disk)
{
    _cleanup_json_ json_t *meta = NULL;
    _cleanup_free_ char *id = NULL;
    if (store_find(name, &meta, NULL) == 0) {
        if (STREQ(e2b_json_str(meta, "templateID") ?: "", name) &&
            !json_array_size(json_object_get(meta, "aliases"))) {
            e2b_serve_reply_error(c->out, 409, "Alias '%s' is already used", name);
            return NULL;
        }
        if (STREQ(e2b_json_str(meta, "templateID") ?: "", name)) {
            e2b_serve_reply_error(c->out, 409, "Alias '%s' is already used (it is a template's ID)", name);
            return NULL;
        }
        id = xstrdup(e2b_json_str(meta, "templateID"));
    }
    pthread_mutex_lock(&c->b->mu);
    size_t busy = c->b->n_queue;
    for (struct tbuild *t = c->b->all; !id && t; t = t->next)
        if (t->name && STREQ(t->name, name))
            id = xstrdup(t->template_id);
    if (busy >= MAX_QUEUED) {
        pthread_mutex_unlock(&c->b->mu);
        e2b_serve_reply_error(
            c->out, 429,
            "you have reached the maximum number of concurrent template builds (%d). Please wait for "
            "existing builds to complete.",
            MAX_QUEUED);
        return NULL;
    }
    struct tbuild *t = xcalloc(1, sizeof(*t));
    t->template_id = id ? TAKE_PTR(id) : e2b_random_id();
    t->build_id = uuid4();
    t->name = xstrdup(name);
    t->tags = tags;
    t->cpu = cpu, t->mem = mem, t->disk = disk;
    t->state = B_WAITING;
    t->created_ms = e2b_wall_ms();
    /* a newer request supersedes the template's builds never started */
    for (struct tbuild *o = c->b->all; o; o = o->next)
        if (STREQ(o->template_id, t->template_id) && o->state == B_WAITING)
            cancel_build(c->b, o,
                         "The build was canceled because it was superseded by a newer one.");
    t->next = c->b->all;
    c->b->all = t;
    prune(c->b);
    pthread_mutex_unlock(&c->b->mu);
    return t;
}

/* name[:tag] and tags[] of a request: the name and the tags (default: "default"). */
static bool name_tags(struct call *c, json_t *body, char **ret_name, char ***ret_tags)
{
    json_t *n = json_object_get(body, "name"), *alias = json_object_get(body, "alias");
    if (!json_is_string(n) || !*json_string_value(n))
        n = alias;
    if (!json_is_string(n) || !*json_string_value(n)) {
        e2b_serve_reply_error(c->out, 400, "At least one name is required");
        return false;
    }
    const char *full = json_string_value(n), *colon = strchr(full, ':');
    _cleanup_free_ char *name = colon ? xstrndup(full, (size_t)(colon - full)) : xstrdup(full);
    if (!e2b_template_name_valid(name)) {
        e2b_serve_reply_error(c->out, 400,
                    "Invalid alias: '%s' must be lowercase letters, digits, - and _ (at most 128)",
                    name);
        return false;
    }
    char **tags = NULL;
    if (colon)
        tags = e2b_strv_push(tags, colon + 1);
    json_t *jt = json_object_get(body, "tags");
    if (jt && !json_is_null(jt) && !json_is_array(jt)) {
        e2b_serve_reply_error(c->out, 400, "tags must be an array of strings");
        return false;
    }
    size_t i;
    json_t *v;
    json_array_foreach(jt, i, v) {
        if (!json_is_string(v)) {
            e2b_strv_free(tags);
            e2b_serve_reply_error(c->out, 400, "tags must be an array of strings");
            return false;
        }
        bool dup = false;
        for (char **g = tags; g && *g; g++)
            dup = dup || STREQ(*g, json_string_value(v));
        if (!dup)
            tags = e2b_strv_push(tags, json_string_value(v));
    }
    for (char **g = tags; g && *g; g++)
        if (!e2b_template_tag_valid(*g)) {
            e2b_serve_reply_error(c->out, 400,
                        "Invalid tag: '%s' must be letters, digits, ., - and _ (at most 128)", *g);
            e2b_strv_free(tags);
            return false;
        }
    if (!tags)
        tags = e2b_strv_push(NULL, "default");
    *ret_name = TAKE_PTR(name);
    *ret_tags = tags;
    return true;
}

static json_t *strv_json(char *const *v)
{
    json_t *a = json_array();
    for (; v && *v; v++)
        json_array_append_new(a, json_string(*v));
    return a;
}

/* POST /v3/templates */
static void api_request_v3(struct call *c)
{
    _cleanup_json_ json_t *body = NULL;
    char *name = NULL, **tags = NULL;
    long cpu, mem, disk;
    if (!json_body(c->body, c->out, &body) || !cpu_mem(c, body, &cpu, &mem, &disk) ||
        !name_tags(c, body, &name, &tags))
        return;
    struct tbuild *t = register_build(c, name, tags, cpu, mem, disk);
    if (!t) {
        free(name);
        e2b_strv_free(tags);
        return;
    }
    _cleanup_json_ json_t *meta = NULL;
    bool public = store_find(t->template_id, &meta, NULL) == 0 &&
                  json_is_true(json_object_get(meta, "public"));
    c->out->status = 202;
    c->out->body = json_pack("{s:s, s:s, s:b, s:[s], s:o, s:[s]}", "templateID", t->template_id,
                             "buildID", t->build_id, "public", public, "names", name, "tags",
                             strv_json(t->tags), "aliases", name);
    free(name);
}

/* POST /templates and /templates/{id}: v1's request, a Dockerfile. */
static void api_request_v1(struct call *c, const char *id)
{
    _cleanup_json_ json_t *body = NULL;
    long cpu, mem, disk;
    if (!json_body(c->body, c->out, &body) || !cpu_mem(c, body, &cpu, &mem, &disk))
        return;
    const char *df = e2b_json_str(body, "dockerfile");
    if (!df || !*df)
        return e2b_serve_reply_error(c->out, 400, "dockerfile is required");
    _cleanup_free_ char *name = NULL;
    if (e2b_json_str(body, "alias")) {
        name = xstrdup(e2b_json_str(body, "alias"));
    } else if (id) {
        _cleanup_json_ json_t *meta = NULL;
        if (store_find(id, &meta, NULL) == 0 && json_array_size(json_object_get(meta, "aliases")))
            name = xstrdup(json_string_value(json_array_get(json_object_get(meta, "aliases"), 0)));
    }
    if (!name) {
        _cleanup_free_ char *rnd = e2b_random_id();
        name = xasprintf("template-%.8s", rnd);
    }
    if (!e2b_template_name_valid(name))
        return e2b_serve_reply_error(c->out, 400,
                           "Invalid alias: '%s' must be lowercase letters, digits, - and _", name);
    if (id) {
        _cleanup_free_ char *known = NULL;
        if (!template_known(c, id, &known))
            return e2b_serve_reply_error(c->out, 404, "template '%s' not found", id);
    }
    struct tbuild *t = register_build(c, name, e2b_strv_push(NULL, "default"), cpu, mem, disk);
    if (!t)
        return;
    pthread_mutex_lock(&c->b->mu);
    t->dockerfile = xstrdup(df);
    t->start = json_object(); /* v1 takes the commands with the request */
    static const char *const keys[] = { "startCmd", "readyCmd" };
    for (size_t i = 0; i < 2; i++)
        if (json_is_string(json_object_get(body, keys[i])))
            json_object_set(t->start, keys[i], json_object_get(body, keys[i]));
    _cleanup_free_ char *now = e2b_rfc3339(t->created_ms);
    c->out->status = 202;
    c->out->body = json_pack(
        "{s:s, s:s, s:I, s:I, s:i, s:b, s:[s], s:[s], s:s, s:s, s:n, s:n, s:i, s:i, s:s, s:s}",
        "templateID", t->template_id, "buildID", t->build_id, "cpuCount", (json_int_t)cpu,
        "memoryMB", (json_int_t)mem, "diskSizeMB", 0, "public", 0, "aliases", name, "names", name,
        "createdAt", now, "updatedAt", now, "createdBy", "lastSpawnedAt", "spawnCount", 0,
        "buildCount", 1, "envdVersion", E2B_VERSION, "buildStatus", "waiting");
    pthread_mutex_unlock(&c->b->mu);
}

/* Does the upload of a COPY step match its filesHash? */
static int check_files(struct call *c, const char *copy, struct e2b_error **err)
{
    _cleanup_strv_ char **f = NULL;
    char *save = NULL, *dup = xstrdup(copy);
    for (char *p = strtok_r(dup, "\t", &save); p; p = strtok_r(NULL, "\t", &save))
        f = e2b_strv_push(f, p);
    free(dup);
    if (e2b_strv_len(f) != 4)
        return e2b_error_set(err, E2B_ERR_INVALID, "bad COPY step");
    _cleanup_free_ char *dir = e2b_path_join(c->b->files, f[1]);
    struct stat st;
    if (stat(dir, &st) < 0)
        return e2b_error_set(
            err, E2B_ERR_INVALID,
            "step %s (COPY): its files (%s) were not uploaded (GET /templates/{id}/files/%s for "
            "an upload URL)",
            f[0], f[1], f[1]);
    char h[65];
    bool dirs = false;
    _cleanup_error_ struct e2b_error *he = NULL;
    if (e2b_files_hash(dir, f[2], f[3], NULL, h, NULL, &dirs, &he) < 0 || strcmp(h, f[1])) {
        if (!he && dirs)
            return 0; /* a tar keeps no directory sizes: the hash cannot be checked */
        _cleanup_free_ char *gone = xasprintf("%s/.bad-%s-%ld", c->b->files, f[1], (long)getpid());
        if (rename(dir, gone) == 0)
            e2b_rm_rf(gone, NULL);
        return e2b_error_set(
            err, E2B_ERR_INVALID,
            "step %s (COPY): the files uploaded for %s do not match its filesHash %s (%s); upload "
            "them again",
            f[0], f[2], f[1], he ? he->msg : "different content");
    }
    return 0;
}

/* POST /v2/templates/{id}/builds/{build} and (v1) /templates/{id}/builds/{build} */
static void api_start(struct call *c, const char *id, const char *bid, bool v1)
{
    _cleanup_json_ json_t *body = NULL;
    if (!v1 && !json_body(c->body, c->out, &body))
        return;
    if (v1 && c->body->len && !json_body(c->body, c->out, &body))
        return;
    struct e2b_steps_plan plan = { 0 };
    _cleanup_error_ struct e2b_error *err = NULL;
    pthread_mutex_lock(&c->b->mu);
    struct tbuild *t = find_build(c->b, id, bid);
    bool is_v1 = t && t->dockerfile;
    enum bstate st = t ? t->state : B_ERROR;
    pthread_mutex_unlock(&c->b->mu);
    if (!t)
        return e2b_serve_reply_error(c->out, 404,
                           "Error when getting template: build '%s' of template '%s' not found",
                           bid, id);
    if (st != B_WAITING)
        return e2b_serve_reply_error(c->out, 400, "build is not in waiting state");
    if (v1 != is_v1)
        return e2b_serve_reply_error(c->out, 400,
                           "build '%s' was requested through the %s API; start it there", bid,
                           is_v1 ? "v1 (POST /templates/{id}/builds/{buildID})" : "v2");
    if (!v1) {
        json_t *reg = json_object_get(body, "fromImageRegistry");
        if (reg && !json_is_null(reg)) {
            const char *type = e2b_json_str(reg, "type");
            if (!type || !STREQ(type, "registry"))
                return e2b_serve_reply_error(
                    c->out, 400,
                    "fromImageRegistry type '%s' is not supported by e2b serve (only "
                    "registry: username and password)",
                    type ? type : "");
            if (!e2b_json_str(reg, "username") || !e2b_json_str(reg, "password"))
                return e2b_serve_reply_error(c->out, 400,
                                   "fromImageRegistry needs a username and a password");
        }
        static const char *const cmds[] = { "startCmd", "readyCmd" };
        for (size_t i = 0; i < 2; i++) {
            json_t *v = json_object_get(body, cmds[i]);
            if (v && !json_is_null(v) && !json_is_string(v))
                return e2b_serve_reply_error(c->out, 400, "%s must be a string", cmds[i]);
        }
        if (e2b_steps_plan(body, &plan, &err) < 0)
            return e2b_serve_reply_fail(c->out, err);
        if (plan.from_template && !STREQ(plan.from_template, "host") &&
            store_find(plan.from_template, NULL, &err) < 0) {
            e2b_serve_reply_error(c->out, 400, "fromTemplate '%s': %s", plan.from_template, err->msg);
            e2b_steps_plan_free(&plan);
            return;
        }
        for (char **cp = plan.copies; cp && *cp; cp++)
            if (check_files(c, *cp, &err) < 0) {
                e2b_steps_plan_free(&plan);
                return e2b_serve_reply_fail(c->out, err);
            }
        e2b_steps_plan_free(&plan);
    }
    pthread_mutex_lock(&c->b->mu);
    t = find_build(c->b, id, bid);
    if (!t || t->state != B_WAITING) {
        pthread_mutex_unlock(&c->b->mu);
        return e2b_serve_reply_error(c->out, 400, "build is not in waiting state");
    }
    if (c->b->n_queue >= MAX_QUEUED) {
        pthread_mutex_unlock(&c->b->mu);
        return e2b_serve_reply_error(
            c->out, 429,
            "you have reached the maximum number of concurrent template builds (%d). Please wait "
            "for existing builds to complete.",
            MAX_QUEUED);
    }
    /* the newer build wins: the template's other builds stop */
    for (struct tbuild *o = c->b->all; o; o = o->next)
        if (o != t && STREQ(o->template_id, t->template_id) &&
            (o->state == B_QUEUED || o->state == B_BUILDING))
            cancel_build(c->b, o,
                         "The build was canceled because it was superseded by a newer one.");
    if (!v1) {
        json_decref(t->start);
        t->start = json_incref(body);
    } else if (body) {
        json_object_update(t->start, body);
    }
    t->state = B_QUEUED;
    c->b->queue = xrealloc(c->b->queue, (c->b->n_queue + 1) * sizeof(*c->b->queue));
    c->b->queue[c->b->n_queue++] = t;
    size_t ahead = c->b->n_queue - 1;
    add_logf(t, "info", NULL, "Build queued%s", ahead ? "" : "");
    if (ahead)
        add_logf(t, "info", NULL, "%zu build%s ahead in the queue", ahead, ahead == 1 ? "" : "s");
    pthread_cond_signal(&c->b->cv);
    pthread_mutex_unlock(&c->b->mu);
    c->out->status = 202;
}

/* A build the store has but this server does not remember: ready, no logs. */
static bool stored_build(const char *id, const char *bid)
{
    struct e2b_store store;
    if (e2b_store_open(&store, NULL) < 0)
        return false;
    _cleanup_json_ json_t *meta = NULL;
    bool found = e2b_store_find(&store, id, &meta, NULL, NULL) == 0;
    _cleanup_free_ char *dir = found ? xasprintf("%s/%s/builds/%s", store.root,
                                                 e2b_json_str(meta, "templateID") ?: id, bid)
                                     : NULL;
    e2b_store_close(&store);
    return found && access(dir, F_OK) == 0;
}

/* GET /templates/{id}/builds/{build}/status */
static void api_status(struct call *c, const char *id, const char *bid)
{
    long long offset, limit;
    _cleanup_free_ char *level = e2b_http1_query_param(c->r->query, "level");
    int min = level ? level_rank(level) : 0;
    if (min < 0)
        return e2b_serve_reply_error(c->out, 400, "level '%s' is not debug, info, warn or error", level);
    if (!e2b_serve_query_num(c->r->query, c->out, "logsOffset", 0, 0, INT32_MAX, &offset) ||
        !e2b_serve_query_num(c->r->query, c->out, "limit", STATUS_LIMIT, 0, STATUS_LIMIT, &limit))
        return;
    pthread_mutex_lock(&c->b->mu);
    struct tbuild *t = find_build(c->b, NULL, bid);
    if (t && !STREQ(t->template_id, id) && !(t->name && STREQ(t->name, id)))
        t = NULL;
    if (!t) {
        pthread_mutex_unlock(&c->b->mu);
        if (stored_build(id, bid)) {
            c->out->status = 200;
            c->out->body = json_pack("{s:s, s:s, s:s, s:[], s:[]}", "templateID", id, "buildID",
                                     bid, "status", "ready", "logs", "logEntries");
            return;
        }
        return e2b_serve_reply_error(c->out, 404, "build '%s' of template '%s' not found", bid, id);
    }
    json_t *entries = json_array();
    for (size_t i = (size_t)offset; i < t->n_logs && (long long)json_array_size(entries) < limit;
         i++)
        if (level_rank(t->logs[i].level) >= min)
            json_array_append_new(entries, log_json(&t->logs[i]));
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:[], s:o}", "templateID", t->template_id, "buildID",
                  t->build_id, "status", state_names[t->state], "logs", "logEntries", entries);
    if (t->state == B_ERROR) {
        json_t *last = json_array();
        size_t from = t->n_logs > REASON_LINES * 4 ? t->n_logs - REASON_LINES * 4 : 0;
        for (size_t i = from; i < t->n_logs; i++)
            if (!t->reason_step || (t->logs[i].step && STREQ(t->logs[i].step, t->reason_step)))
                json_array_append_new(last, log_json(&t->logs[i]));
        while (json_array_size(last) > REASON_LINES)
            json_array_remove(last, 0);
        json_t *reason = json_pack("{s:s, s:o}", "message",
                                   t->reason ? t->reason : "the build failed", "logEntries", last);
        if (t->reason_step)
            json_object_set_new(reason, "step", json_string(t->reason_step));
        json_object_set_new(j, "reason", reason);
    }
    pthread_mutex_unlock(&c->b->mu);
    c->out->status = 200;
    c->out->body = j;
}

/* GET /templates/{id}/builds/{build}/logs?cursor&limit&direction&level&source */
static void api_logs(struct call *c, const char *id, const char *bid)
{
    long long cursor, limit;
    if (!e2b_serve_query_num(c->r->query, c->out, "cursor", 0, 0, INT64_C(999999999999999), &cursor) ||
        !e2b_serve_query_num(c->r->query, c->out, "limit", 100, 1, 1000, &limit))
        return;
    _cleanup_free_ char *dir = e2b_http1_query_param(c->r->query, "direction");
    _cleanup_free_ char *level = e2b_http1_query_param(c->r->query, "level");
    _cleanup_free_ char *source = e2b_http1_query_param(c->r->query, "source");
    if (dir && !STREQ(dir, "forward") && !STREQ(dir, "backward"))
        return e2b_serve_reply_error(c->out, 400, "direction '%s' is not forward or backward", dir);
    if (source && !STREQ(source, "temporary") && !STREQ(source, "persistent"))
        return e2b_serve_reply_error(c->out, 400, "source '%s' is not temporary or persistent", source);
    int min = level ? level_rank(level) : 0;
    if (min < 0)
        return e2b_serve_reply_error(c->out, 400, "level '%s' is not debug, info, warn or error", level);
    bool backward = dir && STREQ(dir, "backward");
    pthread_mutex_lock(&c->b->mu);
    struct tbuild *t = find_build(c->b, NULL, bid);
    if (t && !STREQ(t->template_id, id) && !(t->name && STREQ(t->name, id)))
        t = NULL;
    if (!t) {
        pthread_mutex_unlock(&c->b->mu);
        if (stored_build(id, bid)) {
            c->out->status = 200;
            c->out->body = json_pack("{s:[]}", "logs");
            return;
        }
        return e2b_serve_reply_error(c->out, 404, "build '%s' of template '%s' not found", bid, id);
    }
    bool has_cursor = c->r->query && strstr(c->r->query, "cursor=");
    json_t *logs = json_array();
    for (size_t k = 0; k < t->n_logs && (long long)json_array_size(logs) < limit; k++) {
        const struct logent *l = &t->logs[backward ? t->n_logs - 1 - k : k];
        if (has_cursor && (backward ? l->ms > cursor : l->ms < cursor))
            continue;
        if (level_rank(l->level) < min)
            continue;
        json_array_append_new(logs, log_json(l));
    }
    pthread_mutex_unlock(&c->b->mu);
    c->out->status = 200;
    c->out->body = json_pack("{s:o}", "logs", logs);
}

/* GET /templates/{id}/files/{hash} */
static void api_files(struct call *c, const char *id, const char *hash)
{
    size_t n = strspn(hash, "0123456789abcdef");
    if (n != 64 || hash[n])
        return e2b_serve_reply_error(c->out, 400, "hash '%s' is not the 64 hex digits of a SHA-256", hash);
    _cleanup_free_ char *tid = NULL;
    if (!template_known(c, id, &tid))
        return e2b_serve_reply_error(c->out, 404, "template '%s' not found", id);
    _cleanup_free_ char *dir = e2b_path_join(c->b->files, hash);
    struct stat st;
    if (stat(dir, &st) == 0) {
        c->out->status = 201;
        c->out->body = json_pack("{s:b}", "present", 1);
        return;
    }
    struct upload *u = xcalloc(1, sizeof(*u));
    _cleanup_free_ char *a = e2b_random_id(), *b2 = e2b_random_id();
    snprintf(u->token, sizeof(u->token), "%s%s", a, b2);
    u->hash = xstrdup(hash);
    u->template_id = xstrdup(tid);
    u->expires = e2b_now_ms() + UPLOAD_TTL_MS;
    pthread_mutex_lock(&c->b->mu);
    for (struct upload **p = &c->b->uploads; *p;) { /* the expired ones go */
        struct upload *x = *p;
        if (x->expires < e2b_now_ms() && !x->busy) {
            *p = x->next;
            free(x->hash);
            free(x->template_id);
            free(x);
            continue;
        }
        p = &x->next;
    }
    u->next = c->b->uploads;
    c->b->uploads = u;
    pthread_mutex_unlock(&c->b->mu);
    const char *host = e2b_http1_header(c->r, "Host");
    _cleanup_free_ char *url = xasprintf("http://%s/templates/files/upload/%s",
                                         host && *host ? host : c->o->listen, u->token);
    c->out->status = 201;
    c->out->body = json_pack("{s:b, s:s}", "present", 0, "url", url);
}

/* ---- tags, publishing ---- */

static int with_store(struct e2b_store *s, struct e2b_serve_reply *out)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    if (e2b_store_open(s, &err) < 0) {
        e2b_serve_reply_fail(out, err);
        return -1;
    }
    return 0;
}

static char **tags_of(struct call *c, json_t *body)
{
    json_t *tags = json_object_get(body, "tags");
    if (!json_is_array(tags) || !json_array_size(tags)) {
        e2b_serve_reply_error(c->out, 400, "tags must be a non-empty array of strings");
        return NULL;
    }
    char **v = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
        if (!json_is_string(t)) {
            e2b_strv_free(v);
            e2b_serve_reply_error(c->out, 400, "tags must be a non-empty array of strings");
            return NULL;
        }
        v = e2b_strv_push(v, json_string_value(t));
    }
    return v;
}

/* POST /templates/tags {target, tags}; DELETE /templates/tags {name, tags} */
static void api_tags(struct call *c)
{
    _cleanup_json_ json_t *body = NULL;
    bool post = STREQ(c->r->method, "POST");
    if (!post && !STREQ(c->r->method, "DELETE"))
        return not_allowed(c->r, c->out, "POST, DELETE");
    if (!json_body(c->body, c->out, &body))
        return;
    const char *key = post ? "target" : "name";
    const char *name = e2b_json_str(body, key);
    if (!name || !*name)
        return e2b_serve_reply_error(c->out, 400, "%s is required%s", key, post ? " (\"name:tag\")" : "");
    _cleanup_strv_ char **tags = tags_of(c, body);
    if (!tags)
        return;
    struct e2b_store s;
    if (with_store(&s, c->out) < 0)
        return;
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_free_ char *bid = NULL;
    int r = post ? e2b_store_tag_assign(&s, name, (const char *const *)tags, &bid, &err)
                 : e2b_store_tag_remove(&s, name, (const char *const *)tags, &err);
    e2b_store_close(&s);
    if (r < 0)
        return e2b_serve_reply_fail(c->out, err);
    if (post) {
        c->out->status = 201;
        c->out->body = json_pack("{s:o, s:s}", "tags", strv_json(tags), "buildID", bid);
    } else {
        c->out->status = 204;
    }
}

/* GET /templates/{id}/tags */
static void api_template_tags(struct call *c, const char *id)
{
    struct e2b_store s;
    if (with_store(&s, c->out) < 0)
        return;
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *list = NULL;
    int r = e2b_store_tag_list(&s, id, &list, &err);
    e2b_store_close(&s);
    if (r < 0)
        return e2b_serve_reply_fail(c->out, err);
    c->out->status = 200;
    c->out->body = list;
}

/* PATCH /v2/templates/{id} and /templates/{id} {public} */
static void api_patch(struct call *c, const char *id, bool v2)
{
    _cleanup_json_ json_t *body = NULL;
    if (!json_body(c->body, c->out, &body))
        return;
    json_t *p = json_object_get(body, "public");
    if (p && !json_is_boolean(p))
        return e2b_serve_reply_error(c->out, 400, "public must be true or false");
    struct e2b_store s;
    if (with_store(&s, c->out) < 0)
        return;
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_json_ json_t *meta = NULL;
    int r = p ? e2b_store_set_public(&s, id, json_is_true(p), &meta, &err)
              : e2b_store_find(&s, id, &meta, NULL, &err);
    e2b_store_close(&s);
    if (r < 0)
        return e2b_serve_reply_fail(c->out, err);
    c->out->status = 200;
    if (v2)
        c->out->body = json_pack("{s:O}", "names", json_object_get(meta, "names") ?: json_array());
}

/* DELETE /templates/{id}: its builds stop first; a template that only has
 * builds in flight is gone with them. */
static bool api_delete(struct call *c, const char *id)
{
    _cleanup_json_ json_t *meta = NULL;
    bool stored = store_find(id, &meta, NULL) == 0;
    const char *tid = stored ? e2b_json_str(meta, "templateID") : id;
    bool pending = false;
    pthread_mutex_lock(&c->b->mu);
    for (struct tbuild *t = c->b->all; t; t = t->next)
        if (STREQ(t->template_id, tid) || (t->name && STREQ(t->name, id))) {
            pending = true;
            cancel_build(c->b, t, "The build was canceled because its template was deleted.");
        }
    pthread_mutex_unlock(&c->b->mu);
    if (stored || !pending)
        return false; /* serve-api.c deletes it from the store (or says 404) */
    c->out->status = 204;
    return true;
}

bool e2b_serve_templates(const struct e2b_serve_opts *o, const struct e2b_http1_head *r,
                         const struct strbuf *body, struct e2b_serve_reply *out)
{
    if (!o->builds)
        return false;
    struct call c = { .o = o, .b = o->builds, .r = r, .body = body, .out = out };
    const char *p = r->path, *m = r->method;
    int version = 1;
    if (e2b_str_has_prefix(p, "/v2/"))
        version = 2, p += 3;
    else if (e2b_str_has_prefix(p, "/v3/"))
        version = 3, p += 3;
    if (STREQ(p, "/templates")) {
        if (version == 3)
            return STREQ(m, "POST") ? api_request_v3(&c) : not_allowed(r, out, "POST"), true;
        if (version == 1 && STREQ(m, "POST"))
            return api_request_v1(&c, NULL), true;
        return false;
    }
    if (!e2b_str_has_prefix(p, "/templates/") || version == 3)
        return false;
    p += strlen("/templates/");
    if (STREQ(p, "tags"))
        return api_tags(&c), true;
    if (e2b_str_has_prefix(p, "aliases/"))
        return false;
    /* {id}[/rest] */
    size_t idlen = strcspn(p, "/");
    if (!idlen)
        return false;
    _cleanup_free_ char *id = xstrndup(p, idlen);
    const char *rest = p[idlen] ? p + idlen + 1 : NULL;
    if (!rest) {
        if (STREQ(m, "PATCH"))
            return api_patch(&c, id, version == 2), true;
        if (STREQ(m, "POST") && version == 1)
            return api_request_v1(&c, id), true;
        if (STREQ(m, "DELETE"))
            return api_delete(&c, id);
        return false;
    }
    if (STREQ(rest, "tags"))
        return STREQ(m, "GET") ? api_template_tags(&c, id) : not_allowed(r, out, "GET"), true;
    if (e2b_str_has_prefix(rest, "files/") && version == 1) {
        const char *hash = rest + 6;
        if (strchr(hash, '/'))
            return false;
        return STREQ(m, "GET") ? api_files(&c, id, hash) : not_allowed(r, out, "GET"), true;
    }
    if (e2b_str_has_prefix(rest, "builds/")) {
        const char *b = rest + 7;
        size_t bl = strcspn(b, "/");
        if (!bl)
            return false;
        _cleanup_free_ char *bid = xstrndup(b, bl);
        const char *verb = b[bl] ? b + bl + 1 : "";
        if (!*verb)
            return STREQ(m, "POST") ? api_start(&c, id, bid, version == 1)
                                    : not_allowed(r, out, "POST"),
                   true;
        if (version != 1)
            return false;
        if (STREQ(verb, "status"))
            return STREQ(m, "GET") ? api_status(&c, id, bid) : not_allowed(r, out, "GET"), true;
        if (STREQ(verb, "logs"))
            return STREQ(m, "GET") ? api_logs(&c, id, bid) : not_allowed(r, out, "GET"), true;
    }
    return false;
}

/* ---- uploads ---- */

#define UPLOAD_PREFIX "/templates/files/upload/"

bool e2b_serve_templates_is_upload(const struct e2b_http1_head *r)
{
    return e2b_str_has_prefix(r->path, UPLOAD_PREFIX);
}

/* The upload's token: taken (busy) while its body comes; NULL if unknown. */
static struct upload *upload_take(struct e2b_serve_builds *b, const char *token)
{
    pthread_mutex_lock(&b->mu);
    struct upload *u = b->uploads;
    while (u && strcmp(u->token, token))
        u = u->next;
    if (u && (u->busy || u->expires < e2b_now_ms()))
        u = NULL;
    if (u)
        u->busy = true;
    pthread_mutex_unlock(&b->mu);
    return u;
}

static void upload_done(struct e2b_serve_builds *b, struct upload *u, bool used)
{
    pthread_mutex_lock(&b->mu);
    u->busy = false;
    if (used) {
        for (struct upload **p = &b->uploads; *p; p = &(*p)->next)
            if (*p == u) {
                *p = u->next;
                free(u->hash);
                free(u->template_id);
                free(u);
                break;
            }
    }
    pthread_mutex_unlock(&b->mu);
}

/* Read the body into fd (bounded): 0, -1 (the peer left or stalled), or a status. */
static int read_upload(struct e2b_serve_conn *c, const struct e2b_http1_head *r, int fd,
                       uint64_t max)
{
    struct e2b_http1_body b;
    int st = e2b_http1_body_request(&b, r, max);
    if (st < 0)
        return -st;
    if (b.kind == E2B_BODY_NONE)
        return 400;
    int64_t deadline = e2b_now_ms() + UPLOAD_TIMEOUT_MS;
    struct strbuf payload = STRBUF_INIT;
    for (;;) {
        size_t used = 0;
        int fr = e2b_http1_body_feed(&b, c->in.buf, c->in.len, &used, &payload);
        strbuf_consume(&c->in, used);
        if (payload.len && e2b_write_fd(fd, payload.buf, payload.len, "upload", NULL) < 0) {
            strbuf_release(&payload);
            return 500;
        }
        strbuf_reset(&payload);
        if (fr < 0 || fr == 1) {
            strbuf_release(&payload);
            return fr < 0 ? -fr : 0;
        }
        int f = e2b_serve_conn_fill(c, deadline);
        if (f <= 0) {
            strbuf_release(&payload);
            return f < 0 && errno == ETIMEDOUT ? 408 : -1;
        }
    }
}

bool e2b_serve_templates_upload(struct e2b_serve_conn *c, const struct e2b_http1_head *r,
                                bool close_after)
{
    struct e2b_serve_builds *b = c->o->builds;
    const char *token = r->path + strlen(UPLOAD_PREFIX);
    strbuf_consume(&c->in, r->len);
    if (!b) {
        e2b_serve_fail_and_close(c, 404,
                                 e2b_serve_error_body(404, "no route %s %s", r->method, r->path));
        return false;
    }
    if (!STREQ(r->method, "PUT") && !STREQ(r->method, "POST")) {
        e2b_serve_fail_and_close(c, 405, e2b_serve_error_body(405, "an upload URL takes PUT"));
        return false;
    }
    struct upload *u = upload_take(b, token);
    if (!u) {
        e2b_serve_fail_and_close(
            c, 403,
            e2b_serve_error_body(403, "this upload URL is unknown, used or expired; "
                                      "ask GET /templates/{id}/files/{hash} again"));
        return false;
    }
    _cleanup_free_ char *raw = xasprintf("%s/.upload-%s", b->files, u->token);
    _cleanup_free_ char *tmp = xasprintf("%s/.tmp-%s", b->files, u->token);
    _cleanup_free_ char *final = e2b_path_join(b->files, u->hash);
    _cleanup_close_ int fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    int st = fd < 0 ? 500 : 0;
    /* a client waiting for leave to send (curl -T does, a second long) gets it,
     * unless the body is refused by its size anyway */
    struct e2b_http1_body probe;
    if (st == 0 && e2b_http1_header_has_token(r, "Expect", "100-continue") &&
        e2b_http1_body_request(&probe, r, b->upload_limit) == 0)
        (void)e2b_send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    if (st == 0)
        st = read_upload(c, r, fd, b->upload_limit);
    _cleanup_error_ struct e2b_error *err = NULL;
    if (st == 0) {
        struct e2b_layer_opts lo = { .name = "upload" };
        struct e2b_layer_result lr;
        e2b_rm_rf(tmp, NULL);
        if (mkdir(tmp, 0755) < 0 || e2b_layer_apply(raw, tmp, &lo, &lr, &err) < 0)
            st = 400;
        else if (rename(tmp, final) < 0 && errno != EEXIST && errno != ENOTEMPTY)
            st = 500;
    }
    unlink(raw);
    e2b_rm_rf(tmp, NULL);
    upload_done(b, u, st == 0);
    if (st < 0)
        return false;
    if (st) {
        json_t *body = e2b_serve_error_body(
            st, "%s",
            st == 413   ? "the upload is over the limit of e2b serve (--upload-limit)"
            : st == 408 ? "the upload did not arrive in time"
            : err       ? err->msg
                        : "the upload failed");
        e2b_serve_fail_and_close(c, st, body);
        return false;
    }
    return e2b_serve_respond(c->fd, 200, NULL, NULL, close_after) && !close_after;
}
