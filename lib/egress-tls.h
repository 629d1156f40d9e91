/* egress-tls.h - HTTPS to a host with transform rules (E2B's network.rules:
 * headers, secrets filled, set on the sandbox's requests at egress), which
 * the egress filter (egress.h) can only do inside the TLS: it ends the
 * sandbox's TLS with a certificate for the name the sandbox asked for,
 * signed by this machine's egress CA, opens its own TLS to the host
 * (verified against this machine's trusted roots, as a client would), and
 * passes the requests on with the rule's headers in place.
 *
 * The CA: <data dir>/egress/ca.pem (the certificate, what sandboxes with a
 * network trust: runtime.h's trust_pem) and ca.key (its key, 0600, read
 * only by the helper, never inside a sandbox), made on first use. Hosts
 * without transform rules are never intercepted: their TLS passes whole.
 */
#ifndef E2B_EGRESS_TLS_H
#define E2B_EGRESS_TLS_H

#include "json.h"

/* Where a sandbox finds the CA's certificate (and NODE_EXTRA_CA_CERTS
 * names it): the sandbox's own /run/e2b. */
#define E2B_EGRESS_CA_PATH "/run/e2b/egress-ca.pem"

/* The CA's directory (malloc'd). */
char *e2b_egress_ca_dir(void);
/* The CA's certificate, PEM (malloc'd), the CA made first when there is
 * none yet. */
int e2b_egress_ca_pem(char **ret_pem, struct e2b_error **err);

/* The helper's TLS: the CA (from ca_dir), a key for the certificates it
 * makes, one certificate per name (cached), and the roots it trusts
 * upstream: the system's, and upstream_ca (a PEM file) when not NULL. */
struct e2b_egress_tls;
int e2b_egress_tls_new(const char *ca_dir, const char *upstream_ca, struct e2b_egress_tls **ret,
                       struct e2b_error **err);

/* One intercepted connection: cfd the sandbox's (its ClientHello not read
 * yet), up connected to the host the sandbox asked for (name, its SNI).
 * Each request gets hdrs (name -> value) in place of the headers of those
 * names, and Connection: close. Returns once either side is done; the
 * caller closes both. -1 with an error when a handshake fails (the host's
 * certificate is not trusted, or the sandbox's client does not trust the CA). */
int e2b_egress_tls_relay(struct e2b_egress_tls *t, int cfd, int up, const char *name,
                         const json_t *hdrs, struct e2b_error **err);

#endif
