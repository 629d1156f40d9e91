/* egress.h - a sandbox's egress filter: its outbound rules (egress-rules.h)
 * enforced from inside its network namespace.
 *
 * One helper process per filtered sandbox, started by the first
 * e2b_egress_apply: it joins the namespace holder's network namespace (and
 * user namespace, unprivileged), loads the rules into nftables there
 * (libnftables: addresses in sets, checked by the kernel for every packet
 * the sandbox sends) and, when names are in the rules, serves:
 *   - DNS: every query the sandbox sends to port 53, whatever the server,
 *     is redirected to the helper, which asks the configured resolver and
 *     passes the answer back, learning which addresses each name was given;
 *   - ports 80 and 443: redirected to the helper, which reads the HTTP Host
 *     or the TLS SNI of the connection, decides (egress-rules.h), and relays
 *     to the address the sandbox connected to, or closes; requests to a
 *     host with transform rules get their headers (secrets filled): HTTP
 *     ones as they pass, HTTPS ones inside a TLS the helper ends with a
 *     certificate of the egress CA, which the sandbox trusts (egress-tls.h).
 * The helper's own sockets carry a mark the ruleset lets through. It lives
 * beside the sandbox, outside its pid namespace, cgroups and seccomp
 * filter, and exits when the namespace holder does. Later calls hand it new
 * rules over <state dir>/egress.sock (live: the sets are replaced in one
 * nftables transaction). Its log: <state dir>/egress.log.
 */
#ifndef E2B_EGRESS_H
#define E2B_EGRESS_H

#include "json.h"

#include <sys/types.h>

#define E2B_EGRESS_DNS_DEFAULT "10.0.2.3:53" /* slirp4netns's resolver */

/* config: {allowOut, denyOut, rules (header values resolved), internet
 * (bool), dns ("ip:port" of the resolver to ask), ca (the egress CA's
 * directory; absent: no HTTPS transforms), upstreamCA (a PEM file of roots
 * trusted upstream besides the system's, or absent)}. net_pid: a process in
 * the sandbox's network namespace; userns: it has a user namespace of its
 * own that the caller owns. */
int e2b_egress_apply(const char *dir, pid_t net_pid, bool userns, const json_t *config,
                     struct e2b_error **err);

#endif
