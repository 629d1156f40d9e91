/* local-sandbox.c - see local-sandbox.h.
 *
 * Processes per sandbox:
 *   supervisor  (double-forked from the CLI, setsid; owns cgroups, timeout, cleanup)
 *     └─ init   (pid 1 of the sandbox's pid namespace; builds the root, reaps)
 *          └─ envd (the agent; every sandbox process is its descendant)
 * When envd or init dies the sandbox ends; when the supervisor dies init gets
 * SIGTERM (PDEATHSIG), thaws what a pause froze (v1: envd and below are in
 * a freezer cgroup init is not in), kills it all and exits, and the
 * namespaces go with it; the next e2b run removes the state and cgroups.
 */
#include "local-sandbox.h"
#include "cgroup.h"
#include "config.h"
#include "fsutil.h"
#include "http.h"
#include "process-client.h"
#include "sandbox-root.h"
#include "strbuf.h"
#include "template-store.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <time.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define DEFAULT_CPUS 2
#define DEFAULT_MEMORY_MB 1024
#define DEFAULT_DISK_MB 1024
#define DEFAULT_PIDS 4096
#define READY_TIMEOUT_MS 30000

/* ---- paths and state ---------------------------------------------------- */

static char *sandboxes_dir(void)
{
    _cleanup_free_ char *rt = e2b_runtime_dir();
    return e2b_path_join(rt, "sandboxes");
}

static char *sandbox_dir(const char *id)
{
    _cleanup_free_ char *d = sandboxes_dir();
    return e2b_path_join(d, id);
}

static bool valid_id(const char *id)
{
    if (!id || strlen(id) != 20)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

char *e2b_local_envd_base(const char *id)
{
    _cleanup_free_ char *d = sandbox_dir(id);
    return xasprintf("unix:%s/envd.sock", d);
}

/* Serialise read-modify-write of a state file between CLI and supervisor. */
static int lock_dir(const char *dir)
{
    _cleanup_free_ char *p = e2b_path_join(dir, ".lock");
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        flock(fd, LOCK_EX);
    return fd;
}

static int read_state(const char *dir, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *p = e2b_path_join(dir, "state.json");
    return e2b_json_load_file(p, ret, err);
}

/* Atomic (a temp file renamed over it: readers see the old or the new
 * state), but not fsync'd: runtime state does not outlive the machine's
 * uptime, and on a disk-backed runtime dir a sync costs milliseconds. */
static int write_state(const char *dir, json_t *state, struct e2b_error **err)
{
    _cleanup_free_ char *p = e2b_path_join(dir, "state.json");
    _cleanup_free_ char *tmp = e2b_path_join(dir, ".state.json.tmp");
    _cleanup_free_ char *text = e2b_json_dump(state, JSON_INDENT(2));
    _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    size_t n = strlen(text);
    if (fd < 0 || write(fd, text, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || rename(tmp, p) < 0) {
        int e = errno;
        unlink(tmp);
        return e2b_error_sys(err, e, "cannot write %s", p);
    }
    return 0;
}

/* The supervisor (and, while it starts, the CLI creating it) holds an
 * exclusive flock on <state>/supervisor.lock for the sandbox's whole life:
 * a sandbox is alive exactly while that lock is held, whoever has its
 * supervisor's old pid by now. */
static int hold_sandbox(const char *dir, struct e2b_error **err)
{
    _cleanup_free_ char *p = e2b_path_join(dir, "supervisor.lock");
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return e2b_error_sys(err, e, "cannot lock %s", p);
    }
    return fd;
}

/* Makes the sandbox's directory already locked: it is made under a name
 * the reaper passes over (".new-<id>"), locked, then renamed into place.
 * Made in place, a reaper could open the new lock file between its creation
 * and our flock, find it free and remove a sandbox being born. */
static int create_held_dir(const char *id, const char *dir, struct e2b_error **err)
{
    _cleanup_free_ char *root = sandboxes_dir();
    if (e2b_mkdir_p(root, 0700, err) < 0)
        return -1;
    _cleanup_free_ char *staging = xasprintf("%s/.new-%s", root, id);
    if (mkdir(staging, 0700) < 0)
        return e2b_error_sys(err, errno, "cannot create %s", staging);
    int fd = hold_sandbox(staging, err);
    if (fd < 0 || rename(staging, dir) < 0) {
        if (fd >= 0) {
            e2b_error_sys(err, errno, "cannot create %s", dir);
            close(fd);
        }
        e2b_rm_rf(staging, NULL);
        return -1;
    }
    return fd;
}

static bool held(const char *dir)
{
    _cleanup_free_ char *p = e2b_path_join(dir, "supervisor.lock");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool h = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    close(fd); /* drops the shared lock if we got it */
    return h;
}

/* Signal the supervisor only while it still holds the sandbox: the pidfd is
 * opened first, so a pid reused after that check cannot be hit. */
static bool signal_supervisor(const char *dir, pid_t sup, int sig)
{
    if (sup <= 0)
        return false;
    int pfd = (int)syscall(SYS_pidfd_open, sup, 0);
    if (pfd < 0) /* no pidfds (Linux < 5.3): the lock check alone */
        return errno == ENOSYS && held(dir) && kill(sup, sig) == 0;
    bool ok = held(dir) && syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) == 0;
    close(pfd);
    return ok;
}

/* The sandbox's log: JSON lines in sandbox.log, which rotates to
 * sandbox.log.1 at LOG_MAX (so at most twice that on the host, whatever
 * envd or the sandbox writes). Only the supervisor writes it. */
#define LOG_MAX (1 << 20)

static void log_entry_stream(const char *dir, const char *logger, const char *stream, const char *level,
                             const char *msg);
static void log_entry(const char *dir, const char *logger, const char *level, const char *msg)
{
    log_entry_stream(dir, logger, NULL, level, msg);
}

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
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= LOG_MAX) {
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
    log_entry(dir, "supervisor", level, msg);
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
    char *id;
    json_t *state;
    int result_w; /* "ok\n" or the error message, then closed */
};

static int wait_ready_cmd(const char *id, const json_t *state, struct e2b_error **err)
{
    struct e2b_envd_endpoint ep = {.base = e2b_local_envd_base(id), .sandbox_id = xstrdup(id)};
    if (e2b_json_str(state, "envdAccessToken"))
        ep.access_token = xstrdup(e2b_json_str(state, "envdAccessToken"));
    const char *argv[] = {"/bin/sh", "-c", e2b_json_str(state, "readyCmd"), NULL};
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    struct e2b_run_opts o = {.argv = argv, .user = e2b_json_str(state, "defaultUser"),
                             .cwd = e2b_json_str(state, "defaultWorkdir"), .tag = "readyCmd",
                             .out_fd = null, .err_fd = null, .timeout_ms = 10000};
    int64_t deadline = e2b_now_ms() + READY_CMD_TIMEOUT_S * 1000;
    int code = -1, pause_ms = 50, r;
    for (;;) {
        _cleanup_error_ struct e2b_error *e = NULL;
        r = e2b_process_run(&ep, &o, &code, &e);
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
    e2b_envd_endpoint_release(&ep);
    return r;
}

/* In a thread, so the supervisor's loop keeps draining the start command's
 * output (a full pipe would stop it short of ready). */
static void *ready_cmd_main(void *ud)
{
    struct ready_cmd *rc = ud;
    struct e2b_error *err = NULL;
    if (wait_ready_cmd(rc->id, rc->state, &err) < 0)
        dprintf(rc->result_w, "%s\n", err ? err->msg : "the ready command failed");
    else
        dprintf(rc->result_w, "ok\n");
    e2b_error_free(err);
    close(rc->result_w);
    json_decref(rc->state);
    free(rc->id);
    free(rc);
    return NULL;
}

static int ready_cmd_begin(const char *id, const json_t *state, int *ret_result, struct e2b_error **err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return e2b_error_sys(err, errno, "cannot run the ready command");
    struct ready_cmd *rc = xcalloc(1, sizeof(*rc));
    rc->id = xstrdup(id);
    rc->state = json_deep_copy(state);
    rc->result_w = p[1];
    int e = start_detached(ready_cmd_main, rc);
    if (e) {
        close(p[0]), close(p[1]);
        json_decref(rc->state);
        free(rc->id);
        free(rc);
        return e2b_error_sys(err, e, "cannot run the ready command");
    }
    *ret_result = p[0];
    return 0;
}

/* Start it; *out and *err get the read ends of its output. */
static int start_cmd_begin(const char *id, const json_t *state, int *out, int *err_r, struct e2b_error **err)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0)
        return e2b_error_sys(err, errno, "cannot run the start command");
    if (pipe2(pe, O_CLOEXEC) < 0) {
        close(po[0]), close(po[1]);
        return e2b_error_sys(err, errno, "cannot run the start command");
    }
    struct start_cmd *sc = xcalloc(1, sizeof(*sc));
    sc->ep.base = e2b_local_envd_base(id);
    sc->ep.sandbox_id = xstrdup(id);
    if (e2b_json_str(state, "envdAccessToken"))
        sc->ep.access_token = xstrdup(e2b_json_str(state, "envdAccessToken"));
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

/* ---- finding things ------------------------------------------------------- */

char *e2b_local_find_envd(void)
{
    const char *env = getenv("E2B_ENVD");
    if (env && *env)
        return xstrdup(env);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            _cleanup_free_ char *beside = e2b_path_join(self, "envd");
            if (access(beside, X_OK) == 0)
                return TAKE_PTR(beside);
            _cleanup_free_ char *installed = xasprintf("%s/../lib/e2b/envd", self);
            if (access(installed, X_OK) == 0)
                return TAKE_PTR(installed);
        }
    }
    return NULL;
}

/* Does the root's /etc/passwd have this user? */
static bool root_has_user(const char *root, const char *user)
{
    _cleanup_free_ char *p = xasprintf("%s/etc/passwd", root);
    _cleanup_free_ char *data = NULL;
    if (e2b_read_file(p, &data, NULL, NULL) < 0)
        return false;
    size_t n = strlen(user);
    for (char *line = data; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, user, n) == 0 && line[n] == ':')
            return true;
    return false;
}

/* ---- envd over its socket ------------------------------------------------- */

/* envd writes one byte to the readiness pipe once it listens; EOF means
 * init or envd died first. No polling: the byte wakes us at once. */
static int wait_envd(int ready_fd, struct e2b_error **err)
{
    struct pollfd pfd = {.fd = ready_fd, .events = POLLIN};
    int64_t deadline = e2b_now_ms() + READY_TIMEOUT_MS;
    for (;;) {
        int64_t left = deadline - e2b_now_ms();
        if (left <= 0)
            return e2b_error_set(err, E2B_ERR_TIMEOUT, "envd did not answer within %d s",
                                 READY_TIMEOUT_MS / 1000);
        int n = poll(&pfd, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return e2b_error_sys(err, errno, "cannot wait for envd");
        if (n == 0)
            continue;
        char c;
        ssize_t r = read(ready_fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        return r == 1 ? 0 : e2b_error_set(err, E2B_ERR_GENERIC, "the sandbox exited while starting");
    }
}

/* ---- the supervisor ------------------------------------------------------- */

struct supervisor {
    char *id;
    char *dir;
    pid_t init_pid;
    struct e2b_sandbox_root root;
};

static void supervisor_cleanup(struct supervisor *s, const char *why)
{
    sbx_log(s->dir, "info", "sandbox ends: %s", why);
    e2b_cgroup_freeze(s->id, false, NULL); /* frozen tasks cannot take SIGKILL */
    if (s->init_pid > 0) {
        kill(s->init_pid, SIGKILL);
        while (waitpid(s->init_pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    e2b_cgroup_destroy(s->id);
    e2b_rm_rf(s->dir, NULL);
}

/* Report to the waiting CLI: "ok" or the error message. */
static void report(int fd, const char *msg)
{
    if (fd < 0)
        return;
    /* One line: init inherits this pipe, so the reader cannot wait for EOF. */
    dprintf(fd, "%s\n", msg);
    close(fd);
}

/* What init said before it died, in front of our own error. */
static void wrap_boot_log(struct supervisor *s, struct e2b_error **err)
{
    if (s->init_pid > 0) { /* the start failed: init's last words are written once it is gone */
        kill(s->init_pid, SIGKILL);
        while (waitpid(s->init_pid, NULL, 0) < 0 && errno == EINTR)
            ;
        s->init_pid = -1;
    }
    _cleanup_free_ char *boot = xasprintf("%s/init.log", s->dir);
    _cleanup_free_ char *log = NULL;
    if (e2b_read_file_untrusted(boot, 4096, &log, NULL, NULL) == 0 && *log) {
        size_t n = strlen(log);
        while (n && log[n - 1] == '\n')
            log[--n] = '\0';
        e2b_error_wrap(err, "%s", log);
    }
}

/* envd's /init body: the global env, default user and, for secure
 * sandboxes, the token. envd reads it before it listens (--init-fd). */
static char *envd_init_body(const char *id, const json_t *state)
{
    json_t *init = json_object();
    json_t *env = json_object();
    json_object_update(env, json_object_get(state, "envVars"));
    json_object_set_new(env, "E2B_SANDBOX", json_string("true"));
    json_object_set_new(env, "E2B_SANDBOX_ID", json_string(id));
    json_object_set_new(env, "E2B_TEMPLATE_ID", json_string(e2b_json_str(state, "templateID")));
    json_object_set_new(init, "envVars", env);
    json_object_set(init, "defaultUser", json_object_get(state, "defaultUser"));
    if (e2b_json_str(state, "defaultWorkdir"))
        json_object_set(init, "defaultWorkdir", json_object_get(state, "defaultWorkdir"));
    if (e2b_json_str(state, "envdAccessToken"))
        json_object_set(init, "accessToken", json_object_get(state, "envdAccessToken"));
    _cleanup_free_ char *ts = e2b_rfc3339(e2b_wall_ms());
    json_object_set_new(init, "timestamp", json_string(ts));
    char *body = e2b_json_dump(init, 0);
    json_decref(init);
    return body;
}

static _noreturn_ void supervise(struct supervisor *s, const struct e2b_local_options *o,
                                 json_t *state, int ready_fd)
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

    struct e2b_cgroup_limits lim = {
        .memory_bytes = (uint64_t)json_integer_value(json_object_get(state, "memoryMB")) << 20,
        .pids_max = (uint64_t)(o->pids_max ? o->pids_max : DEFAULT_PIDS),
        .cpu_count = (unsigned)json_integer_value(json_object_get(state, "cpuCount")),
        .loop_devices = s->root.image != NULL,
    };
    /* the template build stays in the store while this sandbox runs from it */
    if (e2b_store_pin(s->root.lower ? s->root.lower : s->root.image, &err) < 0)
        goto fail;
    if (!s->root.userns && e2b_cgroup_create(s->id, &lim, &err) < 0)
        goto fail;
    s->root.envd_init = envd_init_body(s->id, state);
    if (e2b_sandbox_root_spawn(&s->root, s->id, &s->init_pid, &err) < 0) {
        wrap_boot_log(s, &err);
        goto fail;
    }
    /* From here the sandbox exists; it is fully set up once envd listens
     * (with its /init applied). */
    int wr = wait_envd(s->root.ready_fd, &err);
    close(s->root.ready_fd);
    if (wr < 0) {
        wrap_boot_log(s, &err);
        goto fail;
    }
    {
        /* on what is there now: a set-timeout may have come while it started */
        int lk = lock_dir(s->dir);
        json_t *cur = NULL;
        if (lk >= 0 && read_state(s->dir, &cur, NULL) == 0) {
            json_decref(state);
            state = cur;
        }
        json_object_set_new(state, "state", json_string("running"));
        json_object_set_new(state, "initPid", json_integer(s->init_pid));
        int r = lk < 0 ? e2b_error_sys(&err, errno, "cannot lock the state of sandbox '%s'", s->id)
                       : write_state(s->dir, state, &err);
        if (lk >= 0)
            close(lk);
        if (r < 0)
            goto fail;
    }
    sbx_log(s->dir, "info", "sandbox started from template '%s'", e2b_json_str(state, "templateID"));
    /* Output to the log: envd's, and the start command's when the template has one. */
    struct line_buf *logs = xcalloc(3, sizeof(*logs));
    logs[0] = (struct line_buf){.fd = s->root.log_fd, .logger = "envd"};
    logs[1] = (struct line_buf){.fd = -1, .logger = "startCmd", .stream = "stdout"};
    logs[2] = (struct line_buf){.fd = -1, .logger = "startCmd", .stream = "stderr"};
    if (e2b_json_str(state, "startCmd") && *e2b_json_str(state, "startCmd")) {
        sbx_log(s->dir, "info", "start command: %s", e2b_json_str(state, "startCmd"));
        if (start_cmd_begin(s->id, state, &logs[1].fd, &logs[2].fd, &err) < 0)
            goto fail;
    }
    /* "ok" to the CLI now, or once the ready command succeeds */
    int ready_result = -1;
    if (e2b_json_str(state, "readyCmd") && *e2b_json_str(state, "readyCmd")) {
        if (ready_cmd_begin(s->id, state, &ready_result, &err) < 0)
            goto fail;
    } else {
        report(ready_fd, "ok");
        ready_fd = -1;
    }

    /* Wait for the end: the deadline (unless paused), a kill, or init's
     * death; meanwhile the output goes to the log. At the deadline the
     * sandbox is killed, or paused when its lifecycle says so (autoPause). */
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    bool reload = false;
    for (;;) {
        if (reload) {
            json_t *cur = NULL;
            int lk = lock_dir(s->dir);
            if (read_state(s->dir, &cur, NULL) == 0) {
                json_decref(state);
                state = cur;
            }
            if (lk >= 0)
                close(lk);
            reload = false;
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
                supervisor_cleanup(s, "timeout");
                _exit(0);
            }
            _cleanup_error_ struct e2b_error *perr = NULL;
            if (e2b_local_pause(s->id, &perr) < 0) {
                sbx_log(s->dir, "error", "cannot pause at the timeout: %s", perr->msg);
                supervisor_cleanup(s, "timeout");
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
            supervisor_cleanup(s, "killed");
            _exit(0);
        }
        if (sig == SIGCHLD) {
            int status;
            pid_t w;
            while ((w = waitpid(-1, &status, WNOHANG)) > 0)
                if (w == s->init_pid) {
                    s->init_pid = -1;
                    while (logs[0].fd >= 0 && pump_log(&logs[0], s->dir)) /* envd's last words */
                        ;
                    supervisor_cleanup(s, WIFSIGNALED(status) ? "init was killed" : "envd exited");
                    _exit(0);
                }
        }
        reload = true; /* SIGUSR1: the state changed */
    }

fail:
    sbx_log(s->dir, "error", "cannot start: %s", err ? err->msg : "unknown error");
    report(ready_fd, err ? err->msg : "unknown error");
    supervisor_cleanup(s, "start failed");
    _exit(1);
}

/* ---- create ----------------------------------------------------------------- */

static int resolve_template(const char *name, struct e2b_sandbox_root *root, json_t *state,
                            struct e2b_error **err)
{
    if (STREQ(name, "host")) {
        root->host = true;
        root->template_id = xstrdup("host");
        root->build_id = xstrdup("host");
        json_object_set_new(state, "templateID", json_string("host"));
        json_object_set_new(state, "alias", json_string("host"));
        /* unprivileged with one mapped id, only root exists inside */
        bool ids = geteuid() == 0 || e2b_sandbox_userns_ranges();
        json_object_set_new(state, "defaultUser", json_string(ids && root_has_user("", "user") ? "user" : "root"));
        return 0;
    }
    struct e2b_store store;
    if (e2b_store_open(&store, err) < 0)
        return -1;
    _cleanup_json_ json_t *meta = NULL;
    _cleanup_free_ char *dir = NULL;
    int r = e2b_store_find(&store, name, &meta, &dir, err);
    e2b_store_close(&store);
    if (r < 0) {
        if ((*err)->code == E2B_ERR_NOT_FOUND)
            e2b_error_wrap(err, "cannot start a sandbox (build it with 'e2b template build', or use 'host')");
        return -1;
    }
    /* The tree when the store has it (no block device, page cache shared
     * with the build), else the ext4 image on a loop device. */
    _cleanup_free_ char *tree = e2b_path_join(dir, "rootfs");
    _cleanup_free_ char *image = e2b_path_join(dir, "rootfs.ext4");
    struct stat st;
    if (stat(tree, &st) == 0 && S_ISDIR(st.st_mode))
        root->lower = TAKE_PTR(tree);
    else if (stat(image, &st) == 0 && S_ISREG(st.st_mode) && geteuid() != 0)
        return e2b_error_set(err, E2B_ERR_PERMISSION,
                             "template '%s' has only an ext4 image, and loop devices need root (keep its rootfs/ tree)",
                             name);
    else if (stat(image, &st) == 0 && S_ISREG(st.st_mode))
        root->image = TAKE_PTR(image);
    else
        return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                             "template '%s' has no root file system (neither %s/rootfs/ nor rootfs.ext4)",
                             name, dir);
    json_object_set_new(state, "templateID", json_string(e2b_json_str(meta, "templateID")));
    root->template_id = xstrdup(e2b_json_str(meta, "templateID") ? e2b_json_str(meta, "templateID") : name);
    if (e2b_json_str(meta, "buildID")) {
        root->build_id = xstrdup(e2b_json_str(meta, "buildID"));
        json_object_set_new(state, "buildID", json_string(root->build_id));
    }
    json_t *aliases = json_object_get(meta, "aliases");
    if (json_array_size(aliases))
        json_object_set(state, "alias", json_array_get(aliases, 0));
    const char *user = e2b_json_str(meta, "user");
    if (!user || !*user)
        user = root->lower && root_has_user(root->lower, "user") ? "user" : "root";
    json_object_set_new(state, "defaultUser", json_string(user));
    if (e2b_json_str(meta, "workdir"))
        json_object_set(state, "defaultWorkdir", json_object_get(meta, "workdir"));
    if (e2b_json_str(meta, "startCmd") && *e2b_json_str(meta, "startCmd"))
        json_object_set(state, "startCmd", json_object_get(meta, "startCmd"));
    if (e2b_json_str(meta, "readyCmd") && *e2b_json_str(meta, "readyCmd"))
        json_object_set(state, "readyCmd", json_object_get(meta, "readyCmd"));
    json_t *env = json_object_get(meta, "env");
    if (json_is_object(env))
        json_object_set(state, "templateEnv", env);
    if (!json_object_get(state, "cpuCount") && e2b_json_int(meta, "cpuCount", 0))
        json_object_set(state, "cpuCount", json_object_get(meta, "cpuCount"));
    if (!json_object_get(state, "memoryMB") && e2b_json_int(meta, "memoryMB", 0))
        json_object_set(state, "memoryMB", json_object_get(meta, "memoryMB"));
    return 0;
}

static char *random_token(void)
{
    _cleanup_free_ char *a = e2b_random_id();
    _cleanup_free_ char *b = e2b_random_id();
    return xasprintf("%s%s", a, b);
}

int e2b_local_create(const struct e2b_local_options *o, json_t **ret_state, struct e2b_error **err)
{
    e2b_local_reap();
    _cleanup_free_ char *envd = o->envd_path ? xstrdup(o->envd_path) : e2b_local_find_envd();
    if (!envd || access(envd, X_OK) < 0)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                             "cannot find the guest agent 'envd' (build it, or set E2B_ENVD)");
    if (o->timeout_s <= 0)
        return e2b_error_set(err, E2B_ERR_INVALID, "timeout must be greater than 0");

    _cleanup_free_ char *started = NULL;
    int lock = -1;
    struct supervisor s = {.id = e2b_random_id()};
    s.dir = sandbox_dir(s.id);
    s.root.envd = xstrdup(envd);
    s.root.disk_mb = o->disk_mb ? o->disk_mb : DEFAULT_DISK_MB;
    s.root.internet = o->internet;
    s.root.userns = geteuid() != 0;
    s.root.pids_max = o->pids_max ? o->pids_max : DEFAULT_PIDS;
    _cleanup_json_ json_t *state = json_object();
    if (resolve_template(o->template ? o->template : "base", &s.root, state, err) < 0)
        goto fail_early;
    lock = create_held_dir(s.id, s.dir, err);
    if (lock < 0)
        goto fail_early;
    s.root.state_dir = xstrdup(s.dir);

    int64_t now = e2b_wall_ms();
    started = e2b_rfc3339(now);
    json_object_set_new(state, "sandboxID", json_string(s.id));
    json_object_set_new(state, "state", json_string("starting"));
    json_object_set_new(state, "startedAt", json_string(started));
    json_object_set_new(state, "startedAtMs", json_integer(now));
    json_object_set_new(state, "deadlineBootMs", json_integer(e2b_boot_ms() + (int64_t)o->timeout_s * 1000));
    if (o->cpu_count || !json_object_get(state, "cpuCount"))
        json_object_set_new(state, "cpuCount", json_integer(o->cpu_count ? o->cpu_count : DEFAULT_CPUS));
    if (o->memory_mb || !json_object_get(state, "memoryMB"))
        json_object_set_new(state, "memoryMB",
                            json_integer(o->memory_mb ? o->memory_mb : DEFAULT_MEMORY_MB));
    json_object_set_new(state, "diskSizeMB", json_integer(s.root.disk_mb));
    json_object_set(state, "metadata", o->metadata ? o->metadata : json_object());
    json_t *env = json_object();
    json_object_update(env, json_object_get(state, "templateEnv"));
    if (o->env_vars)
        json_object_update(env, o->env_vars);
    json_object_set_new(state, "envVars", env);
    json_object_del(state, "templateEnv");
    json_object_set_new(state, "allowInternetAccess", json_boolean(o->internet));
    json_object_set_new(state, "lifecycle", json_pack("{s:b, s:s}", "autoResume", 0, "onTimeout",
                                                      o->auto_pause ? "pause" : "kill"));
    if (s.root.userns) {
        /* No delegated cgroup here: say so rather than pretend to limit. */
        json_object_set_new(state, "unprivileged", json_true());
        _cleanup_free_ char *lim = xasprintf("none but at most %d processes per user inside (unprivileged, "
                                             "no delegated cgroup: cpu and memory are not limited)",
                                             s.root.pids_max);
        json_object_set_new(state, "limits", json_string(lim));
    }
    if (o->secure) {
        _cleanup_free_ char *tok = random_token();
        json_object_set_new(state, "envdAccessToken", json_string(tok));
    }
    s.root.user = xstrdup(e2b_json_str(state, "defaultUser"));
    json_object_set_new(state, "supervisorPid", json_integer(0));
    if (write_state(s.dir, state, err) < 0)
        goto fail_early;

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        e2b_error_sys(err, errno, "cannot start sandbox");
        goto fail_early;
    }
    fflush(NULL);
    pid_t middle = fork();
    if (middle < 0) {
        e2b_error_sys(err, errno, "cannot start sandbox");
        close(pipefd[0]), close(pipefd[1]);
        goto fail_early;
    }
    if (middle == 0) {
        close(pipefd[0]);
        setsid();
        pid_t sup = fork();
        if (sup != 0)
            _exit(sup < 0 ? 1 : 0);
        /* The supervisor: no terminal, its own log, our signals back to default. */
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        _cleanup_free_ char *logp = xasprintf("%s/supervisor.log", s.dir);
        int log = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        dup2(null, 0), dup2(log >= 0 ? log : null, 1), dup2(log >= 0 ? log : null, 2);
        /* Nothing else of the creator's: a server's listening socket or its
         * clients' connections must not live on in every sandbox it made.
         * 3: the pipe to the CLI, 4: the sandbox's lock (moved up first, so
         * one dup cannot overwrite the other). */
        int rep = fcntl(pipefd[1], F_DUPFD_CLOEXEC, 100), lk4 = fcntl(lock, F_DUPFD_CLOEXEC, 100);
        if (rep < 0 || lk4 < 0 || dup3(rep, 3, O_CLOEXEC) < 0 || dup3(lk4, 4, O_CLOEXEC) < 0)
            _exit(1);
        pipefd[1] = 3;
        close_range(5, ~0U, 0);
        signal(SIGPIPE, SIG_IGN);
        int lk = lock_dir(s.dir);
        json_object_set_new(state, "supervisorPid", json_integer(getpid()));
        write_state(s.dir, state, NULL);
        if (lk >= 0)
            close(lk);
        supervise(&s, o, json_incref(state), pipefd[1]);
    }
    close(pipefd[1]);
    while (waitpid(middle, NULL, 0) < 0 && errno == EINTR)
        ;
    /* Wait for the supervisor's word: "ok" or why not. */
    struct strbuf msg = STRBUF_INIT;
    struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
    int64_t deadline = e2b_now_ms() + READY_TIMEOUT_MS + 5000 +
                       (e2b_json_str(state, "readyCmd") ? READY_CMD_TIMEOUT_S * 1000 : 0);
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
    close(lock); /* the supervisor holds the sandbox from here */
    lock = -1;
    strbuf_rtrim(&msg);
    if (!STREQ(msg.buf, "ok")) {
        e2b_error_set(err, E2B_ERR_GENERIC, "cannot start sandbox from '%s': %s",
                      o->template ? o->template : "base", msg.len ? msg.buf : "the supervisor died");
        strbuf_release(&msg);
        e2b_local_kill(s.id, NULL);
        goto fail_late;
    }
    strbuf_release(&msg);
    json_t *fresh = NULL;
    if (read_state(s.dir, &fresh, err) < 0)
        goto fail_late;
    *ret_state = fresh;
    e2b_sandbox_root_release(&s.root);
    free(s.id);
    free(s.dir);
    return 0;

fail_early:
    e2b_rm_rf(s.dir, NULL);
    if (lock >= 0)
        close(lock);
fail_late:
    e2b_sandbox_root_release(&s.root);
    free(s.id);
    free(s.dir);
    return -1;
}

/* ---- the other verbs ------------------------------------------------------ */

static int load(const char *id, char **ret_dir, json_t **ret_state, struct e2b_error **err)
{
    if (!valid_id(id))
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "sandbox '%s' not found", id ? id : "");
    _cleanup_free_ char *dir = sandbox_dir(id);
    json_t *st = NULL;
    if (access(dir, F_OK) < 0 || read_state(dir, &st, NULL) < 0)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "sandbox '%s' not found", id);
    if (!held(dir)) {
        json_decref(st);
        e2b_local_reap();
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "sandbox '%s' not found (it has ended)", id);
    }
    if (ret_state)
        *ret_state = st;
    else
        json_decref(st);
    if (ret_dir)
        *ret_dir = TAKE_PTR(dir);
    return 0;
}

int e2b_local_get(const char *id, json_t **ret_state, struct e2b_error **err)
{
    return load(id, NULL, ret_state, err);
}

int e2b_local_list(json_t **ret_states, struct e2b_error **err)
{
    e2b_local_reap();
    json_t *list = json_array();
    _cleanup_free_ char *root = sandboxes_dir();
    _cleanup_closedir_ DIR *d = opendir(root);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!valid_id(de->d_name))
            continue;
        json_t *st = NULL;
        if (load(de->d_name, NULL, &st, NULL) == 0) {
            const char *s = e2b_json_str(st, "state");
            if (s && (STREQ(s, "running") || STREQ(s, "paused")))
                json_array_append(list, st);
            json_decref(st);
        }
    }
    *ret_states = list;
    return 0;
}

int e2b_local_kill(const char *id, struct e2b_error **err)
{
    _cleanup_free_ char *dir = NULL;
    _cleanup_json_ json_t *st = NULL;
    if (load(id, &dir, &st, err) < 0)
        return -1;
    pid_t sup = (pid_t)e2b_json_int(st, "supervisorPid", 0);
    signal_supervisor(dir, sup, SIGTERM);
    /* The supervisor removes the state dir when all is gone; wait for that
     * (bounded: 15 s), then kill it and clear up ourselves. */
    for (int i = 0; i < 1500 && access(dir, F_OK) == 0 && held(dir); i++) {
        if (sup <= 0 && i % 10 == 9) { /* still starting: its supervisor's pid comes soon */
            json_t *cur = NULL;
            if (read_state(dir, &cur, NULL) == 0) {
                sup = (pid_t)e2b_json_int(cur, "supervisorPid", 0);
                json_decref(cur);
                signal_supervisor(dir, sup, SIGTERM);
            }
        }
        usleep(10000);
    }
    if (access(dir, F_OK) == 0) {
        signal_supervisor(dir, sup, SIGKILL);
        for (int i = 0; i < 100 && held(dir); i++)
            usleep(10000);
        e2b_local_reap();
    }
    return 0;
}

static int update(const char *id, struct e2b_error **err,
                  int (*fn)(const char *id, json_t *st, void *ud, struct e2b_error **err), void *ud)
{
    _cleanup_free_ char *dir = NULL;
    if (load(id, &dir, NULL, err) < 0)
        return -1;
    int lk = lock_dir(dir);
    if (lk < 0)
        return e2b_error_sys(err, errno, "cannot lock the state of sandbox '%s'", id);
    json_t *st = NULL;
    int r = read_state(dir, &st, err);
    if (r == 0)
        r = fn(id, st, ud, err);
    if (r == 0)
        r = write_state(dir, st, err);
    close(lk);
    if (r == 0) /* re-read the state: the deadline may have moved */
        signal_supervisor(dir, (pid_t)e2b_json_int(st, "supervisorPid", 0), SIGUSR1);
    json_decref(st);
    return r;
}

static bool is_paused(const json_t *st)
{
    return STREQ(e2b_json_str(st, "state") ? e2b_json_str(st, "state") : "", "paused");
}

static int do_set_timeout(const char *id, json_t *st, void *ud, struct e2b_error **err)
{
    int timeout = *(int *)ud;
    /* paused: the clock stands at the pause, so the time counts from the resume */
    int64_t from = is_paused(st) ? e2b_json_int(st, "pausedAtBootMs", e2b_boot_ms()) : e2b_boot_ms();
    json_object_set_new(st, "deadlineBootMs", json_integer(from + (int64_t)timeout * 1000));
    return 0;
}

int e2b_local_set_timeout(const char *id, int timeout_s, struct e2b_error **err)
{
    if (timeout_s <= 0)
        return e2b_error_set(err, E2B_ERR_INVALID, "timeout must be greater than 0");
    return update(id, err, do_set_timeout, &timeout_s);
}

static int do_pause(const char *id, json_t *st, void *ud, struct e2b_error **err)
{
    if (!STREQ(e2b_json_str(st, "state") ? e2b_json_str(st, "state") : "", "running"))
        return e2b_error_set(err, E2B_ERR_EXISTS, "sandbox '%s' is not running (it is %s)", id,
                             e2b_json_str(st, "state") ? e2b_json_str(st, "state") : "unknown");
    if (e2b_cgroup_freeze(id, true, err) < 0)
        return -1;
    json_object_set_new(st, "state", json_string("paused"));
    json_object_set_new(st, "pausedAtBootMs", json_integer(e2b_boot_ms()));
    return 0;
}

int e2b_local_pause(const char *id, struct e2b_error **err)
{
    return update(id, err, do_pause, NULL);
}

struct resume_args {
    int timeout_s;
    bool was_paused;
};

static int do_resume(const char *id, json_t *st, void *ud, struct e2b_error **err)
{
    struct resume_args *a = ud;
    int64_t now = e2b_boot_ms();
    a->was_paused = STREQ(e2b_json_str(st, "state") ? e2b_json_str(st, "state") : "", "paused");
    if (a->was_paused) {
        if (e2b_cgroup_freeze(id, false, err) < 0)
            return -1;
        /* The clock stood still while paused: what was left is left again. */
        int64_t left = e2b_json_int(st, "deadlineBootMs", now) - e2b_json_int(st, "pausedAtBootMs", now);
        json_object_set_new(st, "deadlineBootMs", json_integer(now + (left > 1000 ? left : 1000)));
        json_object_set_new(st, "state", json_string("running"));
        json_object_del(st, "pausedAtBootMs");
    }
    if (a->timeout_s > 0) {
        int64_t want = now + (int64_t)a->timeout_s * 1000;
        /* connect only extends a running sandbox's time; a resumed one gets it outright */
        if (a->was_paused || want > e2b_json_int(st, "deadlineBootMs", 0))
            json_object_set_new(st, "deadlineBootMs", json_integer(want));
    }
    return 0;
}

int e2b_local_resume(const char *id, int timeout_s, bool *ret_was_paused, struct e2b_error **err)
{
    struct resume_args a = {.timeout_s = timeout_s};
    int r = update(id, err, do_resume, &a);
    if (ret_was_paused)
        *ret_was_paused = a.was_paused;
    return r;
}

int e2b_local_metrics(const char *id, json_t **ret, struct e2b_error **err)
{
    _cleanup_json_ json_t *st = NULL;
    if (load(id, NULL, &st, err) < 0)
        return -1;
    struct e2b_cgroup_stats a, b;
    if (e2b_cgroup_stats(id, &a, err) < 0)
        return -1;
    int64_t t0 = e2b_now_ms();
    usleep(100000); /* CPU use is a rate: two samples */
    if (e2b_cgroup_stats(id, &b, err) < 0)
        return -1;
    int64_t dt = e2b_now_ms() - t0;
    long long cpus = e2b_json_int(st, "cpuCount", 1);
    double pct = dt > 0 ? (double)(b.cpu_usage_ns - a.cpu_usage_ns) / ((double)dt * 1e6) * 100.0 / (double)cpus : 0;
    json_t *m = json_object();
    json_object_set_new(m, "timestampUnix", json_integer(e2b_wall_ms() / 1000));
    _cleanup_free_ char *ts = e2b_rfc3339(e2b_wall_ms());
    json_object_set_new(m, "timestamp", json_string(ts));
    json_object_set_new(m, "cpuCount", json_integer(cpus));
    json_object_set_new(m, "cpuUsedPct", json_real((double)(long long)(pct * 100) / 100.0));
    json_object_set_new(m, "memUsed", json_integer((json_int_t)b.memory_bytes));
    json_object_set_new(m, "memTotal", json_integer(e2b_json_int(st, "memoryMB", 0) << 20));
    json_object_set_new(m, "pids", json_integer((json_int_t)b.pids));
    /* The writable layer's file system, seen through init's root. */
    _cleanup_free_ char *rootp = xasprintf("/proc/%lld/root/", e2b_json_int(st, "initPid", 0));
    struct statvfs vfs;
    if (statvfs(rootp, &vfs) == 0) {
        json_object_set_new(m, "diskUsed", json_integer((json_int_t)((vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize)));
        json_object_set_new(m, "diskTotal", json_integer((json_int_t)(vfs.f_blocks * vfs.f_frsize)));
    }
    *ret = m;
    return 0;
}

int e2b_local_logs(const char *id, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *dir = NULL;
    if (load(id, &dir, NULL, err) < 0)
        return -1;
    json_t *list = json_array();
    /* the rotated part first; each at most LOG_MAX (only the supervisor writes them) */
    static const char *const files[] = {"sandbox.log.1", "sandbox.log"};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        _cleanup_free_ char *p = e2b_path_join(dir, files[i]);
        _cleanup_free_ char *data = NULL;
        if (e2b_read_file_untrusted(p, 2 * LOG_MAX, &data, NULL, NULL) < 0)
            continue;
        char *save = NULL;
        for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            json_t *e = json_loads(line, 0, NULL);
            if (e)
                json_array_append_new(list, e);
        }
    }
    *ret = list;
    return 0;
}

/* A create that died between making its staging directory and renaming it
 * leaves ".new-<id>": removed once it is a minute old and nobody holds it. */
static void reap_staging(const char *root, const char *name)
{
    _cleanup_free_ char *dir = e2b_path_join(root, name);
    struct stat sb;
    if (stat(dir, &sb) < 0 || time(NULL) - sb.st_mtime < 60 || held(dir))
        return;
    e2b_rm_rf(dir, NULL);
}

void e2b_local_reap(void)
{
    _cleanup_free_ char *root = sandboxes_dir();
    _cleanup_closedir_ DIR *d = opendir(root);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (strncmp(de->d_name, ".new-", 5) == 0 && valid_id(de->d_name + 5)) {
            reap_staging(root, de->d_name);
            continue;
        }
        if (!valid_id(de->d_name))
            continue;
        _cleanup_free_ char *dir = e2b_path_join(root, de->d_name);
        _cleanup_free_ char *lockp = e2b_path_join(dir, "supervisor.lock");
        struct stat sb;
        if (stat(lockp, &sb) < 0) {
            /* made by an e2b from before the lock: its pid is all there is */
            json_t *st = NULL;
            pid_t sup = read_state(dir, &st, NULL) == 0 ? (pid_t)e2b_json_int(st, "supervisorPid", 0) : 0;
            json_decref(st);
            if (sup > 0 && kill(sup, 0) == 0)
                continue;
        }
        /* Hold it while clearing: nobody takes a sandbox that is going. */
        int fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
            close(fd);
            continue; /* alive */
        }
        e2b_cgroup_destroy(de->d_name);
        e2b_rm_rf(dir, NULL);
        if (fd >= 0)
            close(fd);
    }
}
