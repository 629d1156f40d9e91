/* t-config.c - config file, endpoint resolution, key masking, paths. */
#include "config.h"
#include "fsutil.h"
#include "tap.h"

#include <sys/stat.h>

int main(void)
{
    char dir[] = "/tmp/t-config.XXXXXX";
    ok(mkdtemp(dir) != NULL, "scratch dir");
    setenv("HOME", dir, 1);
    unsetenv("E2B_CONFIG");
    unsetenv("E2B_API_KEY");
    unsetenv("E2B_API_URL");
    unsetenv("E2B_DOMAIN");
    struct e2b_error *err = NULL;
    struct e2b_config cfg;
    ok(e2b_config_load(&cfg, &err) == 0 && !cfg.exists, "missing config is empty");
    e2b_config_set(&cfg, "projectApiKey", "e2b_0123456789abcdef");
    ok(e2b_config_save(&cfg, &err) == 0, "save");
    struct stat st;
    ok(stat(cfg.path, &st) == 0 && (st.st_mode & 0777) == 0600, "config is 0600");
    _cleanup_free_ char *d = xasprintf("%s/.e2b", dir);
    ok(stat(d, &st) == 0 && (st.st_mode & 0777) == 0700, "config dir is 0700");
    e2b_config_release(&cfg);

    struct e2b_endpoint ep;
    ok(e2b_endpoint_resolve(NULL, NULL, &ep, &err) == 0, "resolve");
    is_str(ep.api_key, "e2b_0123456789abcdef", "key from config");
    is_str(ep.api_key_source, "config", "key source");
    ok(ep.api_url == NULL, "no API: local backend");
    e2b_endpoint_release(&ep);
    setenv("E2B_API_KEY", "e2b_ff", 1);
    setenv("E2B_DOMAIN", "example.test", 1);
    e2b_endpoint_resolve(NULL, NULL, &ep, &err);
    is_str(ep.api_key, "e2b_ff", "environment beats config");
    is_str(ep.api_url, "https://api.example.test", "domain gives api URL");
    e2b_endpoint_release(&ep);
    e2b_endpoint_resolve("http://127.0.0.1:1", "e2b_aa", &ep, &err);
    is_str(ep.api_url, "http://127.0.0.1:1", "flag beats environment");
    is_str(ep.api_key, "e2b_aa", "flag key");
    e2b_endpoint_release(&ep);

    _cleanup_free_ char *m = e2b_mask_key("e2b_0123456789abcdef");
    is_str(m, "e2b_****cdef", "masked key");
    ok(e2b_api_key_valid("e2b_09af"), "valid key");
    ok(!e2b_api_key_valid("e2b_XYZ") && !e2b_api_key_valid("sk_123"), "invalid keys");

    _cleanup_free_ char *p = e2b_config_path();
    e2b_write_file_atomic(p, "{\"a\":\n\n}", 8, 0600, &err);
    ok(e2b_config_load(&cfg, &err) < 0, "bad config refused");
    ok(err && strstr(err->msg, p) && strstr(err->msg, ":3:"), "error names file and line");
    e2b_error_free(err);
    e2b_config_release(&cfg);
    e2b_rm_rf(dir, NULL);
    return tap_done();
}
