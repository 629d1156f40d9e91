/* sandbox-endpoint.c - see sandbox-endpoint.h */
#include "sandbox-endpoint.h"
#include "util.h"

void e2b_envd_endpoint_release(struct e2b_envd_endpoint *ep)
{
    free(ep->base);
    free(ep->sandbox_id);
    free(ep->access_token);
    memset(ep, 0, sizeof(*ep));
}
