/* serve-auth.c - see serve-auth.h */
#include "serve-auth.h"
#include "envd-crypto.h"
#include "http.h"
#include "serve-keys.h"
#include "template-store.h"

#include <pthread.h>
#include <strings.h>

#define ACCESS_TTL_S (30 * 24 * 3600)
#define CLIENT_ID    "e2b-serve"
#define MAX_TOKENS   1024

struct token {
    char *access, *refresh, *key;
    struct token *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct token *tokens;
static size_t n_tokens;

static void token_free(struct token *t)
{
    free(t->access);
    free(t->refresh);
    free(t->key);
    free(t);
}

/* An access token the CLI can read the expiry of (a JWT's shape; the
 * signature is only random: the server looks tokens up, it does not trust them). */
static char *jwt(void)
{
    _cleanup_free_ char *head = e2b_base64_encode("{\"alg\":\"none\",\"typ\":\"JWT\"}", 27, false);
    _cleanup_free_ char *claims = xasprintf("{\"sub\":\"e2b-serve\",\"exp\":%lld}",
                                            (long long)(e2b_wall_ms() / 1000 + ACCESS_TTL_S));
    _cleanup_free_ char *body = e2b_base64_encode(claims, strlen(claims), false);
    _cleanup_free_ char *a = e2b_random_id(), *b = e2b_random_id();
    char *s = xasprintf("%s.%s.%s%s", head, body, a, b);
    for (char *p = s; *p; p++) /* base64url */
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return s;
}

static struct token *token_new(const char *key)
{
    struct token *t = xcalloc(1, sizeof(*t));
    t->access = jwt();
    _cleanup_free_ char *a = e2b_random_id(), *b = e2b_random_id();
    t->refresh = xasprintf("%s%s", a, b);
    t->key = xstrdup(key);
    pthread_mutex_lock(&mu);
    t->next = tokens;
    tokens = t;
    if (++n_tokens > MAX_TOKENS) { /* the oldest go */
        struct token **p = &tokens;
        for (size_t i = 0; *p && i < MAX_TOKENS; i++)
            p = &(*p)->next;
        while (*p) {
            struct token *x = *p;
            *p = x->next;
            token_free(x);
            n_tokens--;
        }
    }
    pthread_mutex_unlock(&mu);
    return t;
}

/* The key an access (or, with refresh, a refresh) token stands for; caller frees. */
static char *token_key(const char *tok, bool refresh)
{
    char *key = NULL;
    pthread_mutex_lock(&mu);
    for (struct token *t = tokens; t && !key; t = t->next)
        if (STREQ(refresh ? t->refresh : t->access, tok))
            key = xstrdup(t->key);
    pthread_mutex_unlock(&mu);
    return key;
}

static void token_drop(const char *tok)
{
    pthread_mutex_lock(&mu);
    for (struct token **p = &tokens; *p;) {
        struct token *t = *p;
        if (STREQ(t->refresh, tok) || STREQ(t->access, tok)) {
            *p = t->next;
            token_free(t);
            n_tokens--;
            continue;
        }
        p = &t->next;
    }
    pthread_mutex_unlock(&mu);
}

/* ---- answers ---- */

static void html(struct e2b_serve_reply *out, int status, const char *title, const char *body_html)
{
    out->status = status;
    out->raw = xasprintf(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>%s</title></head>"
        "<body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\"><h1>%s</h1>%s"
        "</body></html>\n",
        title, title, body_html);
    out->raw_type = "text/html; charset=utf-8";
}

static char *html_escape(const char *s)
{
    struct strbuf b = STRBUF_INIT;
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            strbuf_addstr(&b, "&lt;");
            break;
        case '>':
            strbuf_addstr(&b, "&gt;");
            break;
        case '&':
            strbuf_addstr(&b, "&amp;");
            break;
        case '"':
            strbuf_addstr(&b, "&quot;");
            break;
        case '\'':
            strbuf_addstr(&b, "&#39;");
            break;
        default:
            strbuf_addch(&b, *s);
        }
    }
    return b.buf ? strbuf_detach(&b, NULL) : xstrdup("");
}

static void json_error(struct e2b_serve_reply *out, int status, const char *error, const char *desc)
{
    out->status = status;
    out->body = json_pack("{s:s, s:s}", "error", error, "error_description", desc);
}

/* Only the CLI's own listener on this machine may get tokens: http, and
 * localhost or 127.0.0.1, with a port. */
static bool next_ok(const char *next)
{
    const char *h = NULL;
    if (e2b_str_has_prefix(next, "http://localhost:"))
        h = next + 17;
    else if (e2b_str_has_prefix(next, "http://127.0.0.1:"))
        h = next + 17;
    if (!h)
        return false;
    size_t n = strspn(h, "0123456789");
    return n && n <= 5 && (!h[n] || h[n] == '/');
}

/* This server's base URL as the client reached it. */
static char *base_url(const struct e2b_serve_opts *o, const struct e2b_http1_head *r)
{
    const char *host = e2b_http1_header(r, "Host");
    return xasprintf("http://%s", host && *host ? host : o->listen);
}

static void login_page(const struct e2b_serve_opts *o, const struct e2b_http1_head *r,
                       struct e2b_serve_reply *out, const char *problem)
{
    _cleanup_free_ char *next = e2b_http1_query_param(r->query, "next");
    _cleanup_free_ char *state = e2b_http1_query_param(r->query, "state");
    if (state && STREQ(state, "success"))
        return html(out, 200, "Logged in",
                    "<p>E2B's CLI is logged in to this e2b serve. You can close this page.</p>");
    if (state) {
        _cleanup_free_ char *e = e2b_http1_query_param(r->query, "error");
        _cleanup_free_ char *ee = html_escape(e ? e : "unknown");
        _cleanup_free_ char *p = xasprintf("<p>The login did not complete: %s</p>", ee);
        return html(out, 200, "Login failed", p);
    }
    if (!next || !next_ok(next))
        return html(
            out, 400, "Not a CLI login",
            "<p>This page logs E2B's CLI in (<code>e2b auth login</code> with <code>E2B_DOCS_BASE</code> set "
            "to this server's <code>/docs</code>); it needs the CLI's <code>next</code> address on this "
            "machine.</p>");
    _cleanup_free_ char *en = html_escape(next), *ep = html_escape(problem ? problem : "");
    _cleanup_free_ char *page = xasprintf(
        "%s%s%s<p>Give an API key of this server (<code>e2b key create</code> prints one) to log E2B's CLI in "
        "with it.</p><form method=\"post\" action=\"/docs/api/cli\"><input type=\"hidden\" name=\"next\" "
        "value=\"%s\"><input name=\"key\" type=\"password\" size=\"44\" placeholder=\"e2b_...\" autofocus> "
        "<button type=\"submit\">Log in</button></form>",
        problem ? "<p style=\"color:#b00\">" : "", ep, problem ? "</p>" : "", en);
    html(out, problem ? 401 : 200, "Log in to e2b serve", page);
}

/* POST /docs/api/cli: the form. */
static void login(const struct e2b_serve_opts *o, const struct e2b_http1_head *r,
                  const struct strbuf *body, struct e2b_serve_reply *out)
{
    _cleanup_free_ char *form = xstrndup(body->buf ? body->buf : "", body->len);
    _cleanup_free_ char *next = e2b_http1_query_param(form, "next");
    _cleanup_free_ char *key = e2b_http1_query_param(form, "key");
    if (!next || !next_ok(next))
        return html(out, 400, "Not a CLI login",
                    "<p>The form names no CLI address on this machine.</p>");
    if (!key || !e2b_serve_key_check(o->keys_path, key)) {
        /* the same page again, with the problem */
        struct e2b_http1_head again = *r;
        _cleanup_free_ char *en = e2b_url_escape(next, false);
        _cleanup_free_ char *q = xasprintf("next=%s", en);
        again.query = q;
        return login_page(o, &again, out,
                          key && *key ? "That is not a key of this server." : "Give a key.");
    }
    struct token *t = token_new(key);
    _cleanup_free_ char *base = base_url(o, r);
    _cleanup_free_ char *te = xasprintf("%s/oauth/token", base),
                        *re = xasprintf("%s/oauth/revoke", base);
    _cleanup_free_ char *a = e2b_url_escape(t->access, false),
                        *f = e2b_url_escape(t->refresh, false);
    _cleanup_free_ char *tq = e2b_url_escape(te, false), *rq = e2b_url_escape(re, false);
    _cleanup_free_ char *loc =
        xasprintf("%s/?email=%s&accessToken=%s&refreshToken=%s&tokenEndpoint=%s&revokeEndpoint=%s"
                  "&clientId=%s",
                  next, "local%40e2b-serve", a, f, tq, rq, CLIENT_ID);
    out->status = 302;
    out->headers = xasprintf("Location: %s\r\nCache-Control: no-store\r\n", loc);
}

/* POST /oauth/token and /oauth/revoke: form bodies, as OAuth's. */
static void oauth(const char *what, const struct strbuf *body, struct e2b_serve_reply *out)
{
    _cleanup_free_ char *form = xstrndup(body->buf ? body->buf : "", body->len);
    if (STREQ(what, "revoke")) {
        _cleanup_free_ char *tok = e2b_http1_query_param(form, "token");
        if (tok)
            token_drop(tok);
        out->status = 200;
        out->body = json_object();
        return;
    }
    _cleanup_free_ char *grant = e2b_http1_query_param(form, "grant_type");
    _cleanup_free_ char *rt = e2b_http1_query_param(form, "refresh_token");
    if (!grant || !STREQ(grant, "refresh_token") || !rt)
        return json_error(out, 400, "unsupported_grant_type", "only refresh_token grants");
    _cleanup_free_ char *key = token_key(rt, true);
    if (!key)
        return json_error(
            out, 400, "invalid_grant",
            "unknown refresh token (e2b serve restarted?): run `e2b auth login` again");
    token_drop(rt);
    struct token *t = token_new(key);
    out->status = 200;
    out->body = json_pack("{s:s, s:s, s:s, s:i}", "access_token", t->access, "refresh_token",
                          t->refresh, "token_type", "Bearer", "expires_in", ACCESS_TTL_S);
}

/* GET /teams: the key the Bearer token stands for, as E2B's one team. */
static void teams(const struct e2b_serve_opts *o, const struct e2b_http1_head *r,
                  struct e2b_serve_reply *out)
{
    const char *auth = e2b_http1_header(r, "Authorization");
    _cleanup_free_ char *key =
        auth && !strncasecmp(auth, "Bearer ", 7) ? token_key(auth + 7, false) : NULL;
    if (!key && e2b_http1_header(r, "X-API-Key") &&
        e2b_serve_key_check(o->keys_path, e2b_http1_header(r, "X-API-Key")))
        key = xstrdup(e2b_http1_header(r, "X-API-Key"));
    if (!key || !e2b_serve_key_check(o->keys_path, key)) {
        out->status = 401;
        out->body =
            e2b_serve_error_body(401, "%s",
                                 auth ? "the access token is unknown or its key was revoked: run "
                                        "`e2b auth login` again"
                                      : "missing Authorization: Bearer header");
        return;
    }
    out->status = 200;
    out->body = json_pack("[{s:s, s:s, s:s, s:b}]", "teamID", "local", "name", "e2b serve",
                          "apiKey", key, "isDefault", 1);
}

bool e2b_serve_auth(const struct e2b_serve_opts *o, const struct e2b_http1_head *r,
                    const struct strbuf *body, struct e2b_serve_reply *out)
{
    const char *p = r->path, *m = r->method;
    if (STREQ(p, "/docs/api/cli")) {
        if (STREQ(m, "GET"))
            login_page(o, r, out, NULL);
        else if (STREQ(m, "POST"))
            login(o, r, body, out);
        else
            return false;
        return true;
    }
    if (STREQ(p, "/teams") && STREQ(m, "GET"))
        return teams(o, r, out), true;
    if ((STREQ(p, "/oauth/token") || STREQ(p, "/oauth/revoke")) && STREQ(m, "POST"))
        return oauth(p + 7, body, out), true;
    return false;
}
