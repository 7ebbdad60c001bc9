// Tests for policy-cache/dns_answer.cc and policy-cache/dns_resolver.cc:
// what a DNS reply means for RFC 8461 3.1 (TXT), RFC 5321 5.1 / RFC 7505
// (MX), and the real ldns path against sockets on 127.0.0.1 only.
#include "policy-cache/dns_resolver.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <vector>

#include "policy-cache/dns_answer.h"
#include "policy-cache/ldns_handles.h"
#include "tests/policy-cache/local_dns_server.h"

using namespace stsguard;
using stsguard_test::LocalDns;

namespace {

enum class Ad { off, on };

LdnsRrPtr rr(const char* text) {
    ldns_rr* out = nullptr;
    REQUIRE(ldns_rr_new_frm_str(&out, text, 3600, nullptr, nullptr) == LDNS_STATUS_OK);
    return LdnsRrPtr(out);
}

// Serialises and re-parses, so every test packet went through the same
// wire parser real replies go through.
LdnsPktPtr via_wire(const ldns_pkt* p) {
    std::uint8_t* wire = nullptr;
    std::size_t size = 0;
    REQUIRE(ldns_pkt2wire(&wire, p, &size) == LDNS_STATUS_OK);
    ldns_pkt* parsed = nullptr;
    const ldns_status st = ldns_wire2pkt(&parsed, wire, size);
    std::free(wire);
    REQUIRE(st == LDNS_STATUS_OK);
    return LdnsPktPtr(parsed);
}

// A reply to the question (owner, type) with rcode and answer RRs (zone
// file text), optionally AD and authority RRs.
LdnsPktPtr build(const char* owner, ldns_rr_type type, ldns_pkt_rcode rcode,
                 const std::vector<const char*>& answer, Ad ad = Ad::off,
                 const std::vector<const char*>& authority = {}) {
    LdnsPktPtr p(
        ldns_pkt_query_new(ldns_dname_new_frm_str(owner), type, LDNS_RR_CLASS_IN, LDNS_RD));
    REQUIRE(p);
    ldns_pkt_set_qr(p.get(), true);
    ldns_pkt_set_ra(p.get(), true);
    ldns_pkt_set_rcode(p.get(), static_cast<std::uint8_t>(rcode));
    ldns_pkt_set_ad(p.get(), ad == Ad::on);
    for (const char* a : answer) ldns_pkt_push_rr(p.get(), LDNS_SECTION_ANSWER, rr(a).release());
    for (const char* a : authority) {
        ldns_pkt_push_rr(p.get(), LDNS_SECTION_AUTHORITY, rr(a).release());
    }
    return via_wire(p.get());
}

DnsQueryInfo info(const char* owner, ldns_rr_type type) {
    return DnsQueryInfo{owner, type, "127.0.0.53"};
}

const char* kSoa =
    "example.com. 300 IN SOA ns.example.com. host.example.com. 1 7200 3600 1209600 300";

}  // namespace

// --- TXT (RFC 8461 3.1) ----------------------------------------------------

TEST_CASE("3.1: one TXT record is returned with its TTL; AD clear means not authenticated") {
    auto p = build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR,
                   {"_mta-sts.example.com. 600 IN TXT \"v=STSv1; id=20240101\""});
    auto r = interpret_txt(p.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(r.found());
    REQUIRE(r.value().records.size() == 1);
    CHECK(r.value().records[0] == "v=STSv1; id=20240101");
    CHECK(r.value().meta.ttl == 600);
    CHECK_FALSE(r.value().meta.authenticated);
    CHECK(r.value().meta.cnames.empty());
}

TEST_CASE("3.1: the character-strings of one TXT RR are concatenated without a separator") {
    auto p = build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR,
                   {"_mta-sts.example.com. 600 IN TXT \"v=STSv1;\" \" id=\" \"abc\" \"\""});
    auto r = interpret_txt(p.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(r.found());
    REQUIRE(r.value().records.size() == 1);
    CHECK(r.value().records[0] == "v=STSv1; id=abc");
}

TEST_CASE("3.1: several TXT RRs are all returned, one string each, smallest TTL kept") {
    auto p = build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR,
                   {"_mta-sts.example.com. 600 IN TXT \"v=STSv1; id=1\"",
                    "_mta-sts.example.com. 60 IN TXT \"some other\" \"record\"",
                    "other.example.com. 5 IN TXT \"not ours\""});
    auto r = interpret_txt(p.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(r.found());
    REQUIRE(r.value().records.size() == 2);
    CHECK(r.value().records[0] == "v=STSv1; id=1");
    CHECK(r.value().records[1] == "some otherrecord");
    CHECK(r.value().meta.ttl == 60);
}

TEST_CASE("3.1: owner names match case-insensitively, with or without the root dot") {
    auto p = build("_MTA-STS.Example.COM.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR,
                   {"_Mta-Sts.EXAMPLE.com. 600 IN TXT \"v=STSv1; id=1\""});
    auto r = interpret_txt(p.get(), info("_mta-sts.example.com.", LDNS_RR_TYPE_TXT));
    REQUIRE(r.found());
    CHECK(r.value().records.size() == 1);
}

TEST_CASE("3.1: a TXT record with binary octets is kept byte for byte") {
    auto p = build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR,
                   {"_mta-sts.example.com. 600 IN TXT \"a\\000b\\255\""});
    auto r = interpret_txt(p.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(r.found());
    CHECK(r.value().records[0] == std::string("a\0b\xff", 4));
}

TEST_CASE("3.1: NXDOMAIN is NotFound(NXDOMAIN), not a failure") {
    auto p =
        build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NXDOMAIN, {}, Ad::off, {kSoa});
    auto r = interpret_txt(p.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(r.not_found());
    CHECK(r.not_found_info().reason == "NXDOMAIN");
}

TEST_CASE("3.1: NOERROR without TXT at the owner is NotFound(NODATA)") {
    auto p =
        build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR, {}, Ad::off, {kSoa});
    auto r = interpret_txt(p.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(r.not_found());
    CHECK(r.not_found_info().reason == "NODATA");

    // Records of another type or at another owner do not count.
    auto q = build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR,
                   {"_mta-sts.example.com. 60 IN A 192.0.2.1",
                    "x._mta-sts.example.com. 60 IN TXT \"v=STSv1; id=1\""});
    auto s = interpret_txt(q.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(s.not_found());
    CHECK(s.not_found_info().reason == "NODATA");
}

TEST_CASE("3.1: SERVFAIL is a temporary dns-servfail naming the query and the server") {
    auto p = build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, LDNS_RCODE_SERVFAIL, {});
    auto r = interpret_txt(p.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(r.failed());
    CHECK(r.failure().temporary());
    CHECK(r.failure().code == "dns-servfail");
    CHECK(r.failure().reason == "SERVFAIL for _mta-sts.example.com TXT from 127.0.0.53");
}

TEST_CASE("3.1: REFUSED is a temporary dns-refused") {
    auto p = build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, LDNS_RCODE_REFUSED, {});
    auto r = interpret_txt(p.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(r.failed());
    CHECK(r.failure().temporary());
    CHECK(r.failure().code == "dns-refused");
    CHECK(r.failure().reason.find("_mta-sts.example.com TXT") != std::string::npos);
}

TEST_CASE("3.1: other rcodes are a temporary dns-error naming the rcode") {
    for (auto rcode : {LDNS_RCODE_FORMERR, LDNS_RCODE_NOTIMPL, LDNS_RCODE_NOTAUTH}) {
        auto p = build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, rcode, {});
        auto r = interpret_txt(p.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
        REQUIRE(r.failed());
        CHECK(r.failure().temporary());
        CHECK(r.failure().code == "dns-error");
        CHECK(r.failure().reason.find("rcode ") == 0);
    }
}

TEST_CASE("3.1: a reply still truncated (TC) is a temporary dns-truncated, even with records") {
    auto p = build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR,
                   {"_mta-sts.example.com. 600 IN TXT \"v=STSv1; id=1\""});
    ldns_pkt_set_tc(p.get(), true);
    auto r = interpret_txt(p.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(r.failed());
    CHECK(r.failure().code == "dns-truncated");
}

TEST_CASE("3.1: a reply for another question, without QR, or missing is a dns-error") {
    auto other = build("_mta-sts.example.org.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR,
                       {"_mta-sts.example.org. 600 IN TXT \"v=STSv1; id=1\""});
    auto r = interpret_txt(other.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(r.failed());
    CHECK(r.failure().code == "dns-error");
    CHECK(r.failure().reason.find("_mta-sts.example.org.") != std::string::npos);

    auto wrong_type = build("_mta-sts.example.com.", LDNS_RR_TYPE_MX, LDNS_RCODE_NOERROR, {});
    CHECK(interpret_txt(wrong_type.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT))
              .failure()
              .code == "dns-error");

    auto no_qr = build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR, {});
    ldns_pkt_set_qr(no_qr.get(), false);
    auto q = interpret_txt(no_qr.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(q.failed());
    CHECK(q.failure().reason.find("QR") != std::string::npos);

    auto none = interpret_txt(nullptr, info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(none.failed());
    CHECK(none.failure().code == "dns-error");
}

TEST_CASE("3.1: CNAMEs are followed, the chain is reported, only the final owner's TXT counts") {
    auto p = build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR,
                   {"_mta-sts.example.com. 300 IN CNAME _mta-sts.Provider.NET.",
                    "_mta-sts.provider.net. 200 IN CNAME sts.provider.net.",
                    "sts.provider.net. 900 IN TXT \"v=STSv1; id=p1\"",
                    "unrelated.provider.net. 900 IN TXT \"ignored: another owner\""});
    auto r = interpret_txt(p.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(r.found());
    REQUIRE(r.value().records.size() == 1);
    CHECK(r.value().records[0] == "v=STSv1; id=p1");
    REQUIRE(r.value().meta.cnames.size() == 2);
    CHECK(r.value().meta.cnames[0] == "_mta-sts.provider.net");
    CHECK(r.value().meta.cnames[1] == "sts.provider.net");
    CHECK(r.value().meta.ttl == 200);
}

TEST_CASE("3.1: a CNAME to a name without TXT is NODATA; a CNAME loop is a dns-error") {
    auto dangling = build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR,
                          {"_mta-sts.example.com. 300 IN CNAME elsewhere.example.net."});
    auto r = interpret_txt(dangling.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(r.not_found());
    CHECK(r.not_found_info().reason == "NODATA");

    auto loop = build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR,
                      {"_mta-sts.example.com. 300 IN CNAME a.example.net.",
                       "a.example.net. 300 IN CNAME _mta-sts.example.com."});
    auto l = interpret_txt(loop.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(l.failed());
    CHECK(l.failure().code == "dns-error");
    CHECK(l.failure().reason.find("CNAME chain") != std::string::npos);
}

TEST_CASE("3.1: the AD bit of the reply is reported as authenticated") {
    auto p = build("_mta-sts.example.com.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR,
                   {"_mta-sts.example.com. 600 IN TXT \"v=STSv1; id=1\""}, Ad::on);
    auto r = interpret_txt(p.get(), info("_mta-sts.example.com", LDNS_RR_TYPE_TXT));
    REQUIRE(r.found());
    CHECK(r.value().meta.authenticated);
}

// --- MX (RFC 5321 5.1, RFC 7505) ---------------------------------------------

TEST_CASE("5321 5.1: MX hosts are sorted by preference then name, lower case, no root dot") {
    auto p = build(
        "example.com.", LDNS_RR_TYPE_MX, LDNS_RCODE_NOERROR,
        {"example.com. 300 IN MX 20 B.example.com.", "example.com. 300 IN MX 10 z.example.com.",
         "example.com. 100 IN MX 10 MX1.Example.COM.", "example.com. 300 IN MX 10 z.example.com."});
    auto r = interpret_mx(p.get(), info("example.com", LDNS_RR_TYPE_MX));
    REQUIRE(r.found());
    const auto& h = r.value().hosts;
    REQUIRE(h.size() == 3);
    CHECK(h[0].preference == 10);
    CHECK(h[0].host == "mx1.example.com");
    CHECK(h[1].preference == 10);
    CHECK(h[1].host == "z.example.com");
    CHECK(h[2].preference == 20);
    CHECK(h[2].host == "b.example.com");
    CHECK_FALSE(r.value().implicit);
    CHECK(r.value().meta.ttl == 100);
}

TEST_CASE("7505: a single MX with exchange \".\" is NotFound(null MX)") {
    auto p =
        build("example.com.", LDNS_RR_TYPE_MX, LDNS_RCODE_NOERROR, {"example.com. 300 IN MX 0 ."});
    auto r = interpret_mx(p.get(), info("example.com", LDNS_RR_TYPE_MX));
    REQUIRE(r.not_found());
    CHECK(r.not_found_info().reason == "null MX (RFC 7505)");
}

TEST_CASE("7505: a \".\" MX beside real hosts is dropped, the real hosts remain") {
    auto p = build("example.com.", LDNS_RR_TYPE_MX, LDNS_RCODE_NOERROR,
                   {"example.com. 300 IN MX 0 .", "example.com. 300 IN MX 10 mx.example.com."});
    auto r = interpret_mx(p.get(), info("example.com", LDNS_RR_TYPE_MX));
    REQUIRE(r.found());
    REQUIRE(r.value().hosts.size() == 1);
    CHECK(r.value().hosts[0].host == "mx.example.com");
}

TEST_CASE("5321 5.1: MX NXDOMAIN is NotFound and never becomes an implicit MX") {
    auto p = build("nowhere.example.", LDNS_RR_TYPE_MX, LDNS_RCODE_NXDOMAIN, {});
    auto mx = interpret_mx(p.get(), info("nowhere.example", LDNS_RR_TYPE_MX));
    REQUIRE(mx.not_found());
    CHECK(mx.not_found_info().reason == "NXDOMAIN");
    AddressAnswer a;
    a.addresses = {"192.0.2.1"};
    auto r = implicit_mx(mx, "nowhere.example", a);
    REQUIRE(r.not_found());
    CHECK(r.not_found_info().reason == "NXDOMAIN");
}

TEST_CASE("5321 5.1: no MX RRset but an address gives the implicit MX (domain, preference 0)") {
    auto p = build("Example.com.", LDNS_RR_TYPE_MX, LDNS_RCODE_NOERROR, {}, Ad::off, {kSoa});
    auto mx = interpret_mx(p.get(), info("example.com", LDNS_RR_TYPE_MX));
    REQUIRE(mx.not_found());
    CHECK(mx.not_found_info().reason == "NODATA");

    AddressAnswer a;
    a.addresses = {"192.0.2.1"};
    a.meta.ttl = 77;
    auto r = implicit_mx(mx, "Example.com.", a);
    REQUIRE(r.found());
    REQUIRE(r.value().hosts.size() == 1);
    CHECK(r.value().hosts[0].host == "example.com");
    CHECK(r.value().hosts[0].preference == 0);
    CHECK(r.value().implicit);
    CHECK(r.value().meta.ttl == 77);

    auto none = implicit_mx(mx, "example.com", NotFound{"NODATA"});
    REQUIRE(none.not_found());
    CHECK(none.not_found_info().reason == "NODATA");

    auto failed = implicit_mx(mx, "example.com", Failure::temp("dns-timeout", "t"));
    REQUIRE(failed.failed());
    CHECK(failed.failure().code == "dns-timeout");
}

TEST_CASE("5321 5.1: a found MX or a failure is not changed by implicit_mx") {
    MxAnswer found;
    found.hosts = {{10, "mx.example.com"}};
    AddressAnswer a;
    a.addresses = {"192.0.2.1"};
    auto r = implicit_mx(found, "example.com", a);
    REQUIRE(r.found());
    CHECK_FALSE(r.value().implicit);
    CHECK(r.value().hosts[0].host == "mx.example.com");

    auto f = implicit_mx(Failure::temp("dns-servfail", "x"), "example.com", a);
    REQUIRE(f.failed());
    CHECK(f.failure().code == "dns-servfail");
    auto n = implicit_mx(NotFound{"null MX (RFC 7505)"}, "example.com", a);
    REQUIRE(n.not_found());
    CHECK(n.not_found_info().reason == "null MX (RFC 7505)");
}

// --- addresses and TLSA --------------------------------------------------

TEST_CASE("addresses: A and AAAA records in text form") {
    auto a = build(
        "mta-sts.example.com.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR,
        {"mta-sts.example.com. 60 IN A 192.0.2.10", "mta-sts.example.com. 60 IN A 198.51.100.1"});
    auto r4 = interpret_addresses(a.get(), info("mta-sts.example.com", LDNS_RR_TYPE_A));
    REQUIRE(r4.found());
    CHECK(r4.value().addresses == std::vector<std::string>{"192.0.2.10", "198.51.100.1"});

    auto aaaa = build("mta-sts.example.com.", LDNS_RR_TYPE_AAAA, LDNS_RCODE_NOERROR,
                      {"mta-sts.example.com. 60 IN AAAA 2001:DB8:0:0::1"});
    auto r6 = interpret_addresses(aaaa.get(), info("mta-sts.example.com", LDNS_RR_TYPE_AAAA));
    REQUIRE(r6.found());
    CHECK(r6.value().addresses == std::vector<std::string>{"2001:db8::1"});

    auto both = merge_addresses(r4, r6);
    REQUIRE(both.found());
    CHECK(both.value().addresses ==
          std::vector<std::string>{"192.0.2.10", "198.51.100.1", "2001:db8::1"});
}

TEST_CASE("addresses: found if either family has records, even if the other failed") {
    AddressAnswer v4;
    v4.addresses = {"192.0.2.1"};
    v4.meta.authenticated = true;
    v4.meta.ttl = 50;
    auto r = merge_addresses(v4, Failure::temp("dns-servfail", "x"));
    REQUIRE(r.found());
    CHECK(r.value().addresses == std::vector<std::string>{"192.0.2.1"});
    CHECK(r.value().meta.authenticated);
    CHECK(r.value().meta.ttl == 50);

    AddressAnswer v6;
    v6.addresses = {"2001:db8::1"};
    auto r2 = merge_addresses(NotFound{"NODATA"}, v6);
    REQUIRE(r2.found());
    CHECK(r2.value().addresses == std::vector<std::string>{"2001:db8::1"});

    // authenticated only if every part used was.
    auto r3 = merge_addresses(v4, v6);
    REQUIRE(r3.found());
    CHECK_FALSE(r3.value().meta.authenticated);
}

TEST_CASE("addresses: no records and a failure is that failure; none at all is NotFound") {
    auto f = merge_addresses(NotFound{"NODATA"}, Failure::temp("dns-timeout", "t"));
    REQUIRE(f.failed());
    CHECK(f.failure().code == "dns-timeout");
    auto f2 = merge_addresses(Failure::temp("dns-refused", "r"), NotFound{"NXDOMAIN"});
    REQUIRE(f2.failed());
    CHECK(f2.failure().code == "dns-refused");

    auto n = merge_addresses(NotFound{"NODATA"}, NotFound{"NODATA"});
    REQUIRE(n.not_found());
    CHECK(n.not_found_info().reason == "NODATA");
    auto nx = merge_addresses(NotFound{"NODATA"}, NotFound{"NXDOMAIN"});
    REQUIRE(nx.not_found());
    CHECK(nx.not_found_info().reason == "NXDOMAIN");
}

TEST_CASE("TLSA: usage, selector, matching type and lower-case hex data") {
    auto p = build("_25._tcp.mx.example.com.", LDNS_RR_TYPE_TLSA, LDNS_RCODE_NOERROR,
                   {"_25._tcp.mx.example.com. 300 IN TLSA 3 1 1 "
                    "0123456789ABCDEF0123456789abcdef0123456789ABCDEF0123456789ABCDEF",
                    "_25._tcp.mx.example.com. 300 IN TLSA 2 0 2 AABB"},
                   Ad::on);
    auto r = interpret_tlsa(p.get(), info("_25._tcp.mx.example.com", LDNS_RR_TYPE_TLSA));
    REQUIRE(r.found());
    REQUIRE(r.value().records.size() == 2);
    CHECK(r.value().records[0].usage == 3);
    CHECK(r.value().records[0].selector == 1);
    CHECK(r.value().records[0].matching == 1);
    CHECK(r.value().records[0].data_hex ==
          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    CHECK(r.value().records[1].usage == 2);
    CHECK(r.value().records[1].matching == 2);
    CHECK(r.value().records[1].data_hex == "aabb");
    CHECK(r.value().meta.authenticated);
}

// --- server list and set-up ---------------------------------------------

TEST_CASE("dns_servers: ADDR, ADDR:PORT, [V6]:PORT and bare IPv6 are accepted") {
    struct Row {
        const char* text;
        const char* address;
        std::uint16_t port;
    };
    for (const Row& row :
         {Row{"127.0.0.53", "127.0.0.53", 53}, Row{"127.0.0.1:5353", "127.0.0.1", 5353},
          Row{"[::1]:5300", "::1", 5300}, Row{"[::1]", "::1", 53}, Row{"::1", "::1", 53},
          Row{"2001:db8::53", "2001:db8::53", 53}}) {
        CAPTURE(row.text);
        std::string why;
        auto s = parse_dns_server(row.text, &why);
        REQUIRE(s.has_value());
        CHECK(s->address == row.address);
        CHECK(s->port == row.port);
    }
}

TEST_CASE("dns_servers: bad entries are refused with a reason naming the entry") {
    for (const char* text : {"", "localhost", "dns.example.com:53", "127.0.0.1:", "127.0.0.1:0",
                             "127.0.0.1:65536", "127.0.0.1:53x", "[127.0.0.1]:53", "[::1", "[::1]x",
                             "[::1]:", "1.2.3.4.5", "::1:53:", " 127.0.0.1"}) {
        CAPTURE(text);
        std::string why;
        CHECK_FALSE(parse_dns_server(text, &why).has_value());
        CHECK(why.find(std::string("\"") + text + "\"") != std::string::npos);
    }
}

TEST_CASE("make_ldns_resolver: unusable settings give nullptr and a reason") {
    std::string why;
    DnsSettings s;
    s.servers = {"127.0.0.1:5353", "127.0.0.2:5354"};
    CHECK(make_ldns_resolver(s, &why) == nullptr);
    CHECK(why.find("same port") != std::string::npos);

    s.servers = {"not-an-address"};
    CHECK(make_ldns_resolver(s, &why) == nullptr);
    CHECK(why.find("not-an-address") != std::string::npos);

    s.servers = {"127.0.0.1"};
    s.timeout = Seconds{0};
    CHECK(make_ldns_resolver(s, &why) == nullptr);
    CHECK(why.find("dns_timeout") != std::string::npos);

    s.timeout = Seconds{5};
    s.retries = -1;
    CHECK(make_ldns_resolver(s, &why) == nullptr);
    CHECK(why.find("dns_retries") != std::string::npos);

    s.retries = 2;
    s.servers = {"127.0.0.1:5353", "127.0.0.2:5353", "[::1]:5353"};
    CHECK(make_ldns_resolver(s, &why) != nullptr);
}

// --- the real ldns path, on 127.0.0.1 only ------------------------------

namespace {

// A reply to `query` echoing ID and question, with `answers` (zone text).
LdnsPktPtr answer_to(const ldns_pkt* query, std::vector<std::string> answers,
                     ldns_pkt_rcode rcode = LDNS_RCODE_NOERROR) {
    const ldns_rr* q0 = ldns_rr_list_rr(ldns_pkt_question(query), 0);
    LdnsPktPtr p(ldns_pkt_query_new(ldns_rdf_clone(ldns_rr_owner(q0)), ldns_rr_get_type(q0),
                                    LDNS_RR_CLASS_IN, LDNS_RD));
    ldns_pkt_set_id(p.get(), ldns_pkt_id(query));
    ldns_pkt_set_qr(p.get(), true);
    ldns_pkt_set_ra(p.get(), true);
    ldns_pkt_set_ad(p.get(), true);
    ldns_pkt_set_rcode(p.get(), static_cast<std::uint8_t>(rcode));
    for (const auto& a : answers) {
        ldns_rr* r = nullptr;
        if (ldns_rr_new_frm_str(&r, a.c_str(), 300, nullptr, nullptr) == LDNS_STATUS_OK) {
            ldns_pkt_push_rr(p.get(), LDNS_SECTION_ANSWER, r);
        }
    }
    return p;
}

std::unique_ptr<DnsResolver> resolver_for(const LocalDns& dns) {
    DnsSettings s;
    s.servers = {dns.server()};
    s.timeout = Seconds{1};
    s.retries = 0;
    std::string why;
    auto r = make_ldns_resolver(s, &why);
    REQUIRE_MESSAGE(r != nullptr, why);
    return r;
}

}  // namespace

TEST_CASE("resolver: a server that never answers gives dns-timeout after the timeout") {
    LocalDns silent;  // bound, never answers
    auto r = resolver_for(silent);
    const auto t0 = std::chrono::steady_clock::now();
    auto txt = r->txt("_mta-sts.example.com");
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    REQUIRE(txt.failed());
    CHECK(txt.failure().temporary());
    CHECK(txt.failure().code == "dns-timeout");
    CHECK(txt.failure().reason.find("_mta-sts.example.com TXT") != std::string::npos);
    CHECK(txt.failure().reason.find(silent.server()) != std::string::npos);
    CHECK(ms >= 900);
    CHECK(ms < 3000);
}

TEST_CASE("resolver: a real query gets the TXT; RD, AD and EDNS0 are set in the query") {
    LocalDns dns([](const ldns_pkt* q) {
        return answer_to(q, {"_mta-sts.example.com. 300 IN TXT \"v=STSv1; \" \"id=7\""});
    });
    auto r = resolver_for(dns);
    auto txt = r->txt("_mta-sts.example.com");
    REQUIRE_MESSAGE(txt.found(), (txt.failed() ? txt.failure().reason : std::string()));
    REQUIRE(txt.value().records.size() == 1);
    CHECK(txt.value().records[0] == "v=STSv1; id=7");
    CHECK(txt.value().meta.authenticated);
    CHECK(dns.last_rd());
    CHECK(dns.last_ad());
    CHECK(dns.last_edns() == 1232);

    // The same resolver keeps working for further queries.
    auto again = r->txt("_mta-sts.example.com");
    CHECK(again.found());
}

TEST_CASE("resolver: SERVFAIL from the server names the server that answered") {
    LocalDns dns([](const ldns_pkt* q) { return answer_to(q, {}, LDNS_RCODE_SERVFAIL); });
    auto r = resolver_for(dns);
    auto txt = r->txt("_mta-sts.example.com");
    REQUIRE(txt.failed());
    CHECK(txt.failure().code == "dns-servfail");
    CHECK(txt.failure().reason == "SERVFAIL for _mta-sts.example.com TXT from " + dns.server());
}

TEST_CASE("resolver: a reply with the wrong ID is refused as dns-error") {
    LocalDns dns([](const ldns_pkt* q) {
        auto p = answer_to(q, {"_mta-sts.example.com. 300 IN TXT \"v=STSv1; id=1\""});
        ldns_pkt_set_id(p.get(), static_cast<std::uint16_t>(ldns_pkt_id(q) + 1));
        return p;
    });
    auto r = resolver_for(dns);
    auto txt = r->txt("_mta-sts.example.com");
    REQUIRE(txt.failed());
    CHECK(txt.failure().code == "dns-error");
    CHECK(txt.failure().reason.find("wrong ID") != std::string::npos);
}

TEST_CASE("resolver: a truncated UDP reply is retried over TCP; TCP failing gives dns-truncated") {
    LocalDns dns([](const ldns_pkt* q) {
        auto p = answer_to(q, {});
        ldns_pkt_set_tc(p.get(), true);
        return p;
    });
    auto r = resolver_for(dns);  // nothing listens on TCP at that port
    auto txt = r->txt("_mta-sts.example.com");
    REQUIRE(txt.failed());
    CHECK(txt.failure().temporary());
    CHECK(txt.failure().code == "dns-truncated");
}

TEST_CASE("resolver: addresses() asks A and AAAA; mx() falls back to the implicit MX") {
    LocalDns dns([](const ldns_pkt* q) {
        const ldns_rr* q0 = ldns_rr_list_rr(ldns_pkt_question(q), 0);
        switch (ldns_rr_get_type(q0)) {
            case LDNS_RR_TYPE_A:
                return answer_to(q, {"example.com. 300 IN A 192.0.2.7"});
            case LDNS_RR_TYPE_AAAA:
                return answer_to(q, {"example.com. 300 IN AAAA 2001:db8::7"});
            default:
                return answer_to(q, {});  // NODATA for MX
        }
    });
    auto r = resolver_for(dns);
    auto a = r->addresses("example.com");
    REQUIRE(a.found());
    CHECK(a.value().addresses == std::vector<std::string>{"192.0.2.7", "2001:db8::7"});

    auto domain = DomainName::parse("example.com");
    REQUIRE(domain.has_value());
    auto mx = r->mx(*domain);
    REQUIRE(mx.found());
    CHECK(mx.value().implicit);
    REQUIRE(mx.value().hosts.size() == 1);
    CHECK(mx.value().hosts[0].host == "example.com");
}

TEST_CASE("resolver: an invalid owner name is refused before any query") {
    LocalDns dns([](const ldns_pkt* q) { return answer_to(q, {}); });
    auto r = resolver_for(dns);
    for (const char* bad : {"", ".", "a b.example", "a..b"}) {
        CAPTURE(bad);
        auto txt = r->txt(bad);
        REQUIRE(txt.failed());
        CHECK_FALSE(txt.failure().temporary());
        CHECK(txt.failure().code == "dns-error");
    }
    CHECK(dns.queries() == 0);
}

TEST_CASE("resolver: a server that timed out once is asked again by the next query") {
    std::atomic<int> seen{0};
    LocalDns dns([&seen](const ldns_pkt* q) -> LdnsPktPtr {
        if (seen++ == 0) return nullptr;  // drop the first query
        return answer_to(q, {"_mta-sts.example.com. 300 IN TXT \"v=STSv1; id=1\""});
    });
    auto r = resolver_for(dns);
    auto first = r->txt("_mta-sts.example.com");
    REQUIRE(first.failed());
    CHECK(first.failure().code == "dns-timeout");
    auto second = r->txt("_mta-sts.example.com");
    CHECK(second.found());
}
