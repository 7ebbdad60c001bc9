// Tests postfix/socketmap_key.cc: which Postfix TLS policy keys are
// looked up and which get NOTFOUND without DNS.
#include <doctest/doctest.h>

#include "postfix/socketmap_key.h"

using namespace stsguard;
using K = KeyClass::Kind;

TEST_CASE("key: a plain domain is looked up, normalized") {
    auto k = classify_key("Example.COM.");
    REQUIRE(k.kind == K::domain);
    CHECK(k.domain->str() == "example.com");
}

TEST_CASE("key: [host] and [host]:port next hops are not MTA-STS lookups") {
    CHECK(classify_key("[mx.example.com]").kind == K::skip);
    CHECK(classify_key("[mx.example.com]:587").kind == K::skip);
    CHECK(classify_key("[192.0.2.1]").kind == K::skip);
}

TEST_CASE("key: parent-domain keys that Postfix asks after NOTFOUND are skipped") {
    CHECK(classify_key(".example.com").kind == K::skip);
    CHECK(classify_key(".test").kind == K::skip);
}

TEST_CASE("key: IP literals and host:port are skipped") {
    CHECK(classify_key("192.0.2.1").kind == K::skip);
    CHECK(classify_key("2001:db8::1").kind == K::skip);
    CHECK(classify_key("mx.example.com:25").kind == K::skip);
}

TEST_CASE("key: single-label names are skipped") {
    CHECK(classify_key("localhost").kind == K::skip);
}

TEST_CASE("key: invalid names are reported with a reason") {
    auto k = classify_key("exa mple.com");
    CHECK(k.kind == K::invalid);
    CHECK_FALSE(k.why.empty());
    CHECK(classify_key("").kind == K::invalid);
    CHECK(classify_key("a..b").kind == K::invalid);
    CHECK(classify_key(std::string(300, 'a') + ".com").kind == K::invalid);
}

TEST_CASE("key: internationalized names become A-labels") {
    auto k = classify_key("bücher.example");
    REQUIRE(k.kind == K::domain);
    CHECK(k.domain->str() == "xn--bcher-kva.example");
}

TEST_CASE("key: classifying into a used KeyClass gives what a fresh one gives, for every kind in any order") {
    // The serve hot path classifies every request into the same KeyClass.
    const char* keys[] = {"example.com", "Mail.Example.COM", "[mx.example.com]:25", "d0000001.bench.test",
                          "bad..name", ".example.com", "localhost", "192.0.2.1", "a-much-longer-name.example.org",
                          "example.com", "", "xn--bcher-kva.example", "host.example:587", "short.io"};
    KeyClass reused;
    for (int round = 0; round < 2; ++round) {
        for (const char* key : keys) {
            classify_key_into(key, reused);
            const KeyClass fresh = classify_key(key);
            CHECK_MESSAGE(reused.kind == fresh.kind, key);
            CHECK_MESSAGE(reused.why == fresh.why, key);
            REQUIRE_MESSAGE(reused.domain.has_value() == fresh.domain.has_value(), key);
            if (fresh.domain) CHECK_MESSAGE(reused.domain->str() == fresh.domain->str(), key);
        }
    }
}
