/* sandbox-state.c - see sandbox-state.h */
#include "sandbox-state.h"
#include "config.h"
#include "fsutil.h"
#include "runtime.h"
#include "snapshot-store.h"
#include "template-store.h"

#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>

char *e2b_sandboxes_dir(void)
{
    _cleanup_free_ char *rt = e2b_runtime_dir();
    return e2b_path_join(rt, "sandboxes");
}

char *e2b_sandbox_dir(const char *id)
{
    _cleanup_free_ char *d = e2b_sandboxes_dir();
    return e2b_path_join(d, id);
}

char *e2b_saved_sandboxes_dir(void)
{
    _cleanup_free_ char *d = e2b_data_dir();
    return e2b_path_join(d, "sandboxes");
}

static char *saved_sandbox_dir(const char *id)
{
    _cleanup_free_ char *d = e2b_saved_sandboxes_dir();
    return e2b_path_join(d, id);
}

bool e2b_sandbox_is_saved(const char *dir)
{
    _cleanup_free_ char *root = e2b_saved_sandboxes_dir();
    size_t n = strlen(root);
    return strncmp(dir, root, n) == 0 && dir[n] == '/';
}

int e2b_sandbox_saved_claim(const char *id, const char *dir, struct e2b_error **err)
{
    _cleanup_free_ char *p = e2b_path_join(dir, ".lock");
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot lock %s", p);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        return e2b_error_set(err, E2B_ERR_EXISTS, "sandbox '%s' is being resumed or removed", id);
    }
    if (access(dir, F_OK) < 0) { /* resumed or removed meanwhile */
        close(fd);
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "sandbox '%s' not found", id);
    }
    return fd;
}

bool e2b_sandbox_id_valid(const char *id)
{
    if (!id || strlen(id) != 20)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

/* Serialise read-modify-write of a state file between CLI and supervisor. */
int e2b_sandbox_state_lock(const char *dir)
{
    _cleanup_free_ char *p = e2b_path_join(dir, ".lock");
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        flock(fd, LOCK_EX);
    return fd;
}

int e2b_sandbox_state_read(const char *dir, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *p = e2b_path_join(dir, "state.json");
    return e2b_json_load_file(p, ret, err);
}

/* Atomic (a temp file renamed over it: readers see the old or the new
 * state), but not fsync'd: runtime state does not outlive the machine's
 * uptime, and on a disk-backed runtime dir a sync costs milliseconds. */
int e2b_sandbox_state_write(const char *dir, json_t *state, struct e2b_error **err)
{
    _cleanup_free_ char *p = e2b_path_join(dir, "state.json");
    _cleanup_free_ char *tmp = e2b_path_join(dir, ".state.json.tmp");
    _cleanup_free_ char *text = e2b_json_dump(state, JSON_INDENT(2));
    _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    size_t n = strlen(text);
    if (fd < 0 || e2b_write_all(fd, text, n) < 0 || e2b_write_all(fd, "\n", 1) < 0 ||
        rename(tmp, p) < 0) {
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
int e2b_sandbox_dir_create_held(const char *id, const char *dir, struct e2b_error **err)
{
    _cleanup_free_ char *root = e2b_sandboxes_dir();
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

bool e2b_sandbox_held(const char *dir)
{
    _cleanup_free_ char *p = e2b_path_join(dir, "supervisor.lock");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool h = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    close(fd); /* drops the shared lock if we got it */
    return h;
}

/* The pidfd is opened first, so a pid reused after the lock check cannot
 * be hit. */
bool e2b_sandbox_signal_supervisor(const char *dir, pid_t sup, int sig)
{
    if (sup <= 0)
        return false;
    int pfd = (int)syscall(SYS_pidfd_open, sup, 0);
    if (pfd < 0) /* no pidfds (Linux < 5.3): the lock check alone */
        return errno == ENOSYS && e2b_sandbox_held(dir) && kill(sup, sig) == 0;
    bool ok = e2b_sandbox_held(dir) && syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) == 0;
    close(pfd);
    return ok;
}

#define END_NOTES ".ended"
#define END_NOTE_KEEP_S 3600

static char *end_note_path(const char *id)
{
    _cleanup_free_ char *root = e2b_sandboxes_dir();
    return xasprintf("%s/" END_NOTES "/%s", root, id);
}

void e2b_sandbox_note_end(const char *id, const char *why)
{
    _cleanup_free_ char *root = e2b_sandboxes_dir();
    _cleanup_free_ char *dir = e2b_path_join(root, END_NOTES);
    _cleanup_free_ char *p = end_note_path(id);
    size_t n = strnlen(why, 1024);
    if (e2b_mkdir_p(dir, 0700, NULL) == 0)
        e2b_write_file_atomic(p, why, n, 0600, NULL);
}

/* "sandbox 'X' not found", and why it ended when that is known. */
static int not_found(const char *id, struct e2b_error **err)
{
    _cleanup_free_ char *p = end_note_path(id);
    _cleanup_free_ char *why = NULL;
    if (e2b_read_file_untrusted(p, 1024, &why, NULL, NULL) == 0 && *why)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "sandbox '%s' not found (it ended: %s)", id, why);
    return e2b_error_set(err, E2B_ERR_NOT_FOUND, "sandbox '%s' not found", id);
}

int e2b_sandbox_load(const char *id, char **ret_dir, json_t **ret_state, struct e2b_error **err)
{
    if (!e2b_sandbox_id_valid(id))
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "sandbox '%s' not found", id ? id : "");
    _cleanup_free_ char *dir = e2b_sandbox_dir(id);
    json_t *st = NULL;
    bool live = access(dir, F_OK) == 0 && e2b_sandbox_state_read(dir, &st, NULL) == 0;
    if (live && !e2b_sandbox_held(dir)) {
        json_decref(st);
        st = NULL;
        e2b_sandbox_reap();
        live = false;
    }
    if (!live) { /* paused to disk? */
        free(dir);
        dir = saved_sandbox_dir(id);
        if (e2b_sandbox_state_read(dir, &st, NULL) < 0)
            return not_found(id, err);
    }
    if (!json_object_get(st, "runtime")) { /* written before sandboxes recorded theirs */
        const struct e2b_runtime_ops *rt = e2b_runtime_of(st, NULL);
        json_object_set_new(st, "runtime", json_string(rt ? rt->name : ""));
    }
    if (ret_state)
        *ret_state = st;
    else
        json_decref(st);
    if (ret_dir)
        *ret_dir = TAKE_PTR(dir);
    return 0;
}

int e2b_sandbox_update(const char *id, int (*fn)(const char *id, const char *dir, json_t *st, void *ud,
                                                 struct e2b_error **err),
                       void *ud, struct e2b_error **err)
{
    _cleanup_free_ char *dir = NULL;
    if (e2b_sandbox_load(id, &dir, NULL, err) < 0)
        return -1;
    int lk = e2b_sandbox_state_lock(dir);
    if (lk < 0)
        return e2b_error_sys(err, errno, "cannot lock the state of sandbox '%s'", id);
    json_t *st = NULL;
    int r = e2b_sandbox_state_read(dir, &st, err);
    if (r == 0)
        r = fn(id, dir, st, ud, err);
    if (r == 0)
        r = e2b_sandbox_state_write(dir, st, err);
    close(lk);
    if (r == 0) /* re-read the state: the deadline may have moved */
        e2b_sandbox_signal_supervisor(dir, (pid_t)e2b_json_int(st, "supervisorPid", 0), SIGUSR1);
    json_decref(st);
    return r;
}

/* The sandbox's log so far goes with its save. */
static void copy_logs(const char *from, const char *to)
{
    static const char *const logs[] = { "sandbox.log.1", "sandbox.log" };
    for (size_t i = 0; i < ARRAY_SIZE(logs); i++) {
        _cleanup_free_ char *a = e2b_path_join(from, logs[i]);
        _cleanup_free_ char *b = e2b_path_join(to, logs[i]);
        if (access(a, F_OK) == 0)
            e2b_copy_file_sparse(a, b, 0600, NULL);
    }
}

/* Save the paused sandbox to <data dir>/sandboxes/<id>: the runtime's save
 * and the state it resumes with. */
static int save_to_disk(const char *id, const char *dir, const struct e2b_runtime_ops *rt,
                        json_t *st, struct e2b_error **err)
{
    _cleanup_free_ char *root = e2b_saved_sandboxes_dir();
    _cleanup_free_ char *staging = xasprintf("%s/.new-%s", root, id);
    _cleanup_free_ char *to = e2b_path_join(root, id);
    if (e2b_mkdir_p(root, 0700, err) < 0)
        return -1;
    e2b_rm_rf(staging, NULL);
    if (mkdir(staging, 0700) < 0)
        return e2b_error_sys(err, errno, "cannot create %s", staging);
    _cleanup_close_ int lk = hold_sandbox(staging, err); /* the reaper: not a stale one */
    struct e2b_runtime_sandbox sb = { .id = id, .dir = dir, .state = st };
    _cleanup_json_ json_t *saved = NULL;
    _cleanup_free_ char *ts = NULL, *lkp = NULL;
    int r = -1;
    if (lk < 0 || rt->snapshot(&sb, staging, err) < 0 || e2b_fsync_dir(staging, err) < 0)
        goto out;
    copy_logs(dir, staging);
    saved = json_deep_copy(st);
    int64_t now = e2b_boot_ms(), left = e2b_json_int(st, "deadlineBootMs", now) - now;
    ts = e2b_rfc3339(e2b_wall_ms());
    json_object_set_new(saved, "state", json_string("paused"));
    json_object_set_new(saved, "pausedAt", json_string(ts));
    json_object_set_new(saved, "timeLeftMs", json_integer(left > 1000 ? left : 1000));
    static const char *const gone[] = { "deadlineBootMs", "pausedAtBootMs", "supervisorPid",
                                        "initPid", "savedTo" };
    for (size_t i = 0; i < ARRAY_SIZE(gone); i++)
        json_object_del(saved, gone[i]);
    if (e2b_sandbox_state_write(staging, saved, err) < 0)
        goto out;
    /* the template build stays while the save needs it (no process pins it now) */
    const char *rootfs = e2b_json_str(st, "rootfsImage") ?: e2b_json_str(st, "rootfsTree");
    if (rootfs && e2b_store_hold(rootfs, id, err) < 0)
        goto out;
    /* and the snapshot it was restored from, whose files the save may name */
    const char *from = e2b_json_str(st, "fromSnapshot");
    if (from && e2b_snapshot_hold(from, id, err) < 0) {
        if (rootfs)
            e2b_store_release(rootfs, id);
        goto out;
    }
    e2b_rm_rf(to, NULL); /* an older save of it: the live sandbox is newer */
    lkp = e2b_path_join(staging, "supervisor.lock");
    unlink(lkp); /* for the reaper only, while it was not whole */
    if (rename(staging, to) < 0) {
        e2b_error_sys(err, errno, "cannot save sandbox '%s' to %s", id, to);
        if (rootfs)
            e2b_store_release(rootfs, id);
        if (from)
            e2b_snapshot_release(from, id);
        goto out;
    }
    json_object_set_new(st, "savedTo", json_string(to));
    r = 0;
out:
    if (r < 0)
        e2b_rm_rf(staging, NULL);
    return r;
}

struct pause_args {
    bool to_disk, saved;
};

static int do_pause(const char *id, const char *dir, json_t *st, void *ud, struct e2b_error **err)
{
    struct pause_args *a = ud;
    if (e2b_sandbox_is_saved(dir) || json_object_get(st, "savedTo"))
        return e2b_error_set(err, E2B_ERR_EXISTS, "sandbox '%s' is not running (it is paused)", id);
    if (!STREQ(e2b_json_str(st, "state") ? e2b_json_str(st, "state") : "", "running"))
        return e2b_error_set(err, E2B_ERR_EXISTS, "sandbox '%s' is not running (it is %s)", id,
                             e2b_json_str(st, "state") ? e2b_json_str(st, "state") : "unknown");
    const struct e2b_runtime_ops *rt = e2b_runtime_of(st, err);
    struct e2b_runtime_sandbox sb = {.id = id, .dir = dir, .state = st};
    if (!rt)
        return -1;
    if (a->to_disk && !rt->snapshot)
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "the %s runtime cannot save sandbox '%s' to disk",
                             rt->name, id);
    bool save = rt->snapshot && (a->to_disk || rt->pause_saves);
    if (rt->pause(&sb, err) < 0)
        return -1;
    if (save && save_to_disk(id, dir, rt, st, err) < 0) {
        _cleanup_error_ struct e2b_error *e = NULL;
        (void)rt->resume(&sb, &e); /* as it was */
        return e2b_error_wrap(err, "cannot pause sandbox '%s' to disk", id);
    }
    a->saved = save;
    json_object_set_new(st, "state", json_string("paused"));
    json_object_set_new(st, "pausedAtBootMs", json_integer(e2b_boot_ms()));
    return 0;
}

int e2b_sandbox_pause(const char *id, bool to_disk, bool *ret_saved, struct e2b_error **err)
{
    struct pause_args a = {.to_disk = to_disk};
    if (e2b_sandbox_update(id, do_pause, &a, err) < 0)
        return -1;
    if (ret_saved)
        *ret_saved = a.saved;
    return 0;
}

/* A create that died between making its staging directory and renaming it
 * leaves ".new-<id>": removed once it is a minute old and nobody holds it. */
static void reap_staging(const char *root, const char *name)
{
    _cleanup_free_ char *dir = e2b_path_join(root, name);
    struct stat sb;
    if (stat(dir, &sb) < 0 || time(NULL) - sb.st_mtime < 60 || e2b_sandbox_held(dir))
        return;
    e2b_rm_rf(dir, NULL);
}

static void reap_end_notes(const char *root)
{
    _cleanup_free_ char *dir = e2b_path_join(root, END_NOTES);
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;
    struct stat sb;
    while (d && (de = readdir(d)))
        if (e2b_sandbox_id_valid(de->d_name) && fstatat(dirfd(d), de->d_name, &sb, 0) == 0 &&
            time(NULL) - sb.st_mtime > END_NOTE_KEEP_S)
            unlinkat(dirfd(d), de->d_name, 0);
}

/* Saves that a pause did not finish (its process died): .new-<id> that
 * nobody holds. Whole saves are never reaped. */
static void reap_saves(void)
{
    _cleanup_free_ char *root = e2b_saved_sandboxes_dir();
    _cleanup_closedir_ DIR *d = opendir(root);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strncmp(de->d_name, ".new-", 5) == 0 && e2b_sandbox_id_valid(de->d_name + 5))
            reap_staging(root, de->d_name);
}

void e2b_sandbox_reap(void)
{
    _cleanup_free_ char *root = e2b_sandboxes_dir();
    reap_end_notes(root);
    reap_saves();
    _cleanup_closedir_ DIR *d = opendir(root);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (strncmp(de->d_name, ".new-", 5) == 0 && e2b_sandbox_id_valid(de->d_name + 5)) {
            reap_staging(root, de->d_name);
            continue;
        }
        if (!e2b_sandbox_id_valid(de->d_name))
            continue;
        _cleanup_free_ char *dir = e2b_path_join(root, de->d_name);
        _cleanup_free_ char *lockp = e2b_path_join(dir, "supervisor.lock");
        _cleanup_json_ json_t *st = NULL;
        struct stat sb;
        if (stat(lockp, &sb) < 0) {
            /* made by an e2b from before the lock: its pid is all there is */
            (void)e2b_sandbox_state_read(dir, &st, NULL);
            pid_t sup = (pid_t)e2b_json_int(st, "supervisorPid", 0);
            if (sup > 0 && kill(sup, 0) == 0)
                continue;
        }
        /* Hold it while clearing: nobody takes a sandbox that is going. */
        int fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
            close(fd);
            continue; /* alive */
        }
        if (!st)
            (void)e2b_sandbox_state_read(dir, &st, NULL);
        /* unreadable state: what e2b makes by default */
        const struct e2b_runtime_ops *rt = st ? e2b_runtime_of(st, NULL) : e2b_runtime_default();
        struct e2b_runtime_sandbox rsb = {.id = de->d_name, .dir = dir, .state = st};
        if (rt)
            rt->stop(&rsb, NULL);
        e2b_rm_rf(dir, NULL);
        if (fd >= 0)
            close(fd);
    }
}
