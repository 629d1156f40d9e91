/* cgroup.c - see cgroup.h */
#include "cgroup.h"
#include "fsutil.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#define CG_ROOT "/sys/fs/cgroup"

static const char *const v1_ctrls[] = {"memory", "pids", "cpu", "cpuacct", "freezer", "devices"};

/* What a sandbox may open: the nodes of its /dev and pts (m: a build's RUN
 * root makes these with mknod). */
static const char *const v1_devices_allowed[] = {
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm",
};
static const char *const v1_loop_devices[] = {"c 10:237 rw", "b 7:* r"};

/* Is this cgroup v2 (unified), or v1? */
static bool is_v2(void) { return access(CG_ROOT "/cgroup.controllers", F_OK) == 0; }

static char *dir_for(const char *ctrl, const char *id)
{
    if (!ctrl)
        return xasprintf(CG_ROOT "/e2b/%s", id);
    return xasprintf(CG_ROOT "/%s/e2b/%s", ctrl, id);
}

static char *frozen_part(const char *id)
{
    return xasprintf(CG_ROOT "/freezer/e2b/%s/sandbox", id);
}

char *e2b_cgroup_freezer_dir(const char *id) { return dir_for(is_v2() ? NULL : "freezer", id); }

char **e2b_cgroup_roots(const char *id)
{
    char **v = NULL;
    if (is_v2()) {
        _cleanup_free_ char *r = xasprintf("/e2b/%s", id);
        return e2b_strv_push(v, r);
    }
    for (size_t i = 0; i < ARRAY_SIZE(v1_ctrls); i++) {
        _cleanup_free_ char *root = xasprintf(CG_ROOT "/%s", v1_ctrls[i]);
        _cleanup_free_ char *r = xasprintf("%s:/e2b/%s", v1_ctrls[i], id);
        if (access(root, F_OK) == 0)
            v = e2b_strv_push(v, r);
    }
    return v;
}

int e2b_cgroup_open_frozen_part(const char *id, const char *file, int flags)
{
    if (is_v2())
        return -1;
    _cleanup_free_ char *d = frozen_part(id);
    _cleanup_free_ char *p = e2b_path_join(d, file);
    return open(p, flags | O_CLOEXEC);
}

static int write_str(const char *dir, const char *file, const char *value, struct e2b_error **err)
{
    _cleanup_free_ char *p = e2b_path_join(dir, file);
    _cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, value, strlen(value)) < 0)
        return e2b_error_sys(err, errno, "cannot write %s", p);
    return 0;
}

static uint64_t read_u64(const char *dir, const char *file, const char *key)
{
    _cleanup_free_ char *p = e2b_path_join(dir, file);
    _cleanup_free_ char *data = NULL;
    if (e2b_read_file(p, &data, NULL, NULL) < 0)
        return 0;
    if (!key)
        return strtoull(data, NULL, 10);
    size_t kl = strlen(key);
    for (char *line = data; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ')
            return strtoull(line + kl + 1, NULL, 10);
    return 0;
}

int e2b_cgroup_create(const char *id, const struct e2b_cgroup_limits *lim, struct e2b_error **err)
{
    char buf[64];
    if (is_v2()) {
        write_str(CG_ROOT, "cgroup.subtree_control", "+memory +pids +cpu", NULL);
        _cleanup_free_ char *parent = xstrdup(CG_ROOT "/e2b");
        if (e2b_mkdir_p(parent, 0755, err) < 0)
            return -1;
        write_str(parent, "cgroup.subtree_control", "+memory +pids +cpu", NULL);
        _cleanup_free_ char *d = dir_for(NULL, id);
        if (mkdir(d, 0755) < 0 && errno != EEXIST)
            return e2b_error_sys(err, errno, "cannot create cgroup %s", d);
        if (lim->memory_bytes) {
            snprintf(buf, sizeof(buf), "%llu", (unsigned long long)lim->memory_bytes);
            if (write_str(d, "memory.max", buf, err) < 0)
                return -1;
            write_str(d, "memory.swap.max", "0", NULL);
            write_str(d, "memory.oom.group", "0", NULL);
        }
        if (lim->pids_max) {
            snprintf(buf, sizeof(buf), "%llu", (unsigned long long)lim->pids_max);
            if (write_str(d, "pids.max", buf, err) < 0)
                return -1;
        }
        if (lim->cpu_count) {
            snprintf(buf, sizeof(buf), "%u 100000", lim->cpu_count * 100000);
            write_str(d, "cpu.max", buf, NULL);
        }
        return 0;
    }
    for (size_t i = 0; i < ARRAY_SIZE(v1_ctrls); i++) {
        _cleanup_free_ char *root = xasprintf(CG_ROOT "/%s", v1_ctrls[i]);
        if (access(root, F_OK) < 0)
            continue; /* a hierarchy this host does not have */
        _cleanup_free_ char *d = dir_for(v1_ctrls[i], id);
        if (e2b_mkdir_p(d, 0755, err) < 0)
            return -1;
    }
    _cleanup_free_ char *frozen = frozen_part(id);
    if (access(CG_ROOT "/freezer", F_OK) == 0 && mkdir(frozen, 0755) < 0 && errno != EEXIST)
        return e2b_error_sys(err, errno, "cannot create cgroup %s", frozen);
    _cleanup_free_ char *mem = dir_for("memory", id);
    if (lim->memory_bytes) {
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)lim->memory_bytes);
        if (write_str(mem, "memory.limit_in_bytes", buf, err) < 0)
            return -1;
        /* No swap: the limit is the limit (fails quietly where swap accounting is off). */
        write_str(mem, "memory.memsw.limit_in_bytes", buf, NULL);
        write_str(mem, "memory.swappiness", "0", NULL);
    }
    if (lim->pids_max) {
        _cleanup_free_ char *pids = dir_for("pids", id);
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)lim->pids_max);
        if (write_str(pids, "pids.max", buf, err) < 0)
            return -1;
    }
    if (lim->cpu_count) {
        _cleanup_free_ char *cpu = dir_for("cpu", id);
        write_str(cpu, "cpu.cfs_period_us", "100000", NULL);
        snprintf(buf, sizeof(buf), "%u", lim->cpu_count * 100000);
        write_str(cpu, "cpu.cfs_quota_us", buf, NULL);
    }
    _cleanup_free_ char *dev = dir_for("devices", id);
    if (access(dev, F_OK) == 0) {
        /* deny everything, then allow the few; a failure here is a failure to start */
        if (write_str(dev, "devices.deny", "a", err) < 0)
            return -1;
        for (size_t i = 0; i < ARRAY_SIZE(v1_devices_allowed); i++)
            if (write_str(dev, "devices.allow", v1_devices_allowed[i], err) < 0)
                return -1;
        for (size_t i = 0; lim->loop_devices && i < ARRAY_SIZE(v1_loop_devices); i++)
            if (write_str(dev, "devices.allow", v1_loop_devices[i], err) < 0)
                return -1;
    }
    return 0;
}

int e2b_cgroup_drop_loop(const char *id, struct e2b_error **err)
{
    if (is_v2())
        return 0;
    _cleanup_free_ char *dev = dir_for("devices", id);
    for (size_t i = 0; i < ARRAY_SIZE(v1_loop_devices); i++)
        if (write_str(dev, "devices.deny", v1_loop_devices[i], err) < 0)
            return -1;
    return 0;
}

static int add(const char *id, pid_t pid, bool devices, struct e2b_error **err)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%d", (int)pid);
    if (is_v2()) {
        _cleanup_free_ char *d = dir_for(NULL, id);
        return write_str(d, "cgroup.procs", buf, err);
    }
    for (size_t i = 0; i < ARRAY_SIZE(v1_ctrls); i++) {
        if (!devices && STREQ(v1_ctrls[i], "devices"))
            continue;
        _cleanup_free_ char *d = dir_for(v1_ctrls[i], id);
        if (access(d, F_OK) < 0)
            continue;
        if (write_str(d, "cgroup.procs", buf, err) < 0)
            return -1;
    }
    return 0;
}

void e2b_cgroup_leave_creator(pid_t pid, bool all)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%d", (int)pid);
    if (is_v2()) {
        if (!all)
            return; /* the sandbox's own cgroup is outside the creator's already */
        /* e2b/ has controllers for its children, so no process of its own: a leaf */
        write_str(CG_ROOT, "cgroup.subtree_control", "+memory +pids +cpu", NULL);
        if (e2b_mkdir_p(CG_ROOT "/e2b", 0755, NULL) < 0)
            return;
        write_str(CG_ROOT "/e2b", "cgroup.subtree_control", "+memory +pids +cpu", NULL);
        mkdir(CG_ROOT "/e2b/supervisors", 0755);
        write_str(CG_ROOT "/e2b/supervisors", "cgroup.procs", buf, NULL);
        return;
    }
    static const char *const extra[] = {"systemd", "unified"};
    for (size_t i = all ? 0 : ARRAY_SIZE(v1_ctrls); i < ARRAY_SIZE(v1_ctrls) + ARRAY_SIZE(extra); i++) {
        const char *h = i < ARRAY_SIZE(v1_ctrls) ? v1_ctrls[i] : extra[i - ARRAY_SIZE(v1_ctrls)];
        _cleanup_free_ char *root = xasprintf(CG_ROOT "/%s/cgroup.procs", h);
        if (access(root, F_OK) < 0)
            continue;
        _cleanup_free_ char *d = xasprintf(CG_ROOT "/%s/e2b", h);
        if (mkdir(d, 0755) < 0 && errno != EEXIST)
            continue;
        write_str(d, "cgroup.procs", buf, NULL);
    }
}

int e2b_cgroup_add(const char *id, pid_t pid, struct e2b_error **err)
{
    return add(id, pid, true, err);
}

int e2b_cgroup_add_helper(const char *id, pid_t pid, struct e2b_error **err)
{
    return add(id, pid, false, err);
}

/* v1: write the freezer state of d, waiting (bounded) for FROZEN. */
static int freeze_v1(const char *d, bool frozen, struct e2b_error **err)
{
    if (write_str(d, "freezer.state", frozen ? "FROZEN" : "THAWED", err) < 0)
        return -1;
    /* FREEZING is transient; wait (bounded) until the kernel reports FROZEN. */
    for (int i = 0; frozen && i < 200; i++) {
        _cleanup_free_ char *p = e2b_path_join(d, "freezer.state");
        _cleanup_free_ char *s = NULL;
        if (e2b_read_file(p, &s, NULL, NULL) == 0 && strncmp(s, "FROZEN", 6) == 0)
            return 0;
        usleep(5000);
    }
    return 0;
}

int e2b_cgroup_freeze_whole(const char *id, bool whole, struct e2b_error **err)
{
    _cleanup_free_ char *part = frozen_part(id), *all = dir_for("freezer", id);
    if (is_v2() || access(part, F_OK) < 0)
        return 0; /* one freezer for all already */
    if (whole)
        return freeze_v1(all, true, err) < 0 || freeze_v1(part, false, err) < 0 ? -1 : 0;
    return freeze_v1(part, true, err) < 0 || freeze_v1(all, false, err) < 0 ? -1 : 0;
}

int e2b_cgroup_freeze(const char *id, bool frozen, struct e2b_error **err)
{
    if (is_v2()) {
        _cleanup_free_ char *d = dir_for(NULL, id);
        if (write_str(d, "cgroup.freeze", frozen ? "1" : "0", err) < 0)
            return -1;
        /* freezing takes a moment: wait (bounded) for cgroup.events to say so */
        for (int i = 0; frozen && i < 200; i++) {
            if (read_u64(d, "cgroup.events", "frozen") == 1)
                return 0;
            usleep(5000);
        }
        return 0;
    }
    _cleanup_free_ char *d = frozen_part(id);
    if (access(d, F_OK) < 0) { /* made before the frozen part existed */
        free(d);
        d = dir_for("freezer", id);
    }
    return freeze_v1(d, frozen, err);
}

int e2b_cgroup_stats(const char *id, struct e2b_cgroup_stats *st, struct e2b_error **err)
{
    memset(st, 0, sizeof(*st));
    if (is_v2()) {
        _cleanup_free_ char *d = dir_for(NULL, id);
        if (access(d, F_OK) < 0)
            return e2b_error_sys(err, errno, "no cgroup for sandbox '%s'", id);
        st->cpu_usage_ns = read_u64(d, "cpu.stat", "usage_usec") * 1000;
        st->memory_bytes = read_u64(d, "memory.current", NULL);
        st->memory_limit = read_u64(d, "memory.max", NULL);
        st->pids = read_u64(d, "pids.current", NULL);
        st->oom_killed = read_u64(d, "memory.events", "oom_kill") > 0;
        return 0;
    }
    _cleanup_free_ char *mem = dir_for("memory", id);
    if (access(mem, F_OK) < 0)
        return e2b_error_sys(err, errno, "no cgroup for sandbox '%s'", id);
    _cleanup_free_ char *acct = dir_for("cpuacct", id);
    _cleanup_free_ char *pids = dir_for("pids", id);
    st->cpu_usage_ns = read_u64(acct, "cpuacct.usage", NULL);
    st->memory_bytes = read_u64(mem, "memory.usage_in_bytes", NULL);
    st->memory_limit = read_u64(mem, "memory.limit_in_bytes", NULL);
    st->pids = read_u64(pids, "pids.current", NULL);
    st->oom_killed = read_u64(mem, "memory.oom_control", "oom_kill") > 0;
    return 0;
}

static void kill_and_remove(const char *d)
{
    if (access(d, F_OK) < 0)
        return;
    /* Bounded (10 s: thousands of dying processes take a while): whatever is
     * left is killed; rmdir succeeds once it is empty. */
    for (int i = 0; i < 1000; i++) {
        _cleanup_free_ char *procs = e2b_path_join(d, "cgroup.procs");
        _cleanup_free_ char *data = NULL;
        bool any = false;
        if (e2b_read_file(procs, &data, NULL, NULL) == 0)
            for (char *p = data; *p;) {
                long pid = strtol(p, &p, 10);
                if (pid > 0) {
                    kill((pid_t)pid, SIGKILL);
                    any = true;
                }
                while (*p == '\n')
                    p++;
            }
        if (!any && rmdir(d) == 0)
            return;
        if (rmdir(d) == 0)
            return;
        usleep(10000);
    }
}

void e2b_cgroup_destroy(const char *id)
{
    if (is_v2()) {
        _cleanup_free_ char *d = dir_for(NULL, id);
        write_str(d, "cgroup.freeze", "0", NULL);
        write_str(d, "cgroup.kill", "1", NULL);
        kill_and_remove(d);
        return;
    }
    _cleanup_free_ char *fz = dir_for("freezer", id);
    _cleanup_free_ char *part = frozen_part(id);
    write_str(part, "freezer.state", "THAWED", NULL); /* frozen tasks cannot die */
    write_str(fz, "freezer.state", "THAWED", NULL);
    kill_and_remove(part);
    for (size_t i = 0; i < ARRAY_SIZE(v1_ctrls); i++) {
        _cleanup_free_ char *d = dir_for(v1_ctrls[i], id);
        kill_and_remove(d);
    }
}
