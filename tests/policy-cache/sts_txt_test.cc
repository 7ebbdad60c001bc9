// Tests for policy-cache/sts_txt.cc: the RFC 8461 3.1 "_mta-sts" TXT record set.
#include "policy-cache/sts_txt.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace stsguard;

namespace {

const Finding* find(const Findings& fs, std::string_view code) {
    for (const auto& f : fs)
        if (f.code == code) return &f;
    return nullptr;
}

StsTxt one(const std::string& record) { return parse_sts_txt({record}); }

bool valid_with_id(const StsTxt& t, const std::string& id) {
    return t.verdict == TxtVerdict::valid && t.id && t.id->str() == id;
}

}  // namespace

// --- the grammar of one record ----------------------------------------------

TEST_CASE("3.1: a minimal record is valid and gives the id") {
    const auto t = one("v=STSv1; id=20160831085700Z");
    CHECK(valid_with_id(t, "20160831085700Z"));
    CHECK(t.findings.empty());
    CHECK(t.extensions.empty());
}

TEST_CASE("3.1: a trailing ';' is allowed") {
    CHECK(valid_with_id(one("v=STSv1; id=abc;"), "abc"));
    CHECK(valid_with_id(one("v=STSv1; id=abc; "), "abc"));
}

TEST_CASE("3.1: whitespace after ';' is optional") {
    CHECK(valid_with_id(one("v=STSv1;id=abc"), "abc"));
    CHECK(valid_with_id(one("v=STSv1;    id=abc"), "abc"));
}

TEST_CASE("3.1: tabs count as whitespace around ';' (WSP)") {
    const auto t = one("v=STSv1;\tid=abc\t;\tx=1");
    CHECK(valid_with_id(t, "abc"));
    CHECK(t.findings.empty());
}

TEST_CASE("3.1: whitespace before the first ';' is valid but warned (erratum 6285)") {
    const auto t = one("v=STSv1 ; id=abc");
    CHECK(valid_with_id(t, "abc"));
    REQUIRE(find(t.findings, "txt-space-before-semicolon"));
    CHECK(find(t.findings, "txt-space-before-semicolon")->severity == Severity::warning);
}

TEST_CASE("3.1: whitespace before a later ';' is plain grammar, no warning") {
    const auto t = one("v=STSv1; id=abc ; x=1");
    CHECK(valid_with_id(t, "abc"));
    CHECK(t.findings.empty());
}

TEST_CASE("3.1: trailing whitespace without ';' is invalid") {
    const auto t = one("v=STSv1; id=abc ");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK_FALSE(t.id);
    REQUIRE(find(t.findings, "txt-trailing-whitespace"));
    CHECK(find(t.findings, "txt-trailing-whitespace")->message.find("column 16") !=
          std::string::npos);
}

TEST_CASE("3.1: 'v=STSv1' alone is invalid: an id is required") {
    const auto t = one("v=STSv1");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-missing-id"));
}

TEST_CASE("3.1: 'v=STSv1;' alone is invalid: an id is required") {
    const auto t = one("v=STSv1;");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-missing-id"));
}

TEST_CASE("3.1: a record with extensions but no id is invalid") {
    const auto t = one("v=STSv1; x=1; y=2");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-missing-id"));
}

TEST_CASE("3.1: v= must come first; 'id=...; v=STSv1' is not an STS record") {
    const auto t = one("id=abc; v=STSv1");
    CHECK(t.verdict == TxtVerdict::no_policy);
    CHECK(find(t.findings, "txt-no-sts-record"));
    CHECK(find(t.findings, "txt-record-ignored"));
}

TEST_CASE("3.1: a second v= is invalid") {
    const auto t = one("v=STSv1; v=STSv1; id=abc");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-duplicate-version"));
}

// --- id ---------------------------------------------------------------------

TEST_CASE("3.1: an id of 32 letters and digits is valid") {
    const std::string id = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    REQUIRE(id.size() == 32);
    CHECK(valid_with_id(one("v=STSv1; id=" + id), id));
}

TEST_CASE("3.1: an id of 33 characters is invalid") {
    const auto t = one("v=STSv1; id=" + std::string(33, '7'));
    CHECK(t.verdict == TxtVerdict::invalid);
    REQUIRE(find(t.findings, "txt-id-too-long"));
    CHECK(find(t.findings, "txt-id-too-long")->message.find("33 characters") != std::string::npos);
}

TEST_CASE("3.1: an id with '-', '.', ':' or '_' is invalid") {
    for (const char* id : {"2024-01-01", "v1.2", "12:00", "a_b"}) {
        CAPTURE(id);
        const auto t = one(std::string("v=STSv1; id=") + id);
        CHECK(t.verdict == TxtVerdict::invalid);
        CHECK(find(t.findings, "txt-id-invalid"));
    }
}

TEST_CASE("3.1: an empty id is invalid") {
    const auto t = one("v=STSv1; id=");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-empty-value"));
    CHECK_FALSE(find(t.findings, "txt-missing-id"));  // one clear reason, not two
}

TEST_CASE("3.1: the id keeps its letter case (ids are compared exactly)") {
    CHECK(valid_with_id(one("v=STSv1; id=AbC123"), "AbC123"));
    CHECK_FALSE(PolicyId("AbC") == PolicyId("abc"));
}

TEST_CASE("3.1: a second id= is invalid (strictest reading)") {
    const auto t = one("v=STSv1; id=abc; id=def");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK_FALSE(t.id);
    CHECK(find(t.findings, "txt-duplicate-id"));
}

TEST_CASE("3.1: a second id= with the same value is still invalid") {
    const auto t = one("v=STSv1; id=abc; id=abc");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-duplicate-id"));
}

TEST_CASE("3.1: field names are case-sensitive: 'ID=' is an extension, id is missing") {
    const auto t = one("v=STSv1; ID=abc");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-missing-id"));
    REQUIRE(find(t.findings, "txt-field-case"));
    CHECK(find(t.findings, "txt-field-case")->severity == Severity::warning);
}

TEST_CASE("3.1: a NUL byte in the id is invalid and shown escaped") {
    const auto t = one(std::string("v=STSv1; id=ab\0cd", 18));
    CHECK(t.verdict == TxtVerdict::invalid);
    REQUIRE(find(t.findings, "txt-field-value"));
    CHECK(find(t.findings, "txt-field-value")->message.find("\\x00") != std::string::npos);
}

// --- fields -----------------------------------------------------------------

TEST_CASE("3.1: whitespace before '=' is invalid") {
    const auto t = one("v=STSv1; id =abc");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-space-around-equals"));
}

TEST_CASE("3.1: whitespace after '=' is invalid") {
    const auto t = one("v=STSv1; id= abc");
    CHECK(t.verdict == TxtVerdict::invalid);
    REQUIRE(find(t.findings, "txt-space-around-equals"));
    CHECK(find(t.findings, "txt-space-around-equals")->message.find("column 13") !=
          std::string::npos);
}

TEST_CASE("3.1: a value containing a space is invalid") {
    const auto t = one("v=STSv1; id=abc def");
    CHECK(t.verdict == TxtVerdict::invalid);
    REQUIRE(find(t.findings, "txt-syntax"));
    CHECK(find(t.findings, "txt-syntax")->message.find("column 17") != std::string::npos);
}

TEST_CASE("3.1: an empty field (';;') is invalid") {
    const auto t = one("v=STSv1;; id=abc");
    CHECK(t.verdict == TxtVerdict::invalid);
    REQUIRE(find(t.findings, "txt-empty-field"));
    CHECK(find(t.findings, "txt-empty-field")->message.find("column 9") != std::string::npos);
}

TEST_CASE("3.1: a field without '=' is invalid") {
    const auto t = one("v=STSv1; id=abc; flag");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-field-syntax"));
}

TEST_CASE("3.1: a field with no name is invalid") {
    const auto t = one("v=STSv1; id=abc; =x");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-field-name"));
}

TEST_CASE("3.1: extensions are kept in record order") {
    const auto t = one("v=STSv1; id=abc; b=2; a.x_y-z=1");
    REQUIRE(t.verdict == TxtVerdict::valid);
    CHECK(t.extensions ==
          std::vector<std::pair<std::string, std::string>>{{"b", "2"}, {"a.x_y-z", "1"}});
}

TEST_CASE("3.1: an extension value may hold any visible ASCII but '=' and ';'") {
    const auto t = one("v=STSv1; id=abc; x=!\"#$%&'()*+,-./:<>?@[\\]^_`{|}~");
    CHECK(t.verdict == TxtVerdict::valid);
    REQUIRE(t.extensions.size() == 1);
}

TEST_CASE("3.1: '=' inside a value is invalid") {
    const auto t = one("v=STSv1; id=abc; x=a=b");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-field-value"));
}

TEST_CASE("3.1: an empty extension value is invalid") {
    const auto t = one("v=STSv1; id=abc; x=");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-empty-value"));
}

TEST_CASE("3.1: an extension name of 32 characters is valid, 33 is not") {
    CHECK(one("v=STSv1; id=abc; " + std::string(32, 'n') + "=1").verdict == TxtVerdict::valid);
    const auto t = one("v=STSv1; id=abc; " + std::string(33, 'n') + "=1");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-field-name"));
}

TEST_CASE("3.1: an extension name must start with a letter or digit") {
    const auto t = one("v=STSv1; id=abc; _x=1");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-field-name"));
}

TEST_CASE("3.1: an extension name with other characters is invalid") {
    const auto t = one("v=STSv1; id=abc; a/b=1");
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-field-name"));
}

TEST_CASE("3.1: a repeated extension warns and keeps the first value") {
    const auto t = one("v=STSv1; id=abc; x=1; x=2");
    CHECK(t.verdict == TxtVerdict::valid);
    CHECK(t.extensions == std::vector<std::pair<std::string, std::string>>{{"x", "1"}});
    CHECK(find(t.findings, "txt-duplicate-extension"));
}

TEST_CASE("3.1: non-ASCII bytes in a value are invalid and shown escaped") {
    const auto t = one("v=STSv1; id=abc; x=caf\xc3\xa9");
    CHECK(t.verdict == TxtVerdict::invalid);
    REQUIRE(find(t.findings, "txt-field-value"));
    CHECK(find(t.findings, "txt-field-value")->message.find("\\xc3") != std::string::npos);
}

TEST_CASE("3.1: every problem of the record is listed, errors first") {
    const auto t = one("v=STSv1 ;; id = a-b; x=; y=1 2");
    CHECK(t.verdict == TxtVerdict::invalid);
    for (const char* code :
         {"txt-space-before-semicolon", "txt-empty-field", "txt-space-around-equals",
          "txt-id-invalid", "txt-empty-value", "txt-syntax"}) {
        CAPTURE(code);
        CHECK(find(t.findings, code));
    }
    bool seen_non_error = false;
    for (const auto& f : t.findings) {
        if (f.severity != Severity::error)
            seen_non_error = true;
        else
            CHECK_FALSE(seen_non_error);
    }
}

TEST_CASE("3.1: a record over 65535 octets is invalid") {
    const auto t = one("v=STSv1; id=abc; x=" + std::string(65535, 'x'));
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(find(t.findings, "txt-too-long"));
}

TEST_CASE("3.1: a record of 65535 ';' gives a bounded list of findings") {
    const auto t = one("v=STSv1" + std::string(65528, ';'));
    CHECK(t.verdict == TxtVerdict::invalid);
    CHECK(t.findings.size() < 30);
    CHECK(find(t.findings, "txt-empty-field"));
}

// --- the record set ---------------------------------------------------------

TEST_CASE("3.1: no TXT records means no policy") {
    const auto t = parse_sts_txt({});
    CHECK(t.verdict == TxtVerdict::no_policy);
    REQUIRE_FALSE(t.findings.empty());
    CHECK(t.findings.front().code == "txt-no-sts-record");
}

TEST_CASE("3.1: records not beginning with v=STSv1 are discarded") {
    const auto t = parse_sts_txt({"v=spf1 -all", "v=STSv1; id=abc", "hello"});
    CHECK(valid_with_id(t, "abc"));
    CHECK(find(t.findings, "txt-record-ignored"));
    CHECK_FALSE(has_errors(t.findings));
    CHECK_FALSE(has_warnings(t.findings));
}

TEST_CASE("3.1: only discarded records means no policy") {
    const auto t = parse_sts_txt({"v=spf1 -all", "google-site-verification=x"});
    CHECK(t.verdict == TxtVerdict::no_policy);
    CHECK(t.findings.front().code == "txt-no-sts-record");
}

TEST_CASE("3.1: two v=STSv1 records mean no policy") {
    const auto t = parse_sts_txt({"v=STSv1; id=a", "v=STSv1; id=b"});
    CHECK(t.verdict == TxtVerdict::no_policy);
    CHECK_FALSE(t.id);
    REQUIRE_FALSE(t.findings.empty());
    CHECK(t.findings.front().code == "txt-multiple-records");
    CHECK(t.findings.front().message.find("records 1, 2") != std::string::npos);
}

TEST_CASE("3.1: two identical v=STSv1 records still mean no policy") {
    const auto t = parse_sts_txt({"v=STSv1; id=a", "v=STSv1; id=a"});
    CHECK(t.verdict == TxtVerdict::no_policy);
}

TEST_CASE("3.1: an invalid second v=STSv1 record still makes two: no policy") {
    const auto t = parse_sts_txt({"v=STSv1; id=a", "v=STSv1"});
    CHECK(t.verdict == TxtVerdict::no_policy);
    CHECK(t.findings.front().code == "txt-multiple-records");
}

TEST_CASE("3.1: a single invalid record gives invalid, not no policy") {
    const auto t = parse_sts_txt({"v=spf1 -all", "v=STSv1; id=a b"});
    CHECK(t.verdict == TxtVerdict::invalid);
    REQUIRE(find(t.findings, "txt-syntax"));
    CHECK(find(t.findings, "txt-syntax")->message.rfind("record 2: ", 0) == 0);
}

TEST_CASE("3.1: the version tag is case-sensitive") {
    const auto t = parse_sts_txt({"V=stsv1; id=abc"});
    CHECK(t.verdict == TxtVerdict::no_policy);
    REQUIRE(find(t.findings, "txt-version-case"));
    CHECK(find(t.findings, "txt-version-case")->severity == Severity::warning);
}

TEST_CASE("3.1: 'v=STSv10' is not version STSv1") {
    const auto t = parse_sts_txt({"v=STSv10; id=abc"});
    CHECK(t.verdict == TxtVerdict::no_policy);
    CHECK(find(t.findings, "txt-version-unknown"));
}

TEST_CASE("3.1: a record with leading whitespace does not begin with v=STSv1") {
    const auto t = parse_sts_txt({" v=STSv1; id=abc"});
    CHECK(t.verdict == TxtVerdict::no_policy);
    CHECK(find(t.findings, "txt-leading-whitespace"));
}

TEST_CASE("3.1: an empty TXT record is discarded") {
    const auto t = parse_sts_txt({""});
    CHECK(t.verdict == TxtVerdict::no_policy);
    CHECK(find(t.findings, "txt-record-ignored"));
}

TEST_CASE("txt_verdict_name spells the three verdicts") {
    CHECK(std::string(txt_verdict_name(TxtVerdict::valid)) == "valid");
    CHECK(std::string(txt_verdict_name(TxtVerdict::invalid)) == "invalid");
    CHECK(std::string(txt_verdict_name(TxtVerdict::no_policy)) == "no-policy");
}
