/* config.c - see config.h */
#include "config.h"
#include "envd-crypto.h"
#include "fsutil.h"

#include <ctype.h>
#include <libgen.h>
#include <pwd.h>
#include <sys/stat.h>

static const char *home_dir(void)
{
    const char *h = getenv("HOME");
    if (h && *h)
        return h;
    struct passwd *pw = getpwuid(getuid());
    return pw ? pw->pw_dir : "/";
}

char *e2b_config_path(void)
{
    const char *p = getenv("E2B_CONFIG");
    if (p && *p)
        return xstrdup(p);
    return xasprintf("%s/.e2b/config.json", home_dir());
}

int e2b_config_load(struct e2b_config *cfg, struct e2b_error **err)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->path = e2b_config_path();
    if (access(cfg->path, F_OK) < 0 && errno == ENOENT) {
        cfg->doc = json_object();
        return 0;
    }
    if (e2b_json_load_file(cfg->path, &cfg->doc, err) < 0)
        return -1;
    if (!json_is_object(cfg->doc))
        return e2b_error_set(err, E2B_ERR_INVALID, "%s: expected a JSON object", cfg->path);
    cfg->exists = true;
    return 0;
}

int e2b_config_save(struct e2b_config *cfg, struct e2b_error **err)
{
    _cleanup_free_ char *dir = xstrdup(cfg->path);
    dirname(dir);
    if (e2b_mkdir_p(dir, 0700, err) < 0)
        return -1;
    if (!json_object_get(cfg->doc, "version"))
        json_object_set_new(cfg->doc, "version", json_integer(2));
    if (e2b_json_save_file(cfg->path, cfg->doc, 0600, err) < 0)
        return -1;
    cfg->exists = true;
    return 0;
}

int e2b_config_remove(struct e2b_config *cfg, struct e2b_error **err)
{
    if (unlink(cfg->path) < 0 && errno != ENOENT)
        return e2b_error_sys(err, errno, "cannot remove '%s'", cfg->path);
    cfg->exists = false;
    return 0;
}

void e2b_config_release(struct e2b_config *cfg)
{
    free(cfg->path);
    if (cfg->doc)
        json_decref(cfg->doc);
    memset(cfg, 0, sizeof(*cfg));
}

const char *e2b_config_get(const struct e2b_config *cfg, const char *key)
{
    return e2b_json_str(cfg->doc, key);
}

void e2b_config_set(struct e2b_config *cfg, const char *key, const char *value)
{
    if (value)
        json_object_set_new(cfg->doc, key, json_string(value));
    else
        json_object_del(cfg->doc, key);
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int e2b_endpoint_resolve(const char *flag_url, const char *flag_key, struct e2b_endpoint *ep,
                         struct e2b_error **err)
{
    memset(ep, 0, sizeof(*ep));
    struct e2b_config cfg;
    if (e2b_config_load(&cfg, err) < 0) {
        e2b_config_release(&cfg);
        return -1;
    }
    const char *domain = env("E2B_DOMAIN") ? env("E2B_DOMAIN") : e2b_config_get(&cfg, "domain");
    if (domain)
        ep->domain = xstrdup(domain);
    if (flag_url && !*flag_url)
        ep->api_url_source = "--api-url"; /* --api-url "": this machine, whatever else says */
    else if (flag_url)
        ep->api_url = xstrdup(flag_url), ep->api_url_source = "--api-url";
    else if (env("E2B_API_URL"))
        ep->api_url = xstrdup(env("E2B_API_URL")), ep->api_url_source = "E2B_API_URL";
    else if (e2b_config_get(&cfg, "apiUrl"))
        ep->api_url = xstrdup(e2b_config_get(&cfg, "apiUrl")), ep->api_url_source = "config";
    else if (domain)
        ep->api_url = xasprintf("https://api.%s", domain),
        ep->api_url_source = env("E2B_DOMAIN") ? "E2B_DOMAIN" : "config";
    if (flag_key)
        ep->api_key = xstrdup(flag_key), ep->api_key_source = "--api-key";
    else if (env("E2B_API_KEY"))
        ep->api_key = xstrdup(env("E2B_API_KEY")), ep->api_key_source = "E2B_API_KEY";
    else if (e2b_config_get(&cfg, "projectApiKey"))
        ep->api_key = xstrdup(e2b_config_get(&cfg, "projectApiKey")), ep->api_key_source = "config";
    else if (e2b_config_get(&cfg, "teamApiKey")) /* the pre-2026 format */
        ep->api_key = xstrdup(e2b_config_get(&cfg, "teamApiKey")), ep->api_key_source = "config";
    /* The saved envd URL belongs to the saved API: never sent another's tokens. */
    if (env("E2B_SANDBOX_URL"))
        ep->sandbox_url = xstrdup(env("E2B_SANDBOX_URL")), ep->sandbox_url_source = "E2B_SANDBOX_URL";
    else if (ep->api_url_source && STREQ(ep->api_url_source, "config") && e2b_config_get(&cfg, "sandboxUrl"))
        ep->sandbox_url = xstrdup(e2b_config_get(&cfg, "sandboxUrl")), ep->sandbox_url_source = "config";
    e2b_config_release(&cfg);
    return 0;
}

void e2b_endpoint_release(struct e2b_endpoint *ep)
{
    free(ep->api_url);
    free(ep->api_key);
    free(ep->sandbox_url);
    free(ep->domain);
    memset(ep, 0, sizeof(*ep));
}

char *e2b_mask_key(const char *key)
{
    size_t n = strlen(key);
    if (n <= 8)
        return xstrdup("****");
    const char *us = strchr(key, '_');
    size_t pre = us && (size_t)(us - key) < 8 ? (size_t)(us - key) + 1 : 0;
    return xasprintf("%.*s****%s", (int)pre, key, key + n - 4);
}

bool e2b_api_key_valid(const char *key)
{
    if (!e2b_str_has_prefix(key, "e2b_"))
        return false;
    size_t n = e2b_hex_span(key + 4);
    return n && !key[4 + n];
}

char *e2b_runtime_dir(void)
{
    if (env("E2B_RUNTIME_DIR"))
        return xstrdup(env("E2B_RUNTIME_DIR"));
    if (geteuid() == 0)
        return xstrdup("/run/e2b");
    if (env("XDG_RUNTIME_DIR"))
        return xasprintf("%s/e2b", env("XDG_RUNTIME_DIR"));
    return xasprintf("/tmp/e2b-%u", (unsigned)getuid());
}

char *e2b_data_dir(void)
{
    if (env("E2B_DATA_DIR"))
        return xstrdup(env("E2B_DATA_DIR"));
    if (geteuid() == 0)
        return xstrdup("/var/lib/e2b");
    if (env("XDG_DATA_HOME"))
        return xasprintf("%s/e2b", env("XDG_DATA_HOME"));
    return xasprintf("%s/.local/share/e2b", home_dir());
}
