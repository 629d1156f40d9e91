/* egress-rules.h - a sandbox's outbound rules (E2B's SandboxNetworkConfig:
 * allowOut, denyOut, rules; allowInternetAccess), parsed and decided, and
 * the nftables ruleset that enforces the part the kernel can.
 *
 * An entry is an IPv4 or IPv6 address or CIDR, ALL_TRAFFIC (0.0.0.0/0), or
 * (allowOut only) a domain name, "*.domain" or "*", each with an optional
 * port or port range ("10.0.0.0/8:80", "[::1]:1-1024", "api.example.com:443").
 *
 * How a connection is decided (E2B's egress firewall, plus one rule of ours):
 *   1. an address in allowOut passes (allow beats deny, as E2B documents);
 *   2. a name in allowOut passes a connection to ports 80 and 443 whose
 *      HTTP Host or TLS SNI it matches, when the sandbox's own DNS lookup
 *      of that name answered the address connected to, and no denyOut
 *      entry narrower than ALL_TRAFFIC names that address: a name never
 *      opens what an explicit deny closes (a rebinding to a denied address
 *      fails), and a name alone never opens an address DNS did not give;
 *   3. an address in denyOut is refused;
 *   4. anything else passes.
 * ALL_TRAFFIC (0.0.0.0/0, or ::/0) denies IPv6 too, and every IPv4 entry
 * also covers the IPv6 forms that carry an IPv4 address (::ffff:a.b.c.d,
 * NAT64's 64:ff9b::a.b.c.d, 6to4's 2002:aabb:ccdd::), so IPv6 is no way
 * around an IPv4 rule. allowInternetAccess false is denyOut ALL_TRAFFIC.
 */
#ifndef E2B_EGRESS_RULES_H
#define E2B_EGRESS_RULES_H

#include "json.h"

#include <stdint.h>

enum e2b_egress_kind { E2B_EGRESS_V4, E2B_EGRESS_V6, E2B_EGRESS_DOMAIN };

struct e2b_egress_entry {
    int kind;
    uint8_t addr[16];          /* the network (IPv4: the first 4 bytes) */
    int prefix;                /* its length in bits */
    char *domain;              /* lowercase "a.b", "*.a.b" or "*" */
    uint16_t port_lo, port_hi; /* 0, 0: every port */
};

struct e2b_egress {
    struct e2b_egress_entry *allow, *deny;
    size_t n_allow, n_deny;
    json_t *rules; /* {host: [{transform: {headers: {}}}]}: header values resolved, or NULL */
};

/* One allowOut (domains allowed) or denyOut entry. */
int e2b_egress_entry_parse(const char *s, bool allow, struct e2b_egress_entry *ret,
                           struct e2b_error **err);
/* network: {allowOut, denyOut, rules} (any may be absent; NULL: none);
 * internet false adds ALL_TRAFFIC to the denied. */
int e2b_egress_parse(const json_t *network, bool internet, struct e2b_egress *ret,
                     struct e2b_error **err);
void e2b_egress_release(struct e2b_egress *e);

/* Any name to check (an allowed domain, or transform rules)? Then ports 80
 * and 443 go through the name check. */
bool e2b_egress_has_names(const struct e2b_egress *e);
/* A domain pattern against a host name (case-insensitive; "*.a.b" matches
 * below a.b, not a.b itself; "*" matches any). */
bool e2b_egress_domain_match(const char *pattern, const char *host);

/* family AF_INET (addr: 4 bytes) or AF_INET6 (16). */
/* Step 1 and 3: the decision by address alone. *ret_by_allow: an allowOut
 * entry decided it. */
bool e2b_egress_addr_allowed(const struct e2b_egress *e, int family, const uint8_t *addr,
                             uint16_t port, bool *ret_by_allow);
/* Is the address named by a denyOut entry narrower than ALL_TRAFFIC? */
bool e2b_egress_addr_denied_explicitly(const struct e2b_egress *e, int family, const uint8_t *addr,
                                       uint16_t port);
/* Does an allowOut domain match host on this port? */
bool e2b_egress_name_allowed(const struct e2b_egress *e, const char *host, uint16_t port);
/* The transform headers for host ({name: value}, resolved) or NULL:
 * exact names first, then the longest matching wildcard. */
const json_t *e2b_egress_headers_for(const struct e2b_egress *e, const char *host);
/* An HTTP request head (len bytes, up to its blank line) with hdrs in place
 * of any headers of the same names and Connection: close (so each request
 * on a connection gets them: the next comes on a new one). malloc'd. */
char *e2b_egress_transform_head(const char *head, size_t len, const json_t *hdrs);

/* The nftables ruleset (`nft -f` text) for table inet <table>: the address
 * rules in sets, packets of the helper (mark) let through, DNS redirected
 * to dns_port and ports 80/443 to proxy_port (each 0: not). The table is
 * deleted and made again in one transaction. */
char *e2b_egress_nft(const struct e2b_egress *e, const char *table, uint32_t mark, int dns_port,
                     int proxy_port);

/* "1.2.3.4"/"::1" to family and bytes; false when not an address. */
bool e2b_egress_parse_addr(const char *s, int *ret_family, uint8_t ret[16]);

#endif
