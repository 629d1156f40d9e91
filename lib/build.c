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
 * The build runs in its own mount namespace: every overlay vanishes with the
 * process, whatever way it ends.
 *
 * This file is the stage driver; a step's parts live beside it: the step
 * cache and its keys (build-cache.c), RUN (build-run.c), COPY and ADD
 * (build-add.c, over build-copy.c's file work).
 */
#include "build.h"
#include "base-image.h"
#include "build-add.h"
#include "build-cache.h"
#include "build-context.h"
#include "build-copy.h"
#include "build-run.h"
#include "build-src.h"
#include "build-user.h"
#include "dockerfile.h"
#include "ext4.h"
#include "fsutil.h"
#include "template-store.h"

#include <fcntl.h>
#include <sched.h>
#include <search.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

struct stage {
    const struct e2b_df_stage *sg;
    bool needed, built;
    char **layers;          /* bottom first: base root (or the empty dir), then uppers */
    size_t n_layers;
    char key[E2B_SHA256_HEX_SIZE]; /* the running step key */
    struct e2b_base_image *image; /* the image at the bottom of the stack, if any */
    json_t *env;            /* ENV, object */
    json_t *labels, *ports, *volumes, *cmd, *entrypoint, *health, *shell;
    char *workdir, *user, *stopsignal;
    bool workdir_set;       /* WORKDIR given, inherited or from the image */
    char *view;             /* read-only merged view once built */
    bool cmd_set;           /* CMD given in this stage */
    bool host;              /* on the host's programs: layers[0] is the skeleton (see stack_mount) */
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
    struct e2b_build_src src; /* what steps ask for their sources (context, --from) */
    struct e2b_build_cache cache;
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

/* ---- stages on the host's programs ----
 *
 * The `host` template (and templates built on it) keep the host's /usr,
 * /etc ... below them instead of a copy: the stack's bottom is a skeleton
 * (the host's top-level symlinks, empty directories for the rest), and
 * each of the host's top directories gets an overlay of its own over the
 * stack's overlay: the host's directory at the bottom, the layers' same
 * directory above, and the step's upper/<dir> as its upper. So a step's
 * changes to /usr land in its upper like any other, and a sandbox puts the
 * template's layers over the host's directories the same way
 * (sandbox-root.c). */
static const char *const host_tops[] = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"};

static bool host_top_dir(const char *name)
{
    struct stat st;
    for (size_t i = 0; i < ARRAY_SIZE(host_tops); i++)
        if (STREQ(name, host_tops[i])) {
            _cleanup_free_ char *p = xasprintf("/%s", name);
            return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
        }
    return false;
}

static int host_skeleton(struct build *b, char **ret, struct e2b_error **err)
{
    char *dir = e2b_path_join(b->work, "hostskel");
    struct stat st;
    if (stat(dir, &st) == 0) {
        *ret = dir;
        return 0;
    }
    int r = mkdir(dir, 0755) < 0 ? e2b_error_sys(err, errno, "mkdir %s", dir) : 0;
    for (size_t i = 0; r == 0 && i < ARRAY_SIZE(host_tops); i++) {
        _cleanup_free_ char *src = xasprintf("/%s", host_tops[i]), *dst = e2b_path_join(dir, host_tops[i]);
        char target[256];
        ssize_t n;
        if (lstat(src, &st) < 0)
            continue;
        if (S_ISLNK(st.st_mode) && (n = readlink(src, target, sizeof(target) - 1)) > 0) {
            target[n] = '\0';
            if (symlink(target, dst) < 0)
                r = e2b_error_sys(err, errno, "symlink %s", dst);
        } else if (S_ISDIR(st.st_mode) && mkdir(dst, 0755) < 0) {
            r = e2b_error_sys(err, errno, "mkdir %s", dst);
        }
    }
    static const struct {
        const char *path;
        mode_t mode;
    } dirs[] = {{"root", 0700}, {"home", 0755}, {"tmp", 01777}, {"var", 0755}, {"var/tmp", 01777},
                {"var/lib", 0755}, {"var/cache", 0755}, {"opt", 0755}, {"run", 0755}};
    for (size_t i = 0; r == 0 && i < ARRAY_SIZE(dirs); i++) {
        _cleanup_free_ char *p = e2b_path_join(dir, dirs[i].path);
        if (mkdir(p, dirs[i].mode) < 0 || chmod(p, dirs[i].mode) < 0)
            r = e2b_error_sys(err, errno, "mkdir %s", p);
    }
    if (r < 0) {
        free(dir);
        return -1;
    }
    *ret = dir;
    return 0;
}

/* Mount the stage's stack at target (with upper/work: read-write), and for
 * a host stage the overlays of the host's directories over it. */
static int stack_mount(const struct stage *s, const char *upper, const char *work, const char *target,
                       struct e2b_error **err)
{
    _cleanup_free_ char *hostwork = work ? xasprintf("%s-host", work) : NULL;
    for (size_t i = 0; s->host && upper && i < ARRAY_SIZE(host_tops); i++) {
        if (!host_top_dir(host_tops[i]))
            continue;
        _cleanup_free_ char *u = e2b_path_join(upper, host_tops[i]), *w = e2b_path_join(hostwork, host_tops[i]);
        if ((mkdir(u, 0755) < 0 && errno != EEXIST) || e2b_mkdir_p(w, 0700, err) < 0)
            return e2b_error_sys(err, errno, "mkdir %s", u);
    }
    if (ovl_mount(s->layers, s->n_layers, upper, work, target, err) < 0)
        return -1;
    for (size_t i = 0; s->host && i < ARRAY_SIZE(host_tops); i++) {
        if (!host_top_dir(host_tops[i]))
            continue;
        const char *top = host_tops[i];
        char **lowers = e2b_strv_push(NULL, "");
        free(lowers[0]);
        lowers[0] = xasprintf("/%s", top);
        size_t m = 1;
        for (size_t j = 1; j < s->n_layers; j++) {
            _cleanup_free_ char *p = e2b_path_join(s->layers[j], top);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
                lowers = e2b_strv_push(lowers, p);
                m++;
            }
        }
        _cleanup_free_ char *t = e2b_path_join(target, top);
        _cleanup_free_ char *u = upper ? e2b_path_join(upper, top) : NULL;
        _cleanup_free_ char *w = upper ? e2b_path_join(hostwork, top) : NULL;
        int r;
        if (!u && m == 1) /* one read-only layer: the host's own */
            r = mount(lowers[0], t, NULL, MS_BIND, NULL) < 0 ||
                        mount(NULL, t, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0
                    ? e2b_error_sys(err, errno, "bind /%s", top)
                    : 0;
        else
            r = ovl_mount(lowers, m, u, w, t, err);
        e2b_strv_free(lowers);
        if (r < 0)
            return -1;
    }
    return 0;
}

static int stack_umount(const struct stage *s, const char *target, int flags)
{
    for (size_t i = 0; s->host && i < ARRAY_SIZE(host_tops); i++) {
        _cleanup_free_ char *t = e2b_path_join(target, host_tops[i]);
        if (host_top_dir(host_tops[i]) && umount2(t, flags) < 0 && umount2(t, MNT_DETACH) < 0)
            return -1;
    }
    return umount2(target, flags);
}

/* After a step: the host directories' uppers it left empty go, and the
 * work directories of their overlays. */
static void host_upper_prune(const struct stage *s, const char *upper, const char *work)
{
    if (!s->host)
        return;
    for (size_t i = 0; i < ARRAY_SIZE(host_tops); i++) {
        _cleanup_free_ char *u = e2b_path_join(upper, host_tops[i]);
        rmdir(u);
    }
    _cleanup_free_ char *hostwork = xasprintf("%s-host", work);
    e2b_rm_rf(hostwork, NULL);
}

/* The stage's stack as a read-only tree: one layer is itself, more are an
 * overlay (which wants two lowers at least, hence the empty bottom). */
static int stage_view(struct build *b, struct stage *s, struct e2b_error **err)
{
    if (s->view)
        return 0;
    if (s->n_layers == 1 && !s->host) {
        s->view = xstrdup(s->layers[0]);
        return 0;
    }
    char *mp = xasprintf("%s/s%zu", b->work, s->sg->index);
    if (mkdir(mp, 0755) < 0 && errno != EEXIST) {
        free(mp);
        return e2b_error_sys(err, errno, "mkdir");
    }
    if (stack_mount(s, NULL, NULL, mp, err) < 0) {
        free(mp);
        return -1;
    }
    s->view = mp;
    return 0;
}

/* ---- what steps ask for ---- */

/* --from: a stage's view or an image's root (build-src.h). */
static int src_from(void *ud, int stage, const char *name, const char *what, const char **ret_root,
                    const char **ret_key, struct e2b_error **err)
{
    struct build *b = ud;
    if (stage >= 0) {
        struct stage *fs = &b->stages[stage];
        if (what && !fs->built)
            return e2b_error_set(err, E2B_ERR_INVALID, "%s --from=%s: stage not built", what, name);
        if (stage_view(b, fs, err) < 0)
            return -1;
        *ret_root = fs->view;
        *ret_key = fs->key;
        return 0;
    }
    struct e2b_base_image *img = image_get(b, name, NULL, err);
    if (!img || e2b_base_image_root(img, &b->bo, err) < 0)
        return -1;
    *ret_root = img->root;
    *ret_key = img->id;
    return 0;
}

static void src_progress(void *ud, const char *line)
{
    struct build *b = ud;
    progress(b->o, "%s", line);
}

/* ---- stage state ---- */

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
        s->cmd = e2b_json_strv(c->cmd);
    if (c->entrypoint)
        s->entrypoint = e2b_json_strv(c->entrypoint);
    for (char **p = c->exposed_ports; p && *p; p++)
        json_object_set_new(s->ports, *p, json_object());
    for (char **p = c->volumes; p && *p; p++)
        json_object_set_new(s->volumes, *p, json_object());
    for (size_t i = 0; i < c->n_labels; i++)
        json_object_set_new(s->labels, c->labels[i].key, json_string(c->labels[i].value ?: ""));
    if (c->stop_signal)
        s->stopsignal = xstrdup(c->stop_signal);
    if (c->has_healthcheck && c->healthcheck.test)
        s->health = json_pack(
            "{s:o,s:I,s:I,s:I,s:I,s:i}", "test", e2b_json_strv(c->healthcheck.test), "intervalNs",
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
    s->host = p->host;
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

/* A USER value that names an account (not "1000" or "user:group"). */
static bool user_is_name(const char *u)
{
    return *u && !strchr(u, ':') && strspn(u, "0123456789") != strlen(u);
}

/* E2B's USER: the account is made when the root lacks it. */
static int ensure_user(const char *root, const char *user, struct e2b_error **err)
{
    uid_t uid;
    gid_t gid;
    _cleanup_error_ struct e2b_error *e = NULL;
    if (e2b_root_lookup_uid(root, user, &uid, &gid, &e) == 0)
        return 0;
    if (e->code != E2B_ERR_NOT_FOUND)
        return e2b_error_set(err, e->code, "%s", e->msg);
    struct e2b_user_info ui;
    return e2b_root_add_user_sudo(root, user, STREQ(user, "user"), &ui, err);
}

/* One file-changing step: key, cache lookup, else an overlay with a fresh
 * upper to run it in. */
static int fs_step(struct build *b, struct stage *s, const struct e2b_df_instr *in, const char *text,
                   struct e2b_error **err)
{
    struct e2b_sha256 kc;
    e2b_sha256_init(&kc);
    e2b_build_key_str(&kc, s->key);
    e2b_build_key_instr(&kc, in);
    e2b_build_key_str(&kc, s->workdir);
    e2b_build_key_str(&kc, s->user);
    _cleanup_free_ char *tmpdir = xasprintf("%s/t%zu", b->work, b->step);
    if (mkdir(tmpdir, 0700) < 0 && errno != EEXIST)
        return e2b_error_sys(err, errno, "mkdir %s", tmpdir);
    struct e2b_build_add add = {0};
    struct e2b_run_spec rs = {0};
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
        rs.argv = e2b_run_argv(s->shell, in, &rs.script);
        rs.envp = e2b_run_env(in);
        char **e;
        for (e = rs.argv; *e; e++)
            e2b_build_key_str(&kc, *e);
        for (e = rs.envp; *e; e++)
            e2b_build_key_str(&kc, *e);
        e2b_build_key_str(&kc, rs.script ? rs.script : "");
        e2b_build_key_str(&kc, net_host ? "net:host" : "net:none");
        if (r == 0)
            r = e2b_run_mounts(&rs, in, &b->src, &b->cache, b->o->name, tmpdir, &kc, err);
    } else if (in->kind == E2B_DF_COPY || in->kind == E2B_DF_ADD) {
        r = e2b_build_add_sources(&b->src, in, tmpdir, &add, &kc, err);
    }
    char key[E2B_SHA256_HEX_SIZE];
    e2b_sha256_final_hex(&kc, key);
    bool forced = b->o->force_from && b->step >= b->o->force_from;
    _cleanup_free_ char *hit = r == 0 && !forced ? e2b_build_cache_lookup(&b->cache, key) : NULL;
    if (r == 0 && hit) {
        progress(b->o, "[%zu/%zu] %s (cached)", b->step, b->n_steps, text);
        stage_push(s, hit);
        memcpy(s->key, key, sizeof(key));
        b->cached_steps++;
        goto out;
    }
    if (r == 0)
        progress(b->o, "[%zu/%zu] %s", b->step, b->n_steps, text);
    layer = r == 0 ? e2b_build_cache_layer_new(&b->cache, err) : NULL;
    if (r == 0 && !layer)
        r = -1;
    mnt = xasprintf("%s/m", b->work);
    bool mounted = false;
    if (r == 0) {
        _cleanup_free_ char *up = e2b_path_join(layer, "upper"), *wk = e2b_path_join(layer, "work");
        if (mkdir(mnt, 0755) < 0 && errno != EEXIST)
            r = e2b_error_sys(err, errno, "mkdir %s", mnt);
        else if (stack_mount(s, up, wk, mnt, err) < 0)
            r = -1;
        else
            mounted = true;
    }
    if (r == 0) {
        b->run_steps++;
        _cleanup_free_ char *home = NULL;
        if (in->kind == E2B_DF_RUN && b->o->e2b_steps && !s->workdir_set)
            home = e2b_root_lookup_home(mnt, s->user);
        if (in->kind == E2B_DF_RUN) {
            rs.root = mnt;
            rs.workdir = home ? home : s->workdir;
            rs.user = s->user;
            rs.network_host = net_host;
            rs.memory_mb = b->o->memory_mb;
            rs.cpu_count = b->o->cpu_count;
            rs.step = b->step;
            rs.output = b->o->output;
            rs.data = b->o->data;
            r = e2b_run_step(&rs, NULL, err);
        } else if (in->kind == E2B_DF_WORKDIR) {
            r = e2b_tree_mkdir_in(mnt, s->workdir, err);
        } else if (in->kind == E2B_DF_USER) {
            r = ensure_user(mnt, s->user, err);
        } else {
            r = e2b_build_add_apply(&b->src, in, s->workdir, mnt, &add, err);
        }
    }
    if (mounted && stack_umount(s, mnt, 0) < 0 && umount2(mnt, MNT_DETACH) < 0 && r == 0)
        r = e2b_error_sys(err, errno, "umount %s", mnt);
    if (layer) {
        _cleanup_free_ char *up = e2b_path_join(layer, "upper"), *wk = e2b_path_join(layer, "work");
        host_upper_prune(s, up, wk);
    }
    if (r == 0) {
        char *up = e2b_build_cache_layer_commit(&b->cache, layer, key, err);
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
    e2b_build_add_release(&add);
    e2b_run_spec_free(&rs);
    e2b_rm_rf(tmpdir, NULL);
    return r;
}

static json_t *cmd_json(const struct stage *s, const struct e2b_df_instr *in)
{
    if (in->json)
        return e2b_json_strv(in->args);
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
    if (b->o->step)
        b->o->step(b->o->data, b->step, b->n_steps);
    progress(b->o, "[%zu/%zu] %s", b->step, b->n_steps, instr_text(&sg->instrs[0], text, sizeof(text)));
    struct e2b_sha256 kc;
    e2b_sha256_init(&kc);
    if (sg->base_stage >= 0) {
        struct stage *p = &b->stages[sg->base_stage];
        stage_inherit(s, p);
        e2b_build_key_str(&kc, p->key);
    } else if (!strcmp(sg->base, "scratch")) {
        stage_push(s, b->empty);
        e2b_build_key_str(&kc, "scratch");
    } else {
        struct e2b_base_image *img = image_get(b, sg->base, sg->platform, err);
        if (!img || e2b_base_image_root(img, &b->bo, err) < 0)
            return -1;
        if (img->host) {
            _cleanup_free_ char *skel = NULL;
            if (host_skeleton(b, &skel, err) < 0)
                return -1;
            stage_push(s, skel);
            s->host = true;
        }
        if (img->root)
            stage_push(s, img->root);
        stage_seed_image(s, &img->img.config);
        s->image = img;
        e2b_build_key_str(&kc, img->id);
    }
    e2b_sha256_final_hex(&kc, s->key);

    for (size_t i = 1; i < sg->n_instrs; i++) {
        const struct e2b_df_instr *in = &sg->instrs[i];
        b->step++;
        if (b->o->step)
            b->o->step(b->o->data, b->step, b->n_steps);
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
            /* E2B's USER step makes the account it names */
            fs = b->o->e2b_steps && sg->index == b->target && user_is_name(s->user);
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
            s->shell = e2b_json_strv(in->args);
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
                s->health = json_pack("{s:o,s:I,s:I,s:I,s:I,s:i}", "test", e2b_json_strv(h->test),
                                      "intervalNs", (json_int_t)h->interval_ns, "timeoutNs",
                                      (json_int_t)h->timeout_ns, "startPeriodNs",
                                      (json_int_t)h->start_period_ns, "startIntervalNs",
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
            e2b_build_key_str(&kc, s->key);
            e2b_build_key_instr(&kc, in);
            e2b_sha256_final_hex(&kc, s->key);
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
static int flatten(char **dirs, size_t n, const char *dst, bool keep, bool host_top, struct e2b_error **err)
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
            if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
                /* a whiteout; below the host's directories it hides a host file */
                if (keep && mknod(out, S_IFCHR, makedev(0, 0)) < 0)
                    r = e2b_error_sys(err, errno, "whiteout %s", out);
                continue;
            }
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
                bool sub_keep = keep || (host_top && host_top_dir(de->d_name));
                if (r == 0)
                    r = flatten(sub, m, out, sub_keep, false, err);
                if (r == 0)
                    r = copy_meta(src, out, &st, err);
                if (r == 0 && sub_keep && ovl_opaque(sub[m - 1]) &&
                    lsetxattr(out, "trusted.overlay.opaque", "y", 1, 0) < 0)
                    r = e2b_error_sys(err, errno, "mark %s opaque", out);
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
    e2b_build_cache_close(&b->cache);
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
        .username = o->registry_username,
        .password = o->registry_password,
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
    _cleanup_free_ char *marker = NULL, *image = NULL, *root = NULL;
    if (e2b_build_cache_open(&b.cache, o->no_cache, err) < 0)
        goto out;
    e2b_run_clean_stale();
    b.ctx_fd = open(o->context, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (b.ctx_fd < 0) {
        e2b_error_sys(err, errno, "cannot open the build context '%s'", o->context);
        goto out;
    }
    if (e2b_ignore_load(&b.ig, o->context, err) < 0)
        goto out;
    b.src = (struct e2b_build_src){.ctx_fd = b.ctx_fd, .ignore = &b.ig, .from = src_from,
                                   .progress = src_progress, .ud = &b};
    if (e2b_store_open(&store, err) < 0)
        goto out;
    e2b_store_clean_stale(&store);
    if (e2b_store_begin(&store, o->name, o->template_id, o->build_id, &txn, err) < 0)
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
        e2b_mkdir_p(fin_mnt, 0755, err) < 0 || stack_mount(t, fin_up, fin_wk, fin_mnt, err) < 0)
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
        struct e2b_run_spec rs = {
            .root = fin_mnt,
            .workdir = t->workdir,
            .user = t->user,
            .network_host = o->network_host,
            .timeout_s = limit, /* a ready command that hangs is bounded too */
            .output = o->output,
            .data = o->data,
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
            rs.envp = e2b_strv_push(rs.envp, "PATH=" E2B_RUN_DEFAULT_PATH);
        int rr = o->envd_path ? e2b_run_bind_file(&rs, o->envd_path, "/run/e2b/envd", err) : 0;
        if (rr == 0)
            rr = e2b_run_step(&rs, "ready command", err);
        e2b_run_spec_free(&rs);
        if (o->envd_path) { /* the mount point is not part of the template */
            _cleanup_free_ char *slot = e2b_path_join(fin_mnt, "run/e2b/envd");
            _cleanup_free_ char *dir = e2b_path_join(fin_mnt, "run/e2b");
            unlink(slot);
            rmdir(dir);
        }
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
    if (stack_umount(t, fin_mnt, 0) < 0) {
        e2b_error_sys(err, errno, "umount %s", fin_mnt);
        goto out;
    }
    fin_mounted = NULL;
    stage_push(t, fin_up);
    /* a host stage keeps only its own layers: the skeleton below is the host's */
    size_t bottom = t->host ? 1 : 0, nl = t->n_layers - bottom;
    char **stack = xcalloc(nl + 1, sizeof(char *));
    for (size_t i = 0; i < nl; i++)
        stack[i] = t->layers[t->n_layers - 1 - i];
    int fr = mkdir(root, 0755) < 0 && errno != EEXIST ? e2b_error_sys(err, errno, "mkdir %s", root)
                                                       : flatten(stack, nl, root, false, t->host, err);
    free(stack);
    if (fr < 0)
        goto out;
    e2b_rm_rf(b.work, NULL);
    if (e2b_ext4_from_dir(root, image, o->disk_headroom_mb, &size_mb, err) < 0)
        goto out;
    struct e2b_template_info ti = {
        .template_id = txn.template_id, .build_id = txn.build_id, .name = o->name, .tags = o->tags,
        .cpu_count = o->cpu_count, .memory_mb = o->memory_mb, .disk_mb = size_mb,
        .start_cmd = o->start_cmd, .ready_cmd = o->ready_cmd, .runtime = o->runtime,
    };
    /* and what the target stage's image config says */
    json_t *meta = e2b_template_meta_new(&ti);
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
    if (t->host) /* its tree is a layer over the host's directories */
        json_object_set_new(meta, "baseTemplate", json_string("host"));
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
        stack_umount(&b.stages[b.target], fin_mounted, MNT_DETACH);
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
