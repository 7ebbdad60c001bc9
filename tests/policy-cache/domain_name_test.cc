// Tests for policy-cache/domain_name.cc: DomainName normal form and errors.
#include "policy-cache/domain_name.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "tests/test_random.h"

using namespace stsguard;

namespace {

std::string norm(std::string_view s) {
    const auto d = DomainName::parse(s);
    return d ? d->str() : "<invalid>";
}

std::string why(std::string_view s) {
    std::string w;
    const auto d = DomainName::parse(s, &w);
    return d ? "<valid>" : w;
}

bool contains(const std::string& s, std::string_view part) {
    return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("DomainName: ASCII names are lower-cased") {
    CHECK(norm("Mail.EXAMPLE.com") == "mail.example.com");
}

TEST_CASE("DomainName: one trailing root dot is dropped") {
    CHECK(norm("example.com.") == "example.com");
    CHECK(DomainName::parse("example.com.") == DomainName::parse("EXAMPLE.com"));
}

TEST_CASE("DomainName: two trailing dots make an empty label") {
    CHECK(contains(why("example.com.."), "empty label"));
}

TEST_CASE("DomainName: the empty name and the root alone are rejected") {
    CHECK(why("") == "empty name");
    CHECK(contains(why("."), "root"));
}

TEST_CASE("DomainName: empty labels are rejected") {
    CHECK(contains(why(".example.com"), "empty label"));
    CHECK(contains(why("a..example.com"), "empty label"));
}

TEST_CASE("DomainName: a label of 63 octets is accepted, 64 rejected") {
    CHECK(norm(std::string(63, 'a') + ".example") != "<invalid>");
    CHECK(contains(why(std::string(64, 'a') + ".example"), "more than 63"));
}

TEST_CASE("DomainName: a name of 253 octets is accepted, 254 rejected") {
    std::string n;
    while (n.size() < 240) n += "abcdefghi.";
    n += std::string(253 - n.size(), 'z');
    REQUIRE(n.size() == 253);
    CHECK(norm(n) == n);
    CHECK(norm(n + ".") == n);  // the root dot does not count
    CHECK(contains(why("y" + n), "more than 253"));
}

TEST_CASE("DomainName: '_' is allowed, as in _mta-sts owners") {
    CHECK(norm("_mta-sts.Example.com") == "_mta-sts.example.com");
    CHECK(norm("_smtp._tls.example.com") == "_smtp._tls.example.com");
}

TEST_CASE("DomainName: characters outside letters, digits, '-' and '_' are rejected") {
    for (const char* s :
         {"a b.example", "*.example", "mail@example.com", "a/b.example", "a;b.example"}) {
        CAPTURE(s);
        CHECK(contains(why(s), "invalid character"));
    }
}

TEST_CASE("DomainName: a label starting or ending with '-' is rejected") {
    CHECK(contains(why("-mail.example"), "'-'"));
    CHECK(contains(why("mail-.example"), "'-'"));
    CHECK(norm("ab--cd.example") == "ab--cd.example");
}

TEST_CASE("DomainName: IPv4 literals in every inet_aton form are rejected") {
    for (const char* s : {"192.0.2.1", "127.1", "0x7f.0.0.1", "2130706433", "[127.0.0.1]"}) {
        CAPTURE(s);
        CHECK_FALSE(DomainName::parse(s));
    }
    CHECK(contains(why("192.0.2.1"), "IPv4 address"));
}

TEST_CASE("DomainName: IPv6 literals are rejected") {
    CHECK(contains(why("::1"), "IPv6"));
    CHECK(contains(why("[2001:db8::1]"), "address literal"));
}

TEST_CASE("DomainName: an all-numeric last label is rejected") {
    CHECK(contains(why("example.123"), "all-numeric"));
    CHECK(norm("123.example") == "123.example");
}

TEST_CASE("DomainName: U-labels become A-labels (IDNA2008, libidn2)") {
    CHECK(norm("b\xc3\xbc"
               "cher.example") == "xn--bcher-kva.example");
    CHECK(norm("fa\xc3\x9f.de") == "xn--fa-hia.de");  // non-transitional: sharp s kept
}

TEST_CASE("DomainName: UTS#46 maps upper case and full-width forms") {
    CHECK(norm("B\xc3\x9c"
               "CHER.Example.") == "xn--bcher-kva.example");
    CHECK(norm("\xef\xbd\x8d\xef\xbd\x81\xef\xbd\x89\xef\xbd\x8c.example") == "mail.example");
}

TEST_CASE("DomainName: an A-label is kept and must decode") {
    CHECK(norm("XN--BCHER-KVA.example") == "xn--bcher-kva.example");
    CHECK(contains(why("xn--zz.example"), "not a valid A-label"));
}

TEST_CASE("DomainName: invalid UTF-8 is rejected and shown escaped") {
    const std::string w = why("a\xff.example");
    CHECK(contains(w, "valid UTF-8"));
    CHECK(contains(w, "\\xff"));
}

TEST_CASE("DomainName: control characters and NUL are rejected") {
    CHECK(contains(why(std::string("a\0b.example", 11)), "control character"));
    CHECK(contains(why("a\tb.example"), "control character"));
    CHECK(contains(why("example.com\n"), "control character"));
}

TEST_CASE("DomainName: owner names derive from the normal form") {
    const auto d = DomainName::parse("Example.COM.");
    REQUIRE(d);
    CHECK(d->sts_txt_owner() == "_mta-sts.example.com");
    CHECK(d->policy_host() == "mta-sts.example.com");
    CHECK(d->tlsrpt_owner() == "_smtp._tls.example.com");
}

TEST_CASE("DomainName: why may be null") {
    CHECK_FALSE(DomainName::parse("", nullptr));
    CHECK_FALSE(DomainName::parse("a..b", nullptr));
}

TEST_CASE("DomainName: the normal-form shortcut takes only names parse() keeps unchanged") {
    for (const char* yes : {"example.com", "mx1.d0000908.bench.test", "_mta-sts.example.com",
                            "a-b.c_d.example", "x", "www.example.c0m"})
        CHECK_MESSAGE(DomainName::is_normal_form(yes), yes);
    // Each needs a full check: case, root dot, A-label, address, numeric TLD,
    // empty or over-long labels, hyphens at the edges, other characters.
    for (const char* no : {"", "Example.com", "example.com.", "xn--bcher-kva.example",
                           "1.2.3.4", "0x7f.1", "4example.com", "example.123", "a..b", ".a",
                           "-a.example", "a-.example", "a b.example", "a:b", "b\xc3\xbc" "cher.example"})
        CHECK_FALSE_MESSAGE(DomainName::is_normal_form(no), no);
    CHECK(DomainName::is_normal_form(std::string(63, 'a') + ".example"));
    CHECK_FALSE(DomainName::is_normal_form(std::string(64, 'a') + ".example"));
    std::string long_name;
    while (long_name.size() < 250) long_name += "abcdefghi.";
    long_name.resize(253);
    if (long_name.back() == '.') long_name.back() = 'x';
    CHECK(DomainName::is_normal_form(long_name) == DomainName::parse_general(long_name).has_value());
    CHECK_FALSE(DomainName::is_normal_form(long_name + "x"));
}

TEST_CASE("DomainName: parse() with the shortcut agrees with the full parse on every input") {
    // Random strings over pieces that reach every rule: case, digits, '-',
    // '_', dots, "xn--", a space and a non-ASCII character.  Fixed seed.
    const std::string_view pieces[] = {"a", "b", "x", "n", "z", "0", "9", "-", "_", ".",
                                       ".", "A", " ", "xn--", "\xc3\xa9"};
    stsguard_test::TestRandom random(12345);
    int shortcut = 0;
    for (int n = 0; n < 200000; ++n) {
        const std::string s = random.string(pieces, 12);
        const auto fast = DomainName::parse(s);
        const auto full = DomainName::parse_general(s);
        REQUIRE_MESSAGE(fast.has_value() == full.has_value(), s);
        if (fast) REQUIRE_MESSAGE(fast->str() == full->str(), s);
        if (DomainName::is_normal_form(s)) {
            ++shortcut;
            REQUIRE_MESSAGE((full && full->str() == s), s);
        }
    }
    CHECK(shortcut > 1000);  // the generator does reach the shortcut
}

TEST_CASE("valid_utf8: well-formed sequences pass, malformed ones fail") {
    CHECK(valid_utf8(""));
    CHECK(valid_utf8("plain"));
    CHECK(valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7"));
    CHECK_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
    CHECK_FALSE(valid_utf8("\xe0\x80\xaf"));      // overlong
    CHECK_FALSE(valid_utf8("\xed\xa0\x80"));      // UTF-16 surrogate
    CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
    CHECK_FALSE(valid_utf8("\xe2\x82"));          // truncated
    CHECK_FALSE(valid_utf8("\x80"));              // lone continuation
    CHECK_FALSE(valid_utf8("\xff"));
}

TEST_CASE("DomainName: parse_into agrees with parse and leaves the name alone on failure") {
    DomainName into = *DomainName::parse("first.example");
    for (const char* text : {"mx1.example.com", "MX.Example.COM.", "b\xC3\xBC" "cher.example", "a.b", "_mta-sts.example.net"}) {
        const auto expect = DomainName::parse(text);
        REQUIRE_MESSAGE(expect, text);
        std::string why;
        CHECK_MESSAGE(DomainName::parse_into(text, into, &why), text);
        CHECK_MESSAGE(into.str() == expect->str(), text);
    }
    const std::string before = into.str();
    for (const char* bad : {"", "a..b", "192.0.2.1", "bad host.example", "-x.example"}) {
        std::string why;
        CHECK_FALSE_MESSAGE(DomainName::parse_into(bad, into, &why), bad);
        CHECK_MESSAGE(why == [&] { std::string w; DomainName::parse(bad, &w); return w; }(), bad);
        CHECK(into.str() == before);
    }
}
