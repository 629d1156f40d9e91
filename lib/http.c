/* http.c - see http.h */
#include "http.h"
#include "dl-curl.h"
#include "json.h"

#include <ctype.h>
#include <pthread.h>
#include <strings.h>

/* One curl handle per thread, kept between requests: curl keeps the
 * connection it made open (HTTP/1.1 keep-alive), so a thread that sends
 * many small requests to one endpoint (an exec's stdin, 32 KiB a
 * SendInput) connects once, not every time. Freed when the thread ends. */
static pthread_key_t handle_key;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;

static void handle_free(void *h) { curl_easy_cleanup(h); }

/* A forked child must not use its parent's connections (nor close them:
 * TLS would say goodbye on the parent's behalf): it forgets the handle. */
static void handle_forget(void) { pthread_setspecific(handle_key, NULL); }

static void handle_key_make(void)
{
    if (pthread_key_create(&handle_key, handle_free) != 0)
        abort();
    pthread_atfork(NULL, NULL, handle_forget);
}

static CURL *handle_get(void)
{
    pthread_once(&handle_once, handle_key_make);
    CURL *curl = pthread_getspecific(handle_key);
    if (curl) {
        curl_easy_reset(curl); /* options back to defaults; connections stay */
        return curl;
    }
    curl = curl_easy_init();
    if (!curl || pthread_setspecific(handle_key, curl) != 0)
        abort();
    return curl;
}

struct transfer {
    const struct e2b_http_req *req;
    struct e2b_http_resp *resp;
    CURL *curl;
    const char *body_pos;
    size_t body_left;
    bool aborted;
};

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
    struct transfer *t = ud;
    size_t len = size * nmemb;
    long status = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    if (t->req->on_data && status < 400) {
        if (t->req->on_data(data, len, t->req->ud) < 0) {
            t->aborted = true;
            return 0;
        }
        return len;
    }
    strbuf_add(&t->resp->body, data, len);
    return len;
}

static size_t on_read(char *buf, size_t size, size_t nmemb, void *ud)
{
    struct transfer *t = ud;
    size_t len = size * nmemb;
    if (t->req->read_body) {
        ssize_t n = t->req->read_body(buf, len, t->req->ud);
        if (n < 0) {
            t->aborted = true;
            return CURL_READFUNC_ABORT;
        }
        return (size_t)n;
    }
    if (len > t->body_left)
        len = t->body_left;
    memcpy(buf, t->body_pos, len);
    t->body_pos += len;
    t->body_left -= len;
    return len;
}

/* A reused connection that turned out closed: curl sends the body again. */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
    struct transfer *t = ud;
    if (t->req->read_body || origin != SEEK_SET || offset < 0 || (size_t)offset > t->req->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    t->body_pos = (const char *)t->req->body + offset;
    t->body_left = t->req->body_len - (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct transfer *t = ud;
    size_t len = size * nmemb;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new response (redirect, 100) */
        e2b_strv_free(t->resp->headers);
        t->resp->headers = NULL;
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon)
        return len;
    size_t end = len;
    while (end && (data[end - 1] == '\r' || data[end - 1] == '\n'))
        end--;
    _cleanup_free_ char *line = xstrndup(data, end);
    t->resp->headers = e2b_strv_push(t->resp->headers, line);
    return len;
}

const char *e2b_http_resp_header(const struct e2b_http_resp *resp, const char *name)
{
    size_t n = strlen(name);
    for (char **h = resp->headers; h && *h; h++)
        if (strncasecmp(*h, name, n) == 0 && (*h)[n] == ':') {
            const char *v = *h + n + 1;
            while (*v == ' ')
                v++;
            return v;
        }
    return NULL;
}

int e2b_http_status_errcode(long status)
{
    switch (status) {
    case 400: case 422: return E2B_ERR_INVALID;
    case 401: case 403: return E2B_ERR_AUTH;
    case 404: return E2B_ERR_NOT_FOUND;
    case 409: return E2B_ERR_EXISTS;
    case 408: case 504: return E2B_ERR_TIMEOUT;
    case 507: return E2B_ERR_NOSPACE;
    default: return E2B_ERR_API;
    }
}

int e2b_errcode_http_status(int code)
{
    switch (code) {
    case E2B_ERR_NOT_FOUND:
        return 404;
    case E2B_ERR_INVALID:
    case E2B_ERR_USAGE:
    case E2B_ERR_UNSUPPORTED:
        return 400;
    case E2B_ERR_EXISTS:
        return 409;
    case E2B_ERR_AUTH:
        return 401;
    case E2B_ERR_PERMISSION:
        return 403;
    default:
        return 500;
    }
}

char *e2b_http_error_message(long status, const char *body, size_t len)
{
    json_t *j = NULL;
    if (len && (j = json_loadb(body, len, 0, NULL))) {
        /* E2B: {code, message}; Connect: {code, message}; registries: {errors:[{code,message}]} */
        const char *msg = e2b_json_str(j, "message");
        json_t *errs = json_object_get(j, "errors");
        if (!msg && json_is_array(errs) && json_array_size(errs))
            msg = e2b_json_str(json_array_get(errs, 0), "message");
        if (!msg)
            msg = e2b_json_str(j, "error");
        if (msg) {
            char *r = xasprintf("%ld %s", status, msg);
            json_decref(j);
            return r;
        }
        json_decref(j);
    }
    /* A short plain-text body is worth showing; HTML pages are not. */
    if (len && len < 200 && memchr(body, '<', len) == NULL) {
        size_t n = len;
        while (n && isspace((unsigned char)body[n - 1]))
            n--;
        return xasprintf("%ld %.*s", status, (int)n, body);
    }
    return xasprintf("%ld", status);
}

static curl_socket_t open_given(void *ud, curlsocktype purpose, struct curl_sockaddr *addr)
{
    (void)purpose;
    (void)addr;
    const struct e2b_http_req *req = ud;
    int fd = req->connect(req->connect_ud);
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static int given_is_connected(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    (void)ud;
    (void)fd;
    (void)purpose;
    return CURL_SOCKOPT_ALREADY_CONNECTED;
}

static int do_once(const struct e2b_http_req *req, struct e2b_http_resp *resp, CURLcode *ret_code,
                   char *errbuf)
{
    CURL *curl = handle_get();
    struct transfer t = {.req = req, .resp = resp, .curl = curl, .body_pos = req->body,
                         .body_left = req->body_len};
    struct curl_slist *hdrs = NULL;
    _cleanup_free_ char *url = NULL;
    const char *base = req->base ? req->base : "";
    if (e2b_str_has_prefix(base, "unix:")) {
        curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, base + 5);
        url = xasprintf("http://localhost%s", req->path ? req->path : "/");
    } else {
        size_t bl = strlen(base);
        while (bl && base[bl - 1] == '/')
            bl--;
        url = xasprintf("%.*s%s", (int)bl, base, req->path ? req->path : "");
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    if (req->connect) {
        curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_given);
        curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, (void *)req);
        curl_easy_setopt(curl, CURLOPT_SOCKOPTFUNCTION, given_is_connected);
    }
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "e2b-cli/" E2B_VERSION);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     req->connect_timeout_ms ? req->connect_timeout_ms : 10000L);
    if (req->timeout_ms)
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (req->follow_redirects) {
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
        curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    }
    bool has_body = req->body || req->read_body;
    const char *method = req->method ? req->method : has_body ? "POST" : "GET";
    if (has_body) {
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(curl, CURLOPT_READDATA, &t);
        curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(curl, CURLOPT_SEEKDATA, &t);
        long long size = req->read_body ? req->body_size : (long long)req->body_len;
        if (size >= 0)
            curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
        /* curl adds Expect: 100-continue to uploads; servers need not support it. */
        hdrs = curl_slist_append(hdrs, "Expect:");
    }
    if (!STREQ(method, "GET") && !(has_body && STREQ(method, "PUT")))
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (STREQ(method, "HEAD"))
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    for (const char *const *h = req->headers; h && *h; h++)
        hdrs = curl_slist_append(hdrs, *h);
    if (hdrs)
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);

    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_slist_free_all(hdrs); /* still named by the handle: reset before its next use */
    *ret_code = rc;
    if (t.aborted)
        return 1;
    return 0;
}

int e2b_http_request(const struct e2b_http_req *req, struct e2b_http_resp *resp,
                     struct e2b_error **err)
{
    memset(resp, 0, sizeof(*resp));
    strbuf_init(&resp->body);
    if (e2b_curl_load(err) < 0)
        return -1;
    const char *where = req->base && e2b_str_has_prefix(req->base, "unix:") ? req->base + 5 : req->base;
    for (int attempt = 0;; attempt++) {
        char errbuf[CURL_ERROR_SIZE] = "";
        CURLcode rc;
        int aborted = do_once(req, resp, &rc, errbuf);
        if (aborted)
            return e2b_error_set(err, E2B_ERR_CANCELLED, "request to %s%s was stopped", where,
                                 req->path ? req->path : "");
        bool connect_failed = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST;
        if (connect_failed && attempt < req->retries && !req->read_body) {
            usleep(200000u << (attempt < 4 ? attempt : 4));
            strbuf_reset(&resp->body);
            continue;
        }
        if (rc != CURLE_OK) {
            int code = rc == CURLE_OPERATION_TIMEDOUT ? E2B_ERR_TIMEOUT : E2B_ERR_NETWORK;
            return e2b_error_set(err, code, "cannot reach %s: %s", where,
                                 errbuf[0] ? errbuf : curl_easy_strerror(rc));
        }
        break;
    }
    if (resp->status >= 400 && !req->keep_error_status) {
        _cleanup_free_ char *m = e2b_http_error_message(resp->status, resp->body.buf, resp->body.len);
        int r = e2b_error_set(err, e2b_http_status_errcode(resp->status), "%s said %s", where, m);
        if (err && *err) /* callers may pass no error to fill */
            (*err)->http_status = resp->status;
        return r;
    }
    return 0;
}

void e2b_http_resp_release(struct e2b_http_resp *resp)
{
    strbuf_release(&resp->body);
    e2b_strv_free(resp->headers);
    resp->headers = NULL;
}

char *e2b_url_escape(const char *s, bool keep_slash)
{
    struct strbuf sb = STRBUF_INIT;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p) || (keep_slash && *p == '/'))
            strbuf_addch(&sb, (char)*p);
        else
            strbuf_addf(&sb, "%%%02X", *p);
    }
    return strbuf_detach(&sb, NULL);
}
