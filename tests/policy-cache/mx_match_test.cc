// Tests for policy-cache/mx_match.cc: "mx" pattern syntax (RFC 8461 3.2)
// and MX host matching (4.1).
#include "policy-cache/mx_match.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/test_random.h"

using namespace stsguard;

namespace {

const Finding* find(const Findings& fs, std::string_view code) {
    for (const auto& f : fs)
        if (f.code == code) return &f;
    return nullptr;
}

bool matches(std::string_view pattern, std::string_view host) {
    return match_mx(pattern, host).verdict == MxVerdict::match;
}

bool pattern_ok(std::string_view pattern) { return !has_errors(check_mx_pattern(pattern)); }

}  // namespace

// --- matching (4.1) ---------------------------------------------------------

TEST_CASE("4.1: an exact pattern matches the same host") {
    const auto m = match_mx("mail.example.com", "mail.example.com");
    CHECK(m.verdict == MxVerdict::match);
    CHECK(m.findings.empty());
}

TEST_CASE("4.1: matching ignores letter case on both sides") {
    CHECK(matches("MAIL.Example.COM", "mail.example.com"));
    CHECK(matches("mail.example.com", "MAIL.EXAMPLE.COM"));
    CHECK(matches("*.EXAMPLE.com", "Mx1.example.COM"));
}

TEST_CASE("4.1: a trailing root dot on the host is ignored") {
    CHECK(matches("mail.example.com", "mail.example.com."));
    CHECK(matches("*.example.com", "mx.example.com."));
}

TEST_CASE("4.1: '*.' matches exactly one left-most label") {
    CHECK(matches("*.example.com", "mx1.example.com"));
    CHECK(matches("*.example.com", "a-b.example.com"));
}

TEST_CASE("4.1: '*.example.com' does not match example.com itself") {
    const auto m = match_mx("*.example.com", "example.com");
    CHECK(m.verdict == MxVerdict::nomatch);
    REQUIRE(find(m.findings, "mx-nomatch"));
    CHECK(find(m.findings, "mx-nomatch")->message.find("none") != std::string::npos);
}

TEST_CASE("4.1: '*.example.com' does not match two labels (foo.bar.example.com)") {
    const auto m = match_mx("*.example.com", "foo.bar.example.com");
    CHECK(m.verdict == MxVerdict::nomatch);
    REQUIRE(find(m.findings, "mx-nomatch"));
    CHECK(find(m.findings, "mx-nomatch")->message.find("exactly one label") != std::string::npos);
}

TEST_CASE("4.1: an exact pattern does not match a subdomain or a parent") {
    CHECK_FALSE(matches("example.com", "mail.example.com"));
    CHECK_FALSE(matches("mail.example.com", "example.com"));
}

TEST_CASE("4.1: an unrelated host does not match") {
    const auto m = match_mx("mail.example.com", "mail.example.org");
    CHECK(m.verdict == MxVerdict::nomatch);
    CHECK(find(m.findings, "mx-nomatch"));
}

TEST_CASE("4.1: a wildcard suffix must start at a label boundary") {
    CHECK_FALSE(matches("*.example.com", "mail.badexample.com"));
    CHECK_FALSE(matches("*.example.com", "mailexample.com"));
}

TEST_CASE("4.1: a U-label host is compared in its A-label form") {
    CHECK(matches("*.xn--bcher-kva.example",
                  "mx.b\xc3\xbc"
                  "cher.example"));
    CHECK(matches("mx.xn--bcher-kva.example",
                  "MX.B\xc3\x9c"
                  "CHER.example."));
}

TEST_CASE("4.1: an invalid host matches nothing and says why") {
    const auto m = match_mx("*.example.com", "mx..example.com");
    CHECK(m.verdict == MxVerdict::nomatch);
    REQUIRE(find(m.findings, "mx-host-invalid"));
    CHECK(find(m.findings, "mx-host-invalid")->message.find("empty label") != std::string::npos);
}

TEST_CASE("4.1: an IP address host matches nothing") {
    const auto m = match_mx("192.0.2.1", "192.0.2.1");
    CHECK(m.verdict == MxVerdict::nomatch);
    CHECK(find(m.findings, "mx-host-invalid"));
}

TEST_CASE("4.1: an invalid pattern matches nothing, with the reason") {
    const auto m = match_mx("mail.*.example.com", "mail.x.example.com");
    CHECK(m.verdict == MxVerdict::nomatch);
    CHECK(find(m.findings, "mx-pattern-wildcard"));
    CHECK(find(m.findings, "mx-pattern-invalid"));
}

TEST_CASE("4.1: a pattern with a trailing dot matches nothing, not even itself") {
    const auto m = match_mx("mail.example.com.", "mail.example.com.");
    CHECK(m.verdict == MxVerdict::nomatch);
    CHECK(find(m.findings, "mx-pattern-trailing-dot"));
}

TEST_CASE("4.1: mx_allowed is true when any pattern matches") {
    const std::vector<std::string> pats{"mail.example.com", "*.example.net"};
    CHECK(mx_allowed(pats, "mail.example.com"));
    CHECK(mx_allowed(pats, "MX7.example.net."));
    CHECK_FALSE(mx_allowed(pats, "a.b.example.net"));
    CHECK_FALSE(mx_allowed(pats, "example.net"));
}

TEST_CASE("4.1: mx_allowed skips invalid patterns") {
    const std::vector<std::string> pats{"*", "*.*.example.com", "mail_1.example.com"};
    CHECK_FALSE(mx_allowed(pats, "a.b.example.com"));
    CHECK_FALSE(mx_allowed(pats, "mail_1.example.com"));
}

TEST_CASE("4.1: mx_allowed with no patterns allows nothing") {
    CHECK_FALSE(mx_allowed({}, "mail.example.com"));
}

TEST_CASE("4.1: mx_allowed refuses an invalid host") {
    CHECK_FALSE(mx_allowed({"*.example.com"}, "-x.example.com"));
    CHECK_FALSE(mx_allowed({"*.example.com"}, ""));
}

// --- pattern syntax (3.2) ---------------------------------------------------

TEST_CASE("3.2: plain and wildcard patterns are valid") {
    CHECK(check_mx_pattern("mail.example.com").empty());
    CHECK(check_mx_pattern("*.example.com").empty());
    CHECK(check_mx_pattern("xn--bcher-kva.example").empty());
    CHECK(check_mx_pattern("1mx.example.com").empty());
}

TEST_CASE("3.2: '*' anywhere but the whole left-most label is invalid") {
    for (const char* p : {"mail.*.example.com", "*mail.example.com", "m*.example.com",
                          "*.*.example.com", "**.example.com", "example.*"}) {
        CAPTURE(p);
        CHECK(find(check_mx_pattern(p), "mx-pattern-wildcard"));
    }
}

TEST_CASE("3.2: '*.' with nothing after it is invalid") {
    CHECK(find(check_mx_pattern("*."), "mx-pattern-empty"));
    CHECK(find(check_mx_pattern("*"), "mx-pattern-wildcard"));
}

TEST_CASE("3.2: an empty pattern is invalid") {
    CHECK(find(check_mx_pattern(""), "mx-pattern-empty"));
}

TEST_CASE("3.2: a trailing dot in a pattern is invalid (RFC 5321 Domain)") {
    const auto f = check_mx_pattern("mail.example.com.");
    CHECK(find(f, "mx-pattern-trailing-dot"));
    CHECK(f.size() == 1);
}

TEST_CASE("3.2: an empty label in a pattern is invalid") {
    CHECK(find(check_mx_pattern("mail..example.com"), "mx-pattern-empty-label"));
    CHECK(find(check_mx_pattern(".example.com"), "mx-pattern-empty-label"));
}

TEST_CASE("3.2: '_' and other non-LDH characters are invalid in a pattern") {
    for (const char* p : {"mail_1.example.com", "mail example.com", "mail@example.com",
                          "[192.0.2.1]", "mail.example.com:25"}) {
        CAPTURE(p);
        CHECK(find(check_mx_pattern(p), "mx-pattern-invalid-char"));
    }
}

TEST_CASE("3.2: a label that starts or ends with '-' is invalid") {
    CHECK(find(check_mx_pattern("-mail.example.com"), "mx-pattern-hyphen"));
    CHECK(find(check_mx_pattern("mail-.example.com"), "mx-pattern-hyphen"));
    CHECK(pattern_ok("ma-il.example.com"));
}

TEST_CASE("3.2: a label of 63 octets is valid, 64 is not") {
    CHECK(pattern_ok(std::string(63, 'a') + ".example.com"));
    CHECK(
        find(check_mx_pattern(std::string(64, 'a') + ".example.com"), "mx-pattern-label-too-long"));
}

TEST_CASE("3.2: a domain of 253 octets is valid, 254 is not") {
    std::string d;
    while (d.size() < 253 - 4) d += "abc.";
    d += std::string(253 - d.size(), 'x');
    REQUIRE(d.size() == 253);
    CHECK(pattern_ok(d));
    CHECK(find(check_mx_pattern("y" + d), "mx-pattern-too-long"));
}

TEST_CASE("3.2: a U-label pattern is invalid and the A-label is suggested") {
    const auto f = check_mx_pattern(
        "*.b\xc3\xbc"
        "cher.example");
    REQUIRE(find(f, "mx-pattern-ulabel"));
    CHECK(find(f, "mx-pattern-ulabel")->message.find("'*.xn--bcher-kva.example'") !=
          std::string::npos);
}

TEST_CASE("3.2: a pattern with invalid UTF-8 is invalid and shown escaped") {
    const auto f = check_mx_pattern("mail\xff.example.com");
    REQUIRE(find(f, "mx-pattern-ulabel"));
    CHECK(find(f, "mx-pattern-ulabel")->message.find("\\xff") != std::string::npos);
}

TEST_CASE("3.2: an IP address pattern is valid syntax but warns that it never matches") {
    const auto f = check_mx_pattern("192.0.2.25");
    CHECK_FALSE(has_errors(f));
    REQUIRE(find(f, "mx-pattern-ip-address"));
    CHECK(find(f, "mx-pattern-ip-address")->severity == Severity::warning);
}

TEST_CASE("3.2: a single-label pattern warns") {
    const auto f = check_mx_pattern("localhost");
    CHECK_FALSE(has_errors(f));
    CHECK(find(f, "mx-pattern-single-label"));
}

TEST_CASE("3.2: a wildcard over a top-level domain warns") {
    const auto m = match_mx("*.com", "anything.com");
    CHECK(m.verdict == MxVerdict::match);
    REQUIRE(find(m.findings, "mx-pattern-wildcard-tld"));
    CHECK(find(m.findings, "mx-pattern-wildcard-tld")->severity == Severity::warning);
}

TEST_CASE("3.2: each kind of pattern problem is reported once") {
    std::string p;
    for (int i = 0; i < 5000; ++i) p += "a..";
    const auto f = check_mx_pattern(p);
    int empty = 0;
    for (const auto& x : f) empty += x.code == "mx-pattern-empty-label";
    CHECK(empty == 1);
    CHECK(f.size() <= 3);
}

TEST_CASE("3.2: pattern findings quote the pattern printably") {
    const auto f = check_mx_pattern(std::string("mx\0.example.com", 15));
    REQUIRE_FALSE(f.empty());
    CHECK(f.front().message.find("mx\\x00.example.com") != std::string::npos);
}

TEST_CASE("4.1: mx_allowed_checked decides exactly as match_mx for every pattern and host") {
    const std::vector<std::string> patterns = {
        "mx.example.com", "*.example.com", "*.Mail.Example.com", "MX2.example.net", "*.",
        "a..b", "*example.com", "mx_1.example.com", "-bad.example.com", "*.com", "xn--mnchen-3ya.de"};
    const std::vector<std::string> hosts = {
        "mx.example.com", "MX.example.com.", "a.b.example.com", "example.com", "x.mail.example.com",
        "mx2.example.net", "mx_1.example.com", "xn--mnchen-3ya.de", "xn--zz.example.com", "foo.com",
        "127.0.0.1", "", "mx.example.com..", "bad host.example.com",
        // For the byte-for-byte fast path: hosts that end in a pattern's
        // domain but whose first label is not in normal form, or not one label.
        "1mx.example.com", "-mx.example.com", "mx-.example.com", "_mx.example.com", ".example.com",
        "Mx.example.com", std::string(63, 'a') + ".example.com", std::string(64, 'a') + ".example.com",
        "a.mx.example.com", "mx.example.com.evil.test", "xmx.example.com"};
    for (const auto& pat : patterns) {
        const std::vector<std::string> one = {pat};
        const auto usable = usable_mx_patterns(one);
        for (const auto& host : hosts) {
            const bool expect = match_mx(pat, host).verdict == MxVerdict::match;
            CHECK_MESSAGE(mx_allowed_checked(usable, host) == expect, pat, " vs ", host);
            CHECK_MESSAGE(mx_allowed(one, host) == expect, pat, " vs ", host);
        }
    }
    // Several patterns: any match allows; invalid ones are left out.  The
    // same patterns viewed in a stored record give the same decisions.
    const auto usable = usable_mx_patterns(patterns);
    NameViews views;
    views.assign(patterns);
    const UsableMxPatterns from_views(views);
    CHECK(from_views.size() == usable.size());
    CHECK(usable.size() < patterns.size());
    for (const auto& host : hosts) {
        bool any = false;
        for (const auto& pat : patterns) any = any || match_mx(pat, host).verdict == MxVerdict::match;
        CHECK_MESSAGE(mx_allowed_checked(usable, host) == any, host);
        CHECK_MESSAGE(mx_allowed_checked(from_views, host) == any, host);
    }
}

TEST_CASE("4.1: a policy with more mx patterns than are held inline keeps every usable one") {
    std::vector<std::string> patterns;
    for (int i = 0; i < 12; ++i) patterns.push_back("MX" + std::to_string(i) + ".Example.test");
    patterns.push_back("*.");  // unusable, left out
    patterns.push_back("*.pool.example.test");
    const auto usable = usable_mx_patterns(patterns);
    CHECK(usable.size() == 13);
    CHECK(mx_allowed_checked(usable, "mx0.example.test"));
    CHECK(mx_allowed_checked(usable, "mx11.example.test"));  // upper-case pattern, past the inline ones
    CHECK(mx_allowed_checked(usable, "a.pool.example.test"));
    CHECK_FALSE(mx_allowed_checked(usable, "mx12.example.test"));
}

TEST_CASE("3.2: mx_pattern_usable agrees with check_mx_pattern on every pattern") {
    // Fixed table of the cases the shortcut must hand to the full check...
    for (const char* p : {"mx.example.com", "*.example.com", "MX.example.com", "mx_1.example.com",
                          "*.mx_1.example", "mx.example.com.", "*example.com", "*.", "", "a..b",
                          "-mx.example", "xn--bcher-kva.example", "1.2.3.4", "example"})
        CHECK_MESSAGE(mx_pattern_usable(p) == !has_errors(check_mx_pattern(p)), p);
    // ...and random ones over an alphabet that reaches every rule.  Fixed seed.
    const std::string_view pieces[] = {"a", "b", "x", "n", "0", "9", "-", "_", ".", "*", "A", " "};
    stsguard_test::TestRandom random(777);
    int usable = 0;
    for (int n = 0; n < 100000; ++n) {
        const std::string p = (random.below(4) == 0 ? "*." : "") + random.string(pieces, 10);
        const bool want = !has_errors(check_mx_pattern(p));
        REQUIRE_MESSAGE(mx_pattern_usable(p) == want, p);
        usable += want;
    }
    CHECK(usable > 1000);
}
