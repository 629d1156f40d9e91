/* registry.c - see registry.h */
#include "registry.h"
#include "config.h"
#include "fsutil.h"
#include "http.h"
#include "image-manifest.h"
#include "imageref.h"
#include "json.h"
#include "platform.h"
#include "envd-crypto.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#define MANIFEST_MAX (4u << 20)  /* the distribution spec lets registries refuse more */
#define TOKEN_MAX (1u << 20)

struct session {
    const struct e2b_registry_opts *o;
    const char *display;        /* the reference as given, for messages */
    const char *host;           /* API host[:port] */
    const char *repo;
    char *base;                 /* "https://host[:port]" */
    bool plain_http;
    char *cache;                /* <cache dir>/sha256 */
    char *auth;                 /* "Authorization: ..." once known */
    bool creds_looked_up;
    char *user, *pass;
    bool used_creds;            /* the current auth carries the credentials */
    struct e2b_pulled_image *img;
};

static void session_release(struct session *s)
{
    free(s->base);
    free(s->cache);
    free(s->auth);
    free(s->user);
    if (s->pass)
        explicit_bzero(s->pass, strlen(s->pass));
    free(s->pass);
}

/* --- small helpers --- */

bool e2b_registry_is_loopback(const char *host)
{
    _cleanup_free_ char *h = NULL;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        h = close ? xstrndup(host + 1, (size_t)(close - host - 1)) : xstrdup(host);
    } else {
        const char *colon = strchr(host, ':');
        h = colon ? xstrndup(host, (size_t)(colon - host)) : xstrdup(host);
    }
    if (strcasecmp(h, "localhost") == 0)
        return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, h, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

static bool is_insecure(const char *host, const char *const *list)
{
    if (e2b_registry_is_loopback(host))
        return true;
    for (const char *const *p = list; p && *p; p++) {
        if (strcasecmp(*p, host) == 0)
            return true;
        /* "host" also covers "host:port" */
        size_t n = strlen(*p);
        if (!strchr(*p, ':') && strncasecmp(*p, host, n) == 0 && host[n] == ':')
            return true;
    }
    return false;
}

char *e2b_blob_cache_dir(void)
{
    _cleanup_free_ char *data = e2b_data_dir();
    return xasprintf("%s/cache/blobs", data);
}

/* Hash what a file holds (its first len bytes) into c. */
static int hash_fd(int fd, uint64_t len, struct e2b_sha256 *c)
{
    char buf[65536];
    uint64_t off = 0;
    while (off < len) {
        ssize_t n = pread(fd, buf, len - off < sizeof(buf) ? (size_t)(len - off) : sizeof(buf),
                          (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        e2b_sha256_update(c, buf, (size_t)n);
        off += (uint64_t)n;
    }
    return 0;
}

int e2b_blob_digest_file(const char *path, char **ret_digest, struct e2b_error **err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return e2b_error_sys(err, errno, "cannot open '%s'", path);
    struct e2b_sha256 c;
    e2b_sha256_init(&c);
    if (hash_fd(fd, (uint64_t)st.st_size, &c) < 0)
        return e2b_error_sys(err, errno ? errno : EIO, "cannot read '%s'", path);
    char hex[E2B_SHA256_HEX_SIZE];
    e2b_sha256_final_hex(&c, hex);
    *ret_digest = xasprintf("sha256:%s", hex);
    return 0;
}

/* --- credentials --- */

/* "https://index.docker.io/v1/" -> "index.docker.io" */
static char *normalize_auth_key(const char *key)
{
    const char *k = key;
    if (e2b_str_has_prefix(k, "https://"))
        k += 8;
    else if (e2b_str_has_prefix(k, "http://"))
        k += 7;
    size_t n = strcspn(k, "/");
    return xstrndup(k, n);
}

static bool auth_key_matches(const char *key, const char *registry)
{
    _cleanup_free_ char *k = normalize_auth_key(key);
    if (strcasecmp(k, registry) == 0)
        return true;
    static const char *const hub[] = {"docker.io", "index.docker.io", "registry-1.docker.io"};
    bool k_hub = false, r_hub = false;
    for (size_t i = 0; i < ARRAY_SIZE(hub); i++) {
        k_hub |= strcasecmp(k, hub[i]) == 0;
        r_hub |= strcasecmp(registry, hub[i]) == 0;
    }
    return k_hub && r_hub;
}

/* 1 and credentials when `path` has an entry for registry, 0 when not (or no file). */
static int creds_from_file(const char *path, const char *registry, char **ret_user, char **ret_pass,
                           struct e2b_error **err)
{
    if (access(path, F_OK) < 0)
        return 0;
    _cleanup_json_ json_t *j = NULL;
    if (e2b_json_load_file(path, &j, err) < 0)
        return -1;
    json_t *auths = json_object_get(j, "auths");
    if (!auths)
        return 0;
    if (!json_is_object(auths))
        return e2b_error_set(err, E2B_ERR_INVALID, "%s: \"auths\" is not an object", path);
    const char *key;
    json_t *entry;
    json_object_foreach(auths, key, entry) {
        if (!auth_key_matches(key, registry) || !json_is_object(entry))
            continue;
        const char *auth = e2b_json_str(entry, "auth");
        if (auth && *auth) {
            _cleanup_free_ uint8_t *raw = NULL;
            ssize_t rawlen = e2b_base64_decode(auth, strlen(auth), &raw);
            char *dec = rawlen >= 0 && !memchr(raw, 0, (size_t)rawlen) ? (char *)raw : NULL;
            char *colon = dec ? strchr(dec, ':') : NULL;
            if (!colon)
                return e2b_error_set(err, E2B_ERR_INVALID,
                                     "%s: the \"auth\" of '%s' is not base64 of user:password",
                                     path, key);
            *ret_user = xstrndup(dec, (size_t)(colon - dec));
            *ret_pass = xstrdup(colon + 1);
            explicit_bzero(dec, strlen(dec));
            return 1;
        }
        const char *u = e2b_json_str(entry, "username"), *p = e2b_json_str(entry, "password");
        if (u && p) {
            *ret_user = xstrdup(u);
            *ret_pass = xstrdup(p);
            return 1;
        }
    }
    return 0;
}

int e2b_registry_find_credentials(const char *registry, const char *auth_file, char **ret_user,
                                  char **ret_pass, struct e2b_error **err)
{
    *ret_user = *ret_pass = NULL;
    char *files[5] = {0};
    size_t n = 0;
    if (auth_file)
        files[n++] = xstrdup(auth_file);
    const char *env = getenv("REGISTRY_AUTH_FILE");
    if (env && *env)
        files[n++] = xstrdup(env);
    env = getenv("XDG_RUNTIME_DIR");
    if (env && *env)
        files[n++] = xasprintf("%s/containers/auth.json", env);
    env = getenv("DOCKER_CONFIG");
    if (env && *env)
        files[n++] = xasprintf("%s/config.json", env);
    else if (getenv("HOME"))
        files[n++] = xasprintf("%s/.docker/config.json", getenv("HOME"));
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        if (r == 0)
            r = creds_from_file(files[i], registry, ret_user, ret_pass, err);
        free(files[i]);
    }
    return r < 0 ? -1 : 0;
}

static int load_creds(struct session *s, struct e2b_error **err)
{
    if (s->creds_looked_up)
        return 0;
    s->creds_looked_up = true;
    if (s->o->username && s->o->password) {
        s->user = xstrdup(s->o->username);
        s->pass = xstrdup(s->o->password);
        return 0;
    }
    return e2b_registry_find_credentials(s->host, s->o->auth_file, &s->user, &s->pass, err);
}

static char *basic_header(const struct session *s)
{
    _cleanup_free_ char *up = xasprintf("%s:%s", s->user, s->pass);
    _cleanup_free_ char *b = e2b_base64_encode(up, strlen(up), true);
    explicit_bzero(up, strlen(up));
    return xasprintf("Authorization: Basic %s", b);
}

/* --- auth challenges --- */

struct challenge {
    char *scheme, *realm, *service, *scope;
};

static void challenge_release(struct challenge *c)
{
    free(c->scheme);
    free(c->realm);
    free(c->service);
    free(c->scope);
}

/* `Bearer realm="https://a/token",service="reg",scope="repository:x:pull"` */
static void parse_challenge(const char *h, struct challenge *c)
{
    memset(c, 0, sizeof(*c));
    while (*h == ' ')
        h++;
    size_t n = strcspn(h, " ");
    c->scheme = xstrndup(h, n);
    h += n;
    while (*h) {
        while (*h == ' ' || *h == ',')
            h++;
        size_t kl = strcspn(h, "=, ");
        if (!kl || h[kl] != '=')
            break;
        _cleanup_free_ char *key = xstrndup(h, kl);
        h += kl + 1;
        struct strbuf v = STRBUF_INIT;
        if (*h == '"') {
            for (h++; *h && *h != '"'; h++) {
                if (*h == '\\' && h[1])
                    h++;
                strbuf_addch(&v, *h);
            }
            if (*h == '"')
                h++;
        } else {
            size_t vl = strcspn(h, ",");
            strbuf_add(&v, h, vl);
            h += vl;
        }
        char **slot = strcasecmp(key, "realm") == 0     ? &c->realm
                      : strcasecmp(key, "service") == 0 ? &c->service
                      : strcasecmp(key, "scope") == 0   ? &c->scope
                                                        : NULL;
        if (slot) {
            free(*slot);
            *slot = strbuf_detach(&v, NULL);
        } else {
            strbuf_release(&v);
        }
    }
}

static int need_creds_error(struct session *s, struct e2b_error **err)
{
    return e2b_error_set(err, E2B_ERR_AUTH,
                         "registry %s needs credentials and none were found for it "
                         "(~/.docker/config.json \"auths\", $DOCKER_CONFIG or "
                         "${XDG_RUNTIME_DIR}/containers/auth.json)",
                         s->host);
}

static int refused_error(struct session *s, struct e2b_error **err)
{
    return e2b_error_set(err, E2B_ERR_AUTH, "registry %s refused the credentials of user '%s'",
                         s->host, s->user ? s->user : "");
}

static int fetch_token(struct session *s, const struct challenge *c, struct e2b_error **err)
{
    if (!c->realm || !*c->realm)
        return e2b_error_set(err, E2B_ERR_API, "registry %s asked for a token without a realm",
                             s->host);
    bool realm_https = e2b_str_has_prefix(c->realm, "https://");
    if (!realm_https && !(e2b_str_has_prefix(c->realm, "http://") && s->plain_http))
        return e2b_error_set(err, E2B_ERR_API,
                             "registry %s sent a token realm '%s' that is not https", s->host,
                             c->realm);
    struct strbuf q = STRBUF_INIT;
    _cleanup_free_ char *scope_default = xasprintf("repository:%s:pull", s->repo);
    const char *scope = c->scope ? c->scope : scope_default;
    char sep = strchr(c->realm, '?') ? '&' : '?';
    if (c->service) {
        _cleanup_free_ char *e = e2b_url_escape(c->service, false);
        strbuf_addf(&q, "%cservice=%s", sep, e);
        sep = '&';
    }
    _cleanup_free_ char *es = e2b_url_escape(scope, false);
    strbuf_addf(&q, "%cscope=%s", sep, es);
    _cleanup_free_ char *path = strbuf_detach(&q, NULL);

    {
        /* With credentials if there are any, else anonymously. */
        if (load_creds(s, err) < 0)
            return -1;
        bool with_creds = s->user != NULL;
        _cleanup_free_ char *basic = with_creds ? basic_header(s) : NULL;
        const char *hdrs[] = {basic, NULL};
        struct e2b_http_req req = {.base = c->realm, .path = path, .headers = hdrs,
                                   .keep_error_status = true, .follow_redirects = true,
                                   .retries = 2, .connect_timeout_ms = s->o->connect_timeout_ms,
                                   .timeout_ms = 60000};
        struct e2b_http_resp resp;
        int r = e2b_http_request(&req, &resp, err);
        if (basic)
            explicit_bzero(basic, strlen(basic));
        if (r < 0) {
            e2b_http_resp_release(&resp);
            return e2b_error_wrap(err, "cannot get a token for registry %s", s->host);
        }
        if (resp.status == 401 || resp.status == 403) {
            e2b_http_resp_release(&resp);
            return with_creds ? refused_error(s, err) : need_creds_error(s, err);
        }
        if (resp.status >= 300) {
            _cleanup_free_ char *m = e2b_http_error_message(resp.status, resp.body.buf, resp.body.len);
            e2b_http_resp_release(&resp);
            return e2b_error_set(err, e2b_http_status_errcode(resp.status),
                                 "token server of registry %s said %s", s->host, m);
        }
        _cleanup_json_ json_t *j = NULL;
        r = resp.body.len > TOKEN_MAX ? -1 : 0;
        if (r == 0)
            r = e2b_json_parse(resp.body.buf, resp.body.len, "token answer", &j, err);
        e2b_http_resp_release(&resp);
        if (r < 0)
            return e2b_error_set(err, E2B_ERR_API, "bad token answer from registry %s", s->host);
        const char *tok = e2b_json_str(j, "token");
        if (!tok || !*tok)
            tok = e2b_json_str(j, "access_token");
        if (!tok || !*tok)
            return e2b_error_set(err, E2B_ERR_API, "token answer of registry %s has no token",
                                 s->host);
        free(s->auth);
        s->auth = xasprintf("Authorization: Bearer %s", tok);
        s->used_creds = with_creds;
        return 0;
    }
}

/* A 401 answer: get what its challenge asks for. */
static int authenticate(struct session *s, const struct e2b_http_resp *resp,
                        struct e2b_error **err)
{
    const char *h = e2b_http_resp_header(resp, "WWW-Authenticate");
    _cleanup_(challenge_release) struct challenge c = {0};
    parse_challenge(h ? h : "Basic", &c);
    if (strcasecmp(c.scheme, "Bearer") == 0)
        return fetch_token(s, &c, err);
    if (strcasecmp(c.scheme, "Basic") == 0) {
        if (load_creds(s, err) < 0)
            return -1;
        if (!s->user)
            return need_creds_error(s, err);
        if (s->used_creds)
            return refused_error(s, err);
        free(s->auth);
        s->auth = basic_header(s);
        s->used_creds = true;
        return 0;
    }
    return e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                         "registry %s asks for '%s' authentication, which is not supported",
                         s->host, c.scheme);
}

/* GET path on the registry with the session's auth; on a 401, authenticate
 * once and ask again. Any other status is the caller's to judge. */
static int request(struct session *s, const char *path, const char *extra_header,
                   const char *accept, int (*on_data)(const void *, size_t, void *), void *ud,
                   struct e2b_http_resp *resp, struct e2b_error **err)
{
    for (int attempt = 0;; attempt++) {
        const char *hdrs[4] = {0};
        size_t n = 0;
        if (s->auth)
            hdrs[n++] = s->auth;
        if (accept)
            hdrs[n++] = accept;
        if (extra_header)
            hdrs[n++] = extra_header;
        struct e2b_http_req req = {.base = s->base, .path = path, .headers = hdrs,
                                   .on_data = on_data, .ud = ud, .keep_error_status = true,
                                   .follow_redirects = true, .retries = 2,
                                   .connect_timeout_ms = s->o->connect_timeout_ms};
        if (e2b_http_request(&req, resp, err) < 0)
            return -1;
        if (resp->status != 401 || attempt > 0)
            return 0;
        int r = authenticate(s, resp, err);
        e2b_http_resp_release(resp);
        if (r < 0)
            return -1;
    }
}

/* An error answer to an error. */
static int status_error(struct session *s, const struct e2b_http_resp *resp, const char *what,
                        struct e2b_error **err)
{
    if (resp->status == 401 && !s->used_creds && s->auth)
        /* an anonymous token that does not reach far enough (Docker Hub's answer for
         * private and for missing repositories alike) */
        return e2b_error_set(err, E2B_ERR_AUTH,
                             "registry %s denied anonymous access to %s: it may not exist, or "
                             "may need credentials (none found in ~/.docker/config.json, "
                             "$DOCKER_CONFIG or ${XDG_RUNTIME_DIR}/containers/auth.json)",
                             s->host, what);
    if (resp->status == 401)
        return s->used_creds ? refused_error(s, err) : need_creds_error(s, err);
    if (resp->status == 403)
        return e2b_error_set(err, E2B_ERR_AUTH, "registry %s denied access to %s%s", s->host, what,
                             s->used_creds ? "" : " (no credentials were sent)");
    _cleanup_free_ char *m = e2b_http_error_message(resp->status, resp->body.buf, resp->body.len);
    int r = e2b_error_set(err, e2b_http_status_errcode(resp->status), "registry %s said %s", s->host,
                          m);
    if (err && *err)
        (*err)->http_status = resp->status;
    return r;
}

/* --- manifests --- */

struct capped {
    struct strbuf *sb;
    size_t max;
    bool over;
};

static int collect_capped(const void *data, size_t len, void *ud)
{
    struct capped *c = ud;
    if (c->sb->len + len > c->max) {
        c->over = true;
        return -1;
    }
    strbuf_add(c->sb, data, len);
    return 0;
}

static char *manifest_cache_path(const struct session *s, const char *digest)
{
    return xasprintf("%s/%s", s->cache, digest + 7);
}

/* Fetch a manifest by tag or digest, check it against its digest, and
 * cache it (by digest). Returns the body, its digest and media type. */
static int fetch_manifest(struct session *s, const char *target, bool top, char **ret_body,
                          size_t *ret_len, char **ret_digest, char **ret_type,
                          struct e2b_error **err)
{
    bool by_digest = e2b_str_has_prefix(target, "sha256:");
    _cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
    _cleanup_free_ char *ctype = NULL;
    _cleanup_free_ char *cached = by_digest ? manifest_cache_path(s, target) : NULL;
    char hex[E2B_SHA256_HEX_SIZE];
    bool from_cache = false;

    if (cached && access(cached, F_OK) == 0) {
        char *data = NULL;
        size_t len = 0;
        if (e2b_read_file(cached, &data, &len, NULL) == 0) {
            e2b_sha256_hex(data, len, hex);
            if (STREQ(hex, target + 7)) {
                strbuf_add(&body, data, len);
                from_cache = true;
            }
            free(data);
        }
    }
    if (!from_cache) {
        _cleanup_free_ char *path = xasprintf("/v2/%s/manifests/%s", s->repo, target);
        const char *accept = "Accept: " E2B_MT_OCI_MANIFEST ", " E2B_MT_OCI_INDEX
                             ", " E2B_MT_DOCKER_MANIFEST ", " E2B_MT_DOCKER_LIST;
        struct capped cap = {.sb = &body, .max = MANIFEST_MAX};
        struct e2b_http_resp resp;
        if (request(s, path, NULL, accept, collect_capped, &cap, &resp, err) < 0) {
            e2b_http_resp_release(&resp);
            if (cap.over) {
                e2b_error_free(*err);
                *err = NULL;
                return e2b_error_set(err, E2B_ERR_INVALID,
                                     "manifest of '%s' is larger than 4 MiB", s->display);
            }
            return -1;
        }
        if (resp.status == 404) {
            e2b_http_resp_release(&resp);
            if (top)
                return e2b_error_set(err, E2B_ERR_NOT_FOUND, "image '%s' not found in registry %s",
                                     s->display, s->host);
            return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                                 "manifest %s of image '%s' not found in registry %s", target,
                                 s->display, s->host);
        }
        if (resp.status >= 300) {
            _cleanup_free_ char *what = xasprintf("'%s'", s->display);
            int r = status_error(s, &resp, what, err);
            e2b_http_resp_release(&resp);
            return r;
        }
        const char *ct = e2b_http_resp_header(&resp, "Content-Type");
        if (ct)
            ctype = xstrndup(ct, strcspn(ct, "; "));
        e2b_sha256_hex(body.buf, body.len, hex);
        const char *said = e2b_http_resp_header(&resp, "Docker-Content-Digest");
        bool bad = by_digest ? !STREQ(hex, target + 7)
                             : (said && e2b_str_has_prefix(said, "sha256:") &&
                                strncmp(said + 7, hex, 64) != 0);
        e2b_http_resp_release(&resp);
        if (bad)
            return e2b_error_set(err, E2B_ERR_INVALID,
                                 "manifest of '%s' does not match its digest %s (got sha256:%s)",
                                 s->display, by_digest ? target : said, hex);
        _cleanup_free_ char *dst = xasprintf("%s/%s", s->cache, hex);
        if (access(dst, F_OK) < 0 &&
            e2b_write_file_atomic(dst, body.buf, body.len, 0644, err) < 0)
            return -1;
    }
    /* The media type: the manifest's own mediaType, else the answer's Content-Type. */
    _cleanup_json_ json_t *j = json_loadb(body.buf, body.len, 0, NULL);
    const char *mt = j ? e2b_json_str(j, "mediaType") : NULL;
    if (mt)
        *ret_type = xstrdup(mt);
    else if (j && json_is_array(json_object_get(j, "manifests")))
        *ret_type = xstrdup(E2B_MT_OCI_INDEX);
    else
        *ret_type = ctype ? xstrdup(ctype) : xstrdup(E2B_MT_OCI_MANIFEST);
    *ret_digest = xasprintf("sha256:%s", hex);
    *ret_len = body.len;
    *ret_body = strbuf_detach(&body, NULL);
    return 0;
}

/* Pick the manifest for `platform` from an index: returns its digest. */
static int select_platform(struct session *s, const char *body, size_t len, const char *platform,
                           char **ret_digest, char **ret_platform, struct e2b_error **err)
{
    _cleanup_json_ json_t *j = NULL;
    if (e2b_json_parse(body, len, "image index", &j, err) < 0)
        return e2b_error_wrap(err, "bad image index for '%s'", s->display);
    size_t pick;
    if (e2b_image_index_select(j, platform, s->display, true, &pick, ret_platform, err) < 0)
        return -1;
    *ret_digest = xstrdup(e2b_json_str(json_array_get(json_object_get(j, "manifests"), pick), "digest"));
    return 0;
}

/* --- blobs --- */

struct blob_dl {
    struct session *s;
    struct e2b_http_resp *resp;
    int fd;
    struct e2b_sha256 hash;
    uint64_t done, total, received;
    bool checked_range, too_big;
    int write_errno;
    struct e2b_pull_progress prog;
};

static int blob_data(const void *data, size_t len, void *ud)
{
    struct blob_dl *b = ud;
    if (!b->checked_range) {
        b->checked_range = true;
        /* Asked for a range but got the whole blob: start over. */
        if (b->done > 0 && !e2b_http_resp_header(b->resp, "Content-Range")) {
            if (ftruncate(b->fd, 0) < 0 || lseek(b->fd, 0, SEEK_SET) < 0) {
                b->write_errno = errno;
                return -1;
            }
            e2b_sha256_init(&b->hash);
            b->done = 0;
        }
    }
    if (b->done + len > b->total) {
        b->too_big = true;
        return -1;
    }
    int w = e2b_write_all(b->fd, data, len);
    if (w < 0) {
        b->write_errno = -w;
        return -1;
    }
    e2b_sha256_update(&b->hash, data, len);
    b->done += len;
    b->received += len;
    if (b->s->o->progress) {
        b->prog.done = b->done;
        b->s->o->progress(&b->prog, b->s->o->ud);
    }
    return 0;
}

/* Open and lock <final>.partial; 1 with *ret_fd = -1 when the blob appeared meanwhile. */
static int open_partial(const char *partial, const char *final, int *ret_fd,
                        struct e2b_error **err)
{
    for (;;) {
        _cleanup_close_ int fd = open(partial, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return e2b_error_sys(err, errno, "cannot create '%s'", partial);
        if (flock(fd, LOCK_EX) < 0)
            return e2b_error_sys(err, errno, "cannot lock '%s'", partial);
        struct stat a, b;
        if (fstat(fd, &a) < 0)
            return e2b_error_sys(err, errno, "cannot stat '%s'", partial);
        bool same = stat(partial, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
        if (access(final, F_OK) == 0) {
            if (same && a.st_size == 0)
                unlink(partial);
            *ret_fd = -1;
            return 1;
        }
        if (!same)
            continue; /* another pull finished or removed it: open the new one */
        *ret_fd = TAKE_FD(fd);
        return 0;
    }
}

static int fetch_blob(struct session *s, const char *digest, const char *media_type,
                      uint64_t size, size_t index, size_t count, char **ret_path,
                      struct e2b_error **err)
{
    _cleanup_free_ char *final = xasprintf("%s/%s", s->cache, digest + 7);
    _cleanup_free_ char *partial = xasprintf("%s.partial", final);
    struct e2b_pull_progress prog = {.digest = digest, .media_type = media_type,
                                     .total = size, .index = index, .count = count};
    struct stat st;
    if (stat(final, &st) == 0 && (uint64_t)st.st_size == size) {
        if (s->o->progress) {
            prog.done = size;
            prog.cached = true;
            s->o->progress(&prog, s->o->ud);
        }
        *ret_path = TAKE_PTR(final);
        return 0;
    }
    if (stat(final, &st) == 0) /* a cached file of the wrong size cannot be this blob */
        unlink(final);

    _cleanup_close_ int fd = -1;
    int r = open_partial(partial, final, &fd, err);
    if (r < 0)
        return -1;
    if (r == 1) /* another pull just finished it */
        return fetch_blob(s, digest, media_type, size, index, count, ret_path, err);

    struct e2b_http_resp resp;
    struct blob_dl b = {.s = s, .resp = &resp, .fd = fd, .total = size, .prog = prog};
    e2b_sha256_init(&b.hash);
    if (fstat(fd, &st) < 0)
        return e2b_error_sys(err, errno, "cannot stat '%s'", partial);
    b.done = (uint64_t)st.st_size;
    if (b.done > size || (b.done && hash_fd(fd, b.done, &b.hash) < 0)) {
        if (ftruncate(fd, 0) < 0)
            return e2b_error_sys(err, errno, "cannot truncate '%s'", partial);
        b.done = 0;
        e2b_sha256_init(&b.hash);
    }
    if (lseek(fd, (off_t)b.done, SEEK_SET) < 0)
        return e2b_error_sys(err, errno, "cannot seek in '%s'", partial);

    _cleanup_free_ char *path = xasprintf("/v2/%s/blobs/%s", s->repo, digest);
    for (int attempt = 0; b.done < size; attempt++) {
        _cleanup_free_ char *range =
            b.done ? xasprintf("Range: bytes=%llu-", (unsigned long long)b.done) : NULL;
        b.checked_range = false;
        r = request(s, path, range, NULL, blob_data, &b, &resp, err);
        if (r < 0) {
            e2b_http_resp_release(&resp);
            if (b.too_big || b.write_errno) {
                e2b_error_free(*err);
                *err = NULL;
            }
            if (b.too_big) {
                unlink(partial);
                return e2b_error_set(err, E2B_ERR_INVALID,
                                     "blob %s of '%s' is larger than the %llu bytes its manifest "
                                     "says; the download was removed",
                                     digest, s->display, (unsigned long long)size);
            }
            if (b.write_errno)
                return e2b_error_sys(err, b.write_errno, "cannot write '%s'", partial);
            return e2b_error_wrap(err, "cannot download blob %s (%llu of %llu bytes kept "
                                       "to resume)",
                                  digest, (unsigned long long)b.done, (unsigned long long)size);
        }
        if (resp.status == 416 && attempt == 0) { /* our range is past its end: start over */
            e2b_http_resp_release(&resp);
            if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
                return e2b_error_sys(err, errno, "cannot truncate '%s'", partial);
            b.done = 0;
            e2b_sha256_init(&b.hash);
            continue;
        }
        if (resp.status == 404) {
            e2b_http_resp_release(&resp);
            return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                                 "blob %s of image '%s' not found in registry %s", digest,
                                 s->display, s->host);
        }
        if (resp.status >= 300) {
            _cleanup_free_ char *what = xasprintf("blob %s", digest);
            r = status_error(s, &resp, what, err);
            e2b_http_resp_release(&resp);
            return r;
        }
        e2b_http_resp_release(&resp);
        if (b.done < size)
            return e2b_error_set(err, E2B_ERR_NETWORK,
                                 "download of blob %s ended early at %llu of %llu bytes "
                                 "(kept to resume)",
                                 digest, (unsigned long long)b.done, (unsigned long long)size);
    }
    char hex[E2B_SHA256_HEX_SIZE];
    e2b_sha256_final_hex(&b.hash, hex);
    if (!STREQ(hex, digest + 7)) {
        unlink(partial);
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "blob %s of '%s' does not match its digest (got sha256:%s); "
                             "the download was removed",
                             digest, s->display, hex);
    }
    if (fsync(fd) < 0)
        return e2b_error_sys(err, errno, "cannot write '%s'", partial);
    if (rename(partial, final) < 0)
        return e2b_error_sys(err, errno, "cannot rename '%s'", partial);
    if (b.received) {
        s->img->blobs_downloaded++;
        s->img->bytes_downloaded += b.received;
    } else if (s->o->progress) { /* a finished partial: nothing new came */
        prog.done = size;
        s->o->progress(&prog, s->o->ud);
    }
    *ret_path = TAKE_PTR(final);
    return 0;
}

/* --- the image manifest --- */

static int pull_manifest(struct session *s, struct e2b_pulled_image *img, struct e2b_error **err)
{
    _cleanup_json_ json_t *j = NULL;
    if (e2b_json_parse(img->manifest, img->manifest_len, "image manifest", &j, err) < 0)
        return e2b_error_wrap(err, "bad manifest for '%s'", s->display);
    _cleanup_(e2b_manifest_release) struct e2b_manifest m = {0};
    if (e2b_manifest_parse(j, s->display, true, &m, err) < 0)
        return -1;
    const struct e2b_descriptor *c = &m.config;
    size_t n = m.n_layers;
    img->config_digest = xstrdup(c->digest);
    img->config_media_type = xstrdup(c->media_type ? c->media_type : "");
    if (fetch_blob(s, c->digest, img->config_media_type, (uint64_t)c->size, 0, n + 1, &img->config_path, err) < 0)
        return -1;
    img->layers = xcalloc(n ? n : 1, sizeof(*img->layers));
    for (size_t i = 0; i < n; i++) {
        const struct e2b_descriptor *d = &m.layers[i];
        struct e2b_image_layer *l = &img->layers[i];
        img->n_layers = i + 1;
        l->digest = xstrdup(d->digest);
        l->media_type = xstrdup(d->media_type);
        l->size = d->size;
        if (fetch_blob(s, d->digest, d->media_type, (uint64_t)d->size, i + 1, n + 1, &l->path, err) < 0)
            return -1;
    }
    return 0;
}

static int pull(struct session *s, const struct e2b_imageref *ref, const char *platform,
                struct e2b_pulled_image *img, struct e2b_error **err)
{
    _cleanup_free_ char *body = NULL, *digest = NULL, *type = NULL;
    size_t len = 0;
    if (fetch_manifest(s, e2b_imageref_target(ref), true, &body, &len, &digest, &type, err) < 0)
        return -1;
    if (e2b_mt_is_index(type)) {
        _cleanup_free_ char *child = NULL;
        img->index_digest = TAKE_PTR(digest);
        if (select_platform(s, body, len, platform, &child, &img->platform, err) < 0)
            return -1;
        free(body);
        free(type);
        body = type = NULL;
        if (fetch_manifest(s, child, false, &body, &len, &digest, &type, err) < 0)
            return -1;
        if (e2b_mt_is_index(type))
            return e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                                 "image '%s': nested image indexes are not supported", s->display);
    } else {
        img->platform = xstrdup(platform);
    }
    if (!e2b_mt_is_manifest(type))
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                             "image '%s' has a manifest of type '%s', which is not supported",
                             s->display, type);
    img->manifest = TAKE_PTR(body);
    img->manifest_len = len;
    img->manifest_digest = TAKE_PTR(digest);
    img->manifest_media_type = TAKE_PTR(type);
    return pull_manifest(s, img, err);
}

int e2b_registry_pull(const char *refstr, const struct e2b_registry_opts *opts,
                      struct e2b_pulled_image *ret, struct e2b_error **err)
{
    static const struct e2b_registry_opts no_opts;
    const struct e2b_registry_opts *o = opts ? opts : &no_opts;
    memset(ret, 0, sizeof(*ret));
    const char *platform;
    if (e2b_platform_resolve(o->platform, &platform, err) < 0)
        return -1;
    _cleanup_(e2b_imageref_release) struct e2b_imageref ref = {0};
    if (e2b_imageref_parse(refstr, &ref, err) < 0)
        return -1;

    _cleanup_(session_release) struct session s = {.o = o, .display = refstr, .host = ref.host,
                                                   .repo = ref.repo, .img = ret};
    s.plain_http = is_insecure(ref.host, o->insecure_registries);
    s.base = xasprintf("%s://%s", s.plain_http ? "http" : "https", ref.host);
    _cleanup_free_ char *cache = o->cache_dir ? xstrdup(o->cache_dir) : e2b_blob_cache_dir();
    s.cache = xasprintf("%s/sha256", cache);
    if (e2b_mkdir_p(s.cache, 0755, err) < 0)
        return e2b_error_wrap(err, "cannot pull '%s'", refstr);

    ret->ref = e2b_imageref_format(&ref);
    ret->registry = xstrdup(ref.host);
    ret->repo = xstrdup(ref.repo);
    if (pull(&s, &ref, platform, ret, err) < 0) {
        e2b_pulled_image_release(ret);
        /* TLS spoken to a plain-HTTP registry: say how to allow it */
        if (err && *err && !s.plain_http && (*err)->code == E2B_ERR_NETWORK &&
            (strstr((*err)->msg, "SSL") || strstr((*err)->msg, "TLS"))) {
            char *m = xasprintf("%s (if it serves plain HTTP, allow that with --insecure-registry %s)",
                                (*err)->msg, ref.host);
            free((*err)->msg);
            (*err)->msg = m;
        }
        if (err && *err && (*err)->code != E2B_ERR_NOT_FOUND)
            e2b_error_wrap(err, "cannot pull '%s'", refstr);
        return -1;
    }
    return 0;
}

void e2b_pulled_image_release(struct e2b_pulled_image *img)
{
    if (!img)
        return;
    e2b_free_many(&img->ref, &img->registry, &img->repo, &img->index_digest, &img->manifest_digest,
                  &img->manifest_media_type, &img->manifest, &img->platform, &img->config_digest,
                  &img->config_media_type, &img->config_path);
    e2b_image_layers_free(img->layers, img->n_layers);
    memset(img, 0, sizeof(*img));
}
