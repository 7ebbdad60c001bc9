// Tests plugin/domain_list.cc: milter_exempt_domains matching.
#include <doctest/doctest.h>

#include "plugin/domain_list.h"

using namespace stsguard;

namespace {

DomainName dn(const char* s) { return *DomainName::parse(s); }

DomainList list(std::vector<std::string> entries) {
    std::string why;
    auto l = DomainList::parse(entries, &why);
    REQUIRE_MESSAGE(l.has_value(), why);
    return *l;
}

}  // namespace

TEST_CASE("exemptions: 'example.com' matches exactly that domain") {
    const DomainList l = list({"example.com"});
    CHECK(l.matches(dn("example.com")));
    CHECK(l.matches(dn("EXAMPLE.com.")));
    CHECK_FALSE(l.matches(dn("mail.example.com")));
    CHECK_FALSE(l.matches(dn("notexample.com")));
    CHECK_FALSE(l.matches(dn("example.com.evil.test")));
}

TEST_CASE("exemptions: '.example.com' matches every subdomain, not the domain itself") {
    const DomainList l = list({".example.com"});
    CHECK(l.matches(dn("mail.example.com")));
    CHECK(l.matches(dn("a.b.c.example.com")));
    CHECK_FALSE(l.matches(dn("example.com")));
    CHECK_FALSE(l.matches(dn("badexample.com")));
    CHECK_FALSE(l.matches(dn("example.com.evil.test")));
}

TEST_CASE("exemptions: entries are normalized like recipients (case, trailing dot, IDNA)") {
    const DomainList l = list({"Bücher.Example.", ".Internal.TEST"});
    CHECK(l.matches(dn("xn--bcher-kva.example")));
    CHECK(l.matches(dn("host.internal.test")));
    CHECK(l.size() == 2);
}

TEST_CASE("exemptions: an empty list matches nothing") {
    const DomainList l = list({});
    CHECK_FALSE(l.matches(dn("example.com")));
    CHECK(l.size() == 0);
}

TEST_CASE("exemptions: an invalid entry is a start-up error naming it") {
    for (const char* bad : {".", "exa mple.com", "..example.com", "-x-.com", "192.0.2.1"}) {
        std::string why;
        CHECK_FALSE_MESSAGE(DomainList::parse({"ok.test", bad}, &why).has_value(), bad);
        CHECK_MESSAGE(why.find(std::string("'") + bad + "'") != std::string::npos, why);
    }
}
