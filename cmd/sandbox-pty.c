/* sandbox-pty.c - `e2b sandbox pty`: an interactive terminal in a sandbox.
 *
 * Our TTY goes raw; a Start stream with a pty runs the shell and its output
 * comes back as pty data events; keystrokes go as SendInput calls from a
 * second thread (libcurl's easy interface runs one transfer per thread),
 * and SIGWINCH turns into Update calls that resize the remote pty. The
 * terminal is restored on every way out: normal end, error, and the
 * signals that end us.
 */
#include "cmd.h"
#include "sandbox-client.h"
#include "sandbox-cli.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>

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

struct session {
    struct e2b_envd_client c;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned pid;         /* 0 until the start event */
    bool done;            /* the stream is over */
    int exit_code;
    bool ended;
    int wake[2];          /* written when the stream is over */
    /* Once our input has run out: the program printed something since the
     * last ^D, so it may be reading again (see input_main). */
    bool input_over;
    int nudge[2];
};

static void get_size(unsigned *cols, unsigned *rows)
{
    struct winsize ws;
    *cols = 80, *rows = 24;
    if ((ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) &&
        ws.ws_col && ws.ws_row)
        *cols = ws.ws_col, *rows = ws.ws_row;
}

static int on_start(unsigned pid, void *ud)
{
    struct session *s = ud;
    pthread_mutex_lock(&s->lock);
    s->pid = pid;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static int on_output(enum e2b_output_kind kind, const void *data, size_t len, void *ud)
{
    struct session *s = ud;
    if (__atomic_load_n(&s->input_over, __ATOMIC_ACQUIRE))
        (void)!write(s->nudge[1], "n", 1); /* nonblocking: a full pipe already says it */
    const char *p = data;
    int fd = kind == E2B_OUT_STDERR ? STDERR_FILENO : STDOUT_FILENO;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0; /* our terminal went away; the stream still ends normally */
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int on_end(const struct e2b_process_end *end, void *ud)
{
    struct session *s = ud;
    s->exit_code = end->exit_code;
    s->ended = true;
    return 0;
}

/* Keystrokes and resizes to envd until the stream is over. */
static void *input_main(void *ud)
{
    struct session *s = ud;
    pthread_mutex_lock(&s->lock);
    while (!s->pid && !s->done)
        pthread_cond_wait(&s->cond, &s->lock);
    unsigned pid = s->pid;
    pthread_mutex_unlock(&s->lock);
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
        struct pollfd p[4] = {{.fd = s->wake[0], .events = POLLIN},
                              {.fd = winch_pipe[0], .events = POLLIN},
                              {.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN},
                              {.fd = s->nudge[0], .events = POLLIN}};
        int np = poll(p, 4, timeout);
        if (np < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents)
            break;
        if (p[3].revents) {
            char drain[256];
            (void)!read(s->nudge[0], drain, sizeof(drain));
            eot_due = true;
            continue;
        }
        if (np == 0 && eot_due) {
            struct e2b_error *err = NULL;
            eot_due = false;
            clock_gettime(CLOCK_MONOTONIC, &last_eot);
            e2b_envd_process_send_input(&s->c, sel, true, "\x04", 1, &err);
            e2b_error_free(err);
            continue;
        }
        if (p[1].revents) {
            char drain[64];
            (void)!read(winch_pipe[0], drain, sizeof(drain));
            unsigned cols, rows;
            get_size(&cols, &rows);
            struct e2b_error *err = NULL;
            e2b_envd_process_resize(&s->c, sel, cols, rows, &err);
            e2b_error_free(err);
        }
        if (p[2].revents) {
            ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            struct e2b_error *err = NULL;
            if (n <= 0) {
                /* Input that is not a terminal ran out: end the shell's input
                 * as a terminal would, with ^D, and keep showing output. */
                in_open = false;
                clock_gettime(CLOCK_MONOTONIC, &last_eot);
                e2b_envd_process_send_input(&s->c, sel, true, "\x04", 1, &err);
                __atomic_store_n(&s->input_over, true, __ATOMIC_RELEASE);
            } else {
                e2b_envd_process_send_input(&s->c, sel, true, buf, (size_t)n, &err);
            }
            e2b_error_free(err);
        }
    }
    return NULL;
}

const struct e2b_opt opts_sandbox_pty[] = {
    E2B_OPT_STRING('u', "user", "USER", "user for the shell (default: the sandbox's)"),
    E2B_OPT_STRING('c', "cwd", "DIR", "working directory"),
    E2B_OPT_LIST('e', "env", "KEY=VALUE", "environment variable (repeatable)"),
    E2B_OPT_STRING(0, "envd", "URL", "talk to this envd (http://HOST:PORT or unix:PATH) instead of a sandbox's"),
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "sandbox ID ('-' with --envd)", E2B_COMPLETE_SANDBOX),
    E2B_OPT_ARGS("command", E2B_OPTF_STOP,
                 "program and arguments to run in the terminal (default: a login shell)"),
    E2B_OPT_END,
};

int cmd_sandbox_pty(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *env = NULL, *req = NULL;
    int usage = e2b_cli_parse_kv(e2b_args_list(args, "env", NULL), "--env", &env);
    if (usage)
        return usage;
    struct e2b_envd_endpoint ep;
    if (e2b_cli_envd_endpoint(ctx, args, &b, &ep) < 0)
        return 125;
    const char *term = getenv("TERM");
    if (!json_object_get(env, "TERM"))
        json_object_set_new(env, "TERM", json_string(term && *term ? term : "xterm-256color"));
    if (!json_object_get(env, "LANG"))
        json_object_set_new(env, "LANG", json_string("C.UTF-8"));
    size_t n;
    const char *const *cmd = e2b_args_list(args, "command", &n);
    static const char *const shell[] = {
        "/bin/sh", "-c", "if [ -x /bin/bash ]; then exec /bin/bash -i -l; else exec /bin/sh -i -l; fi",
        NULL};
    unsigned cols, rows;
    get_size(&cols, &rows);
    req = e2b_process_start_request(n ? cmd : shell, env, e2b_args_str(args, "cwd"), NULL, true, cols,
                                    rows);

    struct session s = {.c = {.ep = &ep, .user = e2b_args_str(args, "user"), .keepalive_s = 50},
                        .wake = {-1, -1}, .nudge = {-1, -1}};
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.cond, NULL);
    if (pipe2(s.wake, O_CLOEXEC) < 0 || pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
        pipe2(s.nudge, O_CLOEXEC | O_NONBLOCK) < 0) {
        e2b_envd_endpoint_release(&ep);
        e2b_error_sys(&err, errno, "cannot make a pipe");
        e2b_fail(err);
        return 125;
    }

    struct sigaction sa = {.sa_handler = on_winch, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGWINCH, &sa, NULL);
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
        static const int fatal[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};
        struct sigaction fa = {.sa_handler = on_fatal_signal};
        sigemptyset(&fa.sa_mask);
        for (size_t i = 0; i < ARRAY_SIZE(fatal); i++)
            sigaction(fatal[i], &fa, NULL);
        tio_saved = 1;
        atexit(restore_tty);
        struct termios raw = saved_tio;
        cfmakeraw(&raw);
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }

    pthread_t tid;
    bool thread = pthread_create(&tid, NULL, input_main, &s) == 0;
    struct e2b_process_events ev = {.on_start = on_start, .on_output = on_output, .on_end = on_end,
                                    .ud = &s};
    int r = e2b_envd_process_start(&s.c, req, 0, &ev, &err);
    pthread_mutex_lock(&s.lock);
    s.done = true;
    pthread_cond_broadcast(&s.cond);
    pthread_mutex_unlock(&s.lock);
    (void)!write(s.wake[1], "x", 1);
    if (thread)
        pthread_join(tid, NULL);
    restore_tty();
    signal(SIGWINCH, SIG_DFL);
    for (int i = 0; i < 2; i++) {
        close(s.wake[i]);
        close(s.nudge[i]);
        close(winch_pipe[i]);
        winch_pipe[i] = -1;
    }
    e2b_envd_endpoint_release(&ep);
    if (r == 0 && !s.ended)
        r = e2b_error_set(&err, E2B_ERR_NETWORK, "the connection to envd ended before the shell did");
    if (r < 0) {
        e2b_fail(err);
        return 125;
    }
    return s.exit_code;
}
