/* t-egress-rules.c - outbound rules: entries, decisions (allow over deny,
 * names, ALL_TRAFFIC over IPv6, IPv4 in IPv6 forms), the nftables text. */
#include "egress-rules.h"
#include "tap.h"

#include <sys/socket.h>

static bool allowed(const struct e2b_egress *e, const char *ip, int port)
{
    int fam;
    uint8_t a[16];
    if (!e2b_egress_parse_addr(ip, &fam, a))
        return false;
    return e2b_egress_addr_allowed(e, fam, a, (uint16_t)port, NULL);
}

static bool denied_explicitly(const struct e2b_egress *e, const char *ip, int port)
{
    int fam;
    uint8_t a[16];
    return e2b_egress_parse_addr(ip, &fam, a) && e2b_egress_addr_denied_explicitly(e, fam, a, (uint16_t)port);
}

static int parse(const char *json, bool internet, struct e2b_egress *e, struct e2b_error **err)
{
    _cleanup_json_ json_t *j = json_loads(json, 0, NULL);
    return e2b_egress_parse(j, internet, e, err);
}

int main(void)
{
    struct e2b_egress_entry x;
    struct e2b_error *err = NULL;
    ok(e2b_egress_entry_parse("10.1.2.3/8", false, &x, NULL) == 0 && x.prefix == 8 && x.addr[0] == 10 &&
           x.addr[1] == 0, "a CIDR is masked to its network");
    ok(e2b_egress_entry_parse("1.2.3.4:80-443", true, &x, NULL) == 0 && x.port_lo == 80 && x.port_hi == 443,
       "ports");
    ok(e2b_egress_entry_parse("[::1]:53", true, &x, NULL) == 0 && x.kind == E2B_EGRESS_V6 && x.port_lo == 53,
       "IPv6 with a port in brackets");
    ok(e2b_egress_entry_parse("2001:db8::/32", true, &x, NULL) == 0 && x.prefix == 32, "bare IPv6 CIDR");
    ok(e2b_egress_entry_parse("ALL_TRAFFIC", false, &x, NULL) == 0 && x.prefix == 0, "ALL_TRAFFIC");
    ok(e2b_egress_entry_parse("API.Example.com.", true, &x, NULL) == 0 && x.kind == E2B_EGRESS_DOMAIN &&
           STREQ(x.domain, "api.example.com"), "domains lowercased, the root dot dropped");
    free(x.domain);
    ok(e2b_egress_entry_parse("example.com", false, &x, &err) < 0 && strstr(err->msg, "denyOut"),
       "no domain in denyOut");
    e2b_error_free(err), err = NULL;
    static const char *const bad[] = {"", "10.0.0.0/33", "1.2.3.4:0", "1.2.3.4:9-8", "a..b", "*x.com", "[::1",
                                      "x/8", NULL};
    for (const char *const *b = bad; *b; b++) {
        ok(e2b_egress_entry_parse(*b, true, &x, &err) < 0, "refused: '%s'", *b);
        e2b_error_free(err), err = NULL;
    }

    ok(e2b_egress_domain_match("*.example.com", "a.b.example.com"), "wildcard below");
    ok(!e2b_egress_domain_match("*.example.com", "example.com"), "wildcard not the apex");
    ok(!e2b_egress_domain_match("*.example.com", "badexample.com"), "wildcard at a label");
    ok(e2b_egress_domain_match("Example.COM", "example.com"), "case-insensitive");

    struct e2b_egress e;
    ok(parse("{\"denyOut\":[\"0.0.0.0/0\"],\"allowOut\":[\"10.254.0.2\",\"good.test\"]}", true, &e, &err) == 0,
       "parse");
    ok(allowed(&e, "10.254.0.2", 80) && !allowed(&e, "10.254.0.3", 80), "ALL_TRAFFIC but the allowed host");
    ok(!allowed(&e, "2001:db8::1", 443), "ALL_TRAFFIC closes IPv6 too");
    ok(allowed(&e, "::ffff:10.254.0.2", 80) && !allowed(&e, "::ffff:10.254.0.3", 80), "IPv4-mapped");
    ok(allowed(&e, "64:ff9b::a fe:2", 80) == false, "not an address");
    ok(allowed(&e, "64:ff9b::afe:2", 80) && !allowed(&e, "64:ff9b::afe:3", 80), "NAT64 form");
    ok(allowed(&e, "2002:afe:2::1", 80) && !allowed(&e, "2002:afe:3::1", 80), "6to4 form");
    ok(e2b_egress_name_allowed(&e, "good.test", 443) && !e2b_egress_name_allowed(&e, "bad.test", 443), "names");
    ok(e2b_egress_has_names(&e), "has names");
    ok(!denied_explicitly(&e, "10.254.0.3", 80), "ALL_TRAFFIC is no explicit deny");
    _cleanup_free_ char *nft = e2b_egress_nft(&e, "t", 0xe2b, 5353, 8080);
    ok(strstr(nft, "::ffff:10.254.0.2") && strstr(nft, "64:ff9b::afe:2") && strstr(nft, "2002:afe:2::/48"),
       "IPv6 forms of an IPv4 entry in the ruleset");
    ok(strstr(nft, "::/0") && strstr(nft, "0.0.0.0/0"), "ALL_TRAFFIC in both families");
    ok(strstr(nft, "redirect to :5353") && strstr(nft, "redirect to :8080"), "names: DNS and 80/443 redirected");
    ok(strstr(nft, "meta mark 0xe2b accept"), "the helper's packets pass");
    e2b_egress_release(&e);

    ok(parse("{\"denyOut\":[\"10.0.0.0/8\",\"10.9.9.9\"],\"allowOut\":[\"10.1.0.0/16\",\"10.2.0.0/16:443\"]}",
             true, &e, NULL) == 0, "parse");
    ok(allowed(&e, "10.1.2.3", 22), "an allowed CIDR wins over a wider deny");
    ok(allowed(&e, "10.2.0.1", 443) && !allowed(&e, "10.2.0.1", 80), "an allow on one port");
    ok(!allowed(&e, "10.3.0.1", 80) && allowed(&e, "192.0.2.1", 80), "denied, and the default passes");
    ok(denied_explicitly(&e, "10.9.9.9", 80), "explicitly denied");
    _cleanup_free_ char *nft2 = e2b_egress_nft(&e, "t", 0xe2b, 0, 0);
    ok(strstr(nft2, "th dport 443-443 accept") && !strstr(nft2, "redirect"), "port rules; no names, no redirect");
    e2b_egress_release(&e);

    ok(parse("{}", false, &e, NULL) == 0 && !allowed(&e, "1.1.1.1", 53) && !allowed(&e, "::1", 80),
       "no internet is ALL_TRAFFIC denied");
    e2b_egress_release(&e);
    ok(parse("{\"rules\":{\"*.api.test\":[{\"transform\":{\"headers\":{\"X-A\":\"1\"}}}],"
             "\"x.api.test\":[{\"transform\":{\"headers\":{\"X-B\":\"2\"}}}]}}",
             true, &e, NULL) == 0, "rules");
    const json_t *h = e2b_egress_headers_for(&e, "x.api.test");
    ok(h && json_object_get(h, "X-B"), "an exact name's rules first");
    h = e2b_egress_headers_for(&e, "y.api.test");
    ok(h && json_object_get(h, "X-A"), "else the wildcard's");
    ok(!e2b_egress_headers_for(&e, "api.test"), "a wildcard is not its apex");
    e2b_egress_release(&e);
    ok(parse("{\"rules\":{\"a.test\":[{\"transform\":{\"headers\":{\"X\":\"a\\nb\"}}}]}}", true, &e, &err) < 0,
       "a header value with a newline is refused");
    e2b_error_free(err);
    return tap_done();
}
