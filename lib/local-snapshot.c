/* local-snapshot.c - see local-snapshot.h */
#include "local-snapshot.h"
#include "fsutil.h"
#include "local-sandbox.h"
#include "runtime.h"
#include "sandbox-state.h"
#include "snapshot-store.h"
#include "strbuf.h"
#include "template-store.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#define FORK_PARALLEL 8 /* forks started at once */

struct live_args {
    const char *save_dir;
    int64_t pause_ms; /* pause to resumed */
    int64_t save_ms;  /* the runtime's save alone: the sandbox stands still */
};

/* Under the state's lock: the sandbox is running; pause it, save it, and
 * resume it whatever happened. The state is written back as it was. */
static int do_live_snapshot(const char *id, const char *dir, json_t *st, void *ud,
                            struct e2b_error **err)
{
    struct live_args *a = ud;
    const char *state = e2b_json_str(st, "state") ?: "unknown";
    if (e2b_sandbox_is_saved(dir) || json_object_get(st, "savedTo") || !STREQ(state, "running"))
        return e2b_error_set(err, E2B_ERR_EXISTS,
                             "sandbox '%s' cannot be snapshotted while it is %s%s", id,
                             STREQ(state, "running") ? "paused" : state,
                             STREQ(state, "starting") ? "" : "; resume it first");
    const struct e2b_runtime_ops *rt = e2b_runtime_of(st, err);
    if (!rt)
        return -1;
    struct e2b_runtime_sandbox sb = { .id = id, .dir = dir, .state = st };
    int64_t t0 = e2b_now_ms();
    if (rt->pause(&sb, err) < 0)
        return e2b_error_wrap(err, "cannot snapshot sandbox '%s'", id);
    int64_t t1 = e2b_now_ms(); /* stopped (vm: QMP stop) */
    int r = rt->snapshot(&sb, a->save_dir, err);
    a->save_ms = e2b_now_ms() - t1;
    _cleanup_error_ struct e2b_error *rerr = NULL;
    if (rt->resume(&sb, &rerr) < 0) { /* it stays paused: say so, whatever the save did */
        e2b_error_free(*err);
        *err = NULL;
        json_object_set_new(st, "state", json_string("paused"));
        json_object_set_new(st, "pausedAtBootMs", json_integer(e2b_boot_ms()));
        return e2b_error_set(err, E2B_ERR_GENERIC,
                             "sandbox '%s' was snapshotted but could not run on (it is paused now: "
                             "resume or kill it): %s",
                             id, rerr->msg);
    }
    a->pause_ms = e2b_now_ms() - t0;
    if (r < 0)
        return e2b_error_wrap(err, "cannot snapshot sandbox '%s'", id);
    return 0;
}

/* What a restore starts from: the sandbox's state but for what is its own. */
static json_t *restore_state(const json_t *st)
{
    static const char *const keys[] = { "templateID",  "buildID",        "alias",
                                        "rootfsImage", "rootfsTree",     "cpuCount",
                                        "memoryMB",    "diskSizeMB",     "allowInternetAccess",
                                        "defaultUser", "defaultWorkdir", "envVars",
                                        "hostBased",   "runtime",        "metadata" };
    json_t *o = json_object();
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (json_object_get(st, keys[i]))
            json_object_set(o, keys[i], json_object_get(st, keys[i]));
    json_object_set_new(o, "secure", json_boolean(e2b_json_str(st, "envdAccessToken") != NULL));
    return o;
}

/* The snapshot of a running sandbox into the store; internal: a fork's. */
static int snapshot(const char *id, const char *name, bool internal, json_t **ret_meta,
                    char **ret_dir, struct e2b_error **err)
{
    _cleanup_json_ json_t *st = NULL;
    _cleanup_free_ char *dir = NULL;
    if (e2b_sandbox_load(id, &dir, &st, err) < 0)
        return -1;
    const struct e2b_runtime_ops *rt = e2b_runtime_of(st, err);
    if (!rt)
        return -1;
    if (!rt->snapshot || !rt->restore)
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                             "sandbox '%s' runs on the %s runtime, which cannot save a running "
                             "sandbox with its memory in this e2b (no copy of its files alone is "
                             "made instead)",
                             id, rt->name);
    if (name) { /* E2B would make the snapshot a build of that template: refused here */
        struct e2b_store store;
        _cleanup_free_ char *base = xstrndup(name, strcspn(name, ":"));
        if (e2b_snapshot_name_valid(name) && e2b_store_open(&store, NULL) == 0) {
            bool taken = e2b_store_find(&store, base, NULL, NULL, NULL) == 0;
            e2b_store_close(&store);
            if (taken)
                return e2b_error_set(err, E2B_ERR_INVALID,
                                     "snapshot name '%s' is a template's; choose another", base);
        }
    }
    struct e2b_snapshot_txn txn;
    if (e2b_snapshot_begin(name, &txn, err) < 0)
        return -1;
    /* copies: st is read again below */
    const char *r0 = e2b_json_str(st, "rootfsImage") ?: e2b_json_str(st, "rootfsTree");
    _cleanup_free_ char *rootfs = r0 ? xstrdup(r0) : NULL;
    _cleanup_free_ char *parent =
        e2b_json_str(st, "fromSnapshot") ? xstrdup(e2b_json_str(st, "fromSnapshot")) : NULL;
    bool held_rootfs = false, held_parent = false;
    struct live_args la = { .save_dir = txn.save_dir };
    _cleanup_free_ char *ts = NULL;
    int r = -1;
    /* what it needs stays: the template build, the snapshot the sandbox came from */
    if (rootfs && e2b_store_hold(rootfs, txn.key, err) < 0)
        goto out;
    held_rootfs = rootfs != NULL;
    if (parent && e2b_snapshot_hold(parent, txn.key, err) < 0)
        goto out;
    held_parent = parent != NULL;
    if (e2b_sandbox_update(id, do_live_snapshot, &la, err) < 0 ||
        e2b_fsync_dir(txn.save_dir, err) < 0) /* once it runs again */
        goto out;
    /* the state as it was snapshotted (its metadata and envs now) */
    json_decref(st);
    st = NULL;
    if (e2b_sandbox_load(id, NULL, &st, err) < 0)
        goto out;
    int64_t now = e2b_wall_ms();
    ts = e2b_rfc3339(now);
    json_t *meta = json_pack("{s:s, s:s, s:s, s:I, s:b, s:o, s:I, s:I}", "sandboxID", id, "runtime",
                             rt->name, "createdAt", ts, "createdAtMs", (json_int_t)now, "internal",
                             internal, "sandbox", restore_state(st), "pauseMs",
                             (json_int_t)la.pause_ms, "saveMs", (json_int_t)la.save_ms);
    if (rootfs)
        json_object_set_new(meta, "rootfs", json_string(rootfs));
    if (parent)
        json_object_set_new(meta, "parent", json_string(parent));
    r = e2b_snapshot_commit(&txn, meta, ret_meta, err);
    json_decref(meta);
    if (r == 0 && ret_dir)
        *ret_dir = xstrdup(txn.final_dir);
out:
    if (r < 0) {
        if (held_rootfs)
            e2b_store_release(rootfs, txn.key);
        if (held_parent)
            e2b_snapshot_release(parent, txn.key);
    }
    e2b_snapshot_abort(&txn);
    return r;
}

int e2b_local_snapshot(const char *id, const char *name, json_t **ret_meta, struct e2b_error **err)
{
    return snapshot(id, name, false, ret_meta, NULL, err);
}

/* ---- fork --------------------------------------------------------------------- */

struct child {
    pid_t pid;
    int fd;
    struct strbuf out;
};

/* In a child: one create from the snapshot; its result as JSON on fd. */
static _noreturn_ void fork_child(const struct e2b_local_options *o, int fd)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *st = NULL, *res;
    if (e2b_local_create(o, &st, &err) == 0)
        res = json_pack("{s:o}", "sandbox", st);
    else
        res = json_pack("{s:{s:i, s:s}}", "error", "code", err->code, "message", err->msg);
    _cleanup_free_ char *text = e2b_json_dump(res, 0);
    e2b_write_all(fd, text, strlen(text));
    _exit(0);
}

int e2b_local_fork(const char *id, int count, int timeout_s, json_t **ret, struct e2b_error **err)
{
    if (count < 1)
        return e2b_error_set(err, E2B_ERR_INVALID, "count must be at least 1 (it is %d)", count);
    if (count > E2B_FORK_MAX)
        return e2b_error_set(err, E2B_ERR_INVALID, "count cannot be greater than %d (it is %d)",
                             E2B_FORK_MAX, count);
    if (timeout_s <= 0)
        return e2b_error_set(err, E2B_ERR_INVALID, "timeout must be greater than 0");
    _cleanup_json_ json_t *meta = NULL;
    _cleanup_free_ char *dir = NULL;
    if (snapshot(id, NULL, true, &meta, &dir, err) < 0)
        return -1;
    const json_t *ss = json_object_get(meta, "sandbox");
    struct e2b_local_options o = {
        .template = e2b_json_str(meta, "snapshotID"),
        .timeout_s = timeout_s,
        .metadata = json_object_get(ss, "metadata"),
        .secure = e2b_json_bool(ss, "secure", false),
    };
    struct child *c = xcalloc((size_t)count, sizeof(*c));
    int started = 0, running = 0;
    fflush(NULL);
    while (started < count || running > 0) {
        while (started < count && running < FORK_PARALLEL) {
            struct child *k = &c[started++];
            int p[2];
            k->pid = -1, k->fd = -1;
            strbuf_init(&k->out);
            if (pipe2(p, O_CLOEXEC) < 0)
                continue;
            k->pid = fork();
            if (k->pid == 0) {
                close(p[0]);
                fork_child(&o, p[1]);
            }
            close(p[1]);
            if (k->pid < 0) {
                close(p[0]);
                continue;
            }
            k->fd = p[0];
            running++;
        }
        struct pollfd pf[FORK_PARALLEL];
        int idx[FORK_PARALLEL], n = 0;
        for (int i = 0; i < started && n < FORK_PARALLEL; i++)
            if (c[i].fd >= 0)
                pf[n] = (struct pollfd){ .fd = c[i].fd, .events = POLLIN }, idx[n++] = i;
        if (n == 0)
            break;
        if (poll(pf, (nfds_t)n, -1) < 0 && errno != EINTR)
            break;
        for (int j = 0; j < n; j++) {
            if (!pf[j].revents)
                continue;
            struct child *k = &c[idx[j]];
            char buf[4096];
            ssize_t m = read(k->fd, buf, sizeof(buf));
            if (m > 0) {
                strbuf_add(&k->out, buf, (size_t)m);
                continue;
            }
            if (m < 0 && errno == EINTR)
                continue;
            close(k->fd);
            k->fd = -1;
            while (waitpid(k->pid, NULL, 0) < 0 && errno == EINTR)
                ;
            running--;
        }
    }
    json_t *results = json_array();
    for (int i = 0; i < count; i++) {
        json_t *res = c[i].out.len ? json_loadb(c[i].out.buf, c[i].out.len, 0, NULL) : NULL;
        if (!json_is_object(res)) {
            json_decref(res);
            res = json_pack("{s:{s:i, s:s}}", "error", "code", E2B_ERR_GENERIC, "message",
                            c[i].pid < 0 ? "cannot start the fork: no process for it"
                                         : "the fork's create ended without a word");
        }
        json_array_append_new(results, res);
        strbuf_release(&c[i].out);
    }
    free(c);
    /* its files stay while the forks run from it */
    e2b_snapshot_delete_dir(dir);
    *ret = results;
    return 0;
}
