/* sandbox-endpoint.h - how to reach one sandbox's envd.
 *
 * Every layer passes it around (the backends make it, the envd and process
 * clients use it, the local supervisor runs the start command through it),
 * so it sits below all of them and includes nothing of theirs.
 */
#ifndef E2B_SANDBOX_ENDPOINT_H
#define E2B_SANDBOX_ENDPOINT_H

struct e2b_envd_endpoint {
    char *base;              /* "unix:/run/e2b/sandboxes/<id>/envd.sock" or "https://..." */
    char *sandbox_id;        /* sent as E2b-Sandbox-Id when going through a router */
    char *access_token;      /* X-Access-Token, or NULL */
};

/* Frees the strings and zeroes it; safe on a zeroed endpoint. */
void e2b_envd_endpoint_release(struct e2b_envd_endpoint *ep);

#endif
