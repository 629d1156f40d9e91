/* egress-rules.c - see egress-rules.h */
#include "egress-rules.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <strings.h>
#include <sys/socket.h>

#define ALL_TRAFFIC "0.0.0.0/0"

bool e2b_egress_parse_addr(const char *s, int *ret_family, uint8_t ret[16])
{
    memset(ret, 0, 16);
    if (inet_pton(AF_INET, s, ret) == 1) {
        *ret_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, ret) == 1) {
        *ret_family = AF_INET6;
        return true;
    }
    return false;
}

static bool parse_port(const char *s, size_t n, uint16_t *ret)
{
    if (!n || n > 5)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return false;
    *ret = (uint16_t)v;
    return true;
}

/* "80" or "1-1024" (empty: every port). */
static bool parse_ports(const char *s, struct e2b_egress_entry *e)
{
    if (!*s)
        return true;
    const char *dash = strchr(s, '-');
    if (!dash)
        return parse_port(s, strlen(s), &e->port_lo) && (e->port_hi = e->port_lo, true);
    return parse_port(s, (size_t)(dash - s), &e->port_lo) &&
           parse_port(dash + 1, strlen(dash + 1), &e->port_hi) && e->port_lo <= e->port_hi;
}

static void mask_addr(uint8_t *a, int bits, int prefix)
{
    for (int i = 0; i < bits / 8; i++) {
        int keep = prefix - i * 8;
        if (keep >= 8)
            continue;
        a[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
    }
}

static bool domain_valid(const char *d)
{
    if (STREQ(d, "*"))
        return true;
    if (e2b_str_has_prefix(d, "*."))
        d += 2;
    size_t n = strlen(d);
    if (!n || n > 253 || d[0] == '.' || d[n - 1] == '.' || strstr(d, ".."))
        return false;
    for (const char *p = d; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
            return false;
    return true;
}

int e2b_egress_entry_parse(const char *s0, bool allow, struct e2b_egress_entry *ret,
                           struct e2b_error **err)
{
    memset(ret, 0, sizeof(*ret));
    while (isspace((unsigned char)*s0))
        s0++;
    _cleanup_free_ char *s = xstrdup(s0);
    for (size_t n = strlen(s); n && isspace((unsigned char)s[n - 1]);)
        s[--n] = '\0';
    if (!*s)
        return e2b_error_set(err, E2B_ERR_INVALID, "an empty network rule");
    if (STREQ(s, "ALL_TRAFFIC")) {
        free(s);
        s = xstrdup(ALL_TRAFFIC);
    }
    /* host and port: "[v6]:port", a bare IPv6 (two colons or more), "host:port" */
    char *host = s;
    const char *ports = "";
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (!close || (close[1] && close[1] != ':'))
            return e2b_error_set(err, E2B_ERR_INVALID, "network rule '%s': '[' without ']:PORT'", s0);
        *close = '\0';
        host = s + 1;
        ports = close[1] ? close + 2 : "";
    } else if (strchr(s, ':') && strchr(s, ':') == strrchr(s, ':')) {
        char *colon = strchr(s, ':');
        *colon = '\0';
        ports = colon + 1;
    }
    if (!parse_ports(ports, ret))
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "network rule '%s': '%s' is not a port (1-65535) or a range LOW-HIGH", s0,
                             ports);
    char *slash = strchr(host, '/');
    if (slash)
        *slash = '\0';
    int family;
    if (e2b_egress_parse_addr(host, &family, ret->addr)) {
        int bits = family == AF_INET ? 32 : 128;
        ret->kind = family == AF_INET ? E2B_EGRESS_V4 : E2B_EGRESS_V6;
        ret->prefix = bits;
        if (slash) {
            char *end = NULL;
            long p = strtol(slash + 1, &end, 10);
            if (!slash[1] || *end || p < 0 || p > bits)
                return e2b_error_set(err, E2B_ERR_INVALID,
                                     "network rule '%s': '/%s' is not a prefix length of 0 to %d", s0,
                                     slash + 1, bits);
            ret->prefix = (int)p;
        }
        mask_addr(ret->addr, bits, ret->prefix);
        return 0;
    }
    if (slash)
        return e2b_error_set(err, E2B_ERR_INVALID, "network rule '%s' is not a CIDR", s0);
    for (char *p = host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    size_t n = strlen(host);
    if (n > 1 && host[n - 1] == '.')
        host[n - 1] = '\0';
    if (!domain_valid(host))
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "network rule '%s' is neither an IP address, a CIDR nor a domain name", s0);
    if (!allow)
        return e2b_error_set(err, E2B_ERR_INVALID,
                             "denyOut entry '%s' is a domain name: denyOut takes IP addresses and CIDRs "
                             "(allow names in allowOut, with ALL_TRAFFIC in denyOut)",
                             s0);
    ret->kind = E2B_EGRESS_DOMAIN;
    ret->domain = xstrdup(host);
    return 0;
}

static int parse_list(const json_t *a, bool allow, struct e2b_egress_entry **ret, size_t *n,
                      struct e2b_error **err)
{
    const char *what = allow ? "allowOut" : "denyOut";
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return e2b_error_set(err, E2B_ERR_INVALID, "network.%s must be an array of strings", what);
    if (json_array_size(a) > 4096)
        return e2b_error_set(err, E2B_ERR_INVALID, "network.%s has more than 4096 entries", what);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        if (!json_is_string(v))
            return e2b_error_set(err, E2B_ERR_INVALID, "network.%s must be an array of strings", what);
        *ret = xrealloc(*ret, (*n + 1) * sizeof(**ret));
        if (e2b_egress_entry_parse(json_string_value(v), allow, &(*ret)[*n], err) < 0)
            return -1;
        (*n)++;
    }
    return 0;
}

static int check_rules(const json_t *rules, struct e2b_error **err)
{
    const char *host;
    json_t *list;
    if (!json_is_object(rules))
        return e2b_error_set(err, E2B_ERR_INVALID, "network.rules must be an object of domain names");
    json_object_foreach((json_t *)rules, host, list) {
        _cleanup_free_ char *h = xstrdup(host);
        for (char *p = h; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (STREQ(h, "*") || !domain_valid(h))
            return e2b_error_set(err, E2B_ERR_INVALID,
                                 "network.rules key '%s' is not a domain name or '*.domain'", host);
        size_t i;
        json_t *rule;
        if (!json_is_array(list))
            return e2b_error_set(err, E2B_ERR_INVALID, "network.rules['%s'] must be an array", host);
        json_array_foreach(list, i, rule) {
            json_t *t = json_object_get(rule, "transform");
            json_t *hdrs = t ? json_object_get(t, "headers") : NULL;
            if (!json_is_object(rule) || (t && !json_is_object(t)) || (hdrs && !json_is_object(hdrs)))
                return e2b_error_set(err, E2B_ERR_INVALID,
                                     "network.rules['%s'] entries are {transform: {headers: {}}}", host);
            const char *k;
            json_t *v;
            json_object_foreach(hdrs, k, v) {
                bool name_ok = *k && strlen(k) < 256;
                for (const char *p = k; *p; p++)
                    name_ok &= isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~", *p);
                const char *val = json_string_value(v);
                if (!name_ok || !val || strpbrk(val, "\r\n") || strlen(val) > 8192)
                    return e2b_error_set(err, E2B_ERR_INVALID,
                                         "network.rules['%s'] header '%s' is not a header name "
                                         "with a one-line value",
                                         host, k);
            }
        }
    }
    return 0;
}

int e2b_egress_parse(const json_t *net, bool internet, struct e2b_egress *ret, struct e2b_error **err)
{
    memset(ret, 0, sizeof(*ret));
    if (net && !json_is_null(net) && !json_is_object(net))
        return e2b_error_set(err, E2B_ERR_INVALID, "network must be an object");
    if (parse_list(json_object_get(net, "allowOut"), true, &ret->allow, &ret->n_allow, err) < 0 ||
        parse_list(json_object_get(net, "denyOut"), false, &ret->deny, &ret->n_deny, err) < 0)
        goto fail;
    json_t *rules = json_object_get(net, "rules");
    if (rules && !json_is_null(rules)) {
        if (check_rules(rules, err) < 0)
            goto fail;
        ret->rules = json_deep_copy(rules);
    }
    if (!internet) {
        ret->deny = xrealloc(ret->deny, (ret->n_deny + 1) * sizeof(*ret->deny));
        e2b_egress_entry_parse(ALL_TRAFFIC, false, &ret->deny[ret->n_deny++], NULL);
    }
    return 0;
fail:
    e2b_egress_release(ret);
    return -1;
}

void e2b_egress_release(struct e2b_egress *e)
{
    for (size_t i = 0; i < e->n_allow; i++)
        free(e->allow[i].domain);
    free(e->allow);
    free(e->deny);
    json_decref(e->rules);
    memset(e, 0, sizeof(*e));
}

bool e2b_egress_has_names(const struct e2b_egress *e)
{
    for (size_t i = 0; i < e->n_allow; i++)
        if (e->allow[i].kind == E2B_EGRESS_DOMAIN)
            return true;
    return json_object_size(e->rules) > 0;
}

bool e2b_egress_domain_match(const char *pattern, const char *host)
{
    if (!pattern || !host || !*host)
        return false;
    if (STREQ(pattern, "*"))
        return true;
    if (e2b_str_has_prefix(pattern, "*.")) {
        size_t hl = strlen(host), sl = strlen(pattern + 1); /* ".a.b" */
        return hl > sl && strcasecmp(host + hl - sl, pattern + 1) == 0;
    }
    return strcasecmp(pattern, host) == 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *net, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return false;
    return !rest || ((a[full] ^ net[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4), if any. */
static bool embedded_v4(const uint8_t *a6, uint8_t v4[4])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (memcmp(a6, mapped, 12) == 0 || memcmp(a6, nat64, 12) == 0) {
        memcpy(v4, a6 + 12, 4);
        return true;
    }
    if (a6[0] == 0x20 && a6[1] == 0x02) {
        memcpy(v4, a6 + 2, 4);
        return true;
    }
    return false;
}

static bool entry_matches(const struct e2b_egress_entry *e, int family, const uint8_t *addr,
                          uint16_t port)
{
    if (e->kind == E2B_EGRESS_DOMAIN)
        return false;
    if (e->port_lo && (port < e->port_lo || port > e->port_hi))
        return false;
    if (e->prefix == 0) /* ALL_TRAFFIC, whichever family it was written in */
        return true;
    if (family == AF_INET)
        return e->kind == E2B_EGRESS_V4 && prefix_match(addr, e->addr, e->prefix);
    if (e->kind == E2B_EGRESS_V6)
        return prefix_match(addr, e->addr, e->prefix);
    uint8_t v4[4];
    return embedded_v4(addr, v4) && prefix_match(v4, e->addr, e->prefix);
}

bool e2b_egress_addr_allowed(const struct e2b_egress *e, int family, const uint8_t *addr,
                             uint16_t port, bool *ret_by_allow)
{
    if (ret_by_allow)
        *ret_by_allow = false;
    for (size_t i = 0; i < e->n_allow; i++)
        if (entry_matches(&e->allow[i], family, addr, port)) {
            if (ret_by_allow)
                *ret_by_allow = true;
            return true;
        }
    for (size_t i = 0; i < e->n_deny; i++)
        if (entry_matches(&e->deny[i], family, addr, port))
            return false;
    return true;
}

bool e2b_egress_addr_denied_explicitly(const struct e2b_egress *e, int family, const uint8_t *addr,
                                       uint16_t port)
{
    for (size_t i = 0; i < e->n_deny; i++)
        if (e->deny[i].prefix > 0 && entry_matches(&e->deny[i], family, addr, port))
            return true;
    return false;
}

bool e2b_egress_name_allowed(const struct e2b_egress *e, const char *host, uint16_t port)
{
    for (size_t i = 0; i < e->n_allow; i++) {
        const struct e2b_egress_entry *a = &e->allow[i];
        if (a->kind == E2B_EGRESS_DOMAIN && (!a->port_lo || (port >= a->port_lo && port <= a->port_hi)) &&
            e2b_egress_domain_match(a->domain, host))
            return true;
    }
    return false;
}

const json_t *e2b_egress_headers_for(const struct e2b_egress *e, const char *host)
{
    const char *k, *best = NULL;
    json_t *v, *found = NULL;
    json_object_foreach(e->rules, k, v) {
        if (strcasecmp(k, host) == 0) {
            found = v;
            best = NULL;
            break;
        }
        if (e2b_str_has_prefix(k, "*.") && e2b_egress_domain_match(k, host) &&
            (!best || strlen(k) > strlen(best)))
            best = k, found = v;
    }
    if (!found)
        return NULL;
    /* the first rule with headers (E2B: rule sets are not merged) */
    size_t i;
    json_array_foreach(found, i, v) {
        json_t *h = json_object_get(json_object_get(v, "transform"), "headers");
        if (json_object_size(h))
            return h;
    }
    return NULL;
}

/* The request head with the transform headers in place of any of the same
 * name (and the connection closed after it, so each request gets them). */
char *e2b_egress_transform_head(const char *head, size_t len, const json_t *hdrs)
{
    struct strbuf out = STRBUF_INIT;
    const char *end = head + len - 2; /* before the final CRLF */
    const char *line = head;
    bool first = true;
    while (line < end) {
        const char *nl = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (!nl)
            break;
        size_t n = (size_t)(nl - line);
        bool drop = false;
        if (!first) {
            const char *k;
            json_t *v;
            json_object_foreach((json_t *)hdrs, k, v) {
                size_t kl = strlen(k);
                if (n > kl && line[kl] == ':' && strncasecmp(line, k, kl) == 0)
                    drop = true;
            }
            drop |= n > 11 && strncasecmp(line, "connection:", 11) == 0;
        }
        if (!drop) {
            strbuf_add(&out, line, n);
            strbuf_addstr(&out, "\r\n");
        }
        first = false;
        line = nl + 2;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)hdrs, k, v)
        strbuf_addf(&out, "%s: %s\r\n", k, json_string_value(v) ? json_string_value(v) : "");
    strbuf_addstr(&out, "Connection: close\r\n\r\n");
    return strbuf_detach(&out, NULL);
}

/* ---- nftables ----------------------------------------------------------------- */

static void add_v4(struct strbuf *sb, const uint8_t *a, int prefix)
{
    char s[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, a, s, sizeof(s));
    strbuf_addf(sb, "%s%s/%d", sb->len ? ", " : "", s, prefix);
}

static void add_v6(struct strbuf *sb, const uint8_t *a, int prefix)
{
    char s[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, a, s, sizeof(s));
    strbuf_addf(sb, "%s%s/%d", sb->len ? ", " : "", s, prefix);
}

/* An entry as nft elements: v4 into *v4, v6 (and v4's IPv6 forms) into *v6. */
static void entry_elems(const struct e2b_egress_entry *e, struct strbuf *v4, struct strbuf *v6)
{
    if (e->prefix == 0) {
        uint8_t zero[16] = {0};
        add_v4(v4, zero, 0);
        add_v6(v6, zero, 0);
        return;
    }
    if (e->kind == E2B_EGRESS_V6) {
        add_v6(v6, e->addr, e->prefix);
        return;
    }
    add_v4(v4, e->addr, e->prefix);
    uint8_t m[16] = {0};
    m[10] = m[11] = 0xff; /* ::ffff:a.b.c.d */
    memcpy(m + 12, e->addr, 4);
    add_v6(v6, m, 96 + e->prefix);
    uint8_t n[16] = {0, 0x64, 0xff, 0x9b}; /* 64:ff9b::a.b.c.d */
    memcpy(n + 12, e->addr, 4);
    add_v6(v6, n, 96 + e->prefix);
    uint8_t t[16] = {0x20, 0x02}; /* 2002:aabb:ccdd:: */
    memcpy(t + 2, e->addr, 4);
    add_v6(v6, t, 16 + e->prefix);
}

static void add_set(struct strbuf *out, const char *name, const char *type, const struct strbuf *elems)
{
    strbuf_addf(out, "  set %s { type %s; flags interval; auto-merge;", name, type);
    if (elems->len)
        strbuf_addf(out, " elements = { %s };", elems->buf);
    strbuf_addstr(out, " }\n");
}

/* Rules for entries with ports (sets hold only the portless ones). */
static void port_rules(struct strbuf *out, const struct e2b_egress_entry *list, size_t n, const char *verdict)
{
    for (size_t i = 0; i < n; i++) {
        const struct e2b_egress_entry *e = &list[i];
        if (e->kind == E2B_EGRESS_DOMAIN || !e->port_lo)
            continue;
        struct strbuf v4 = STRBUF_INIT, v6 = STRBUF_INIT;
        entry_elems(e, &v4, &v6);
        if (v4.len)
            strbuf_addf(out, "    ip daddr { %s } th dport %u-%u %s\n", v4.buf, e->port_lo, e->port_hi, verdict);
        if (v6.len)
            strbuf_addf(out, "    ip6 daddr { %s } th dport %u-%u %s\n", v6.buf, e->port_lo, e->port_hi, verdict);
        strbuf_release(&v4);
        strbuf_release(&v6);
    }
}

char *e2b_egress_nft(const struct e2b_egress *e, const char *table, uint32_t mark, int dns_port, int proxy_port)
{
    struct strbuf a4 = STRBUF_INIT, a6 = STRBUF_INIT, d4 = STRBUF_INIT, d6 = STRBUF_INIT;
    for (size_t i = 0; i < e->n_allow; i++)
        if (e->allow[i].kind != E2B_EGRESS_DOMAIN && !e->allow[i].port_lo)
            entry_elems(&e->allow[i], &a4, &a6);
    for (size_t i = 0; i < e->n_deny; i++)
        if (!e->deny[i].port_lo)
            entry_elems(&e->deny[i], &d4, &d6);
    struct strbuf out = STRBUF_INIT;
    /* made, deleted and made again: one transaction that works whether or not it was there */
    strbuf_addf(&out, "table inet %s {}\ndelete table inet %s\ntable inet %s {\n", table, table, table);
    add_set(&out, "allow4", "ipv4_addr", &a4);
    add_set(&out, "allow6", "ipv6_addr", &a6);
    add_set(&out, "deny4", "ipv4_addr", &d4);
    add_set(&out, "deny6", "ipv6_addr", &d6);
    /* the sandbox's own loopback; also what the nat chain redirected there
     * (its oif is still the outside one in this pass) */
    strbuf_addf(&out, "  chain out {\n    type filter hook output priority 0; policy accept;\n"
                      "    meta mark 0x%x accept\n    oif \"lo\" accept\n"
                      "    ip daddr 127.0.0.0/8 accept\n    ip6 daddr ::1 accept\n",
                mark);
    port_rules(&out, e->allow, e->n_allow, "accept");
    strbuf_addstr(&out, "    ip daddr @allow4 accept\n    ip6 daddr @allow6 accept\n");
    port_rules(&out, e->deny, e->n_deny, "reject with icmpx admin-prohibited");
    strbuf_addstr(&out, "    ip daddr @deny4 reject with icmpx admin-prohibited\n"
                        "    ip6 daddr @deny6 reject with icmpx admin-prohibited\n  }\n");
    if (dns_port > 0 || proxy_port > 0) {
        strbuf_addf(&out, "  chain nat {\n    type nat hook output priority -100; policy accept;\n"
                          "    meta mark 0x%x return\n    oif \"lo\" return\n    ip daddr 127.0.0.0/8 return\n",
                    mark);
        if (dns_port > 0)
            strbuf_addf(&out, "    meta l4proto { tcp, udp } th dport 53 redirect to :%d\n", dns_port);
        if (proxy_port > 0) {
            port_rules(&out, e->allow, e->n_allow, "return");
            strbuf_addf(&out, "    ip daddr @allow4 return\n    ip6 daddr @allow6 return\n"
                              "    tcp dport { 80, 443 } redirect to :%d\n",
                        proxy_port);
        }
        strbuf_addstr(&out, "  }\n");
    }
    strbuf_addstr(&out, "}\n");
    strbuf_release(&a4);
    strbuf_release(&a6);
    strbuf_release(&d4);
    strbuf_release(&d6);
    return strbuf_detach(&out, NULL);
}
