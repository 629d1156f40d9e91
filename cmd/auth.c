/* auth.c - `e2b auth login|logout|info|configure`: the API key in ~/.e2b/config.json. */
#include "cmd.h"
#include "config.h"
#include "http.h"
#include "output.h"
#include "strbuf.h"
#include "usage.h"

#include <termios.h>

#define DEFAULT_API_URL "https://api.e2b.app"

/* Read one line from a stream, without echo when it is a terminal. */
static char *read_secret(FILE *in, bool prompt)
{
    struct termios old, quiet;
    bool tty = isatty(fileno(in)) && tcgetattr(fileno(in), &old) == 0;
    if (prompt)
        fprintf(stderr, "API key: ");
    if (tty) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(in), TCSAFLUSH, &quiet);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, in);
    if (tty) {
        tcsetattr(fileno(in), TCSAFLUSH, &old);
        if (prompt)
            fputc('\n', stderr);
    }
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
        line[--n] = '\0';
    return line;
}

/* Ask the API whether it accepts the key: listing one sandbox needs a valid key. */
static int verify_key(const char *api_url, const char *key, struct e2b_error **err)
{
    _cleanup_free_ char *hdr = xasprintf("X-API-Key: %s", key);
    const char *headers[] = {hdr, "Accept: application/json", NULL};
    struct e2b_http_req req = {.base = api_url, .path = "/v2/sandboxes?limit=1",
                               .headers = headers, .timeout_ms = 15000, .retries = 1};
    struct e2b_http_resp resp;
    int r = e2b_http_request(&req, &resp, err);
    e2b_http_resp_release(&resp);
    if (r < 0 && (*err)->code == E2B_ERR_AUTH)
        return e2b_error_wrap(err, "the API refused the key");
    return r;
}

/* URLs we store must be http(s). */
static bool web_url(const char *u)
{
    return e2b_str_has_prefix(u, "http://") || e2b_str_has_prefix(u, "https://");
}

const struct e2b_opt opts_auth_login[] = {
    E2B_OPT_FLAG(0, "with-api-key", "read the API key from standard input"),
    E2B_OPT_FLAG(0, "no-verify", "store the key without checking it against the API"),
    E2B_OPT_STRING(0, "sandbox-url", "URL", "where envd traffic goes (E2B_SANDBOX_URL; default: per sandbox, or the API URL)"),
    E2B_OPT_END,
};

int cmd_auth_login(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    struct e2b_endpoint ep;
    if (e2b_endpoint_resolve(ctx->api_url, NULL, &ep, &err) < 0)
        return e2b_fail(err);
    const char *sandbox_url = e2b_args_str(args, "sandbox-url");
    if (sandbox_url && !web_url(sandbox_url)) {
        e2b_endpoint_release(&ep);
        return e2b_usage_error("auth login", "--sandbox-url must start with http:// or https://");
    }
    _cleanup_free_ char *key = NULL;
    if (ctx->api_key)
        key = xstrdup(ctx->api_key);
    else if (e2b_args_flag(args, "with-api-key"))
        key = read_secret(stdin, false);
    else if (isatty(STDIN_FILENO))
        key = read_secret(stdin, true);
    else {
        e2b_endpoint_release(&ep);
        return e2b_usage_error("auth login", "no API key: give --api-key KEY, or pipe it to "
                                             "--with-api-key");
    }
    if (!key || !*key) {
        e2b_endpoint_release(&ep);
        return e2b_usage_error("auth login", "empty API key");
    }
    if (!e2b_api_key_valid(key)) {
        e2b_endpoint_release(&ep);
        return e2b_usage_error("auth login", "API key must look like e2b_<lowercase hex>");
    }
    const char *api_url = ep.api_url ? ep.api_url : DEFAULT_API_URL;
    if (!e2b_args_flag(args, "no-verify") && verify_key(api_url, key, &err) < 0) {
        e2b_error_wrap(&err, "cannot log in to %s", api_url);
        e2b_endpoint_release(&ep);
        return e2b_fail(err);
    }

    struct e2b_config cfg;
    int rc = 0;
    if (e2b_config_load(&cfg, &err) < 0)
        goto out;
    e2b_config_set(&cfg, "projectApiKey", key);
    /* Remember an API named on this command line, with its envd URL (an old
     * one would send this API's tokens elsewhere); environment stays environment. */
    if (ctx->api_url) {
        e2b_config_set(&cfg, "apiUrl", ctx->api_url);
        e2b_config_set(&cfg, "sandboxUrl", sandbox_url);
    } else if (sandbox_url) {
        e2b_config_set(&cfg, "sandboxUrl", sandbox_url);
    }
    if (e2b_config_save(&cfg, &err) < 0)
        goto out;
    if (!ctx->quiet) {
        _cleanup_free_ char *masked = e2b_mask_key(key);
        fprintf(stderr, "Logged in to %s with key %s (saved in %s)\n", api_url, masked, cfg.path);
    }
out:
    if (err)
        rc = e2b_fail(err);
    e2b_config_release(&cfg);
    e2b_endpoint_release(&ep);
    return rc;
}

const struct e2b_opt opts_auth_logout[] = {E2B_OPT_END};

int cmd_auth_logout(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    struct e2b_config cfg;
    int rc = 0;
    if (e2b_config_load(&cfg, &err) < 0)
        goto out;
    if (!e2b_config_get(&cfg, "projectApiKey") && !e2b_config_get(&cfg, "teamApiKey")) {
        if (!ctx->quiet)
            fprintf(stderr, "Not logged in\n");
        goto out;
    }
    json_object_del(cfg.doc, "projectApiKey");
    json_object_del(cfg.doc, "teamApiKey");
    json_object_del(cfg.doc, "tokens");
    json_object_del(cfg.doc, "accessToken");
    /* Nothing of ours left worth keeping: remove the file as E2B's CLI does. */
    bool keep = e2b_config_get(&cfg, "apiUrl") || e2b_config_get(&cfg, "domain") ||
                e2b_config_get(&cfg, "sandboxUrl");
    if ((keep ? e2b_config_save(&cfg, &err) : e2b_config_remove(&cfg, &err)) < 0)
        goto out;
    if (!ctx->quiet)
        fprintf(stderr, "Logged out\n");
out:
    if (err)
        rc = e2b_fail(err);
    e2b_config_release(&cfg);
    return rc;
}

const struct e2b_opt opts_auth_info[] = {E2B_OPT_END};

int cmd_auth_info(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    struct e2b_endpoint ep;
    struct e2b_config cfg;
    if (e2b_endpoint_resolve(ctx->api_url, ctx->api_key, &ep, &err) < 0 ||
        e2b_config_load(&cfg, &err) < 0)
        return e2b_fail(err);
    _cleanup_json_ json_t *o = json_object();
    json_object_set_new(o, "loggedIn", json_boolean(ep.api_key != NULL));
    json_object_set_new(o, "apiUrl", ep.api_url ? json_string(ep.api_url) : json_null());
    json_object_set_new(o, "apiUrlSource", json_string(ep.api_url_source ? ep.api_url_source
                                                                         : "default"));
    json_object_set_new(o, "backend", json_string(ep.api_url ? "remote" : "local"));
    if (ep.api_key) {
        _cleanup_free_ char *masked = e2b_mask_key(ep.api_key);
        json_object_set_new(o, "apiKey", json_string(masked));
        json_object_set_new(o, "apiKeySource", json_string(ep.api_key_source));
    }
    const char *email = e2b_json_str(json_object_get(cfg.doc, "identity"), "email");
    if (!email)
        email = e2b_config_get(&cfg, "email");
    if (email)
        json_object_set_new(o, "email", json_string(email));
    const char *project = e2b_config_get(&cfg, "projectName");
    if (project)
        json_object_set_new(o, "project", json_string(project));
    if (ep.sandbox_url) {
        json_object_set_new(o, "sandboxUrl", json_string(ep.sandbox_url));
        json_object_set_new(o, "sandboxUrlSource", json_string(ep.sandbox_url_source));
    } else if (ep.api_url) {
        json_object_set_new(o, "sandboxUrl", json_string("per sandbox (its domain, else the API URL)"));
    }
    json_object_set_new(o, "configFile", json_string(cfg.path));
    static const struct e2b_column cols[] = {
        {"loggedIn", "Logged in"}, {"email", "Email"},         {"project", "Project"},
        {"backend", "Backend"},    {"apiUrl", "API URL"},      {"apiUrlSource", "API URL from"},
        {"apiKey", "API key"},     {"apiKeySource", "API key from"},
        {"sandboxUrl", "Sandbox URL"}, {"sandboxUrlSource", "Sandbox URL from"},
        {"configFile", "Config file"}, {NULL, NULL},
    };
    e2b_object_print(o, cols, stdout, ctx->json);
    e2b_config_release(&cfg);
    e2b_endpoint_release(&ep);
    return 0;
}

const struct e2b_opt opts_auth_configure[] = {
    E2B_OPT_STRING(0, "url", "URL", "use this API by default (e.g. http://127.0.0.1:3000)"),
    E2B_OPT_STRING(0, "domain", "DOMAIN", "use https://api.DOMAIN by default (E2B_DOMAIN)"),
    E2B_OPT_STRING(0, "sandbox-url", "URL", "send envd traffic of the default API there (E2B_SANDBOX_URL)"),
    E2B_OPT_FLAG(0, "local", "forget the default API: use the local backend"),
    E2B_OPT_END,
};

int cmd_auth_configure(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    const char *url = e2b_args_str(args, "url");
    const char *domain = e2b_args_str(args, "domain");
    const char *sandbox_url = e2b_args_str(args, "sandbox-url");
    bool local = e2b_args_flag(args, "local");
    if (local && (url || domain || sandbox_url))
        return e2b_usage_error("auth configure", "--local cannot be combined with --url, --domain or --sandbox-url");
    if (url && !web_url(url))
        return e2b_usage_error("auth configure", "--url must start with http:// or https://");
    if (sandbox_url && !web_url(sandbox_url))
        return e2b_usage_error("auth configure", "--sandbox-url must start with http:// or https://");
    if (domain && (strchr(domain, '/') || strchr(domain, ' ') || !*domain))
        return e2b_usage_error("auth configure", "--domain takes a bare domain such as e2b.app");
    struct e2b_config cfg;
    _cleanup_json_ json_t *o = json_object();
    int rc = 0;
    if (e2b_config_load(&cfg, &err) < 0)
        goto out;
    if (url || domain || sandbox_url || local) {
        if (url || local)
            e2b_config_set(&cfg, "apiUrl", url);
        if (domain || local)
            e2b_config_set(&cfg, "domain", domain);
        /* a new API forgets the old one's envd URL */
        if (sandbox_url || url || domain || local)
            e2b_config_set(&cfg, "sandboxUrl", sandbox_url);
        if (e2b_config_save(&cfg, &err) < 0)
            goto out;
    }
    const char *u = e2b_config_get(&cfg, "apiUrl"), *d = e2b_config_get(&cfg, "domain");
    json_object_set_new(o, "apiUrl", u ? json_string(u) : json_null());
    const char *su = e2b_config_get(&cfg, "sandboxUrl");
    json_object_set_new(o, "domain", d ? json_string(d) : json_null());
    json_object_set_new(o, "sandboxUrl", su ? json_string(su) : json_null());
    static const struct e2b_column cols[] = {{"apiUrl", "API URL"}, {"domain", "Domain"},
                                             {"sandboxUrl", "Sandbox URL"}, {NULL, NULL}};
    e2b_object_print(o, cols, stdout, ctx->json);
out:
    if (err)
        rc = e2b_fail(err);
    e2b_config_release(&cfg);
    return rc;
}
