/* t-oci.c - local image sources: OCI layouts, oci-archive, docker-archive,
 * platform selection, digest checks, config parsing and unpacking. Fixtures
 * are written here (libarchive and tar); skopeo, when installed, converts
 * them to check that real tools' archives read the same. */
#include "envd-crypto.h"
#include "fsutil.h"
#include "json.h"
#include "oci.h"
#include "strbuf.h"
#include "tap.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

static char base[256];

static char *hexdigest(const void *data, size_t len)
{
    struct e2b_sha256 c;
    e2b_sha256_init(&c);
    e2b_sha256_update(&c, data, len);
    char *s = xmalloc(E2B_SHA256_DIGEST_SIZE);
    e2b_sha256_final_digest(&c, s);
    return s;
}

static char *pathf(const char *fmt, ...) _printf_(1, 2);
static char *pathf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

static void writef(const char *path, const void *data, size_t len)
{
    _cleanup_free_ char *dir = xstrdup(path);
    *strrchr(dir, '/') = 0;
    e2b_mkdir_p(dir, 0755, NULL);
    if (e2b_write_file_atomic(path, data, len, 0644, NULL) < 0)
        abort();
}

/* A layer: files "name=content" (content "" and name ending in '/' = dir,
 * name ".wh.x" = whiteout). filter "gzip" or NULL. Returns malloc'd bytes. */
static char *mklayer(const char *filter, const char *const *files, size_t *ret_len)
{
    size_t cap = 1 << 20, used = 0;
    char *buf = xmalloc(cap);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (filter)
        archive_write_add_filter_gzip(a);
    archive_write_open_memory(a, buf, cap, &used);
    for (const char *const *f = files; *f; f++) {
        const char *eq = strchr(*f, '=');
        _cleanup_free_ char *name = xstrndup(*f, (size_t)(eq - *f));
        const char *content = eq + 1;
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, name);
        archive_entry_set_mtime(e, 1700000000, 0);
        bool dir = name[strlen(name) - 1] == '/';
        archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
        archive_entry_set_perm(e, dir ? 0755 : 0644);
        archive_entry_set_size(e, dir ? 0 : (la_int64_t)strlen(content));
        archive_write_header(a, e);
        if (!dir)
            archive_write_data(a, content, strlen(content));
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    *ret_len = used;
    return buf;
}

/* Store a blob in DIR/blobs/sha256; returns its digest. */
static char *put_blob(const char *dir, const void *data, size_t len)
{
    char *d = hexdigest(data, len);
    _cleanup_free_ char *p = pathf("%s/blobs/sha256/%s", dir, d + 7);
    writef(p, data, len);
    return d;
}

struct built {
    char *manifest_digest;
    size_t manifest_size;
    char *config_digest;
    char *layer_digest[2];
    char *diff_id[2];
};

static void built_free(struct built *b)
{
    free(b->manifest_digest);
    free(b->config_digest);
    for (int i = 0; i < 2; i++) {
        free(b->layer_digest[i]);
        free(b->diff_id[i]);
    }
}

/* An image of two gzip layers in layout DIR; arch names the platform and a file. */
static void build_image(const char *dir, const char *arch, struct built *b)
{
    _cleanup_free_ char *archfile = pathf("arch=%s", arch);
    const char *l1[] = {"a=from layer 1", "d/", "d/x=x", "gone/", "gone/y=y", NULL};
    const char *l2[] = {".wh.a=", "b=from layer 2", ".wh.gone=", archfile, NULL};
    const char *const *ls[] = {l1, l2};
    for (int i = 0; i < 2; i++) {
        size_t tl, zl;
        _cleanup_free_ char *tar = mklayer(NULL, ls[i], &tl);
        _cleanup_free_ char *gz = mklayer("gzip", ls[i], &zl);
        b->diff_id[i] = hexdigest(tar, tl);
        b->layer_digest[i] = put_blob(dir, gz, zl);
    }
    json_t *cfg = json_pack(
        "{s:s, s:s, s:s, s:{s:[s,s], s:[s], s:[s,s], s:s, s:s, s:{s:{}, s:{}}, s:{s:{}}, s:{s:s, s:s}, s:s,"
        " s:{s:[s,s], s:I, s:I, s:I, s:i}}, s:{s:s, s:[s,s]}}",
        "architecture", arch, "os", "linux", "created", "2024-01-02T03:04:05Z", "config", "Env", "PATH=/usr/bin:/bin",
        "LANG=C.UTF-8", "Entrypoint", "/entry", "Cmd", "sh", "-c", "WorkingDir", "/work", "User", "1000:1000",
        "ExposedPorts", "80/tcp", "53/udp", "Volumes", "/data", "Labels", "org.example.a", "1", "maintainer", "me",
        "StopSignal", "SIGTERM", "Healthcheck", "Test", "CMD-SHELL", "curl -f localhost", "Interval",
        (json_int_t)30000000000LL, "Timeout", (json_int_t)5000000000LL, "StartPeriod", (json_int_t)1000000000LL,
        "Retries", 3, "rootfs", "type", "layers", "diff_ids", b->diff_id[0], b->diff_id[1]);
    if (!strcmp(arch, "arm64"))
        json_object_set_new(cfg, "variant", json_string("v8"));
    _cleanup_free_ char *cj = e2b_json_dump(cfg, 0);
    json_decref(cfg);
    b->config_digest = put_blob(dir, cj, strlen(cj));
    json_t *m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[{s:s, s:s, s:I}, {s:s, s:s, s:I}]}", "schemaVersion", 2,
                          "mediaType", E2B_MT_OCI_MANIFEST, "config", "mediaType", E2B_MT_OCI_CONFIG, "digest",
                          b->config_digest, "size", (json_int_t)strlen(cj), "layers", "mediaType",
                          E2B_MT_OCI_LAYER_GZIP, "digest", b->layer_digest[0], "size", (json_int_t)0, "mediaType",
                          E2B_MT_OCI_LAYER_GZIP, "digest", b->layer_digest[1], "size", (json_int_t)0);
    /* real sizes */
    for (int i = 0; i < 2; i++) {
        _cleanup_free_ char *p = pathf("%s/blobs/sha256/%s", dir, b->layer_digest[i] + 7);
        struct stat st;
        stat(p, &st);
        json_object_set_new(json_array_get(json_object_get(m, "layers"), (size_t)i), "size",
                            json_integer(st.st_size));
    }
    _cleanup_free_ char *mj = e2b_json_dump(m, 0);
    json_decref(m);
    b->manifest_digest = put_blob(dir, mj, strlen(mj));
    b->manifest_size = strlen(mj);
}

static void write_layout(const char *dir, json_t *manifests /* stolen */)
{
    _cleanup_free_ char *p = pathf("%s/oci-layout", dir);
    writef(p, "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
    json_t *ix = json_pack("{s:i, s:o}", "schemaVersion", 2, "manifests", manifests);
    _cleanup_free_ char *ij = e2b_json_dump(ix, 0);
    json_decref(ix);
    free(p);
    p = pathf("%s/index.json", dir);
    writef(p, ij, strlen(ij));
}

static json_t *desc(const char *mt, const char *digest, size_t size, const char *name, const char *arch)
{
    json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", digest, "size", (json_int_t)size);
    if (name)
        json_object_set_new(d, "annotations", json_pack("{s:s}", "org.opencontainers.image.ref.name", name));
    if (arch)
        json_object_set_new(d, "platform", json_pack("{s:s, s:s}", "os", "linux", "architecture", arch));
    return d;
}

static bool exists_in(const char *root, const char *rel)
{
    _cleanup_free_ char *p = pathf("%s/%s", root, rel);
    struct stat st;
    return lstat(p, &st) == 0;
}

static char *slurp_in(const char *root, const char *rel)
{
    _cleanup_free_ char *p = pathf("%s/%s", root, rel);
    char *d = NULL;
    size_t len;
    if (e2b_read_file(p, &d, &len, NULL) < 0)
        return NULL;
    return d;
}

/* Unpack into a fresh root and check the two-layer result. */
static void check_unpack(const struct e2b_image *img, const char *what, const char *arch)
{
    _cleanup_free_ char *root = pathf("%s/root", base);
    e2b_rm_rf(root, NULL);
    mkdir(root, 0755);
    _cleanup_error_ struct e2b_error *err = NULL;
    int rc = e2b_image_unpack(img, root, NULL, NULL, &err);
    ok(rc == 0, "%s: unpacks (%s)", what, err ? err->msg : "");
    _cleanup_free_ char *b = slurp_in(root, "b"), *x = slurp_in(root, "d/x"), *ar = slurp_in(root, "arch");
    ok(!exists_in(root, "a") && !exists_in(root, "gone") && b && !strcmp(b, "from layer 2") && x &&
           !strcmp(x, "x"),
       "%s: layers applied in order with whiteouts", what);
    is_str(ar, arch, "%s: the %s image", what, arch);
}

static int progress_calls;
static void on_progress(const struct e2b_unpack_progress *p, void *ud)
{
    (void)ud;
    if (p->count == 2 && p->done <= p->total)
        progress_calls++;
}

static void test_layout(void)
{
    _cleanup_free_ char *dir = pathf("%s/layout", base);
    struct built b = {0};
    build_image(dir, "amd64", &b);
    write_layout(dir, json_pack("[o]", desc(E2B_MT_OCI_MANIFEST, b.manifest_digest, b.manifest_size, "v1", NULL)));

    struct e2b_image_opts o = {.platform = "linux/amd64"};
    const char *srcs[] = {"", ":v1", ":@0"};
    for (size_t i = 0; i < ARRAY_SIZE(srcs); i++) {
        _cleanup_free_ char *src = pathf("oci:%s%s", dir, srcs[i]);
        struct e2b_image img;
        _cleanup_error_ struct e2b_error *err = NULL;
        int rc = e2b_image_open_local(src, &o, &img, &err);
        ok(rc == 0, "%s opens (%s)", src, err ? err->msg : "");
        if (rc < 0)
            continue;
        is_str(img.transport, "oci", "transport");
        is_str(img.manifest_digest, b.manifest_digest, "manifest digest");
        is_str(img.config_digest, b.config_digest, "config digest");
        is_int(img.n_layers, 2, "two layers");
        is_str(img.layers[0].digest, b.layer_digest[0], "layer 1 digest");
        is_str(img.layers[1].diff_id, b.diff_id[1], "layer 2 diff_id from the config");
        is_str(img.layers[0].media_type, E2B_MT_OCI_LAYER_GZIP, "layer media type");
        is_str(img.platform, "linux/amd64", "platform from the config");
        ok(img.config_json && strstr(img.config_json, "\"diff_ids\""), "raw config kept");
        if (i == 0) {
            struct e2b_image_config *c = &img.config;
            ok(c->env && !strcmp(c->env[0], "PATH=/usr/bin:/bin") && !strcmp(c->env[1], "LANG=C.UTF-8") && !c->env[2],
               "Env");
            ok(c->entrypoint && !strcmp(c->entrypoint[0], "/entry") && !c->entrypoint[1], "Entrypoint");
            ok(c->cmd && !strcmp(c->cmd[0], "sh") && !strcmp(c->cmd[1], "-c") && !c->cmd[2], "Cmd");
            is_str(c->working_dir, "/work", "WorkingDir");
            is_str(c->user, "1000:1000", "User");
            is_str(c->stop_signal, "SIGTERM", "StopSignal");
            ok(c->exposed_ports && !strcmp(c->exposed_ports[0], "80/tcp") && !strcmp(c->exposed_ports[1], "53/udp"),
               "ExposedPorts in order");
            ok(c->volumes && !strcmp(c->volumes[0], "/data"), "Volumes");
            ok(c->n_labels == 2 && !strcmp(c->labels[0].key, "org.example.a") && !strcmp(c->labels[1].value, "me"),
               "Labels");
            ok(c->has_healthcheck && !strcmp(c->healthcheck.test[0], "CMD-SHELL") &&
                   c->healthcheck.interval_ns == 30000000000LL && c->healthcheck.timeout_ns == 5000000000LL &&
                   c->healthcheck.start_period_ns == 1000000000LL && c->healthcheck.retries == 3,
               "Healthcheck");
            is_str(c->created, "2024-01-02T03:04:05Z", "created");
            json_t *j = e2b_image_config_to_json(c);
            _cleanup_free_ char *js = e2b_json_dump(j, JSON_SORT_KEYS);
            json_decref(j);
            ok(strstr(js, "\"workingDir\": \"/work\"") || strstr(js, "\"workingDir\":\"/work\""),
               "config to JSON: %s", js);
            progress_calls = 0;
            _cleanup_free_ char *root = pathf("%s/root", base);
            e2b_rm_rf(root, NULL);
            mkdir(root, 0755);
            ok(e2b_image_unpack(&img, root, on_progress, NULL, &err) == 0 && progress_calls >= 2,
               "unpack reports progress");
        }
        check_unpack(&img, src, "amd64");
        e2b_image_release(&img);
    }

    struct e2b_image img;
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_free_ char *bad = pathf("oci:%s:nope", dir);
    {
        int rc_ = e2b_image_open_local(bad, &o, &img, &err);
        ok(rc_ < 0 && err && strstr(err->msg, "no image named 'nope'") &&
               strstr(err->msg, "v1"),
       "unknown name lists the names: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);
    _cleanup_free_ char *bad2 = pathf("oci:%s:@5", dir);
    ok(e2b_image_open_local(bad2, &o, &img, &err) < 0 && err && err->code == E2B_ERR_NOT_FOUND, "@5 out of range");
    e2b_error_freep(&err);
    _cleanup_free_ char *bad3 = pathf("oci:%s/blobs", dir);
    {
        int rc_ = e2b_image_open_local(bad3, &o, &img, &err);
        ok(rc_ < 0 && err && strstr(err->msg, "not an OCI image layout"),
       "a directory without oci-layout: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);
    ok(e2b_image_open_local("oci:", &o, &img, &err) < 0 && err && err->code == E2B_ERR_USAGE, "no path");
    e2b_error_freep(&err);
    ok(e2b_image_open_local("debian:12", &o, &img, &err) < 0 && !e2b_image_source_is_local("debian:12") &&
           e2b_image_source_is_local("oci-archive:x") && e2b_image_source_is_local("docker-archive:/x:y"),
       "registry references are not local");
    e2b_error_freep(&err);
    struct e2b_image_opts badp = {.platform = "linux"};
    _cleanup_free_ char *good = pathf("oci:%s", dir);
    ok(e2b_image_open_local(good, &badp, &img, &err) < 0 && err, "bad platform refused");
    e2b_error_freep(&err);

    /* from what the registry puller fills */
    struct e2b_image_layer pl[2];
    for (int i = 0; i < 2; i++) {
        pl[i] = (struct e2b_image_layer){ 0 };
        pl[i].digest = b.layer_digest[i];
        pl[i].media_type = (char *)E2B_MT_OCI_LAYER_GZIP;
        pl[i].path = pathf("%s/blobs/sha256/%s", dir, b.layer_digest[i] + 7);
    }
    _cleanup_free_ char *cpath = pathf("%s/blobs/sha256/%s", dir, b.config_digest + 7);
    struct e2b_pulled_image p = {.ref = (char *)"127.0.0.1:5000/x:1", .manifest_digest = b.manifest_digest,
                                 .platform = (char *)"linux/amd64", .config_digest = b.config_digest,
                                 .config_path = cpath, .layers = pl, .n_layers = 2};
    int rc = e2b_image_from_pulled(&p, &img, &err);
    ok(rc == 0, "from a pulled image (%s)", err ? err->msg : "");
    if (rc == 0) {
        ok(!strcmp(img.transport, "docker") && img.layers[1].diff_id && !strcmp(img.layers[1].diff_id, b.diff_id[1]) &&
               img.config.cmd && !strcmp(img.config.cmd[0], "sh"),
           "pulled image: diff_ids and config");
        check_unpack(&img, "pulled image", "amd64");
        e2b_image_release(&img);
    }
    for (int i = 0; i < 2; i++)
        free(pl[i].path);

    /* corruption */
    _cleanup_free_ char *lpath = pathf("%s/blobs/sha256/%s", dir, b.layer_digest[1] + 7);
    _cleanup_free_ char *orig = NULL;
    size_t olen;
    e2b_read_file(lpath, &orig, &olen, NULL);
    _cleanup_free_ char *flipped = xmalloc(olen);
    memcpy(flipped, orig, olen);
    flipped[olen / 2] ^= 0x55;
    writef(lpath, flipped, olen);
    rc = e2b_image_open_local(good, &o, &img, &err);
    ok(rc == 0, "a corrupt layer of the right size opens");
    if (rc == 0) {
        _cleanup_free_ char *root = pathf("%s/root", base);
        e2b_rm_rf(root, NULL);
        mkdir(root, 0755);
        {
        int rc_ = e2b_image_unpack(&img, root, NULL, NULL, &err);
        ok(rc_ < 0 && err && strstr(err->msg, b.layer_digest[1]),
               "unpack names the corrupt layer: %s", err ? err->msg : "");
    }
        e2b_error_freep(&err);
        e2b_image_release(&img);
    }
    struct e2b_image_opts ov = {.platform = "linux/amd64", .verify_layers = true};
    {
        int rc_ = e2b_image_open_local(good, &ov, &img, &err);
        ok(rc_ < 0 && err && strstr(err->msg, "is corrupt") &&
               strstr(err->msg, b.layer_digest[1]),
       "verify_layers names it at open: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);
    writef(lpath, orig, olen);
    unlink(lpath);
    {
        int rc_ = e2b_image_open_local(good, &o, &img, &err);
        ok(rc_ < 0 && err && strstr(err->msg, "missing"),
       "a missing layer: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);
    writef(lpath, orig, olen);
    _cleanup_free_ char *cfgpath = pathf("%s/blobs/sha256/%s", dir, b.config_digest + 7);
    _cleanup_free_ char *cfg = NULL;
    size_t clen;
    e2b_read_file(cfgpath, &cfg, &clen, NULL);
    cfg[clen - 2] = cfg[clen - 2] == ']' ? ']' : cfg[clen - 2];
    _cleanup_free_ char *cfg2 = xstrdup(cfg);
    char *u = strstr(cfg2, "C.UTF-8");
    u[0] = 'D';
    writef(cfgpath, cfg2, clen);
    {
        int rc_ = e2b_image_open_local(good, &o, &img, &err);
        ok(rc_ < 0 && err && strstr(err->msg, b.config_digest) &&
               strstr(err->msg, "corrupt"),
       "a corrupt config is named: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);
    writef(cfgpath, cfg, clen);
    built_free(&b);
}

static void test_platforms(void)
{
    _cleanup_free_ char *dir = pathf("%s/multi", base);
    struct built amd = {0}, arm = {0};
    build_image(dir, "amd64", &amd);
    build_image(dir, "arm64", &arm);
    /* an image index blob, named by index.json */
    json_t *ia = desc(E2B_MT_OCI_MANIFEST, amd.manifest_digest, amd.manifest_size, NULL, "amd64");
    json_t *ib = desc(E2B_MT_OCI_MANIFEST, arm.manifest_digest, arm.manifest_size, NULL, "arm64");
    json_object_set_new(json_object_get(ib, "platform"), "variant", json_string("v8"));
    json_t *att = json_pack("{s:s, s:s, s:I, s:{s:s, s:s}}", "mediaType", E2B_MT_OCI_MANIFEST, "digest",
                            amd.config_digest, "size", (json_int_t)1, "platform", "os", "unknown", "architecture",
                            "unknown");
    json_t *idx = json_pack("{s:i, s:s, s:[o,o,o]}", "schemaVersion", 2, "mediaType", E2B_MT_OCI_INDEX, "manifests",
                            att, ia, ib);
    _cleanup_free_ char *ij = e2b_json_dump(idx, 0);
    json_decref(idx);
    _cleanup_free_ char *idigest = put_blob(dir, ij, strlen(ij));
    write_layout(dir, json_pack("[o]", desc(E2B_MT_OCI_INDEX, idigest, strlen(ij), "multi", NULL)));

    _cleanup_free_ char *src = pathf("oci:%s:multi", dir);
    struct e2b_image img;
    _cleanup_error_ struct e2b_error *err = NULL;
    struct e2b_image_opts o = {0};
    int rc = e2b_image_open_local(src, &o, &img, &err);
    ok(rc == 0, "index: host platform (%s)", err ? err->msg : "");
    if (rc == 0) {
#ifdef __x86_64__
        is_str(img.platform, "linux/amd64", "index: default is the host's");
        is_str(img.manifest_digest, amd.manifest_digest, "index: amd64 manifest");
#endif
        is_str(img.index_digest, idigest, "index digest kept");
        e2b_image_release(&img);
    }
    const char *arms[] = {"linux/arm64", "linux/arm64/v8"};
    for (int i = 0; i < 2; i++) {
        struct e2b_image_opts oa = {.platform = arms[i]};
        rc = e2b_image_open_local(src, &oa, &img, &err);
        ok(rc == 0 && !strcmp(img.manifest_digest, arm.manifest_digest) && !strcmp(img.platform, "linux/arm64/v8"),
           "index: %s picks arm64/v8", arms[i]);
        if (rc == 0) {
            check_unpack(&img, arms[i], "arm64");
            e2b_image_release(&img);
        }
    }
    struct e2b_image_opts os3 = {.platform = "linux/s390x"};
    {
        int rc_ = e2b_image_open_local(src, &os3, &img, &err);
        ok(rc_ < 0 && err && strstr(err->msg, "no linux/s390x image") &&
               strstr(err->msg, "linux/amd64, linux/arm64/v8"),
       "index: a missing platform lists what there is: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);

    /* a flat layout: two untagged manifests with platforms in index.json */
    _cleanup_free_ char *flat = pathf("%s/flat", base);
    struct built f1 = {0}, f2 = {0};
    build_image(flat, "amd64", &f1);
    build_image(flat, "arm64", &f2);
    json_t *fb = desc(E2B_MT_OCI_MANIFEST, f2.manifest_digest, f2.manifest_size, NULL, "arm64");
    write_layout(flat, json_pack("[o,o]", desc(E2B_MT_OCI_MANIFEST, f1.manifest_digest, f1.manifest_size, NULL,
                                                "amd64"), fb));
    _cleanup_free_ char *fsrc = pathf("oci:%s", flat);
    struct e2b_image_opts oa = {.platform = "linux/arm64"};
    rc = e2b_image_open_local(fsrc, &oa, &img, &err);
    ok(rc == 0 && !strcmp(img.manifest_digest, f2.manifest_digest), "flat layout: picked by platform (%s)",
       err ? err->msg : "");
    if (rc == 0)
        e2b_image_release(&img);
    /* and without platforms: a choice to make */
    write_layout(flat, json_pack("[o,o]", desc(E2B_MT_OCI_MANIFEST, f1.manifest_digest, f1.manifest_size, "one", NULL),
                                 desc(E2B_MT_OCI_MANIFEST, f2.manifest_digest, f2.manifest_size, "two", NULL)));
    {
        int rc_ = e2b_image_open_local(fsrc, &oa, &img, &err);
        ok(rc_ < 0 && err && strstr(err->msg, "holds 2 images") &&
               strstr(err->msg, "one, two"),
       "two untagged images: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);
    _cleanup_free_ char *two = pathf("oci:%s:two", flat);
    rc = e2b_image_open_local(two, &oa, &img, &err);
    ok(rc == 0 && !strcmp(img.manifest_digest, f2.manifest_digest), "...unless named");
    if (rc == 0)
        e2b_image_release(&img);
    built_free(&amd);
    built_free(&arm);
    built_free(&f1);
    built_free(&f2);
}

static int sh(const char *fmt, ...) _printf_(1, 2);
static int sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = NULL;
    if (vasprintf(&cmd, fmt, ap) < 0)
        abort();
    va_end(ap);
    int r = system(cmd);
    free(cmd);
    return r;
}

static int count_cache(const char *cache)
{
    _cleanup_free_ char *d = pathf("%s/sha256", cache);
    DIR *dir = opendir(d);
    int n = 0;
    struct dirent *de;
    while (dir && (de = readdir(dir)))
        if (de->d_name[0] != '.')
            n++;
    if (dir)
        closedir(dir);
    return n;
}

static void test_oci_archive(void)
{
    _cleanup_free_ char *dir = pathf("%s/layout", base); /* from test_layout */
    _cleanup_free_ char *file = pathf("%s/img.oci.tar", base);
    _cleanup_free_ char *cache = pathf("%s/cache", base);
    ok(sh("tar -C '%s' -cf '%s' .", dir, file) == 0, "oci-archive written with tar");
    struct e2b_image_opts o = {.platform = "linux/amd64", .cache_dir = cache};
    _cleanup_free_ char *src = pathf("oci-archive:%s:v1", file);
    struct e2b_image img;
    _cleanup_error_ struct e2b_error *err = NULL;
    int rc = e2b_image_open_local(src, &o, &img, &err);
    ok(rc == 0, "oci-archive opens (%s)", err ? err->msg : "");
    if (rc == 0) {
        _cleanup_free_ char *want = pathf("%s/sha256/%s", cache, img.layers[0].digest + 7);
        is_str(img.layers[0].path, want, "layers are read from the blob cache");
        is_str(img.transport, "oci-archive", "transport");
        check_unpack(&img, "oci-archive", "amd64");
        e2b_image_release(&img);
    }
    int n = count_cache(cache);
    ok(n == 4, "cache holds the 4 blobs, no temporary files (%d)", n);
    /* a second open finds them cached */
    rc = e2b_image_open_local(src, &o, &img, &err);
    ok(rc == 0 && count_cache(cache) == 4, "second open reuses the cache");
    if (rc == 0)
        e2b_image_release(&img);

    /* gzip-compressed archive, with a ./ prefix-less layout */
    _cleanup_free_ char *gzf = pathf("%s/img.oci.tar.gz", base);
    ok(sh("cd '%s' && tar -czf '%s' oci-layout index.json blobs", dir, gzf) == 0, "compressed oci-archive");
    _cleanup_free_ char *gsrc = pathf("oci-archive:%s", gzf);
    e2b_rm_rf(cache, NULL);
    rc = e2b_image_open_local(gsrc, &o, &img, &err);
    ok(rc == 0, "gzip'd oci-archive opens (%s)", err ? err->msg : "");
    if (rc == 0)
        e2b_image_release(&img);

    /* a blob whose content does not match its name */
    _cleanup_free_ char *bad = pathf("%s/bad-layout", base);
    ok(sh("cp -a '%s' '%s' && for f in '%s'/blobs/sha256/*; do if gzip -t \"$f\" 2>/dev/null; then "
          "echo junk >> \"$f\"; break; fi; done && tar -C '%s' -cf '%s/bad.oci.tar' .",
          dir, bad, bad, bad, base) == 0,
       "corrupt archive written");
    _cleanup_free_ char *bsrc = pathf("oci-archive:%s/bad.oci.tar", base);
    e2b_rm_rf(cache, NULL);
    {
        int rc_ = e2b_image_open_local(bsrc, &o, &img, &err);
        ok(rc_ < 0 && err && strstr(err->msg, "is corrupt"),
       "corrupt blob in an archive: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);
    ok(count_cache(cache) == 0 || count_cache(cache) < 4, "the corrupt blob is not cached");
    _cleanup_free_ char *nsrc = pathf("oci-archive:%s/nothere.tar", base);
    {
        int rc_ = e2b_image_open_local(nsrc, &o, &img, &err);
        ok(rc_ < 0 && err && err->code == E2B_ERR_NOT_FOUND,
       "missing archive: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);
    _cleanup_free_ char *nf = pathf("%s/notatar", base);
    writef(nf, "hello", 5);
    _cleanup_free_ char *nfsrc = pathf("oci-archive:%s", nf);
    {
        int rc_ = e2b_image_open_local(nfsrc, &o, &img, &err);
        ok(rc_ < 0 && err, "not a tar: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);
}

/* docker save layout: <id>/layer.tar (plain tars), <hex>.json config, manifest.json */
static void test_docker_archive(void)
{
    _cleanup_free_ char *dir = pathf("%s/dsave", base);
    _cleanup_free_ char *cache = pathf("%s/cache", base);
    e2b_rm_rf(cache, NULL);
    const char *l1[] = {"a=from layer 1", "d/", "d/x=x", "gone/", "gone/y=y", NULL};
    const char *l2[] = {".wh.a=", "b=from layer 2", ".wh.gone=", "arch=amd64", NULL};
    size_t n1, n2;
    _cleanup_free_ char *t1 = mklayer(NULL, l1, &n1), *t2 = mklayer(NULL, l2, &n2);
    _cleanup_free_ char *d1 = hexdigest(t1, n1), *d2 = hexdigest(t2, n2);
    _cleanup_free_ char *p1 = pathf("%s/1111/layer.tar", dir), *p2 = pathf("%s/2222/layer.tar", dir);
    writef(p1, t1, n1);
    writef(p2, t2, n2);
    _cleanup_free_ char *j1 = pathf("%s/1111/json", dir), *v1 = pathf("%s/1111/VERSION", dir);
    writef(j1, "{}", 2);
    writef(v1, "1.0", 3);
    json_t *cfg = json_pack("{s:s, s:s, s:{s:[s]}, s:{s:s, s:[s,s,s]}}", "architecture", "amd64", "os", "linux",
                            "config", "Cmd", "/bin/sh", "rootfs", "type", "layers", "diff_ids", d1, d2, d1);
    _cleanup_free_ char *cj = e2b_json_dump(cfg, 0);
    json_decref(cfg);
    _cleanup_free_ char *cd = hexdigest(cj, strlen(cj));
    _cleanup_free_ char *cp = pathf("%s/%s.json", dir, cd + 7);
    writef(cp, cj, strlen(cj));
    _cleanup_free_ char *cname = pathf("%s.json", cd + 7);
    /* the third layer repeats the first, as a symlink (docker save does this) */
    ok(sh("mkdir -p '%s/3333' && ln -s ../1111/layer.tar '%s/3333/layer.tar'", dir, dir) == 0, "symlinked layer");
    json_t *man = json_pack("[{s:s, s:[s,s], s:[s,s,s]}]", "Config", cname, "RepoTags", "busybox:latest",
                            "example.com/x/y:1", "Layers", "1111/layer.tar", "2222/layer.tar", "3333/layer.tar");
    _cleanup_free_ char *mj = e2b_json_dump(man, 0);
    json_decref(man);
    _cleanup_free_ char *mp = pathf("%s/manifest.json", dir);
    writef(mp, mj, strlen(mj));
    _cleanup_free_ char *file = pathf("%s/save.tar", base);
    ok(sh("tar -C '%s' -cf '%s' .", dir, file) == 0, "docker-archive written with tar");

    struct e2b_image_opts o = {.platform = "linux/amd64", .cache_dir = cache};
    const char *refs[] = {"", ":busybox:latest", ":docker.io/library/busybox", ":example.com/x/y:1", ":@0"};
    for (size_t i = 0; i < ARRAY_SIZE(refs); i++) {
        _cleanup_free_ char *src = pathf("docker-archive:%s%s", file, refs[i]);
        struct e2b_image img;
        _cleanup_error_ struct e2b_error *err = NULL;
        int rc = e2b_image_open_local(src, &o, &img, &err);
        ok(rc == 0, "%s opens (%s)", src, err ? err->msg : "");
        if (rc < 0)
            continue;
        ok(img.n_layers == 3 && !strcmp(img.layers[0].digest, d1) && !strcmp(img.layers[2].digest, d1) &&
               !strcmp(img.layers[1].diff_id, d2),
           "docker-archive: layer digests are the tars' (= diff_ids)");
        is_str(img.config_digest, cd, "docker-archive: config digest");
        ok(!img.manifest_digest, "docker-archive: no manifest");
        is_str(img.platform, "linux/amd64", "docker-archive: platform from config");
        ok(img.config.cmd && !strcmp(img.config.cmd[0], "/bin/sh"), "docker-archive: config parsed");
        is_str(img.layers[0].media_type, E2B_MT_OCI_LAYER, "docker-archive: media type from the content");
        if (i == 0) {
            _cleanup_free_ char *root = pathf("%s/root", base);
            e2b_rm_rf(root, NULL);
            mkdir(root, 0755);
            rc = e2b_image_unpack(&img, root, NULL, NULL, &err);
            ok(rc == 0, "docker-archive: unpacks (%s)", err ? err->msg : "");
            _cleanup_free_ char *a = slurp_in(root, "a");
            ok(a && !strcmp(a, "from layer 1") && exists_in(root, "b") && exists_in(root, "gone/y"),
               "docker-archive: the repeated layer brings back what layer 2 hid");
        }
        e2b_image_release(&img);
    }
    ok(count_cache(cache) == 3, "docker-archive: 2 layers and the config cached, legacy json/VERSION not (%d)",
       count_cache(cache));
    struct e2b_image img;
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_free_ char *bad = pathf("docker-archive:%s:alpine:3", file);
    {
        int rc_ = e2b_image_open_local(bad, &o, &img, &err);
        ok(rc_ < 0 && err && strstr(err->msg, "no image tagged 'alpine:3'") &&
               strstr(err->msg, "busybox:latest"),
       "docker-archive: unknown tag lists the tags: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);

    /* a layer that is not what the config's diff_ids say */
    _cleanup_free_ char *t2b = xmalloc(n2);
    memcpy(t2b, t2, n2);
    t2b[600] ^= 1; /* inside the first file's data */
    writef(p2, t2b, n2);
    ok(sh("tar -C '%s' -cf '%s' .", dir, file) == 0, "corrupt docker-archive written");
    _cleanup_free_ char *src = pathf("docker-archive:%s", file);
    {
        int rc_ = e2b_image_open_local(src, &o, &img, &err);
        ok(rc_ < 0 && err && strstr(err->msg, "corrupt") && strstr(err->msg, d2),
       "docker-archive: a layer not matching its diff_id is named: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);
    writef(p2, t2, n2);
    /* a config whose name is not its digest */
    _cleanup_free_ char *cj2 = xstrdup(cj);
    *strstr(cj2, "/bin/sh") = 'X';
    writef(cp, cj2, strlen(cj2));
    ok(sh("tar -C '%s' -cf '%s' .", dir, file) == 0, "docker-archive with a bad config written");
    {
        int rc_ = e2b_image_open_local(src, &o, &img, &err);
        ok(rc_ < 0 && err && strstr(err->msg, cd) && strstr(err->msg, "corrupt"),
       "docker-archive: a config not matching its name: %s", err ? err->msg : "");
    }
    e2b_error_freep(&err);
    writef(cp, cj, strlen(cj));
    ok(sh("tar -C '%s' -cf '%s' .", dir, file) == 0, "docker-archive restored");
}

/* Real tools' output: skopeo converts our layout to a docker-archive and an oci-archive. */
static void test_skopeo(void)
{
    if (sh("skopeo --version >/dev/null 2>&1") != 0) {
        ok(1, "# SKIP skopeo is not installed");
        return;
    }
    _cleanup_free_ char *dir = pathf("%s/layout", base);
    _cleanup_free_ char *cache = pathf("%s/cache", base);
    struct e2b_image_opts o = {.platform = "linux/amd64", .cache_dir = cache};
    /* transport, file, reference written, reference read */
    const char *dests[][4] = {{"docker-archive", "sk-docker.tar", ":e2b/test:v1", ""},
                              {"oci-archive", "sk-oci.tar", ":v9", ":v9"},
                              {"oci", "sk-oci-dir", ":v9", ":v9"}};
    for (size_t i = 0; i < ARRAY_SIZE(dests); i++) {
        _cleanup_free_ char *dst = pathf("%s:%s/%s%s", dests[i][0], base, dests[i][1], dests[i][2]);
        _cleanup_free_ char *rd = pathf("%s:%s/%s%s", dests[i][0], base, dests[i][1], dests[i][3]);
        int r = sh("skopeo --insecure-policy copy -q oci:%s:v1 %s >/dev/null 2>&1", dir, dst);
        ok(r == 0, "skopeo copy to %s", dst);
        if (r != 0)
            continue;
        struct e2b_image img;
        _cleanup_error_ struct e2b_error *err = NULL;
        int rc = e2b_image_open_local(rd, &o, &img, &err);
        ok(rc == 0, "skopeo's %s opens (%s)", rd, err ? err->msg : "");
        if (rc == 0) {
            ok(img.config.entrypoint && !strcmp(img.config.entrypoint[0], "/entry") && img.n_layers == 2,
               "skopeo's %s: config and layers", rd);
            check_unpack(&img, rd, "amd64");
            e2b_image_release(&img);
        }
    }
}

static void test_config_errors(void)
{
    struct e2b_image_config c;
    _cleanup_error_ struct e2b_error *err = NULL;
    const char *bad[] = {
        "[]", "{\"config\":{\"Env\":\"A=1\"}}", "{\"config\":{\"Cmd\":[1]}}", "{\"config\":{\"Labels\":{\"a\":1}}}",
        "{\"rootfs\":{\"diff_ids\":[\"md5:x\"]}}", "{\"config\":{\"Healthcheck\":{\"Retries\":\"3\"}}}", "{",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        {
        int rc_ = e2b_image_config_parse(bad[i], strlen(bad[i]), &c, &err);
        ok(rc_ < 0 && err, "bad config %s: %s", bad[i],
               err ? err->msg : "");
    }
        e2b_error_freep(&err);
    }
    const char *empty = "{\"config\":{\"Cmd\":[],\"Entrypoint\":null,\"WorkingDir\":\"\"}}";
    ok(e2b_image_config_parse(empty, strlen(empty), &c, &err) == 0 && c.cmd && !c.cmd[0] && !c.entrypoint &&
           !c.working_dir && !c.env,
       "empty Cmd is [], null Entrypoint is absent, empty WorkingDir is absent");
    e2b_image_config_release(&c);
}

int main(void)
{
    snprintf(base, sizeof(base), "/tmp/t-oci-%d", (int)getpid());
    mkdir(base, 0755);
    test_layout();
    test_platforms();
    test_oci_archive();
    test_docker_archive();
    test_skopeo();
    test_config_errors();
    e2b_rm_rf(base, NULL);
    return tap_done();
}
