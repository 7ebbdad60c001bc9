// Tests policy-cache/discovery.cc: RFC 8461 3.1-3.3 discovery outcomes
// and their reason codes, with fake DNS and HTTPS.
#include <doctest/doctest.h>

#include <set>

#include "policy-cache/discovery.h"
#include "tests/fakes.h"

using namespace stsguard;
using stsguard::testing::FakeFetcher;
using stsguard::testing::FakeResolver;

namespace {
DomainName dn(const char* s) { return *DomainName::parse(s); }
const char* kGood = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n";
}  // namespace

TEST_CASE("discovery: valid record and valid policy give outcome policy") {
    FakeResolver dns;
    FakeFetcher web;
    dns.set_txt("_mta-sts.example.com", {"v=STSv1; id=20240101"});
    web.set_body("example.com", kGood);
    Discovery d = discover(dn("example.com"), dns, web);
    CHECK(d.status == DiscoveryStatus::policy);
    CHECK(d.code == "policy-ok");
    REQUIRE(d.policy() != nullptr);
    CHECK(d.policy()->mode == Mode::enforce);
    CHECK(d.txt.txt.id->str() == "20240101");
    CHECK(std::string(d.rfc8460_type()).empty());
}

TEST_CASE("discovery 3.1: no TXT record means no policy and no fetch") {
    FakeResolver dns;
    FakeFetcher web;
    Discovery d = discover(dn("example.com"), dns, web);
    CHECK(d.status == DiscoveryStatus::no_policy);
    CHECK(d.code == "no-txt");
    CHECK(web.calls == 0);
}

TEST_CASE("discovery 3.1: several v=STSv1 records mean no policy") {
    FakeResolver dns;
    FakeFetcher web;
    dns.set_txt("_mta-sts.example.com", {"v=STSv1; id=a1", "v=STSv1; id=b2"});
    web.set_body("example.com", kGood);
    Discovery d = discover(dn("example.com"), dns, web);
    CHECK(d.status == DiscoveryStatus::no_policy);
    CHECK(d.code == "txt-multiple");
    CHECK(web.calls == 0);
}

TEST_CASE("discovery 3.1: records not starting with v=STSv1 are ignored") {
    FakeResolver dns;
    FakeFetcher web;
    dns.set_txt("_mta-sts.example.com", {"google-site-verification=abc", "v=STSv1; id=a1"});
    web.set_body("example.com", kGood);
    CHECK(discover(dn("example.com"), dns, web).status == DiscoveryStatus::policy);
    dns.set_txt("_mta-sts.example.com", {"google-site-verification=abc"});
    Discovery d = discover(dn("example.com"), dns, web);
    CHECK(d.status == DiscoveryStatus::no_policy);
    CHECK(d.code == "txt-none-sts");
}

TEST_CASE("discovery 3.1: an invalid v=STSv1 record means no policy") {
    FakeResolver dns;
    FakeFetcher web;
    dns.set_txt("_mta-sts.example.com", {"v=STSv1; id=not-alnum!"});
    Discovery d = discover(dn("example.com"), dns, web);
    CHECK(d.status == DiscoveryStatus::no_policy);
    CHECK(d.code == "txt-invalid");
    CHECK_FALSE(d.reason.empty());
}

TEST_CASE("discovery: DNS SERVFAIL on the TXT query is a temporary failure") {
    FakeResolver dns;
    FakeFetcher web;
    dns.txt_answers.insert_or_assign("_mta-sts.example.com",
                                     Lookup<TxtAnswer>(Failure::temp("dns-servfail", "SERVFAIL")));
    Discovery d = discover(dn("example.com"), dns, web);
    CHECK(d.status == DiscoveryStatus::failed);
    CHECK(d.code == "dns-servfail");
    CHECK(d.failure_kind == FailureKind::temporary);
    CHECK(std::string(d.rfc8460_type()) == "sts-policy-fetch-error");
}

TEST_CASE("discovery 3.3: a fetch failure keeps its code, kind and RFC 8460 type") {
    FakeResolver dns;
    FakeFetcher web;
    dns.set_txt("_mta-sts.example.com", {"v=STSv1; id=a1"});
    web.answers.insert_or_assign(
        "example.com", Lookup<FetchedPolicy>(Failure::perm("https-cert-invalid", "certificate has expired")));
    Discovery d = discover(dn("example.com"), dns, web);
    CHECK(d.status == DiscoveryStatus::failed);
    CHECK(d.code == "https-cert-invalid");
    CHECK(d.failure_kind == FailureKind::permanent);
    CHECK(std::string(d.rfc8460_type()) == "sts-webpki-invalid");
}

TEST_CASE("discovery 3.2: an invalid policy body is a permanent sts-policy-invalid failure") {
    FakeResolver dns;
    FakeFetcher web;
    dns.set_txt("_mta-sts.example.com", {"v=STSv1; id=a1"});
    web.set_body("example.com", "version: STSv1\nmode: enforce\nmax_age: 86400\n");  // no mx
    Discovery d = discover(dn("example.com"), dns, web);
    CHECK(d.status == DiscoveryStatus::failed);
    CHECK(d.code == "policy-invalid");
    CHECK(std::string(d.rfc8460_type()) == "sts-policy-invalid");
    CHECK(d.policy() == nullptr);
}

TEST_CASE("discovery: an unknown failure code from an adapter is mapped to a known one") {
    FakeResolver dns;
    FakeFetcher web;
    dns.set_txt("_mta-sts.example.com", {"v=STSv1; id=a1"});
    web.answers.insert_or_assign("example.com", Lookup<FetchedPolicy>(Failure::temp("weird", "x")));
    Discovery d = discover(dn("example.com"), dns, web);
    CHECK(d.code == "https-error");
    CHECK(reason_info(d.code) != nullptr);
}

TEST_CASE("discovery: every reason code is unique and failed ones have an RFC 8460 type") {
    std::set<std::string> seen;
    for (const auto& r : reason_table()) {
        CHECK(seen.insert(r.code).second);
        if (r.status == DiscoveryStatus::failed) CHECK(std::string(r.rfc8460).rfind("sts-", 0) == 0);
        else CHECK(std::string(r.rfc8460).empty());
    }
}

TEST_CASE("discovery 3.1: two v=STSv10 records are not several v=STSv1 records") {
    FakeResolver dns;
    FakeFetcher web;
    dns.set_txt("_mta-sts.example.com", {"v=STSv10; id=a1", "v=STSv10; id=b2"});
    Discovery d = discover(dn("example.com"), dns, web);
    CHECK(d.status == DiscoveryStatus::no_policy);
    CHECK(d.code == "txt-none-sts");
}
