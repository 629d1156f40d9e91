/* build.c - Dockerfile stages into a template root, then the store.
 *
 * lib/dockerfile parses, expands and picks the stages the target needs;
 * each needed stage is built in order on a stack of directories: its base
 * (an empty directory for scratch, the cached unpacked root of an image, or
 * the stack of an earlier stage) and one overlayfs upper directory per step
 * that changes files (RUN, COPY, ADD, WORKDIR). A step runs on an overlay
 * of the stack with a fresh upper; the upper then becomes the top of the
 * stack. Uppers are kept in the step cache under a key hashing everything
 * the step's result depends on, so a hit only pushes the cached directory.
 * The target stage's stack is flattened into the store's staging root
 * (hard links to the layers' files, so nothing is copied twice).
 *
 * Cache layout, <data dir>/cache/build:
 *   layers/<id>/upper      a step's changes (overlayfs upper: whiteouts are
 *                          0:0 character devices, opaque dirs an xattr)
 *   layers/<id>.tmp-<pid>  a step being built
 *   steps/<key> -> ../layers/<id>   the result of a step; replaced by
 *                          rename, layers are never modified once linked
 *   mounts/<template>/<id> RUN --mount=type=cache directories
 * The build runs in its own mount namespace: every overlay vanishes with the
 * process, whatever way it ends.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <sched.h>
#include <search.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>


#include "base-image.h"
#include "dl-archive.h"
#include "build-context.h"
#include "build-copy.h"
#include "build-user.h"
#include "build.h"
#include "cgroup.h"
#include "config.h"
#include "dockerfile.h"
#include "envd-crypto.h"
#include "ext4.h"
#include "fsutil.h"
#include "http.h"
#include "sandbox-seccomp.h"
#include "strbuf.h"
#include "template-store.h"
#include "util.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct stage {
    const struct e2b_df_stage *sg;
    bool needed, built;
    char **layers;          /* bottom first: base root (or the empty dir), then uppers */
    size_t n_layers;
    char key[65];           /* the running step key */
    struct e2b_base_image *image; /* the image at the bottom of the stack, if any */
    json_t *env;            /* ENV, object */
    json_t *labels, *ports, *volumes, *cmd, *entrypoint, *health, *shell;
    char *workdir, *user, *stopsignal;
    bool workdir_set;       /* WORKDIR given, inherited or from the image */
    char *view;             /* read-only merged view once built */
    bool cmd_set;           /* CMD given in this stage */
};

struct build {
    const struct e2b_build_opts *o;
    struct e2b_dockerfile *df;
    struct stage *stages;
    size_t n_stages, target;
    struct e2b_base_image **images;
    char **image_keys;      /* "ref platform" of each image */
    size_t n_images;
    char **wanted;          /* base image and platform pairs of the needed stages */
    struct e2b_base_opts bo;
    struct e2b_ignore ig;
    int ctx_fd;             /* the build context, O_PATH: every context path is resolved in it */
    char *cache;            /* <data dir>/cache/build */
    char *work;             /* scratch dir for mount points */
    char *empty;            /* an empty directory: the bottom of scratch stacks */
    size_t step, n_steps;
    unsigned cached_steps, run_steps;
};

static void progress(const struct e2b_build_opts *o, const char *fmt, ...) _printf_(2, 3);
static void progress(const struct e2b_build_opts *o, const char *fmt, ...)
{
    if (!o->progress)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) >= 0)
        o->progress(o->data, s);
    va_end(ap);
    free(s);
}

static void on_base_progress(void *ud, const char *line, bool final)
{
    const struct e2b_build_opts *o = ud;
    if (final)
        progress(o, "%s", line);
    else if (o->status)
        o->status(o->data, line);
}

/* ---- images ---- */

static struct e2b_base_image *image_get(struct build *b, const char *ref, const char *platform,
                                        struct e2b_error **err)
{
    /* one image per reference and platform: FROM --platform may differ */
    _cleanup_free_ char *key = xasprintf("%s %s", ref, platform ? platform : b->bo.platform ? b->bo.platform : "");
    for (size_t i = 0; i < b->n_images; i++)
        if (!strcmp(b->image_keys[i], key))
            return b->images[i];
    struct e2b_base_opts bo = b->bo;
    if (platform)
        bo.platform = platform;
    struct e2b_base_image *img = xcalloc(1, sizeof(*img));
    if (e2b_base_image_open(ref, &bo, img, err) < 0) {
        free(img);
        e2b_error_wrap(err, "unknown base image");
        return NULL;
    }
    b->images = xrealloc(b->images, (b->n_images + 1) * sizeof(*b->images));
    b->image_keys = xrealloc(b->image_keys, (b->n_images + 1) * sizeof(char *));
    b->image_keys[b->n_images] = TAKE_PTR(key);
    b->images[b->n_images++] = img;
    return img;
}

static int image_env_cb(void *ud, const char *image, const char *platform, char ***ret, struct e2b_error **err)
{
    struct build *b = ud;
    *ret = NULL;
    if (!strcmp(image, "scratch"))
        return 0;
    /* only the images of stages the target needs are fetched */
    bool wanted = false;
    for (char **w = b->wanted; w && *w && !wanted; w += 2)
        wanted = !strcmp(w[0], image) && !strcmp(w[1], platform ? platform : "");
    if (!wanted)
        return 0;
    struct e2b_base_image *img = image_get(b, image, platform, err);
    if (!img)
        return -1;
    char **v = NULL;
    for (char **e = img->img.config.env; e && *e; e++)
        v = e2b_strv_push(v, *e);
    if (!v)
        v = xcalloc(1, sizeof(char *));
    *ret = v;
    return 0;
}

/* ---- parse ---- */

/* Parse, pick the stages the target needs; with resolve_images, parse a
 * second time with the needed stages' base images known (their ENV, say
 * PATH, is what `ENV PATH=$PATH:/x` expands), and only theirs: a stage the
 * target does not need costs no download. FROM lines depend only on global
 * ARGs, so both parses see the same stages. */
static int parse(const struct e2b_build_opts *o, struct build *b, bool resolve_images, struct e2b_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (e2b_read_file(o->dockerfile, &text, &len, err) < 0)
        return -1;
    struct e2b_build_args ba = {
        .args = o->build_args,
        .n_args = o->n_build_args,
        .target_platform = o->platform,
        .userdata = b,
    };
    const char *slash = strrchr(o->dockerfile, '/');
    const char *name = slash ? slash + 1 : o->dockerfile;
    if (e2b_dockerfile_parse(name, text, len, &ba, &b->df, err) < 0)
        return -1;
    bool *needed = NULL;
    if (e2b_dockerfile_select(b->df, o->target, &b->target, &needed, err) < 0)
        return -1;
    if (resolve_images) {
        for (size_t i = 0; i < b->df->n_stages; i++) {
            const struct e2b_df_stage *sg = &b->df->stages[i];
            if (needed[i] && sg->base_stage < 0 && strcmp(sg->base, "scratch")) {
                b->wanted = e2b_strv_push(b->wanted, sg->base);
                b->wanted = e2b_strv_push(b->wanted, sg->platform ? sg->platform : "");
            }
        }
        free(needed);
        needed = NULL;
        e2b_dockerfile_free(b->df);
        b->df = NULL;
        ba.image_env = image_env_cb;
        if (e2b_dockerfile_parse(name, text, len, &ba, &b->df, err) < 0 ||
            e2b_dockerfile_select(b->df, o->target, &b->target, &needed, err) < 0)
            return -1;
    }
    b->n_stages = b->df->n_stages;
    b->stages = xcalloc(b->n_stages, sizeof(*b->stages));
    for (size_t i = 0; i < b->n_stages; i++) {
        b->stages[i].sg = &b->df->stages[i];
        b->stages[i].needed = needed[i];
        if (needed[i])
            b->n_steps += b->df->stages[i].n_instrs;
    }
    free(needed);
    return 0;
}

int e2b_build_parse(const struct e2b_build_opts *o, json_t **ret, struct e2b_error **err)
{
    struct build b = {.o = o, .ctx_fd = -1};
    int r = parse(o, &b, false, err);
    if (r == 0) {
        bool *needed = xcalloc(b.n_stages, sizeof(bool));
        for (size_t i = 0; i < b.n_stages; i++)
            needed[i] = b.stages[i].needed;
        json_t *j = e2b_dockerfile_to_json(b.df, needed, b.target);
        /* only the stages the target needs */
        json_t *stages = json_object_get(j, "stages");
        for (size_t i = json_array_size(stages); i-- > 0;)
            if (!needed[i])
                json_array_remove(stages, i);
        json_object_set_new(j, "dockerfile", json_string(o->dockerfile));
        free(needed);
        *ret = j;
    }
    free(b.stages);
    e2b_dockerfile_free(b.df);
    return r;
}

/* ---- step keys ---- */

static void kh_str(struct e2b_sha256 *c, const char *s)
{
    uint64_t n = s ? strlen(s) : UINT64_MAX;
    e2b_sha256_update(c, &n, sizeof(n));
    if (s)
        e2b_sha256_update(c, s, strlen(s));
}

static void kh_final(struct e2b_sha256 *c, char out[65])
{
    uint8_t d[E2B_SHA256_LEN];
    e2b_sha256_final(c, d);
    for (int i = 0; i < E2B_SHA256_LEN; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void kh_json(struct e2b_sha256 *c, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    kh_str(c, s);
    free(s);
}

/* ---- the step cache ---- */

static char *cache_lookup(struct build *b, const char *key)
{
    if (b->o->no_cache)
        return NULL;
    _cleanup_free_ char *link = xasprintf("%s/steps/%s", b->cache, key);
    _cleanup_free_ char *upper = xasprintf("%s/upper", link);
    struct stat s;
    if (stat(upper, &s) < 0 || !S_ISDIR(s.st_mode))
        return NULL;
    return realpath(upper, NULL);
}

/* A new layer directory: <cache>/layers/<id>.tmp-<pid>/{upper,work}. */
static char *layer_new(struct build *b, struct e2b_error **err)
{
    _cleanup_free_ char *id = e2b_random_id();
    char *dir = xasprintf("%s/layers/%s.tmp-%d", b->cache, id, (int)getpid());
    _cleanup_free_ char *up = e2b_path_join(dir, "upper"), *wk = e2b_path_join(dir, "work");
    if (e2b_mkdir_p(up, 0755, err) < 0 || e2b_mkdir_p(wk, 0700, err) < 0) {
        free(dir);
        return NULL;
    }
    return dir;
}

/* Finish a layer: drop overlay's work dir, rename into place and point
 * steps/<key> at it. Returns the upper's final path. */
static char *layer_commit(struct build *b, const char *tmp, const char *key, struct e2b_error **err)
{
    _cleanup_free_ char *wk = e2b_path_join(tmp, "work");
    e2b_rm_rf(wk, NULL);
    _cleanup_free_ char *final = xstrndup(tmp, (size_t)(strstr(tmp, ".tmp-") - tmp));
    if (rename(tmp, final) < 0) {
        e2b_error_sys(err, errno, "rename %s", tmp);
        return NULL;
    }
    const char *id = strrchr(final, '/') + 1;
    _cleanup_free_ char *target = xasprintf("../layers/%s", id);
    _cleanup_free_ char *link = xasprintf("%s/steps/%s", b->cache, key);
    _cleanup_free_ char *ltmp = xasprintf("%s.tmp-%d", link, (int)getpid());
    unlink(ltmp);
    if (symlink(target, ltmp) < 0 || rename(ltmp, link) < 0) {
        e2b_error_sys(err, errno, "step cache %s", link);
        unlink(ltmp);
        return NULL;
    }
    return e2b_path_join(final, "upper");
}

/* Layers and links of builds whose process is gone. */
static void cache_clean_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *t = strstr(de->d_name, ".tmp-");
        if (!t)
            continue;
        pid_t pid = (pid_t)atoi(t + 5);
        if (pid > 0 && pid != getpid() && kill(pid, 0) < 0 && errno == ESRCH) {
            _cleanup_free_ char *p = e2b_path_join(dir, de->d_name);
            e2b_rm_rf(p, NULL);
        }
    }
    closedir(d);
}

/* RUN cgroups (build-<pid>-<step>) of builders that were killed. */
static void cgroups_clean_stale(void)
{
    static const char *const pats[] = {"/sys/fs/cgroup/e2b/build-*", "/sys/fs/cgroup/*/e2b/build-*"};
    for (size_t i = 0; i < ARRAY_SIZE(pats); i++) {
        glob_t g;
        if (glob(pats[i], GLOB_NOSORT | GLOB_ONLYDIR, NULL, &g) != 0)
            continue;
        for (size_t k = 0; k < g.gl_pathc; k++) {
            const char *name = strrchr(g.gl_pathv[k], '/') + 1;
            pid_t pid = (pid_t)atoi(name + 6);
            if (pid > 0 && pid != getpid() && kill(pid, 0) < 0 && errno == ESRCH)
                e2b_cgroup_destroy(name);
        }
        globfree(&g);
    }
}

/* ---- overlays ---- */

/* Mount an overlay of `layers` (bottom first) at target: read-write with
 * upper/work, read-only without. */
static int ovl_mount(char *const *layers, size_t n, const char *upper, const char *work, const char *target,
                     struct e2b_error **err)
{
    int fs = fsopen("overlay", FSOPEN_CLOEXEC);
    if (fs < 0)
        return e2b_error_sys(err, errno, "overlayfs");
    int r = 0;
    for (size_t i = n; r == 0 && i-- > 0;)
        if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", layers[i], 0) < 0)
            r = e2b_error_sys(err, errno, "overlay lower layer %s", layers[i]);
    if (r == 0 && upper &&
        (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
         fsconfig(fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0))
        r = e2b_error_sys(err, errno, "overlay upper %s", upper);
    /* uppers become lower layers and get flattened: only plain whiteouts
     * and opaque directories in them, no redirects, metacopy or index */
    if (r == 0 && upper) {
        (void)fsconfig(fs, FSCONFIG_SET_STRING, "redirect_dir", "off", 0);
        (void)fsconfig(fs, FSCONFIG_SET_STRING, "metacopy", "off", 0);
        (void)fsconfig(fs, FSCONFIG_SET_STRING, "index", "off", 0);
    }
    if (r == 0 && fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
        r = e2b_error_sys(err, errno, "overlay of %zu layers", n);
    int mfd = -1;
    if (r == 0 && (mfd = fsmount(fs, FSMOUNT_CLOEXEC, upper ? 0 : MOUNT_ATTR_RDONLY)) < 0)
        r = e2b_error_sys(err, errno, "overlay mount");
    if (r == 0 && move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        r = e2b_error_sys(err, errno, "mount overlay on %s", target);
    if (mfd >= 0)
        close(mfd);
    close(fs);
    return r;
}

static void stage_push(struct stage *s, const char *dir)
{
    s->layers = xrealloc(s->layers, (s->n_layers + 1) * sizeof(char *));
    s->layers[s->n_layers++] = xstrdup(dir);
}

/* The stage's stack as a read-only tree: one layer is itself, more are an
 * overlay (which wants two lowers at least, hence the empty bottom). */
static int stage_view(struct build *b, struct stage *s, struct e2b_error **err)
{
    if (s->view)
        return 0;
    if (s->n_layers == 1) {
        s->view = xstrdup(s->layers[0]);
        return 0;
    }
    char *mp = xasprintf("%s/s%zu", b->work, s->sg->index);
    if (mkdir(mp, 0755) < 0 && errno != EEXIST) {
        free(mp);
        return e2b_error_sys(err, errno, "mkdir");
    }
    if (ovl_mount(s->layers, s->n_layers, NULL, NULL, mp, err) < 0) {
        free(mp);
        return -1;
    }
    s->view = mp;
    return 0;
}

/* ---- stage state ---- */

static json_t *strv_json(char *const *v)
{
    json_t *a = json_array();
    for (; v && *v; v++)
        json_array_append_new(a, json_string(*v));
    return a;
}

static void env_set_kv(json_t *obj, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq)
        return;
    _cleanup_free_ char *k = xstrndup(kv, (size_t)(eq - kv));
    json_object_set_new(obj, k, json_string(eq + 1));
}

static void stage_seed_image(struct stage *s, const struct e2b_image_config *c)
{
    for (char **e = c->env; e && *e; e++)
        env_set_kv(s->env, *e);
    if (c->working_dir && *c->working_dir) {
        free(s->workdir);
        s->workdir = xstrdup(c->working_dir);
        s->workdir_set = true;
    }
    if (c->user && *c->user) {
        free(s->user);
        s->user = xstrdup(c->user);
    }
    if (c->cmd)
        s->cmd = strv_json(c->cmd);
    if (c->entrypoint)
        s->entrypoint = strv_json(c->entrypoint);
    for (char **p = c->exposed_ports; p && *p; p++)
        json_object_set_new(s->ports, *p, json_object());
    for (char **p = c->volumes; p && *p; p++)
        json_object_set_new(s->volumes, *p, json_object());
    for (size_t i = 0; i < c->n_labels; i++)
        json_object_set_new(s->labels, c->labels[i].key, json_string(c->labels[i].value ?: ""));
    if (c->stop_signal)
        s->stopsignal = xstrdup(c->stop_signal);
    if (c->has_healthcheck && c->healthcheck.test)
        s->health = json_pack("{s:o,s:I,s:I,s:I,s:I,s:i}", "test", strv_json(c->healthcheck.test), "intervalNs",
                              (json_int_t)c->healthcheck.interval_ns, "timeoutNs",
                              (json_int_t)c->healthcheck.timeout_ns, "startPeriodNs",
                              (json_int_t)c->healthcheck.start_period_ns, "startIntervalNs",
                              (json_int_t)c->healthcheck.start_interval_ns, "retries", c->healthcheck.retries);
}

static void stage_inherit(struct stage *s, const struct stage *p)
{
    json_object_update(s->env, p->env);
    json_object_update(s->labels, p->labels);
    json_object_update(s->ports, p->ports);
    json_object_update(s->volumes, p->volumes);
    free(s->workdir);
    s->workdir = xstrdup(p->workdir);
    s->workdir_set = p->workdir_set;
    free(s->user);
    s->user = xstrdup(p->user);
    s->cmd = json_deep_copy(p->cmd);
    s->entrypoint = json_deep_copy(p->entrypoint);
    s->health = json_deep_copy(p->health);
    s->shell = json_deep_copy(p->shell);
    s->stopsignal = p->stopsignal ? xstrdup(p->stopsignal) : NULL;
    s->image = p->image;
    for (size_t i = 0; i < p->n_layers; i++)
        stage_push(s, p->layers[i]);
}

static void stage_free(struct stage *s)
{
    for (size_t i = 0; i < s->n_layers; i++)
        free(s->layers[i]);
    free(s->layers);
    json_decref(s->env);
    json_decref(s->labels);
    json_decref(s->ports);
    json_decref(s->volumes);
    json_decref(s->cmd);
    json_decref(s->entrypoint);
    json_decref(s->health);
    json_decref(s->shell);
    free(s->workdir);
    free(s->user);
    free(s->stopsignal);
    free(s->view);
}

/* ---- RUN ---- */

/* A RUN --mount, made ready by the builder as a detached mount (open_tree
 * or fsmount) that the step's process attaches inside its root. */
struct run_mount {
    int mfd;
    char *target;           /* in the root */
    bool file;              /* the target is a file (a bind of one file) */
    int lock_fd;            /* cache sharing=locked|shared: held for the step, else -1 */
};

struct run_spec {
    const char *root;       /* merged root to pivot into */
    char **argv;
    char **envp;
    char *script;           /* RUN <<EOF whose body starts with #!: run as the program */
    const char *workdir, *user;
    bool network_host;
    struct run_mount *mounts;
    size_t n_mounts;
    bool limits;            /* cgroup limits (build steps; not the ready command) */
    int timeout_s;          /* >0: the step is killed at this deadline */
};

static int mkdir_in_root(const char *root, const char *path, struct e2b_error **err)
{
    _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0)
        return e2b_error_sys(err, errno, "%s", root);
    int fd = e2b_tree_mkdir_p(rfd, path, err);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* An empty file to bind a file onto, made inside the root. */
static int touch_in_root(const char *root, const char *path, struct e2b_error **err)
{
    _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0)
        return e2b_error_sys(err, errno, "%s", root);
    _cleanup_free_ char *parent = xstrdup(path);
    char *slash = strrchr(parent, '/');
    const char *name = slash ? slash + 1 : path;
    if (slash)
        *slash = '\0';
    _cleanup_close_ int pfd = e2b_tree_mkdir_p(rfd, slash ? parent : ".", err);
    if (pfd < 0)
        return -1;
    _cleanup_close_ int fd = openat(pfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EISDIR && errno != ELOOP)
        return e2b_error_sys(err, errno, "mount target %s", path);
    return 0;
}

/* A new file system as a detached mount; kv: option pairs, NULL-ended. */
static int fs_new(const char *type, const char *const *kv, unsigned attrs)
{
    int fs = fsopen(type, FSOPEN_CLOEXEC);
    if (fs < 0)
        return -1;
    int m = -1;
    for (; kv && kv[0]; kv += 2)
        if (fsconfig(fs, FSCONFIG_SET_STRING, kv[0], kv[1], 0) < 0)
            goto out;
    if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
        m = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
out:;
    int e = errno;
    close(fs);
    errno = e;
    return m;
}

/* Attach a detached mount at target, resolved inside the root (a symlink
 * planted by an earlier step leads nowhere outside it). */
static int attach(int mfd, int rootfd, const char *target, const char *what)
{
    _cleanup_close_ int t = e2b_tree_open(rootfd, target, O_PATH);
    if (t < 0 || move_mount(mfd, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
        dprintf(2, "e2b build: cannot mount %s on %s: %m\n", what, target);
        return -1;
    }
    return 0;
}

/* The RUN step's process (pid 1 of new mount and pid namespaces, still the
 * host's root): pivot into the stage root (chroot alone can be climbed out
 * of by root), give it /proc and a minimal /dev of its own, and drop what a
 * container's root has no need for, as the sandbox runtime does. Messages
 * go to stderr (the step's output). */
static int enter_build_root(const struct run_spec *rs)
{
    static const struct {
        const char *name;
        unsigned maj, min;
    } nodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9},
                 {"tty", 5, 0}};
    static const char *const links[][2] = {{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
                                           {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}};
    static const int keep[] = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID,
                               CAP_SETUID, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
                               CAP_AUDIT_WRITE, CAP_SETFCAP};
    const char *root = rs->root;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount(root, root, NULL, MS_BIND, NULL) < 0) { /* pivot_root wants a mount point */
        dprintf(2, "e2b build: cannot set up the mounts of the build root: %m\n");
        return -1;
    }
    /* every mount point from here is resolved inside the root */
    _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0) {
        dprintf(2, "e2b build: cannot open the build root: %m\n");
        return -1;
    }
    (void)mkdirat(rfd, "proc", 0555);
    (void)mkdirat(rfd, "dev", 0755);
    static const char *const devopts[] = {"size", "64k", "mode", "755", NULL};
    int pm = fs_new("proc", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    int dm = fs_new("tmpfs", devopts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
    if (pm < 0 || dm < 0) {
        dprintf(2, "e2b build: cannot make /proc and /dev for the build root: %m\n");
        return -1;
    }
    if (attach(pm, rfd, "/proc", "proc") < 0 || attach(dm, rfd, "/dev", "/dev") < 0)
        return -1;
    close(pm);
    close(dm);
    _cleanup_close_ int dev = e2b_tree_open(rfd, "/dev", O_PATH | O_DIRECTORY);
    for (size_t i = 0; dev >= 0 && i < ARRAY_SIZE(nodes); i++) {
        if (mknodat(dev, nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0) {
            dprintf(2, "e2b build: cannot create /dev/%s: %m\n", nodes[i].name);
            return -1;
        }
        fchmodat(dev, nodes[i].name, 0666, 0);
    }
    for (size_t i = 0; dev >= 0 && i < ARRAY_SIZE(links); i++)
        (void)!symlinkat(links[i][0], dev, links[i][1]);
    /* RUN --mount: cache dirs, binds of the context or a stage, tmpfs */
    for (size_t i = 0; i < rs->n_mounts; i++)
        if (attach(rs->mounts[i].mfd, rfd, rs->mounts[i].target, rs->mounts[i].target) < 0)
            return -1;
    if (chdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0) {
        dprintf(2, "e2b build: cannot pivot into the build root: %m\n");
        return -1;
    }
    if (chdir(rs->workdir) < 0) {
        dprintf(2, "e2b build: cannot enter WORKDIR %s: %m\n", rs->workdir);
        return -1;
    }
    /* /proc/sys and friends read-only, as in a sandbox */
    static const char *const ro[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"};
    for (size_t i = 0; i < ARRAY_SIZE(ro); i++)
        if (mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL) == 0)
            mount(NULL, ro[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    /* the filter first, while CAP_SYS_ADMIN lets it in without no_new_privs
     * (setuid programs in RUN steps keep working) */
    _cleanup_error_ struct e2b_error *e = NULL;
    if (e2b_seccomp_apply(&e) < 0) {
        dprintf(2, "e2b build: %s\n", e->msg);
        return -1;
    }
    uint64_t kept = 0;
    for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
        kept |= 1ULL << keep[i];
    for (int c = 0; c <= 63; c++)
        if (!(kept & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) {
            dprintf(2, "e2b build: cannot drop capability %d: %m\n", c);
            return -1;
        }
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2] = {{0}};
    data[0].effective = data[0].permitted = data[0].inheritable = (uint32_t)kept;
    data[1].effective = data[1].permitted = data[1].inheritable = (uint32_t)(kept >> 32);
    if (syscall(SYS_capset, &hdr, data) < 0) {
        dprintf(2, "e2b build: cannot set capabilities: %m\n");
        return -1;
    }
    return 0;
}

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* Exec the step's program, found on the step's own PATH (its ENV, inside
 * the root), or a `#!` heredoc through its interpreter as BuildKit does. */
static _noreturn_ void run_exec(const struct run_spec *rs)
{
    environ = rs->envp;
    if (rs->script) {
        int fd = memfd_create("heredoc", MFD_EXEC);
        if (fd < 0)
            fd = memfd_create("heredoc", 0);
        size_t n = strlen(rs->script), off = 0;
        while (fd >= 0 && off < n) {
            ssize_t w = write(fd, rs->script + off, n - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        /* no close-on-exec: the interpreter opens the script as /dev/fd/N */
        if (fd >= 0 && off == n)
            fexecve(fd, rs->argv, rs->envp);
        dprintf(2, "%s: cannot run the heredoc script: %m\n", rs->argv[0]);
        _exit(127);
    }
    execvp(rs->argv[0], rs->argv);
    dprintf(2, "%s: %m\n", rs->argv[0]);
    _exit(127);
}

static int do_run(struct build *b, const struct run_spec *rs, const char *what, struct e2b_error **err)
{
    const struct e2b_build_opts *o = b->o;
    uid_t uid = 0;
    gid_t gid = 0;
    if (rs->user && *rs->user) {
        _cleanup_free_ char *u = xstrdup(rs->user);
        char *g = strchr(u, ':');
        if (g)
            *g++ = '\0';
        if (e2b_root_lookup_uid(rs->root, u, &uid, &gid, err) < 0 ||
            (g && e2b_root_lookup_gid(rs->root, g, &gid, err) < 0))
            return -1;
    }
    if (mkdir_in_root(rs->root, rs->workdir, err) < 0)
        return -1;
    for (size_t i = 0; i < rs->n_mounts; i++)
        if ((rs->mounts[i].file ? touch_in_root : mkdir_in_root)(rs->root, rs->mounts[i].target, err) < 0)
            return -1;
    _cleanup_free_ char *cg = NULL;
    if (rs->limits && (o->memory_mb > 0 || o->cpu_count > 0)) {
        cg = xasprintf("build-%d-%zu", (int)getpid(), b->step);
        struct e2b_cgroup_limits lim = {
            .memory_bytes = (uint64_t)(o->memory_mb > 0 ? o->memory_mb : 0) << 20,
            .cpu_count = (unsigned)(o->cpu_count > 0 ? o->cpu_count : 0),
            .pids_max = 4096,
        };
        if (e2b_cgroup_create(cg, &lim, err) < 0)
            return e2b_error_wrap(err, "RUN cgroup");
    }
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        if (cg)
            e2b_cgroup_destroy(cg);
        return e2b_error_sys(err, errno, "pipe");
    }
    int gate[2];
    if (pipe2(gate, O_CLOEXEC) < 0) {
        close(pfd[0]);
        close(pfd[1]);
        if (cg)
            e2b_cgroup_destroy(cg);
        return e2b_error_sys(err, errno, "pipe");
    }
    pid_t builder = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        close(gate[0]);
        close(gate[1]);
        if (cg)
            e2b_cgroup_destroy(cg);
        return e2b_error_sys(err, e, "fork");
    }
    if (pid == 0) {
        /* a builder killed with -9 takes its step along: this process, then
         * (by its own PDEATHSIG) the step's pid 1 and its whole namespace,
         * and with them every mount the step had */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != builder)
            _exit(125);
        /* wait until the cgroup holds us */
        close(gate[1]);
        char c;
        while (read(gate[0], &c, 1) < 0 && errno == EINTR)
            ;
        int fl = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
        if (!rs->network_host)
            fl |= CLONE_NEWNET;
        if (unshare(fl) < 0)
            _exit(125);
        pid_t ch = fork();
        if (ch < 0)
            _exit(125);
        if (ch > 0) {
            int ws;
            while (waitpid(ch, &ws, 0) < 0 && errno == EINTR)
                ;
            _exit(WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
        }
        /* pid 1 of the step: when the builder's child goes (or is killed at
         * the deadline), the whole pid namespace goes with it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        if (!rs->network_host) {
            /* loopback up in the new network namespace */
            int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            struct ifreq ifr = {0};
            strcpy(ifr.ifr_name, "lo");
            if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
                ifr.ifr_flags |= IFF_UP;
                ioctl(s, SIOCSIFFLAGS, &ifr);
            }
            if (s >= 0)
                close(s);
        }
        sethostname("e2b-build", 9);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        if (enter_build_root(rs) < 0)
            _exit(125);
        if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
            _exit(125);
        run_exec(rs);
    }
    close(pfd[1]);
    close(gate[0]);
    int r = 0;
    if (cg && e2b_cgroup_add(cg, pid, err) < 0) {
        kill(pid, SIGKILL);
        r = e2b_error_wrap(err, "RUN cgroup");
    }
    close(gate[1]);
    char tail[2048];
    size_t tlen = 0;
    char buf[4096];
    ssize_t m;
    int64_t deadline = rs->timeout_s > 0 ? e2b_now_ms() + (int64_t)rs->timeout_s * 1000 : 0;
    bool timed_out = false;
    for (;;) {
        if (deadline && !timed_out) {
            int64_t left = deadline - e2b_now_ms();
            struct pollfd p = {.fd = pfd[0], .events = POLLIN};
            int pr = left > 0 ? poll(&p, 1, (int)(left > INT32_MAX ? INT32_MAX : left)) : 0;
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr == 0) {
                /* the step's pid 1 dies with our child (PDEATHSIG), and
                 * every process of its namespace with it: the pipe closes */
                kill(pid, SIGKILL);
                timed_out = true;
            }
        }
        m = read(pfd[0], buf, sizeof(buf));
        if (m == 0)
            break;
        if (m < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (o->output)
            o->output(o->data, buf, (size_t)m);
        for (ssize_t i = 0; i < m; i++) {
            if (tlen == sizeof(tail)) {
                memmove(tail, tail + 1024, 1024);
                tlen = 1024;
            }
            tail[tlen++] = buf[i];
        }
    }
    close(pfd[0]);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    bool oom = false;
    if (cg) {
        struct e2b_cgroup_stats cs = {0};
        if (e2b_cgroup_stats(cg, &cs, NULL) == 0)
            oom = cs.oom_killed;
        e2b_cgroup_destroy(cg);
    }
    int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    while (tlen && tail[tlen - 1] == '\n')
        tlen--;
    if (r == 0 && timed_out)
        r = e2b_error_set(err, E2B_ERR_TIMEOUT, "%s%sdid not finish within %d s (killed)%s%.*s", what ? what : "",
                          what ? ": " : "", rs->timeout_s, tlen ? "; last output:\n" : "", (int)tlen, tail);
    else if (r == 0 && code != 0)
        r = e2b_error_set(err, E2B_ERR_GENERIC, "%s%sexit code %d%s%s%.*s", what ? what : "", what ? ": " : "", code,
                          oom ? " (out of memory: --memory-mb)" : "", tlen ? "; last output:\n" : "",
                          (int)tlen, tail);
    return r;
}

/* ---- COPY / ADD ---- */

static int write_all(int fd, const void *p, size_t n, const char *what, struct e2b_error **err)
{
    const char *s = p;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return e2b_error_sys(err, w < 0 ? errno : ENOSPC, "write %s", what);
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Is the file (an O_PATH fd) a tar archive libarchive can read (plain or
 * compressed)? */
static bool is_archive(int path_fd)
{
    _cleanup_close_ int fd = e2b_tree_reopen(path_fd, O_RDONLY);
    if (fd < 0)
        return false;
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    bool ok = false;
    if (archive_read_open_fd(a, fd, 65536) == ARCHIVE_OK) {
        struct archive_entry *e;
        ok = archive_read_next_header(a, &e) == ARCHIVE_OK;
    }
    archive_read_free(a);
    return ok;
}

/* ADD of a local tar: unpacked into dest by a child chrooted into the
 * root, with libarchive's guards against '..', absolute names and writes
 * through symlinks. */
static int add_unpack(int path_fd, const char *name, const char *root, const char *dest_in, struct e2b_error **err)
{
    _cleanup_close_ int fd = e2b_tree_reopen(path_fd, O_RDONLY);
    if (fd < 0)
        return e2b_error_sys(err, errno, "ADD %s", name);
    if (mkdir_in_root(root, dest_in, err) < 0)
        return -1;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return e2b_error_sys(err, errno, "pipe");
    pid_t pid = fork();
    if (pid < 0)
        return e2b_error_sys(err, errno, "fork");
    if (pid == 0) {
        close(pfd[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (chroot(root) < 0 || chdir("/") < 0 || chdir(dest_in) < 0) {
            dprintf(pfd[1], "cannot enter %s: %m", dest_in);
            _exit(1);
        }
        struct archive *a = archive_read_new(), *w = archive_write_disk_new();
        archive_read_support_filter_all(a);
        archive_read_support_format_tar(a);
        archive_write_disk_set_options(w, ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                              ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_OWNER |
                                              ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                              ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_UNLINK);
        archive_write_disk_set_standard_lookup(w);
        if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
            dprintf(pfd[1], "%s", archive_error_string(a));
            _exit(1);
        }
        struct archive_entry *e;
        int rr;
        while ((rr = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
            if (archive_write_header(w, e) != ARCHIVE_OK) {
                dprintf(pfd[1], "entry '%s': %s", archive_entry_pathname(e), archive_error_string(w));
                _exit(1);
            }
            const void *buf;
            size_t len;
            int64_t off;
            int dr;
            while ((dr = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
                if (archive_write_data_block(w, buf, len, off) < 0) {
                    dprintf(pfd[1], "%s: %s", archive_entry_pathname(e), archive_error_string(w));
                    _exit(1);
                }
            if (dr != ARCHIVE_EOF) {
                dprintf(pfd[1], "%s", archive_error_string(a));
                _exit(1);
            }
            if (archive_write_finish_entry(w) != ARCHIVE_OK) {
                dprintf(pfd[1], "%s: %s", archive_entry_pathname(e), archive_error_string(w));
                _exit(1);
            }
        }
        if (rr != ARCHIVE_EOF) {
            dprintf(pfd[1], "%s", archive_error_string(a));
            _exit(1);
        }
        _exit(archive_write_close(w) == ARCHIVE_OK ? 0 : 1);
    }
    close(pfd[1]);
    char msg[1024];
    ssize_t n, t = 0;
    while (t < (ssize_t)sizeof(msg) - 1 && (n = read(pfd[0], msg + t, sizeof(msg) - 1 - (size_t)t)) > 0)
        t += n;
    msg[t] = '\0';
    close(pfd[0]);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(ws) || WEXITSTATUS(ws))
        return e2b_error_set(err, E2B_ERR_INVALID, "ADD %s: %s", name, *msg ? msg : "cannot unpack");
    return 0;
}
struct dl {
    int fd;
    struct e2b_sha256 h;
    struct e2b_error **err;
};

static int dl_data(const void *data, size_t len, void *ud)
{
    struct dl *d = ud;
    e2b_sha256_update(&d->h, data, len);
    return write_all(d->fd, data, len, "download", NULL);
}

/* ADD https://...: download into dir/<name>, checked against --checksum. */
static int add_fetch(const char *url, const char *checksum, const char *path, char out_digest[72],
                     struct e2b_error **err)
{
    struct dl d = {.err = err};
    d.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (d.fd < 0)
        return e2b_error_sys(err, errno, "%s", path);
    e2b_sha256_init(&d.h);
    struct e2b_http_req req = {
        .base = url, .path = "", .on_data = dl_data, .ud = &d, .follow_redirects = true,
        .timeout_ms = 600000, .retries = 2,
    };
    struct e2b_http_resp resp = {0};
    int r = e2b_http_request(&req, &resp, err);
    e2b_http_resp_release(&resp);
    if (close(d.fd) < 0 && r == 0)
        r = e2b_error_sys(err, errno, "write %s", path);
    if (r < 0)
        return e2b_error_wrap(err, "ADD %s", url);
    char hex[65];
    kh_final(&d.h, hex);
    snprintf(out_digest, 72, "sha256:%s", hex);
    if (checksum && strcmp(checksum, out_digest))
        return e2b_error_set(err, E2B_ERR_INVALID, "ADD %s: checksum mismatch: expected %s, got %s", url,
                             checksum, out_digest);
    return 0;
}

static bool is_url(const char *s)
{
    return e2b_str_has_prefix(s, "http://") || e2b_str_has_prefix(s, "https://");
}

/* ---- steps ---- */

static const char *instr_text(const struct e2b_df_instr *in, char *buf, size_t n)
{
    const char *t = in->original ? in->original : e2b_df_kind_name(in->kind);
    size_t l = strcspn(t, "\n");
    if (l > n - 4)
        l = n - 4;
    snprintf(buf, n, "%.*s%s", (int)l, t, t[l] ? "..." : "");
    return buf;
}

static void key_instr(struct e2b_sha256 *c, const struct e2b_df_instr *in)
{
    json_t *j = e2b_dockerfile_instr_to_json(in);
    json_object_del(j, "line");
    json_object_del(j, "end_line");
    json_object_del(j, "original");
    json_object_del(j, "from_stage");
    kh_json(c, j);
    json_decref(j);
}

static char **run_env(const struct e2b_df_instr *in)
{
    char **v = NULL;
    bool path = false;
    for (char **e = in->env; e && *e; e++) {
        v = e2b_strv_push(v, *e);
        path = path || e2b_str_has_prefix(*e, "PATH=");
    }
    if (!path)
        v = e2b_strv_push(v, "PATH=" DEFAULT_PATH);
    return v;
}

/* RUN's argv: exec form as is; shell form through SHELL (default /bin/sh -c)
 * with heredoc bodies appended the way a shell reads them; `RUN <<EOF`
 * alone runs the body as the script, and a body starting with `#!` is the
 * program itself (*script), run through its interpreter like BuildKit. */
static char **run_argv(const struct stage *s, const struct e2b_df_instr *in, char **script)
{
    char **v = NULL;
    *script = NULL;
    if (in->json) {
        for (size_t i = 0; i < in->n_args; i++)
            v = e2b_strv_push(v, in->args[i]);
        return v;
    }
    const char *cmd = in->n_args ? in->args[0] : "";
    const char *p = cmd;
    while (*p == ' ' || *p == '\t')
        p++;
    bool alone = in->n_heredocs == 1 && e2b_str_has_prefix(p, "<<") && !strchr(p, ' ');
    if (alone && e2b_str_has_prefix(in->heredocs[0].content, "#!")) {
        *script = xstrdup(in->heredocs[0].content);
        return e2b_strv_push(NULL, in->heredocs[0].name);
    }
    if (s->shell && json_array_size(s->shell)) {
        size_t i;
        json_t *x;
        json_array_foreach(s->shell, i, x) v = e2b_strv_push(v, json_string_value(x) ?: "");
    } else {
        v = e2b_strv_push(v, "/bin/sh");
        v = e2b_strv_push(v, "-c");
    }
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    if (alone) {
        strbuf_addstr(&sb, in->heredocs[0].content);
    } else {
        strbuf_addstr(&sb, cmd);
        for (size_t i = 0; i < in->n_heredocs; i++) {
            strbuf_addch(&sb, '\n');
            strbuf_addstr(&sb, in->heredocs[i].content);
            strbuf_addstr(&sb, in->heredocs[i].name);
        }
    }
    char *c = strbuf_detach(&sb, NULL);
    v = e2b_strv_push(v, c);
    free(c);
    return v;
}

static int parse_chown(const char *root, const char *spec, uid_t *uid, gid_t *gid, struct e2b_error **err)
{
    _cleanup_free_ char *u = xstrdup(spec);
    char *g = strchr(u, ':');
    if (g)
        *g++ = '\0';
    if (e2b_root_lookup_uid(root, u, uid, gid, err) < 0 || (g && e2b_root_lookup_gid(root, g, gid, err) < 0))
        return -1;
    return 0;
}

struct copy_src {
    int fd;           /* O_PATH, resolved inside its tree */
    char *rel;        /* context-relative name for .dockerignore, "." for the top */
    char *name;       /* name at the destination: the base name, or the kept path (--parents) */
    bool ignore;      /* honour .dockerignore */
    bool root_owned;  /* context, heredoc or download: 0:0 unless --chown */
    bool unpack;      /* ADD of a local archive */
};

static void src_push(struct copy_src **v, size_t *n, struct copy_src s)
{
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = s;
}

static void copy_srcs_free(struct copy_src *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        close(v[i].fd);
        free(v[i].rel);
        free(v[i].name);
    }
    free(v);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* --exclude=PATTERN (repeatable) as an ignore list; false when none. */
static bool excludes_load(const struct e2b_df_instr *in, struct e2b_ignore *ex)
{
    memset(ex, 0, sizeof(*ex));
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    for (size_t i = 0; i < in->n_flags; i++)
        if (!strcmp(in->flags[i].name, "exclude") && in->flags[i].value) {
            strbuf_addstr(&sb, in->flags[i].value);
            strbuf_addch(&sb, '\n');
        }
    e2b_ignore_parse(ex, sb.buf ? sb.buf : "");
    strbuf_release(&sb);
    return ex->n > 0;
}

/* A file the builder wrote (heredoc, download) as a source. */
static int src_file(struct copy_src **v, size_t *n, const char *path, const char *name, struct e2b_error **err)
{
    int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return e2b_error_sys(err, errno, "%s", path);
    src_push(v, n, (struct copy_src){.fd = fd, .rel = xstrdup("."), .name = xstrdup(name), .root_owned = true});
    return 0;
}

/* Sources of COPY/ADD: context files (wildcards in the last component),
 * another stage or image, heredocs, URLs (downloaded into tmpdir). Context
 * and stage paths are resolved inside their tree (build-copy.h): a symlink
 * there cannot lead to the host. */
static int copy_sources(struct build *b, struct stage *s, const struct e2b_df_instr *in, const char *tmpdir,
                        struct copy_src **ret, size_t *ret_n, struct e2b_sha256 *kc, struct e2b_error **err)
{
    bool add = in->kind == E2B_DF_ADD;
    const char *what = add ? "ADD" : "COPY";
    const char *from = e2b_df_flag(in, "from", NULL);
    const char *checksum = e2b_df_flag(in, "checksum", NULL);
    bool parents = false, unpack_flag = false, git_dir = false;
    const char *unpack_v = e2b_df_flag(in, "unpack", &unpack_flag);
    (void)e2b_df_flag(in, "parents", &parents);
    (void)e2b_df_flag(in, "keep-git-dir", &git_dir);
    const char *pv = e2b_df_flag(in, "parents", NULL);
    if (pv && strcmp(pv, "true") && strcmp(pv, "false"))
        return e2b_error_set(err, E2B_ERR_INVALID, "%s --parents=%s: expected true or false", what, pv);
    parents = parents && (!pv || !strcmp(pv, "true"));
    if (unpack_v && strcmp(unpack_v, "true") && strcmp(unpack_v, "false"))
        return e2b_error_set(err, E2B_ERR_INVALID, "ADD --unpack=%s: expected true or false", unpack_v);
    bool unpack = !unpack_flag || !unpack_v || !strcmp(unpack_v, "true");
    if (git_dir)
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                             "ADD --keep-git-dir: git sources in ADD are not supported by this builder "
                             "(use a git build context)");
    struct e2b_ignore ex;
    bool has_ex = excludes_load(in, &ex);
    const char *base = NULL;
    _cleanup_close_ int base_fd = -1;
    int r = 0;
    struct copy_src *v = NULL;
    size_t n = 0;
    if (from) {
        struct stage *fs = NULL;
        if (in->from_stage >= 0)
            fs = &b->stages[in->from_stage];
        if (fs) {
            if (!fs->built) {
                r = e2b_error_set(err, E2B_ERR_INVALID, "%s --from=%s: stage not built", what, from);
                goto out;
            }
            if ((r = stage_view(b, fs, err)) < 0)
                goto out;
            base = fs->view;
            kh_str(kc, fs->key);
        } else {
            struct e2b_base_image *img = image_get(b, from, NULL, err);
            if (!img || e2b_base_image_root(img, &b->bo, err) < 0) {
                r = -1;
                goto out;
            }
            base = img->root;
            kh_str(kc, img->id);
        }
        base_fd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (base_fd < 0) {
            r = e2b_error_sys(err, errno, "%s --from=%s", what, from);
            goto out;
        }
    }
    int tree = base ? base_fd : b->ctx_fd;
    for (size_t i = 0; r == 0 && i + 1 < in->n_args; i++) {
        const char *a = in->args[i];
        if (e2b_str_has_prefix(a, "<<")) {
            _cleanup_free_ char *nm = xstrdup(a + 2 + (a[2] == '-'));
            size_t nl = strlen(nm);
            if (nl >= 2 && (nm[0] == '"' || nm[0] == '\'') && nm[nl - 1] == nm[0]) {
                memmove(nm, nm + 1, nl - 2);
                nm[nl - 2] = '\0';
            }
            const struct e2b_df_heredoc *h = NULL;
            for (size_t k = 0; !h && k < in->n_heredocs; k++)
                if (!strcmp(in->heredocs[k].name, nm))
                    h = &in->heredocs[k];
            if (!h) {
                r = e2b_error_set(err, E2B_ERR_INVALID, "%s %s: no such heredoc", what, a);
                break;
            }
            _cleanup_free_ char *p = xasprintf("%s/heredoc-%zu", tmpdir, i);
            if (e2b_write_file_atomic(p, h->content, strlen(h->content), 0644, err) < 0 ||
                src_file(&v, &n, p, h->name, err) < 0) {
                r = -1;
                break;
            }
            kh_str(kc, h->content);
            continue;
        }
        if (add && is_url(a) && !from) {
            const char *q = strrchr(a, '/');
            _cleanup_free_ char *nm = xstrndup(q + 1, strcspn(q + 1, "?#"));
            if (!*nm) {
                free(nm);
                nm = xstrdup("download");
            }
            _cleanup_free_ char *p = xasprintf("%s/url-%zu", tmpdir, i);
            char dg[72];
            progress(b->o, "  fetching %s", a);
            if (add_fetch(a, checksum, p, dg, err) < 0 || src_file(&v, &n, p, nm, err) < 0) {
                r = -1;
                break;
            }
            kh_str(kc, dg);
            continue;
        }
        _cleanup_free_ char *rel = e2b_context_clean(a, err);
        if (!rel) {
            r = e2b_error_wrap(err, "%s", what);
            break;
        }
        /* --parents keeps the source's path below a `/./` pivot (or all of it) */
        _cleanup_free_ char *pivot = NULL;
        const char *pp = strstr(a, "/./");
        if (parents && pp) {
            _cleanup_free_ char *pre = xstrndup(a, (size_t)(pp - a));
            pivot = e2b_context_clean(pre, NULL);
        }
        /* wildcards in the last component */
        const char *last = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
        char **matches = NULL;
        if (strpbrk(last, "*?[")) {
            _cleanup_free_ char *dirrel = last > rel ? xstrndup(rel, (size_t)(last - rel - 1)) : xstrdup(".");
            _cleanup_close_ int dfd = e2b_tree_open(tree, dirrel, O_RDONLY | O_DIRECTORY);
            DIR *d = dfd >= 0 ? fdopendir(dup(dfd)) : NULL;
            struct dirent *de;
            while (d && (de = readdir(d))) {
                if ((de->d_name[0] == '.' && last[0] != '.') || !strcmp(de->d_name, ".") ||
                    !strcmp(de->d_name, "..") || !e2b_glob_match(last, de->d_name))
                    continue;
                char *m = strcmp(dirrel, ".") ? e2b_path_join(dirrel, de->d_name) : xstrdup(de->d_name);
                if (base || !e2b_ignore_match(&b->ig, m) || e2b_ignore_may_include_below(&b->ig, m))
                    matches = e2b_strv_push(matches, m);
                free(m);
            }
            if (d)
                closedir(d);
            if (!matches) {
                r = e2b_error_set(err, E2B_ERR_NOT_FOUND, "%s %s: no source files match", what, a);
                break;
            }
            /* readdir order is the file system's: make it stable */
            qsort(matches, e2b_strv_len(matches), sizeof(char *), cmp_strp);
        } else {
            matches = e2b_strv_push(NULL, rel);
        }
        for (char **m = matches; r == 0 && *m; m++) {
            const char *bn = strrchr(*m, '/') ? strrchr(*m, '/') + 1 : *m;
            if (has_ex && (e2b_ignore_match(&ex, *m) || e2b_ignore_match(&ex, bn)))
                continue;
            int fd = e2b_tree_open(tree, *m, O_PATH);
            struct stat st;
            /* excluded by .dockerignore: not there, unless a directory an
             * exception re-includes something of */
            if (fd >= 0 && !base && strcmp(*m, ".") && e2b_ignore_match(&b->ig, *m) &&
                (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode) || !e2b_ignore_may_include_below(&b->ig, *m))) {
                close(fd);
                fd = -1;
                errno = ENOENT;
            }
            if (fd < 0) {
                r = errno == ENOENT || errno == ENOTDIR
                        ? e2b_error_set(err, E2B_ERR_NOT_FOUND, "%s %s: not %s", what, a,
                                        base ? "in that stage or image" : "in the build context")
                        : e2b_error_sys(err, errno, "%s %s", what, a);
                break;
            }
            if (fstat(fd, &st) < 0) {
                r = e2b_error_sys(err, errno, "%s %s", what, a);
                close(fd);
                break;
            }
            const char *keep = bn;
            if (parents) {
                keep = *m;
                size_t pl = pivot ? strlen(pivot) : 0;
                if (pivot && strcmp(pivot, ".") && !strncmp(*m, pivot, pl) && (*m)[pl] == '/')
                    keep = *m + pl + 1;
            }
            /* another stage's or image's content is named by its key already */
            if (base)
                kh_str(kc, *m);
            else if (e2b_copy_hash(kc, fd, *m, &b->ig, has_ex ? &ex : NULL, err) < 0) {
                close(fd);
                r = -1;
                break;
            }
            src_push(&v, &n, (struct copy_src){
                .fd = fd, .rel = xstrdup(*m), .name = xstrdup(keep), .ignore = !base, .root_owned = !base,
                .unpack = add && unpack && !base && S_ISREG(st.st_mode) && is_archive(fd),
            });
        }
        e2b_strv_free(matches);
    }
out:
    e2b_ignore_free(&ex);
    if (r < 0) {
        copy_srcs_free(v, n);
        return -1;
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

static int do_copy(struct build *b, struct stage *s, const struct e2b_df_instr *in, const char *root,
                   struct copy_src *srcs, size_t n, struct e2b_error **err)
{
    const char *what = in->kind == E2B_DF_ADD ? "ADD" : "COPY";
    struct e2b_copy_opts co = {0};
    struct e2b_chmod chm = {0};
    const char *ch = e2b_df_flag(in, "chown", NULL), *cm = e2b_df_flag(in, "chmod", NULL);
    bool parents = false;
    const char *pv = e2b_df_flag(in, "parents", &parents);
    parents = parents && (!pv || !strcmp(pv, "true"));
    if (ch) {
        if (parse_chown(root, ch, &co.uid, &co.gid, err) < 0)
            return e2b_error_wrap(err, "%s --chown", what);
        co.own = true;
    }
    if (cm && *cm) {
        if (e2b_chmod_parse(cm, &chm, err) < 0)
            return e2b_error_wrap(err, "%s", what);
        co.chmod = &chm;
    }
    struct e2b_ignore ex;
    if (excludes_load(in, &ex))
        co.exclude = &ex;
    _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int r = rfd < 0 ? e2b_error_sys(err, errno, "%s", root) : 0;
    const char *dest = in->args[in->n_args - 1];
    _cleanup_free_ char *abs0 = dest[0] == '/' ? xstrdup(dest) : e2b_path_join(s->workdir, dest);
    _cleanup_free_ char *clean = r == 0 ? e2b_context_clean(abs0, err) : NULL;
    if (r == 0 && !clean)
        r = -1;
    _cleanup_free_ char *abs = clean ? xasprintf("/%s", strcmp(clean, ".") ? clean : "") : NULL;
    bool dir_dest = e2b_str_has_suffix(dest, "/") || n > 1 || parents;
    for (size_t i = 0; r == 0 && i < n; i++) {
        struct stat st;
        if (fstat(srcs[i].fd, &st) < 0) {
            r = e2b_error_sys(err, errno, "%s %s", what, srcs[i].rel);
            break;
        }
        if (srcs[i].unpack) {
            r = add_unpack(srcs[i].fd, srcs[i].rel, root, abs, err);
            continue;
        }
        bool into = parents || (dir_dest && !S_ISDIR(st.st_mode));
        if (!into && !S_ISDIR(st.st_mode)) {
            /* an existing directory at dest (a symlink to one, resolved in
             * the image) receives the file */
            _cleanup_close_ int dfd = e2b_tree_open(rfd, abs, O_PATH | O_DIRECTORY);
            into = dfd >= 0;
        }
        _cleanup_free_ char *dst = into ? e2b_path_join(abs, srcs[i].name) : xstrdup(abs);
        co.ignore = srcs[i].ignore ? &b->ig : NULL;
        co.root_owned = srcs[i].root_owned;
        r = e2b_copy_tree(&co, srcs[i].fd, srcs[i].rel, rfd, dst, err);
    }
    e2b_chmod_free(&chm);
    e2b_ignore_free(&ex);
    return r;
}

/* A detached bind mount of src_fd, read-only or not. */
static int bind_detached(int src_fd, bool ro, struct e2b_error **err)
{
    int m = open_tree(src_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    if (m < 0)
        return e2b_error_sys(err, errno, "RUN --mount: bind");
    struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
    if (!ro)
        a.attr_set &= ~(uint64_t)MOUNT_ATTR_RDONLY;
    if (mount_setattr(m, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) < 0) {
        int e = errno;
        close(m);
        return e2b_error_sys(err, e, "RUN --mount: bind attributes");
    }
    return m;
}

/* A read-write bind whose writes are thrown away (BuildKit's rw): an
 * overlay of the source with an upper in the step's scratch dir. */
static int bind_scratch(int src_fd, const char *scratch, struct e2b_error **err)
{
    _cleanup_free_ char *up = e2b_path_join(scratch, "upper"), *wk = e2b_path_join(scratch, "work");
    if (e2b_mkdir_p(up, 0755, err) < 0 || e2b_mkdir_p(wk, 0700, err) < 0)
        return -1;
    char lower[64];
    snprintf(lower, sizeof(lower), "/proc/self/fd/%d", src_fd);
    int fs = fsopen("overlay", FSOPEN_CLOEXEC);
    if (fs < 0)
        return e2b_error_sys(err, errno, "RUN --mount: overlayfs");
    int m = -1;
    if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", lower, 0) == 0 &&
        fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", up, 0) == 0 &&
        fsconfig(fs, FSCONFIG_SET_STRING, "workdir", wk, 0) == 0 &&
        fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
        m = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    int e = errno;
    close(fs);
    if (m < 0)
        return e2b_error_sys(err, e, "RUN --mount: read-write bind");
    return m;
}

static void run_mount_push(struct run_spec *rs, int mfd, const char *target, bool file, int lock_fd)
{
    rs->mounts = xrealloc(rs->mounts, (rs->n_mounts + 1) * sizeof(*rs->mounts));
    rs->mounts[rs->n_mounts++] = (struct run_mount){.mfd = mfd, .target = xstrdup(target), .file = file,
                                                    .lock_fd = lock_fd};
}

/* RUN --mount: cache dirs kept per template, binds from the context or a
 * stage (read-only, or read-write with the writes discarded), tmpfs. Bind
 * sources are resolved inside their tree. */
static int run_mounts(struct build *b, const struct e2b_df_instr *in, struct run_spec *rs, const char *tmpdir,
                      struct e2b_sha256 *kc, struct e2b_error **err)
{
    for (size_t i = 0; i < in->n_mounts; i++) {
        const struct e2b_df_mount *m = &in->mounts[i];
        if (!m->target)
            return e2b_error_set(err, E2B_ERR_INVALID, "RUN --mount: no target");
        const char *t = m->target;
        if (m->type == E2B_DF_MOUNT_TMPFS) {
            char size[32];
            snprintf(size, sizeof(size), "%llu", m->size);
            const char *kv[] = {"mode", "1777", m->size ? "size" : NULL, size, NULL};
            int mfd = fs_new("tmpfs", kv, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
            if (mfd < 0)
                return e2b_error_sys(err, errno, "RUN --mount=type=tmpfs");
            run_mount_push(rs, mfd, t, false, -1);
            continue;
        }
        if (m->type == E2B_DF_MOUNT_CACHE) {
            /* a persistent directory per template and cache id */
            const char *id = m->id ? m->id : t;
            struct e2b_sha256 c;
            e2b_sha256_init(&c);
            kh_str(&c, id);
            char h[65];
            kh_final(&c, h);
            _cleanup_free_ char *src = xasprintf("%s/mounts/%s/%.32s", b->cache, b->o->name ? b->o->name : "_", h);
            if (e2b_mkdir_p(src, 0755, err) < 0)
                return -1;
            if (m->uid >= 0 || m->gid >= 0)
                if (chown(src, m->uid >= 0 ? (uid_t)m->uid : 0, m->gid >= 0 ? (gid_t)m->gid : 0) < 0)
                    return e2b_error_sys(err, errno, "chown cache mount");
            if (m->mode >= 0)
                chmod(src, (mode_t)m->mode);
            /* sharing: shared users hold it shared, locked waits for them to
             * leave, private takes a fresh directory while it is in use */
            int lk = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (lk < 0)
                return e2b_error_sys(err, errno, "cache mount %s", t);
            _cleanup_free_ char *priv = NULL;
            if (m->sharing == E2B_DF_SHARING_LOCKED)
                flock(lk, LOCK_EX);
            else if (m->sharing == E2B_DF_SHARING_PRIVATE && flock(lk, LOCK_EX | LOCK_NB) < 0) {
                close(lk);
                lk = -1;
                priv = xasprintf("%s/cache-%zu", tmpdir, i);
                if (e2b_mkdir_p(priv, 0755, err) < 0)
                    return -1;
            } else if (m->sharing == E2B_DF_SHARING_SHARED)
                flock(lk, LOCK_SH);
            _cleanup_close_ int sfd = open(priv ? priv : src, O_PATH | O_DIRECTORY | O_CLOEXEC);
            int mfd = sfd >= 0 ? bind_detached(sfd, m->readonly, err) : e2b_error_sys(err, errno, "%s", src);
            if (mfd < 0) {
                if (lk >= 0)
                    close(lk);
                return -1;
            }
            run_mount_push(rs, mfd, t, false, lk);
            continue;
        }
        if (m->type != E2B_DF_MOUNT_BIND)
            return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "RUN --mount=type=%s is not supported by this builder",
                                 m->type == E2B_DF_MOUNT_SECRET ? "secret" : "ssh");
        int tree = b->ctx_fd;
        _cleanup_close_ int base_fd = -1;
        if (m->from_stage >= 0 || m->from) {
            const char *base;
            if (m->from_stage >= 0) {
                struct stage *fs = &b->stages[m->from_stage];
                if (stage_view(b, fs, err) < 0)
                    return -1;
                base = fs->view;
                kh_str(kc, fs->key);
            } else {
                struct e2b_base_image *img = image_get(b, m->from, NULL, err);
                if (!img || e2b_base_image_root(img, &b->bo, err) < 0)
                    return -1;
                base = img->root;
                kh_str(kc, img->id);
            }
            base_fd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (base_fd < 0)
                return e2b_error_sys(err, errno, "RUN --mount from %s", m->from);
            tree = base_fd;
        }
        _cleanup_free_ char *rel = e2b_context_clean(m->source ? m->source : ".", err);
        if (!rel)
            return e2b_error_wrap(err, "RUN --mount source");
        if (tree == b->ctx_fd && strcmp(rel, ".") && e2b_ignore_match(&b->ig, rel))
            return e2b_error_set(err, E2B_ERR_NOT_FOUND, "RUN --mount source %s: not in the build context", rel);
        _cleanup_close_ int sfd = e2b_tree_open(tree, rel, O_PATH);
        if (sfd < 0)
            return e2b_error_sys(err, errno, "RUN --mount source %s", rel);
        struct stat st;
        if (fstat(sfd, &st) < 0)
            return e2b_error_sys(err, errno, "RUN --mount source %s", rel);
        if (tree == b->ctx_fd && e2b_copy_hash(kc, sfd, rel, &b->ig, NULL, err) < 0)
            return -1;
        if (tree == b->ctx_fd && b->ig.n && S_ISDIR(st.st_mode)) {
            /* the step sees the context as BuildKit sends it: without what
             * .dockerignore leaves out (a filtered copy, bound instead) */
            _cleanup_free_ char *fc = xasprintf("%s/ctx-%zu", tmpdir, i);
            _cleanup_close_ int tfd = -1;
            struct e2b_copy_opts co = {.ignore = &b->ig};
            if (e2b_mkdir_p(fc, 0755, err) < 0)
                return -1;
            if ((tfd = open(fc, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
                return e2b_error_sys(err, errno, "%s", fc);
            if (e2b_copy_tree(&co, sfd, rel, tfd, "/", err) < 0)
                return e2b_error_wrap(err, "RUN --mount source %s", rel);
            close(sfd);
            sfd = TAKE_FD(tfd);
        }
        int mfd;
        if (m->readonly) {
            mfd = bind_detached(sfd, true, err);
        } else if (S_ISDIR(st.st_mode)) {
            _cleanup_free_ char *scratch = xasprintf("%s/bind-%zu", tmpdir, i);
            mfd = bind_scratch(sfd, scratch, err);
        } else {
            /* one file, read-write: a copy of it takes the writes */
            _cleanup_free_ char *scratch = xasprintf("%s/bind-%zu", tmpdir, i);
            _cleanup_close_ int tfd = -1;
            struct e2b_copy_opts co = {0};
            if (e2b_mkdir_p(scratch, 0755, err) < 0 ||
                (tfd = open(scratch, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 ||
                e2b_copy_tree(&co, sfd, rel, tfd, "/f", err) < 0)
                return e2b_error_wrap(err, "RUN --mount source %s", rel);
            _cleanup_close_ int cfd = openat(tfd, "f", O_PATH | O_NOFOLLOW | O_CLOEXEC);
            mfd = cfd >= 0 ? bind_detached(cfd, false, err) : e2b_error_sys(err, errno, "%s", scratch);
        }
        if (mfd < 0)
            return -1;
        run_mount_push(rs, mfd, t, !S_ISDIR(st.st_mode), -1);
    }
    return 0;
}

static void run_spec_free(struct run_spec *rs)
{
    e2b_strv_free(rs->argv);
    e2b_strv_free(rs->envp);
    free(rs->script);
    for (size_t i = 0; i < rs->n_mounts; i++) {
        close(rs->mounts[i].mfd);
        if (rs->mounts[i].lock_fd >= 0)
            close(rs->mounts[i].lock_fd);
        free(rs->mounts[i].target);
    }
    free(rs->mounts);
}

/* One file-changing step: key, cache lookup, else an overlay with a fresh
 * upper to run it in. */
static int fs_step(struct build *b, struct stage *s, const struct e2b_df_instr *in, const char *text,
                   struct e2b_error **err)
{
    struct e2b_sha256 kc;
    e2b_sha256_init(&kc);
    kh_str(&kc, s->key);
    key_instr(&kc, in);
    kh_str(&kc, s->workdir);
    kh_str(&kc, s->user);
    _cleanup_free_ char *tmpdir = xasprintf("%s/t%zu", b->work, b->step);
    if (mkdir(tmpdir, 0700) < 0 && errno != EEXIST)
        return e2b_error_sys(err, errno, "mkdir %s", tmpdir);
    struct copy_src *srcs = NULL;
    size_t nsrc = 0;
    struct run_spec rs = {0};
    char *layer = NULL, *mnt = NULL;
    int r = 0;
    bool net_host = b->o->network_host;
    if (in->kind == E2B_DF_RUN) {
        const char *net = e2b_df_flag(in, "network", NULL);
        if (net && !strcmp(net, "host"))
            net_host = true;
        else if (net && (!strcmp(net, "none") || !strcmp(net, "default")))
            net_host = !strcmp(net, "default") && b->o->network_host;
        else if (net)
            r = e2b_error_set(err, E2B_ERR_INVALID, "RUN --network=%s: expected none, host or default", net);
        const char *sec = e2b_df_flag(in, "security", NULL);
        if (r == 0 && sec && !strcmp(sec, "insecure"))
            r = e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                              "RUN --security=insecure is not supported by this builder (steps always run in "
                              "the build sandbox)");
        rs.argv = run_argv(s, in, &rs.script);
        rs.envp = run_env(in);
        char **e;
        for (e = rs.argv; *e; e++)
            kh_str(&kc, *e);
        for (e = rs.envp; *e; e++)
            kh_str(&kc, *e);
        kh_str(&kc, rs.script ? rs.script : "");
        kh_str(&kc, net_host ? "net:host" : "net:none");
        if (r == 0)
            r = run_mounts(b, in, &rs, tmpdir, &kc, err);
    } else if (in->kind == E2B_DF_COPY || in->kind == E2B_DF_ADD) {
        r = copy_sources(b, s, in, tmpdir, &srcs, &nsrc, &kc, err);
    }
    char key[65];
    kh_final(&kc, key);
    _cleanup_free_ char *hit = r == 0 ? cache_lookup(b, key) : NULL;
    if (r == 0 && hit) {
        progress(b->o, "[%zu/%zu] %s (cached)", b->step, b->n_steps, text);
        stage_push(s, hit);
        memcpy(s->key, key, sizeof(key));
        b->cached_steps++;
        goto out;
    }
    if (r == 0)
        progress(b->o, "[%zu/%zu] %s", b->step, b->n_steps, text);
    layer = r == 0 ? layer_new(b, err) : NULL;
    if (r == 0 && !layer)
        r = -1;
    mnt = xasprintf("%s/m", b->work);
    bool mounted = false;
    if (r == 0) {
        _cleanup_free_ char *up = e2b_path_join(layer, "upper"), *wk = e2b_path_join(layer, "work");
        if (mkdir(mnt, 0755) < 0 && errno != EEXIST)
            r = e2b_error_sys(err, errno, "mkdir %s", mnt);
        else if (ovl_mount(s->layers, s->n_layers, up, wk, mnt, err) < 0)
            r = -1;
        else
            mounted = true;
    }
    if (r == 0) {
        b->run_steps++;
        if (in->kind == E2B_DF_RUN) {
            rs.root = mnt;
            rs.workdir = s->workdir;
            rs.user = s->user;
            rs.network_host = net_host;
            rs.limits = true;
            r = do_run(b, &rs, NULL, err);
        } else if (in->kind == E2B_DF_WORKDIR) {
            r = mkdir_in_root(mnt, s->workdir, err);
        } else {
            r = do_copy(b, s, in, mnt, srcs, nsrc, err);
        }
    }
    if (mounted && umount2(mnt, 0) < 0 && umount2(mnt, MNT_DETACH) < 0 && r == 0)
        r = e2b_error_sys(err, errno, "umount %s", mnt);
    if (r == 0) {
        char *up = layer_commit(b, layer, key, err);
        if (!up) {
            r = -1;
        } else {
            stage_push(s, up);
            free(up);
            memcpy(s->key, key, sizeof(key));
        }
    } else if (layer) {
        e2b_rm_rf(layer, NULL);
    }
out:
    free(layer);
    free(mnt);
    copy_srcs_free(srcs, nsrc);
    run_spec_free(&rs);
    e2b_rm_rf(tmpdir, NULL);
    return r;
}

static json_t *cmd_json(const struct stage *s, const struct e2b_df_instr *in)
{
    if (in->json)
        return strv_json(in->args);
    json_t *a = s->shell && json_array_size(s->shell) ? json_deep_copy(s->shell) : json_pack("[ss]", "/bin/sh", "-c");
    json_array_append_new(a, json_string(in->n_args ? in->args[0] : ""));
    return a;
}

static int stage_build(struct build *b, struct stage *s, struct e2b_error **err)
{
    const struct e2b_df_stage *sg = s->sg;
    s->env = json_object();
    s->labels = json_object();
    s->ports = json_object();
    s->volumes = json_object();
    s->workdir = xstrdup("/");
    s->user = xstrdup("");
    char text[160];
    b->step++;
    progress(b->o, "[%zu/%zu] %s", b->step, b->n_steps, instr_text(&sg->instrs[0], text, sizeof(text)));
    struct e2b_sha256 kc;
    e2b_sha256_init(&kc);
    if (sg->base_stage >= 0) {
        struct stage *p = &b->stages[sg->base_stage];
        stage_inherit(s, p);
        kh_str(&kc, p->key);
    } else if (!strcmp(sg->base, "scratch")) {
        stage_push(s, b->empty);
        kh_str(&kc, "scratch");
    } else {
        struct e2b_base_image *img = image_get(b, sg->base, sg->platform, err);
        if (!img || e2b_base_image_root(img, &b->bo, err) < 0)
            return -1;
        stage_push(s, img->root);
        stage_seed_image(s, &img->img.config);
        s->image = img;
        kh_str(&kc, img->id);
    }
    kh_final(&kc, s->key);

    for (size_t i = 1; i < sg->n_instrs; i++) {
        const struct e2b_df_instr *in = &sg->instrs[i];
        b->step++;
        instr_text(in, text, sizeof(text));
        int r = 0;
        bool fs = false;
        switch (in->kind) {
        case E2B_DF_RUN:
        case E2B_DF_COPY:
        case E2B_DF_ADD:
            fs = true;
            break;
        case E2B_DF_WORKDIR: {
            const char *w = in->n_args ? in->args[0] : "/";
            _cleanup_free_ char *nw = w[0] == '/' ? xstrdup(w) : e2b_path_join(s->workdir, w);
            _cleanup_free_ char *c = e2b_context_clean(nw, err);
            if (!c) {
                r = -1;
                break;
            }
            free(s->workdir);
            s->workdir = xasprintf("/%s", strcmp(c, ".") ? c : "");
            s->workdir_set = true;
            fs = true;
            break;
        }
        case E2B_DF_ENV:
            for (size_t k = 0; k < in->n_kvs; k++)
                json_object_set_new(s->env, in->kvs[k].key, json_string(in->kvs[k].value ?: ""));
            break;
        case E2B_DF_LABEL:
            for (size_t k = 0; k < in->n_kvs; k++)
                json_object_set_new(s->labels, in->kvs[k].key, json_string(in->kvs[k].value ?: ""));
            break;
        case E2B_DF_USER:
            free(s->user);
            s->user = xstrdup(in->n_args ? in->args[0] : "");
            break;
        case E2B_DF_CMD:
            json_decref(s->cmd);
            s->cmd = cmd_json(s, in);
            s->cmd_set = true;
            break;
        case E2B_DF_ENTRYPOINT:
            json_decref(s->entrypoint);
            s->entrypoint = cmd_json(s, in);
            /* Docker: a new ENTRYPOINT resets an inherited CMD */
            if (!s->cmd_set) {
                json_decref(s->cmd);
                s->cmd = NULL;
            }
            break;
        case E2B_DF_SHELL:
            json_decref(s->shell);
            s->shell = strv_json(in->args);
            break;
        case E2B_DF_EXPOSE:
            for (size_t k = 0; k < in->n_args; k++) {
                char *p = strchr(in->args[k], '/') ? xstrdup(in->args[k]) : xasprintf("%s/tcp", in->args[k]);
                json_object_set_new(s->ports, p, json_object());
                free(p);
            }
            break;
        case E2B_DF_VOLUME:
            for (size_t k = 0; k < in->n_args; k++)
                json_object_set_new(s->volumes, in->args[k], json_object());
            break;
        case E2B_DF_STOPSIGNAL:
            free(s->stopsignal);
            s->stopsignal = xstrdup(in->n_args ? in->args[0] : "");
            break;
        case E2B_DF_HEALTHCHECK: {
            const struct e2b_df_healthcheck *h = in->health;
            json_decref(s->health);
            s->health = NULL;
            if (h && !h->none)
                s->health = json_pack("{s:o,s:I,s:I,s:I,s:I,s:i}", "test", strv_json(h->test), "intervalNs",
                                      (json_int_t)h->interval_ns, "timeoutNs", (json_int_t)h->timeout_ns,
                                      "startPeriodNs", (json_int_t)h->start_period_ns, "startIntervalNs",
                                      (json_int_t)h->start_interval_ns, "retries", h->retries);
            else if (h)
                s->health = json_pack("{s:[s]}", "test", "NONE");
            break;
        }
        default: /* ARG (the parser scoped it), MAINTAINER, ONBUILD */
            break;
        }
        if (r == 0 && fs)
            r = fs_step(b, s, in, text, err);
        else if (r == 0)
            progress(b->o, "[%zu/%zu] %s", b->step, b->n_steps, text);
        if (r == 0 && !fs) {
            /* metadata steps change what later steps see: fold them into the key */
            e2b_sha256_init(&kc);
            kh_str(&kc, s->key);
            key_instr(&kc, in);
            kh_final(&kc, s->key);
        }
        if (r < 0)
            return e2b_error_wrap(err, "%s:%d: %s", b->df->name, in->line, e2b_df_kind_name(in->kind));
    }
    s->built = true;
    return 0;
}

/* ---- the final tree ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

static bool ovl_opaque(const char *dir)
{
    char v[4];
    ssize_t n = lgetxattr(dir, "trusted.overlay.opaque", v, sizeof(v));
    return n == 1 && v[0] == 'y';
}

static int copy_meta(const char *src, const char *dst, const struct stat *st, struct e2b_error **err)
{
    if (lchown(dst, st->st_uid, st->st_gid) < 0)
        return e2b_error_sys(err, errno, "chown %s", dst);
    if (!S_ISLNK(st->st_mode) && chmod(dst, st->st_mode & 07777) < 0)
        return e2b_error_sys(err, errno, "chmod %s", dst);
    char names[8192];
    ssize_t n = llistxattr(src, names, sizeof(names));
    for (ssize_t off = 0; n > 0 && off < n; off += (ssize_t)strlen(names + off) + 1) {
        const char *k = names + off;
        if (e2b_str_has_prefix(k, "trusted.overlay."))
            continue;
        char val[65536];
        ssize_t vl = lgetxattr(src, k, val, sizeof(val));
        if (vl >= 0 && lsetxattr(dst, k, val, (size_t)vl, 0) < 0 && errno != ENOTSUP && errno != EPERM)
            return e2b_error_sys(err, errno, "xattr %s on %s", k, dst);
    }
    struct timespec ts[2] = {st->st_atim, st->st_mtim};
    utimensat(AT_FDCWD, dst, ts, AT_SYMLINK_NOFOLLOW);
    return 0;
}

static int copy_data(const char *src, const char *dst, struct e2b_error **err)
{
    _cleanup_close_ int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    _cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (in < 0 || out < 0)
        return e2b_error_sys(err, errno, "copy %s", dst);
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n == 0)
            return 0;
        if (n < 0)
            return e2b_error_sys(err, errno, "copy %s", dst);
    }
}

/* Merge directories of a layer stack (top first) into dst the way overlayfs
 * shows them: the topmost entry of a name wins, a 0:0 character device
 * hides the name below, an opaque directory hides the layers below it.
 * Regular files are hard links to the layers' files (the template tree is
 * only read: sandboxes use it as a lower layer), copied when the link
 * cannot be made. */
static int flatten(char **dirs, size_t n, const char *dst, struct e2b_error **err)
{
    void *seen = NULL;
    int r = 0;
    for (size_t i = 0; r == 0 && i < n; i++) {
        DIR *d = opendir(dirs[i]);
        if (!d) {
            r = e2b_error_sys(err, errno, "%s", dirs[i]);
            break;
        }
        struct dirent *de;
        while (r == 0 && (de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            if (tfind(de->d_name, &seen, cmp_str))
                continue;
            tsearch(xstrdup(de->d_name), &seen, cmp_str);
            _cleanup_free_ char *src = e2b_path_join(dirs[i], de->d_name);
            _cleanup_free_ char *out = e2b_path_join(dst, de->d_name);
            struct stat st;
            if (lstat(src, &st) < 0) {
                r = e2b_error_sys(err, errno, "%s", src);
                break;
            }
            if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0))
                continue; /* whiteout */
            if (S_ISDIR(st.st_mode)) {
                char **sub = e2b_strv_push(NULL, src);
                size_t m = 1;
                for (size_t j = i + 1; !ovl_opaque(sub[m - 1]) && j < n; j++) {
                    _cleanup_free_ char *p = e2b_path_join(dirs[j], de->d_name);
                    struct stat ls;
                    if (lstat(p, &ls) < 0)
                        continue;
                    if (!S_ISDIR(ls.st_mode))
                        break;
                    sub = e2b_strv_push(sub, p);
                    m++;
                }
                if (mkdir(out, 0700) < 0)
                    r = e2b_error_sys(err, errno, "mkdir %s", out);
                if (r == 0)
                    r = flatten(sub, m, out, err);
                if (r == 0)
                    r = copy_meta(src, out, &st, err);
                e2b_strv_free(sub);
            } else if (S_ISREG(st.st_mode)) {
                if (link(src, out) < 0) {
                    if (errno != EXDEV && errno != EMLINK && errno != EPERM)
                        r = e2b_error_sys(err, errno, "link %s", out);
                    else if ((r = copy_data(src, out, err)) == 0)
                        r = copy_meta(src, out, &st, err);
                }
            } else if (S_ISLNK(st.st_mode)) {
                char t[4096];
                ssize_t l = readlink(src, t, sizeof(t) - 1);
                if (l < 0 || (t[l] = '\0', symlink(t, out) < 0))
                    r = e2b_error_sys(err, errno, "symlink %s", out);
                else
                    r = copy_meta(src, out, &st, err);
            } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
                if (mknod(out, st.st_mode, st.st_rdev) < 0)
                    r = e2b_error_sys(err, errno, "mknod %s", out);
                else
                    r = copy_meta(src, out, &st, err);
            }
        }
        closedir(d);
        /* an opaque directory hides everything below it */
        if (ovl_opaque(dirs[i]))
            break;
    }
    tdestroy(seen, free);
    return r;
}

static void build_free(struct build *b)
{
    for (size_t i = 0; i < b->n_stages; i++)
        stage_free(&b->stages[i]);
    free(b->stages);
    for (size_t i = 0; i < b->n_images; i++) {
        e2b_base_image_release(b->images[i]);
        free(b->images[i]);
        free(b->image_keys[i]);
    }
    free(b->images);
    free(b->image_keys);
    e2b_strv_free(b->wanted);
    e2b_dockerfile_free(b->df);
    e2b_ignore_free(&b->ig);
    if (b->ctx_fd >= 0)
        close(b->ctx_fd);
    free(b->cache);
    free(b->empty);
    free(b->work);
}

/* Unmount what is mounted under the work dir (stage views). */
static void unmount_views(struct build *b)
{
    for (size_t i = 0; i < b->n_stages; i++)
        if (b->stages[i].view && e2b_str_has_prefix(b->stages[i].view, b->work))
            umount2(b->stages[i].view, MNT_DETACH);
}

int e2b_build_run(const struct e2b_build_opts *o, json_t **ret_meta, struct e2b_error **err)
{
    struct build b = {.o = o, .ctx_fd = -1};
    b.bo = (struct e2b_base_opts){
        .platform = o->platform,
        .insecure_registries = o->insecure_registries,
        .progress = on_base_progress,
        .tty = o->status != NULL,
        .ud = (void *)o,
    };
    /* the name becomes part of paths (cache mounts) and of the store */
    if (!o->name || !e2b_template_name_valid(o->name))
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "invalid template name '%s': use lowercase letters, digits, - and _ (at most 128)",
                             o->name ? o->name : "");
    for (const char *const *t = o->tags; t && *t; t++)
        if (!e2b_template_tag_valid(*t))
            return e2b_error_set(err, E2B_ERR_INVALID, "invalid tag '%s'", *t);
    /* a private mount namespace: overlays die with this process */
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return e2b_error_sys(err, errno, "build mount namespace (root needed)");
    if (parse(o, &b, true, err) < 0) {
        build_free(&b);
        return -1;
    }
    struct e2b_store store = {0};
    struct e2b_store_txn txn = {0};
    bool began = false;
    int r = -1;
    const char *fin_mounted = NULL;
    _cleanup_free_ char *fin = NULL, *fin_up = NULL, *fin_wk = NULL, *fin_mnt = NULL;
    _cleanup_free_ char *marker = NULL, *image = NULL, *now = NULL, *root = NULL;
    _cleanup_free_ char *data = e2b_data_dir();
    b.cache = e2b_path_join(data, "cache/build");
    _cleanup_free_ char *ld = e2b_path_join(b.cache, "layers"), *sd = e2b_path_join(b.cache, "steps");
    if (e2b_mkdir_p(ld, 0700, err) < 0 || e2b_mkdir_p(sd, 0700, err) < 0)
        goto out;
    cache_clean_stale(ld);
    cache_clean_stale(sd);
    cgroups_clean_stale();
    b.ctx_fd = open(o->context, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (b.ctx_fd < 0) {
        e2b_error_sys(err, errno, "cannot open the build context '%s'", o->context);
        goto out;
    }
    if (e2b_ignore_load(&b.ig, o->context, err) < 0)
        goto out;
    if (e2b_store_open(&store, err) < 0)
        goto out;
    e2b_store_clean_stale(&store);
    if (e2b_store_begin(&store, o->name, &txn, err) < 0)
        goto out;
    began = true;
    root = e2b_path_join(txn.dir, "rootfs");
    b.work = e2b_path_join(txn.dir, "work");
    b.empty = e2b_path_join(b.work, "empty");
    if (e2b_mkdir_p(b.empty, 0755, err) < 0)
        goto out;

    for (size_t i = 0; i < b.n_stages; i++)
        if (b.stages[i].needed && stage_build(&b, &b.stages[i], err) < 0)
            goto out;
    struct stage *t = &b.stages[b.target];
    progress(o, "steps: %u run, %u cached", b.run_steps, b.cached_steps);
    /* the last changes (start/ready commands, user account, /.e2b) go into
     * one more upper over the target's stack, then the stack is flattened */
    unmount_views(&b);
    fin = e2b_path_join(b.work, "final");
    fin_up = e2b_path_join(fin, "upper");
    fin_wk = e2b_path_join(fin, "work");
    fin_mnt = e2b_path_join(b.work, "f");
    if (e2b_mkdir_p(fin_up, 0755, err) < 0 || e2b_mkdir_p(fin_wk, 0700, err) < 0 ||
        e2b_mkdir_p(fin_mnt, 0755, err) < 0 || ovl_mount(t->layers, t->n_layers, fin_up, fin_wk, fin_mnt, err) < 0)
        goto out;
    fin_mounted = fin_mnt;

    if (o->ready_cmd || o->start_cmd) {
        /* start command in the background, ready command retried every 2 s;
         * the pid namespace ends both when the script exits */
        int limit = o->ready_timeout_s > 0 ? o->ready_timeout_s : 60;
        _cleanup_free_ char *script = xasprintf(
            "%s%s%s"
            "n=0; until ( %s ); do n=$((n+2)); if [ $n -ge %d ]; then "
            "echo \"ready command did not succeed within %d s\" >&2; exit 1; fi; sleep 2; done",
            o->start_cmd ? "( " : "", o->start_cmd ? o->start_cmd : "", o->start_cmd ? " ) & " : "",
            o->ready_cmd ? o->ready_cmd : "true", limit, limit);
        progress(o, "start and ready commands");
        struct run_spec rs = {
            .root = fin_mnt,
            .workdir = t->workdir,
            .user = t->user,
            .network_host = o->network_host,
            .timeout_s = limit, /* a ready command that hangs is bounded too */
        };
        rs.argv = e2b_strv_push(NULL, "/bin/sh");
        rs.argv = e2b_strv_push(rs.argv, "-c");
        rs.argv = e2b_strv_push(rs.argv, script);
        const char *k;
        json_t *v;
        bool path = false;
        json_object_foreach(t->env, k, v)
        {
            char *e = xasprintf("%s=%s", k, json_string_value(v) ?: "");
            rs.envp = e2b_strv_push(rs.envp, e);
            free(e);
            path = path || !strcmp(k, "PATH");
        }
        if (!path)
            rs.envp = e2b_strv_push(rs.envp, "PATH=" DEFAULT_PATH);
        int rr = do_run(&b, &rs, "ready command", err);
        run_spec_free(&rs);
        if (rr < 0)
            goto out;
    }
    progress(o, "finishing: user account, /.e2b, ext4 image");
    struct e2b_user_info ui;
    marker = xasprintf("ENV_ID=%s\nBUILD_ID=%s\n", txn.template_id, txn.build_id);
    image = e2b_path_join(txn.dir, "rootfs.ext4");
    uint64_t size_mb = 0;
    if (e2b_root_add_user(fin_mnt, "user", &ui, err) < 0 || e2b_root_write_marker(fin_mnt, marker, err) < 0)
        goto out;
    if (umount2(fin_mnt, 0) < 0) {
        e2b_error_sys(err, errno, "umount %s", fin_mnt);
        goto out;
    }
    fin_mounted = NULL;
    stage_push(t, fin_up);
    char **stack = xcalloc(t->n_layers + 1, sizeof(char *));
    for (size_t i = 0; i < t->n_layers; i++)
        stack[i] = t->layers[t->n_layers - 1 - i];
    int fr = mkdir(root, 0755) < 0 && errno != EEXIST ? e2b_error_sys(err, errno, "mkdir %s", root)
                                                       : flatten(stack, t->n_layers, root, err);
    free(stack);
    if (fr < 0)
        goto out;
    e2b_rm_rf(b.work, NULL);
    if (e2b_ext4_from_dir(root, image, o->disk_headroom_mb, &size_mb, err) < 0)
        goto out;
    now = e2b_rfc3339(e2b_wall_ms());
    json_t *meta = json_pack("{s:s,s:s,s:i,s:i,s:i,s:b,s:[s],s:[s],s:s,s:s,s:s,s:s}", "templateID",
                             txn.template_id, "buildID", txn.build_id, "cpuCount", (int)(o->cpu_count ?: 2),
                             "memoryMB", (int)(o->memory_mb ?: 512), "diskSizeMB", (int)size_mb, "public", 0,
                             "aliases", o->name, "names", o->name, "createdAt", now, "updatedAt", now,
                             "envdVersion", E2B_VERSION, "buildStatus", "ready");
    json_t *tags = json_array();
    for (const char *const *t2 = o->tags; t2 && *t2; t2++)
        json_array_append_new(tags, json_string(*t2));
    if (!json_array_size(tags))
        json_array_append_new(tags, json_string("default"));
    json_object_set_new(meta, "tags", tags);
    json_object_set_new(meta, "startCmd", o->start_cmd ? json_string(o->start_cmd) : json_null());
    json_object_set_new(meta, "readyCmd", o->ready_cmd ? json_string(o->ready_cmd) : json_null());
    json_object_set(meta, "env", t->env);
    /* no WORKDIR: sandbox commands start in the user's home, as on E2B */
    json_object_set_new(meta, "workdir", t->workdir_set ? json_string(t->workdir) : json_null());
    /* no USER (in the Dockerfile or the image): E2B's templates run as `user` */
    json_object_set_new(meta, "user", json_string(*t->user ? t->user : "user"));
    json_object_set(meta, "entrypoint", t->entrypoint ? t->entrypoint : json_null());
    json_object_set(meta, "cmd", t->cmd ? t->cmd : json_null());
    json_object_set(meta, "labels", t->labels);
    json_object_set(meta, "exposedPorts", t->ports);
    json_object_set(meta, "volumes", t->volumes);
    json_object_set_new(meta, "stopSignal", t->stopsignal ? json_string(t->stopsignal) : json_null());
    json_object_set(meta, "healthcheck", t->health ? t->health : json_null());
    json_object_set(meta, "shell", t->shell ? t->shell : json_null());
    json_object_set_new(meta, "imageConfig",
                        t->image ? e2b_image_config_to_json(&t->image->img.config) : json_null());
    json_object_set_new(meta, "baseImage", t->image ? json_string(t->image->ref) : json_null());
    json_object_set_new(meta, "baseImageID", t->image ? json_string(t->image->id) : json_null());
    if (e2b_store_commit(&txn, meta, err) < 0) {
        json_decref(meta);
        goto out;
    }
    if (ret_meta)
        *ret_meta = meta;
    else
        json_decref(meta);
    r = 0;
out:
    if (fin_mounted)
        umount2(fin_mounted, MNT_DETACH);
    if (b.work) {
        unmount_views(&b);
        e2b_rm_rf(b.work, NULL);
    }
    if (began)
        e2b_store_abort(&txn);
    build_free(&b);
    e2b_store_close(&store);
    return r;
}
