/* process-client.c - see process-client.h.
 *
 * A process is one Start (or Connect) server stream, read on the calling
 * thread through sandbox-client.c. Input goes in separate unary calls
 * (SendInput, CloseStdin, Update) from a second thread, since libcurl's easy
 * interface runs one transfer per thread.
 */
#include "process-client.h"
#include "fsutil.h"
#include "sandbox-client.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>

/* One process's stream, shared with the thread that feeds its input. */
struct run {
    struct e2b_envd_client c;
    int out_fd, err_fd;
    bool background;         /* stop reading at the start event */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned pid;            /* 0 until the start event */
    bool done;               /* the stream is over */
    bool ended;              /* its end event came */
    int exit_code;
    struct e2b_error *werr;  /* its output could not be written */
    int wake[2];             /* written when the stream is over */
    /* A terminal whose input has run out: the program printed something
     * since the last ^D, so it may be reading again (see terminal_input). */
    bool input_over;
    int nudge[2];
};

static void run_init(struct run *r, const struct e2b_envd_endpoint *ep, const char *user)
{
    memset(r, 0, sizeof(*r));
    r->c = (struct e2b_envd_client){.ep = ep, .user = user};
    r->out_fd = STDOUT_FILENO;
    r->err_fd = STDERR_FILENO;
    r->wake[0] = r->wake[1] = r->nudge[0] = r->nudge[1] = -1;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
}

static void run_release(struct run *r)
{
    for (int i = 0; i < 2; i++) {
        if (r->wake[i] >= 0)
            close(r->wake[i]);
        if (r->nudge[i] >= 0)
            close(r->nudge[i]);
    }
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    e2b_error_free(r->werr);
}

static const char *fd_name(int fd)
{
    return fd == STDOUT_FILENO ? "stdout" : fd == STDERR_FILENO ? "stderr" : "the command's output";
}

static int on_start(unsigned pid, void *ud)
{
    struct run *r = ud;
    pthread_mutex_lock(&r->lock);
    r->pid = pid;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return r->background ? -1 : 0; /* in the background: it runs, we go */
}

static int on_output(enum e2b_output_kind kind, const void *data, size_t len, void *ud)
{
    struct run *r = ud;
    if (r->nudge[1] >= 0 && __atomic_load_n(&r->input_over, __ATOMIC_ACQUIRE))
        (void)!write(r->nudge[1], "n", 1); /* nonblocking: a full pipe already says it */
    int fd = kind == E2B_OUT_STDERR ? r->err_fd : r->out_fd;
    return e2b_write_fd(fd, data, len, fd_name(fd), &r->werr);
}

static int on_end(const struct e2b_process_end *end, void *ud)
{
    struct run *r = ud;
    r->exit_code = end->exit_code;
    r->ended = true;
    return 0;
}

/* The pid once the process started, or 0 when the stream ended first. */
static unsigned wait_started(struct run *r)
{
    pthread_mutex_lock(&r->lock);
    while (!r->pid && !r->done)
        pthread_cond_wait(&r->cond, &r->lock);
    unsigned pid = r->pid;
    pthread_mutex_unlock(&r->lock);
    return pid;
}

static void run_over(struct run *r)
{
    pthread_mutex_lock(&r->lock);
    r->done = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    if (r->wake[1] >= 0)
        (void)!write(r->wake[1], "x", 1);
}

/* How the stream ended, as the call's result. Output we could not write
 * is the error that counts: it stopped the stream, and the process, whose
 * output can no longer go anywhere, is killed (as a closed pipe would end
 * a local one) unless it is only attached to. */
static int run_result(struct run *r, int rc, bool kill_on_write_error, const char *what,
                      struct e2b_error **err)
{
    if (r->werr) {
        if (kill_on_write_error && r->pid) {
            _cleanup_error_ struct e2b_error *kerr = NULL;
            (void)e2b_envd_process_signal(&r->c, (struct e2b_process_sel){.pid = r->pid}, SIGKILL, &kerr);
        }
        e2b_error_free(*err);
        *err = TAKE_PTR(r->werr);
        return -1;
    }
    if (rc < 0)
        return -1;
    if (r->background ? !r->pid : !r->ended)
        return e2b_error_set(err, E2B_ERR_NETWORK, "the connection to envd ended before the %s %s", what,
                             r->background ? "started" : "did");
    return 0;
}

/* ---- commands with piped input ---- */

#define INPUT_CHUNK (256 * 1024)

/* Our stdin to the process until it runs out (then CloseStdin) or the
 * stream is over. */
static void *pipe_input_main(void *ud)
{
    struct run *r = ud;
    unsigned pid = wait_started(r);
    if (!pid)
        return NULL;
    struct e2b_process_sel sel = {.pid = pid};
    /* envd holds SendInput's reply while the process does not read its
     * input (that is the backpressure), so no time limit on it. */
    struct e2b_envd_client input = r->c;
    input.unary_timeout_ms = -1;
    /* A request's round trip costs more than its bytes (a VM's envd is a
     * link and a slower CPU away): what stdin has ready goes in one, up to
     * INPUT_CHUNK (envd holds 1 MiB a process). */
    _cleanup_free_ char *buf = xmalloc(INPUT_CHUNK);
    for (;;) {
        struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = r->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        if (!p[0].revents)
            continue;
        ssize_t n = read(STDIN_FILENO, buf, INPUT_CHUNK);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        while (n > 0 && (size_t)n < INPUT_CHUNK) { /* more that is there already */
            struct pollfd more = { .fd = STDIN_FILENO, .events = POLLIN };
            if (poll(&more, 1, 0) != 1 || !(more.revents & POLLIN))
                break;
            ssize_t m = read(STDIN_FILENO, buf + n, INPUT_CHUNK - (size_t)n);
            if (m <= 0)
                break; /* EOF or an error: the next read says so */
            n += m;
        }
        _cleanup_error_ struct e2b_error *err = NULL;
        if (n <= 0) {
            (void)e2b_envd_process_close_stdin(&r->c, sel, &err);
            break;
        }
        if (e2b_envd_process_send_input(&input, sel, false, buf, (size_t)n, &err) < 0)
            break; /* nobody takes it (stdin closed, process gone): stop reading ours */
    }
    return NULL;
}

/* A Start stream (start_req) or a Connect stream (sel) to its end, with our
 * stdin piped in when send_stdin. */
static int stream_process(struct run *r, const json_t *start_req, const struct e2b_process_sel *sel,
                          bool send_stdin, long timeout_ms, struct e2b_error **err)
{
    pthread_t tid;
    bool thread = send_stdin && !r->background && pipe2(r->wake, O_CLOEXEC) == 0 &&
                  pthread_create(&tid, NULL, pipe_input_main, r) == 0;
    struct e2b_process_events ev = {.on_start = on_start, .on_output = on_output, .on_end = on_end,
                                    .ud = r};
    int rc = sel ? e2b_envd_process_connect(&r->c, *sel, &ev, err)
                 : e2b_envd_process_start(&r->c, start_req, timeout_ms, &ev, err);
    run_over(r);
    if (thread)
        pthread_join(tid, NULL);
    return rc;
}

static int run_opts(const struct e2b_envd_endpoint *ep, const struct e2b_run_opts *o, bool background,
                    int *ret_exit, unsigned *ret_pid, struct e2b_error **err)
{
    struct run r;
    run_init(&r, ep, o->user);
    r.out_fd = o->out_fd;
    r.err_fd = o->err_fd;
    r.background = background;
    _cleanup_json_ json_t *req = e2b_process_start_request(o->argv, o->envs, o->cwd, o->tag, o->send_stdin,
                                                           0, 0);
    int rc = stream_process(&r, req, NULL, o->send_stdin, o->timeout_ms, err);
    rc = run_result(&r, rc, !background, "process", err);
    if (ret_exit)
        *ret_exit = r.exit_code;
    if (ret_pid)
        *ret_pid = r.pid;
    run_release(&r);
    return rc;
}

int e2b_process_run(const struct e2b_envd_endpoint *ep, const struct e2b_run_opts *o,
                    int *ret_exit, struct e2b_error **err)
{
    return run_opts(ep, o, false, ret_exit, NULL, err);
}

int e2b_process_start_background(const struct e2b_envd_endpoint *ep, const struct e2b_run_opts *o,
                                 unsigned *ret_pid, struct e2b_error **err)
{
    return run_opts(ep, o, true, NULL, ret_pid, err);
}

int e2b_process_attach(const struct e2b_envd_endpoint *ep, const char *user,
                       struct e2b_process_sel sel, int *ret_exit, struct e2b_error **err)
{
    struct run r;
    run_init(&r, ep, user);
    int rc = stream_process(&r, NULL, &sel, !isatty(STDIN_FILENO), 0, err);
    rc = run_result(&r, rc, false, "process", err);
    *ret_exit = r.exit_code;
    run_release(&r);
    return rc;
}

/* ---- the terminal ---- */

/* The terminal state to put back, reachable from signal handlers. */
static struct termios saved_tio;
static volatile sig_atomic_t tio_saved;
static int winch_pipe[2] = {-1, -1};

static void restore_tty(void)
{
    if (tio_saved) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
        tio_saved = 0;
    }
}

static void on_fatal_signal(int sig)
{
    restore_tty();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_winch(int sig)
{
    int e = errno;
    (void)sig;
    if (winch_pipe[1] >= 0)
        (void)!write(winch_pipe[1], "w", 1);
    errno = e;
}

static void get_size(unsigned *cols, unsigned *rows)
{
    struct winsize ws;
    *cols = 80, *rows = 24;
    if ((ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) &&
        ws.ws_col && ws.ws_row)
        *cols = ws.ws_col, *rows = ws.ws_row;
}

/* Our TTY to raw mode, put back at exit and on the signals that end us. */
static void tty_raw(void)
{
    static bool at_exit;
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio) < 0)
        return;
    static const int fatal[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};
    struct sigaction fa = {.sa_handler = on_fatal_signal};
    sigemptyset(&fa.sa_mask);
    for (size_t i = 0; i < ARRAY_SIZE(fatal); i++)
        sigaction(fatal[i], &fa, NULL);
    tio_saved = 1;
    if (!at_exit)
        atexit(restore_tty);
    at_exit = true;
    struct termios raw = saved_tio;
    cfmakeraw(&raw);
    tcsetattr(STDIN_FILENO, TCSANOW, &raw);
}

/* Keystrokes and resizes to envd until the stream is over. */
static void *terminal_input_main(void *ud)
{
    struct run *r = ud;
    unsigned pid = wait_started(r);
    if (!pid)
        return NULL;
    struct e2b_process_sel sel = {.pid = pid};
    bool in_open = true, eot_due = false;
    struct timespec last_eot = {0};
    char buf[16384];
    for (;;) {
        /* ^D ends input only when the terminal is in canonical mode: one
         * typed ahead of a program that sets its own mode (readline) turns
         * into a plain byte. So after our input is over, each time the
         * program prints (a prompt: it reads again) it gets another ^D, at
         * most every EOT_GAP_MS so a chatty program is not flooded. */
        enum { EOT_GAP_MS = 100 };
        int timeout = -1;
        if (eot_due) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long long since = (now.tv_sec - last_eot.tv_sec) * 1000LL + (now.tv_nsec - last_eot.tv_nsec) / 1000000;
            timeout = since >= EOT_GAP_MS ? 0 : (int)(EOT_GAP_MS - since);
        }
        struct pollfd p[4] = {{.fd = r->wake[0], .events = POLLIN},
                              {.fd = winch_pipe[0], .events = POLLIN},
                              {.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN},
                              {.fd = r->nudge[0], .events = POLLIN}};
        int np = poll(p, 4, timeout);
        if (np < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents)
            break;
        _cleanup_error_ struct e2b_error *err = NULL;
        if (p[3].revents) {
            char drain[256];
            (void)!read(r->nudge[0], drain, sizeof(drain));
            eot_due = true;
            continue;
        }
        if (np == 0 && eot_due) {
            eot_due = false;
            clock_gettime(CLOCK_MONOTONIC, &last_eot);
            (void)e2b_envd_process_send_input(&r->c, sel, true, "\x04", 1, &err);
            continue;
        }
        if (p[1].revents) {
            char drain[64];
            (void)!read(winch_pipe[0], drain, sizeof(drain));
            unsigned cols, rows;
            get_size(&cols, &rows);
            (void)e2b_envd_process_resize(&r->c, sel, cols, rows, &err);
            e2b_error_free(TAKE_PTR(err));
        }
        if (p[2].revents) {
            ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                /* Input that is not a terminal ran out: end the shell's input
                 * as a terminal would, with ^D, and keep showing output. */
                in_open = false;
                clock_gettime(CLOCK_MONOTONIC, &last_eot);
                (void)e2b_envd_process_send_input(&r->c, sel, true, "\x04", 1, &err);
                __atomic_store_n(&r->input_over, true, __ATOMIC_RELEASE);
            } else {
                (void)e2b_envd_process_send_input(&r->c, sel, true, buf, (size_t)n, &err);
            }
        }
    }
    return NULL;
}

int e2b_process_terminal(const struct e2b_envd_endpoint *ep, const struct e2b_terminal_opts *o,
                         int *ret_exit, struct e2b_error **err)
{
    static const char *const login_shell[] = {
        "/bin/sh", "-c", "if [ -x /bin/bash ]; then exec /bin/bash -i -l; else exec /bin/sh -i -l; fi",
        NULL};
    _cleanup_json_ json_t *env = o->envs ? json_deep_copy(o->envs) : json_object();
    const char *term = getenv("TERM");
    if (!json_object_get(env, "TERM"))
        json_object_set_new(env, "TERM", json_string(term && *term ? term : "xterm-256color"));
    if (!json_object_get(env, "LANG"))
        json_object_set_new(env, "LANG", json_string("C.UTF-8"));
    unsigned cols, rows;
    get_size(&cols, &rows);
    _cleanup_json_ json_t *req = e2b_process_start_request(o->argv ? o->argv : login_shell, env, o->cwd, NULL,
                                                           true, cols, rows);

    struct run r;
    run_init(&r, ep, o->user);
    r.c.keepalive_s = 50; /* a quiet shell through a proxy must not look idle */
    if (pipe2(r.wake, O_CLOEXEC) < 0 || pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
        pipe2(r.nudge, O_CLOEXEC | O_NONBLOCK) < 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            if (winch_pipe[i] >= 0)
                close(winch_pipe[i]);
            winch_pipe[i] = -1;
        }
        run_release(&r);
        return e2b_error_sys(err, e, "cannot make a pipe");
    }
    struct sigaction sa = {.sa_handler = on_winch, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGWINCH, &sa, NULL);
    tty_raw();

    pthread_t tid;
    bool thread = pthread_create(&tid, NULL, terminal_input_main, &r) == 0;
    struct e2b_process_events ev = {.on_start = on_start, .on_output = on_output, .on_end = on_end,
                                    .ud = &r};
    int rc = e2b_envd_process_start(&r.c, req, 0, &ev, err);
    run_over(&r);
    if (thread)
        pthread_join(tid, NULL);
    restore_tty();
    signal(SIGWINCH, SIG_DFL);
    for (int i = 0; i < 2; i++) {
        close(winch_pipe[i]);
        winch_pipe[i] = -1;
    }
    rc = run_result(&r, rc, true, "shell", err);
    *ret_exit = r.exit_code;
    run_release(&r);
    return rc;
}
