/* envd-files.c - see envd-files.h */
#include "envd-files.h"
#include "envd-crypto.h"
#include "envd-fs.h"
#include "fsutil.h"
#include "strbuf.h"

#include <event2/buffer.h>
#include <ctype.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <zlib.h>

#define XATTR_PREFIX "user.e2b."
#define MD_MAX_KEY 246
#define MD_MAX_TOTAL 4096
#define GZ_CHUNK (256 * 1024)

char *e2b_files_signature(const char *path, const char *op, const char *user, const char *token,
                          int64_t expiration)
{
    _cleanup_free_ char *raw = expiration > 0
                                   ? xasprintf("%s:%s:%s:%s:%lld", path, op, user, token, (long long)expiration)
                                   : xasprintf("%s:%s:%s:%s", path, op, user, token);
    uint8_t h[E2B_SHA256_LEN];
    e2b_sha256(raw, strlen(raw), h);
    _cleanup_free_ char *b = e2b_base64_encode(h, sizeof(h), false);
    return xasprintf("v1_%s", b);
}

/* Token or signature; replies 401 and returns false when neither is good. */
static bool files_auth(struct e2b_http_req *req, const char *op)
{
    if (e2b_envd_token_ok(req))
        return true;
    if (e2b_http_header(req, "X-Access-Token")) {
        e2b_envd_http_error(req, 401, "invalid access token");
        return false;
    }
    const char *sig = e2b_http_query(req, "signature");
    if (!sig) {
        e2b_envd_http_error(req, 401, "missing access token or signature");
        return false;
    }
    const char *exp = e2b_http_query(req, "signature_expiration");
    int64_t expiration = 0;
    if (exp) {
        char *e;
        errno = 0;
        expiration = strtoll(exp, &e, 10);
        if (!*exp || *e || errno || expiration <= 0) {
            e2b_envd_http_error(req, 400, "bad signature_expiration");
            return false;
        }
        if (expiration < (int64_t)time(NULL)) {
            e2b_envd_http_error(req, 401, "signature is expired");
            return false;
        }
    }
    const char *path = e2b_http_query(req, "path"), *user = e2b_http_query(req, "username");
    _cleanup_free_ char *want =
        e2b_files_signature(path ? path : "", op, user ? user : "", e2b_envd.access_token, expiration);
    if (!e2b_consttime_streq(sig, want)) {
        e2b_envd_http_error(req, 401, "invalid signature");
        return false;
    }
    return true;
}

static int errno_status(int e)
{
    switch (e) {
    case ENOENT: return 404;
    case EACCES: case EPERM: case EROFS: return 403;
    case ENOSPC: case EDQUOT: return 507;
    case EISDIR: case ENOTDIR: case ELOOP: case ENAMETOOLONG: case EINVAL: return 400;
    default: return 500;
    }
}

/* ---- download ---- */

static bool plain_filename_char(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '%';
}

char *e2b_files_content_disposition(const char *name)
{
    bool plain = true;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        plain = plain && plain_filename_char(*p);
    if (plain)
        return xasprintf("attachment; filename=\"%s\"", name);
    struct strbuf b = STRBUF_INIT;
    strbuf_addstr(&b, "attachment; filename=\"");
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        strbuf_addch(&b, plain_filename_char(*p) ? (char)*p : '_');
    strbuf_addstr(&b, "\"; filename*=UTF-8''");
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (isalnum(*p) || strchr("!#$&+-.^_`|~", *p))
            strbuf_addch(&b, (char)*p); /* RFC 5987 attr-char */
        else
            strbuf_addf(&b, "%%%02X", *p);
    }
    return strbuf_detach(&b, NULL);
}

struct gzdl {
    int fd;
    z_stream z;
    bool done;
};

static void gz_pump(struct e2b_http_req *req, void *arg)
{
    struct gzdl *g = arg;
    static unsigned char in[GZ_CHUNK], out[GZ_CHUNK];
    while (!g->done && e2b_http_pending(req) < 1024 * 1024) {
        ssize_t n = read(g->fd, in, sizeof(in));
        if (n < 0 && errno == EINTR)
            continue;
        int flush = n <= 0 ? Z_FINISH : Z_NO_FLUSH;
        g->z.next_in = in;
        g->z.avail_in = n > 0 ? (uInt)n : 0;
        int rc;
        do {
            g->z.next_out = out;
            g->z.avail_out = sizeof(out);
            rc = deflate(&g->z, flush);
            size_t have = sizeof(out) - g->z.avail_out;
            if (have)
                e2b_http_reply_chunk(req, out, have);
        } while (g->z.avail_out == 0);
        if (flush == Z_FINISH && rc == Z_STREAM_END)
            g->done = true;
    }
    if (g->done) {
        e2b_http_set_drain_cb(req, NULL, NULL);
        e2b_http_set_close_cb(req, NULL, NULL);
        deflateEnd(&g->z);
        close(g->fd);
        free(g);
        e2b_http_reply_end(req);
    }
}

static void gz_gone(struct e2b_http_req *req, void *arg)
{
    (void)req;
    struct gzdl *g = arg;
    deflateEnd(&g->z);
    close(g->fd);
    free(g);
}

/* Parse Accept-Encoding: 1 gzip, 0 identity, -1 nothing acceptable. */
static int pick_encoding(const char *ae)
{
    if (!ae || !*ae)
        return 0;
    double q_gzip = -1, q_identity = -1, q_star = -1;
    _cleanup_free_ char *copy = xstrdup(ae);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        char *semi = strchr(tok, ';');
        double q = 1;
        if (semi) {
            *semi = '\0';
            char *qs = strstr(semi + 1, "q=");
            if (qs)
                q = strtod(qs + 2, NULL);
        }
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ')
            *--end = '\0';
        if (strcasecmp(tok, "gzip") == 0)
            q_gzip = q;
        else if (strcasecmp(tok, "identity") == 0)
            q_identity = q;
        else if (STREQ(tok, "*"))
            q_star = q;
    }
    if (q_gzip < 0 && q_star > 0)
        q_gzip = q_star;
    if (q_gzip > 0)
        return 1;
    if (q_identity == 0 || (q_identity < 0 && q_star == 0))
        return -1;
    return 0;
}

static void download(struct e2b_http_req *req, const struct e2b_user *user, const char *path)
{
    e2b_envd_fs_as(user);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    int e = errno;
    e2b_envd_fs_restore();
    if (fd < 0) {
        e2b_envd_http_error(req, errno_status(e), "cannot open '%s': %s", path, strerror(e));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode) || !S_ISREG(st.st_mode)) {
        close(fd);
        e2b_envd_http_error(req, 400, "path '%s' is %s", path, S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        return;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    int enc = pick_encoding(e2b_http_header(req, "Accept-Encoding"));
    if (enc < 0) {
        close(fd);
        e2b_envd_http_error(req, 406, "no acceptable encoding (gzip and identity are supported)");
        return;
    }
    const char *slash = strrchr(path, '/');
    _cleanup_free_ char *cd = e2b_files_content_disposition(slash ? slash + 1 : path);
    e2b_http_add_header(req, "Content-Disposition", cd);
    e2b_http_add_header(req, "Cache-Control", "no-store");
    e2b_http_add_header(req, "Vary", "Accept-Encoding");
    if (enc == 0) {
        e2b_http_reply_file(req, 200, "application/octet-stream", fd, st.st_size);
        return;
    }
    struct gzdl *g = xcalloc(1, sizeof(*g));
    g->fd = fd;
    if (deflateInit2(&g->z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        close(fd);
        free(g);
        e2b_envd_http_error(req, 500, "cannot start compression");
        return;
    }
    e2b_http_add_header(req, "Content-Encoding", "gzip");
    e2b_http_reply_start(req, 200, "application/octet-stream");
    e2b_http_set_close_cb(req, gz_gone, g);
    e2b_http_set_drain_cb(req, gz_pump, g);
    gz_pump(req, g);
}

/* ---- upload ---- */

struct sink {
    char *final, *tmp;
    int fd;
};

struct upload {
    struct e2b_user *user;
    char *qpath; /* resolved ?path, or NULL */
    bool multipart, gzip, failed;
    z_stream z;
    bool z_init;
    json_t *md;      /* metadata to set, or NULL */
    json_t *results; /* response array */
    struct sink cur;
    /* multipart */
    char *delim; /* "\r\n--boundary" */
    size_t dlen;
    struct strbuf mb;
    enum { MP_PREAMBLE, MP_AFTER_DELIM, MP_HEADERS, MP_DATA, MP_SKIP, MP_END } mstate;
};

static void sink_abort(struct sink *s)
{
    if (s->fd >= 0)
        close(s->fd);
    if (s->tmp)
        unlink(s->tmp);
    free(s->tmp);
    free(s->final);
    *s = (struct sink){.fd = -1};
}

#define UPLOAD_TEMP_MARK ".e2b-upload-"

bool e2b_files_is_upload_temp(const char *name)
{
    size_t n = strlen(name), ml = strlen(UPLOAD_TEMP_MARK);
    return n > ml + 7 && name[0] == '.' && memcmp(name + n - 6 - ml, UPLOAD_TEMP_MARK, ml) == 0;
}

/* Open a temp file beside path (as the user); returns an HTTP status on failure. */
static int sink_open(struct upload *u, const char *path, char **emsg)
{
    struct sink *s = &u->cur;
    e2b_envd_fs_as(u->user);
    _cleanup_free_ char *target = xstrdup(path);
    struct stat st;
    /* writing through a symlink writes its target, like open(2) would */
    if (lstat(target, &st) == 0 && S_ISLNK(st.st_mode)) {
        char *real = realpath(target, NULL);
        if (real) {
            free(target);
            target = real;
        }
    }
    mode_t mode = 0644;
    if (stat(target, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            e2b_envd_fs_restore();
            *emsg = xasprintf("path '%s' is a directory", target);
            return 400;
        }
        mode = st.st_mode & 07777;
    }
    _cleanup_free_ char *dir = xstrdup(target);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    _cleanup_error_ struct e2b_error *err = NULL;
    if (e2b_mkdir_p(dir, 0755, &err) < 0) {
        e2b_envd_fs_restore();
        *emsg = xstrdup(err->msg);
        return err->sys_errno ? errno_status(err->sys_errno) : 500;
    }
    char *tmp = xasprintf("%s/.%s" UPLOAD_TEMP_MARK "XXXXXX", STREQ(dir, "/") ? "" : dir, slash + 1);
    int fd = mkostemp(tmp, O_CLOEXEC);
    int e = errno;
    if (fd >= 0)
        fchmod(fd, mode);
    e2b_envd_fs_restore();
    if (fd < 0) {
        free(tmp);
        *emsg = xasprintf("cannot write '%s': %s", target, strerror(e));
        return errno_status(e);
    }
    s->fd = fd;
    s->tmp = tmp;
    s->final = TAKE_PTR(target);
    return 0;
}

static int sink_write(struct sink *s, const void *data, size_t len)
{
    return e2b_write_all(s->fd, data, len) < 0 ? -1 : 0;
}

static int set_metadata(const char *path, json_t *md)
{
    /* replace: drop old user.e2b.* first */
    char list[4096];
    ssize_t n = llistxattr(path, list, sizeof(list));
    for (char *k = list; n > 0 && k < list + n; k += strlen(k) + 1)
        if (e2b_str_has_prefix(k, XATTR_PREFIX))
            lremovexattr(path, k);
    const char *k;
    json_t *v;
    json_object_foreach(md, k, v) {
        _cleanup_free_ char *name = xasprintf(XATTR_PREFIX "%s", k);
        if (lsetxattr(path, name, json_string_value(v), json_string_length(v), 0) < 0)
            return -1;
    }
    return 0;
}

/* Commit the current sink; returns HTTP status on failure (0 ok). */
static int sink_commit(struct upload *u, char **emsg)
{
    struct sink *s = &u->cur;
    if (close(s->fd) < 0) {
        int e = errno;
        s->fd = -1;
        *emsg = xasprintf("cannot write '%s': %s", s->final, strerror(e));
        sink_abort(s);
        return errno_status(e);
    }
    s->fd = -1;
    if (u->md && set_metadata(s->tmp, u->md) < 0) {
        int e = errno;
        *emsg = xasprintf("cannot set metadata on '%s': %s", s->final, strerror(e));
        sink_abort(s);
        return e == ENOSPC || e == EDQUOT ? 507 : e == ENOTSUP ? 400 : 500;
    }
    e2b_envd_fs_as(u->user);
    int rc = rename(s->tmp, s->final), e = errno;
    e2b_envd_fs_restore();
    if (rc < 0) {
        *emsg = xasprintf("cannot write '%s': %s", s->final, strerror(e));
        sink_abort(s);
        return errno_status(e);
    }
    const char *slash = strrchr(s->final, '/');
    json_t *r = json_pack("{s:o,s:o,s:s}", "path", e2b_json_string_lossy(s->final), "name",
                          e2b_json_string_lossy(slash ? slash + 1 : s->final), "type", "file");
    if (u->md)
        json_object_set(r, "metadata", u->md);
    json_array_append_new(u->results, r);
    free(s->tmp);
    free(s->final);
    *s = (struct sink){.fd = -1};
    return 0;
}

static void upload_free(struct upload *u)
{
    sink_abort(&u->cur);
    if (u->z_init)
        inflateEnd(&u->z);
    e2b_user_free(u->user);
    free(u->qpath);
    free(u->delim);
    strbuf_release(&u->mb);
    json_decref(u->md);
    json_decref(u->results);
    free(u);
}

static void upload_fail(struct e2b_http_req *req, struct upload *u, int status, const char *msg)
{
    if (u->failed)
        return;
    u->failed = true;
    sink_abort(&u->cur);
    e2b_envd_http_error(req, status, "%s", msg);
}

/* Parse the part headers in h (NUL-terminated); open the sink. */
static int part_begin(struct e2b_http_req *req, struct upload *u, char *h)
{
    char *filename = NULL, *name = NULL;
    for (char *line = h, *next; line && *line; line = next) {
        next = strstr(line, "\r\n");
        if (next) {
            *next = '\0';
            next += 2;
        }
        if (strncasecmp(line, "Content-Disposition:", 20) != 0)
            continue;
        /* p: the ';' before the next parameter (or the NUL it was cut to) */
        for (char *p = strchr(line + 20, ';'); p;) {
            p++;
            while (*p == ' ')
                p++;
            char **dst = strncasecmp(p, "filename=", 9) == 0 ? &filename : strncasecmp(p, "name=", 5) == 0 ? &name : NULL;
            if (!dst) {
                p = strchr(p, ';');
                continue;
            }
            char *v = strchr(p, '=') + 1;
            if (*v == '"') {
                v++;
                char *end = strchr(v, '"');
                if (end)
                    *end++ = '\0';
                p = end ? strchr(end, ';') : NULL;
            } else {
                p = strchr(v, ';');
                if (p)
                    *p = '\0'; /* ends the value; the next parameter is after it */
            }
            *dst = v;
        }
    }
    if (!name || !STREQ(name, "file")) {
        u->mstate = MP_SKIP;
        return 0;
    }
    _cleanup_free_ char *path = NULL;
    if (u->qpath) {
        path = xstrdup(u->qpath);
    } else {
        _cleanup_error_ struct e2b_error *err = NULL;
        if (!filename || !*filename) {
            upload_fail(req, u, 400, "a file part without a filename needs the path parameter");
            return -1;
        }
        path = e2b_envd_resolve_path(filename, u->user, e2b_envd.default_workdir, &err);
        if (!path) {
            upload_fail(req, u, 400, err->msg);
            return -1;
        }
    }
    _cleanup_free_ char *emsg = NULL;
    int st = sink_open(u, path, &emsg);
    if (st) {
        upload_fail(req, u, st, emsg);
        return -1;
    }
    u->mstate = MP_DATA;
    return 0;
}

static int write_failed(struct e2b_http_req *req, struct upload *u)
{
    int e = errno;
    _cleanup_free_ char *m = xasprintf("cannot write '%s': %s", u->cur.final, strerror(e));
    upload_fail(req, u, errno_status(e), m);
    return -1;
}

/* Feed decoded body bytes to the multipart parser. */
static int mp_feed(struct e2b_http_req *req, struct upload *u, const char *data, size_t len)
{
    strbuf_add(&u->mb, data, len);
    for (;;) {
        switch (u->mstate) {
        case MP_PREAMBLE:
        case MP_DATA:
        case MP_SKIP: {
            char *hit = memmem(u->mb.buf, u->mb.len, u->delim, u->dlen);
            size_t upto = hit ? (size_t)(hit - u->mb.buf) : (u->mb.len > u->dlen ? u->mb.len - u->dlen : 0);
            if (u->mstate == MP_DATA && upto && sink_write(&u->cur, u->mb.buf, upto) < 0)
                return write_failed(req, u);
            strbuf_consume(&u->mb, upto);
            if (!hit)
                return 0;
            strbuf_consume(&u->mb, u->dlen);
            if (u->mstate == MP_DATA) {
                _cleanup_free_ char *emsg = NULL;
                int st = sink_commit(u, &emsg);
                if (st) {
                    upload_fail(req, u, st, emsg);
                    return -1;
                }
            }
            u->mstate = MP_AFTER_DELIM;
            break;
        }
        case MP_AFTER_DELIM:
            if (u->mb.len < 2)
                return 0;
            if (u->mb.buf[0] == '-' && u->mb.buf[1] == '-') {
                u->mstate = MP_END;
                break;
            }
            {
                /* skip transport padding up to CRLF */
                char *crlf = memmem(u->mb.buf, u->mb.len, "\r\n", 2);
                if (!crlf)
                    return u->mb.len > 1024 ? (upload_fail(req, u, 400, "bad multipart body"), -1) : 0;
                strbuf_consume(&u->mb, (size_t)(crlf - u->mb.buf) + 2);
            }
            u->mstate = MP_HEADERS;
            break;
        case MP_HEADERS: {
            char *end = memmem(u->mb.buf, u->mb.len, "\r\n\r\n", 4);
            if (!end && u->mb.len >= 2 && u->mb.buf[0] == '\r' && u->mb.buf[1] == '\n') {
                end = u->mb.buf - 2; /* a part with no headers */
            }
            if (!end) {
                if (u->mb.len > 16384) {
                    upload_fail(req, u, 400, "multipart part headers too large");
                    return -1;
                }
                return 0;
            }
            size_t hl = (size_t)(end - u->mb.buf) + 4;
            _cleanup_free_ char *h = xstrndup(u->mb.buf, hl - 4 > 0 ? hl - 4 : 0);
            strbuf_consume(&u->mb, hl);
            if (part_begin(req, u, h) < 0)
                return -1;
            break;
        }
        case MP_END:
            strbuf_reset(&u->mb);
            return 0;
        }
    }
}

static int feed(struct e2b_http_req *req, struct upload *u, const char *data, size_t len)
{
    if (u->multipart)
        return mp_feed(req, u, data, len);
    if (len && sink_write(&u->cur, data, len) < 0)
        return write_failed(req, u);
    return 0;
}

static int up_data(struct e2b_http_req *req, const char *data, size_t len, void *arg)
{
    struct upload *u = arg;
    if (u->failed)
        return -1;
    if (!u->gzip)
        return feed(req, u, data, len);
    static unsigned char out[GZ_CHUNK];
    u->z.next_in = (unsigned char *)data;
    u->z.avail_in = (uInt)len;
    while (u->z.avail_in > 0) {
        u->z.next_out = out;
        u->z.avail_out = sizeof(out);
        int rc = inflate(&u->z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            upload_fail(req, u, 400, "bad gzip body");
            return -1;
        }
        if (feed(req, u, (const char *)out, sizeof(out) - u->z.avail_out) < 0)
            return -1;
        if (rc == Z_STREAM_END) {
            if (u->z.avail_in == 0)
                break;
            inflateReset(&u->z); /* concatenated members */
        }
        if (rc == Z_BUF_ERROR && u->z.avail_out != 0)
            break;
    }
    return 0;
}

static void up_end(struct e2b_http_req *req, bool complete, void *arg)
{
    struct upload *u = arg;
    if (!u->failed && complete) {
        _cleanup_free_ char *emsg = NULL;
        int st = 0;
        if (u->multipart) {
            if (u->mstate != MP_END) {
                st = 400;
                emsg = xstrdup("truncated multipart body");
            }
        } else {
            st = sink_commit(u, &emsg);
        }
        if (st) {
            upload_fail(req, u, st, emsg);
        } else {
            _cleanup_free_ char *s = e2b_json_dump(u->results, JSON_COMPACT);
            e2b_http_add_header(req, "Cache-Control", "no-store");
            e2b_http_reply(req, 200, "application/json", s, strlen(s));
        }
    }
    upload_free(u);
}

static int parse_metadata(struct e2b_http_req *req, json_t **ret)
{
    const char *name, *value;
    json_t *md = NULL;
    size_t total = 0;
    for (size_t i = 0; e2b_http_header_at(req, i, &name, &value); i++) {
        if (strncasecmp(name, "X-Metadata-", 11) != 0)
            continue;
        const char *k = name + 11;
        size_t kl = strlen(k);
        if (kl == 0 || kl > MD_MAX_KEY) {
            json_decref(md);
            e2b_envd_http_error(req, 400, "metadata key '%s' must be 1..%d bytes", k, MD_MAX_KEY);
            return -1;
        }
        for (const char *p = value; *p; p++)
            if (*p < 0x20 || *p > 0x7e) {
                json_decref(md);
                e2b_envd_http_error(req, 400, "metadata value for '%s' must be printable ASCII", k);
                return -1;
            }
        total += kl + strlen(value);
        if (total > MD_MAX_TOTAL) {
            json_decref(md);
            e2b_envd_http_error(req, 400, "metadata larger than %d bytes", MD_MAX_TOTAL);
            return -1;
        }
        if (!md)
            md = json_object();
        _cleanup_free_ char *lk = xstrdup(k);
        for (char *p = lk; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        json_object_set_new(md, lk, json_string(value));
    }
    *ret = md;
    return 0;
}

static void upload(struct e2b_http_req *req, struct e2b_user *user, const char *qpath)
{
    const char *ct = e2b_http_header(req, "Content-Type");
    const char *ce = e2b_http_header(req, "Content-Encoding");
    struct upload *u = xcalloc(1, sizeof(*u));
    u->user = user;
    u->cur.fd = -1;
    u->results = json_array();
    strbuf_init(&u->mb);
    if (ce && strcasecmp(ce, "gzip") != 0 && strcasecmp(ce, "identity") != 0) {
        e2b_envd_http_error(req, 415, "unsupported content encoding '%s'", ce);
        upload_free(u);
        return;
    }
    if (ce && strcasecmp(ce, "gzip") == 0) {
        u->gzip = true;
        u->z_init = inflateInit2(&u->z, 16 + MAX_WBITS) == Z_OK;
    }
    _cleanup_error_ struct e2b_error *err = NULL;
    if (qpath && *qpath) {
        u->qpath = e2b_envd_resolve_path(qpath, user, e2b_envd.default_workdir, &err);
        if (!u->qpath) {
            e2b_envd_http_error(req, 400, "%s", err->msg);
            upload_free(u);
            return;
        }
    }
    if (parse_metadata(req, &u->md) < 0) {
        upload_free(u);
        return;
    }
    if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0) {
        const char *b = strcasestr(ct, "boundary=");
        if (!b) {
            e2b_envd_http_error(req, 400, "multipart body without a boundary");
            upload_free(u);
            return;
        }
        b += 9;
        _cleanup_free_ char *bnd = NULL;
        if (*b == '"') {
            const char *e = strchr(b + 1, '"');
            bnd = e ? xstrndup(b + 1, (size_t)(e - b - 1)) : xstrdup(b + 1);
        } else {
            bnd = xstrndup(b, strcspn(b, "; "));
        }
        if (!*bnd || strlen(bnd) > 200) {
            e2b_envd_http_error(req, 400, "bad multipart boundary");
            upload_free(u);
            return;
        }
        u->multipart = true;
        u->delim = xasprintf("\r\n--%s", bnd);
        u->dlen = strlen(u->delim);
        strbuf_add(&u->mb, "\r\n", 2); /* so the first delimiter matches too */
        u->mstate = MP_PREAMBLE;
    } else if (ct && strncasecmp(ct, "application/octet-stream", 24) == 0) {
        if (!u->qpath) {
            e2b_envd_http_error(req, 400, "an octet-stream upload needs the path parameter");
            upload_free(u);
            return;
        }
        _cleanup_free_ char *emsg = NULL;
        int st = sink_open(u, u->qpath, &emsg);
        if (st) {
            e2b_envd_http_error(req, st, "%s", emsg);
            upload_free(u);
            return;
        }
    } else {
        e2b_http_add_header(req, "Accept-Post", "multipart/form-data, application/octet-stream");
        e2b_envd_http_error(req, 415, "unsupported content type '%s'", ct ? ct : "");
        upload_free(u);
        return;
    }
    e2b_http_stream_body(req, up_data, up_end, u);
}

/* ---- compose: concatenate files (copy_file_range), delete the sources ---- */

static int append_file(int out, const char *src, int *err_status, char **emsg)
{
    int in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
        int e = in < 0 ? errno : EINVAL;
        if (in >= 0)
            close(in);
        *err_status = e == EINVAL ? 400 : errno_status(e);
        *emsg = xasprintf("cannot read source '%s': %s", src, e == EINVAL ? "not a regular file" : strerror(e));
        return -1;
    }
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n == 0)
            break;
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
            char buf[65536]; /* different file systems: plain copy */
            ssize_t r;
            while ((r = read(in, buf, sizeof(buf))) > 0)
                if (e2b_write_all(out, buf, (size_t)r) < 0) {
                    n = -1;
                    break;
                }
            if (r == 0)
                break;
        }
        if (n < 0) {
            int e = errno;
            close(in);
            *err_status = errno_status(e);
            *emsg = xasprintf("cannot compose '%s': %s", src, strerror(e));
            return -1;
        }
    }
    close(in);
    return 0;
}

static void compose_body(struct e2b_http_req *req, struct evbuffer *body, void *arg)
{
    (void)arg;
    if (!body)
        return;
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *j = NULL;
    size_t n = evbuffer_get_length(body);
    if (e2b_json_parse(n ? (const char *)evbuffer_pullup(body, -1) : "", n, "compose body", &j, &err) < 0) {
        e2b_envd_http_error(req, 400, "%s", err->msg);
        return;
    }
    const char *dest = NULL, *uname = NULL;
    json_t *srcs = json_object_get(j, "source_paths");
    if (!json_is_object(j) || e2b_pj_str(j, "destination", NULL, &dest, &err) < 0 ||
        e2b_pj_str(j, "username", NULL, &uname, &err) < 0 || !dest || !*dest || !json_is_array(srcs) ||
        json_array_size(srcs) == 0) {
        json_decref(j);
        e2b_envd_http_error(req, 400, "compose wants {destination, source_paths[], username?}");
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(srcs, i, v) if (!json_is_string(v))
    {
        json_decref(j);
        e2b_envd_http_error(req, 400, "source_paths must be strings");
        return;
    }
    struct e2b_user *user = NULL;
    if (e2b_envd_request_user(req, uname, &user, &err) < 0) {
        json_decref(j);
        e2b_envd_http_error(req, 401, "%s", err->msg);
        return;
    }
    struct upload u = {.user = user, .cur = {.fd = -1}};
    _cleanup_free_ char *dpath = e2b_envd_resolve_path(dest, user, e2b_envd.default_workdir, &err);
    _cleanup_free_ char *emsg = NULL;
    int status = 0;
    if (!dpath) {
        status = 400;
        emsg = xstrdup(err->msg);
    } else {
        status = sink_open(&u, dpath, &emsg);
    }
    char **resolved = xcalloc(json_array_size(srcs) + 1, sizeof(char *));
    e2b_envd_fs_as(user);
    json_array_foreach(srcs, i, v) {
        if (status)
            break;
        struct e2b_error *e2 = NULL;
        resolved[i] = e2b_envd_resolve_path(json_string_value(v), user, e2b_envd.default_workdir, &e2);
        if (!resolved[i]) {
            status = 400;
            emsg = xstrdup(e2->msg);
            e2b_error_free(e2);
            break;
        }
        if (append_file(u.cur.fd, resolved[i], &status, &emsg) < 0)
            break;
    }
    e2b_envd_fs_restore();
    if (!status) {
        u.results = json_array();
        status = sink_commit(&u, &emsg);
    }
    if (status) {
        sink_abort(&u.cur);
        e2b_envd_http_error(req, status, "%s", emsg ? emsg : "compose failed");
    } else {
        e2b_envd_fs_as(user);
        for (i = 0; resolved[i]; i++)
            if (!STREQ(resolved[i], dpath))
                unlink(resolved[i]);
        e2b_envd_fs_restore();
        json_t *entry = json_incref(json_array_get(u.results, 0));
        _cleanup_free_ char *out = e2b_json_dump(entry, JSON_COMPACT);
        json_decref(entry);
        e2b_http_reply(req, 200, "application/json", out, strlen(out));
    }
    for (i = 0; resolved[i]; i++)
        free(resolved[i]);
    free(resolved);
    json_decref(u.results);
    e2b_user_free(user);
    json_decref(j);
}

void e2b_files_handle(struct e2b_http_req *req)
{
    const char *method = e2b_http_method(req);
    bool get = STREQ(method, "GET") || STREQ(method, "HEAD");
    bool post = STREQ(method, "POST");
    if (STREQ(e2b_http_path(req), "/files/compose")) {
        if (!post) {
            e2b_http_add_header(req, "Allow", "POST");
            e2b_envd_http_error(req, 405, "method not allowed");
        } else if (!e2b_envd_token_ok(req)) {
            e2b_envd_http_error(req, 401, "invalid access token");
        } else {
            e2b_http_read_body(req, 1024 * 1024, compose_body, NULL);
        }
        return;
    }
    if (!get && !post) {
        e2b_http_add_header(req, "Allow", "GET, HEAD, POST");
        e2b_envd_http_error(req, 405, "method not allowed");
        return;
    }
    if (!files_auth(req, get ? "read" : "write"))
        return;
    _cleanup_error_ struct e2b_error *err = NULL;
    struct e2b_user *user = NULL;
    if (e2b_envd_request_user(req, e2b_http_query(req, "username"), &user, &err) < 0) {
        e2b_envd_http_error(req, 401, "%s", err->msg);
        return;
    }
    const char *qpath = e2b_http_query(req, "path");
    if (post) {
        upload(req, user, qpath); /* takes user */
        return;
    }
    _cleanup_user_ struct e2b_user *u = user;
    _cleanup_free_ char *path = e2b_envd_resolve_path(qpath ? qpath : "", u, e2b_envd.default_workdir, &err);
    if (!path) {
        e2b_envd_http_error(req, 400, "%s", err->msg);
        return;
    }
    download(req, u, path);
}
