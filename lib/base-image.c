/* base-image.c - see base-image.h */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base-image.h"
#include "template-store.h"
#include "config.h"
#include "fsutil.h"
#include "util.h"

/* <data dir>/cache/roots; caller frees. */
static char *roots_dir(void)
{
    _cleanup_free_ char *d = e2b_data_dir();
    return e2b_path_join(d, "cache/roots");
}

static void say(const struct e2b_base_opts *o, bool final, const char *fmt, ...) _printf_(3, 4);
static void say(const struct e2b_base_opts *o, bool final, const char *fmt, ...)
{
    if (!o->progress || (!final && !o->tty))
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) >= 0)
        o->progress(o->ud, s, final);
    va_end(ap);
    free(s);
}

static char *bar(uint64_t done, uint64_t total)
{
    char b[23];
    int w = total ? (int)(done * 20 / total) : 20;
    if (w > 20)
        w = 20;
    b[0] = '[';
    for (int i = 0; i < 20; i++)
        b[i + 1] = i < w ? '#' : ' ';
    b[21] = ']';
    b[22] = '\0';
    return xasprintf("%s %.1f/%.1f MB", b, (double)done / 1e6, (double)total / 1e6);
}

static const char *short_digest(const char *d)
{
    return d && strlen(d) > 19 ? d + 7 : (d ? d : "?");
}

static void on_pull(const struct e2b_pull_progress *p, void *ud)
{
    const struct e2b_base_opts *o = ud;
    bool done = p->done >= p->total;
    if (done) {
        say(o, true, "  blob %zu/%zu %.12s %s %.1f MB", p->index + 1, p->count, short_digest(p->digest),
            p->cached ? "cached" : "pulled", (double)p->total / 1e6);
    } else {
        _cleanup_free_ char *b = bar(p->done, p->total);
        say(o, false, "  blob %zu/%zu %.12s %s", p->index + 1, p->count, short_digest(p->digest), b);
    }
}

bool e2b_base_ref_is_template(const char *ref)
{
    return e2b_str_has_prefix(ref, E2B_TEMPLATE_REF_PREFIX);
}

/* A template of the store as a base: its tree, and its config from template.json. */
static int open_template(const char *ref, const struct e2b_base_opts *o, struct e2b_base_image *ret,
                         struct e2b_error **err)
{
    const char *name = ref + strlen(E2B_TEMPLATE_REF_PREFIX);
    ret->img.source = xstrdup(ref);
    ret->ref = xstrdup(ref);
    if (STREQ(name, "host")) {
        say(o, true, "  the host's own programs (template host)");
        ret->host = true;
        ret->id = xstrdup("template:host");
        ret->img.config.env = e2b_strv_push(NULL, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        return 0;
    }
    struct e2b_store store;
    _cleanup_json_ json_t *meta = NULL;
    _cleanup_free_ char *dir = NULL;
    if (e2b_store_open(&store, err) < 0)
        return -1;
    int r = e2b_store_find(&store, name, &meta, &dir, err);
    e2b_store_close(&store);
    if (r < 0)
        return -1;
    _cleanup_free_ char *tree = e2b_path_join(dir, "rootfs");
    struct stat st;
    if (stat(tree, &st) < 0 || !S_ISDIR(st.st_mode))
        return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                             "template '%s' has no rootfs/ tree to build on (only its ext4 image)", name);
    if (e2b_store_pin(tree, err) < 0)
        return -1;
    say(o, true, "  template %s (build %s)", name, e2b_json_str(meta, "buildID") ?: "?");
    ret->root = TAKE_PTR(tree);
    ret->host = STREQ(e2b_json_str(meta, "baseTemplate") ?: "", "host");
    ret->id = xasprintf("template:%s/%s", e2b_json_str(meta, "templateID") ?: name,
                        e2b_json_str(meta, "buildID") ?: "");
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(meta, "env"), k, v) if (json_is_string(v))
    {
        char *kv = xasprintf("%s=%s", k, json_string_value(v));
        ret->img.config.env = e2b_strv_push(ret->img.config.env, kv);
        free(kv);
    }
    if (e2b_json_str(meta, "workdir"))
        ret->img.config.working_dir = xstrdup(e2b_json_str(meta, "workdir"));
    if (e2b_json_str(meta, "user"))
        ret->img.config.user = xstrdup(e2b_json_str(meta, "user"));
    return 0;
}

int e2b_base_image_open(const char *ref, const struct e2b_base_opts *o, struct e2b_base_image *ret,
                        struct e2b_error **err)
{
    memset(ret, 0, sizeof(*ret));
    int r;
    if (e2b_base_ref_is_template(ref)) {
        if (open_template(ref, o, ret, err) < 0) {
            e2b_base_image_release(ret);
            return -1;
        }
        return 0;
    }
    if (e2b_image_source_is_local(ref)) {
        struct e2b_image_opts io = {.platform = o->platform};
        say(o, true, "  reading %s", ref);
        r = e2b_image_open_local(ref, &io, &ret->img, err);
    } else {
        struct e2b_registry_opts ro = {
            .platform = o->platform,
            .insecure_registries = o->insecure_registries,
            .username = o->username,
            .password = o->password,
            .progress = on_pull,
            .ud = (void *)o,
        };
        struct e2b_pulled_image p;
        say(o, true, "  pulling %s", ref);
        r = e2b_registry_pull(ref, &ro, &p, err);
        if (r == 0) {
            r = e2b_image_from_pulled(&p, &ret->img, err);
            e2b_pulled_image_release(&p);
        }
    }
    if (r < 0)
        return -1;
    ret->ref = xstrdup(ref);
    ret->id = xstrdup(ret->img.config_digest);
    return 0;
}

static void on_unpack(const struct e2b_unpack_progress *p, void *ud)
{
    const struct e2b_base_opts *o = ud;
    if (p->done >= p->total) {
        say(o, true, "  layer %zu/%zu %.12s unpacked %.1f MB", p->index + 1, p->count, short_digest(p->digest),
            (double)p->total / 1e6);
    } else {
        _cleanup_free_ char *b = bar(p->done, p->total);
        say(o, false, "  layer %zu/%zu %.12s %s", p->index + 1, p->count, short_digest(p->digest), b);
    }
}

/* Half-unpacked roots (.tmp-<digest>-<pid>) of builders that were killed. */
static void roots_clean_stale(const char *cache)
{
    _cleanup_closedir_ DIR *d = opendir(cache);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        const char *dash = strrchr(de->d_name, '-');
        if (!e2b_str_has_prefix(de->d_name, ".tmp-") || !dash)
            continue;
        pid_t pid = (pid_t)atoi(dash + 1);
        if (pid > 0 && pid != getpid() && kill(pid, 0) < 0 && errno == ESRCH) {
            _cleanup_free_ char *p = e2b_path_join(cache, de->d_name);
            e2b_rm_rf(p, NULL);
        }
    }
}

int e2b_base_image_root(struct e2b_base_image *b, const struct e2b_base_opts *o, struct e2b_error **err)
{
    if (b->root || b->host)
        return 0;
    _cleanup_free_ char *cache = roots_dir();
    _cleanup_free_ char *final = xasprintf("%s/%s", cache, b->id + strlen("sha256:"));
    struct stat st;
    if (stat(final, &st) == 0 && S_ISDIR(st.st_mode)) {
        say(o, true, "  root of %.12s already unpacked", b->id + 7);
        b->root = xstrdup(final);
        return 0;
    }
    if (e2b_mkdir_p(cache, 0700, err) < 0)
        return -1;
    roots_clean_stale(cache);
    _cleanup_free_ char *tmp = xasprintf("%s/.tmp-%.16s-%d", cache, b->id + 7, (int)getpid());
    e2b_rm_rf(tmp, NULL);
    if (mkdir(tmp, 0755) < 0)
        return e2b_error_sys(err, errno, "mkdir %s", tmp);
    if (e2b_image_unpack(&b->img, tmp, on_unpack, (void *)o, err) < 0) {
        e2b_rm_rf(tmp, NULL);
        return e2b_error_wrap(err, "image %s", b->ref);
    }
    if (rename(tmp, final) < 0) {
        int e = errno;
        e2b_rm_rf(tmp, NULL);
        /* another build finished the same root first: use theirs */
        if (!((e == EEXIST || e == ENOTEMPTY) && stat(final, &st) == 0))
            return e2b_error_sys(err, e, "rename %s", final);
    }
    b->root = xstrdup(final);
    return 0;
}

void e2b_base_image_release(struct e2b_base_image *b)
{
    free(b->ref);
    free(b->id);
    free(b->root);
    if (b->img.source || b->img.config_digest)
        e2b_image_release(&b->img);
    memset(b, 0, sizeof(*b));
}
