/* oci.c - see oci.h */
#include "oci.h"
#include "dl-archive.h"
#include "envd-crypto.h"
#include "fsutil.h"
#include "imageref.h"
#include "json.h"
#include "platform.h"
#include "strbuf.h"

#include <fcntl.h>
#include <sys/stat.h>


#define REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"
#define MAX_JSON_BLOB (64u << 20)
#define MAX_INDEX_DEPTH 4

/* --- small helpers --- */

static bool is_hex64(const char *s) { return e2b_hex_span(s) == 64 && !s[64]; }

/* Read a whole (small) blob and check its digest and, if size >= 0, its size. */
static int read_verified(const char *path, const char *digest, int64_t size, const char *label,
                         char **ret, size_t *ret_len, struct e2b_error **err)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno == ENOENT)
            return e2b_error_set(err, E2B_ERR_NOT_FOUND, "image '%s': blob %s is missing", label, digest);
        return e2b_error_sys(err, errno, "image '%s': cannot read blob %s", label, digest);
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_JSON_BLOB)
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': blob %s is not a JSON document of at most %u MiB",
                             label, digest, MAX_JSON_BLOB >> 20);
    _cleanup_free_ char *data = NULL;
    size_t len;
    if (e2b_read_file(path, &data, &len, err) < 0)
        return e2b_error_wrap(err, "image '%s'", label);
    struct e2b_sha256 s;
    e2b_sha256_init(&s);
    e2b_sha256_update(&s, data, len);
    char got[E2B_SHA256_DIGEST_SIZE];
    e2b_sha256_final_digest(&s, got);
    if (!STREQ(got, digest))
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': blob %s is corrupt (its content has digest %s)",
                             label, digest, got);
    if (size >= 0 && (uint64_t)size != len)
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': blob %s has %zu bytes, its descriptor says %lld",
                             label, digest, len, (long long)size);
    *ret = TAKE_PTR(data);
    if (ret_len)
        *ret_len = len;
    return 0;
}

/* --- image config --- */

static int strv_from_json(json_t *v, const char *field, char ***ret, struct e2b_error **err)
{
    *ret = NULL;
    if (!v || json_is_null(v))
        return 0;
    *ret = e2b_json_to_strv(v);
    if (!*ret)
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "image config: \"%s\" is not an array of strings", field);
    return 0;
}

/* The keys of an object ({"80/tcp": {}}), in order. */
static int keys_from_json(json_t *v, const char *field, char ***ret, struct e2b_error **err)
{
    *ret = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return e2b_error_set(err, E2B_ERR_INVALID, "image config: \"%s\" is not an object", field);
    if (!json_object_size(v))
        return 0;
    char **out = xcalloc(json_object_size(v) + 1, sizeof(char *));
    size_t n = 0;
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
        out[n++] = xstrdup(k);
    *ret = out;
    return 0;
}

static int str_field(json_t *obj, const char *field, char **ret, bool empty_is_null, struct e2b_error **err)
{
    json_t *v = json_object_get(obj, field);
    *ret = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return e2b_error_set(err, E2B_ERR_INVALID, "image config: \"%s\" is not a string", field);
    if (!empty_is_null || *json_string_value(v))
        *ret = xstrdup(json_string_value(v));
    return 0;
}

static int int_field(json_t *obj, const char *field, int64_t *ret, struct e2b_error **err)
{
    json_t *v = json_object_get(obj, field);
    *ret = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return e2b_error_set(err, E2B_ERR_INVALID, "image config: \"%s\" is not an integer", field);
    *ret = json_integer_value(v);
    return 0;
}

void e2b_image_config_release(struct e2b_image_config *c)
{
    if (!c)
        return;
    e2b_free_many(&c->os, &c->architecture, &c->variant, &c->created, &c->working_dir, &c->user,
                  &c->stop_signal);
    e2b_strv_free_many(&c->env, &c->entrypoint, &c->cmd, &c->exposed_ports, &c->volumes,
                       &c->healthcheck.test, &c->diff_ids);
    for (size_t i = 0; i < c->n_labels; i++)
        e2b_free_many(&c->labels[i].key, &c->labels[i].value);
    free(c->labels);
    memset(c, 0, sizeof(*c));
}

static int parse_config(json_t *j, struct e2b_image_config *c, struct e2b_error **err)
{
    if (!json_is_object(j))
        return e2b_error_set(err, E2B_ERR_INVALID, "image config: not a JSON object");
    if (str_field(j, "os", &c->os, true, err) < 0 || str_field(j, "architecture", &c->architecture, true, err) < 0 ||
        str_field(j, "variant", &c->variant, true, err) < 0 || str_field(j, "created", &c->created, true, err) < 0)
        return -1;
    json_t *rootfs = json_object_get(j, "rootfs");
    if (rootfs && !json_is_object(rootfs))
        return e2b_error_set(err, E2B_ERR_INVALID, "image config: \"rootfs\" is not an object");
    if (strv_from_json(json_object_get(rootfs, "diff_ids"), "rootfs.diff_ids", &c->diff_ids, err) < 0)
        return -1;
    c->n_diff_ids = e2b_strv_len(c->diff_ids);
    for (size_t i = 0; i < c->n_diff_ids; i++)
        if (!e2b_digest_valid(c->diff_ids[i]))
            return e2b_error_set(err, E2B_ERR_INVALID, "image config: bad diff_id '%s'", c->diff_ids[i]);

    json_t *cfg = json_object_get(j, "config");
    if (!cfg || json_is_null(cfg))
        return 0;
    if (!json_is_object(cfg))
        return e2b_error_set(err, E2B_ERR_INVALID, "image config: \"config\" is not an object");
    if (strv_from_json(json_object_get(cfg, "Env"), "Env", &c->env, err) < 0 ||
        strv_from_json(json_object_get(cfg, "Entrypoint"), "Entrypoint", &c->entrypoint, err) < 0 ||
        strv_from_json(json_object_get(cfg, "Cmd"), "Cmd", &c->cmd, err) < 0 ||
        str_field(cfg, "WorkingDir", &c->working_dir, true, err) < 0 ||
        str_field(cfg, "User", &c->user, true, err) < 0 ||
        str_field(cfg, "StopSignal", &c->stop_signal, true, err) < 0 ||
        keys_from_json(json_object_get(cfg, "ExposedPorts"), "ExposedPorts", &c->exposed_ports, err) < 0 ||
        keys_from_json(json_object_get(cfg, "Volumes"), "Volumes", &c->volumes, err) < 0)
        return -1;
    json_t *labels = json_object_get(cfg, "Labels");
    if (labels && !json_is_null(labels)) {
        if (!json_is_object(labels))
            return e2b_error_set(err, E2B_ERR_INVALID, "image config: \"Labels\" is not an object");
        c->labels = xcalloc(json_object_size(labels) + 1, sizeof(*c->labels));
        const char *k;
        json_t *v;
        json_object_foreach(labels, k, v) {
            if (!json_is_string(v))
                return e2b_error_set(err, E2B_ERR_INVALID, "image config: label '%s' is not a string", k);
            c->labels[c->n_labels].key = xstrdup(k);
            c->labels[c->n_labels++].value = xstrdup(json_string_value(v));
        }
    }
    json_t *hc = json_object_get(cfg, "Healthcheck");
    if (hc && !json_is_null(hc)) {
        if (!json_is_object(hc))
            return e2b_error_set(err, E2B_ERR_INVALID, "image config: \"Healthcheck\" is not an object");
        c->has_healthcheck = true;
        int64_t retries;
        if (strv_from_json(json_object_get(hc, "Test"), "Healthcheck.Test", &c->healthcheck.test, err) < 0 ||
            int_field(hc, "Interval", &c->healthcheck.interval_ns, err) < 0 ||
            int_field(hc, "Timeout", &c->healthcheck.timeout_ns, err) < 0 ||
            int_field(hc, "StartPeriod", &c->healthcheck.start_period_ns, err) < 0 ||
            int_field(hc, "StartInterval", &c->healthcheck.start_interval_ns, err) < 0 ||
            int_field(hc, "Retries", &retries, err) < 0)
            return -1;
        c->healthcheck.retries = (int)retries;
    }
    return 0;
}

int e2b_image_config_parse(const char *json, size_t len, struct e2b_image_config *ret, struct e2b_error **err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_json_ json_t *j = NULL;
    if (e2b_json_parse(json, len, "image config", &j, err) < 0)
        return -1;
    if (parse_config(j, ret, err) < 0) {
        e2b_image_config_release(ret);
        return -1;
    }
    return 0;
}

json_t *e2b_image_config_to_json(const struct e2b_image_config *c)
{
    json_t *j = json_object();
#define SET_STR(k, v)                                                                              \
    if (v)                                                                                         \
    json_object_set_new(j, k, json_string(v))
#define SET_STRV(k, v) \
    if (v)             \
    json_object_set_new(j, k, e2b_json_strv(v))
    SET_STRV("env", c->env);
    SET_STRV("entrypoint", c->entrypoint);
    SET_STRV("cmd", c->cmd);
    SET_STR("workingDir", c->working_dir);
    SET_STR("user", c->user);
    SET_STRV("exposedPorts", c->exposed_ports);
    SET_STRV("volumes", c->volumes);
    if (c->n_labels) {
        json_t *l = json_object();
        for (size_t i = 0; i < c->n_labels; i++)
            json_object_set_new(l, c->labels[i].key, json_string(c->labels[i].value));
        json_object_set_new(j, "labels", l);
    }
    SET_STR("stopSignal", c->stop_signal);
    if (c->has_healthcheck) {
        json_t *h = json_object();
        if (c->healthcheck.test)
            json_object_set_new(h, "test", e2b_json_strv(c->healthcheck.test));
        if (c->healthcheck.interval_ns)
            json_object_set_new(h, "intervalNs", json_integer(c->healthcheck.interval_ns));
        if (c->healthcheck.timeout_ns)
            json_object_set_new(h, "timeoutNs", json_integer(c->healthcheck.timeout_ns));
        if (c->healthcheck.start_period_ns)
            json_object_set_new(h, "startPeriodNs", json_integer(c->healthcheck.start_period_ns));
        if (c->healthcheck.start_interval_ns)
            json_object_set_new(h, "startIntervalNs", json_integer(c->healthcheck.start_interval_ns));
        if (c->healthcheck.retries)
            json_object_set_new(h, "retries", json_integer(c->healthcheck.retries));
        json_object_set_new(j, "healthcheck", h);
    }
    SET_STR("os", c->os);
    SET_STR("architecture", c->architecture);
    SET_STR("variant", c->variant);
#undef SET_STR
#undef SET_STRV
    return j;
}

/* --- the image model --- */

void e2b_image_release(struct e2b_image *img)
{
    if (!img)
        return;
    e2b_free_many(&img->source, &img->transport, &img->index_digest, &img->manifest_digest,
                  &img->manifest_media_type, &img->platform, &img->config_digest,
                  &img->config_json);
    e2b_image_config_release(&img->config);
    e2b_image_layers_free(img->layers, img->n_layers);
    memset(img, 0, sizeof(*img));
}

/* Read, check and parse the config blob; match its diff_ids to the layers. */
static int load_config(struct e2b_image *img, const char *path, int64_t size, const char *label,
                       struct e2b_error **err)
{
    if (read_verified(path, img->config_digest, size, label, &img->config_json, &img->config_len, err) < 0)
        return -1;
    if (e2b_image_config_parse(img->config_json, img->config_len, &img->config, err) < 0)
        return e2b_error_wrap(err, "image '%s': config %s", label, img->config_digest);
    return 0;
}

static int match_diff_ids(struct e2b_image *img, const char *label, struct e2b_error **err)
{
    if (img->config.n_diff_ids != img->n_layers)
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': the config lists %zu layers (rootfs.diff_ids), the "
                             "manifest %zu", label, img->config.n_diff_ids, img->n_layers);
    for (size_t i = 0; i < img->n_layers; i++)
        img->layers[i].diff_id = xstrdup(img->config.diff_ids[i]);
    if (!img->platform && img->config.os && img->config.architecture)
        img->platform = xasprintf("%s/%s%s%s", img->config.os, img->config.architecture,
                                  img->config.variant ? "/" : "", img->config.variant ? img->config.variant : "");
    return 0;
}

static char *blob_path(const char *blobdir, const char *digest)
{
    return xasprintf("%s/%s", blobdir, digest + 7);
}

/* --- OCI image layouts (a directory, or an archive's blobs in the cache) --- */

struct layout {
    const char *label;   /* the source, for messages */
    const char *blobdir; /* where blobs/sha256/<hex> are */
    const char *platform;
};

static int image_from_manifest(const struct layout *L, json_t *j, struct e2b_image *img, struct e2b_error **err)
{
    _cleanup_(e2b_manifest_release) struct e2b_manifest m = {0};
    if (e2b_manifest_parse(j, L->label, false, &m, err) < 0)
        return -1;
    img->config_digest = xstrdup(m.config.digest);
    _cleanup_free_ char *cpath = blob_path(L->blobdir, m.config.digest);
    if (load_config(img, cpath, m.config.size, L->label, err) < 0)
        return -1;
    img->layers = xcalloc(m.n_layers + 1, sizeof(*img->layers));
    for (size_t i = 0; i < m.n_layers; i++) {
        const struct e2b_descriptor *d = &m.layers[i];
        struct e2b_image_layer *l = &img->layers[img->n_layers++];
        l->digest = xstrdup(d->digest);
        l->media_type = xstrdup(d->media_type);
        l->path = blob_path(L->blobdir, d->digest);
        struct stat st;
        if (stat(l->path, &st) < 0 || !S_ISREG(st.st_mode))
            return e2b_error_set(err, E2B_ERR_NOT_FOUND, "image '%s': layer blob %s is missing", L->label, d->digest);
        if (d->size >= 0 && st.st_size != d->size)
            return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': layer blob %s has %lld bytes, the manifest says %lld",
                                 L->label, d->digest, (long long)st.st_size, (long long)d->size);
        l->size = st.st_size;
    }
    return match_diff_ids(img, L->label, err);
}

/* Follow one descriptor: an index (pick the platform) or a manifest. */
static int resolve(const struct layout *L, json_t *desc, int depth, struct e2b_image *img, struct e2b_error **err)
{
    struct e2b_descriptor d;
    if (e2b_descriptor_parse(desc, L->label, "an index entry", false, &d, err) < 0)
        return -1;
    const char *digest = d.digest, *mt = d.media_type;
    int64_t size = d.size;
    if (depth > MAX_INDEX_DEPTH)
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': image indexes nested too deep", L->label);
    _cleanup_free_ char *path = blob_path(L->blobdir, digest);
    _cleanup_free_ char *data = NULL;
    size_t len;
    if (read_verified(path, digest, size, L->label, &data, &len, err) < 0)
        return -1;
    _cleanup_json_ json_t *j = NULL;
    _cleanup_free_ char *what = xasprintf("image '%s': %s", L->label, digest);
    if (e2b_json_parse(data, len, what, &j, err) < 0)
        return -1;
    const char *own_mt = e2b_json_str(j, "mediaType");
    if (!mt)
        mt = own_mt;
    if (e2b_mt_is_index(mt) || (!mt && json_is_array(json_object_get(j, "manifests")))) {
        size_t pick;
        char *plat = NULL;
        if (e2b_image_index_select(j, L->platform, L->label, false, &pick, &plat, err) < 0)
            return -1;
        free(img->platform);
        img->platform = plat;
        free(img->index_digest);
        img->index_digest = xstrdup(digest);
        return resolve(L, json_array_get(json_object_get(j, "manifests"), pick), depth + 1, img, err);
    }
    if (mt && !e2b_mt_is_manifest(mt))
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "image '%s': %s has unsupported media type '%s'", L->label,
                             digest, mt);
    img->manifest_digest = xstrdup(digest);
    img->manifest_media_type = xstrdup(mt ? mt : E2B_MT_OCI_MANIFEST);
    return image_from_manifest(L, j, img, err);
}

/* Choose the entry of index.json named by ref ("tag", "@N" or NULL). */
static int layout_pick(const struct layout *L, json_t *index, const char *ref, struct e2b_image *img,
                       struct e2b_error **err)
{
    json_t *list = json_object_get(index, "manifests");
    if (!json_is_array(list))
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': index.json has no \"manifests\" array", L->label);
    size_t n = json_array_size(list);
    _cleanup_json_ json_t *cands = json_array();
    _cleanup_strbuf_ struct strbuf names = STRBUF_INIT;
    strbuf_init(&names);
    size_t i;
    json_t *m;
    if (ref && ref[0] == '@') {
        char *end;
        errno = 0;
        unsigned long k = strtoul(ref + 1, &end, 10);
        if (!ref[1] || *end || errno)
            return e2b_error_set(err, E2B_ERR_USAGE, "image '%s': bad index '%s' (want @N)", L->label, ref);
        if (k >= n)
            return e2b_error_set(err, E2B_ERR_NOT_FOUND, "image '%s': no entry %lu (index.json has %zu)", L->label,
                                 k, n);
        return resolve(L, json_array_get(list, k), 0, img, err);
    }
    json_array_foreach(list, i, m) {
        const char *name = e2b_json_str(json_object_get(m, "annotations"), REF_NAME_ANNOTATION);
        if (name)
            strbuf_addf(&names, "%s%s", names.len ? ", " : "", name);
        if (!ref || (name && STREQ(name, ref)))
            json_array_append(cands, m);
    }
    size_t nc = json_array_size(cands);
    if (!nc && ref)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "image '%s': no image named '%s' (it has: %s)", L->label, ref,
                             names.len ? names.buf : "no names");
    if (!nc)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "image '%s' holds no image", L->label);
    if (nc == 1)
        return resolve(L, json_array_get(cands, 0), 0, img, err);
    /* several: one per platform (a multi-arch layout written flat), or a choice to make */
    bool platforms = true;
    json_array_foreach(cands, i, m)
        if (!json_object_get(m, "platform"))
            platforms = false;
    if (!platforms)
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s' holds %zu images: name one with :<name> or :@N "
                             "(names: %s)", L->label, nc, names.len ? names.buf : "none");
    _cleanup_json_ json_t *fake = json_pack("{sO}", "manifests", cands);
    size_t pick;
    char *plat = NULL;
    if (e2b_image_index_select(fake, L->platform, L->label, false, &pick, &plat, err) < 0)
        return -1;
    img->platform = plat;
    return resolve(L, json_array_get(cands, pick), 0, img, err);
}

static int open_oci_dir(const char *dir, const char *ref, const char *label, const char *platform,
                        struct e2b_image *img, struct e2b_error **err)
{
    _cleanup_free_ char *lf = e2b_path_join(dir, "oci-layout");
    _cleanup_json_ json_t *layout = NULL;
    _cleanup_error_ struct e2b_error *lerr = NULL;
    if (e2b_json_load_file(lf, &layout, &lerr) < 0) {
        if (lerr->sys_errno == ENOENT)
            return e2b_error_set(err, E2B_ERR_NOT_FOUND, "image '%s': '%s' is not an OCI image layout (no oci-layout "
                                 "file)", label, dir);
        return e2b_error_set(err, lerr->code, "image '%s': %s", label, lerr->msg);
    }
    const char *ver = e2b_json_str(layout, "imageLayoutVersion");
    if (!ver || !STREQ(ver, "1.0.0"))
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "image '%s': unsupported imageLayoutVersion '%s'", label,
                             ver ? ver : "");
    _cleanup_free_ char *ixf = e2b_path_join(dir, "index.json");
    _cleanup_json_ json_t *index = NULL;
    if (e2b_json_load_file(ixf, &index, err) < 0)
        return e2b_error_wrap(err, "image '%s'", label);
    _cleanup_free_ char *blobdir = e2b_path_join(dir, "blobs/sha256");
    struct layout L = {.label = label, .blobdir = blobdir, .platform = platform};
    return layout_pick(&L, index, ref, img, err);
}

/* --- archives --- */

struct member {
    char *name;    /* clean path in the archive */
    char *link;    /* symlink or hardlink: the clean path it points to */
    char *digest;  /* regular file stored in the cache */
    char *path;
    int64_t size;
    char *data;    /* small metadata file kept in memory */
    size_t len;
};

struct members {
    struct member *v;
    size_t n, cap;
};

static void members_release(struct members *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].name);
        free(m->v[i].link);
        free(m->v[i].digest);
        free(m->v[i].path);
        free(m->v[i].data);
    }
    free(m->v);
    memset(m, 0, sizeof(*m));
}

static struct member *members_add(struct members *m, const char *name)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 32;
        m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
    }
    struct member *x = &m->v[m->n++];
    memset(x, 0, sizeof(*x));
    x->name = xstrdup(name);
    return x;
}

/* Lexically clean a path: no leading '/', no "." or empty components, ".." pops. */
static char *norm_path(const char *p)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    while (*p) {
        while (*p == '/')
            p++;
        const char *end = strchrnul(p, '/');
        size_t n = (size_t)(end - p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            char *slash = strrchr(sb.buf, '/');
            strbuf_setlen(&sb, slash ? (size_t)(slash - sb.buf) : 0);
        } else if (n && !(n == 1 && *p == '.')) {
            if (sb.len)
                strbuf_addch(&sb, '/');
            strbuf_add(&sb, p, n);
        }
        p = end;
    }
    return strbuf_detach(&sb, NULL);
}

static const struct member *members_find(const struct members *m, const char *name)
{
    _cleanup_free_ char *want = norm_path(name);
    for (int hops = 0; hops < 16; hops++) {
        const struct member *found = NULL;
        for (size_t i = m->n; i-- > 0;) /* the last one wins, as when extracting */
            if (STREQ(m->v[i].name, want)) {
                found = &m->v[i];
                break;
            }
        if (!found || !found->link)
            return found;
        free(want);
        want = xstrdup(found->link);
    }
    return NULL;
}

/* Stream the current entry into the cache as <shadir>/<hex>; returns its digest. */
static int entry_to_cache(struct archive *a, const char *shadir, const char *label, const char *name,
                          char **ret_digest, char **ret_path, int64_t *ret_size, struct e2b_error **err)
{
    _cleanup_free_ char *tmp = xasprintf("%s/.tmp-XXXXXX", shadir);
    _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot create a file in '%s'", shadir);
    struct e2b_sha256 s;
    e2b_sha256_init(&s);
    _cleanup_free_ char *buf = xmalloc(128 * 1024);
    int64_t total = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, 128 * 1024);
        if (n == 0)
            break;
        if (n < 0) {
            unlink(tmp);
            return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': cannot read '%s': %s", label, name,
                                 archive_error_string(a));
        }
        e2b_sha256_update(&s, buf, (size_t)n);
        int w = e2b_write_all(fd, buf, (size_t)n);
        if (w < 0) {
            unlink(tmp);
            return e2b_error_sys(err, -w, "cannot write '%s'", tmp);
        }
        total += n;
    }
    if (fchmod(fd, 0644) < 0 || close(TAKE_FD(fd)) < 0) {
        int e = errno;
        unlink(tmp);
        return e2b_error_sys(err, e, "cannot write '%s'", tmp);
    }
    char digest[E2B_SHA256_DIGEST_SIZE];
    e2b_sha256_final_digest(&s, digest);
    _cleanup_free_ char *final = xasprintf("%s/%s", shadir, digest + 7);
    if (rename(tmp, final) < 0) {
        int e = errno;
        unlink(tmp);
        return e2b_error_sys(err, e, "cannot rename '%s'", tmp);
    }
    *ret_digest = xstrdup(digest);
    *ret_path = TAKE_PTR(final);
    *ret_size = total;
    return 0;
}

enum scan_kind { SCAN_OCI, SCAN_DOCKER };

/* Read an archive once: metadata files into memory, blobs into the cache. */
static int scan_archive(const char *file, const char *label, const char *shadir, enum scan_kind kind,
                        struct members *ret, struct e2b_error **err)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_filter_none(a);
    archive_read_support_format_tar(a);
    int r = -1;
    if (archive_read_open_filename(a, file, 128 * 1024) != ARCHIVE_OK) {
        int e = archive_errno(a);
        if (e == ENOENT || e == EACCES)
            e2b_error_sys(err, e, "image '%s': cannot open '%s'", label, file);
        else
            e2b_error_set(err, E2B_ERR_INVALID, "image '%s': cannot read '%s': %s", label, file,
                          archive_error_string(a));
        goto out;
    }
    for (;;) {
        struct archive_entry *e;
        int hr = archive_read_next_header(a, &e);
        if (hr == ARCHIVE_EOF)
            break;
        if (hr < ARCHIVE_WARN) {
            e2b_error_set(err, E2B_ERR_INVALID, "image '%s': '%s' is not a readable tar archive: %s", label, file,
                          archive_error_string(a));
            goto out;
        }
        const char *raw = archive_entry_pathname(e);
        if (!raw)
            continue;
        _cleanup_free_ char *name = norm_path(raw);
        const char *hl = archive_entry_hardlink(e);
        mode_t type = archive_entry_filetype(e);
        if (hl) {
            members_add(ret, name)->link = norm_path(hl);
            continue;
        }
        if (type == AE_IFLNK) {
            const char *t = archive_entry_symlink(e);
            const char *slash = strrchr(name, '/');
            _cleanup_free_ char *joined = t && t[0] == '/' ? xstrdup(t)
                                        : xasprintf("%.*s/%s", slash ? (int)(slash - name) : 0, name, t ? t : "");
            members_add(ret, name)->link = norm_path(joined);
            continue;
        }
        if (type != AE_IFREG)
            continue;
        const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
        bool meta = kind == SCAN_OCI ? STREQ(name, "index.json") || STREQ(name, "oci-layout")
                                     : STREQ(name, "manifest.json") || STREQ(name, "repositories");
        if (meta) {
            if (archive_entry_size(e) > (la_int64_t)MAX_JSON_BLOB) {
                e2b_error_set(err, E2B_ERR_INVALID, "image '%s': '%s' is too large", label, name);
                goto out;
            }
            struct member *m = members_add(ret, name);
            _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
            strbuf_init(&sb);
            char buf[16384];
            la_ssize_t n;
            while ((n = archive_read_data(a, buf, sizeof(buf))) > 0 && sb.len < MAX_JSON_BLOB)
                strbuf_add(&sb, buf, (size_t)n);
            if (n < 0) {
                e2b_error_set(err, E2B_ERR_INVALID, "image '%s': cannot read '%s': %s", label, name,
                              archive_error_string(a));
                goto out;
            }
            m->data = strbuf_detach(&sb, &m->len);
            continue;
        }
        if (kind == SCAN_OCI) {
            if (!e2b_str_has_prefix(name, "blobs/sha256/") || !is_hex64(name + 13))
                continue; /* other algorithms are refused when referenced */
            struct member *m = members_add(ret, name);
            m->digest = xasprintf("sha256:%s", name + 13);
            m->path = xasprintf("%s/%s", shadir, name + 13);
            struct stat st;
            if (stat(m->path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == archive_entry_size(e)) {
                m->size = st.st_size; /* cached blobs were checked when they were stored */
                continue;
            }
            _cleanup_free_ char *got = NULL, *path = NULL;
            if (entry_to_cache(a, shadir, label, name, &got, &path, &m->size, err) < 0)
                goto out;
            if (!STREQ(got, m->digest)) {
                unlink(path);
                e2b_error_set(err, E2B_ERR_INVALID, "image '%s': blob %s is corrupt (its content has digest %s)",
                              label, m->digest, got);
                goto out;
            }
            continue;
        }
        if (STREQ(base, "json") || STREQ(base, "VERSION"))
            continue; /* legacy per-layer metadata */
        struct member *m = members_add(ret, name);
        if (entry_to_cache(a, shadir, label, name, &m->digest, &m->path, &m->size, err) < 0)
            goto out;
    }
    r = 0;
out:
    archive_read_free(a);
    return r;
}

static int prepare_cache(const char *cache_dir, char **ret_shadir, struct e2b_error **err)
{
    _cleanup_free_ char *cache = cache_dir ? xstrdup(cache_dir) : e2b_blob_cache_dir();
    _cleanup_free_ char *shadir = e2b_path_join(cache, "sha256");
    if (e2b_mkdir_p(shadir, 0755, err) < 0)
        return -1;
    *ret_shadir = TAKE_PTR(shadir);
    return 0;
}

static int open_oci_archive(const char *file, const char *ref, const char *label, const struct e2b_image_opts *o,
                            const char *platform, struct e2b_image *img, struct e2b_error **err)
{
    _cleanup_free_ char *shadir = NULL;
    if (prepare_cache(o->cache_dir, &shadir, err) < 0)
        return -1;
    _cleanup_(members_release) struct members ms = {0};
    if (scan_archive(file, label, shadir, SCAN_OCI, &ms, err) < 0)
        return -1;
    const struct member *lm = members_find(&ms, "oci-layout");
    const struct member *im = members_find(&ms, "index.json");
    if (!lm || !lm->data || !im || !im->data)
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': '%s' is not an OCI archive (no oci-layout or "
                             "index.json)", label, file);
    _cleanup_json_ json_t *layout = NULL, *index = NULL;
    if (e2b_json_parse(lm->data, lm->len, "oci-layout", &layout, err) < 0 ||
        e2b_json_parse(im->data, im->len, "index.json", &index, err) < 0)
        return e2b_error_wrap(err, "image '%s'", label);
    const char *ver = e2b_json_str(layout, "imageLayoutVersion");
    if (!ver || !STREQ(ver, "1.0.0"))
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "image '%s': unsupported imageLayoutVersion '%s'", label,
                             ver ? ver : "");
    struct layout L = {.label = label, .blobdir = shadir, .platform = platform};
    return layout_pick(&L, index, ref, img, err);
}

/* "<64 hex>.json" or "blobs/sha256/<64 hex>": the digest its name promises, or NULL. */
static char *named_digest(const char *name)
{
    if (e2b_str_has_prefix(name, "blobs/sha256/") && is_hex64(name + 13))
        return xasprintf("sha256:%s", name + 13);
    size_t n = strlen(name);
    if (n == 69 && STREQ(name + 64, ".json")) {
        _cleanup_free_ char *hex = xstrndup(name, 64);
        if (is_hex64(hex))
            return xasprintf("sha256:%s", hex);
    }
    return NULL;
}

static bool repotag_matches(const char *tag, const char *want)
{
    if (STREQ(tag, want))
        return true;
    _cleanup_(e2b_imageref_release) struct e2b_imageref a = {0}, b = {0};
    if (e2b_imageref_parse(tag, &a, NULL) < 0 || e2b_imageref_parse(want, &b, NULL) < 0)
        return false;
    _cleanup_free_ char *fa = e2b_imageref_format(&a), *fb = e2b_imageref_format(&b);
    return STREQ(fa, fb);
}

static int open_docker_archive(const char *file, const char *ref, const char *label, const struct e2b_image_opts *o,
                               struct e2b_image *img, struct e2b_error **err)
{
    _cleanup_free_ char *shadir = NULL;
    if (prepare_cache(o->cache_dir, &shadir, err) < 0)
        return -1;
    _cleanup_(members_release) struct members ms = {0};
    if (scan_archive(file, label, shadir, SCAN_DOCKER, &ms, err) < 0)
        return -1;
    const struct member *mm = members_find(&ms, "manifest.json");
    if (!mm || !mm->data)
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': '%s' is not a docker archive (no manifest.json)",
                             label, file);
    _cleanup_json_ json_t *man = NULL;
    if (e2b_json_parse(mm->data, mm->len, "manifest.json", &man, err) < 0)
        return e2b_error_wrap(err, "image '%s'", label);
    if (!json_is_array(man) || !json_array_size(man))
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': manifest.json is not a non-empty array", label);
    size_t n = json_array_size(man), pick = n;
    _cleanup_strbuf_ struct strbuf tags = STRBUF_INIT;
    strbuf_init(&tags);
    for (size_t i = 0; i < n; i++) {
        json_t *rt = json_object_get(json_array_get(man, i), "RepoTags");
        size_t k;
        json_t *t;
        json_array_foreach(rt, k, t) {
            if (!json_is_string(t))
                continue;
            strbuf_addf(&tags, "%s%s", tags.len ? ", " : "", json_string_value(t));
            if (ref && ref[0] != '@' && pick == n && repotag_matches(json_string_value(t), ref))
                pick = i;
        }
    }
    if (ref && ref[0] == '@') {
        char *end;
        errno = 0;
        unsigned long k = strtoul(ref + 1, &end, 10);
        if (!ref[1] || *end || errno)
            return e2b_error_set(err, E2B_ERR_USAGE, "image '%s': bad index '%s' (want @N)", label, ref);
        if (k >= n)
            return e2b_error_set(err, E2B_ERR_NOT_FOUND, "image '%s': no image @%lu (the archive has %zu)", label,
                                 k, n);
        pick = k;
    } else if (ref && pick == n) {
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "image '%s': no image tagged '%s' (it has: %s)", label, ref,
                             tags.len ? tags.buf : "no tags");
    } else if (!ref) {
        if (n > 1)
            return e2b_error_set(err, E2B_ERR_INVALID, "image '%s' holds %zu images: name one with :<tag> or :@N "
                                 "(tags: %s)", label, n, tags.len ? tags.buf : "none");
        pick = 0;
    }
    json_t *entry = json_array_get(man, pick);
    const char *cfg = e2b_json_str(entry, "Config");
    json_t *layers = json_object_get(entry, "Layers");
    if (!cfg || !json_is_array(layers))
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': manifest.json entry %zu lacks Config or Layers",
                             label, pick);
    const struct member *cm = members_find(&ms, cfg);
    if (!cm || !cm->digest)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "image '%s': config '%s' is missing from the archive", label,
                             cfg);
    _cleanup_free_ char *promised = named_digest(cm->name);
    if (promised && !STREQ(promised, cm->digest))
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': blob %s is corrupt (its content has digest %s)",
                             label, promised, cm->digest);
    img->config_digest = xstrdup(cm->digest);
    if (load_config(img, cm->path, cm->size, label, err) < 0)
        return -1;
    img->layers = xcalloc(json_array_size(layers) + 1, sizeof(*img->layers));
    size_t i;
    json_t *lj;
    json_array_foreach(layers, i, lj) {
        const char *lname = json_string_value(lj);
        const struct member *m = lname ? members_find(&ms, lname) : NULL;
        if (!m || !m->digest)
            return e2b_error_set(err, E2B_ERR_NOT_FOUND, "image '%s': layer '%s' is missing from the archive", label,
                                 lname ? lname : "?");
        _cleanup_free_ char *want = named_digest(m->name);
        if (want && !STREQ(want, m->digest))
            return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': blob %s is corrupt (its content has digest %s)",
                                 label, want, m->digest);
        struct e2b_image_layer *l = &img->layers[img->n_layers++];
        l->digest = xstrdup(m->digest);
        l->path = xstrdup(m->path);
        l->size = m->size;
        uint8_t head[8] = {0};
        ssize_t hn = 0;
        _cleanup_close_ int fd = open(l->path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            hn = pread(fd, head, sizeof(head), 0);
        const char *comp = e2b_layer_compression(head, hn > 0 ? (size_t)hn : 0);
        l->media_type = xstrdup(!comp || STREQ(comp, "none") ? E2B_MT_OCI_LAYER
                                : STREQ(comp, "gzip")         ? E2B_MT_OCI_LAYER_GZIP
                                                              : E2B_MT_OCI_LAYER_ZSTD);
    }
    if (match_diff_ids(img, label, err) < 0)
        return -1;
    for (i = 0; i < img->n_layers; i++) { /* a plain tar's digest is its diff_id */
        struct e2b_image_layer *l = &img->layers[i];
        if (STREQ(l->media_type, E2B_MT_OCI_LAYER) && !STREQ(l->digest, l->diff_id))
            return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': layer %s is corrupt (its content has digest %s)",
                                 label, l->diff_id, l->digest);
    }
    return 0;
}

/* --- entry points --- */

static const char *const transports[] = {"oci", "oci-archive", "docker-archive"};

bool e2b_image_source_is_local(const char *s)
{
    for (size_t i = 0; i < ARRAY_SIZE(transports); i++) {
        size_t n = strlen(transports[i]);
        if (!strncmp(s, transports[i], n) && s[n] == ':')
            return true;
    }
    return false;
}

/* Hash every layer blob against its digest (what unpack does as it goes). */
static int check_layers(const struct e2b_image *img, struct e2b_error **err)
{
    for (size_t i = 0; i < img->n_layers; i++) {
        const struct e2b_image_layer *l = &img->layers[i];
        _cleanup_free_ char *got = NULL;
        if (e2b_blob_digest_file(l->path, &got, err) < 0)
            return e2b_error_wrap(err, "image '%s': layer %s", img->source, l->digest);
        if (!STREQ(got, l->digest))
            return e2b_error_set(err, E2B_ERR_INVALID,
                                 "image '%s': blob %s is corrupt (its content has digest %s)",
                                 img->source, l->digest, got);
    }
    return 0;
}

int e2b_image_open_local(const char *source, const struct e2b_image_opts *opts, struct e2b_image *ret,
                         struct e2b_error **err)
{
    static const struct e2b_image_opts none;
    const struct e2b_image_opts *o = opts ? opts : &none;
    memset(ret, 0, sizeof(*ret));
    if (!e2b_image_source_is_local(source))
        return e2b_error_set(err, E2B_ERR_USAGE, "'%s' is not a local image (oci:, oci-archive:, docker-archive:)",
                             source);
    const char *platform;
    if (e2b_platform_resolve(o->platform, &platform, err) < 0)
        return -1;
    const char *colon = strchr(source, ':');
    _cleanup_free_ char *transport = xstrndup(source, (size_t)(colon - source));
    const char *rest = colon + 1;
    const char *sep = strchr(rest, ':');
    _cleanup_free_ char *path = sep ? xstrndup(rest, (size_t)(sep - rest)) : xstrdup(rest);
    const char *ref = sep && sep[1] ? sep + 1 : NULL;
    if (!*path)
        return e2b_error_set(err, E2B_ERR_USAGE, "'%s': no path after '%s:'", source, transport);
    ret->source = xstrdup(source);
    ret->transport = xstrdup(transport);
    int r;
    if (STREQ(transport, "oci"))
        r = open_oci_dir(path, ref, source, platform, ret, err);
    else if (STREQ(transport, "oci-archive"))
        r = open_oci_archive(path, ref, source, o, platform, ret, err);
    else
        r = open_docker_archive(path, ref, source, o, ret, err);
    if (r == 0 && o->verify_layers)
        r = check_layers(ret, err);
    if (r < 0)
        e2b_image_release(ret);
    return r;
}

int e2b_image_from_pulled(const struct e2b_pulled_image *p, struct e2b_image *ret, struct e2b_error **err)
{
    memset(ret, 0, sizeof(*ret));
    const char *label = p->ref ? p->ref : "pulled image";
    ret->source = xstrdup(label);
    ret->transport = xstrdup("docker");
    ret->index_digest = p->index_digest ? xstrdup(p->index_digest) : NULL;
    ret->manifest_digest = p->manifest_digest ? xstrdup(p->manifest_digest) : NULL;
    ret->manifest_media_type = p->manifest_media_type ? xstrdup(p->manifest_media_type) : NULL;
    ret->platform = p->platform ? xstrdup(p->platform) : NULL;
    if (!p->config_digest || !e2b_digest_valid(p->config_digest) || !p->config_path) {
        e2b_image_release(ret);
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': no config blob", label);
    }
    ret->config_digest = xstrdup(p->config_digest);
    ret->layers = xcalloc(p->n_layers + 1, sizeof(*ret->layers));
    for (size_t i = 0; i < p->n_layers; i++) {
        struct e2b_image_layer *l = &ret->layers[ret->n_layers++];
        l->digest = xstrdup(p->layers[i].digest);
        l->media_type = p->layers[i].media_type ? xstrdup(p->layers[i].media_type) : NULL;
        l->size = p->layers[i].size;
        l->path = xstrdup(p->layers[i].path);
    }
    if (load_config(ret, p->config_path, -1, label, err) < 0 || match_diff_ids(ret, label, err) < 0) {
        e2b_image_release(ret);
        return -1;
    }
    return 0;
}

struct unpack_ctx {
    void (*progress)(const struct e2b_unpack_progress *p, void *ud);
    void *ud;
    struct e2b_unpack_progress p;
};

static void unpack_progress(uint64_t done, uint64_t total, void *ud)
{
    struct unpack_ctx *u = ud;
    u->p.done = done;
    u->p.total = total;
    u->progress(&u->p, u->ud);
}

int e2b_image_unpack(const struct e2b_image *img, const char *root,
                     void (*progress)(const struct e2b_unpack_progress *p, void *ud), void *ud,
                     struct e2b_error **err)
{
    struct unpack_ctx u = {.progress = progress, .ud = ud, .p.count = img->n_layers};
    for (size_t i = 0; i < img->n_layers; i++) {
        const struct e2b_image_layer *l = &img->layers[i];
        u.p.index = i;
        u.p.digest = l->digest;
        struct e2b_layer_opts lo = {
            .name = l->digest,
            .expect_digest = l->digest,
            .expect_diff_id = l->diff_id,
            .progress = progress ? unpack_progress : NULL,
            .ud = &u,
        };
        if (e2b_layer_apply(l->path, root, &lo, NULL, err) < 0)
            return e2b_error_wrap(err, "image '%s': layer %zu of %zu", img->source, i + 1, img->n_layers);
    }
    return 0;
}
