// Tests for checker/tlsrpt_record.cc: the _smtp._tls record grammar of
// RFC 8460 section 3.
#include "checker/tlsrpt_record.h"

#include <doctest/doctest.h>

#include "tests/checker/check_fakes.h"

using namespace stsguard;
using stsguard::testing::has_code;

TEST_CASE("RFC 8460 3: a record with one mailto: rua is valid") {
    TlsrptRecord r = parse_tlsrpt({"v=TLSRPTv1; rua=mailto:tlsrpt@example.com"});
    CHECK(r.verdict == TlsrptVerdict::valid);
    REQUIRE(r.rua.size() == 1);
    CHECK(r.rua[0] == "mailto:tlsrpt@example.com");
    CHECK_FALSE(has_errors(r.findings));
}

TEST_CASE("RFC 8460 3: several URIs, mailto: and https:, white space around ',' and a trailing ';'") {
    TlsrptRecord r = parse_tlsrpt({"v=TLSRPTv1;rua=mailto:a@example.com , https://reports.example.com/tls ;"});
    CHECK(r.verdict == TlsrptVerdict::valid);
    REQUIRE(r.rua.size() == 2);
    CHECK(r.rua[1] == "https://reports.example.com/tls");
}

TEST_CASE("RFC 8460 3: no v=TLSRPTv1 record means absent; other records are ignored") {
    TlsrptRecord r = parse_tlsrpt({"v=spf1 -all"});
    CHECK(r.verdict == TlsrptVerdict::absent);
    CHECK(has_code(r.findings, "tlsrpt-ignored"));
    CHECK(parse_tlsrpt({}).verdict == TlsrptVerdict::absent);
}

TEST_CASE("RFC 8460 3: two v=TLSRPTv1 records: senders assume no TLSRPT") {
    TlsrptRecord r = parse_tlsrpt({"v=TLSRPTv1; rua=mailto:a@x.test", "v=TLSRPTv1; rua=mailto:b@x.test"});
    CHECK(r.verdict == TlsrptVerdict::invalid);
    CHECK(has_code(r.findings, "tlsrpt-multiple"));
}

TEST_CASE("RFC 8460 3: rua is required; field names are case-sensitive") {
    TlsrptRecord r = parse_tlsrpt({"v=TLSRPTv1; RUA=mailto:a@x.test"});
    CHECK(r.verdict == TlsrptVerdict::invalid);
    CHECK(has_code(r.findings, "tlsrpt-no-rua"));
    bool hint = false;
    for (const auto& f : r.findings) hint |= f.message.find("case-sensitive") != std::string::npos;
    CHECK(hint);
}

TEST_CASE("RFC 8460 3: a URI without a scheme, or an address without '@', is invalid") {
    CHECK(has_code(parse_tlsrpt({"v=TLSRPTv1; rua=tlsrpt@x.test"}).findings, "tlsrpt-uri-invalid"));
    CHECK(parse_tlsrpt({"v=TLSRPTv1; rua=mailto:nobody"}).verdict == TlsrptVerdict::invalid);
    CHECK(parse_tlsrpt({"v=TLSRPTv1; rua=https://"}).verdict == TlsrptVerdict::invalid);
}

TEST_CASE("RFC 8460 3: '!' must be percent-encoded in a URI") {
    TlsrptRecord r = parse_tlsrpt({"v=TLSRPTv1; rua=mailto:a@x.test!10m"});
    CHECK(r.verdict == TlsrptVerdict::invalid);
    CHECK(has_code(r.findings, "tlsrpt-uri-invalid"));
}

TEST_CASE("RFC 8460 3: an unknown URI scheme is a warning if another URI is usable, an error if none is") {
    TlsrptRecord r = parse_tlsrpt({"v=TLSRPTv1; rua=ftp://x.test/r, mailto:a@x.test"});
    CHECK(r.verdict == TlsrptVerdict::valid);
    CHECK(has_code(r.findings, "tlsrpt-uri-scheme"));
    CHECK(parse_tlsrpt({"v=TLSRPTv1; rua=ftp://x.test/r"}).verdict == TlsrptVerdict::invalid);
}

TEST_CASE("RFC 8460 3: extensions follow tlsrpt-ext-name / tlsrpt-ext-value") {
    TlsrptRecord ok = parse_tlsrpt({"v=TLSRPTv1; rua=mailto:a@x.test; x-note=hello"});
    CHECK(ok.verdict == TlsrptVerdict::valid);
    REQUIRE(ok.extensions.size() == 1);
    CHECK(ok.extensions[0].first == "x-note");
    CHECK(has_code(parse_tlsrpt({"v=TLSRPTv1; rua=mailto:a@x.test; _bad=1"}).findings, "tlsrpt-field-name"));
    CHECK(has_code(parse_tlsrpt({"v=TLSRPTv1; rua=mailto:a@x.test; x=a b"}).findings, "tlsrpt-field-value"));
    CHECK(has_code(parse_tlsrpt({"v=TLSRPTv1; rua=mailto:a@x.test; x="}).findings, "tlsrpt-field-value"));
}

TEST_CASE("RFC 8460 3: a duplicate rua and a field without '=' are errors") {
    CHECK(has_code(parse_tlsrpt({"v=TLSRPTv1; rua=mailto:a@x.test; rua=mailto:b@x.test"}).findings,
                   "tlsrpt-rua-duplicate"));
    CHECK(has_code(parse_tlsrpt({"v=TLSRPTv1; rua"}).findings, "tlsrpt-syntax"));
}

TEST_CASE("the version must end its token: v=TLSRPTv10 is not a TLSRPT record") {
    CHECK(parse_tlsrpt({"v=TLSRPTv10; rua=mailto:a@x.test"}).verdict == TlsrptVerdict::absent);
}

TEST_CASE("hostile input gives bounded, printable findings") {
    std::string rec = "v=TLSRPTv1";
    for (int i = 0; i < 2000; ++i) rec += "; \x01=\xff";
    TlsrptRecord r = parse_tlsrpt({rec});
    CHECK(r.verdict == TlsrptVerdict::invalid);
    CHECK(r.findings.size() < 100);
    for (const auto& f : r.findings)
        for (unsigned char c : f.message) CHECK((c >= 0x20 && c < 0x7f));
}
