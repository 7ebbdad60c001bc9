// Tests plugin/recipient_address.cc: the destination domain of an
// envelope recipient (RFC 5321 4.1.2 Path / Mailbox).
#include <doctest/doctest.h>

#include <string>

#include "plugin/recipient_address.h"

using namespace stsguard;

namespace {

std::string domain_of(std::string_view address) {
    const RecipientDomain r = recipient_domain(address);
    REQUIRE_MESSAGE(r.kind == RecipientDomain::Kind::domain, "address: " << address << " why: " << r.why);
    return r.domain->str();
}

RecipientDomain::Kind kind_of(std::string_view address) { return recipient_domain(address).kind; }

}  // namespace

TEST_CASE("5321 4.1.2: the domain of <local@domain>, normalized to lower case") {
    CHECK(domain_of("<user@Example.COM>") == "example.com");
    CHECK(domain_of("user@example.com") == "example.com");            // Postfix may pass it bare
    CHECK(domain_of("  <user@example.com>  ") == "example.com");
    CHECK(domain_of("<user@example.com.>") == "example.com");         // trailing root dot
    CHECK(domain_of("<first.last+tag@mail.example.org>") == "mail.example.org");
}

TEST_CASE("5321 4.1.2: a quoted local part may hold '@', '<', '>' and escaped quotes") {
    CHECK(domain_of("<\"a@b\"@example.com>") == "example.com");
    CHECK(domain_of("<\"john <doe>\"@example.com>") == "example.com");
    CHECK(domain_of("<\"a\\\"@evil.test\"@example.com>") == "example.com");  // \" stays inside quotes
    CHECK(domain_of("<\"\\\\\"@example.com>") == "example.com");             // an escaped backslash
    CHECK(domain_of("<\"with space\"@example.com>") == "example.com");
}

TEST_CASE("5321 4.1.2 / C: a source route is ignored, the mailbox's domain counts") {
    CHECK(domain_of("<@relay.test:user@example.com>") == "example.com");
    CHECK(domain_of("<@a.test,@b.test:user@example.com>") == "example.com");
    CHECK(kind_of("<@relay.test,user@example.com>") == RecipientDomain::Kind::invalid);  // no ':'
    CHECK(kind_of("<@relay.test:>") == RecipientDomain::Kind::invalid);
}

TEST_CASE("IDN: a U-label domain maps to its A-label, the cache key serve uses") {
    CHECK(domain_of("<user@bücher.example>") == "xn--bcher-kva.example");
    CHECK(domain_of("<用户@例子.测试>") == domain_of("<x@xn--fsqu00a.xn--0zwm56d>"));
    CHECK(domain_of("<user@XN--BCHER-KVA.example>") == "xn--bcher-kva.example");
}

TEST_CASE("no domain: a bare local part, or an address literal (8461 4.1 is about names)") {
    const RecipientDomain local = recipient_domain("<postmaster>");
    CHECK(local.kind == RecipientDomain::Kind::no_domain);
    CHECK(local.why.find("local") != std::string::npos);
    const RecipientDomain literal = recipient_domain("<user@[192.0.2.1]>");
    CHECK(literal.kind == RecipientDomain::Kind::no_domain);
    CHECK(literal.why.find("address literal") != std::string::npos);
    CHECK(kind_of("<user@[IPv6:2001:db8::1]>") == RecipientDomain::Kind::no_domain);
}

TEST_CASE("garbage is invalid, with a reason naming what is wrong") {
    struct Case {
        const char* address;
        const char* reason_part;
    };
    const Case cases[] = {
        {"", "empty"},
        {"<>", "null path"},
        {"<user@example.com", "angle brackets"},
        {"user@example.com>", "angle brackets"},
        {"<\"unterminated@example.com>", "unterminated quoted"},
        {"<user@example.com\\>", "backslash"},
        {"<@example.com>", "source route"},
        {"<user@>", "empty domain"},
        {"<@>", "source route"},
        {"<\"x\"@>", "empty domain"},
        {"<user@[192.0.2.1>", "address literal"},
        {"<user@exa mple.com>", "invalid domain"},
        {"<user@-bad-.com>", "invalid domain"},
        {"<user@192.0.2.1>", "invalid domain"},
        {"<user@a..b>", "invalid domain"},
        {"<user@example.com\r\nRCPT TO:<x@y>>", "control character"},
        {"<user@exam\x7fple.com>", "control character"},
        {"<user@\xff\xfe.com>", "invalid domain"},
    };
    for (const auto& c : cases) {
        const RecipientDomain r = recipient_domain(c.address);
        CHECK_MESSAGE(r.kind == RecipientDomain::Kind::invalid, "address: " << c.address);
        CHECK_MESSAGE(r.why.find(c.reason_part) != std::string::npos, "address: " << c.address << " why: " << r.why);
    }
    CHECK(recipient_domain(std::string("<a@b\0c.com>", 11)).kind == RecipientDomain::Kind::invalid);
}

TEST_CASE("an empty local part is refused; a domain label over 63 octets is invalid") {
    CHECK(kind_of("<@example.com>") == RecipientDomain::Kind::invalid);
    CHECK(kind_of("<u@" + std::string(64, 'a') + ".com>") == RecipientDomain::Kind::invalid);
    CHECK(kind_of("<u@" + std::string(63, 'a') + ".com>") == RecipientDomain::Kind::domain);
}

TEST_CASE("an address over kMaxAddressBytes is refused without parsing") {
    const std::string huge = "<" + std::string(kMaxAddressBytes, 'a') + "@example.com>";
    const RecipientDomain r = recipient_domain(huge);
    CHECK(r.kind == RecipientDomain::Kind::invalid);
    CHECK(r.why.find("longer than") != std::string::npos);
}

TEST_CASE("the last unquoted '@' separates the domain (what Postfix routes on)") {
    CHECK(domain_of("<a@b@example.com>") == "example.com");
    CHECK(domain_of("<\"a@b\"@c@example.net>") == "example.net");
}
