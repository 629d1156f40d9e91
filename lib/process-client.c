/* process-client.c - see process-client.h.
 *
 * A Start call is a Connect server stream: request and response bodies are
 * enveloped frames (1 flag byte, 4-byte big-endian length, JSON); flag 0x02
 * marks the end-of-stream frame, which may carry an error. Input goes in
 * separate unary calls (SendInput, CloseStdin, Update) from a second thread,
 * since libcurl's easy interface runs one transfer per thread.
 */
#include "process-client.h"
#include "envd-crypto.h"
#include "http.h"
#include "strbuf.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>

struct stream {
    const struct e2b_envd_endpoint *ep;
    const struct e2b_run_opts *o;
    bool pty;
    struct strbuf buf;          /* undecoded bytes */
    pthread_mutex_t lock;
    unsigned pid;               /* 0 until the start event */
    pthread_cond_t started;
    bool ended;
    int exit_code;
    bool background;            /* stop reading at the start event */
    struct e2b_error *err;      /* from an end-of-stream error frame */
};

static char **auth_headers(const struct e2b_envd_endpoint *ep, const char *user, const char *ctype,
                           long timeout_ms)
{
    char **h = NULL;
    _cleanup_free_ char *ct = xasprintf("Content-Type: %s", ctype);
    h = e2b_strv_push(h, ct);
    if (user) {
        _cleanup_free_ char *raw = xasprintf("%s:", user);
        _cleanup_free_ char *b64 = e2b_base64_encode(raw, strlen(raw), true);
        _cleanup_free_ char *line = xasprintf("Authorization: Basic %s", b64);
        h = e2b_strv_push(h, line);
    }
    if (ep->access_token) {
        _cleanup_free_ char *line = xasprintf("X-Access-Token: %s", ep->access_token);
        h = e2b_strv_push(h, line);
    }
    if (ep->sandbox_id && !e2b_str_has_prefix(ep->base, "unix:")) {
        _cleanup_free_ char *line = xasprintf("E2b-Sandbox-Id: %s", ep->sandbox_id);
        h = e2b_strv_push(h, line);
        h = e2b_strv_push(h, "E2b-Sandbox-Port: 49983");
    }
    if (timeout_ms > 0) {
        _cleanup_free_ char *line = xasprintf("Connect-Timeout-Ms: %ld", timeout_ms);
        h = e2b_strv_push(h, line);
    }
    return h;
}

static void write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

static int call_timeout(const struct e2b_envd_endpoint *ep, const char *user, const char *procedure,
                        json_t *msg, long timeout_ms, json_t **ret, struct e2b_error **err)
{
    _cleanup_strv_ char **h = auth_headers(ep, user, "application/json", 0);
    _cleanup_free_ char *body = e2b_json_dump(msg, 0);
    _cleanup_free_ char *path = xasprintf("/%s", procedure);
    struct e2b_http_req req = {.base = ep->base, .path = path, .headers = (const char *const *)h,
                               .body = body, .body_len = strlen(body), .timeout_ms = timeout_ms};
    struct e2b_http_resp resp;
    int r = e2b_http_request(&req, &resp, err);
    if (r == 0 && ret)
        r = e2b_json_parse(resp.body.buf, resp.body.len, "envd reply", ret, err);
    e2b_http_resp_release(&resp);
    return r;
}

int e2b_envd_call(const struct e2b_envd_endpoint *ep, const char *user, const char *procedure,
                  json_t *msg, json_t **ret, struct e2b_error **err)
{
    return call_timeout(ep, user, procedure, msg, 30000, ret, err);
}

/* One unary process.Process call; the reply body is ignored. */
static int unary(const struct e2b_envd_endpoint *ep, const char *user, const char *proc, json_t *msg,
                 struct e2b_error **err)
{
    _cleanup_free_ char *procedure = xasprintf("process.Process/%s", proc);
    return e2b_envd_call(ep, user, procedure, msg, NULL, err);
}

static int to_fd(const void *data, size_t len, void *ud)
{
    write_all(*(int *)ud, data, len);
    return 0;
}

static ssize_t from_fd(void *buf, size_t len, void *ud)
{
    for (;;) {
        ssize_t n = read(*(int *)ud, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        return n;
    }
}

static char *files_path(const char *user, const char *path)
{
    _cleanup_free_ char *p = e2b_url_escape(path, false);
    if (!user)
        return xasprintf("/files?path=%s", p);
    _cleanup_free_ char *u = e2b_url_escape(user, false);
    return xasprintf("/files?path=%s&username=%s", p, u);
}

int e2b_envd_download(const struct e2b_envd_endpoint *ep, const char *user, const char *path, int fd,
                      struct e2b_error **err)
{
    _cleanup_strv_ char **h = auth_headers(ep, user, "application/octet-stream", 0);
    _cleanup_free_ char *p = files_path(user, path);
    struct e2b_http_req req = {.base = ep->base, .path = p, .headers = (const char *const *)h,
                               .on_data = to_fd, .ud = &fd};
    struct e2b_http_resp resp;
    int r = e2b_http_request(&req, &resp, err);
    e2b_http_resp_release(&resp);
    return r;
}

int e2b_envd_upload(const struct e2b_envd_endpoint *ep, const char *user, const char *path, int fd,
                    struct e2b_error **err)
{
    _cleanup_strv_ char **h = auth_headers(ep, user, "application/octet-stream", 0);
    _cleanup_free_ char *p = files_path(user, path);
    struct stat st;
    long long size = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
    struct e2b_http_req req = {.base = ep->base, .path = p, .headers = (const char *const *)h,
                               .read_body = from_fd, .body_size = size, .ud = &fd};
    struct e2b_http_resp resp;
    int r = e2b_http_request(&req, &resp, err);
    e2b_http_resp_release(&resp);
    return r;
}

static void on_event(struct stream *s, json_t *ev)
{
    json_t *start = json_object_get(ev, "start"), *data = json_object_get(ev, "data"),
           *end = json_object_get(ev, "end");
    if (start) {
        pthread_mutex_lock(&s->lock);
        s->pid = (unsigned)e2b_json_int(start, "pid", 0);
        pthread_cond_broadcast(&s->started);
        pthread_mutex_unlock(&s->lock);
    } else if (data) {
        static const char *const keys[] = {"stdout", "stderr", "pty"};
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
            const char *b64 = e2b_json_str(data, keys[i]);
            if (!b64)
                continue;
            uint8_t *raw = NULL;
            ssize_t n = e2b_base64_decode(b64, strlen(b64), &raw);
            if (n > 0)
                write_all(i == 1 ? s->o->err_fd : s->o->out_fd, raw, (size_t)n);
            free(raw);
        }
    } else if (end) {
        s->ended = true;
        /* proto3 JSON leaves zero values out: no exitCode means 0. A signal
         * shows in status ("signal: killed") with exitCode -1. */
        long long code = e2b_json_int(end, "exitCode", 0);
        const char *status = e2b_json_str(end, "status");
        if (status && e2b_str_has_prefix(status, "signal: "))
            code = 128 + (strstr(status, "killed") ? 9 : strstr(status, "terminated") ? 15
                          : strstr(status, "interrupt") ? 2 : 1);
        s->exit_code = code < 0 ? 128 + 9 : (int)code;
    }
}

static int on_data(const void *data, size_t len, void *ud)
{
    struct stream *s = ud;
    strbuf_add(&s->buf, data, len);
    while (s->buf.len >= 5) {
        const uint8_t *p = (const uint8_t *)s->buf.buf;
        size_t n = ((size_t)p[1] << 24) | ((size_t)p[2] << 16) | ((size_t)p[3] << 8) | p[4];
        if (s->buf.len < 5 + n)
            break;
        json_t *msg = json_loadb(s->buf.buf + 5, n, 0, NULL);
        if (p[0] & 0x02) {
            json_t *e = json_object_get(msg, "error");
            const char *code = e2b_json_str(e, "code");
            if (e && !s->err)
                e2b_error_set(&s->err,
                              code && STREQ(code, "deadline_exceeded") ? E2B_ERR_TIMEOUT : E2B_ERR_API,
                              "envd: %s: %s",
                              e2b_json_str(e, "code") ? e2b_json_str(e, "code") : "error",
                              e2b_json_str(e, "message") ? e2b_json_str(e, "message") : "");
        } else if (msg) {
            on_event(s, json_object_get(msg, "event"));
        }
        json_decref(msg);
        strbuf_consume(&s->buf, 5 + n);
        if (s->background && s->pid)
            return -1; /* stop listening; the process runs on */
    }
    return 0;
}

static json_t *start_request(const struct e2b_run_opts *o, bool pty, int cols, int rows)
{
    json_t *proc = json_object();
    json_t *args = json_array();
    if (o->shell) {
        struct strbuf cmd = STRBUF_INIT;
        for (const char *const *a = o->argv; *a; a++) {
            if (cmd.len)
                strbuf_addch(&cmd, ' ');
            strbuf_addstr(&cmd, *a);
        }
        json_object_set_new(proc, "cmd", json_string("/bin/sh"));
        json_array_append_new(args, json_string("-c"));
        json_array_append_new(args, json_string(cmd.buf));
        strbuf_release(&cmd);
    } else {
        json_object_set_new(proc, "cmd", json_string(o->argv[0]));
        for (const char *const *a = o->argv + 1; *a; a++)
            json_array_append_new(args, json_string(*a));
    }
    json_object_set_new(proc, "args", args);
    json_object_set_new(proc, "envs", o->envs ? json_incref(o->envs) : json_object());
    if (o->cwd)
        json_object_set_new(proc, "cwd", json_string(o->cwd));
    json_t *req = json_pack("{s:o, s:b}", "process", proc, "stdin", o->send_stdin || pty);
    if (o->tag)
        json_object_set_new(req, "tag", json_string(o->tag));
    if (pty)
        json_object_set_new(req, "pty", json_pack("{s:{s:i, s:i}}", "size", "cols", cols, "rows", rows));
    return req;
}

struct input_thread {
    struct stream *s;
    int fd;
    bool pty;
    volatile bool stop;
    int wake[2]; /* written to end the thread */
};

/* envd holds the reply while the process does not read its input (that is
 * the backpressure), so no time limit here. <0: the input cannot go in any
 * more (stdin closed, process gone). */
static int send_input(struct stream *s, bool pty, const void *data, size_t n)
{
    _cleanup_free_ char *b64 = e2b_base64_encode(data, n, true);
    json_t *msg = json_pack("{s:{s:i}, s:{s:s}}", "process", "pid", s->pid, "input",
                            pty ? "pty" : "stdin", b64);
    _cleanup_error_ struct e2b_error *err = NULL;
    int r = call_timeout(s->ep, s->o->user, "process.Process/SendInput", msg, 0, NULL, &err);
    json_decref(msg);
    return r;
}

static void *input_main(void *ud)
{
    struct input_thread *t = ud;
    struct stream *s = t->s;
    pthread_mutex_lock(&s->lock);
    while (!s->pid && !t->stop)
        pthread_cond_wait(&s->started, &s->lock);
    pthread_mutex_unlock(&s->lock);
    char buf[32768];
    while (!t->stop) {
        struct pollfd p[2] = {{.fd = t->fd, .events = POLLIN}, {.fd = t->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (!p[0].revents)
            continue;
        ssize_t n = read(t->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (!t->pty) {
                json_t *msg = json_pack("{s:{s:i}}", "process", "pid", s->pid);
                unary(s->ep, s->o->user, "CloseStdin", msg, NULL);
                json_decref(msg);
            }
            break;
        }
        if (send_input(s, t->pty, buf, (size_t)n) < 0)
            break; /* nobody takes it: stop reading our stdin */
    }
    return NULL;
}

static volatile sig_atomic_t winched;
static void on_winch(int sig) { winched = sig; }

struct resize_ctx {
    struct stream *s;
    int wake[2];
};

static void *resize_main(void *ud)
{
    struct resize_ctx *r = ud;
    for (;;) {
        struct pollfd p = {.fd = r->wake[0], .events = POLLIN};
        if (poll(&p, 1, 200) > 0)
            return NULL;
        if (!winched || !r->s->pid)
            continue;
        winched = 0;
        struct winsize ws;
        if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0)
            continue;
        json_t *msg = json_pack("{s:{s:i}, s:{s:{s:i, s:i}}}", "process", "pid", r->s->pid, "pty",
                                "size", "cols", ws.ws_col, "rows", ws.ws_row);
        unary(r->s->ep, r->s->o->user, "Update", msg, NULL);
        json_decref(msg);
    }
}

/* A Start (or, with `attach`, a Connect) stream to its end. */
static int stream_call(const struct e2b_envd_endpoint *ep, const struct e2b_run_opts *o, bool pty,
                       bool background, json_t *attach, int *ret_exit, unsigned *ret_pid,
                       struct e2b_error **err)
{
    int cols = 80, rows = 24;
    struct winsize ws;
    if (pty && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col)
        cols = ws.ws_col, rows = ws.ws_row;
    _cleanup_json_ json_t *req = attach ? json_incref(attach) : start_request(o, pty, cols, rows);
    _cleanup_free_ char *json = e2b_json_dump(req, 0);
    size_t n = strlen(json);
    _cleanup_free_ char *frame = xmalloc(n + 5);
    frame[0] = 0;
    frame[1] = (char)(n >> 24), frame[2] = (char)(n >> 16), frame[3] = (char)(n >> 8), frame[4] = (char)n;
    memcpy(frame + 5, json, n);
    _cleanup_strv_ char **h = auth_headers(ep, o->user, "application/connect+json", o->timeout_ms);

    struct stream s = {.ep = ep, .o = o, .pty = pty, .background = background};
    strbuf_init(&s.buf);
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.started, NULL);
    struct input_thread in = {.s = &s, .fd = STDIN_FILENO, .pty = pty, .wake = {-1, -1}};
    struct resize_ctx rz = {.s = &s, .wake = {-1, -1}};
    pthread_t in_tid, rz_tid;
    bool in_started = false, rz_started = false;
    if ((o->send_stdin || pty) && !background && pipe(in.wake) == 0)
        in_started = pthread_create(&in_tid, NULL, input_main, &in) == 0;
    if (pty && pipe(rz.wake) == 0) {
        signal(SIGWINCH, on_winch);
        rz_started = pthread_create(&rz_tid, NULL, resize_main, &rz) == 0;
    }
    struct e2b_http_req hr = {.base = ep->base,
                              .path = attach ? "/process.Process/Connect" : "/process.Process/Start",
                              .headers = (const char *const *)h, .body = frame, .body_len = n + 5,
                              .on_data = on_data, .ud = &s};
    struct e2b_http_resp resp;
    int r = e2b_http_request(&hr, &resp, err);
    if (r < 0 && background && s.pid && (*err)->code == E2B_ERR_CANCELLED) {
        e2b_error_free(*err);
        *err = NULL;
        r = 0;
    }
    e2b_http_resp_release(&resp);
    if (in_started) {
        in.stop = true;
        pthread_mutex_lock(&s.lock);
        pthread_cond_broadcast(&s.started);
        pthread_mutex_unlock(&s.lock);
        (void)!write(in.wake[1], "x", 1);
        pthread_join(in_tid, NULL);
    }
    if (rz_started) {
        (void)!write(rz.wake[1], "x", 1);
        pthread_join(rz_tid, NULL);
    }
    for (int i = 0; i < 2; i++) {
        if (in.wake[i] >= 0)
            close(in.wake[i]);
        if (rz.wake[i] >= 0)
            close(rz.wake[i]);
    }
    strbuf_release(&s.buf);
    if (r == 0 && s.err) {
        *err = s.err;
        s.err = NULL;
        r = -1;
    }
    e2b_error_free(s.err);
    if (r == 0 && !background && !s.ended)
        r = e2b_error_set(err, E2B_ERR_NETWORK, "the connection to envd ended before the process did");
    if (ret_exit)
        *ret_exit = s.exit_code;
    if (ret_pid)
        *ret_pid = s.pid;
    return r;
}

static int run_stream(const struct e2b_envd_endpoint *ep, const struct e2b_run_opts *o, bool pty,
                      bool background, int *ret_exit, unsigned *ret_pid, struct e2b_error **err)
{
    return stream_call(ep, o, pty, background, NULL, ret_exit, ret_pid, err);
}

int e2b_process_run(const struct e2b_envd_endpoint *ep, const struct e2b_run_opts *o,
                    int *ret_exit, struct e2b_error **err)
{
    return run_stream(ep, o, false, false, ret_exit, NULL, err);
}

int e2b_process_attach(const struct e2b_envd_endpoint *ep, const char *user, unsigned pid,
                       const char *tag, int *ret_exit, struct e2b_error **err)
{
    json_t *sel = tag ? json_pack("{s:s}", "tag", tag) : json_pack("{s:i}", "pid", pid);
    _cleanup_json_ json_t *req = json_pack("{s:o}", "process", sel);
    struct e2b_run_opts o = {.user = user, .send_stdin = !isatty(STDIN_FILENO),
                             .out_fd = STDOUT_FILENO, .err_fd = STDERR_FILENO};
    return stream_call(ep, &o, false, false, req, ret_exit, NULL, err);
}

int e2b_process_start_background(const struct e2b_envd_endpoint *ep, const struct e2b_run_opts *o,
                                 unsigned *ret_pid, struct e2b_error **err)
{
    return run_stream(ep, o, false, true, NULL, ret_pid, err);
}

int e2b_process_terminal(const struct e2b_envd_endpoint *ep, const char *user, const char *cwd,
                         json_t *envs, int *ret_exit, struct e2b_error **err)
{
    const char *argv[] = {"/bin/sh", "-c",
                          "if [ -x /bin/bash ]; then exec /bin/bash -i -l; else exec /bin/sh -i -l; fi",
                          NULL};
    json_t *env = json_object();
    json_object_update(env, envs);
    const char *term = getenv("TERM");
    json_object_set_new(env, "TERM", json_string(term && *term ? term : "xterm-256color"));
    json_object_set_new(env, "LANG", json_string("C.UTF-8"));
    struct e2b_run_opts o = {.argv = argv, .envs = env, .cwd = cwd, .user = user,
                             .out_fd = STDOUT_FILENO, .err_fd = STDERR_FILENO};
    struct termios saved;
    bool raw = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (raw) {
        struct termios t = saved;
        cfmakeraw(&t);
        tcsetattr(STDIN_FILENO, TCSANOW, &t);
    }
    int r = run_stream(ep, &o, true, false, ret_exit, NULL, err);
    if (raw)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    json_decref(env);
    return r;
}
