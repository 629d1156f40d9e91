/* local-sandbox.c - see local-sandbox.h. The verbs: create, list, info,
 * kill, timeouts, pause, resume, metrics, logs, and the ways in (envd, ports).
 * The runtime of a sandbox is whatever its state names (runtime.h). */
#include "local-sandbox.h"
#include "egress.h"
#include "egress-tls.h"
#include "fsutil.h"
#include "process-client.h"
#include "sandbox-client.h"
#include "runtime.h"
#include "sandbox-state.h"
#include "snapshot-store.h"
#include "supervisor.h"
#include "strbuf.h"
#include "template-store.h"
#include "volume-store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#define DEFAULT_CPUS 2
#define DEFAULT_MEMORY_MB 1024
#define DEFAULT_DISK_MB 1024
#define DEFAULT_PIDS 4096
#define MAX_VOLUME_MOUNTS 16

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

/* ---- create ----------------------------------------------------------------- */

/* The template's files and names: what the spec points at. */
struct template_files {
    char *dir; /* the build's directory */
    char *tree, *image, *template_id, *build_id;
    char *runtime; /* what the template asks for, or NULL */
};

static void template_files_release(struct template_files *t)
{
    free(t->runtime);
    free(t->dir);
    free(t->tree);
    free(t->image);
    free(t->template_id);
    free(t->build_id);
}

static int resolve_template(const char *name, struct template_files *tf, struct e2b_runtime_spec *spec,
                            json_t *state, struct e2b_error **err)
{
    if (STREQ(name, "host")) {
        spec->host = true;
        spec->template_id = "host";
        spec->build_id = "host";
        json_object_set_new(state, "templateID", json_string("host"));
        json_object_set_new(state, "alias", json_string("host"));
        /* the runtime may know better (who exists inside) */
        json_object_set_new(state, "defaultUser", json_string(root_has_user("", "user") ? "user" : "root"));
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
    /* The tree, the ext4 image or both: the runtime picks (prepare). */
    _cleanup_free_ char *tree = e2b_path_join(dir, "rootfs");
    _cleanup_free_ char *image = e2b_path_join(dir, "rootfs.ext4");
    struct stat st;
    if (stat(tree, &st) == 0 && S_ISDIR(st.st_mode))
        tf->tree = TAKE_PTR(tree);
    if (stat(image, &st) == 0 && S_ISREG(st.st_mode))
        tf->image = TAKE_PTR(image);
    if (!tf->tree && !tf->image)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                             "template '%s' has no root file system (neither %s/rootfs/ nor rootfs.ext4)",
                             name, dir);
    spec->rootfs_tree = tf->tree;
    spec->rootfs_image = tf->image;
    /* built on `host`: its tree is a layer over the host's programs */
    if (STREQ(e2b_json_str(meta, "baseTemplate") ?: "", "host")) {
        if (!tf->tree)
            return e2b_error_set(err, E2B_ERR_NOT_FOUND, "template '%s' is built on host and needs its rootfs/ tree",
                                 name);
        spec->host = true;
        spec->rootfs_image = NULL;
    }
    tf->dir = xstrdup(dir);
    json_object_set_new(state, "templateID", json_string(e2b_json_str(meta, "templateID")));
    tf->template_id = xstrdup(e2b_json_str(meta, "templateID") ? e2b_json_str(meta, "templateID") : name);
    spec->template_id = tf->template_id;
    if (e2b_json_str(meta, "buildID")) {
        tf->build_id = xstrdup(e2b_json_str(meta, "buildID"));
        spec->build_id = tf->build_id;
        json_object_set_new(state, "buildID", json_string(tf->build_id));
    }
    if (e2b_json_str(meta, "runtime") && *e2b_json_str(meta, "runtime"))
        tf->runtime = xstrdup(e2b_json_str(meta, "runtime"));
    json_t *aliases = json_object_get(meta, "aliases");
    if (json_array_size(aliases))
        json_object_set(state, "alias", json_array_get(aliases, 0));
    const char *user = e2b_json_str(meta, "user");
    if (!user || !*user)
        user = tf->tree && root_has_user(tf->tree, "user") ? "user" : "root";
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

/* A create from a snapshot (snapshot-store.h): the sandbox it was taken of,
 * as its snapshot.json recorded it, is what the new one starts from; the
 * create gives its own id, token, timeout, metadata, and envs on top. */
static int resolve_snapshot(const json_t *meta, struct template_files *tf,
                            struct e2b_runtime_spec *spec, json_t *state, struct e2b_error **err)
{
    const json_t *ss = json_object_get(meta, "sandbox");
    bool internal = e2b_json_bool(meta, "internal", false); /* a fork's: the original's template */
    const char *tid = internal ? e2b_json_str(ss, "templateID") : e2b_json_str(meta, "templateID");
    tf->template_id = xstrdup(tid ?: "");
    spec->template_id = tf->template_id;
    if (e2b_json_str(ss, "buildID"))
        spec->build_id = tf->build_id = xstrdup(e2b_json_str(ss, "buildID"));
    if (e2b_json_str(ss, "rootfsTree"))
        spec->rootfs_tree = tf->tree = xstrdup(e2b_json_str(ss, "rootfsTree"));
    if (e2b_json_str(ss, "rootfsImage"))
        spec->rootfs_image = tf->image = xstrdup(e2b_json_str(ss, "rootfsImage"));
    spec->host = e2b_json_bool(ss, "hostBased", false) || STREQ(e2b_json_str(ss, "templateID") ?: "", "host");
    tf->runtime = xstrdup(e2b_json_str(meta, "runtime") ?: "");
    json_object_set_new(state, "templateID", json_string(tf->template_id));
    if (tf->build_id)
        json_object_set_new(state, "buildID", json_string(tf->build_id));
    json_t *alias = internal ? json_object_get(ss, "alias") : json_object_get(meta, "name");
    if (json_is_string(alias))
        json_object_set(state, "alias", alias);
    static const char *const keys[] = { "defaultUser", "defaultWorkdir", "cpuCount", "memoryMB",
                                        "hostBased" };
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (json_object_get(ss, keys[i]))
            json_object_set(state, keys[i], json_object_get(ss, keys[i]));
    if (json_is_object(json_object_get(ss, "envVars")))
        json_object_set(state, "templateEnv", json_object_get(ss, "envVars"));
    spec->disk_mb = (int)e2b_json_int(ss, "diskSizeMB", spec->disk_mb);
    /* the VM's network device as it was saved (with outbound rules, a
     * sandbox has one even without internet access) */
    spec->internet = e2b_json_bool(ss, "netDevice", e2b_json_bool(ss, "allowInternetAccess", spec->internet));
    if (!tf->tree && !tf->image && !spec->host) /* `host`: the host's own programs */
        return e2b_error_set(err, E2B_ERR_INVALID, "snapshot '%s' names no root file system",
                             e2b_json_str(meta, "snapshotID") ?: "?");
    return 0;
}

/* ---- volumes and network ------------------------------------------------------ */

/* A mount point: absolute, canonical, not / and not where the sandbox's
 * own file systems are. */
static int check_mount_path(const char *p, struct e2b_error **err)
{
    static const char *const reserved[] = {"/proc", "/dev", "/sys", "/run/e2b", NULL};
    bool ok = p && p[0] == '/' && p[1] && strlen(p) < 1024 && !strstr(p, "//") && p[strlen(p) - 1] != '/';
    for (const char *c = p; ok && c && *c; c = strchr(c + 1, '/')) {
        size_t n = strcspn(c + 1, "/");
        ok = !(n == 1 && c[1] == '.') && !(n == 2 && c[1] == '.' && c[2] == '.');
    }
    for (const char *const *r = reserved; ok && *r; r++)
        ok = !STREQ(p, *r) && !(e2b_str_has_prefix(p, *r) && p[strlen(*r)] == '/');
    if (!ok)
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "volume mount path '%s' must be an absolute path without '.' or '..', "
                             "not / and not below /proc, /dev, /sys or /run/e2b",
                             p ? p : "");
    return 0;
}

/* Open each volume of mounts (they stay open, so not deletable, until the
 * create is done); *ret_binds for the runtime: [{host, path}], or with
 * images (a runtime with a kernel of its own) [{image, path}], each volume
 * claimed for the sandbox id (e2b_volume_claim: one VM at a time). */
static int open_volumes(const json_t *mounts, bool images, const char *id, struct e2b_volume *vols,
                        size_t *n, json_t *state, json_t **ret_binds, struct e2b_error **err)
{
    if (!mounts || json_is_null(mounts))
        return 0;
    if (!json_is_array(mounts) || json_array_size(mounts) > MAX_VOLUME_MOUNTS)
        return e2b_error_set(err, E2B_ERR_INVALID, "volumeMounts must be an array of at most %d {name, path}",
                             MAX_VOLUME_MOUNTS);
    json_t *binds = json_array(), *recorded = json_array();
    *ret_binds = binds;
    json_object_set_new(state, "volumeMounts", recorded);
    size_t i, j;
    json_t *m, *r;
    json_array_foreach(mounts, i, m) {
        const char *name = e2b_json_str(m, "name"), *path = e2b_json_str(m, "path");
        if (!name || !*name)
            return e2b_error_set(err, E2B_ERR_INVALID, "volumeMounts[%zu] has no name", i);
        if (check_mount_path(path, err) < 0)
            return -1;
        for (j = 0; j < i; j++)
            if (STREQ(e2b_json_str(json_array_get(mounts, j), "path"), path))
                return e2b_error_set(err, E2B_ERR_INVALID, "two volumes are mounted at '%s'", path);
        if (images) { /* a block device: once per VM */
            _cleanup_json_ json_t *meta = NULL;
            if (e2b_volume_get(name, &meta, err) < 0)
                return e2b_error_wrap(err, "cannot mount volume '%s'", name);
            json_array_foreach(recorded, j, r)
                if (STREQ(e2b_json_str(r, "volumeID"), e2b_json_str(meta, "volumeID")))
                    return e2b_error_set(err, E2B_ERR_INVALID,
                                         "volume '%s' is mounted twice: a VM takes a volume once",
                                         name);
        }
        if ((images ? e2b_volume_claim(name, id, e2b_local_volume_in_use, NULL, &vols[*n], err)
                    : e2b_volume_open(name, &vols[*n], err)) < 0)
            return e2b_error_wrap(err, "cannot mount volume '%s'", name);
        struct e2b_volume *v = &vols[(*n)++];
        json_array_append_new(binds, json_pack("{s:s, s:s}", images ? "image" : "host",
                                               images ? v->image : v->root, "path", path));
        json_t *rec = json_pack("{s:s, s:s, s:s}", "name", e2b_json_str(v->meta, "name"), "path",
                                path, "volumeID", e2b_json_str(v->meta, "volumeID"));
        if (images) /* what a resume from disk claims again */
            json_object_set_new(rec, "image", json_true());
        json_array_append_new(recorded, rec);
    }
    return 0;
}

static bool has_rules(const json_t *net)
{
    return json_array_size(json_object_get(net, "allowOut")) || json_array_size(json_object_get(net, "denyOut")) ||
           json_object_size(json_object_get(net, "rules"));
}

/* What the sandbox's state keeps of its network: the rules as given. */
static json_t *recorded_network(const json_t *net)
{
    json_t *r = json_object();
    static const char *const keys[] = {"allowOut", "denyOut", "rules", NULL};
    for (const char *const *k = keys; *k; k++)
        if (json_object_get(net, *k) && !json_is_null(json_object_get(net, *k)))
            json_object_set(r, *k, json_object_get(net, *k));
    return r;
}

/* The egress filter's config (egress.h). */
static json_t *egress_config(const json_t *net, const json_t *rules, bool internet)
{
    json_t *c = recorded_network(net);
    if (rules)
        json_object_set(c, "rules", (json_t *)rules);
    json_object_set_new(c, "internet", json_boolean(internet));
    const char *dns = getenv("E2B_EGRESS_DNS");
    json_object_set_new(c, "dns", json_string(dns && *dns ? dns : E2B_EGRESS_DNS_DEFAULT));
    _cleanup_free_ char *ca = e2b_egress_ca_dir();
    json_object_set_new(c, "ca", json_string(ca));
    const char *up = getenv("E2B_EGRESS_CA_FILE"); /* roots trusted upstream besides the system's */
    if (up && *up)
        json_object_set_new(c, "upstreamCA", json_string(up));
    return c;
}

static char *random_token(void)
{
    _cleanup_free_ char *a = e2b_random_id();
    _cleanup_free_ char *b = e2b_random_id();
    return xasprintf("%s%s", a, b);
}


int e2b_local_create(const struct e2b_local_options *o, json_t **ret_state, struct e2b_error **err)
{
    e2b_sandbox_reap();
    _cleanup_free_ char *envd = o->envd_path ? xstrdup(o->envd_path) : e2b_local_find_envd();
    if (!envd || access(envd, X_OK) < 0)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                             "cannot find the guest agent 'envd' (build it, or set E2B_ENVD)");
    if (o->timeout_s <= 0)
        return e2b_error_set(err, E2B_ERR_INVALID, "timeout must be greater than 0");

    const struct e2b_runtime_ops *rt = NULL;
    struct e2b_volume vols[MAX_VOLUME_MOUNTS];
    size_t n_vols = 0;
    _cleanup_json_ json_t *binds = NULL, *egress = NULL;
    /* the network: the create's, or the one of the snapshot it starts from */
    const json_t *net = o->network;
    bool internet = o->internet;
    bool rules = net && has_rules(net);
    _cleanup_free_ char *id = e2b_random_id();
    _cleanup_free_ char *dir = e2b_sandbox_dir(id);
    _cleanup_free_ char *started = NULL, *snap = NULL, *snap_dir = NULL, *ca = NULL;
    _cleanup_json_ json_t *state = json_object(), *snap_meta = NULL;
    _cleanup_close_ int snap_pin = -1;
    struct template_files tf = {0};
    struct e2b_runtime_spec spec = {
        .template_name = o->template ? o->template : "base",
        .envd = envd,
        .disk_mb = o->disk_mb ? o->disk_mb : DEFAULT_DISK_MB,
        .pids_max = o->pids_max ? o->pids_max : DEFAULT_PIDS,
        .internet = o->internet || rules, /* rules: a network to filter */
        .unprivileged = geteuid() != 0,
        .kernel = o->kernel,
    };
    int r = -1;
    /* a snapshot's ID or name first: E2B's API starts sandboxes from one as from a template */
    if (!o->snapshot_dir &&
        e2b_snapshot_find(spec.template_name, &snap_meta, &snap_dir, NULL) == 0) {
        if ((snap_pin = e2b_snapshot_pin(snap_dir, err)) < 0 ||
            resolve_snapshot(snap_meta, &tf, &spec, state, err) < 0)
            goto out;
        if (o->cpu_count || o->memory_mb || o->disk_mb || (net && !json_is_null(net)) ||
            json_array_size(o->volume_mounts)) {
            e2b_error_set(
                err, E2B_ERR_INVALID,
                "a sandbox from snapshot '%s' has the CPUs, memory, disk, network and volumes "
                "of the sandbox it was taken of; they cannot be set",
                spec.template_name);
            goto out;
        }
        const json_t *ss = json_object_get(snap_meta, "sandbox");
        net = json_object_get(ss, "network");
        internet = e2b_json_bool(ss, "allowInternetAccess", false);
        rules = net && has_rules(net);
        if (o->runtime && !STREQ(o->runtime, "auto") && !STREQ(o->runtime, tf.runtime)) {
            e2b_error_set(err, E2B_ERR_INVALID,
                          "snapshot '%s' is of a sandbox of the %s runtime; it cannot start on %s",
                          spec.template_name, tf.runtime, o->runtime);
            goto out;
        }
    } else if (resolve_template(spec.template_name, &tf, &spec, state, err) < 0) {
        goto out;
    }
    /* the create's word, the template's, the caller's default, auto */
    rt = e2b_runtime_pick(snap_dir     ? tf.runtime
                          : o->runtime ? o->runtime
                          : tf.runtime ? tf.runtime
                                       : o->runtime_default,
                          spec.host, o->kernel, err);
    if (!rt || rt->prepare(&spec, state, err) < 0 ||
        open_volumes(o->volume_mounts, spec.volume_images, id, vols, &n_vols, state, &binds, err) <
            0)
        goto out;
    if (snap_dir && !rt->restore) {
        e2b_error_set(
            err, E2B_ERR_UNSUPPORTED,
            "snapshot '%s' cannot be restored: this e2b's %s runtime cannot restore a save",
            spec.template_name, rt->name);
        goto out;
    }
    if (spec.host)
        json_object_set_new(state, "hostBased", json_true());
    spec.volumes = binds;
    /* a sandbox with a network trusts the egress CA: its filter may end the
     * TLS of a host with transform rules (now or after an update) */
    if (spec.internet) {
        if (e2b_egress_ca_pem(&ca, err) < 0)
            goto out;
        spec.trust_pem = ca;
        json_object_set_new(state, "egressCA", json_string(E2B_EGRESS_CA_PATH));
    }
    /* what it runs from, for a resume from disk */
    if (spec.rootfs_image)
        json_object_set_new(state, "rootfsImage", json_string(spec.rootfs_image));
    if (spec.rootfs_tree)
        json_object_set_new(state, "rootfsTree", json_string(spec.rootfs_tree));
    spec.snapshot_dir = o->snapshot_dir;
    if (snap_dir) { /* restored, never booted afresh: that would lose what it holds */
        snap = e2b_path_join(snap_dir, "save");
        spec.restore_shared = true;
        json_object_set_new(state, "fromSnapshot", json_string(snap_dir));
        json_object_set(state, "snapshotID", json_object_get(snap_meta, "snapshotID"));
    } else if (rt->restore && tf.dir && !o->no_snapshot && !o->snapshot_dir) {
        snap = xasprintf("%s/snapshot-%s", tf.dir, rt->name);
        _cleanup_free_ char *sj = e2b_path_join(snap, "snapshot.json");
        if (access(sj, F_OK) < 0)
            free(TAKE_PTR(snap));
    }
    int lock = e2b_sandbox_dir_create_held(id, dir, err);
    if (lock < 0)
        goto out;

    int64_t now = e2b_wall_ms();
    started = e2b_rfc3339(now);
    json_object_set_new(state, "sandboxID", json_string(id));
    json_object_set_new(state, "runtime", json_string(rt->name));
    json_object_set_new(state, "state", json_string("starting"));
    json_object_set_new(state, "startedAt", json_string(started));
    json_object_set_new(state, "startedAtMs", json_integer(now));
    json_object_set_new(state, "deadlineBootMs", json_integer(e2b_boot_ms() + (int64_t)o->timeout_s * 1000));
    if (o->cpu_count || !json_object_get(state, "cpuCount"))
        json_object_set_new(state, "cpuCount", json_integer(o->cpu_count ? o->cpu_count : DEFAULT_CPUS));
    if (o->memory_mb || !json_object_get(state, "memoryMB"))
        json_object_set_new(state, "memoryMB",
                            json_integer(o->memory_mb ? o->memory_mb : DEFAULT_MEMORY_MB));
    json_object_set_new(state, "diskSizeMB", json_integer(spec.disk_mb));
    json_object_set(state, "metadata", o->metadata ? o->metadata : json_object());
    json_t *env = json_object();
    json_object_update(env, json_object_get(state, "templateEnv"));
    if (o->env_vars)
        json_object_update(env, o->env_vars);
    json_object_set_new(state, "envVars", env);
    json_object_del(state, "templateEnv");
    json_object_set_new(state, "allowInternetAccess", json_boolean(internet));
    json_object_set_new(state, "netDevice", json_boolean(spec.internet));
    if (net && !json_is_null(net))
        json_object_set_new(state, "network", recorded_network(net));
    if (rules) /* a snapshot's transforms are not resolved again: its secrets are not here */
        egress = egress_config(net, snap_dir ? NULL : o->network_rules, internet);
    json_object_set_new(state, "lifecycle", json_pack("{s:b, s:s}", "autoResume", o->auto_pause && o->auto_resume,
                                                      "onTimeout", o->auto_pause ? "pause" : "kill"));
    if (o->secure) {
        _cleanup_free_ char *tok = random_token();
        json_object_set_new(state, "envdAccessToken", json_string(tok));
    }
    if (o->warm_pool)
        json_object_set_new(state, "warmPool", json_string(o->warm_pool));
    spec.user = e2b_json_str(state, "defaultUser");
    spec.cpu_count = (unsigned)e2b_json_int(state, "cpuCount", 0);
    spec.memory_mb = (int)e2b_json_int(state, "memoryMB", 0);
    json_object_set_new(state, "supervisorPid", json_integer(0));
    if (e2b_sandbox_state_write(dir, state, err) < 0) {
        e2b_rm_rf(dir, NULL);
        close(lock);
        goto out;
    }
    struct e2b_supervisor_args sa = { .id = id,
                                      .dir = dir,
                                      .lock_fd = lock,
                                      .rt = rt,
                                      .spec = &spec,
                                      .state = state,
                                      .restore_from = snap,
                                      .egress = egress,
                                      .restore_fallback = !snap_dir };
    if (e2b_supervisor_start(&sa, err) < 0) {
        e2b_local_kill(id, NULL);
        goto out;
    }
    r = e2b_sandbox_state_read(dir, ret_state, err);
    struct e2b_store store;
    if (r == 0 && e2b_store_open(&store, NULL) == 0) { /* the template's spawnCount */
        e2b_store_count(&store, spec.template_id, true);
        e2b_store_close(&store);
    }
out:
    for (size_t i = 0; i < n_vols; i++) {
        if (r < 0 && vols[i].image)
            e2b_volume_unclaim(&vols[i], id);
        e2b_volume_close(&vols[i]);
    }
    template_files_release(&tf);
    return r;
}

/* ---- the template's snapshot ------------------------------------------------ */

struct save_args {
    const char *dir;
};

static int do_save_template(const char *id, const char *dir, json_t *st, void *ud,
                            struct e2b_error **err)
{
    struct save_args *a = ud;
    const struct e2b_runtime_ops *rt = e2b_runtime_of(st, err);
    struct e2b_runtime_sandbox sb = { .id = id, .dir = dir, .state = st };
    if (!rt || rt->pause(&sb, err) < 0 || rt->snapshot(&sb, a->dir, err) < 0 ||
        e2b_fsync_dir(a->dir, err) < 0)
        return -1;
    return 0;
}

int e2b_local_template_snapshot(const struct e2b_local_options *o, char **ret_dir,
                                struct e2b_error **err)
{
    struct template_files tf = { 0 };
    struct e2b_runtime_spec spec = { .template_name = o->template ? o->template : "base" };
    _cleanup_json_ json_t *scratch = json_object();
    _cleanup_free_ char *staging = NULL, *final = NULL;
    _cleanup_json_ json_t *st = NULL;
    const struct e2b_runtime_ops *rt = NULL;
    int r = -1;
    if (resolve_template(spec.template_name, &tf, &spec, scratch, err) < 0)
        goto out;
    rt = e2b_runtime_pick(o->runtime   ? o->runtime
                          : tf.runtime ? tf.runtime
                                       : o->runtime_default,
                          spec.host, o->kernel, err);
    if (!rt)
        goto out;
    if (!rt->snapshot || !rt->restore || !tf.dir) {
        e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                      "the %s runtime cannot save a sandbox (a snapshot needs --runtime vm)",
                      rt->name);
        goto out;
    }
    final = xasprintf("%s/snapshot-%s", tf.dir, rt->name);
    staging = xasprintf("%s.new", final);
    e2b_rm_rf(staging, NULL);
    if (mkdir(staging, 0700) < 0) {
        e2b_error_sys(err, errno, "cannot create %s", staging);
        goto out;
    }
    struct e2b_local_options co = *o;
    co.runtime = rt->name;
    co.snapshot_dir = staging;
    co.secure = false; /* each sandbox restored from it gets its own token */
    co.timeout_s = co.timeout_s > 0 ? co.timeout_s : 600;
    if (e2b_local_create(&co, &st, err) < 0)
        goto out;
    const char *id = e2b_json_str(st, "sandboxID");
    /* one command first, as a sandbox's first one: the guest's caches then
     * hold the shell and what starting a process touches */
    struct e2b_envd_endpoint ep;
    if (e2b_local_envd_endpoint(id, &ep, NULL) == 0) {
        const char *argv[] = { "/bin/sh", "-c", "true", NULL };
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC), code;
        struct e2b_run_opts ro = {
            .argv = argv, .out_fd = null, .err_fd = null, .timeout_ms = 30000
        };
        (void)e2b_process_run(&ep, &ro, &code, NULL);
        if (null >= 0)
            close(null);
        e2b_envd_endpoint_release(&ep);
    }
    struct save_args sa = { .dir = staging };
    r = e2b_sandbox_update(id, do_save_template, &sa, err);
    e2b_local_kill(id, NULL);
    if (r < 0)
        goto out;
    r = -1;
    e2b_rm_rf(final, NULL);
    if (rename(staging, final) < 0) {
        e2b_error_sys(err, errno, "cannot make %s", final);
        goto out;
    }
    if (ret_dir)
        *ret_dir = xstrdup(final);
    r = 0;
out:
    if (r < 0 && staging)
        e2b_rm_rf(staging, NULL);
    template_files_release(&tf);
    return r;
}

/* ---- warm sandboxes ----------------------------------------------------------- */

struct adopt_args {
    const struct e2b_local_options *o;
    char *init; /* envd's /init body for its new life */
};

static int do_adopt(const char *id, const char *dir, json_t *st, void *ud, struct e2b_error **err)
{
    struct adopt_args *a = ud;
    const struct e2b_local_options *o = a->o;
    if (!json_object_get(st, "warmPool") || e2b_sandbox_is_saved(dir) ||
        !STREQ(e2b_json_str(st, "state") ?: "", "running"))
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "sandbox '%s' is no warm sandbox waiting", id);
    int64_t now = e2b_wall_ms();
    _cleanup_free_ char *ts = e2b_rfc3339(now);
    json_object_set_new(st, "startedAt", json_string(ts));
    json_object_set_new(st, "startedAtMs", json_integer(now));
    json_object_set_new(st, "deadlineBootMs",
                        json_integer(e2b_boot_ms() + (int64_t)o->timeout_s * 1000));
    json_object_set(st, "metadata", o->metadata ? o->metadata : json_object());
    json_t *env = json_object();
    json_object_update(env, json_object_get(st, "envVars"));
    if (o->env_vars)
        json_object_update(env, o->env_vars);
    json_object_set_new(st, "envVars", env);
    json_object_set_new(
        st, "lifecycle",
        json_pack("{s:b, s:s}", "autoResume", o->auto_pause && o->auto_resume, "onTimeout",
                  o->auto_pause ? "pause" : "kill"));
    if (o->secure) {
        _cleanup_free_ char *tok = random_token();
        json_object_set_new(st, "envdAccessToken", json_string(tok));
    } else {
        json_object_del(st, "envdAccessToken");
    }
    json_object_del(st, "warmPool");
    a->init = e2b_envd_init_body(id, st);
    return 0;
}

int e2b_local_adopt(const char *id, const struct e2b_local_options *o, json_t **ret_state,
                    struct e2b_error **err)
{
    if (o->timeout_s <= 0)
        return e2b_error_set(err, E2B_ERR_INVALID, "timeout must be greater than 0");
    struct adopt_args a = { .o = o };
    if (e2b_sandbox_update(id, do_adopt, &a, err) < 0)
        return -1;
    _cleanup_free_ char *init = a.init;
    /* envd takes its envs, token and clock (it has no token yet) */
    struct e2b_envd_endpoint ep;
    _cleanup_json_ json_t *body = NULL;
    int r = e2b_local_envd_endpoint(id, &ep, err);
    if (r == 0) {
        free(ep.access_token);
        ep.access_token = NULL;
        struct e2b_envd_client c = { .ep = &ep, .unary_timeout_ms = 10000 };
        r = e2b_json_parse(init, strlen(init), "envd's /init", &body, err) < 0
                ? -1
                : e2b_envd_unary(&c, "init", body, NULL, err);
        e2b_envd_endpoint_release(&ep);
    }
    if (r < 0) {
        e2b_error_wrap(err, "cannot hand out warm sandbox '%s'", id);
        e2b_local_kill(id, NULL);
        return -1;
    }
    return ret_state ? e2b_sandbox_load(id, NULL, ret_state, err) : 0;
}

/* ---- the other verbs ------------------------------------------------------ */

int e2b_local_get(const char *id, json_t **ret_state, struct e2b_error **err)
{
    return e2b_sandbox_load(id, NULL, ret_state, err);
}

int e2b_local_list(json_t **ret_states, struct e2b_error **err)
{
    e2b_sandbox_reap();
    json_t *list = json_array();
    _cleanup_free_ char *root = e2b_sandboxes_dir();
    _cleanup_closedir_ DIR *d = opendir(root);
    struct dirent *de;
    _cleanup_json_ json_t *seen = json_object();
    while (d && (de = readdir(d))) {
        if (!e2b_sandbox_id_valid(de->d_name))
            continue;
        json_t *st = NULL;
        if (e2b_sandbox_load(de->d_name, NULL, &st, NULL) == 0) {
            const char *s = e2b_json_str(st, "state");
            if (s && (STREQ(s, "running") || STREQ(s, "paused")))
                json_array_append(list, st);
            json_object_set_new(seen, de->d_name, json_true());
            json_decref(st);
        }
    }
    /* paused to disk (and not being resumed right now) */
    _cleanup_free_ char *saved = e2b_saved_sandboxes_dir();
    _cleanup_closedir_ DIR *sd = opendir(saved);
    while (sd && (de = readdir(sd))) {
        if (!e2b_sandbox_id_valid(de->d_name) || json_object_get(seen, de->d_name))
            continue;
        _cleanup_free_ char *dir = e2b_path_join(saved, de->d_name);
        json_t *st = NULL;
        if (e2b_sandbox_state_read(dir, &st, NULL) == 0)
            json_array_append_new(list, st);
    }
    *ret_states = list;
    return 0;
}

/* Wait (bounded: 15 s) until the supervisor of the sandbox in dir has gone. */
static bool wait_gone(const char *dir)
{
    for (int i = 0; i < 1500 && access(dir, F_OK) == 0 && e2b_sandbox_held(dir); i++)
        usleep(10000);
    return !e2b_sandbox_held(dir);
}

/* Forget a sandbox paused to disk: its save, and its hold on the template. */
static int remove_saved(const char *id, const char *dir, const json_t *st, struct e2b_error **err)
{
    int claim = e2b_sandbox_saved_claim(id, dir, err);
    if (claim < 0)
        return -1;
    const char *rootfs = e2b_json_str(st, "rootfsImage") ?: e2b_json_str(st, "rootfsTree");
    if (rootfs)
        e2b_store_release(rootfs, id);
    if (e2b_json_str(st, "fromSnapshot"))
        e2b_snapshot_release(e2b_json_str(st, "fromSnapshot"), id);
    int r = e2b_rm_rf(dir, err);
    close(claim);
    if (r == 0)
        e2b_sandbox_note_end(id, "killed");
    return r;
}

int e2b_local_kill(const char *id, struct e2b_error **err)
{
    _cleanup_free_ char *dir = NULL;
    _cleanup_json_ json_t *st = NULL;
    if (e2b_sandbox_load(id, &dir, &st, err) < 0)
        return -1;
    if (e2b_sandbox_is_saved(dir))
        return remove_saved(id, dir, st, err);
    pid_t sup = (pid_t)e2b_json_int(st, "supervisorPid", 0);
    e2b_sandbox_signal_supervisor(dir, sup, SIGTERM);
    /* The supervisor removes the state dir when all is gone; wait for that
     * (bounded: 15 s), then kill it and clear up ourselves. */
    for (int i = 0; i < 1500 && access(dir, F_OK) == 0 && e2b_sandbox_held(dir); i++) {
        if (sup <= 0 && i % 10 == 9) { /* still starting: its supervisor's pid comes soon */
            json_t *cur = NULL;
            if (e2b_sandbox_state_read(dir, &cur, NULL) == 0) {
                sup = (pid_t)e2b_json_int(cur, "supervisorPid", 0);
                json_decref(cur);
                e2b_sandbox_signal_supervisor(dir, sup, SIGTERM);
            }
        }
        usleep(10000);
    }
    if (access(dir, F_OK) == 0) {
        e2b_sandbox_signal_supervisor(dir, sup, SIGKILL);
        for (int i = 0; i < 100 && e2b_sandbox_held(dir); i++)
            usleep(10000);
        e2b_sandbox_reap();
    }
    return 0;
}

static bool is_paused(const json_t *st)
{
    return STREQ(e2b_json_str(st, "state") ? e2b_json_str(st, "state") : "", "paused");
}

static int do_set_timeout(const char *id, const char *dir, json_t *st, void *ud, struct e2b_error **err)
{
    int timeout = *(int *)ud;
    if (e2b_sandbox_is_saved(dir)) { /* paused to disk: what it will have from the resume */
        json_object_set_new(st, "timeLeftMs", json_integer((int64_t)timeout * 1000));
        return 0;
    }
    /* paused: the clock stands at the pause, so the time counts from the resume */
    int64_t from = is_paused(st) ? e2b_json_int(st, "pausedAtBootMs", e2b_boot_ms()) : e2b_boot_ms();
    json_object_set_new(st, "deadlineBootMs", json_integer(from + (int64_t)timeout * 1000));
    return 0;
}

int e2b_local_set_timeout(const char *id, int timeout_s, struct e2b_error **err)
{
    if (timeout_s <= 0)
        return e2b_error_set(err, E2B_ERR_INVALID, "timeout must be greater than 0");
    return e2b_sandbox_update(id, do_set_timeout, &timeout_s, err);
}

int e2b_local_pause(const char *id, bool to_disk, struct e2b_error **err)
{
    bool saved = false;
    if (e2b_sandbox_pause(id, to_disk, &saved, err) < 0)
        return -1;
    _cleanup_free_ char *dir = e2b_sandbox_dir(id);
    if (saved && !wait_gone(dir)) /* the save is whole: only what ran it is left */
        return e2b_error_set(err, E2B_ERR_TIMEOUT,
                             "sandbox '%s' is saved to disk, but its supervisor did not end", id);
    return 0;
}

struct resume_args {
    int timeout_s;
    bool was_paused;
};

static int do_resume(const char *id, const char *dir, json_t *st, void *ud, struct e2b_error **err)
{
    struct resume_args *a = ud;
    int64_t now = e2b_boot_ms();
    a->was_paused = is_paused(st);
    if (a->was_paused) {
        const struct e2b_runtime_ops *rt = e2b_runtime_of(st, err);
        struct e2b_runtime_sandbox sb = {.id = id, .dir = dir, .state = st};
        if (!rt || rt->resume(&sb, err) < 0)
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

/* A sandbox paused to disk, restored by a new supervisor; its save goes
 * once it runs, and stays if it cannot. */
static int resume_saved(const char *id, const char *sdir, const json_t *saved, int timeout_s,
                        const json_t *rules, struct e2b_error **err)
{
    int claim = e2b_sandbox_saved_claim(id, sdir, err);
    if (claim < 0)
        return -1;
    _cleanup_free_ char *envd = e2b_local_find_envd();
    _cleanup_free_ char *dir = e2b_sandbox_dir(id);
    _cleanup_json_ json_t *state = json_deep_copy(saved);
    const struct e2b_runtime_ops *rt = e2b_runtime_of(state, err);
    struct e2b_volume vols[MAX_VOLUME_MOUNTS];
    size_t n_vols = 0;
    json_t *drives = json_array(), *egress = NULL;
    int r = -1;
    if (!rt)
        goto out;
    if (!envd || !rt->restore) {
        e2b_error_set(err, !envd ? E2B_ERR_NOT_FOUND : E2B_ERR_UNSUPPORTED, "%s",
                      !envd ? "cannot find the guest agent 'envd' (build it, or set E2B_ENVD)"
                            : "this runtime cannot restore a save");
        goto out;
    }
    struct e2b_runtime_spec spec = {
        .template_name = e2b_json_str(state, "templateID") ?: "?",
        .template_id = e2b_json_str(state, "templateID"),
        .build_id = e2b_json_str(state, "buildID"),
        .rootfs_tree = e2b_json_str(state, "rootfsTree"),
        .rootfs_image = e2b_json_str(state, "rootfsImage"),
        .envd = envd,
        .user = e2b_json_str(state, "defaultUser"),
        .cpu_count = (unsigned)e2b_json_int(state, "cpuCount", DEFAULT_CPUS),
        .memory_mb = (int)e2b_json_int(state, "memoryMB", DEFAULT_MEMORY_MB),
        .disk_mb = (int)e2b_json_int(state, "diskSizeMB", DEFAULT_DISK_MB),
        .pids_max = DEFAULT_PIDS,
        .internet =
            e2b_json_bool(state, "netDevice", e2b_json_bool(state, "allowInternetAccess", false)),
        .unprivileged = geteuid() != 0,
    };
    /* its VM's volumes: its own still (claimed while it is saved), the same drives again */
    size_t vi;
    json_t *m;
    json_array_foreach(json_object_get(state, "volumeMounts"), vi, m) {
        if (!e2b_json_bool(m, "image", false))
            continue;
        if (n_vols == MAX_VOLUME_MOUNTS ||
            e2b_volume_claim(e2b_json_str(m, "volumeID") ?: "?", id, e2b_local_volume_in_use, NULL,
                             &vols[n_vols], err) < 0)
            goto out;
        struct e2b_volume *v = &vols[n_vols++];
        json_array_append_new(
            drives, json_pack("{s:s, s:s?}", "image", v->image, "path", e2b_json_str(m, "path")));
    }
    spec.volumes = json_array_size(drives) ? drives : NULL;
    spec.volume_images = spec.volumes != NULL;
    int lock = e2b_sandbox_dir_create_held(id, dir, err);
    if (lock < 0)
        goto out;
    /* the time it had left counts from now */
    int64_t left =
        timeout_s > 0 ? (int64_t)timeout_s * 1000 : e2b_json_int(state, "timeLeftMs", 1000);
    json_object_set_new(state, "state", json_string("starting"));
    json_object_set_new(state, "deadlineBootMs", json_integer(e2b_boot_ms() + left));
    json_object_set_new(state, "supervisorPid", json_integer(0));
    json_object_del(state, "timeLeftMs");
    json_object_del(state, "pausedAt");
    static const char *const logs[] = { "sandbox.log.1", "sandbox.log" };
    for (size_t i = 0; i < ARRAY_SIZE(logs); i++) {
        _cleanup_free_ char *a = e2b_path_join(sdir, logs[i]);
        _cleanup_free_ char *b = e2b_path_join(dir, logs[i]);
        if (access(a, F_OK) == 0)
            e2b_copy_file_sparse(a, b, 0600, NULL);
    }
    if (e2b_sandbox_state_write(dir, state, err) < 0) {
        e2b_rm_rf(dir, NULL);
        close(lock);
        goto out;
    }
    /* its outbound rules, in the new network namespace of its new process */
    const json_t *net = json_object_get(state, "network");
    if (net && has_rules(net))
        egress = egress_config(net, rules, e2b_json_bool(state, "allowInternetAccess", false));
    struct e2b_supervisor_args sa = { .id = id,
                                      .dir = dir,
                                      .lock_fd = lock,
                                      .rt = rt,
                                      .spec = &spec,
                                      .state = state,
                                      .egress = egress,
                                      .restore_from = sdir };
    if (e2b_supervisor_start(&sa, err) < 0) {
        /* its supervisor is on the way out; the save stays */
        _cleanup_json_ json_t *cur = NULL;
        if (e2b_sandbox_state_read(dir, &cur, NULL) == 0)
            e2b_sandbox_signal_supervisor(dir, (pid_t)e2b_json_int(cur, "supervisorPid", 0),
                                          SIGTERM);
        wait_gone(dir);
        e2b_sandbox_reap();
        e2b_error_wrap(err, "cannot resume sandbox '%s' (it stays paused)", id);
        goto out;
    }
    if (spec.rootfs_image || spec.rootfs_tree)
        e2b_store_release(spec.rootfs_image ? spec.rootfs_image : spec.rootfs_tree, id);
    if (e2b_json_str(state, "fromSnapshot")) /* its supervisor pins it now */
        e2b_snapshot_release(e2b_json_str(state, "fromSnapshot"), id);
    e2b_rm_rf(sdir, NULL);
    r = 0;
out:
    for (size_t k = 0; k < n_vols; k++)
        e2b_volume_close(&vols[k]); /* a failed resume keeps them: it stays paused */
    json_decref(drives);
    json_decref(egress);
    close(claim);
    return r;
}

int e2b_local_resume(const char *id, int timeout_s, const json_t *rules, bool *ret_was_paused,
                     struct e2b_error **err)
{
    _cleanup_free_ char *dir = NULL;
    _cleanup_json_ json_t *st = NULL;
    if (e2b_sandbox_load(id, &dir, &st, err) < 0)
        return -1;
    if (json_object_get(st, "savedTo") && !e2b_sandbox_is_saved(dir)) { /* its save is finishing */
        wait_gone(dir);
        free(dir), json_decref(st);
        dir = NULL, st = NULL;
        if (e2b_sandbox_load(id, &dir, &st, err) < 0)
            return -1;
    }
    if (e2b_sandbox_is_saved(dir)) {
        if (ret_was_paused)
            *ret_was_paused = true;
        return resume_saved(id, dir, st, timeout_s, rules, err);
    }
    struct resume_args a = {.timeout_s = timeout_s};
    int r = e2b_sandbox_update(id, do_resume, &a, err);
    if (ret_was_paused)
        *ret_was_paused = a.was_paused;
    return r;
}

int e2b_local_metrics(const char *id, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *dir = NULL;
    _cleanup_json_ json_t *st = NULL;
    if (e2b_sandbox_load(id, &dir, &st, err) < 0)
        return -1;
    if (e2b_sandbox_is_saved(dir))
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                             "sandbox '%s' is paused to disk: it uses nothing", id);
    const struct e2b_runtime_ops *rt = e2b_runtime_of(st, err);
    if (!rt)
        return -1;
    struct e2b_runtime_sandbox sb = {.id = id, .dir = dir, .state = st};
    struct e2b_runtime_stats a, b;
    if (rt->stats(&sb, &a, err) < 0)
        return -1;
    int64_t t0 = e2b_now_ms();
    usleep(100000); /* CPU use is a rate: two samples */
    if (rt->stats(&sb, &b, err) < 0)
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
    if (b.has_disk) {
        json_object_set_new(m, "diskUsed", json_integer((json_int_t)b.disk_used));
        json_object_set_new(m, "diskTotal", json_integer((json_int_t)b.disk_total));
    }
    *ret = m;
    return 0;
}

int e2b_local_logs(const char *id, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *dir = NULL;
    if (e2b_sandbox_load(id, &dir, NULL, err) < 0)
        return -1;
    json_t *list = json_array();
    /* the rotated part first; each at most E2B_SANDBOX_LOG_MAX (only the supervisor writes them) */
    static const char *const files[] = {"sandbox.log.1", "sandbox.log"};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        _cleanup_free_ char *p = e2b_path_join(dir, files[i]);
        _cleanup_free_ char *data = NULL;
        if (e2b_read_file_untrusted(p, 2 * E2B_SANDBOX_LOG_MAX, &data, NULL, NULL) < 0)
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

/* ---- the ways in ------------------------------------------------------------ */

int e2b_local_envd_endpoint(const char *id, struct e2b_envd_endpoint *ep, struct e2b_error **err)
{
    _cleanup_free_ char *dir = NULL;
    _cleanup_json_ json_t *st = NULL;
    if (e2b_sandbox_load(id, &dir, &st, err) < 0)
        return -1;
    /* a frozen envd would take the request and never answer */
    if (is_paused(st))
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                             "sandbox '%s' is paused (resume it with 'e2b sandbox resume %s' or 'connect')",
                             id, id);
    const struct e2b_runtime_ops *rt = e2b_runtime_of(st, err);
    struct e2b_runtime_sandbox sb = {.id = id, .dir = dir, .state = st};
    memset(ep, 0, sizeof(*ep));
    if (!rt || rt->envd_channel(&sb, &ep->base, err) < 0)
        return -1;
    ep->sandbox_id = xstrdup(id);
    if (e2b_json_str(st, "envdAccessToken"))
        ep->access_token = xstrdup(e2b_json_str(st, "envdAccessToken"));
    return 0;
}

struct set_network {
    const json_t *network, *rules;
    bool internet;
};

static int do_set_network(const char *id, const char *dir, json_t *st, void *ud, struct e2b_error **err)
{
    struct set_network *a = ud;
    if (!e2b_json_bool(st, "netDevice", e2b_json_bool(st, "allowInternetAccess", false)))
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                             "sandbox '%s' was created without internet access and without network rules: "
                             "it has no network to give rules to",
                             id);
    pid_t pid = (pid_t)e2b_json_int(st, "initPid", 0);
    _cleanup_json_ json_t *config = egress_config(a->network, a->rules, a->internet);
    if (e2b_egress_apply(dir, pid, geteuid() != 0, config, err) < 0)
        return -1;
    json_object_set_new(st, "network", recorded_network(a->network));
    json_object_set_new(st, "allowInternetAccess", json_boolean(a->internet));
    return 0;
}

int e2b_local_set_network(const char *id, const json_t *network, const json_t *rules, bool internet,
                          struct e2b_error **err)
{
    struct set_network a = {.network = network, .rules = rules, .internet = internet};
    return e2b_sandbox_update(id, do_set_network, &a, err);
}

int e2b_local_volume_in_use(const char *volume_id, void *ud, struct e2b_error **err)
{
    _cleanup_json_ json_t *all = NULL;
    if (e2b_local_list(&all, err) < 0)
        return -1;
    struct strbuf users = STRBUF_INIT;
    size_t i, j;
    json_t *st, *m;
    json_array_foreach(all, i, st) {
        json_array_foreach(json_object_get(st, "volumeMounts"), j, m) {
            const char *vid = e2b_json_str(m, "volumeID");
            if (vid && STREQ(vid, volume_id)) {
                strbuf_addf(&users, "%s%s", users.len ? ", " : "", e2b_json_str(st, "sandboxID"));
                break;
            }
        }
    }
    int r = 0;
    if (users.len)
        r = e2b_error_set(err, E2B_ERR_EXISTS, "the volume is in use by sandbox %s (kill it first)", users.buf);
    strbuf_release(&users);
    return r;
}

int e2b_local_port_connect(const char *id, int port, int *ret_fd, struct e2b_error **err)
{
    _cleanup_free_ char *dir = NULL;
    _cleanup_json_ json_t *st = NULL;
    if (port < 1 || port > 65535)
        return e2b_error_set(err, E2B_ERR_INVALID, "port %d is not a TCP port", port);
    if (e2b_sandbox_load(id, &dir, &st, err) < 0)
        return -1;
    const char *state = e2b_json_str(st, "state");
    if (state && !STREQ(state, "running"))
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "sandbox '%s' is %s", id, state);
    const struct e2b_runtime_ops *rt = e2b_runtime_of(st, err);
    struct e2b_runtime_sandbox sb = {.id = id, .dir = dir, .state = st};
    if (!rt)
        return -1;
    return rt->port_connect(&sb, port, ret_fd, err);
}
