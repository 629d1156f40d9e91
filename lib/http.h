/* http.h - an HTTP client over libcurl.
 *
 * One call per request: timeouts, retries on connect errors, unix-socket
 * endpoints ("unix:/run/e2b/x/envd.sock"), streamed request and response
 * bodies, and error statuses turned into messages taken from JSON error
 * bodies ({"code":..,"message":..} as E2B's API and Connect both send).
 */
#ifndef E2B_HTTP_H
#define E2B_HTTP_H

#include "error.h"
#include "strbuf.h"
#include <sys/types.h>

struct e2b_http_req {
    const char *method;            /* NULL means GET, or POST when a body is given */
    const char *base;              /* "http://host:port", "https://..", or "unix:/path.sock" */
    const char *path;              /* "/v2/sandboxes?limit=1", appended to base */
    const char *const *headers;    /* "Name: value", NULL-terminated, may be NULL */
    const void *body;              /* whole request body, or NULL */
    size_t body_len;
    /* Streamed request body instead: fill buf, return bytes (0 = end, <0 = abort). */
    ssize_t (*read_body)(void *buf, size_t len, void *ud);
    long long body_size;           /* for read_body: total size, or -1 for chunked */
    /* Streamed response body: called as data arrives for 2xx/3xx answers;
     * return <0 to abort. Error answers are collected for the message. */
    int (*on_data)(const void *data, size_t len, void *ud);
    void *ud;
    long timeout_ms;               /* whole transfer; 0 = none */
    long connect_timeout_ms;       /* 0 = 10 s */
    int retries;                   /* extra tries when the connection fails */
    bool keep_error_status;        /* return 0 for >=400 answers; caller looks at status */
    bool follow_redirects;         /* follow 3xx Location (up to 10); headers then describe
                                    * the last answer. Authorization is not sent to other hosts. */
    /* A connection made by the caller instead of libcurl's (a port inside a
     * local sandbox, say): returns a connected socket (taken) or -1. base
     * still gives the URL (http://localhost:PORT). */
    int (*connect)(void *connect_ud);
    void *connect_ud;
};

struct e2b_http_resp {
    long status;
    struct strbuf body;            /* the body, unless on_data took it */
    char **headers;                /* "name: value" lines, NULL-terminated */
};

int e2b_http_request(const struct e2b_http_req *req, struct e2b_http_resp *resp,
                     struct e2b_error **err);
void e2b_http_resp_release(struct e2b_http_resp *resp);
/* Value of a response header (case-insensitive name), or NULL. */
const char *e2b_http_resp_header(const struct e2b_http_resp *resp, const char *name);
/* "registry said 404: manifest unknown": message for an error answer. */
char *e2b_http_error_message(long status, const char *body, size_t len);
/* The e2b error code for an HTTP status (401 -> AUTH, 404 -> NOT_FOUND ...). */
int e2b_http_status_errcode(long status);
/* And back: the HTTP status an E2B API answers an error of this code with
 * (404, 400, 409, 401, 403; 500 for the rest). */
int e2b_errcode_http_status(int code);
/* Percent-encode for a URL; keep_slash for whole paths, not query values. */
char *e2b_url_escape(const char *s, bool keep_slash);

#endif
