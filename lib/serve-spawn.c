/* serve-spawn.c - see serve-spawn.h.
 *
 * Per create: the server makes a socket pair, sends one end to the helper
 * (SCM_RIGHTS over the control socket), writes the spec as JSON to its end
 * and half-closes it; the helper forks a worker that owns the other end,
 * reads the spec, creates, writes {"sandbox": ...} or {"error": {...}} and
 * exits; the server reads until EOF.
 */
#include "serve-spawn.h"
#include "fsutil.h"
#include "strbuf.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

struct e2b_serve_spawner {
    int ctl;   /* control socket to the helper */
    pid_t pid; /* the helper */
};

static bool read_all(int fd, struct strbuf *out)
{
    char tmp[8192];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return false;
        if (n == 0)
            return true;
        strbuf_add(out, tmp, (size_t)n);
    }
}

static json_t *spec_json(const struct e2b_sandbox_spec *s)
{
    json_t *j = json_pack("{s:s?, s:i, s:b, s:b, s:b, s:i, s:i, s:i, s:i}", "template", s->template,
                          "timeout", s->timeout_s, "secure", s->secure, "internet", s->allow_internet,
                          "autoPause", s->auto_pause, "cpu", s->cpu_count, "memory", s->memory_mb,
                          "disk", s->disk_mb, "pids", s->pids_max);
    if (s->runtime)
        json_object_set_new(j, "runtime", json_string(s->runtime));
    if (s->runtime_default)
        json_object_set_new(j, "runtimeDefault", json_string(s->runtime_default));
    if (s->kernel)
        json_object_set_new(j, "kernel", json_string(s->kernel));
    if (s->warm_pool)
        json_object_set_new(j, "warmPool", json_string(s->warm_pool));
    if (s->metadata)
        json_object_set(j, "metadata", s->metadata);
    if (s->env_vars)
        json_object_set(j, "envVars", s->env_vars);
    if (s->auto_resume)
        json_object_set_new(j, "autoResume", json_true());
    if (s->volume_mounts)
        json_object_set(j, "volumeMounts", s->volume_mounts);
    if (s->network)
        json_object_set(j, "network", s->network);
    return j;
}

/* A worker: one create, in a process that has little but the request. */
static _noreturn_ void worker(struct e2b_backend *b, int fd)
{
    prctl(PR_SET_NAME, "e2b"); /* its supervisors look like the CLI's */
    /* a fresh process's signals, as the CLI's create has them */
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD, SIGUSR1};
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        signal(sigs[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct strbuf in = STRBUF_INIT;
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *req = NULL, *sbx = NULL, *reply;
    if (!read_all(fd, &in) || !(req = json_loadb(in.buf, in.len, 0, NULL))) {
        reply = json_pack("{s:{s:i, s:s}}", "error", "code", E2B_ERR_GENERIC, "message",
                          "the create request did not reach the helper whole");
    } else if (e2b_json_str(req, "snapshot")) { /* a runtime may run helpers to save it */
        if (b->ops->snapshots.create(b, e2b_json_str(req, "snapshot"), e2b_json_str(req, "name"),
                                     &sbx, &err) == 0)
            reply = json_pack("{s:o}", "result", sbx);
        else
            reply = json_pack("{s:{s:i, s:s}}", "error", "code", err->code, "message", err->msg);
    } else if (e2b_json_str(req, "fork")) { /* a snapshot, then supervisors */
        if (b->ops->snapshots.fork(b, e2b_json_str(req, "fork"), (int)e2b_json_int(req, "count", 1),
                                   (int)e2b_json_int(req, "timeout", 15), &sbx, &err) == 0)
            reply = json_pack("{s:o}", "result", sbx);
        else
            reply = json_pack("{s:{s:i, s:s}}", "error", "code", err->code, "message", err->msg);
    } else if (e2b_json_str(req, "connect")) { /* a resume: a paused sandbox's supervisor starts */
        bool resumed = false;
        if (b->ops->sandboxes.connect(b, e2b_json_str(req, "connect"),
                                      (int)e2b_json_int(req, "timeout", 0), &sbx, &resumed,
                                      &err) == 0)
            reply = json_pack("{s:o, s:b}", "sandbox", sbx, "resumed", resumed);
        else
            reply = json_pack("{s:{s:i, s:s}}", "error", "code", err->code, "message", err->msg);
    } else {
        struct e2b_sandbox_spec spec = {
            .template = e2b_json_str(req, "template"),
            .timeout_s = (int)e2b_json_int(req, "timeout", 0),
            .metadata = json_object_get(req, "metadata"),
            .env_vars = json_object_get(req, "envVars"),
            .secure = e2b_json_bool(req, "secure", false),
            .allow_internet = e2b_json_bool(req, "internet", false),
            .auto_pause = e2b_json_bool(req, "autoPause", false),
            .cpu_count = (int)e2b_json_int(req, "cpu", 0),
            .memory_mb = (int)e2b_json_int(req, "memory", 0),
            .disk_mb = (int)e2b_json_int(req, "disk", 0),
            .pids_max = (int)e2b_json_int(req, "pids", 0),
            .runtime = e2b_json_str(req, "runtime"),
            .runtime_default = e2b_json_str(req, "runtimeDefault"),
            .kernel = e2b_json_str(req, "kernel"),
            .warm_pool = e2b_json_str(req, "warmPool"),
            .auto_resume = e2b_json_bool(req, "autoResume", false),
            .volume_mounts = json_object_get(req, "volumeMounts"), .network = json_object_get(req, "network"),
        };
        if (b->ops->sandboxes.create(b, &spec, &sbx, &err) == 0)
            reply = json_pack("{s:o}", "sandbox", sbx);
        else
            reply = json_pack("{s:{s:i, s:s}}", "error", "code", err->code, "message", err->msg);
    }
    _cleanup_free_ char *out = e2b_json_dump(reply, 0);
    e2b_send_all(fd, out, strlen(out));
    _exit(0);
}

/* The helper: a worker per request, until the server closes the control socket. */
static _noreturn_ void helper(struct e2b_backend *b, int ctl)
{
    prctl(PR_SET_NAME, "e2b-serve-spawn"); /* what ps shows */
    signal(SIGINT, SIG_IGN);  /* a ^C to the server's group is the server's to act on */
    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        struct pollfd p = {.fd = ctl, .events = POLLIN};
        int pr = poll(&p, 1, 1000); /* wakes to reap finished workers */
        if (pr <= 0)
            continue;
        char byte;
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {.iov_base = &byte, .iov_len = 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                           .msg_controllen = sizeof(cbuf)};
        ssize_t n = recvmsg(ctl, &m, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(0); /* the server is gone */
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        if (!cm || cm->cmsg_type != SCM_RIGHTS)
            continue;
        int fd;
        memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
        pid_t w = fork();
        if (w == 0) {
            close(ctl);
            worker(b, fd);
        }
        close(fd); /* a failed fork: the server reads EOF and says so */
    }
}

int e2b_serve_spawner_start(struct e2b_backend *b, struct e2b_serve_spawner **ret, struct e2b_error **err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return e2b_error_sys(err, errno, "cannot make the create helper's socket");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]), close(sv[1]);
        return e2b_error_sys(err, errno, "cannot start the create helper");
    }
    if (pid == 0) {
        close(sv[0]);
        helper(b, sv[1]);
    }
    close(sv[1]);
    struct e2b_serve_spawner *s = xcalloc(1, sizeof(*s));
    s->ctl = sv[0];
    s->pid = pid;
    *ret = s;
    return 0;
}

/* Send req to a new worker and read its reply. */
static int ask_worker(struct e2b_serve_spawner *s, const json_t *req, json_t **ret_reply,
                      struct e2b_error **err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return e2b_error_sys(err, errno, "cannot start sandbox");
    char byte = 'c';
    char cbuf[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof(cbuf)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &sv[1], sizeof(int));
    ssize_t n;
    while ((n = sendmsg(s->ctl, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    close(sv[1]);
    _cleanup_close_ int fd = sv[0];
    if (n < 0)
        return e2b_error_sys(err, errno, "cannot start sandbox: the create helper is gone");
    _cleanup_free_ char *data = e2b_json_dump(req, 0);
    struct strbuf out = STRBUF_INIT;
    bool ok = e2b_send_all(fd, data, strlen(data)) == 0 && shutdown(fd, SHUT_WR) == 0 &&
              read_all(fd, &out);
    json_t *reply = ok && out.len ? json_loadb(out.buf, out.len, 0, NULL) : NULL;
    strbuf_release(&out);
    if (!reply)
        return e2b_error_set(err, E2B_ERR_GENERIC, "cannot start sandbox: the create helper did not answer");
    *ret_reply = reply;
    return 0;
}

static int spawner_connect(struct e2b_serve_spawner *s, const char *id, int timeout_s,
                           json_t **ret_sandbox, bool *ret_resumed, struct e2b_error **err)
{
    _cleanup_json_ json_t *req = json_pack("{s:s, s:i}", "connect", id, "timeout", timeout_s);
    json_t *reply = NULL;
    if (ask_worker(s, req, &reply, err) < 0)
        return -1;
    int r = 0;
    json_t *sbx = json_object_get(reply, "sandbox"), *e = json_object_get(reply, "error");
    if (json_is_object(sbx)) {
        *ret_sandbox = json_incref(sbx);
        *ret_resumed = e2b_json_bool(reply, "resumed", false);
    } else {
        r = e2b_error_set(err, (int)e2b_json_int(e, "code", E2B_ERR_GENERIC), "%s",
                          e2b_json_str(e, "message") ? e2b_json_str(e, "message")
                                                     : "cannot resume sandbox");
    }
    json_decref(reply);
    return r;
}

/* A request whose reply is {"result": ...} or {"error": ...}. */
static int ask_result(struct e2b_serve_spawner *s, const json_t *req, json_t **ret,
                      struct e2b_error **err)
{
    json_t *reply = NULL;
    if (ask_worker(s, req, &reply, err) < 0)
        return -1;
    int r = 0;
    json_t *res = json_object_get(reply, "result"), *e = json_object_get(reply, "error");
    if (res)
        *ret = json_incref(res);
    else
        r = e2b_error_set(err, (int)e2b_json_int(e, "code", E2B_ERR_GENERIC), "%s",
                          e2b_json_str(e, "message") ?: "the helper did not say why it failed");
    json_decref(reply);
    return r;
}

static int spawner_snapshot(struct e2b_serve_spawner *s, const char *id, const char *name,
                            json_t **ret_snapshot, struct e2b_error **err)
{
    _cleanup_json_ json_t *req = json_pack("{s:s, s:s?}", "snapshot", id, "name", name);
    return ask_result(s, req, ret_snapshot, err);
}

static int spawner_fork(struct e2b_serve_spawner *s, const char *id, int count, int timeout_s,
                        json_t **ret_results, struct e2b_error **err)
{
    _cleanup_json_ json_t *req =
        json_pack("{s:s, s:i, s:i}", "fork", id, "count", count, "timeout", timeout_s);
    return ask_result(s, req, ret_results, err);
}

static int spawner_create(struct e2b_serve_spawner *s, const struct e2b_sandbox_spec *spec,
                          json_t **ret_sandbox, struct e2b_error **err)
{
    _cleanup_json_ json_t *req = spec_json(spec);
    json_t *reply = NULL;
    if (ask_worker(s, req, &reply, err) < 0)
        return -1;
    int r = 0;
    json_t *sbx = json_object_get(reply, "sandbox"), *e = json_object_get(reply, "error");
    if (json_is_object(sbx))
        *ret_sandbox = json_incref(sbx);
    else
        r = e2b_error_set(err, (int)e2b_json_int(e, "code", E2B_ERR_GENERIC), "%s",
                          e2b_json_str(e, "message") ? e2b_json_str(e, "message") : "cannot start sandbox");
    json_decref(reply);
    return r;
}

void e2b_serve_spawner_stop(struct e2b_serve_spawner *s)
{
    if (!s)
        return;
    close(s->ctl);
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    free(s);
}

/* ---- the backend that spawns -------------------------------------------------------- */

struct spawning {
    struct e2b_serve_spawner *s;
    struct e2b_backend *local;
};

#define LOCAL(b) (((struct spawning *)(b)->impl)->local)

static int sp_create(struct e2b_backend *b, const struct e2b_sandbox_spec *spec, json_t **ret,
                     struct e2b_error **err)
{
    return spawner_create(((struct spawning *)b->impl)->s, spec, ret, err);
}

static int sp_list(struct e2b_backend *b, const struct e2b_sandbox_filter *f, json_t **ret,
                   char **next, struct e2b_error **err)
{
    return LOCAL(b)->ops->sandboxes.list(LOCAL(b), f, ret, next, err);
}

static int sp_get(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->sandboxes.get(LOCAL(b), id, ret, err);
}

static int sp_kill(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    return LOCAL(b)->ops->sandboxes.kill(LOCAL(b), id, err);
}

static int sp_set_timeout(struct e2b_backend *b, const char *id, int t, struct e2b_error **err)
{
    return LOCAL(b)->ops->sandboxes.set_timeout(LOCAL(b), id, t, err);
}

static int sp_pause(struct e2b_backend *b, const char *id, bool to_disk, struct e2b_error **err)
{
    return LOCAL(b)->ops->sandboxes.pause(LOCAL(b), id, to_disk, err);
}

/* a resume may start a supervisor: forked from the helper, not from the server */
static int sp_connect(struct e2b_backend *b, const char *id, int t, json_t **ret, bool *resumed,
                      struct e2b_error **err)
{
    _cleanup_json_ json_t *s = NULL;
    if (sp_get(b, id, &s, err) < 0)
        return -1;
    const char *state = e2b_json_str(s, "state");
    if (state && STREQ(state, "paused"))
        return spawner_connect(((struct spawning *)b->impl)->s, id, t, ret, resumed, err);
    return LOCAL(b)->ops->sandboxes.connect(LOCAL(b), id, t, ret, resumed, err);
}

static int sp_metrics(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->sandboxes.metrics(LOCAL(b), id, ret, err);
}

static int sp_logs(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->sandboxes.logs(LOCAL(b), id, ret, err);
}

/* a hand-out of a warm sandbox forks nothing: here, at once */
static int sp_adopt(struct e2b_backend *b, const char *id, const struct e2b_sandbox_spec *spec,
                    json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->sandboxes.adopt(LOCAL(b), id, spec, ret, err);
}

static int sp_snapshot_create(struct e2b_backend *b, const char *id, const char *name, json_t **ret,
                              struct e2b_error **err)
{
    return spawner_snapshot(((struct spawning *)b->impl)->s, id, name, ret, err);
}

static int sp_snapshot_list(struct e2b_backend *b, const struct e2b_snapshot_filter *f,
                            json_t **ret, char **next, struct e2b_error **err)
{
    return LOCAL(b)->ops->snapshots.list(LOCAL(b), f, ret, next, err);
}

static int sp_snapshot_delete(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    return LOCAL(b)->ops->snapshots.delete(LOCAL(b), id, err);
}

static int sp_snapshot_fork(struct e2b_backend *b, const char *id, int count, int timeout_s,
                            json_t **ret, struct e2b_error **err)
{
    return spawner_fork(((struct spawning *)b->impl)->s, id, count, timeout_s, ret, err);
}

static int sp_update_network(struct e2b_backend *b, const char *id, const json_t *network,
                             struct e2b_error **err)
{
    return LOCAL(b)->ops->sandboxes.update_network(LOCAL(b), id, network, err);
}

static int sp_envd_endpoint(struct e2b_backend *b, const char *id, struct e2b_envd_endpoint *ep,
                            struct e2b_error **err)
{
    return LOCAL(b)->ops->edge.envd_endpoint(LOCAL(b), id, ep, err);
}

static int sp_port_connect(struct e2b_backend *b, const char *id, int port, int *fd,
                           struct e2b_error **err)
{
    return LOCAL(b)->ops->edge.port_connect(LOCAL(b), id, port, fd, err);
}

static int sp_template_list(struct e2b_backend *b, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->templates.list(LOCAL(b), ret, err);
}

static int sp_template_get(struct e2b_backend *b, const char *name, json_t **ret,
                           struct e2b_error **err)
{
    return LOCAL(b)->ops->templates.get(LOCAL(b), name, ret, err);
}

static int sp_template_delete(struct e2b_backend *b, const char *name, struct e2b_error **err)
{
    return LOCAL(b)->ops->templates.delete(LOCAL(b), name, err);
}

/* volumes and secrets: this machine's, as the local backend has them */
static int sp_volume_create(struct e2b_backend *b, const char *name, long long quota_mb,
                            json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->volumes.create(LOCAL(b), name, quota_mb, ret, err);
}

static int sp_volume_list(struct e2b_backend *b, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->volumes.list(LOCAL(b), ret, err);
}

static int sp_volume_get(struct e2b_backend *b, const char *id, json_t **ret,
                         struct e2b_error **err)
{
    return LOCAL(b)->ops->volumes.get(LOCAL(b), id, ret, err);
}

static int sp_volume_delete(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    return LOCAL(b)->ops->volumes.delete(LOCAL(b), id, err);
}

static int sp_volume_ls(struct e2b_backend *b, const char *volume, const char *path, int depth,
                        json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->volumes.ls(LOCAL(b), volume, path, depth, ret, err);
}

static int sp_volume_read(struct e2b_backend *b, const char *volume, const char *path, int out_fd,
                          struct e2b_error **err)
{
    return LOCAL(b)->ops->volumes.read(LOCAL(b), volume, path, out_fd, err);
}

static int sp_volume_write(struct e2b_backend *b, const char *volume, const char *path, int in_fd,
                           json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->volumes.write(LOCAL(b), volume, path, in_fd, ret, err);
}

static int sp_volume_open(struct e2b_backend *b, const char *id, struct e2b_volume *ret,
                          struct e2b_error **err)
{
    return LOCAL(b)->ops->volumes.open(LOCAL(b), id, ret, err);
}

static int sp_secret_create(struct e2b_backend *b, const char *name, const char *value,
                            const json_t *meta, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->secrets.create(LOCAL(b), name, value, meta, ret, err);
}

static int sp_secret_list(struct e2b_backend *b, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->secrets.list(LOCAL(b), ret, err);
}

static int sp_secret_get(struct e2b_backend *b, const char *id, json_t **ret,
                         struct e2b_error **err)
{
    return LOCAL(b)->ops->secrets.get(LOCAL(b), id, ret, err);
}

static int sp_secret_update(struct e2b_backend *b, const char *id, const char *value,
                            const json_t *meta, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->secrets.update(LOCAL(b), id, value, meta, ret, err);
}

static int sp_secret_delete(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    return LOCAL(b)->ops->secrets.delete(LOCAL(b), id, err);
}

static void sp_free(struct e2b_backend *b)
{
    free(b->impl);
    free(b);
}

static const struct e2b_backend_ops spawning_ops = {
    .name = "local",
    .sandboxes = E2B_SANDBOX_OPS(sp_),
    .edge = { .envd_endpoint = sp_envd_endpoint, .port_connect = sp_port_connect },
    .templates = E2B_TEMPLATE_OPS(sp_template_),
    .snapshots = E2B_SNAPSHOT_OPS(sp_snapshot_),
    .volumes = E2B_VOLUME_OPS(sp_volume_, sp_volume_open),
    .secrets = E2B_SECRET_OPS(sp_secret_),
    .free = sp_free,
};

struct e2b_backend *e2b_serve_spawner_backend(struct e2b_serve_spawner *s,
                                              struct e2b_backend *local)
{
    struct spawning *sp = xcalloc(1, sizeof(*sp));
    sp->s = s;
    sp->local = local;
    struct e2b_backend *b = xcalloc(1, sizeof(*b));
    b->ops = &spawning_ops;
    b->impl = sp;
    return b;
}
