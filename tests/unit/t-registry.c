/* t-registry.c - image references, sha256, registry credentials, and pulls
 * from a real registry.
 *
 * Offline checks always run. Pulls run when tests/e2e/t2100-registry-pull.sh
 * (which starts Debian's docker-registry and pushes images with skopeo) sets:
 *   E2B_TEST_REGISTRY=127.0.0.1:PORT      open registry with test/busybox:1 and test/multi:1
 *   E2B_TEST_DIGEST=sha256:..             manifest digest of test/busybox:1
 *   E2B_TEST_MULTI_AMD64, E2B_TEST_MULTI_ARM64  manifest digests inside test/multi:1
 *   E2B_TEST_REGISTRY_ROOT=DIR            its storage directory (to corrupt a blob)
 *   E2B_TEST_AUTH_REGISTRY=127.0.0.1:PORT htpasswd registry holding test/busybox:1
 *   E2B_TEST_AUTH=user:pass               its credentials
 *   E2B_TEST_TOKEN_REGISTRY=127.0.0.1:PORT  Bearer-token front (registry-fault.py token)
 *   E2B_TEST_CUT_REGISTRY=127.0.0.1:PORT  front that cuts blobs in half (registry-fault.py cut)
 *   E2B_TEST_FAULT_500=127.0.0.1:PORT     answers 500 to everything
 * `t-registry GROUP` runs only that group of pull tests.
 */
#include "fsutil.h"
#include "image-manifest.h"
#include "platform.h"
#include "imageref.h"
#include "json.h"
#include "registry.h"
#include "envd-crypto.h"
#include "strbuf.h"
#include "tap.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>

static char scratch[] = "/tmp/t-registry.XXXXXX";
static const char *only;

static bool want(const char *group, const char *env)
{
    if (only && !STREQ(only, group))
        return false;
    if (env && !getenv(env)) {
        if (only)
            ok(0, "%s: %s is not set", group, env);
        return false;
    }
    return true;
}

static void check_ref(const char *s, const char *domain, const char *host, const char *repo,
                      const char *tag, const char *digest)
{
    struct e2b_imageref r;
    struct e2b_error *err = NULL;
    int rc = e2b_imageref_parse(s, &r, &err);
    ok(rc == 0, "parse '%s'%s%s", s, err ? ": " : "", err ? err->msg : "");
    if (rc == 0) {
        is_str(r.domain, domain, "  domain");
        is_str(r.host, host, "  host");
        is_str(r.repo, repo, "  repo");
        is_str(r.tag, tag, "  tag");
        is_str(r.digest, digest, "  digest");
    }
    e2b_imageref_release(&r);
    e2b_error_free(err);
}

static void bad_ref(const char *s, const char *why)
{
    struct e2b_imageref r;
    struct e2b_error *err = NULL;
    _cleanup_free_ char *want_prefix = xasprintf("invalid image reference '%s': ", s);
    ok(e2b_imageref_parse(s, &r, &err) < 0 && err && err->code == E2B_ERR_INVALID &&
           e2b_str_has_prefix(err->msg, want_prefix) && strstr(err->msg, why),
       "reject '%s': %s", s, err ? err->msg : "(accepted)");
    e2b_error_free(err);
}

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void offline(void)
{
    check_ref("debian:12", "docker.io", "registry-1.docker.io", "library/debian", "12", NULL);
    check_ref("debian", "docker.io", "registry-1.docker.io", "library/debian", "latest", NULL);
    check_ref("library/debian", "docker.io", "registry-1.docker.io", "library/debian", "latest",
              NULL);
    check_ref("docker.io/foo/bar:v1.2-rc_3", "docker.io", "registry-1.docker.io", "foo/bar",
              "v1.2-rc_3", NULL);
    check_ref("index.docker.io/ubuntu", "docker.io", "registry-1.docker.io", "library/ubuntu",
              "latest", NULL);
    check_ref("127.0.0.1:5000/test/busybox:1", "127.0.0.1:5000", "127.0.0.1:5000", "test/busybox",
              "1", NULL);
    check_ref("localhost/a", "localhost", "localhost", "a", "latest", NULL);
    check_ref("ghcr.io/o/r/sub", "ghcr.io", "ghcr.io", "o/r/sub", "latest", NULL);
    check_ref("host:5000/repo@sha256:" H64, "host:5000", "host:5000", "repo", NULL,
              "sha256:" H64);
    check_ref("repo:tag@sha256:" H64, "docker.io", "registry-1.docker.io", "library/repo", "tag",
              "sha256:" H64);
    check_ref("[::1]:5000/a__b/c-d.e", "[::1]:5000", "[::1]:5000", "a__b/c-d.e", "latest", NULL);
    bad_ref("", "empty");
    bad_ref("Debian", "lowercase");
    bad_ref("foo/Bar", "lowercase");
    bad_ref("debian:", "empty tag");
    bad_ref("debian:.x", "tag may hold");
    bad_ref("a//b", "empty component");
    bad_ref("-a", "components");
    bad_ref("a_", "components");
    bad_ref("host:5000/", "no repository");
    bad_ref("host:99999/a", "port out of range");
    bad_ref("host:5x/a", "not a number");
    bad_ref("a@sha256:123", "64 lowercase hex");
    bad_ref("a@md5:" H64, "only sha256");
    bad_ref("a@sha256:" H64 "@x", "more than one");
    bad_ref("a b", "white space");
    _cleanup_free_ char *long_tag = xasprintf("a:%0129d", 0);
    bad_ref(long_tag, "128");
    struct e2b_imageref r;
    ok(e2b_imageref_parse("h:1/x:t@sha256:" H64, &r, NULL) == 0, "parse for format");
    _cleanup_free_ char *f = e2b_imageref_format(&r);
    is_str(f, "h:1/x:t@sha256:" H64, "format keeps tag and digest");
    is_str(e2b_imageref_target(&r), "sha256:" H64, "the digest is what is fetched");
    e2b_imageref_release(&r);

    ok(e2b_registry_is_loopback("127.0.0.1:5000") && e2b_registry_is_loopback("127.9.8.7") &&
           e2b_registry_is_loopback("localhost:1") && e2b_registry_is_loopback("[::1]:5000"),
       "loopback registries");
    ok(!e2b_registry_is_loopback("128.0.0.1") && !e2b_registry_is_loopback("example.com") &&
           !e2b_registry_is_loopback("[::2]:5000"), "others are not loopback");
    ok(e2b_platform_check("linux/amd64", NULL) == 0 && e2b_platform_check("linux/arm/v7", NULL) == 0,
       "platforms");
    struct e2b_error *err = NULL;
    ok(e2b_platform_check("amd64", &err) < 0 && err && strstr(err->msg, "os/arch"),
       "bad platform: %s", err ? err->msg : "");
    e2b_error_free(err), err = NULL;
    ok(e2b_platform_check("linux//x", NULL) < 0 && e2b_platform_check("a/b/c/d", NULL) < 0,
       "more bad platforms");
    struct e2b_pulled_image img;
    ok(e2b_registry_pull("Bad:ref", NULL, &img, &err) < 0 && err &&
           e2b_str_has_prefix(err->msg, "invalid image reference 'Bad:ref'"),
       "pull of a bad reference: %s", err ? err->msg : "");
    e2b_error_free(err), err = NULL;

    /* credentials: config.json, $DOCKER_CONFIG, containers/auth.json */
    _cleanup_free_ char *home = xasprintf("%s/home", scratch);
    _cleanup_free_ char *dconf = xasprintf("%s/.docker/config.json", home);
    setenv("HOME", home, 1);
    unsetenv("DOCKER_CONFIG");
    unsetenv("REGISTRY_AUTH_FILE");
    unsetenv("XDG_RUNTIME_DIR");
    char *u = NULL, *p = NULL;
    ok(e2b_registry_find_credentials("r.example:5000", NULL, &u, &p, &err) == 0 && !u && !p,
       "no config: no credentials");
    e2b_mkdir_p(home, 0700, NULL);
    _cleanup_free_ char *ddir = xasprintf("%s/.docker", home);
    e2b_mkdir_p(ddir, 0700, NULL);
    const char *cfg = "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"aHViOnNlY3JldA==\"},"
                      "\"r.example:5000\":{\"auth\":\"YWxpY2U6cGE6c3M=\"},"
                      "\"http://other.example/v2/\":{\"username\":\"bob\",\"password\":\"pw\"}}}";
    e2b_write_file_atomic(dconf, cfg, strlen(cfg), 0600, NULL);
    ok(e2b_registry_find_credentials("r.example:5000", NULL, &u, &p, &err) == 0, "config.json");
    is_str(u, "alice", "  user from base64 auth");
    is_str(p, "pa:ss", "  password keeps its colons");
    free(u), free(p);
    ok(e2b_registry_find_credentials("registry-1.docker.io", NULL, &u, &p, &err) == 0 && u &&
           STREQ(u, "hub") && STREQ(p, "secret"), "Docker Hub's index.docker.io/v1/ key");
    free(u), free(p);
    ok(e2b_registry_find_credentials("other.example", NULL, &u, &p, &err) == 0 && u &&
           STREQ(u, "bob") && STREQ(p, "pw"), "username/password fields, URL key");
    free(u), free(p);
    ok(e2b_registry_find_credentials("r.example", NULL, &u, &p, &err) == 0 && !u,
       "host without the port does not match");
    _cleanup_free_ char *xdg = xasprintf("%s/run", scratch);
    _cleanup_free_ char *cdir = xasprintf("%s/containers", xdg);
    _cleanup_free_ char *cfile = xasprintf("%s/auth.json", cdir);
    e2b_mkdir_p(cdir, 0700, NULL);
    const char *cfg2 = "{\"auths\":{\"r.example:5000\":{\"auth\":\"Y2Fyb2w6eA==\"}}}";
    e2b_write_file_atomic(cfile, cfg2, strlen(cfg2), 0600, NULL);
    setenv("XDG_RUNTIME_DIR", xdg, 1);
    ok(e2b_registry_find_credentials("r.example:5000", NULL, &u, &p, &err) == 0 && u &&
           STREQ(u, "carol"), "containers/auth.json comes first");
    free(u), free(p);
    unsetenv("XDG_RUNTIME_DIR");
    const char *bad = "{\"auths\":{\"r.example:5000\":{\"auth\":\"!!!\"}}}";
    e2b_write_file_atomic(dconf, bad, strlen(bad), 0600, NULL);
    ok(e2b_registry_find_credentials("r.example:5000", NULL, &u, &p, &err) < 0 && err &&
           strstr(err->msg, "base64"), "bad auth value: %s", err ? err->msg : "");
    e2b_error_free(err), err = NULL;
    e2b_write_file_atomic(dconf, "{", 1, 0600, NULL);
    ok(e2b_registry_find_credentials("r.example:5000", NULL, &u, &p, &err) < 0 && err &&
           strstr(err->msg, "config.json"), "broken config.json names itself: %s",
       err ? err->msg : "");
    e2b_error_free(err), err = NULL;
    unlink(dconf);
}

/* --- pulls --- */

struct prog_count {
    unsigned calls, cached, finished;
};

static void on_progress(const struct e2b_pull_progress *p, void *ud)
{
    struct prog_count *c = ud;
    c->calls++;
    if (p->cached)
        c->cached++;
    if (p->done == p->total)
        c->finished++;
}

static char *cache_dir(const char *name)
{
    return xasprintf("%s/cache-%s", scratch, name);
}

static bool file_has_digest(const char *path, const char *digest)
{
    _cleanup_free_ char *d = NULL;
    return e2b_blob_digest_file(path, &d, NULL) == 0 && STREQ(d, digest);
}

static int pull(const char *ref, const char *cache, const char *platform,
                struct e2b_pulled_image *img, struct e2b_error **err, struct prog_count *pc)
{
    struct e2b_registry_opts o = {.cache_dir = cache, .platform = platform,
                                  .progress = pc ? on_progress : NULL, .ud = pc,
                                  .connect_timeout_ms = 2000};
    return e2b_registry_pull(ref, &o, img, err);
}

static size_t count_partials(const char *cache)
{
    _cleanup_free_ char *d = xasprintf("%s/sha256", cache);
    _cleanup_closedir_ DIR *dir = opendir(d);
    size_t n = 0;
    for (struct dirent *e; dir && (e = readdir(dir));)
        n += e2b_str_has_suffix(e->d_name, ".partial");
    return n;
}

static void group_pull(const char *reg)
{
    const char *want_digest = getenv("E2B_TEST_DIGEST");
    _cleanup_free_ char *ref = xasprintf("%s/test/busybox:1", reg);
    _cleanup_free_ char *cache = cache_dir("a");
    struct e2b_pulled_image img;
    struct e2b_error *err = NULL;
    struct prog_count pc = {0};
    ok(pull(ref, cache, NULL, &img, &err, &pc) == 0, "pull by tag%s%s", err ? ": " : "",
       err ? err->msg : "");
    if (err)
        return e2b_error_free(err);
    if (want_digest)
        is_str(img.manifest_digest, want_digest, "manifest digest");
    is_str(img.manifest_media_type, E2B_MT_OCI_MANIFEST, "OCI manifest");
    ok(img.index_digest == NULL, "not from an index");
    is_str(img.platform, "linux/amd64", "platform");
    _cleanup_free_ char *full = xasprintf("%s/test/busybox:1", reg);
    is_str(img.ref, full, "full reference");
    is_int(img.n_layers, 2, "two layers");
    is_int(img.blobs_downloaded, 3, "config and layers downloaded");
    bool all = file_has_digest(img.config_path, img.config_digest);
    for (size_t i = 0; i < img.n_layers; i++) {
        struct stat st;
        all = all && file_has_digest(img.layers[i].path, img.layers[i].digest) &&
              stat(img.layers[i].path, &st) == 0 && st.st_size == img.layers[i].size &&
              STREQ(img.layers[i].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
        _cleanup_free_ char *where = xasprintf("%s/sha256/%s", cache, img.layers[i].digest + 7);
        all = all && STREQ(where, img.layers[i].path);
    }
    ok(all, "config and layers in the cache by digest, verified");
    _cleanup_json_ json_t *cfg = NULL;
    ok(e2b_json_load_file(img.config_path, &cfg, NULL) == 0 &&
           STREQ(e2b_json_str(cfg, "architecture"), "amd64"), "config blob is the image config");
    _cleanup_free_ char *mpath = xasprintf("%s/man", scratch);
    e2b_write_file_atomic(mpath, img.manifest, img.manifest_len, 0644, NULL);
    ok(file_has_digest(mpath, img.manifest_digest), "manifest bytes match the digest");
    ok(pc.calls >= 3 && pc.finished == 3 && pc.cached == 0, "progress: %u calls, %u finished",
       pc.calls, pc.finished);
    ok(count_partials(cache) == 0, "no partial files left");
    e2b_pulled_image_release(&img);

    /* the same image again: nothing is downloaded */
    struct stat before, after;
    _cleanup_free_ char *cfgpath = NULL;
    pc = (struct prog_count){0};
    ok(pull(ref, cache, NULL, &img, &err, &pc) == 0, "second pull");
    if (err)
        return e2b_error_free(err);
    cfgpath = xstrdup(img.layers[0].path);
    stat(cfgpath, &before);
    is_int(img.blobs_downloaded, 0, "second pull downloads no blob");
    is_int(img.bytes_downloaded, 0, "  and no bytes");
    is_int(pc.cached, 3, "progress reports three cached blobs");
    e2b_pulled_image_release(&img);
    ok(pull(ref, cache, NULL, &img, &err, NULL) == 0 && stat(cfgpath, &after) == 0 &&
           before.st_mtime == after.st_mtime && before.st_ino == after.st_ino,
       "cached blob files are untouched");
    e2b_pulled_image_release(&img);
    e2b_error_free(err);
}

static void group_digest(const char *reg)
{
    const char *d = getenv("E2B_TEST_DIGEST");
    _cleanup_free_ char *ref = xasprintf("%s/test/busybox@%s", reg, d);
    _cleanup_free_ char *ref2 = xasprintf("%s/test/busybox:1@%s", reg, d);
    _cleanup_free_ char *cache = cache_dir("digest");
    struct e2b_pulled_image img;
    struct e2b_error *err = NULL;
    ok(pull(ref, cache, NULL, &img, &err, NULL) == 0, "pull by digest%s%s", err ? ": " : "",
       err ? err->msg : "");
    if (err)
        return e2b_error_free(err);
    is_str(img.manifest_digest, d, "  manifest digest");
    is_int(img.blobs_downloaded, 3, "  blobs downloaded");
    e2b_pulled_image_release(&img);
    ok(pull(ref2, cache, NULL, &img, &err, NULL) == 0 && STREQ(img.manifest_digest, d) &&
           img.blobs_downloaded == 0, "repo:tag@digest, from the cache");
    e2b_pulled_image_release(&img);
    e2b_error_free(err);
    err = NULL;
    _cleanup_free_ char *wrong = xasprintf("%s/test/busybox@sha256:" H64, reg);
    ok(pull(wrong, cache, NULL, &img, &err, NULL) < 0 && err && err->code == E2B_ERR_NOT_FOUND,
       "unknown digest: %s", err ? err->msg : "");
    e2b_error_free(err);
}

static void group_multi(const char *reg)
{
    _cleanup_free_ char *ref = xasprintf("%s/test/multi:1", reg);
    _cleanup_free_ char *cache = cache_dir("multi");
    struct e2b_pulled_image img;
    struct e2b_error *err = NULL;
    ok(pull(ref, cache, NULL, &img, &err, NULL) == 0, "pull an index%s%s", err ? ": " : "",
       err ? err->msg : "");
    if (err)
        return e2b_error_free(err);
    ok(img.index_digest != NULL, "  came from an index");
    is_str(img.manifest_digest, getenv("E2B_TEST_MULTI_AMD64"), "  default platform linux/amd64");
    is_str(img.platform, "linux/amd64", "  platform named");
    _cleanup_json_ json_t *cfg = NULL;
    e2b_json_load_file(img.config_path, &cfg, NULL);
    is_str(e2b_json_str(cfg, "architecture"), "amd64", "  amd64 config");
    e2b_pulled_image_release(&img);
    ok(pull(ref, cache, "linux/arm64", &img, &err, NULL) == 0, "--platform linux/arm64%s%s",
       err ? ": " : "", err ? err->msg : "");
    if (err)
        return e2b_error_free(err);
    is_str(img.manifest_digest, getenv("E2B_TEST_MULTI_ARM64"), "  arm64 manifest");
    is_str(img.platform, "linux/arm64/v8", "  with its variant");
    e2b_pulled_image_release(&img);
    ok(pull(ref, cache, "linux/arm64/v8", &img, &err, NULL) == 0 &&
           STREQ(img.manifest_digest, getenv("E2B_TEST_MULTI_ARM64")), "linux/arm64/v8");
    e2b_pulled_image_release(&img);
    ok(pull(ref, cache, "linux/s390x", &img, &err, NULL) < 0 && err &&
           err->code == E2B_ERR_NOT_FOUND && strstr(err->msg, "linux/s390x") &&
           strstr(err->msg, "linux/amd64") && strstr(err->msg, "linux/arm64/v8"),
       "no such platform, available ones listed: %s", err ? err->msg : "");
    e2b_error_free(err), err = NULL;
    ok(pull(ref, cache, "linux/arm64/v7", &img, &err, NULL) < 0 && err, "wrong variant refused");
    e2b_error_free(err);
}

static void group_resume(const char *reg)
{
    _cleanup_free_ char *ref = xasprintf("%s/test/busybox:1", reg);
    _cleanup_free_ char *src = cache_dir("a"), *cache = cache_dir("resume");
    struct e2b_pulled_image img;
    struct e2b_error *err = NULL;
    ok(pull(ref, src, NULL, &img, &err, NULL) == 0, "pull to find the blobs");
    if (err)
        return e2b_error_free(err);
    /* Seed the new cache with the first half of the biggest layer. */
    size_t big = img.layers[0].size >= img.layers[1].size ? 0 : 1;
    int64_t size = img.layers[big].size;
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    e2b_read_file(img.layers[big].path, &data, &len, NULL);
    _cleanup_free_ char *dir = xasprintf("%s/sha256", cache);
    e2b_mkdir_p(dir, 0755, NULL);
    _cleanup_free_ char *partial = xasprintf("%s/%s.partial", dir, img.layers[big].digest + 7);
    e2b_write_file_atomic(partial, data, len / 2, 0644, NULL);
    e2b_pulled_image_release(&img);
    ok(pull(ref, cache, NULL, &img, &err, NULL) == 0, "pull resumes a partial blob%s%s",
       err ? ": " : "", err ? err->msg : "");
    if (err)
        return e2b_error_free(err);
    int64_t others = 0;
    struct stat st;
    stat(img.config_path, &st);
    others += st.st_size;
    others += img.layers[1 - big].size;
    is_int(img.bytes_downloaded, others + (size - (int64_t)len / 2),
           "  only the missing half was downloaded (Range)");
    ok(file_has_digest(img.layers[big].path, img.layers[big].digest), "  resumed blob verified");
    ok(access(partial, F_OK) < 0, "  partial renamed");
    e2b_pulled_image_release(&img);

    /* A partial holding the wrong bytes: the whole is checked at the end. */
    _cleanup_free_ char *cache2 = cache_dir("resume-bad");
    _cleanup_free_ char *dir2 = xasprintf("%s/sha256", cache2);
    e2b_mkdir_p(dir2, 0755, NULL);
    _cleanup_free_ char *partial2 = xasprintf("%s/%s", dir2, strrchr(partial, '/') + 1);
    memset(data, 'x', len / 2);
    e2b_write_file_atomic(partial2, data, len / 2, 0644, NULL);
    ok(pull(ref, cache2, NULL, &img, &err, NULL) < 0 && err && err->code == E2B_ERR_INVALID &&
           strstr(err->msg, "does not match its digest"),
       "a corrupt partial fails the digest check: %s", err ? err->msg : "");
    ok(access(partial2, F_OK) < 0, "  and is removed");
    e2b_error_free(err), err = NULL;
    ok(pull(ref, cache2, NULL, &img, &err, NULL) == 0, "  the next pull succeeds");
    e2b_pulled_image_release(&img);
    e2b_error_free(err);
}

static void group_cut(const char *front)
{
    /* The front sends half of each blob and hangs up; a second pull resumes. */
    _cleanup_free_ char *ref = xasprintf("%s/test/busybox:1", front);
    _cleanup_free_ char *cache = cache_dir("cut");
    struct e2b_pulled_image img;
    struct e2b_error *err = NULL;
    ok(pull(ref, cache, NULL, &img, &err, NULL) < 0 && err && err->code == E2B_ERR_NETWORK,
       "connection cut mid-blob: %s", err ? err->msg : "(no error)");
    ok(err && strstr(err->msg, "kept to resume"), "  the message says the bytes were kept");
    e2b_error_free(err), err = NULL;
    ok(count_partials(cache) == 1, "  one partial blob kept");
    /* Now the front passes Range requests through: resume them all. */
    int rounds = 0;
    int rc;
    while ((rc = pull(ref, cache, NULL, &img, &err, NULL)) < 0 && rounds++ < 5) {
        e2b_error_free(err), err = NULL;
    }
    ok(rc == 0, "pulls resume until complete (%d cut retries)%s%s", rounds, err ? ": " : "",
       err ? err->msg : "");
    if (rc == 0) {
        ok(count_partials(cache) == 0, "  no partial left");
        ok(file_has_digest(img.layers[0].path, img.layers[0].digest) &&
               file_has_digest(img.layers[1].path, img.layers[1].digest), "  blobs verified");
        e2b_pulled_image_release(&img);
    }
    e2b_error_free(err);
}

static void corrupt(const char *root, const char *digest, bool undo)
{
    _cleanup_free_ char *p = xasprintf("%s/docker/registry/v2/blobs/sha256/%.2s/%s/data", root,
                                       digest + 7, digest + 7);
    int fd = open(p, O_RDWR);
    char c;
    if (fd < 0 || pread(fd, &c, 1, 10) != 1) {
        ok(0, "cannot open %s", p);
        if (fd >= 0)
            close(fd);
        return;
    }
    c ^= 0x55;
    ok(pwrite(fd, &c, 1, 10) == 1, "%s one byte of %s in the registry's storage",
       undo ? "restore" : "corrupt", digest);
    close(fd);
}

static void group_mismatch(const char *reg)
{
    const char *root = getenv("E2B_TEST_REGISTRY_ROOT");
    _cleanup_free_ char *ref = xasprintf("%s/test/busybox:1", reg);
    _cleanup_free_ char *src = cache_dir("a"), *cache = cache_dir("mismatch");
    struct e2b_pulled_image img;
    struct e2b_error *err = NULL;
    ok(pull(ref, src, NULL, &img, &err, NULL) == 0, "pull to find the blobs");
    if (err)
        return e2b_error_free(err);
    _cleanup_free_ char *digest = xstrdup(img.layers[1].digest);
    e2b_pulled_image_release(&img);
    corrupt(root, digest, false);
    ok(pull(ref, cache, NULL, &img, &err, NULL) < 0 && err && err->code == E2B_ERR_INVALID &&
           strstr(err->msg, digest) && strstr(err->msg, "does not match its digest"),
       "corrupt blob: %s", err ? err->msg : "(no error)");
    e2b_error_free(err), err = NULL;
    _cleanup_free_ char *final = xasprintf("%s/sha256/%s", cache, digest + 7);
    ok(count_partials(cache) == 0 && access(final, F_OK) < 0, "  nothing of it is left");
    corrupt(root, digest, true);
    ok(pull(ref, cache, NULL, &img, &err, NULL) == 0, "  fine again once repaired");
    e2b_pulled_image_release(&img);
    e2b_error_free(err);
}

static void group_notfound(const char *reg)
{
    const char *refs[] = {"test/nope:1", "test/busybox:2"};
    _cleanup_free_ char *cache = cache_dir("nf");
    for (size_t i = 0; i < ARRAY_SIZE(refs); i++) {
        _cleanup_free_ char *ref = xasprintf("%s/%s", reg, refs[i]);
        _cleanup_free_ char *want_msg = xasprintf("image '%s' not found in registry %s", ref, reg);
        struct e2b_pulled_image img;
        struct e2b_error *err = NULL;
        ok(pull(ref, cache, NULL, &img, &err, NULL) < 0 && err && err->code == E2B_ERR_NOT_FOUND &&
               STREQ(err->msg, want_msg), "404: %s", err ? err->msg : "(no error)");
        e2b_error_free(err);
    }
}

static void write_docker_config(const char *home, const char *creds, const char *reg)
{
    _cleanup_free_ char *d = xasprintf("%s/.docker", home);
    _cleanup_free_ char *f = xasprintf("%s/config.json", d);
    e2b_mkdir_p(d, 0700, NULL);
    _cleanup_free_ char *b = e2b_base64_encode(creds, strlen(creds), true);
    _cleanup_free_ char *json = xasprintf("{\"auths\":{\"%s\":{\"auth\":\"%s\"}}}", reg, b);
    e2b_write_file_atomic(f, json, strlen(json), 0600, NULL);
}

static void auth_tests(const char *what, const char *reg, const char *creds)
{
    _cleanup_free_ char *ref = xasprintf("%s/test/busybox:1", reg);
    _cleanup_free_ char *home = xasprintf("%s/home-%s", scratch, what);
    _cleanup_free_ char *cache = xasprintf("%s/cache-%s", scratch, what);
    setenv("HOME", home, 1);
    unsetenv("DOCKER_CONFIG");
    unsetenv("REGISTRY_AUTH_FILE");
    unsetenv("XDG_RUNTIME_DIR");
    struct e2b_pulled_image img;
    struct e2b_error *err = NULL;
    ok(pull(ref, cache, NULL, &img, &err, NULL) < 0 && err && err->code == E2B_ERR_AUTH &&
           strstr(err->msg, "needs credentials") && strstr(err->msg, reg),
       "%s: no credentials: %s", what, err ? err->msg : "(no error)");
    e2b_error_free(err), err = NULL;
    write_docker_config(home, "user:wrong", reg);
    ok(pull(ref, cache, NULL, &img, &err, NULL) < 0 && err && err->code == E2B_ERR_AUTH &&
           strstr(err->msg, "refused the credentials") && strstr(err->msg, "'user'"),
       "%s: wrong password: %s", what, err ? err->msg : "(no error)");
    e2b_error_free(err), err = NULL;
    write_docker_config(home, creds, reg);
    ok(pull(ref, cache, NULL, &img, &err, NULL) == 0 && img.n_layers == 2,
       "%s: credentials from ~/.docker/config.json%s%s", what, err ? ": " : "",
       err ? err->msg : "");
    e2b_pulled_image_release(&img);
    e2b_error_free(err), err = NULL;
    /* $DOCKER_CONFIG is used instead of ~/.docker */
    _cleanup_free_ char *alt = xasprintf("%s/alt", home);
    write_docker_config(alt, creds, reg);
    _cleanup_free_ char *altdir = xasprintf("%s/.docker", alt);
    setenv("DOCKER_CONFIG", altdir, 1);
    write_docker_config(home, "user:wrong", reg);
    _cleanup_free_ char *cache2 = xasprintf("%s/cache-%s-2", scratch, what);
    ok(pull(ref, cache2, NULL, &img, &err, NULL) == 0, "%s: $DOCKER_CONFIG%s%s", what,
       err ? ": " : "", err ? err->msg : "");
    e2b_pulled_image_release(&img);
    e2b_error_free(err), err = NULL;
    unsetenv("DOCKER_CONFIG");
}

static void group_auth(void)
{
    auth_tests("basic", getenv("E2B_TEST_AUTH_REGISTRY"), getenv("E2B_TEST_AUTH"));
}

static void group_token(void)
{
    auth_tests("token", getenv("E2B_TEST_TOKEN_REGISTRY"), getenv("E2B_TEST_AUTH"));
}

static void group_fault(void)
{
    const char *reg = getenv("E2B_TEST_FAULT_500");
    _cleanup_free_ char *ref = xasprintf("%s/test/busybox:1", reg);
    _cleanup_free_ char *cache = cache_dir("fault");
    _cleanup_free_ char *want_msg = xasprintf("registry %s said 500", reg);
    struct e2b_pulled_image img;
    struct e2b_error *err = NULL;
    ok(pull(ref, cache, NULL, &img, &err, NULL) < 0 && err && err->code == E2B_ERR_API &&
           strstr(err->msg, want_msg) && strstr(err->msg, "injected failure") &&
           err->http_status == 500,
       "500: %s", err ? err->msg : "(no error)");
    e2b_error_free(err);
}

static void group_network(void)
{
    /* a port nothing listens on: bind one, read its number, close it */
    struct e2b_pulled_image img;
    struct e2b_error *err = NULL;
    _cleanup_free_ char *cache = cache_dir("net");
    ok(pull("127.0.0.1:9/test/x:1", cache, NULL, &img, &err, NULL) < 0 && err &&
           err->code == E2B_ERR_NETWORK && strstr(err->msg, "cannot pull '127.0.0.1:9/test/x:1'") &&
           strstr(err->msg, "cannot reach"),
       "nothing listening: %s", err ? err->msg : "(no error)");
    e2b_error_free(err);
}

static void group_datadir(const char *reg)
{
    /* no cache_dir: blobs go to <e2b_data_dir()>/cache/blobs, shared by every pull */
    _cleanup_free_ char *ref = xasprintf("%s/test/busybox:1", reg);
    _cleanup_free_ char *dir = e2b_blob_cache_dir();
    _cleanup_free_ char *want_prefix = xasprintf("%s/sha256/", dir);
    struct e2b_pulled_image img;
    struct e2b_error *err = NULL;
    ok(e2b_registry_pull(ref, NULL, &img, &err) == 0 &&
           e2b_str_has_prefix(img.layers[0].path, want_prefix),
       "default cache under the data dir (%s)%s%s", dir, err ? ": " : "", err ? err->msg : "");
    if (!err) {
        e2b_pulled_image_release(&img);
        ok(e2b_registry_pull(ref, NULL, &img, &err) == 0 && img.blobs_downloaded == 0,
           "  reused by the next pull");
        e2b_pulled_image_release(&img);
    }
    e2b_error_free(err);
}

int main(int argc, char **argv)
{
    only = argc > 1 ? argv[1] : NULL;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!mkdtemp(scratch))
        return 1;
    if (!only)
        offline();
    const char *reg = getenv("E2B_TEST_REGISTRY");
    if (want("pull", "E2B_TEST_REGISTRY"))
        group_pull(reg);
    if (want("digest", "E2B_TEST_DIGEST"))
        group_digest(reg);
    if (want("multi", "E2B_TEST_MULTI_AMD64"))
        group_multi(reg);
    if (want("resume", "E2B_TEST_REGISTRY"))
        group_resume(reg);
    if (want("cut", "E2B_TEST_CUT_REGISTRY"))
        group_cut(getenv("E2B_TEST_CUT_REGISTRY"));
    if (want("mismatch", "E2B_TEST_REGISTRY_ROOT"))
        group_mismatch(reg);
    if (want("notfound", "E2B_TEST_REGISTRY"))
        group_notfound(reg);
    if (want("auth", "E2B_TEST_AUTH_REGISTRY"))
        group_auth();
    if (want("token", "E2B_TEST_TOKEN_REGISTRY"))
        group_token();
    if (want("fault", "E2B_TEST_FAULT_500"))
        group_fault();
    if (only && STREQ(only, "datadir") && want("datadir", "E2B_TEST_REGISTRY"))
        group_datadir(reg);
    if (want("network", NULL))
        group_network();
    e2b_rm_rf(scratch, NULL);
    return tap_done();
}
