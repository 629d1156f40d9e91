/* backend.c - choosing a backend; see backend.h */
#include "backend.h"
#include "config.h"

int e2b_backend_open(const char *flag_api_url, const char *flag_api_key, struct e2b_backend **ret,
                     struct e2b_error **err)
{
    struct e2b_endpoint ep;
    if (e2b_endpoint_resolve(flag_api_url, flag_api_key, &ep, err) < 0)
        return -1;
    int r;
    if (ep.api_url) {
        if (!ep.api_key) {
            r = e2b_error_set(err, E2B_ERR_AUTH,
                              "no API key for %s: run 'e2b auth login' or set E2B_API_KEY",
                              ep.api_url);
        } else {
            r = e2b_backend_remote_new(ep.api_url, ep.api_key, ep.sandbox_url, ret, err);
        }
    } else {
        r = e2b_backend_local_new(ret, err);
    }
    e2b_endpoint_release(&ep);
    return r;
}

void e2b_backend_free(struct e2b_backend *b)
{
    if (b && b->ops->free)
        b->ops->free(b);
    else
        free(b);
}
