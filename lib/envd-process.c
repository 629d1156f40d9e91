/* envd-process.c - see envd-process.h */
#include "envd-process.h"
#include "envd-crypto.h"
#include "envd-fs.h"
#include "strbuf.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

#define STD_CHUNK (32 * 1024)
#define PTY_CHUNK (16 * 1024)
/* After a process exits, read at most this much more (descendants may keep
 * its pipes open and writing). */
#define DRAIN_MAX (16 * 1024 * 1024)
/* Stop reading a process's output while a client has this much unsent. */
#define BACKLOG_MAX (2 * 1024 * 1024)
/* Input accepted for a process and not yet taken by it. Past this, SendInput
 * replies wait (up to this much more, then resource_exhausted) and
 * StreamInput stops reading its body until the process reads. */
#define INBUF_MAX (1024 * 1024)
/* One StreamInput message at most (like a unary body). */
#define INPUT_FRAME_MAX (16 * 1024 * 1024)

struct proc;
struct sin;

struct sub {
    struct e2b_rpc_stream *s;
    struct proc *p;
    struct sub *next;
    bool is_start;
};

/* Someone waiting for room in a process's stdin buffer: a SendInput whose
 * reply (and data) waits, or a paused StreamInput. */
struct in_wait {
    struct in_wait *next;
    struct proc *p;
    struct e2b_http_req *req;
    uint8_t *data;
    size_t len;
    struct sin *sin;
};

struct proc {
    struct proc *next;
    pid_t pid;
    char *tag;
    json_t *config;
    bool pty;
    int in_fd, out_fd, err_fd;
    struct event *out_ev, *err_ev, *in_ev, *timeout_ev;
    struct event *resume_ev; /* output goes on after a slow client drained */
    struct evbuffer *inbuf;
    bool close_in_after_flush;
    bool in_pumping;
    struct in_wait *waiters;
    size_t waiting_bytes; /* data held by SendInput waiters */
    struct sub *subs;
    bool paused;
    bool exited;
    int wstatus;
    size_t drained; /* output read after the exit */
    struct timespec started; /* for the -v log: how long it ran */
};

static struct proc *procs;
static struct event_base *loop;
static struct event *sigchld_ev;

size_t e2b_process_count(void)
{
    size_t n = 0;
    for (struct proc *p = procs; p; p = p->next)
        n++;
    return n;
}

/* ---- environment ---- */

static char **env_set(char **env, const char *k, const char *v)
{
    size_t kl = strlen(k);
    for (char **e = env; e && *e; e++)
        if (strncmp(*e, k, kl) == 0 && (*e)[kl] == '=') {
            free(*e);
            *e = xasprintf("%s=%s", k, v);
            return env;
        }
    _cleanup_free_ char *kv = xasprintf("%s=%s", k, v);
    return e2b_strv_push(env, kv);
}

char **e2b_process_env(const struct e2b_user *u, const json_t *extra)
{
    char **env = xcalloc(1, sizeof(char *));
    const char *path = getenv("PATH");
    env = env_set(env, "PATH", path && *path ? path : E2B_ENVD_DEFAULT_PATH);
    env = env_set(env, "HOME", u->home);
    env = env_set(env, "USER", u->name);
    env = env_set(env, "LOGNAME", u->name);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)e2b_envd.env, k, v) if (json_is_string(v)) env = env_set(env, k, json_string_value(v));
    json_object_foreach((json_t *)extra, k, v) if (json_is_string(v)) env = env_set(env, k, json_string_value(v));
    return env;
}

static const char *env_get(char **env, const char *k)
{
    size_t kl = strlen(k);
    for (char **e = env; e && *e; e++)
        if (strncmp(*e, k, kl) == 0 && (*e)[kl] == '=')
            return *e + kl + 1;
    return NULL;
}

/* Find cmd on the child's PATH (as the user would). */
static char *lookup_cmd(const char *cmd, char **env)
{
    if (strchr(cmd, '/'))
        return xstrdup(cmd);
    const char *path = env_get(env, "PATH");
    if (!path)
        path = E2B_ENVD_DEFAULT_PATH;
    for (const char *p = path;;) {
        const char *c = strchr(p, ':');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        char *cand = xasprintf("%.*s/%s", (int)l, l ? p : ".", cmd);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
            return cand;
        free(cand);
        if (!c)
            break;
        p = c + 1;
    }
    return xstrdup(cmd); /* execve reports ENOENT */
}

/* ---- events to subscribers ---- */

static json_t *event_msg(const char *kind, json_t *body)
{
    return json_pack("{s:{s:o}}", "event", kind, body);
}

static void broadcast(struct proc *p, json_t *msg)
{
    for (struct sub *s = p->subs; s; s = s->next)
        e2b_rpc_stream_send(s->s, json_incref(msg));
    json_decref(msg);
}

static void resume_output(void *arg);

static void unlink_sub(struct sub *s)
{
    struct proc *p = s->p;
    for (struct sub **pp = &p->subs; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    free(s);
    resume_output(p);
}

static void sub_gone(struct e2b_rpc_stream *st, int reason, void *arg)
{
    (void)st;
    struct sub *s = arg;
    struct proc *p = s->p;
    bool kill_it = s->is_start && reason == RPC_DEADLINE_EXCEEDED;
    unlink_sub(s);
    if (kill_it && !p->exited)
        kill(-p->pid, SIGKILL) < 0 ? (void)kill(p->pid, SIGKILL) : (void)0;
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct proc *p = arg;
    /* The Start stream ends with deadline_exceeded (its own timer); the
     * process dies whether or not anyone is still attached. */
    for (struct sub *s = p->subs, *next; s; s = next) {
        next = s->next;
        if (s->is_start) {
            struct e2b_rpc_stream *st = s->s;
            unlink_sub(s);
            e2b_rpc_stream_end(st, RPC_DEADLINE_EXCEEDED, "process timed out");
        }
    }
    if (!p->exited)
        kill(-p->pid, SIGKILL) < 0 ? (void)kill(p->pid, SIGKILL) : (void)0;
}

static void add_sub(struct proc *p, struct e2b_http_req *req, bool is_start)
{
    struct sub *s = xcalloc(1, sizeof(*s));
    s->p = p;
    s->is_start = is_start;
    s->s = e2b_rpc_stream_start(req, event_msg("keepalive", json_object()), sub_gone, s);
    e2b_rpc_stream_set_drain_cb(s->s, resume_output, p);
    s->next = p->subs;
    p->subs = s;
    e2b_rpc_stream_send(s->s, event_msg("start", json_pack("{s:i}", "pid", (int)p->pid)));
}

/* ---- output ---- */

static void close_out(struct proc *p, int *fd, struct event **ev)
{
    if (*ev) {
        event_free(*ev);
        *ev = NULL;
    }
    if (*fd >= 0) {
        if (p->pty && *fd == p->in_fd)
            p->in_fd = -1;
        close(*fd);
        *fd = -1;
    }
}

/* Read one chunk; returns bytes read, 0 at EOF, -1 when nothing now. */
static ssize_t pump(struct proc *p, int fd, const char *kind)
{
    char buf[STD_CHUNK];
    ssize_t n = read(fd, buf, p->pty ? PTY_CHUNK : STD_CHUNK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return -1;
    if (n <= 0)
        return 0; /* EOF, or EIO on a PTY whose slave side is gone */
    _cleanup_free_ char *b64 = e2b_base64_encode(buf, (size_t)n, true);
    broadcast(p, event_msg("data", json_pack("{s:s}", kind, b64)));
    return n;
}

static void maybe_finish(struct proc *p);

/* Flow control: a client with more than BACKLOG_MAX unsent pauses the
 * reads (the process then blocks on a full pipe); its drain resumes them. */
static bool backlogged(const struct proc *p)
{
    for (struct sub *s = p->subs; s; s = s->next)
        if (e2b_rpc_stream_pending(s->s) > BACKLOG_MAX)
            return true;
    return false;
}

static void pause_output(struct proc *p)
{
    p->paused = true;
    if (p->out_ev)
        event_del(p->out_ev);
    if (p->err_ev)
        event_del(p->err_ev);
}

/* A client drained or left. Resume from the loop, not from inside the
 * stream callback: the caller may be walking p->subs, and finishing may
 * free p. */
static void resume_output(void *arg)
{
    struct proc *p = arg;
    if (p->paused && !backlogged(p))
        event_active(p->resume_ev, EV_TIMEOUT, 0);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct proc *p = arg;
    if (!p->paused || backlogged(p))
        return;
    p->paused = false;
    if (p->exited) {
        maybe_finish(p); /* go on draining what it left */
        return;
    }
    if (p->out_ev)
        event_add(p->out_ev, NULL);
    if (p->err_ev)
        event_add(p->err_ev, NULL);
}

static void on_output(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct proc *p = arg;
    bool is_err = fd == p->err_fd;
    ssize_t n = pump(p, fd, p->pty ? "pty" : is_err ? "stderr" : "stdout");
    if (n > 0 && backlogged(p))
        pause_output(p);
    if (n == 0) {
        if (is_err)
            close_out(p, &p->err_fd, &p->err_ev);
        else
            close_out(p, &p->out_fd, &p->out_ev);
        maybe_finish(p);
    }
}

static const char *signame(int sig)
{
    switch (sig) { /* Go's names, as upstream's status strings use them */
    case SIGHUP: return "hangup";
    case SIGINT: return "interrupt";
    case SIGQUIT: return "quit";
    case SIGILL: return "illegal instruction";
    case SIGTRAP: return "trace/breakpoint trap";
    case SIGABRT: return "aborted";
    case SIGBUS: return "bus error";
    case SIGFPE: return "floating point exception";
    case SIGKILL: return "killed";
    case SIGUSR1: return "user defined signal 1";
    case SIGSEGV: return "segmentation fault";
    case SIGUSR2: return "user defined signal 2";
    case SIGPIPE: return "broken pipe";
    case SIGALRM: return "alarm clock";
    case SIGTERM: return "terminated";
    default: return NULL;
    }
}

static void fail_waiters(struct proc *p, const char *why);

static void proc_free(struct proc *p)
{
    for (struct proc **pp = &procs; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    fail_waiters(p, "the process exited before reading its input");
    close_out(p, &p->out_fd, &p->out_ev);
    close_out(p, &p->err_fd, &p->err_ev);
    if (p->in_ev)
        event_free(p->in_ev);
    if (p->timeout_ev)
        event_free(p->timeout_ev);
    if (p->resume_ev)
        event_free(p->resume_ev);
    if (p->in_fd >= 0)
        close(p->in_fd);
    if (p->inbuf)
        evbuffer_free(p->inbuf);
    json_decref(p->config);
    free(p->tag);
    free(p);
}

static void finish(struct proc *p)
{
    int st = p->wstatus;
    json_t *end = json_object();
    _cleanup_free_ char *status = NULL;
    if (WIFEXITED(st)) {
        if (WEXITSTATUS(st))
            json_object_set_new(end, "exitCode", json_integer(WEXITSTATUS(st)));
        json_object_set_new(end, "exited", json_true());
        status = xasprintf("exit status %d", WEXITSTATUS(st));
    } else {
        int sig = WTERMSIG(st);
        const char *nm = signame(sig);
        json_object_set_new(end, "exitCode", json_integer(-1));
        status = nm ? xasprintf("signal: %s%s", nm, WCOREDUMP(st) ? " (core dumped)" : "")
                    : xasprintf("signal: signal %d%s", sig, WCOREDUMP(st) ? " (core dumped)" : "");
    }
    json_object_set_new(end, "status", json_string(status));
    if (e2b_envd.verbose) { /* a CI log then shows which process took how long */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double secs = (double)(now.tv_sec - p->started.tv_sec) + (double)(now.tv_nsec - p->started.tv_nsec) / 1e9;
        size_t nsubs = 0;
        for (struct sub *s = p->subs; s; s = s->next)
            nsubs++;
        fprintf(stderr, "envd: process %d ended after %.3f s: %s (%zu stream%s)\n", (int)p->pid, secs, status,
                nsubs, nsubs == 1 ? "" : "s");
    }
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        json_object_set_new(end, "error", json_string(status));
    broadcast(p, event_msg("end", end));
    while (p->subs) {
        struct sub *s = p->subs;
        p->subs = s->next;
        e2b_rpc_stream_end(s->s, RPC_OK, NULL);
        free(s);
    }
    proc_free(p);
}

static void maybe_finish(struct proc *p)
{
    if (!p->exited || p->paused)
        return;
    /* Send what the process wrote before it exited (all of it is in the
     * pipes now), no faster than the slowest client takes it. Do not wait
     * for descendants that still hold the pipes: "nothing now" is the end. */
    int *fds[2] = {&p->out_fd, &p->err_fd};
    for (int i = 0; i < 2; i++)
        while (*fds[i] >= 0 && p->drained < DRAIN_MAX) {
            if (backlogged(p)) {
                pause_output(p); /* on_resume comes back here */
                return;
            }
            ssize_t n = pump(p, *fds[i], p->pty ? "pty" : i ? "stderr" : "stdout");
            if (n <= 0)
                break;
            p->drained += (size_t)n;
        }
    finish(p);
}

static void on_sigchld(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (struct proc *p = procs; p; p = p->next)
            if (p->pid == pid && !p->exited) {
                p->exited = true;
                p->wstatus = st;
                maybe_finish(p);
                break;
            }
    }
}

int e2b_process_init(struct event_base *base, struct e2b_error **err)
{
    loop = base;
    sigchld_ev = evsignal_new(base, SIGCHLD, on_sigchld, NULL);
    if (!sigchld_ev || event_add(sigchld_ev, NULL) < 0)
        return e2b_error_set(err, E2B_ERR_GENERIC, "cannot watch SIGCHLD");
    return 0;
}

void e2b_process_shutdown(void)
{
    for (struct proc *p = procs; p; p = p->next)
        if (!p->exited)
            kill(-p->pid, SIGKILL) < 0 ? (void)kill(p->pid, SIGKILL) : (void)0;
    while (procs) {
        struct proc *p = procs;
        while (p->subs) {
            struct sub *s = p->subs;
            p->subs = s->next;
            e2b_rpc_stream_end(s->s, RPC_UNAVAILABLE, "envd is shutting down");
            free(s);
        }
        proc_free(p);
    }
    if (sigchld_ev)
        event_free(sigchld_ev);
    sigchld_ev = NULL;
}

/* ---- input ---- */

static void on_input_writable(evutil_socket_t fd, short what, void *arg);
static void sin_resume(struct sin *s);

static bool stdin_open(const struct proc *p) { return p->in_fd >= 0 && !p->close_in_after_flush; }
static bool input_full(const struct proc *p) { return evbuffer_get_length(p->inbuf) >= INBUF_MAX; }

/* Write what the pipe takes now; arm the write event for the rest. */
static void write_pending(struct proc *p)
{
    while (p->in_fd >= 0 && evbuffer_get_length(p->inbuf) > 0) {
        ssize_t n = evbuffer_write(p->inbuf, p->in_fd);
        if (n >= 0)
            continue;
        if (errno == EAGAIN || errno == EINTR) {
            if (!p->in_ev)
                p->in_ev = event_new(loop, p->in_fd, EV_WRITE, on_input_writable, p);
            event_add(p->in_ev, NULL);
            return;
        }
        /* The reader is gone (it closed its stdin): nothing more can go in. */
        evbuffer_drain(p->inbuf, evbuffer_get_length(p->inbuf));
        if (!p->pty) {
            if (p->in_ev) {
                event_free(p->in_ev);
                p->in_ev = NULL;
            }
            close(p->in_fd);
            p->in_fd = -1;
        }
    }
}

static void waiter_unlink(struct in_wait *w)
{
    struct proc *p = w->p;
    for (struct in_wait **pp = &p->waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    if (w->req)
        p->waiting_bytes -= w->len;
}

/* Let waiters in while there is room; true when any came in. */
static bool admit_waiters(struct proc *p)
{
    bool any = false;
    while (p->waiters && !input_full(p) && stdin_open(p)) {
        struct in_wait *w = p->waiters;
        waiter_unlink(w);
        any = true;
        if (w->req) {
            evbuffer_add(p->inbuf, w->data, w->len);
            e2b_http_set_close_cb(w->req, NULL, NULL);
            e2b_rpc_reply(w->req, json_object());
            free(w->data);
            free(w);
        } else {
            struct sin *s = w->sin;
            free(w);
            sin_resume(s); /* may add input, or wait again at the tail */
        }
    }
    return any;
}

/* Move input towards the process and admit waiters as room appears. */
static void pump_input(struct proc *p)
{
    if (p->in_pumping)
        return; /* the outer call goes on */
    p->in_pumping = true;
    do
        write_pending(p);
    while (admit_waiters(p));
    p->in_pumping = false;
    if (p->close_in_after_flush && p->in_fd >= 0 && !p->pty && evbuffer_get_length(p->inbuf) == 0) {
        if (p->in_ev) {
            event_free(p->in_ev);
            p->in_ev = NULL;
        }
        close(p->in_fd);
        p->in_fd = -1;
    }
    if (!stdin_open(p))
        fail_waiters(p, "stdin was closed");
}

static void on_input_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump_input(arg);
}

static int write_input(struct proc *p, const uint8_t *data, size_t len, struct e2b_error **err)
{
    if (!stdin_open(p))
        return e2b_error_set(err, E2B_ERR_INVALID, "stdin of process %d is not open", (int)p->pid);
    evbuffer_add(p->inbuf, data, len);
    pump_input(p);
    return 0;
}

static void waiter_gone(struct e2b_http_req *req, void *arg)
{
    (void)req;
    struct in_wait *w = arg;
    waiter_unlink(w);
    free(w->data);
    free(w);
}

static struct in_wait *wait_for_room(struct proc *p, struct e2b_http_req *req, uint8_t *data, size_t len,
                                     struct sin *s)
{
    struct in_wait *w = xcalloc(1, sizeof(*w));
    w->p = p;
    w->req = req;
    w->data = data;
    w->len = len;
    w->sin = s;
    struct in_wait **tail = &p->waiters;
    while (*tail)
        tail = &(*tail)->next;
    *tail = w;
    if (req) {
        p->waiting_bytes += len;
        e2b_http_set_close_cb(req, waiter_gone, w);
    }
    return w;
}

/* Stdin closed or the process is gone: nobody waits any more. */
static void fail_waiters(struct proc *p, const char *why)
{
    while (p->waiters) {
        struct in_wait *w = p->waiters;
        waiter_unlink(w);
        if (w->req) {
            e2b_http_set_close_cb(w->req, NULL, NULL);
            e2b_rpc_error(w->req, RPC_FAILED_PRECONDITION, "process %d: %s", (int)p->pid, why);
            free(w->data);
            free(w);
        } else {
            struct sin *s = w->sin;
            free(w);
            sin_resume(s); /* its next message fails */
        }
    }
}

/* ---- selectors ---- */

static struct proc *find_proc(const json_t *sel, int *code, char **msg)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    uint32_t pid = 0;
    bool has_pid = false;
    const char *tag = NULL;
    if (!sel || e2b_pj_u32(sel, "pid", NULL, &pid, &has_pid, &err) < 0 ||
        e2b_pj_str(sel, "tag", NULL, &tag, &err) < 0) {
        *code = RPC_INVALID_ARGUMENT;
        *msg = xstrdup(err ? err->msg : "process selector is required");
        return NULL;
    }
    if (!has_pid && !tag) {
        *code = RPC_INVALID_ARGUMENT;
        *msg = xstrdup("process selector needs a pid or a tag");
        return NULL;
    }
    for (struct proc *p = procs; p; p = p->next) {
        if (p->exited)
            continue;
        if (has_pid ? p->pid == (pid_t)pid : (p->tag && STREQ(p->tag, tag)))
            return p;
    }
    *code = RPC_NOT_FOUND;
    *msg = has_pid ? xasprintf("process with pid %u not found", pid) : xasprintf("process with tag '%s' not found", tag);
    return NULL;
}

/* Parse {process: selector} and find it; replies on failure. */
static struct proc *req_proc(struct e2b_http_req *req, json_t *msg, bool stream)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *sel = NULL;
    if (e2b_pj_obj(msg, "process", NULL, &sel, &err) < 0) {
        if (stream)
            e2b_envd_stream_error(req, RPC_INVALID_ARGUMENT, "%s", err->msg);
        else
            e2b_rpc_error(req, RPC_INVALID_ARGUMENT, "%s", err->msg);
        return NULL;
    }
    int code;
    _cleanup_free_ char *m = NULL;
    struct proc *p = find_proc(sel, &code, &m);
    if (!p) {
        if (stream)
            e2b_envd_stream_error(req, code, "%s", m);
        else
            e2b_rpc_error(req, code, "%s", m);
    }
    return p;
}

/* ---- start ---- */

struct start_opts {
    const char *cmd;
    json_t *args, *envs;
    const char *cwd;
    bool pty;
    uint32_t cols, rows;
    const char *tag;
    bool stdin_on;
};

static int parse_start(json_t *msg, struct start_opts *o, struct e2b_error **err)
{
    json_t *proc = NULL, *pty = NULL;
    o->stdin_on = true;
    o->cols = 80;
    o->rows = 24;
    if (e2b_pj_obj(msg, "process", NULL, &proc, err) < 0 || e2b_pj_obj(msg, "pty", NULL, &pty, err) < 0 ||
        e2b_pj_str(msg, "tag", NULL, &o->tag, err) < 0 || e2b_pj_bool(msg, "stdin", NULL, &o->stdin_on, err) < 0)
        return -1;
    if (!proc)
        return e2b_error_set(err, E2B_ERR_INVALID, "process config is required");
    o->cmd = NULL;
    if (e2b_pj_str(proc, "cmd", NULL, &o->cmd, err) < 0 || e2b_pj_str(proc, "cwd", NULL, &o->cwd, err) < 0)
        return -1;
    if (!o->cmd || !*o->cmd)
        return e2b_error_set(err, E2B_ERR_INVALID, "process.cmd is required");
    o->args = e2b_pj_get(proc, "args", NULL);
    if (o->args && !json_is_array(o->args))
        return e2b_error_set(err, E2B_ERR_INVALID, "invalid value for repeated string field args");
    size_t i;
    json_t *v;
    json_array_foreach(o->args, i, v) if (!json_is_string(v)) return e2b_error_set(
        err, E2B_ERR_INVALID, "invalid value for repeated string field args");
    o->envs = e2b_pj_get(proc, "envs", NULL);
    if (o->envs && !json_is_object(o->envs))
        return e2b_error_set(err, E2B_ERR_INVALID, "invalid value for map field envs");
    const char *k;
    json_object_foreach(o->envs, k, v) if (!json_is_string(v)) return e2b_error_set(
        err, E2B_ERR_INVALID, "invalid value for map field envs");
    if (pty) {
        json_t *size = NULL;
        o->pty = true;
        if (e2b_pj_obj(pty, "size", NULL, &size, err) < 0)
            return -1;
        if (size && (e2b_pj_u32(size, "cols", NULL, &o->cols, NULL, err) < 0 ||
                     e2b_pj_u32(size, "rows", NULL, &o->rows, NULL, err) < 0))
            return -1;
        if (o->cols == 0 || o->rows == 0 || o->cols > 65535 || o->rows > 65535)
            return e2b_error_set(err, E2B_ERR_INVALID, "bad pty size %ux%u", o->cols, o->rows);
    }
    return 0;
}

/* In the child: nothing but 0-2 may reach the new program (like Go's exec). */
static void cloexec_from_3(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) == 0)
        return;
#endif
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int self = dirfd(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        int fd = atoi(de->d_name);
        if (fd > 2 && fd != self)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    closedir(d);
}

/* The Connect code for why a process could not start (in the child: exec,
 * setuid, chdir; in envd: pipes, PTY, fork). */
static int exec_error_code(int e)
{
    switch (e) {
    case ENOENT: return RPC_NOT_FOUND;
    case EACCES: case EPERM: return RPC_PERMISSION_DENIED; /* not executable, or not allowed */
    case ENOEXEC: case ETXTBSY: case ELIBBAD: case ENOTDIR: case ELOOP: case ENAMETOOLONG:
        return RPC_FAILED_PRECONDITION; /* there, but cannot run as it is */
    case EAGAIN: case EMFILE: case ENFILE: case ENOMEM: case E2BIG: case ENOSPC:
        return RPC_RESOURCE_EXHAUSTED; /* out of processes, descriptors, memory or PTYs */
    default: return RPC_INTERNAL;
    }
}

static void child_fail(int errfd, int e)
{
    ssize_t w = write(errfd, &e, sizeof(e));
    (void)w;
    _exit(127);
}

void e2b_process_start(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    struct start_opts o = {0};
    if (parse_start(msg, &o, &err) < 0) {
        e2b_envd_stream_error(req, RPC_INVALID_ARGUMENT, "%s", err->msg);
        return;
    }
    _cleanup_free_ char *cwd = e2b_envd_resolve_path(o.cwd ? o.cwd : "", user, e2b_envd.default_workdir, &err);
    if (!cwd) {
        e2b_envd_stream_error(req, RPC_INVALID_ARGUMENT, "%s", err->msg);
        return;
    }
    struct stat st;
    e2b_envd_fs_as(user);
    int src = stat(cwd, &st);
    bool implicit_home = (!o.cwd || !*o.cwd) && !(e2b_envd.default_workdir && *e2b_envd.default_workdir);
    if ((src < 0 || !S_ISDIR(st.st_mode)) && implicit_home) {
        /* A user whose home is missing (nobody's is /nonexistent) starts in
         * "/", as login(1) does; only a cwd someone asked for must exist. */
        free(cwd);
        cwd = xstrdup("/");
        src = stat(cwd, &st);
    }
    e2b_envd_fs_restore();
    if (src < 0 || !S_ISDIR(st.st_mode)) {
        e2b_envd_stream_error(req, RPC_INVALID_ARGUMENT, "cwd '%s' does not exist", cwd);
        return;
    }
    _cleanup_strv_ char **env = e2b_process_env(user, o.envs);
    _cleanup_free_ char *exe = lookup_cmd(o.cmd, env);
    size_t nargs = json_array_size(o.args);
    _cleanup_free_ char **argv = xcalloc(nargs + 2, sizeof(char *));
    argv[0] = (char *)o.cmd;
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = (char *)json_string_value(json_array_get(o.args, i));

    int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1}, ep[2] = {-1, -1};
    int master = -1;
    _cleanup_free_ char *slave_name = NULL;
    if (pipe2(ep, O_CLOEXEC) < 0)
        goto sysfail;
    if (o.pty) {
        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
            goto sysfail;
        char name[128];
        if (ptsname_r(master, name, sizeof(name)) != 0)
            goto sysfail;
        slave_name = xstrdup(name);
        struct winsize ws = {.ws_row = (unsigned short)o.rows, .ws_col = (unsigned short)o.cols};
        ioctl(master, TIOCSWINSZ, &ws);
    } else {
        if ((o.stdin_on && pipe2(in, O_CLOEXEC) < 0) || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
            goto sysfail;
    }
    pid_t pid = fork();
    if (pid < 0)
        goto sysfail;
    if (pid == 0) {
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        for (int s = 1; s < NSIG; s++)
            signal(s, SIG_DFL);
        setsid();
        if (o.pty) {
            int sl = open(slave_name, O_RDWR);
            if (sl < 0)
                child_fail(ep[1], errno);
            ioctl(sl, TIOCSCTTY, 0);
            dup2(sl, 0);
            dup2(sl, 1);
            dup2(sl, 2);
            if (sl > 2)
                close(sl);
        } else {
            int devnull = o.stdin_on ? -1 : open("/dev/null", O_RDONLY);
            dup2(o.stdin_on ? in[0] : devnull, 0);
            dup2(out[1], 1);
            dup2(errp[1], 2);
        }
        /* What envd runs goes well before envd when memory runs out: envd
         * cannot go below 0 without CAP_SYS_RESOURCE, but raising a score
         * needs no privilege. +500 outweighs half the sandbox's memory. */
        int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (oom >= 0) {
            (void)!write(oom, "500", 3);
            close(oom);
        }
        if (geteuid() == 0) {
            /* In a user namespace with one mapped id setgroups is denied;
             * staying who we are is fine then. */
            bool same = user->uid == getuid() && user->gid == getgid();
            if ((setgroups(user->ngroups, user->groups) < 0 && !(same && errno == EPERM)) ||
                setgid(user->gid) < 0 || setuid(user->uid) < 0)
                child_fail(ep[1], errno);
        } else if (getuid() != user->uid) {
            child_fail(ep[1], EPERM);
        }
        if (chdir(cwd) < 0)
            child_fail(ep[1], errno);
        cloexec_from_3();
        execve(exe, argv, env);
        child_fail(ep[1], errno);
    }
    close(ep[1]);
    ep[1] = -1;
    int child_errno = 0;
    ssize_t rn;
    do
        rn = read(ep[0], &child_errno, sizeof(child_errno));
    while (rn < 0 && errno == EINTR);
    close(ep[0]);
    ep[0] = -1;
    if (rn == (ssize_t)sizeof(child_errno)) {
        waitpid(pid, NULL, 0);
        if (master >= 0)
            close(master);
        for (int i = 0; i < 2; i++) {
            if (in[i] >= 0) close(in[i]);
            if (out[i] >= 0) close(out[i]);
            if (errp[i] >= 0) close(errp[i]);
        }
        e2b_envd_stream_error(req, exec_error_code(child_errno), "cannot start '%s': %s", o.cmd,
                              strerror(child_errno));
        return;
    }

    struct proc *p = xcalloc(1, sizeof(*p));
    p->pid = pid;
    p->tag = o.tag && *o.tag ? xstrdup(o.tag) : NULL;
    p->pty = o.pty;
    p->inbuf = evbuffer_new();
    p->resume_ev = event_new(loop, -1, 0, on_resume, p);
    p->config = json_pack("{s:s,s:O,s:O}", "cmd", o.cmd, "args", o.args ? o.args : json_array(), "envs",
                          o.envs ? o.envs : json_object());
    if (!o.args) /* json_pack O increfs; drop the temporaries */
        json_decref(json_object_get(p->config, "args"));
    if (!o.envs)
        json_decref(json_object_get(p->config, "envs"));
    if (o.cwd)
        json_object_set_new(p->config, "cwd", json_string(o.cwd));
    if (o.pty) {
        p->in_fd = master;
        p->out_fd = master;
        p->err_fd = -1;
    } else {
        if (in[0] >= 0)
            close(in[0]);
        close(out[1]);
        close(errp[1]);
        p->in_fd = in[1];
        p->out_fd = out[0];
        p->err_fd = errp[0];
    }
    if (p->in_fd >= 0)
        fcntl(p->in_fd, F_SETFL, fcntl(p->in_fd, F_GETFL) | O_NONBLOCK);
    fcntl(p->out_fd, F_SETFL, fcntl(p->out_fd, F_GETFL) | O_NONBLOCK);
    p->out_ev = event_new(loop, p->out_fd, EV_READ | EV_PERSIST, on_output, p);
    event_add(p->out_ev, NULL);
    if (p->err_fd >= 0) {
        fcntl(p->err_fd, F_SETFL, fcntl(p->err_fd, F_GETFL) | O_NONBLOCK);
        p->err_ev = event_new(loop, p->err_fd, EV_READ | EV_PERSIST, on_output, p);
        event_add(p->err_ev, NULL);
    }
    int64_t tmo = e2b_rpc_timeout_ms(req);
    if (tmo > 0) {
        struct timeval tv = {tmo / 1000, (tmo % 1000) * 1000};
        p->timeout_ev = evtimer_new(loop, on_timeout, p);
        event_add(p->timeout_ev, &tv);
    }
    p->next = procs;
    procs = p;
    clock_gettime(CLOCK_MONOTONIC, &p->started);
    if (e2b_envd.verbose) {
        _cleanup_free_ char *cfg = e2b_json_dump(p->config, JSON_COMPACT);
        fprintf(stderr, "envd: process %d started%s%s: %s\n", (int)pid, p->tag ? " as " : "", p->tag ? p->tag : "",
                cfg);
    }
    add_sub(p, req, true);
    return;

sysfail:;
    int e = errno;
    int fds[] = {in[0], in[1], out[0], out[1], errp[0], errp[1], ep[0], ep[1], master};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    e2b_envd_stream_error(req, exec_error_code(e), "cannot start '%s': %s", o.cmd, strerror(e));
}

void e2b_process_connect(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    (void)user;
    struct proc *p = req_proc(req, msg, true);
    if (p)
        add_sub(p, req, false);
}

void e2b_process_list(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    (void)msg;
    (void)user;
    json_t *list = json_array();
    for (struct proc *p = procs; p; p = p->next) {
        if (p->exited)
            continue;
        json_t *pi = json_pack("{s:O,s:i}", "config", p->config, "pid", (int)p->pid);
        if (p->tag)
            json_object_set_new(pi, "tag", json_string(p->tag));
        json_array_append_new(list, pi);
    }
    e2b_rpc_reply(req, json_pack("{s:o}", "processes", list));
}

/* Parse ProcessInput {stdin|pty}; *data is NULL when it carries nothing. */
static int parse_input(struct proc *p, json_t *input, uint8_t **data, size_t *len, struct e2b_error **err)
{
    bool has_stdin = false, has_pty = false;
    *data = NULL;
    *len = 0;
    if (!input)
        return 0;
    if (e2b_pj_bytes(input, "stdin", NULL, data, len, &has_stdin, err) < 0)
        return -1;
    if (!has_stdin && e2b_pj_bytes(input, "pty", NULL, data, len, &has_pty, err) < 0)
        return -1;
    if (has_pty && !p->pty) {
        free(*data);
        *data = NULL;
        return e2b_error_set(err, E2B_ERR_INVALID, "process %d has no pty", (int)p->pid);
    }
    /* upstream accepts stdin on a PTY too */
    return 0;
}

void e2b_process_send_input(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    (void)user;
    struct proc *p = req_proc(req, msg, false);
    if (!p)
        return;
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *input = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    if (e2b_pj_obj(msg, "input", NULL, &input, &err) < 0 || parse_input(p, input, &data, &len, &err) < 0) {
        e2b_rpc_error(req, RPC_INVALID_ARGUMENT, "%s", err->msg);
        return;
    }
    if (!stdin_open(p)) {
        free(data);
        e2b_rpc_error(req, RPC_FAILED_PRECONDITION, "stdin of process %d is not open", (int)p->pid);
        return;
    }
    if (!data || len == 0) {
        free(data);
        e2b_rpc_reply(req, json_object());
        return;
    }
    if (p->waiters || input_full(p)) {
        /* The process is not reading: the reply waits for room, which
         * slows the sender down; past a second buffer's worth, refuse. */
        if (p->waiting_bytes && p->waiting_bytes + len > INBUF_MAX) {
            free(data);
            e2b_rpc_error(req, RPC_RESOURCE_EXHAUSTED,
                          "stdin of process %d is full (%d KiB unread): the process is not reading it",
                          (int)p->pid, (int)(evbuffer_get_length(p->inbuf) / 1024));
            return;
        }
        wait_for_room(p, req, data, len, NULL);
        return;
    }
    write_input(p, data, len, &err);
    free(data);
    e2b_rpc_reply(req, json_object());
}

void e2b_process_send_signal(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    (void)user;
    struct proc *p = req_proc(req, msg, false);
    if (!p)
        return;
    json_t *sv = e2b_pj_get(msg, "signal", NULL);
    int sig = 0;
    if (json_is_string(sv)) {
        const char *s = json_string_value(sv);
        if (STREQ(s, "SIGNAL_SIGKILL"))
            sig = SIGKILL;
        else if (STREQ(s, "SIGNAL_SIGTERM"))
            sig = SIGTERM;
    } else if (json_is_integer(sv)) {
        json_int_t v = json_integer_value(sv);
        if (v == SIGKILL || v == SIGTERM)
            sig = (int)v;
    }
    if (!sig) {
        e2b_rpc_error(req, RPC_INVALID_ARGUMENT, "unsupported signal");
        return;
    }
    if (kill(-p->pid, sig) < 0 && kill(p->pid, sig) < 0) {
        e2b_rpc_error(req, e2b_rpc_code_from_errno(errno), "cannot signal process %d: %s", (int)p->pid,
                      strerror(errno));
        return;
    }
    e2b_rpc_reply(req, json_object());
}

void e2b_process_close_stdin(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    (void)user;
    struct proc *p = req_proc(req, msg, false);
    if (!p)
        return;
    if (p->pty) {
        e2b_rpc_error(req, RPC_FAILED_PRECONDITION, "cannot close stdin of a pty process");
        return;
    }
    p->close_in_after_flush = true;
    pump_input(p);
    e2b_rpc_reply(req, json_object());
}

void e2b_process_update(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user)
{
    (void)user;
    struct proc *p = req_proc(req, msg, false);
    if (!p)
        return;
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *pty = NULL, *size = NULL;
    uint32_t cols = 0, rows = 0;
    if (e2b_pj_obj(msg, "pty", NULL, &pty, &err) < 0 || (pty && e2b_pj_obj(pty, "size", NULL, &size, &err) < 0) ||
        (size && (e2b_pj_u32(size, "cols", NULL, &cols, NULL, &err) < 0 ||
                  e2b_pj_u32(size, "rows", NULL, &rows, NULL, &err) < 0))) {
        e2b_rpc_error(req, RPC_INVALID_ARGUMENT, "%s", err->msg);
        return;
    }
    if (!size) {
        e2b_rpc_reply(req, json_object());
        return;
    }
    if (!p->pty) {
        e2b_rpc_error(req, RPC_FAILED_PRECONDITION, "process %d has no pty", (int)p->pid);
        return;
    }
    if (cols == 0 || rows == 0 || cols > 65535 || rows > 65535) {
        e2b_rpc_error(req, RPC_INVALID_ARGUMENT, "bad pty size %ux%u", cols, rows);
        return;
    }
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    if (ioctl(p->in_fd, TIOCSWINSZ, &ws) < 0) {
        e2b_rpc_error(req, RPC_INTERNAL, "cannot resize pty: %s", strerror(errno));
        return;
    }
    e2b_rpc_reply(req, json_object());
}

/* ---- StreamInput (client stream) ---- */

struct sin {
    struct e2b_http_req *req;
    struct strbuf buf;
    pid_t pid; /* 0 until the start message */
    bool failed;
    bool ended;            /* the body is complete */
    struct in_wait *wait;  /* waiting for room in the process's stdin */
};

static void sin_fail(struct sin *s, int code, const char *fmt, ...) _printf_(3, 4);
static void sin_fail(struct sin *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        abort();
    va_end(ap);
    if (s->failed)
        return;
    s->failed = true;
    e2b_envd_stream_error(s->req, code, "%s", m);
}

static struct proc *proc_by_pid(pid_t pid)
{
    for (struct proc *p = procs; p; p = p->next)
        if (p->pid == pid && !p->exited)
            return p;
    return NULL;
}

/* Handle one message; <0 when the stream failed. */
static int sin_message(struct sin *s, json_t *msg)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *start = NULL, *dat = NULL;
    if (e2b_pj_obj(msg, "start", NULL, &start, &err) < 0 || e2b_pj_obj(msg, "data", NULL, &dat, &err) < 0) {
        sin_fail(s, RPC_INVALID_ARGUMENT, "%s", err->msg);
        return -1;
    }
    if (start) {
        int code;
        _cleanup_free_ char *m = NULL;
        struct proc *p = find_proc(e2b_pj_get(start, "process", NULL), &code, &m);
        if (!p) {
            sin_fail(s, code, "%s", m);
            return -1;
        }
        s->pid = p->pid;
        return 0;
    }
    if (!dat)
        return 0; /* keepalive */
    struct proc *p = s->pid ? proc_by_pid(s->pid) : NULL;
    json_t *input = NULL;
    _cleanup_free_ uint8_t *data = NULL;
    size_t len = 0;
    if (!s->pid) {
        sin_fail(s, RPC_FAILED_PRECONDITION, "input before the start message");
        return -1;
    }
    if (!p) {
        sin_fail(s, RPC_NOT_FOUND, "process with pid %d not found", (int)s->pid);
        return -1;
    }
    if (e2b_pj_obj(dat, "input", NULL, &input, &err) < 0 || parse_input(p, input, &data, &len, &err) < 0) {
        sin_fail(s, RPC_INVALID_ARGUMENT, "%s", err->msg);
        return -1;
    }
    if (data && len && write_input(p, data, len, &err) < 0) {
        sin_fail(s, RPC_FAILED_PRECONDITION, "%s", err->msg);
        return -1;
    }
    return 0;
}

/* Handle the complete messages buffered, until the process's stdin is full
 * (then wait for room, the body paused). <0 when the stream failed. */
static int sin_process(struct sin *s)
{
    while (!s->failed) {
        struct proc *p = s->pid ? proc_by_pid(s->pid) : NULL;
        if (p && input_full(p) && stdin_open(p)) {
            s->wait = wait_for_room(p, NULL, NULL, 0, s);
            e2b_http_pause_body(s->req, true);
            return 0;
        }
        unsigned flags;
        const char *payload;
        size_t plen;
        ssize_t n = e2b_rpc_unframe(s->buf.buf, s->buf.len, &flags, &payload, &plen);
        if (n == 0) {
            if (s->buf.len > INPUT_FRAME_MAX + 5) {
                sin_fail(s, RPC_RESOURCE_EXHAUSTED, "message larger than %d bytes", INPUT_FRAME_MAX);
                return -1;
            }
            return 0;
        }
        if (n < 0 || plen > INPUT_FRAME_MAX) {
            sin_fail(s, n < 0 ? RPC_INVALID_ARGUMENT : RPC_RESOURCE_EXHAUSTED, "protocol error: bad envelope");
            return -1;
        }
        if (flags & E2B_RPC_FLAG_COMPRESSED) {
            sin_fail(s, RPC_INTERNAL, "protocol error: compressed message without encoding");
            return -1;
        }
        json_error_t jerr;
        json_t *msg = json_loadb(payload, plen, JSON_REJECT_DUPLICATES, &jerr);
        strbuf_consume(&s->buf, (size_t)n);
        if (!json_is_object(msg)) {
            json_decref(msg);
            sin_fail(s, RPC_INVALID_ARGUMENT, "unmarshal request: %s", msg ? "not an object" : jerr.text);
            return -1;
        }
        int rc = sin_message(s, msg);
        json_decref(msg);
        if (rc < 0)
            return -1;
    }
    return -1;
}

static void sin_free(struct sin *s)
{
    if (s->wait) {
        waiter_unlink(s->wait);
        free(s->wait);
    }
    strbuf_release(&s->buf);
    free(s);
}

/* The body is complete and every message handled: answer. */
static void sin_finish(struct sin *s)
{
    struct e2b_http_req *req = s->req;
    bool truncated = s->buf.len > 0, failed = s->failed;
    sin_free(s);
    if (failed)
        return;
    if (truncated) {
        e2b_envd_stream_error(req, RPC_INVALID_ARGUMENT, "protocol error: truncated message");
        return;
    }
    struct e2b_rpc_stream *st = e2b_rpc_stream_start(req, NULL, NULL, NULL);
    e2b_rpc_stream_send(st, json_object());
    e2b_rpc_stream_end(st, RPC_OK, NULL);
}

static int sin_data(struct e2b_http_req *req, const char *data, size_t len, void *arg)
{
    (void)req;
    struct sin *s = arg;
    if (s->failed)
        return -1;
    strbuf_add(&s->buf, data, len);
    return sin_process(s) < 0 ? -1 : 0;
}

/* Room in the process's stdin, or the process is gone. */
static void sin_resume(struct sin *s)
{
    s->wait = NULL;
    sin_process(s);
    if (s->wait)
        return; /* full again */
    if (s->ended) {
        sin_finish(s);
        return;
    }
    /* Last: taking the body may end it, and free s. A failed stream gets
     * the rest of its body dropped this way. */
    e2b_http_pause_body(s->req, false);
}

static void sin_end(struct e2b_http_req *req, bool complete, void *arg)
{
    (void)req;
    struct sin *s = arg;
    if (!complete || s->failed) {
        sin_free(s);
        return;
    }
    s->ended = true;
    if (!s->wait)
        sin_finish(s); /* else once the rest of its messages are in */
}

void e2b_process_stream_input(struct e2b_http_req *req, const struct e2b_user *user)
{
    (void)user;
    struct sin *s = xcalloc(1, sizeof(*s));
    s->req = req;
    strbuf_init(&s->buf);
    e2b_http_stream_body(req, sin_data, sin_end, s);
}
