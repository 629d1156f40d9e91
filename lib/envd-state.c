/* envd-state.c - see envd-state.h */
#include "envd-state.h"
#include "envd-crypto.h"

#include <grp.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/fsuid.h>

struct e2b_envd e2b_envd;

void e2b_envd_fs_as(const struct e2b_user *u)
{
    if (geteuid() != 0 || !u)
        return;
    setgroups(u->ngroups, u->groups);
    setfsgid(u->gid);
    setfsuid(u->uid);
}

void e2b_envd_fs_restore(void)
{
    if (geteuid() != 0)
        return;
    setfsuid(0);
    setfsgid(0);
    setgroups(0, NULL);
}

void e2b_envd_stream_error(struct e2b_http_req *req, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        abort();
    va_end(ap);
    struct e2b_rpc_stream *s = e2b_rpc_stream_start(req, NULL, NULL, NULL);
    e2b_rpc_stream_end(s, code, m);
}

void e2b_envd_http_error(struct e2b_http_req *req, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        abort();
    va_end(ap);
    json_t *j = json_pack("{s:i,s:o}", "code", status, "message", e2b_json_string_lossy(m));
    _cleanup_free_ char *s = e2b_json_dump(j, JSON_COMPACT);
    json_decref(j);
    e2b_http_reply(req, status, "application/json", s, strlen(s));
}

bool e2b_envd_token_ok(struct e2b_http_req *req)
{
    if (!e2b_envd.access_token)
        return true;
    const char *t = e2b_http_header(req, "X-Access-Token");
    return t && e2b_consttime_streq(t, e2b_envd.access_token);
}

int e2b_envd_request_user(struct e2b_http_req *req, const char *name, struct e2b_user **ret,
                          struct e2b_error **err)
{
    _cleanup_free_ uint8_t *dec = NULL;
    const char *auth = e2b_http_header(req, "Authorization");
    if (auth && !(name && *name)) {
        if (strncasecmp(auth, "Basic ", 6) != 0)
            return e2b_error_set(err, E2B_ERR_AUTH, "unsupported authorization scheme");
        const char *b = auth + 6;
        while (*b == ' ')
            b++;
        ssize_t n = e2b_base64_decode(b, strlen(b), &dec);
        if (n < 0 || memchr(dec, '\0', (size_t)n))
            return e2b_error_set(err, E2B_ERR_AUTH, "invalid authorization header");
        char *colon = strchr((char *)dec, ':');
        if (colon)
            *colon = '\0';
        name = (const char *)dec;
    }
    if (!name || !*name)
        name = e2b_envd.default_user;
    if (e2b_user_lookup(name, ret, err) < 0)
        return e2b_error_wrap(err, "invalid user");
    return 0;
}
