/* sandbox-client.c - see sandbox-client.h. */
#include "sandbox-client.h"
#include "envd-crypto.h"
#include "fsutil.h"
#include "http.h"

#include <signal.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- Connect envelopes ------------------------------------------------- */

void e2b_connect_decoder_init(struct e2b_connect_decoder *d, e2b_connect_msg_fn *on_msg, void *ud)
{
    memset(d, 0, sizeof(*d));
    strbuf_init(&d->buf);
    d->on_msg = on_msg;
    d->ud = ud;
}

void e2b_connect_decoder_release(struct e2b_connect_decoder *d)
{
    strbuf_release(&d->buf);
    e2b_error_free(d->err);
    d->err = NULL;
}

int e2b_connect_errcode(const char *code)
{
    static const struct {
        const char *name;
        int code;
    } map[] = {
        {"not_found", E2B_ERR_NOT_FOUND},         {"already_exists", E2B_ERR_EXISTS},
        {"invalid_argument", E2B_ERR_INVALID},    {"out_of_range", E2B_ERR_INVALID},
        {"failed_precondition", E2B_ERR_INVALID}, {"permission_denied", E2B_ERR_PERMISSION},
        {"unauthenticated", E2B_ERR_AUTH},        {"deadline_exceeded", E2B_ERR_TIMEOUT},
        {"resource_exhausted", E2B_ERR_NOSPACE},  {"unimplemented", E2B_ERR_UNSUPPORTED},
        {"canceled", E2B_ERR_CANCELLED},          {"unavailable", E2B_ERR_NETWORK},
    };
    for (size_t i = 0; code && i < ARRAY_SIZE(map); i++)
        if (STREQ(code, map[i].name))
            return map[i].code;
    return E2B_ERR_API;
}

/* The end frame: {} or {"error":{"code","message"},"metadata":{}}. */
static void end_frame(struct e2b_connect_decoder *d, const char *payload, size_t n)
{
    d->ended = true;
    json_t *j = n ? json_loadb(payload, n, 0, NULL) : json_object();
    if (!json_is_object(j)) {
        e2b_error_set(&d->err, E2B_ERR_INVALID, "envd sent a malformed end-of-stream frame");
    } else if (json_is_object(json_object_get(j, "error"))) {
        json_t *e = json_object_get(j, "error");
        const char *code = e2b_json_str(e, "code"), *msg = e2b_json_str(e, "message");
        e2b_error_set(&d->err, e2b_connect_errcode(code), "envd: %s%s%s", code ? code : "unknown",
                      msg ? ": " : "", msg ? msg : "");
    }
    json_decref(j);
}

int e2b_connect_decoder_feed(struct e2b_connect_decoder *d, const void *data, size_t len)
{
    if (d->err || d->stopped)
        return -1;
    if (d->ended) {
        if (len == 0)
            return 0;
        return e2b_error_set(&d->err, E2B_ERR_INVALID, "envd sent data after the end of the stream");
    }
    /* Whole frames straight from data when nothing is buffered; the rest is kept. */
    const char *p = data;
    size_t left = len;
    if (d->buf.len) {
        strbuf_add(&d->buf, data, len);
        p = d->buf.buf;
        left = d->buf.len;
    }
    size_t used = 0;
    int r = 0;
    while (left - used >= 5) {
        const uint8_t *h = (const uint8_t *)p + used;
        size_t n = ((size_t)h[1] << 24) | ((size_t)h[2] << 16) | ((size_t)h[3] << 8) | h[4];
        if (n > E2B_CONNECT_MAX_FRAME) {
            r = e2b_error_set(&d->err, E2B_ERR_INVALID, "envd sent a %zu-byte frame (limit %u)", n,
                              E2B_CONNECT_MAX_FRAME);
            break;
        }
        if (h[0] & E2B_CONNECT_FLAG_COMPRESSED) {
            r = e2b_error_set(&d->err, E2B_ERR_UNSUPPORTED, "envd sent a compressed frame");
            break;
        }
        if (left - used < 5 + n)
            break;
        const char *payload = (const char *)h + 5;
        used += 5 + n;
        if (h[0] & E2B_CONNECT_FLAG_END) {
            end_frame(d, payload, n);
            if (!d->err && left - used > 0)
                e2b_error_set(&d->err, E2B_ERR_INVALID, "envd sent data after the end of the stream");
            r = d->err ? -1 : 0;
            used = left;
            break;
        }
        json_error_t je;
        json_t *msg = json_loadb(payload, n, 0, &je);
        if (!json_is_object(msg)) {
            json_decref(msg);
            r = e2b_error_set(&d->err, E2B_ERR_INVALID, "envd sent a malformed stream message: %s",
                              je.text[0] ? je.text : "not an object");
            break;
        }
        d->frames++;
        int cr = d->on_msg ? d->on_msg(msg, d->ud) : 0;
        json_decref(msg);
        if (cr < 0) {
            d->stopped = true;
            r = -1;
            break;
        }
    }
    if (r < 0) {
        strbuf_reset(&d->buf);
        return -1;
    }
    if (d->buf.len) {
        strbuf_consume(&d->buf, used);
    } else if (used < len) {
        strbuf_add(&d->buf, p + used, len - used);
    }
    return 0;
}

int e2b_connect_decoder_finish(struct e2b_connect_decoder *d, struct e2b_error **err)
{
    if (d->stopped && !d->err)
        return 0;
    if (d->err) {
        if (err && !*err)
            *err = TAKE_PTR(d->err);
        return -1;
    }
    if (!d->ended)
        return e2b_error_set(err, E2B_ERR_NETWORK, d->buf.len
                                 ? "the stream from envd was cut inside a frame"
                                 : "the stream from envd ended without its end frame");
    return 0;
}

void e2b_connect_envelope(struct strbuf *out, unsigned flags, const json_t *msg)
{
    _cleanup_free_ char *json = e2b_json_dump(msg, JSON_COMPACT);
    size_t n = strlen(json);
    uint8_t h[5] = {(uint8_t)flags, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                    (uint8_t)n};
    strbuf_add(out, h, 5);
    strbuf_add(out, json, n);
}

/* ---- requests ---------------------------------------------------------- */

static char **request_headers(const struct e2b_envd_client *c, const char *ctype, long timeout_ms,
                              bool stream)
{
    char **h = NULL;
    if (ctype) {
        _cleanup_free_ char *l = xasprintf("Content-Type: %s", ctype);
        h = e2b_strv_push(h, l);
    }
    if (stream)
        h = e2b_strv_push(h, "Connect-Protocol-Version: 1");
    if (c->user) {
        _cleanup_free_ char *raw = xasprintf("%s:", c->user);
        _cleanup_free_ char *b64 = e2b_base64_encode(raw, strlen(raw), true);
        _cleanup_free_ char *l = xasprintf("Authorization: Basic %s", b64);
        h = e2b_strv_push(h, l);
    }
    if (c->ep->access_token) {
        _cleanup_free_ char *l = xasprintf("X-Access-Token: %s", c->ep->access_token);
        h = e2b_strv_push(h, l);
    }
    if (c->ep->sandbox_id && !e2b_str_has_prefix(c->ep->base, "unix:")) { /* for a router */
        _cleanup_free_ char *l = xasprintf("E2b-Sandbox-Id: %s", c->ep->sandbox_id);
        _cleanup_free_ char *p = xasprintf("E2b-Sandbox-Port: %u", c->port ? c->port : E2B_ENVD_PORT);
        h = e2b_strv_push(h, l);
        h = e2b_strv_push(h, p);
    }
    if (timeout_ms > 0) {
        _cleanup_free_ char *l = xasprintf("Connect-Timeout-Ms: %ld", timeout_ms);
        h = e2b_strv_push(h, l);
    }
    if (stream && c->keepalive_s) {
        _cleanup_free_ char *l = xasprintf("Keepalive-Ping-Interval: %u", c->keepalive_s);
        h = e2b_strv_push(h, l);
    }
    return h;
}

static long unary_timeout(const struct e2b_envd_client *c)
{
    return c->unary_timeout_ms < 0 ? 0 : c->unary_timeout_ms ? c->unary_timeout_ms : 30000;
}

/* Connect unary errors arrive as HTTP statuses with {"code","message"}; use
 * the Connect code when there is one (409 covers several). */
static int call_error(const struct e2b_http_resp *resp, const char *procedure, struct e2b_error **err)
{
    json_t *j = resp->body.len ? json_loadb(resp->body.buf, resp->body.len, 0, NULL) : NULL;
    const char *code = e2b_json_str(j, "code"), *msg = e2b_json_str(j, "message");
    int r;
    if (code)
        r = e2b_error_set(err, e2b_connect_errcode(code), "envd: %s%s%s", code, msg ? ": " : "",
                          msg ? msg : "");
    else {
        _cleanup_free_ char *m = e2b_http_error_message(resp->status, resp->body.buf, resp->body.len);
        r = e2b_error_set(err, e2b_http_status_errcode(resp->status), "envd %s said %s", procedure, m);
    }
    if (err && *err)
        (*err)->http_status = resp->status;
    json_decref(j);
    return r;
}

int e2b_envd_unary(const struct e2b_envd_client *c, const char *procedure, const json_t *req,
                   json_t **ret, struct e2b_error **err)
{
    _cleanup_strv_ char **h = request_headers(c, "application/json", 0, false);
    _cleanup_free_ char *body = e2b_json_dump(req, JSON_COMPACT);
    _cleanup_free_ char *path = xasprintf("/%s", procedure);
    struct e2b_http_req hr = {.base = c->ep->base, .path = path, .headers = (const char *const *)h,
                              .body = body, .body_len = strlen(body),
                              .timeout_ms = unary_timeout(c), .keep_error_status = true};
    struct e2b_http_resp resp;
    int r = e2b_http_request(&hr, &resp, err);
    if (r == 0 && resp.status >= 400)
        r = call_error(&resp, procedure, err);
    else if (r == 0 && ret)
        r = e2b_json_parse(resp.body.buf, resp.body.len, "envd reply", ret, err);
    e2b_http_resp_release(&resp);
    return r;
}

static int stream_data(const void *data, size_t len, void *ud)
{
    return e2b_connect_decoder_feed(ud, data, len) < 0 ? -1 : 0;
}

/* One server stream: req goes as one envelope, each reply message goes to
 * fn as it arrives. timeout_ms (0: none) is sent as Connect-Timeout-Ms,
 * which envd also takes as the lifetime of a process it starts. Returns 0
 * after a clean end frame or when fn stopped the stream, else -1. */
static int envd_stream(const struct e2b_envd_client *c, const char *procedure, const json_t *req,
                       long timeout_ms, e2b_connect_msg_fn *fn, void *ud, struct e2b_error **err)
{
    _cleanup_strv_ char **h = request_headers(c, "application/connect+json", timeout_ms, true);
    _cleanup_strbuf_ struct strbuf frame = STRBUF_INIT;
    e2b_connect_envelope(&frame, 0, req);
    _cleanup_free_ char *path = xasprintf("/%s", procedure);
    struct e2b_connect_decoder d;
    e2b_connect_decoder_init(&d, fn, ud);
    struct e2b_http_req hr = {.base = c->ep->base, .path = path, .headers = (const char *const *)h,
                              .body = frame.buf, .body_len = frame.len, .on_data = stream_data,
                              .ud = &d, .keep_error_status = true};
    struct e2b_http_resp resp;
    struct e2b_error *herr = NULL;
    int r = e2b_http_request(&hr, &resp, &herr);
    if (r < 0 && herr->code == E2B_ERR_CANCELLED && (d.stopped || d.err)) {
        e2b_error_free(herr); /* we stopped it; the decoder says why */
        herr = NULL;
        r = 0;
    }
    if (r < 0)
        *err = herr;
    else if (resp.status >= 400)
        r = call_error(&resp, procedure, err);
    else
        r = e2b_connect_decoder_finish(&d, err);
    e2b_http_resp_release(&resp);
    e2b_connect_decoder_release(&d);
    return r;
}

/* ---- process.Process ---------------------------------------------------- */

static json_t *selector(struct e2b_process_sel sel)
{
    return sel.tag ? json_pack("{s:s}", "tag", sel.tag) : json_pack("{s:I}", "pid", (json_int_t)sel.pid);
}

/* Go's ProcessState.String() names a signal like strsignal(3) does, in lower case. */
static int signal_from_status(const char *status)
{
    const char *s = status + strlen("signal: ");
    size_t n = strcspn(s, "(");
    while (n && s[n - 1] == ' ')
        n--;
    if (n > 7 && strncmp(s, "signal ", 7) == 0)
        return atoi(s + 7);
    for (int sig = 1; sig < NSIG; sig++) {
        const char *name = strsignal(sig);
        if (name && strlen(name) == n && strncasecmp(name, s, n) == 0)
            return sig;
    }
    return SIGKILL;
}

int e2b_process_end_code(const json_t *end)
{
    /* proto3 JSON leaves zero values out: no exitCode means 0. A signal shows
     * in status ("signal: killed") with exitCode -1. */
    long long code = e2b_json_int(end, "exitCode", 0);
    const char *status = e2b_json_str(end, "status");
    if (status && e2b_str_has_prefix(status, "signal: "))
        return 128 + signal_from_status(status);
    if (code < 0)
        return 128 + SIGKILL;
    return (int)(code & 0xff);
}

int e2b_process_event_dispatch(json_t *msg, const struct e2b_process_events *ev)
{
    json_t *e = json_object_get(msg, "event");
    json_t *start = json_object_get(e, "start"), *data = json_object_get(e, "data"),
           *end = json_object_get(e, "end");
    if (start && ev->on_start)
        return ev->on_start((unsigned)e2b_json_int(start, "pid", 0), ev->ud);
    if (data && ev->on_output) {
        static const char *const keys[] = {"stdout", "stderr", "pty"};
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
            const char *b64 = e2b_json_str(data, keys[i]);
            if (!b64)
                continue;
            uint8_t *raw = NULL;
            ssize_t n = e2b_base64_decode(b64, strlen(b64), &raw);
            int r = n > 0 ? ev->on_output((enum e2b_output_kind)i, raw, (size_t)n, ev->ud) : 0;
            free(raw);
            if (r < 0)
                return r;
        }
        return 0;
    }
    if (end && ev->on_end) {
        struct e2b_process_end pe = {.exit_code = e2b_process_end_code(end),
                                     .exited = e2b_json_bool(end, "exited", false),
                                     .status = e2b_json_str(end, "status"),
                                     .error = e2b_json_str(end, "error")};
        return ev->on_end(&pe, ev->ud);
    }
    return 0; /* keepalive, or something newer than us */
}

static int process_msg(json_t *msg, void *ud)
{
    return e2b_process_event_dispatch(msg, ud);
}

json_t *e2b_process_start_request(const char *const *argv, const json_t *envs, const char *cwd,
                                  const char *tag, bool stdin_open, unsigned pty_cols,
                                  unsigned pty_rows)
{
    json_t *args = e2b_json_strv((char *const *)argv + 1);
    json_t *proc = json_pack("{s:s, s:o}", "cmd", argv[0], "args", args);
    json_object_set_new(proc, "envs", envs ? json_deep_copy(envs) : json_object());
    if (cwd)
        json_object_set_new(proc, "cwd", json_string(cwd));
    json_t *req = json_pack("{s:o, s:b}", "process", proc, "stdin", stdin_open);
    if (tag)
        json_object_set_new(req, "tag", json_string(tag));
    if (pty_cols && pty_rows)
        json_object_set_new(req, "pty", json_pack("{s:{s:I, s:I}}", "size", "cols", (json_int_t)pty_cols,
                                                  "rows", (json_int_t)pty_rows));
    return req;
}

int e2b_envd_process_start(const struct e2b_envd_client *c, const json_t *start_req, long timeout_ms,
                           const struct e2b_process_events *ev, struct e2b_error **err)
{
    return envd_stream(c, "process.Process/Start", start_req, timeout_ms, process_msg, (void *)ev,
                       err);
}

int e2b_envd_process_connect(const struct e2b_envd_client *c, struct e2b_process_sel sel,
                             const struct e2b_process_events *ev, struct e2b_error **err)
{
    _cleanup_json_ json_t *req = json_pack("{s:o}", "process", selector(sel));
    return envd_stream(c, "process.Process/Connect", req, 0, process_msg, (void *)ev, err);
}

int e2b_envd_process_send_input(const struct e2b_envd_client *c, struct e2b_process_sel sel, bool pty,
                                const void *data, size_t len, struct e2b_error **err)
{
    _cleanup_free_ char *b64 = e2b_base64_encode(data, len, true);
    _cleanup_json_ json_t *req = json_pack("{s:o, s:{s:s}}", "process", selector(sel), "input",
                                           pty ? "pty" : "stdin", b64);
    return e2b_envd_unary(c, "process.Process/SendInput", req, NULL, err);
}

int e2b_envd_process_close_stdin(const struct e2b_envd_client *c, struct e2b_process_sel sel,
                                 struct e2b_error **err)
{
    _cleanup_json_ json_t *req = json_pack("{s:o}", "process", selector(sel));
    return e2b_envd_unary(c, "process.Process/CloseStdin", req, NULL, err);
}

int e2b_envd_process_signal(const struct e2b_envd_client *c, struct e2b_process_sel sel, int signum,
                            struct e2b_error **err)
{
    if (signum != SIGKILL && signum != SIGTERM)
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "envd sends only SIGKILL and SIGTERM, not %d",
                             signum);
    _cleanup_json_ json_t *req = json_pack("{s:o, s:s}", "process", selector(sel), "signal",
                                           signum == SIGKILL ? "SIGNAL_SIGKILL" : "SIGNAL_SIGTERM");
    return e2b_envd_unary(c, "process.Process/SendSignal", req, NULL, err);
}

int e2b_envd_process_resize(const struct e2b_envd_client *c, struct e2b_process_sel sel,
                            unsigned cols, unsigned rows, struct e2b_error **err)
{
    _cleanup_json_ json_t *req = json_pack("{s:o, s:{s:{s:I, s:I}}}", "process", selector(sel), "pty",
                                           "size", "cols", (json_int_t)cols, "rows", (json_int_t)rows);
    return e2b_envd_unary(c, "process.Process/Update", req, NULL, err);
}

/* ---- filesystem.Filesystem --------------------------------------------- */

struct watch_ctx {
    int (*on_started)(void *ud);
    int (*fn)(json_t *event, void *ud);
    void *ud;
};

static int watch_msg(json_t *msg, void *ud)
{
    struct watch_ctx *w = ud;
    json_t *fs = json_object_get(msg, "filesystem");
    if (json_object_get(msg, "start"))
        return w->on_started ? w->on_started(w->ud) : 0;
    if (fs)
        return w->fn(fs, w->ud);
    return 0;
}

int e2b_envd_fs_watch(const struct e2b_envd_client *c, const char *path, bool recursive,
                      long timeout_ms, int (*on_started)(void *ud), int (*fn)(json_t *event, void *ud), void *ud,
                      struct e2b_error **err)
{
    struct watch_ctx w = {.on_started = on_started, .fn = fn, .ud = ud};
    _cleanup_json_ json_t *req = json_pack("{s:s, s:b, s:b}", "path", path, "recursive", recursive,
                                           "includeEntry", true);
    return envd_stream(c, "filesystem.Filesystem/WatchDir", req, timeout_ms, watch_msg, &w, err);
}

const char *e2b_envd_short_type(const char *e)
{
    static const struct {
        const char *proto, *name;
    } map[] = {
        {"FILE_TYPE_FILE", "file"},       {"FILE_TYPE_DIRECTORY", "dir"},
        {"FILE_TYPE_SYMLINK", "symlink"}, {"EVENT_TYPE_CREATE", "create"},
        {"EVENT_TYPE_WRITE", "write"},    {"EVENT_TYPE_REMOVE", "remove"},
        {"EVENT_TYPE_RENAME", "rename"},  {"EVENT_TYPE_CHMOD", "chmod"},
    };
    for (size_t i = 0; e && i < ARRAY_SIZE(map); i++)
        if (STREQ(e, map[i].proto))
            return map[i].name;
    return e ? e : "unknown";
}

/* ---- /files ------------------------------------------------------------ */

/* The descriptor a transfer reads or writes, and what became of it. */
struct fd_io {
    int fd;
    const char *name;
    struct e2b_error *err; /* our side failed: reading or writing fd */
};

static int to_fd(const void *data, size_t len, void *ud)
{
    struct fd_io *io = ud;
    return e2b_write_fd(io->fd, data, len, io->name, &io->err);
}

static ssize_t from_fd(void *buf, size_t len, void *ud)
{
    struct fd_io *io = ud;
    for (;;) {
        ssize_t n = read(io->fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            e2b_error_sys(&io->err, errno, "cannot read %s", io->name);
        return n;
    }
}

static char *files_path(const struct e2b_envd_client *c, const char *path)
{
    _cleanup_free_ char *p = e2b_url_escape(path, false);
    if (!c->user)
        return xasprintf("/files?path=%s", p);
    _cleanup_free_ char *u = e2b_url_escape(c->user, false);
    return xasprintf("/files?path=%s&username=%s", p, u);
}

/* One /files request; an error on our side of fd wins over the stopped
 * transfer it caused. */
static int files_request(struct e2b_http_req *hr, struct fd_io *io, const char *what,
                         struct e2b_error **err)
{
    struct e2b_http_resp resp;
    struct e2b_error *herr = NULL;
    int r = e2b_http_request(hr, &resp, &herr);
    e2b_http_resp_release(&resp);
    if (io->err) {
        e2b_error_free(herr);
        *err = TAKE_PTR(io->err);
        return -1;
    }
    if (r < 0) {
        *err = herr;
        return e2b_error_wrap(err, "cannot %s", what);
    }
    return 0;
}

int e2b_envd_file_download(const struct e2b_envd_client *c, const char *path, int fd,
                           const char *fd_name, struct e2b_error **err)
{
    _cleanup_strv_ char **h = request_headers(c, NULL, 0, false);
    _cleanup_free_ char *p = files_path(c, path);
    _cleanup_free_ char *what = xasprintf("read '%s'", path);
    struct fd_io io = {.fd = fd, .name = fd_name};
    struct e2b_http_req hr = {.base = c->ep->base, .path = p, .headers = (const char *const *)h,
                              .on_data = to_fd, .ud = &io};
    return files_request(&hr, &io, what, err);
}

int e2b_envd_file_upload(const struct e2b_envd_client *c, const char *path, int fd,
                         const char *fd_name, struct e2b_error **err)
{
    _cleanup_strv_ char **h = request_headers(c, "application/octet-stream", 0, false);
    _cleanup_free_ char *p = files_path(c, path);
    _cleanup_free_ char *what = xasprintf("write '%s'", path);
    struct stat st;
    long long size = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
    struct fd_io io = {.fd = fd, .name = fd_name};
    struct e2b_http_req hr = {.base = c->ep->base, .path = p, .headers = (const char *const *)h,
                              .read_body = from_fd, .body_size = size, .ud = &io};
    return files_request(&hr, &io, what, err);
}
