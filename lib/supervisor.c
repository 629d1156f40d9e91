/* supervisor.c - see supervisor.h.
 *
 * Processes per sandbox:
 *   supervisor  (double-forked from the CLI, setsid; owns the runtime, the
 *                timeout, the log and the cleanup)
 *     └─ the runtime's process (ns: init, pid 1 of the sandbox; envd below it)
 * The supervisor knows its runtime only through runtime.h.
 */
#include "supervisor.h"
#include "egress.h"
#include "fsutil.h"
#include "process-client.h"
#include "sandbox-state.h"
#include "snapshot-store.h"
#include "strbuf.h"
#include "template-store.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ---- the log ------------------------------------------------------------- */

/* The sandbox's log: JSON lines in sandbox.log, which rotates to
 * sandbox.log.1 at E2B_SANDBOX_LOG_MAX (so at most twice that on the host,
 * whatever envd or the sandbox writes). Only the supervisor writes it. */
static void log_entry_stream(const char *dir, const char *logger, const char *stream, const char *level,
                             const char *msg)
{
    _cleanup_free_ char *ts = e2b_rfc3339(e2b_wall_ms());
    json_t *m = json_string(msg);
    if (!m) { /* not UTF-8: keep it readable as ASCII */
        _cleanup_free_ char *ascii = xstrdup(msg);
        for (char *p = ascii; *p; p++)
            if ((unsigned char)*p >= 0x7f || ((unsigned char)*p < 0x20 && *p != '\t'))
                *p = '?';
        m = json_string(ascii);
    }
    json_t *e = json_pack("{s:s, s:s, s:o, s:{s:s}}", "timestamp", ts, "level", level, "message", m,
                          "fields", "logger", logger);
    if (stream)
        json_object_set_new(json_object_get(e, "fields"), "stream", json_string(stream));
    _cleanup_free_ char *line = e2b_json_dump(e, 0);
    json_decref(e);
    _cleanup_free_ char *p = e2b_path_join(dir, "sandbox.log");
    int fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= E2B_SANDBOX_LOG_MAX) {
        _cleanup_free_ char *old = e2b_path_join(dir, "sandbox.log.1");
        close(fd);
        rename(p, old);
        fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    }
    if (fd >= 0) {
        dprintf(fd, "%s\n", line);
        close(fd);
    }
}

static void sbx_log(const char *dir, const char *level, const char *fmt, ...) _printf_(3, 4);
static void sbx_log(const char *dir, const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    log_entry_stream(dir, "supervisor", NULL, level, msg);
}

/* Output that becomes log entries, one a line (an overlong line in
 * pieces): envd's stdout and stderr, the start command's two streams. */
struct line_buf {
    int fd;
    const char *logger, *stream;
    size_t len;
    char buf[4096];
};

/* false at EOF: the writer (and everything that held its end) is gone */
static bool pump_log(struct line_buf *lb, const char *dir)
{
    ssize_t n = read(lb->fd, lb->buf + lb->len, sizeof(lb->buf) - 1 - lb->len);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN;
    if (n == 0) {
        if (lb->len) {
            lb->buf[lb->len] = '\0';
            log_entry_stream(dir, lb->logger, lb->stream, "info", lb->buf);
        }
        return false;
    }
    lb->len += (size_t)n;
    char *start = lb->buf, *end = lb->buf + lb->len, *nl;
    while ((nl = memchr(start, '\n', (size_t)(end - start)))) {
        *nl = '\0';
        if (nl > start)
            log_entry_stream(dir, lb->logger, lb->stream, "info", start);
        start = nl + 1;
    }
    size_t rest = (size_t)(end - start);
    if (rest == sizeof(lb->buf) - 1) {
        start[rest] = '\0';
        log_entry_stream(dir, lb->logger, lb->stream, "info", start);
        rest = 0;
    }
    memmove(lb->buf, start, rest);
    lb->len = rest;
    return true;
}

/* ---- the template's start and ready commands ------------------------------ */

/* A detached thread with a small stack (it only waits on envd); 0 or an errno. */
static int start_detached(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 << 10);
    int e = pthread_create(&t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return e;
}

/* envd of this sandbox, from its channel and state. */
static void envd_endpoint(const char *base, const char *id, const json_t *state, struct e2b_envd_endpoint *ep)
{
    *ep = (struct e2b_envd_endpoint){.base = xstrdup(base), .sandbox_id = xstrdup(id)};
    if (e2b_json_str(state, "envdAccessToken"))
        ep->access_token = xstrdup(e2b_json_str(state, "envdAccessToken"));
}

/* The template's start command, as E2B runs it when a sandbox starts: in
 * the background through envd (tag "startCmd", the template's user and
 * workdir), its output streamed into the sandbox's log. A thread holds the
 * stream; it writes only to its pipes, the supervisor's loop does the log. */
struct start_cmd {
    struct e2b_envd_endpoint ep;
    char *cmd, *user, *cwd;
    int out_w, err_w;
};

static void *start_cmd_main(void *ud)
{
    struct start_cmd *sc = ud;
    const char *argv[] = {"/bin/sh", "-c", sc->cmd, NULL};
    struct e2b_run_opts o = {.argv = argv, .user = sc->user, .cwd = sc->cwd, .tag = "startCmd",
                             .out_fd = sc->out_w, .err_fd = sc->err_w};
    int code = 0;
    struct e2b_error *err = NULL;
    if (e2b_process_run(&sc->ep, &o, &code, &err) < 0)
        dprintf(sc->err_w, "the start command could not run: %s\n", err ? err->msg : "unknown error");
    else
        dprintf(sc->err_w, "the start command exited with status %d\n", code);
    e2b_error_free(err);
    close(sc->out_w);
    close(sc->err_w);
    return NULL;
}

/* The template's ready command, as E2B's build waits for it (E2B starts
 * sandboxes from a snapshot taken once it succeeded, so a new sandbox's
 * start command is ready): run until it exits 0, retried with a growing
 * pause, for at most READY_CMD_TIMEOUT_S. */
#define READY_CMD_TIMEOUT_S 60

struct ready_cmd {
    struct e2b_envd_endpoint ep;
    json_t *state;
    int result_w; /* "ok\n" or the error message, then closed */
};

static int wait_ready_cmd(const struct e2b_envd_endpoint *ep, const json_t *state, struct e2b_error **err)
{
    const char *argv[] = {"/bin/sh", "-c", e2b_json_str(state, "readyCmd"), NULL};
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    struct e2b_run_opts o = {.argv = argv, .user = e2b_json_str(state, "defaultUser"),
                             .cwd = e2b_json_str(state, "defaultWorkdir"), .tag = "readyCmd",
                             .out_fd = null, .err_fd = null};
    int64_t deadline = e2b_now_ms() + READY_CMD_TIMEOUT_S * 1000;
    int code = -1, pause_ms = 50, r;
    for (;;) {
        _cleanup_error_ struct e2b_error *e = NULL;
        /* one try may take what is left (E2B's CLI makes `sleep 20` a ready command) */
        int64_t left = deadline - e2b_now_ms();
        o.timeout_ms = left > 1000 ? (int)left : 1000;
        r = e2b_process_run(ep, &o, &code, &e);
        if (r < 0 && e->code == E2B_ERR_TIMEOUT) {
            r = e2b_error_set(err, E2B_ERR_TIMEOUT, "the template's ready command did not finish within %d s",
                              READY_CMD_TIMEOUT_S);
            break;
        }
        if (r < 0) {
            e2b_error_set(err, E2B_ERR_GENERIC, "cannot run the template's ready command: %s", e->msg);
            break;
        }
        if (code == 0)
            break;
        if (e2b_now_ms() + pause_ms >= deadline) {
            r = e2b_error_set(err, E2B_ERR_TIMEOUT,
                              "the template's ready command did not succeed within %d s (it exits %d)",
                              READY_CMD_TIMEOUT_S, code);
            break;
        }
        usleep((useconds_t)pause_ms * 1000);
        pause_ms = pause_ms < 1000 ? pause_ms * 2 : 1000;
    }
    if (null >= 0)
        close(null);
    return r;
}

/* In a thread, so the supervisor's loop keeps draining the start command's
 * output (a full pipe would stop it short of ready). */
static void *ready_cmd_main(void *ud)
{
    struct ready_cmd *rc = ud;
    struct e2b_error *err = NULL;
    if (wait_ready_cmd(&rc->ep, rc->state, &err) < 0)
        dprintf(rc->result_w, "%s\n", err ? err->msg : "the ready command failed");
    else
        dprintf(rc->result_w, "ok\n");
    e2b_error_free(err);
    close(rc->result_w);
    json_decref(rc->state);
    e2b_envd_endpoint_release(&rc->ep);
    free(rc);
    return NULL;
}

static int ready_cmd_begin(const char *base, const char *id, const json_t *state, int *ret_result,
                           struct e2b_error **err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return e2b_error_sys(err, errno, "cannot run the ready command");
    struct ready_cmd *rc = xcalloc(1, sizeof(*rc));
    envd_endpoint(base, id, state, &rc->ep);
    rc->state = json_deep_copy(state);
    rc->result_w = p[1];
    int e = start_detached(ready_cmd_main, rc);
    if (e) {
        close(p[0]), close(p[1]);
        json_decref(rc->state);
        e2b_envd_endpoint_release(&rc->ep);
        free(rc);
        return e2b_error_sys(err, e, "cannot run the ready command");
    }
    *ret_result = p[0];
    return 0;
}

/* Start it; *out and *err get the read ends of its output. */
static int start_cmd_begin(const char *base, const char *id, const json_t *state, int *out, int *err_r,
                           struct e2b_error **err)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0)
        return e2b_error_sys(err, errno, "cannot run the start command");
    if (pipe2(pe, O_CLOEXEC) < 0) {
        close(po[0]), close(po[1]);
        return e2b_error_sys(err, errno, "cannot run the start command");
    }
    struct start_cmd *sc = xcalloc(1, sizeof(*sc));
    envd_endpoint(base, id, state, &sc->ep);
    sc->cmd = xstrdup(e2b_json_str(state, "startCmd"));
    sc->user = e2b_json_str(state, "defaultUser") ? xstrdup(e2b_json_str(state, "defaultUser")) : NULL;
    sc->cwd = e2b_json_str(state, "defaultWorkdir") ? xstrdup(e2b_json_str(state, "defaultWorkdir")) : NULL;
    sc->out_w = po[1];
    sc->err_w = pe[1];
    int e = start_detached(start_cmd_main, sc);
    if (e) {
        close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
        return e2b_error_sys(err, e, "cannot run the start command");
    }
    *out = po[0];
    *err_r = pe[0];
    return 0;
}

/* ---- the supervisor ------------------------------------------------------- */

struct supervisor {
    const char *id;
    const char *dir;
    const struct e2b_runtime_ops *rt;
    const json_t *egress; /* its outbound rules, or NULL */
    struct e2b_runtime_run run;
    const char *restore_from;
    bool restore_fallback;
};

static void supervisor_cleanup(struct supervisor *s, const json_t *state, const char *why)
{
    sbx_log(s->dir, "info", "sandbox ends: %s", why);
    if (!json_object_get(state, "savedTo")) /* paused to disk: it goes on there */
        e2b_sandbox_note_end(s->id, why);
    struct e2b_runtime_sandbox sb = {.id = s->id, .dir = s->dir, .state = state};
    s->rt->stop(&sb, &s->run);
    e2b_rm_rf(s->dir, NULL);
}

/* Report to the waiting CLI: "ok" or the error message. */
static void report(int fd, const char *msg)
{
    if (fd < 0)
        return;
    /* One line: the sandbox's processes may inherit this pipe, so the
     * reader cannot wait for EOF. */
    dprintf(fd, "%s\n", msg);
    close(fd);
}

char *e2b_envd_init_body(const char *id, const json_t *state)
{
    json_t *init = json_object();
    json_t *env = json_object();
    json_object_update(env, json_object_get(state, "envVars"));
    json_object_set_new(env, "E2B_SANDBOX", json_string("true"));
    json_object_set_new(env, "E2B_SANDBOX_ID", json_string(id));
    json_object_set_new(env, "E2B_TEMPLATE_ID", json_string(e2b_json_str(state, "templateID")));
    /* Node.js reads its own roots, not the system's: the egress CA for it too */
    if (e2b_json_str(state, "egressCA") && !json_object_get(env, "NODE_EXTRA_CA_CERTS"))
        json_object_set(env, "NODE_EXTRA_CA_CERTS", json_object_get(state, "egressCA"));
    json_object_set_new(init, "envVars", env);
    json_object_set(init, "defaultUser", json_object_get(state, "defaultUser"));
    if (e2b_json_str(state, "defaultWorkdir"))
        json_object_set(init, "defaultWorkdir", json_object_get(state, "defaultWorkdir"));
    /* always said: "" clears the token of a restored envd whose sandbox had one */
    json_object_set_new(init, "accessToken",
                        json_string(e2b_json_str(state, "envdAccessToken") ?: ""));
    _cleanup_free_ char *ts = e2b_rfc3339(e2b_wall_ms());
    json_object_set_new(init, "timestamp", json_string(ts));
    char *body = e2b_json_dump(init, 0);
    json_decref(init);
    return body;
}

static _noreturn_ void supervise(struct supervisor *s, struct e2b_runtime_spec *spec, json_t *state,
                                 int ready_fd)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, NULL);

    s->run = (struct e2b_runtime_run){.pid = -1, .log_fd = -1};
    struct e2b_runtime_sandbox sb = {.id = s->id, .dir = s->dir, .state = state};
    _cleanup_free_ char *envd_base = NULL;
    _cleanup_free_ char *init_body = e2b_envd_init_body(s->id, state);
    spec->envd_init = init_body;
    /* the template build stays in the store while this sandbox runs from it */
    if (e2b_store_pin(spec->rootfs_tree ? spec->rootfs_tree : spec->rootfs_image, &err) < 0)
        goto fail;
    /* and the snapshot it was restored from (its disk may be this one's backing) */
    if (e2b_json_str(state, "fromSnapshot") &&
        e2b_snapshot_pin(e2b_json_str(state, "fromSnapshot"), &err) < 0)
        goto fail;
    /* From here the sandbox exists; it is fully set up once envd listens
     * (with its /init applied). */
    bool restored = false;
    if (s->restore_from && s->rt->restore) {
        int64_t t0 = e2b_now_ms();
        restored = s->rt->restore(&sb, spec, s->restore_from, &s->run, &err) == 0;
        if (restored) {
            sbx_log(s->dir, "info", "restored from %s in %lld ms", s->restore_from,
                    (long long)(e2b_now_ms() - t0));
        } else if (s->restore_fallback) {
            sbx_log(s->dir, "warn",
                    "cannot start from the template's snapshot, so it boots afresh: %s",
                    err ? err->msg : "unknown error");
            s->rt->stop(&sb, &s->run);
            s->run = (struct e2b_runtime_run){ .pid = -1, .log_fd = -1 };
            e2b_error_free(err);
            err = NULL;
        } else {
            goto fail;
        }
    }
    if ((!restored && s->rt->start(&sb, spec, &s->run, &err) < 0) ||
        s->rt->envd_channel(&sb, &envd_base, &err) < 0)
        goto fail;
    {
        /* on what is there now: a set-timeout may have come while it started */
        int lk = e2b_sandbox_state_lock(s->dir);
        json_t *cur = NULL;
        if (lk >= 0 && e2b_sandbox_state_read(s->dir, &cur, NULL) == 0) {
            json_decref(state);
            state = cur;
        }
        json_object_set_new(state, "state", json_string("running"));
        json_object_set_new(state, "initPid", json_integer(s->run.pid));
        int r = lk < 0 ? e2b_error_sys(&err, errno, "cannot lock the state of sandbox '%s'", s->id)
                       : e2b_sandbox_state_write(s->dir, state, &err);
        if (lk >= 0)
            close(lk);
        if (r < 0)
            goto fail;
    }
    /* the rules hold before anyone but us has the sandbox */
    if (s->egress && e2b_egress_apply(s->dir, s->run.pid, spec->unprivileged, s->egress, &err) < 0)
        goto fail;
    sbx_log(s->dir, "info", "sandbox started from template '%s'", e2b_json_str(state, "templateID"));
    /* Output to the log: envd's, and the start command's when the template has one. */
    struct line_buf *logs = xcalloc(3, sizeof(*logs));
    logs[0] = (struct line_buf){.fd = s->run.log_fd, .logger = "envd"};
    logs[1] = (struct line_buf){.fd = -1, .logger = "startCmd", .stream = "stdout"};
    logs[2] = (struct line_buf){.fd = -1, .logger = "startCmd", .stream = "stderr"};
    /* restored: they ran before the save, and the start command runs on in it */
    if (!restored && e2b_json_str(state, "startCmd") && *e2b_json_str(state, "startCmd")) {
        sbx_log(s->dir, "info", "start command: %s", e2b_json_str(state, "startCmd"));
        if (start_cmd_begin(envd_base, s->id, state, &logs[1].fd, &logs[2].fd, &err) < 0)
            goto fail;
    }
    /* "ok" to the CLI now, or once the ready command succeeds */
    int ready_result = -1;
    if (!restored && e2b_json_str(state, "readyCmd") && *e2b_json_str(state, "readyCmd")) {
        if (ready_cmd_begin(envd_base, s->id, state, &ready_result, &err) < 0)
            goto fail;
    } else {
        report(ready_fd, "ok");
        ready_fd = -1;
    }

    /* Wait for the end: the deadline (unless paused), a kill, or the end
     * of the runtime's process; meanwhile the output goes to the log. At
     * the deadline the sandbox is killed, or paused when its lifecycle
     * says so (autoPause). */
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    bool reload = false;
    for (;;) {
        if (reload) {
            json_t *cur = NULL;
            int lk = e2b_sandbox_state_lock(s->dir);
            if (e2b_sandbox_state_read(s->dir, &cur, NULL) == 0) {
                json_decref(state);
                state = cur;
            }
            if (lk >= 0)
                close(lk);
            reload = false;
            if (json_object_get(state, "savedTo")) { /* paused to disk: what ran here goes */
                supervisor_cleanup(s, state, "paused to disk");
                _exit(0);
            }
        }
        bool paused = STREQ(e2b_json_str(state, "state") ? e2b_json_str(state, "state") : "", "paused");
        int64_t left = e2b_json_int(state, "deadlineBootMs", 0) - e2b_boot_ms();
        if (!paused && left <= 0) {
            if (ready_fd >= 0) { /* still waiting for the ready command */
                e2b_error_set(&err, E2B_ERR_TIMEOUT,
                              "the sandbox's timeout ended before the template's ready command succeeded");
                goto fail;
            }
            if (!STREQ(e2b_json_str(json_object_get(state, "lifecycle"), "onTimeout") ?: "kill", "pause")) {
                supervisor_cleanup(s, state, "timeout");
                _exit(0);
            }
            _cleanup_error_ struct e2b_error *perr = NULL;
            if (e2b_sandbox_pause(s->id, false, NULL, &perr) < 0) {
                sbx_log(s->dir, "error", "cannot pause at the timeout: %s", perr->msg);
                supervisor_cleanup(s, state, "timeout");
                _exit(0);
            }
            sbx_log(s->dir, "info", "paused at the timeout (lifecycle onTimeout: pause)");
            reload = true;
            continue;
        }
        struct pollfd p[5] = {{.fd = sfd, .events = POLLIN}};
        for (int i = 0; i < 3; i++)
            p[i + 1] = (struct pollfd){.fd = logs[i].fd, .events = POLLIN}; /* -1: ignored */
        p[4] = (struct pollfd){.fd = ready_result, .events = POLLIN};
        /* re-read the state at the deadline: it may have moved without a signal reaching us */
        int n = poll(p, 5, paused ? 3600 * 1000 : (int)(left < 3600 * 1000 ? left : 3600 * 1000));
        if (n == 0) {
            reload = true;
            continue;
        }
        if (n < 0)
            continue;
        if (p[4].revents) {
            char msg[1024];
            ssize_t m = read(ready_result, msg, sizeof(msg) - 1);
            msg[m > 0 ? m : 0] = '\0';
            msg[strcspn(msg, "\n")] = '\0';
            close(ready_result);
            ready_result = -1;
            if (!STREQ(msg, "ok")) {
                e2b_error_set(&err, E2B_ERR_GENERIC, "%s", *msg ? msg : "the ready command failed");
                goto fail;
            }
            sbx_log(s->dir, "info", "ready command succeeded: %s", e2b_json_str(state, "readyCmd"));
            report(ready_fd, "ok");
            ready_fd = -1;
        }
        for (int i = 0; i < 3; i++)
            if (p[i + 1].revents && !pump_log(&logs[i], s->dir)) {
                close(logs[i].fd);
                logs[i].fd = -1;
            }
        if (!(p[0].revents & POLLIN))
            continue;
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
            continue;
        int sig = (int)si.ssi_signo;
        if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
            supervisor_cleanup(s, state, "killed");
            _exit(0);
        }
        if (sig == SIGCHLD) {
            int status;
            pid_t w;
            while ((w = waitpid(-1, &status, WNOHANG)) > 0)
                if (w == s->run.pid) {
                    struct e2b_runtime_sandbox esb = {.id = s->id, .dir = s->dir, .state = state};
                    _cleanup_free_ char *why = s->rt->ended(&esb, &s->run, status);
                    s->run.pid = -1;
                    while (logs[0].fd >= 0 && pump_log(&logs[0], s->dir)) /* envd's last words */
                        ;
                    supervisor_cleanup(s, state, why);
                    _exit(0);
                }
        }
        reload = true; /* SIGUSR1: the state changed */
    }

fail:
    sbx_log(s->dir, "error", "cannot start: %s", err ? err->msg : "unknown error");
    report(ready_fd, err ? err->msg : "unknown error");
    supervisor_cleanup(s, state, "start failed");
    _exit(1);
}

/* ---- starting it ------------------------------------------------------------ */

/* In the supervisor, just forked: no terminal, its own log, our signals
 * back to default, nothing of the creator's but the pipe (fd 3) and the
 * sandbox's lock (fd 4). */
static _noreturn_ void supervisor_main(const struct e2b_supervisor_args *a, int report_fd)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    _cleanup_free_ char *logp = xasprintf("%s/supervisor.log", a->dir);
    int log = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    dup2(null, 0), dup2(log >= 0 ? log : null, 1), dup2(log >= 0 ? log : null, 2);
    /* A server's listening socket or its clients' connections must not
     * live on in every sandbox it made. The pipe and the lock are moved up
     * first, so one dup cannot overwrite the other. */
    int rep = fcntl(report_fd, F_DUPFD_CLOEXEC, 100), lk4 = fcntl(a->lock_fd, F_DUPFD_CLOEXEC, 100);
    if (rep < 0 || lk4 < 0 || dup3(rep, 3, O_CLOEXEC) < 0 || dup3(lk4, 4, O_CLOEXEC) < 0)
        _exit(1);
    close_range(5, ~0U, 0);
    signal(SIGPIPE, SIG_IGN);
    int lk = e2b_sandbox_state_lock(a->dir);
    json_object_set_new(a->state, "supervisorPid", json_integer(getpid()));
    e2b_sandbox_state_write(a->dir, a->state, NULL);
    if (lk >= 0)
        close(lk);
    struct supervisor s = { .id = a->id,
                            .dir = a->dir,
                            .rt = a->rt,
                            .egress = a->egress,
                            .restore_from = a->restore_from,
                            .restore_fallback = a->restore_fallback };
    supervise(&s, a->spec, json_incref(a->state), 3);
}

int e2b_supervisor_start(const struct e2b_supervisor_args *a, struct e2b_error **err)
{
    int pipefd[2];
    pid_t middle = -1;
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        e2b_error_sys(err, errno, "cannot start sandbox");
    } else {
        fflush(NULL);
        middle = fork();
        if (middle < 0) {
            e2b_error_sys(err, errno, "cannot start sandbox");
            close(pipefd[0]), close(pipefd[1]);
        }
    }
    if (middle < 0) { /* nothing started */
        e2b_rm_rf(a->dir, NULL);
        close(a->lock_fd);
        return -1;
    }
    if (middle == 0) {
        close(pipefd[0]);
        setsid();
        pid_t sup = fork();
        if (sup != 0)
            _exit(sup < 0 ? 1 : 0);
        supervisor_main(a, pipefd[1]);
    }
    close(pipefd[1]);
    while (waitpid(middle, NULL, 0) < 0 && errno == EINTR)
        ;
    /* Wait for the supervisor's word: "ok" or why not. */
    struct strbuf msg = STRBUF_INIT;
    struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
    int64_t deadline = e2b_now_ms() + E2B_RUNTIME_READY_MS + 5000 +
                       (e2b_json_str(a->state, "readyCmd") ? READY_CMD_TIMEOUT_S * 1000 : 0);
    for (;;) {
        int64_t left = deadline - e2b_now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        char buf[512];
        ssize_t n = read(pipefd[0], buf, sizeof(buf));
        if (n <= 0)
            break;
        strbuf_add(&msg, buf, (size_t)n);
        if (memchr(buf, '\n', (size_t)n))
            break;
    }
    close(pipefd[0]);
    close(a->lock_fd); /* the supervisor holds the sandbox from here */
    strbuf_rtrim(&msg);
    int r = 0;
    if (!STREQ(msg.buf, "ok"))
        r = e2b_error_set(err, E2B_ERR_GENERIC, "cannot start sandbox from '%s': %s", a->spec->template_name,
                          msg.len ? msg.buf : "the supervisor died");
    strbuf_release(&msg);
    return r;
}
