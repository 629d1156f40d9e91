/* checkpoint-criu.c - see checkpoint-criu.h */
#include "checkpoint-criu.h"
#include "fsutil.h"
#include "strbuf.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/utsname.h>
#include <sys/wait.h>

static const char *criu_path(void)
{
    const char *p = getenv("E2B_CRIU");
    return p && *p ? p : "criu";
}

/* Lines of CRIU's log that are not the reason: it cannot raise its own
 * file limit without CAP_SYS_RESOURCE, and says so, and goes on. */
static bool benign(const char *msg)
{
    return strstr(msg, "Can't setup RLIMIT_NOFILE") || strstr(msg, "Dumping FAILED") ||
           strstr(msg, "Restoring FAILED") || e2b_str_has_prefix(msg, "exited, status=");
}

/* What CRIU said went wrong, from its log: its first error lines, one
 * line (malloc'd), or NULL when the log has none. */
static char *log_reason(const char *log)
{
    _cleanup_free_ char *text = NULL;
    if (e2b_read_file(log, &text, NULL, NULL) < 0)
        return NULL;
    _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
    int n = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && n < 3;
         line = strtok_r(NULL, "\n", &save)) {
        /* "(00.123456) Error (criu/file.c:123): what" or, at -v2, without the time */
        char *e = strstr(line, "Error (");
        char *msg = e ? strstr(e, "): ") : NULL;
        if (!msg || benign(msg + 3))
            continue;
        msg += 3;
        size_t len = strlen(msg);
        while (len && (msg[len - 1] == ' ' || msg[len - 1] == '\r'))
            msg[--len] = '\0';
        if (!len || (out.len && strstr(out.buf, msg)))
            continue;
        strbuf_addf(&out, "%s%s", out.len ? "; " : "", msg);
        n++;
    }
    return out.len ? strbuf_detach(&out, NULL) : NULL;
}

/* Run argv with stdin /dev/null and stdout and stderr to log; its status. */
static int run_logged(char **argv, const char *log, int *ret_status, struct e2b_error **err)
{
    _cleanup_close_ int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (lfd < 0)
        return e2b_error_sys(err, errno, "cannot create %s", log);
    pid_t pid = fork();
    if (pid < 0)
        return e2b_error_sys(err, errno, "cannot run %s", argv[0]);
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, 0) < 0 || dup2(lfd, 1) < 0 || dup2(lfd, 2) < 0)
            _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[0], argv);
        dprintf(2, "Error (e2b): cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return e2b_error_sys(err, errno, "cannot wait for %s", argv[0]);
    *ret_status = status;
    return 0;
}

/* The first line of what a command printed, for a message. */
static char *first_line(const char *path)
{
    _cleanup_free_ char *text = NULL;
    if (e2b_read_file(path, &text, NULL, NULL) < 0 || !*text)
        return NULL;
    text[strcspn(text, "\n")] = '\0';
    return xstrdup(text);
}

/* Is criu usable here (`criu check`)? 0 with its version ("4.2.1",
 * malloc'd, may be NULL), or -1 with E2B_ERR_UNSUPPORTED saying why not. */
static int criu_check(char **ret_version, struct e2b_error **err)
{
    char tmpl[] = "/tmp/e2b-criu-check-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot check criu");
    close(fd);
    struct utsname u;
    uname(&u);
    char *ver_argv[] = { (char *)criu_path(), "--version", NULL };
    char *check_argv[] = { (char *)criu_path(), "check", NULL };
    int status = 0, r = -1;
    _cleanup_free_ char *version = NULL, *said = NULL;
    if (run_logged(ver_argv, tmpl, &status, err) < 0)
        goto out;
    version = first_line(tmpl);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !version ||
        !e2b_str_has_prefix(version, "Version: ")) {
        e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                      "checkpoints need CRIU, and '%s' cannot run (%s): install Debian's criu "
                      "(tools/deps.sh), or set E2B_CRIU",
                      criu_path(), version ? version : "not found");
        goto out;
    }
    memmove(version, version + 9, strlen(version + 9) + 1);
    if (run_logged(check_argv, tmpl, &status, err) < 0)
        goto out;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        said = log_reason(tmpl);
        e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                      "criu %s cannot checkpoint on this kernel (Linux %s): %s (tools/deps.sh "
                      "installs a CRIU that can)",
                      version, u.release, said ? said : "`criu check` failed");
        goto out;
    }
    if (ret_version)
        *ret_version = TAKE_PTR(version);
    r = 0;
out:
    unlink(tmpl);
    return r;
}

static char **push(char **v, const char *a) { return e2b_strv_push(v, a); }

static char **push_all(char **v, const char *opt, char **vals)
{
    for (size_t i = 0; vals && vals[i]; i++) {
        v = push(v, opt);
        v = push(v, vals[i]);
    }
    return v;
}

/* Options both ways: they must match between dump and restore. */
static char **common_opts(char **v)
{
    v = push(v, "--tcp-established"); /* loopback connections inside the tree */
    v = push(v, "--skip-in-flight");  /* connections not accepted yet are dropped */
    v = push(v, "--file-locks");
    v = push(v, "--network-lock"); /* the tree is frozen: nothing moves in its network */
    v = push(v, "skip");
    v = push(v, "--manage-cgroups=soft"); /* into the cgroups the caller made */
    return v;
}

/* CRIU's words for what a sandbox commonly runs into, said plainly too. */
static const char *hint_for(const char *reason)
{
    static const struct {
        const char *said, *hint;
    } hints[] = {
        { "Can't dump ghost file",
          "a process holds a deleted file larger than the " E2B_CRIU_GHOST_LIMIT
          "B a checkpoint keeps" },
        { "Can't get 1:16 opt",
          "CRIU before 4.2 cannot save sockets on Linux 6.16 and later: tools/criu.sh installs one that can" },
        { "Can't get rlimit",
          "CRIU reads the limits of a process of another user than root only with CAP_SYS_RESOURCE, "
          "which this machine withholds from root (its bounding set)" },
        { "Can't dump that handle",
          "an inotify watch (envd's directory watchers among them) on the template's overlay, "
          "which gives CRIU no file handles: remove the watcher first" },
        { "External socket is used",
          "a process is connected to a unix socket outside the sandbox" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(hints); i++)
        if (strstr(reason, hints[i].said))
            return hints[i].hint;
    return NULL;
}

/* Why criu failed: its reason, and where its log is; or, where criu
 * cannot run here at all, that. */
static int criu_failed(const char *what, const char *log, int status, struct e2b_error **err)
{
    _cleanup_error_ struct e2b_error *why_not = NULL;
    if (criu_check(NULL, &why_not) < 0)
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "%s", why_not->msg);
    _cleanup_free_ char *reason = log_reason(log);
    const char *hint = reason ? hint_for(reason) : NULL;
    if (reason)
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "CRIU cannot %s: %s%s%s (its log: %s)", what,
                             reason, hint ? ": " : "", hint ? hint : "", log);
    if (WIFSIGNALED(status))
        return e2b_error_set(err, E2B_ERR_GENERIC,
                             "CRIU was killed by signal %d while it tried to %s (its log: %s)",
                             WTERMSIG(status), what, log);
    return e2b_error_set(err, E2B_ERR_GENERIC,
                         "CRIU could not %s and did not say why (its log: %s)", what, log);
}

int e2b_criu_dump(const struct e2b_criu_dump *d, struct e2b_error **err)
{
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)d->pid);
    _cleanup_strv_ char **argv = NULL;
    argv = push(argv, criu_path());
    argv = push(argv, "dump");
    argv = push(argv, "--tree");
    argv = push(argv, pid);
    argv = push(argv, "--images-dir");
    argv = push(argv, d->images_dir);
    argv = push(argv, "--work-dir");
    argv = push(argv, d->images_dir);
    if (d->leave_running)
        argv = push(argv, "--leave-running");
    argv = push(
        argv,
        "--ghost-limit=" E2B_CRIU_GHOST_LIMIT); /* deleted files still open, kept in the images */
    if (d->freeze_cgroup) {
        argv = push(argv, "--freeze-cgroup");
        argv = push(argv, d->freeze_cgroup);
    }
    argv = common_opts(argv);
    argv = push_all(argv, "--external", d->externals);
    int status;
    if (run_logged(argv, d->log, &status, err) < 0)
        return -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    return criu_failed("checkpoint the sandbox", d->log, status, err);
}

static char *restore_log(const struct e2b_criu_restore *r)
{
    return e2b_path_join(r->work_dir, "restore.log");
}

static char *restore_pidfile(const struct e2b_criu_restore *r)
{
    return e2b_path_join(r->work_dir, "restored.pid");
}

_noreturn_ void e2b_criu_restore_exec(const struct e2b_criu_restore *r)
{
    _cleanup_free_ char *log = restore_log(r), *pidfile = restore_pidfile(r);
    _cleanup_strv_ char **argv = NULL;
    argv = push(argv, criu_path());
    argv = push(argv, "restore");
    argv = push(argv, "--images-dir");
    argv = push(argv, r->images_dir);
    argv = push(argv, "--work-dir");
    argv = push(argv, r->work_dir);
    argv = push(argv, "--root");
    argv = push(argv, r->root);
    argv = push(argv, "--restore-detached");
    argv = push(argv, "--restore-sibling");
    argv = push(argv, "--pidfile");
    argv = push(argv, pidfile);
    argv = common_opts(argv);
    argv = push_all(argv, "--external", r->externals);
    argv = push_all(argv, "--inherit-fd", r->inherit);
    argv = push_all(argv, "--cgroup-root", r->cgroup_roots);
    unlink(pidfile);
    int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (lfd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(lfd, 1) < 0 || dup2(lfd, 2) < 0)
        _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[0], argv);
    dprintf(2, "Error (e2b): cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int e2b_criu_restore_finish(const struct e2b_criu_restore *r, int status, pid_t *ret_pid,
                            struct e2b_error **err)
{
    _cleanup_free_ char *log = restore_log(r), *pidfile = restore_pidfile(r), *text = NULL;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return criu_failed("restore the sandbox", log, status, err);
    long pid = 0;
    if (e2b_read_file(pidfile, &text, NULL, NULL) == 0)
        pid = strtol(text, NULL, 10);
    if (pid <= 0)
        return e2b_error_set(err, E2B_ERR_GENERIC,
                             "CRIU restored the sandbox but wrote no pid to %s", pidfile);
    *ret_pid = (pid_t)pid;
    return 0;
}
