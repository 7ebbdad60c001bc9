// Tests for policy-cache/sts_policy.cc: the RFC 8461 3.2 policy body.
// Sample bodies live in tests/data/policies/ (run from the repository root).
#include "policy-cache/sts_policy.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>

using namespace stsguard;

namespace {

std::string slurp(const std::string& name) {
    std::ifstream f("tests/data/policies/" + name, std::ios::binary);
    REQUIRE_MESSAGE(f.good(), "missing test data " << name << " (run from the repository root)");
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

const Finding* find(const Findings& fs, std::string_view code) {
    for (const auto& f : fs)
        if (f.code == code) return &f;
    return nullptr;
}

int count(const Findings& fs, std::string_view code) {
    return static_cast<int>(
        std::count_if(fs.begin(), fs.end(), [&](const Finding& f) { return f.code == code; }));
}

bool valid(const PolicyParse& p) {
    return p.verdict == PolicyVerdict::valid && p.policy.has_value();
}

std::string enforce_with_max_age(const std::string& v) {
    return "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: " + v + "\n";
}

std::string with_line(const std::string& extra) {
    return "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n" + extra;
}

bool all_printable(const Findings& fs) {
    for (const auto& f : fs)
        for (unsigned char c : f.message)
            if (c < 0x20 || c > 0x7e) return false;
    return true;
}

}  // namespace

// --- lines and line endings -------------------------------------------------

TEST_CASE("3.2: a minimal enforce policy with LF endings is valid") {
    const auto p = parse_sts_policy(slurp("valid-enforce-lf.txt"));
    REQUIRE(valid(p));
    CHECK(p.policy->version == "STSv1");
    CHECK(p.policy->mode == Mode::enforce);
    CHECK(p.policy->max_age == Seconds{604800});
    CHECK(p.policy->mx == std::vector<std::string>{"mail.example.com", "*.example.net"});
    CHECK(p.findings.empty());
}

TEST_CASE("3.2: CRLF line endings are valid (sts-policy-term = LF / CRLF)") {
    const auto p = parse_sts_policy(slurp("valid-enforce-crlf.txt"));
    REQUIRE(valid(p));
    CHECK(p.policy->mx == std::vector<std::string>{"mail.example.com", "*.example.net"});
    CHECK(p.findings.empty());
}

TEST_CASE("3.2: mixed LF and CRLF endings are valid and noted (erratum 6253)") {
    const auto p = parse_sts_policy(slurp("valid-mixed-endings.txt"));
    REQUIRE(valid(p));
    const Finding* f = find(p.findings, "policy-mixed-line-endings");
    REQUIRE(f);
    CHECK(f->severity == Severity::info);
    CHECK(f->message.find("2 lines end in CRLF and 2 in LF") != std::string::npos);
}

TEST_CASE("3.2: the line ending after the last field is optional") {
    const auto p = parse_sts_policy(slurp("valid-no-final-newline.txt"));
    REQUIRE(valid(p));
    CHECK(p.policy->max_age == Seconds{1209600});
    CHECK(p.policy->mode == Mode::testing);
}

TEST_CASE("3.2: a bare CR is not a line ending (classic Mac file)") {
    const auto p = parse_sts_policy(slurp("bare-cr-only.txt"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    const Finding* f = find(p.findings, "policy-bare-cr");
    REQUIRE(f);
    CHECK(f->line == 1);
    CHECK(f->message.find("column 15") != std::string::npos);
    // The text after each CR is still read, so no field is reported missing.
    CHECK_FALSE(find(p.findings, "missing-mode"));
    CHECK_FALSE(find(p.findings, "missing-max-age"));
    CHECK(p.mx == std::vector<std::string>{"mail.example.com"});
    CHECK(p.max_age == 604800);
}

TEST_CASE("3.2: a CR in the middle of a line is reported on that line") {
    const auto p = parse_sts_policy(with_line("x-a: b\rc\n"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    const Finding* f = find(p.findings, "policy-bare-cr");
    REQUIRE(f);
    CHECK(f->line == 5);
    CHECK(f->message.find("column 7") != std::string::npos);
}

TEST_CASE("3.2: CR CR LF ends the line once and leaves a bare CR") {
    const auto p = parse_sts_policy("version: STSv1\r\r\nmode: none\r\nmax_age: 86400\r\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(count(p.findings, "policy-bare-cr") == 1);
    CHECK(find(p.findings, "policy-bare-cr")->line == 1);
}

TEST_CASE("3.2: a blank line between fields is invalid") {
    const auto p = parse_sts_policy("version: STSv1\n\nmode: none\nmax_age: 86400\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "policy-blank-line"));
    CHECK(find(p.findings, "policy-blank-line")->line == 2);
}

TEST_CASE("3.2: a blank line at the end is invalid (one optional terminator only)") {
    const auto p = parse_sts_policy(slurp("trailing-blank-line.txt"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(count(p.findings, "policy-blank-line") == 1);
    CHECK(find(p.findings, "policy-blank-line")->line == 5);
}

TEST_CASE("3.2: a CRLF blank line at the end is invalid too") {
    const auto p = parse_sts_policy("version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n\r\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "policy-blank-line"));
}

TEST_CASE("3.2: a line of only whitespace is invalid") {
    const auto p = parse_sts_policy(with_line(" \t \n"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "policy-blank-line"));
    CHECK(find(p.findings, "policy-blank-line")->line == 5);
}

// --- whitespace and field syntax --------------------------------------------

TEST_CASE("3.2: leading whitespace before a key is invalid") {
    const auto p =
        parse_sts_policy("version: STSv1\n\tmode: enforce\nmx: a.example\nmax_age: 604800\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "policy-leading-whitespace"));
    CHECK(find(p.findings, "policy-leading-whitespace")->line == 2);
    CHECK(p.mode_text == "enforce");  // still read, to report what else is wrong
}

TEST_CASE("3.2: whitespace between key and colon is invalid") {
    const auto p =
        parse_sts_policy("version: STSv1\nmode : enforce\nmx: a.example\nmax_age: 604800\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "policy-space-before-colon"));
    CHECK(find(p.findings, "policy-space-before-colon")->line == 2);
    CHECK_FALSE(find(p.findings, "missing-mode"));
}

TEST_CASE("3.2: whitespace after the colon is optional") {
    const auto p =
        parse_sts_policy("version:STSv1\nmode:enforce\nmx:a.example.com\nmax_age:604800");
    REQUIRE(valid(p));
    CHECK(p.policy->mx.front() == "a.example.com");
}

TEST_CASE("3.2: spaces and tabs after the colon and after the value are allowed") {
    const auto p = parse_sts_policy(slurp("valid-whitespace.txt"));
    REQUIRE(valid(p));
    CHECK(p.policy->mode == Mode::enforce);
    CHECK(p.policy->mx == std::vector<std::string>{"mail.example.com"});
    CHECK(p.policy->max_age == Seconds{604800});
}

TEST_CASE("3.2: a line without a colon is invalid") {
    const auto p = parse_sts_policy(with_line("just text\n"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "policy-field-syntax"));
    CHECK(find(p.findings, "policy-field-syntax")->line == 5);
    CHECK(find(p.findings, "policy-field-syntax")->message.find("'just text'") !=
          std::string::npos);
}

TEST_CASE("3.2: a line starting with a colon has no key") {
    const auto p = parse_sts_policy(with_line(": value\n"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "policy-key-syntax"));
    CHECK(find(p.findings, "policy-key-syntax")->message.find("no key") != std::string::npos);
}

TEST_CASE("3.2: keys are case-sensitive: 'Mode' is an extension and mode is missing") {
    const auto p =
        parse_sts_policy("version: STSv1\nMode: enforce\nmx: a.example\nmax_age: 604800\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "missing-mode"));
    const Finding* f = find(p.findings, "policy-key-case");
    REQUIRE(f);
    CHECK(f->severity == Severity::warning);
    CHECK(f->line == 2);
}

TEST_CASE("3.2: 'max-age' is not 'max_age'") {
    const auto p =
        parse_sts_policy("version: STSv1\nmode: enforce\nmx: a.example\nmax-age: 604800\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "missing-max-age"));
    CHECK(find(p.findings, "policy-key-case"));
}

// --- version ----------------------------------------------------------------

TEST_CASE("3.2: version must be exactly STSv1") {
    const auto p = parse_sts_policy("version: STSv2\nmode: none\nmax_age: 86400\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "version-invalid"));
    CHECK(find(p.findings, "version-invalid")->message.find("'STSv2'") != std::string::npos);
}

TEST_CASE("3.2: the version value is case-sensitive") {
    const auto p = parse_sts_policy("version: stsv1\nmode: none\nmax_age: 86400\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "version-invalid"));
    CHECK(find(p.findings, "version-invalid")->message.find("case-sensitive") != std::string::npos);
}

TEST_CASE("3.2: an empty version is invalid") {
    const auto p = parse_sts_policy("version:\nmode: none\nmax_age: 86400\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "version-invalid"));
}

TEST_CASE("3.2: version need not be the first field, but a warning says so") {
    const auto p = parse_sts_policy("mode: none\nversion: STSv1\nmax_age: 86400\n");
    REQUIRE(valid(p));
    const Finding* f = find(p.findings, "version-not-first");
    REQUIRE(f);
    CHECK(f->severity == Severity::warning);
    CHECK(f->line == 2);
}

TEST_CASE("3.2: a policy without version is invalid") {
    const auto p = parse_sts_policy("mode: none\nmax_age: 86400\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    const Finding* f = find(p.findings, "missing-version");
    REQUIRE(f);
    CHECK(f->line == 0);
}

// --- mode -------------------------------------------------------------------

TEST_CASE("3.2: a mode other than enforce, testing or none is invalid") {
    const auto p =
        parse_sts_policy("version: STSv1\nmode: strict\nmx: a.example\nmax_age: 86400\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "mode-invalid"));
    CHECK(find(p.findings, "mode-invalid")->line == 2);
    CHECK(p.mode_text == "strict");
}

TEST_CASE("3.2: the mode value is case-sensitive") {
    const auto p =
        parse_sts_policy("version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 86400\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "mode-invalid"));
    CHECK(find(p.findings, "mode-invalid")->message.find("case-sensitive") != std::string::npos);
}

TEST_CASE("3.2: an empty mode is invalid") {
    const auto p = parse_sts_policy("version: STSv1\nmode:   \nmx: a.example\nmax_age: 86400\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "mode-invalid"));
}

TEST_CASE("3.2: a mode with trailing text is invalid") {
    const auto p =
        parse_sts_policy("version: STSv1\nmode: enforce # yes\nmx: a.example\nmax_age: 86400\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "mode-invalid"));
}

TEST_CASE("3.2: mode testing is valid and noted") {
    const auto p =
        parse_sts_policy("version: STSv1\nmode: testing\nmx: a.example\nmax_age: 604800\n");
    REQUIRE(valid(p));
    CHECK(p.policy->mode == Mode::testing);
    REQUIRE(find(p.findings, "mode-testing"));
    CHECK(find(p.findings, "mode-testing")->severity == Severity::info);
    CHECK(find(p.findings, "mode-testing")->line == 2);
}

TEST_CASE("3.2: mode none is valid and noted") {
    const auto p = parse_sts_policy(slurp("valid-none-no-mx.txt"));
    REQUIRE(valid(p));
    CHECK(p.policy->mode == Mode::none);
    REQUIRE(find(p.findings, "mode-none"));
    CHECK(find(p.findings, "mode-none")->severity == Severity::info);
}

TEST_CASE("3.2: a policy without mode is invalid") {
    const auto p = parse_sts_policy("version: STSv1\nmx: a.example\nmax_age: 86400\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "missing-mode"));
    CHECK_FALSE(p.mode_text.has_value());
}

TEST_CASE("parse_mode is exact and mode_name spells it back") {
    for (Mode m : {Mode::enforce, Mode::testing, Mode::none}) CHECK(parse_mode(mode_name(m)) == m);
    CHECK_FALSE(parse_mode("ENFORCE"));
    CHECK_FALSE(parse_mode(" enforce"));
    CHECK_FALSE(parse_mode(""));
}

// --- max_age ----------------------------------------------------------------

TEST_CASE("3.2: max_age 0 is valid with a warning") {
    const auto p = parse_sts_policy(enforce_with_max_age("0"));
    REQUIRE(valid(p));
    CHECK(p.policy->max_age == Seconds{0});
    REQUIRE(find(p.findings, "max-age-zero"));
    CHECK(find(p.findings, "max-age-zero")->severity == Severity::warning);
}

TEST_CASE("3.2: max_age 31557600 is the largest valid value") {
    const auto p = parse_sts_policy(enforce_with_max_age("31557600"));
    REQUIRE(valid(p));
    CHECK(p.policy->max_age == Seconds{kMaxAgeLimit});
    CHECK(p.findings.empty());
}

TEST_CASE("3.2: max_age above 31557600 is invalid") {
    const auto p = parse_sts_policy(enforce_with_max_age("31557601"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    const Finding* f = find(p.findings, "max-age-out-of-range");
    REQUIRE(f);
    CHECK(f->line == 4);
    CHECK(p.max_age == 31557601);  // still reported for lint
}

TEST_CASE("3.2: max_age of 10 digits is in the grammar but out of range") {
    const auto p = parse_sts_policy(enforce_with_max_age("9999999999"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "max-age-out-of-range"));
    CHECK_FALSE(find(p.findings, "max-age-syntax"));
    CHECK(p.max_age == 9999999999LL);
}

TEST_CASE("3.2: max_age with 11 digits breaks 1*10DIGIT") {
    const auto p = parse_sts_policy(enforce_with_max_age("10000000000"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "max-age-syntax"));
    CHECK(find(p.findings, "max-age-syntax")->message.find("11 digits") != std::string::npos);
    CHECK_FALSE(p.max_age.has_value());
}

TEST_CASE("3.2: max_age far beyond 64 bits does not overflow") {
    const auto p = parse_sts_policy(enforce_with_max_age(std::string(400, '9')));
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "max-age-syntax"));
    CHECK_FALSE(p.max_age.has_value());
}

TEST_CASE("3.2: a negative max_age is invalid") {
    const auto p = parse_sts_policy(enforce_with_max_age("-1"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "max-age-syntax"));
    CHECK(find(p.findings, "max-age-syntax")->message.find("negative") != std::string::npos);
}

TEST_CASE("3.2: max_age with a plus sign is invalid") {
    const auto p = parse_sts_policy(enforce_with_max_age("+86400"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "max-age-syntax"));
}

TEST_CASE("3.2: max_age with leading zeros is read in decimal with a warning") {
    const auto p = parse_sts_policy(enforce_with_max_age("0000604800"));
    REQUIRE(valid(p));
    CHECK(p.policy->max_age == Seconds{604800});
    REQUIRE(find(p.findings, "max-age-leading-zeros"));
    CHECK(find(p.findings, "max-age-leading-zeros")->message.find("7282") != std::string::npos);
}

TEST_CASE("3.2: max_age that is not an integer is invalid") {
    for (const char* v : {"1d", "86400.0", "1e5", "0x100", "eighty", "86 400"}) {
        CAPTURE(v);
        const auto p = parse_sts_policy(enforce_with_max_age(v));
        CHECK(p.verdict == PolicyVerdict::invalid);
        CHECK(find(p.findings, "max-age-syntax"));
    }
}

TEST_CASE("3.2: an empty max_age is invalid") {
    const auto p = parse_sts_policy(enforce_with_max_age(""));
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "max-age-syntax"));
}

TEST_CASE("3.2: max_age under a day is valid with a warning") {
    const auto p = parse_sts_policy(enforce_with_max_age("86399"));
    REQUIRE(valid(p));
    REQUIRE(find(p.findings, "max-age-short"));
    CHECK(find(p.findings, "max-age-short")->severity == Severity::warning);
}

TEST_CASE("3.2: max_age from a day to under a week is only noted") {
    const auto p = parse_sts_policy(enforce_with_max_age("86400"));
    REQUIRE(valid(p));
    CHECK_FALSE(find(p.findings, "max-age-short"));
    REQUIRE(find(p.findings, "max-age-under-week"));
    CHECK(find(p.findings, "max-age-under-week")->severity == Severity::info);
}

TEST_CASE("3.2: max_age of a week or more has no finding") {
    const auto p = parse_sts_policy(enforce_with_max_age("604800"));
    REQUIRE(valid(p));
    CHECK(p.findings.empty());
}

TEST_CASE("3.2: a policy without max_age is invalid") {
    const auto p = parse_sts_policy("version: STSv1\nmode: enforce\nmx: a.example\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "missing-max-age"));
}

// --- mx ---------------------------------------------------------------------

TEST_CASE("3.2: mx is required when mode is enforce") {
    const auto p = parse_sts_policy("version: STSv1\nmode: enforce\nmax_age: 604800\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "missing-mx"));
}

TEST_CASE("3.2: mx is required when mode is testing") {
    const auto p = parse_sts_policy("version: STSv1\nmode: testing\nmax_age: 604800\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "missing-mx"));
}

TEST_CASE("3.2: mx is not required when mode is none") {
    const auto p = parse_sts_policy("version: STSv1\nmode: none\nmax_age: 604800\n");
    REQUIRE(valid(p));
    CHECK(p.policy->mx.empty());
    CHECK_FALSE(find(p.findings, "missing-mx"));
}

TEST_CASE("3.2: mode none with mx lines is valid") {
    const auto p =
        parse_sts_policy("version: STSv1\nmode: none\nmx: a.example.com\nmax_age: 604800\n");
    REQUIRE(valid(p));
    CHECK(p.policy->mx.size() == 1);
}

TEST_CASE("3.2: mx patterns are kept in file order, as written") {
    const auto p = parse_sts_policy(
        "version: STSv1\nmode: enforce\nmx: B.example.com\nmx: *.Example.NET\nmax_age: 604800\n"
        "mx: a.example.com  \n");
    REQUIRE(valid(p));
    CHECK(p.policy->mx ==
          std::vector<std::string>{"B.example.com", "*.Example.NET", "a.example.com"});
    CHECK(p.mx == p.policy->mx);
}

TEST_CASE("3.2: an invalid mx pattern makes the policy invalid and names its line") {
    const auto p = parse_sts_policy(with_line("mx: mail.*.example.com\n"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    const Finding* f = find(p.findings, "mx-pattern-wildcard");
    REQUIRE(f);
    CHECK(f->line == 5);
    CHECK(p.mx.back() == "mail.*.example.com");
}

TEST_CASE("3.2: an empty mx value is invalid") {
    const auto p = parse_sts_policy(with_line("mx:\n"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "mx-pattern-empty"));
}

TEST_CASE("3.2: an mx U-label is invalid and the A-label is suggested") {
    const auto p =
        parse_sts_policy(with_line("mx: mx.b\xc3\xbc"
                                   "cher.example\n"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "mx-pattern-ulabel"));
    CHECK(find(p.findings, "mx-pattern-ulabel")->message.find("mx.xn--bcher-kva.example") !=
          std::string::npos);
}

TEST_CASE("3.2: a repeated mx pattern warns, ignoring letter case") {
    const auto p = parse_sts_policy(with_line("mx: MAIL.example.com\n"));
    REQUIRE(valid(p));
    const Finding* f = find(p.findings, "mx-pattern-duplicate");
    REQUIRE(f);
    CHECK(f->line == 5);
    CHECK(f->message.find("line 3") != std::string::npos);
}

TEST_CASE("3.2: an exact mx already covered by a wildcard is noted") {
    const auto p = parse_sts_policy(with_line("mx: *.example.com\n"));
    REQUIRE(valid(p));
    const Finding* f = find(p.findings, "mx-pattern-redundant");
    REQUIRE(f);
    CHECK(f->severity == Severity::info);
    CHECK(f->line == 3);
}

// --- duplicates and extensions ----------------------------------------------

TEST_CASE("3.2: a repeated mode is invalid (stricter than 'first one wins')") {
    const auto p = parse_sts_policy(with_line("mode: testing\n"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    const Finding* f = find(p.findings, "policy-duplicate-field");
    REQUIRE(f);
    CHECK(f->line == 5);
    CHECK(f->message.find("line 2") != std::string::npos);
    CHECK(p.mode_text == "enforce");  // the first one is what was read
}

TEST_CASE("3.2: a repeated max_age is invalid even with the same value") {
    const auto p = parse_sts_policy(with_line("max_age: 604800\n"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "policy-duplicate-field"));
}

TEST_CASE("3.2: a repeated version is invalid") {
    const auto p = parse_sts_policy(with_line("version: STSv1\n"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "policy-duplicate-field"));
}

TEST_CASE("3.2: unknown keys are kept as extensions, in order") {
    const auto p = parse_sts_policy(slurp("valid-extensions.txt"));
    REQUIRE(valid(p));
    REQUIRE(p.policy->extensions.size() == 2);
    CHECK(p.policy->extensions[0].first == "x-comment");
    CHECK(p.policy->extensions[0].second ==
          "Caf\xc3\xa9 \xe2\x80\x94 rotated weekly");  // UTF-8 kept
    CHECK(p.policy->extensions[1] ==
          std::pair<std::string, std::string>{"rua", "mailto:tls@example.com"});
    CHECK(count(p.findings, "extension-unknown") == 2);
}

TEST_CASE("3.2: an extension value with invalid UTF-8 is invalid") {
    const auto p = parse_sts_policy(slurp("invalid-utf8-extension.txt"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "extension-value-utf8"));
    CHECK(find(p.findings, "extension-value-utf8")->message.find("\\xe9") != std::string::npos);
}

TEST_CASE("3.2: an extension value with a tab inside is invalid") {
    const auto p = parse_sts_policy(with_line("x-note: a\tb\n"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "extension-value-syntax"));
}

TEST_CASE("3.2: an empty extension value is invalid") {
    const auto p = parse_sts_policy(with_line("x-note:  \n"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "extension-value-syntax"));
}

TEST_CASE("3.2: an extension key of 32 characters is valid, 33 is not") {
    const std::string k32 = "k" + std::string(31, 'x');
    CHECK(valid(parse_sts_policy(with_line(k32 + ": v\n"))));
    const auto p = parse_sts_policy(with_line(k32 + "y: v\n"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "policy-key-syntax"));
}

TEST_CASE("3.2: an extension key must start with a letter or digit") {
    const auto p = parse_sts_policy(with_line("_private: v\n"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "policy-key-syntax"));
}

TEST_CASE("3.2: a repeated extension keeps the first value with a warning") {
    const auto p = parse_sts_policy(with_line("x-a: 1\nx-a: 2\n"));
    REQUIRE(valid(p));
    CHECK(p.policy->extensions == std::vector<std::pair<std::string, std::string>>{{"x-a", "1"}});
    CHECK(find(p.findings, "extension-duplicate"));
}

// --- size and hostile input -------------------------------------------------

TEST_CASE("3.3: a body of exactly 64 KiB is parsed") {
    std::string body =
        "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\nx-pad: ";
    body += std::string(kMaxPolicyBytes - body.size() - 1, 'p') + "\n";
    REQUIRE(body.size() == kMaxPolicyBytes);
    const auto p = parse_sts_policy(body);
    REQUIRE(valid(p));
    CHECK_FALSE(find(p.findings, "policy-too-large"));
}

TEST_CASE("3.3: a body of 64 KiB + 1 byte is too large") {
    std::string body =
        "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\nx-pad: ";
    body += std::string(kMaxPolicyBytes - body.size(), 'p') + "\n";
    REQUIRE(body.size() == kMaxPolicyBytes + 1);
    const auto p = parse_sts_policy(body);
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(p.findings.size() == 1);
    CHECK(p.findings[0].code == "policy-too-large");
    CHECK(p.findings[0].message.find("65537") != std::string::npos);
}

TEST_CASE("3.3: a 1 MiB body is refused without reading it line by line") {
    const auto p = parse_sts_policy(std::string(1 << 20, '\n'));
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(p.findings.size() == 1);
    CHECK(p.findings[0].code == "policy-too-large");
}

TEST_CASE("robustness: an empty body is invalid") {
    const auto p = parse_sts_policy("");
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(p.findings.size() == 1);
    CHECK(p.findings[0].code == "policy-empty");
}

TEST_CASE("robustness: a UTF-8 byte order mark is reported, the rest still read") {
    const auto p = parse_sts_policy(slurp("utf8-bom.txt"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "policy-utf8-bom"));
    CHECK(find(p.findings, "policy-utf8-bom")->line == 1);
    CHECK_FALSE(find(p.findings, "missing-version"));
    CHECK(p.findings.size() == 1);
}

TEST_CASE("robustness: NUL bytes are reported and do not cut the body short") {
    const auto p = parse_sts_policy(slurp("nul-bytes.txt"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    REQUIRE(find(p.findings, "mode-invalid"));
    CHECK(find(p.findings, "mode-invalid")->message.find("enf\\x00orce") != std::string::npos);
    REQUIRE(find(p.findings, "mx-pattern-invalid-char"));
    CHECK(find(p.findings, "mx-pattern-invalid-char")->line == 3);
    CHECK(p.max_age == 604800);  // line 4, after the NULs, was read
    CHECK(all_printable(p.findings));
}

TEST_CASE("robustness: binary junk gives findings with printable messages") {
    const auto p = parse_sts_policy(slurp("binary-junk.bin"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(has_errors(p.findings));
    CHECK(find(p.findings, "missing-version"));
    CHECK(all_printable(p.findings));
}

TEST_CASE("robustness: an HTML error page is not a policy") {
    const auto p = parse_sts_policy(slurp("html-error-page.txt"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "missing-version"));
    CHECK(find(p.findings, "missing-mode"));
    CHECK(find(p.findings, "missing-max-age"));
}

TEST_CASE("robustness: 64 KiB of blank lines gives a bounded list of findings") {
    const auto p = parse_sts_policy(std::string(kMaxPolicyBytes, '\n'));
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(count(p.findings, "policy-blank-line") == 21);  // 20 shown + "N more"
    CHECK(p.findings.size() < 40);
    bool summary = false;
    for (const auto& f : p.findings)
        if (f.code == "policy-blank-line" && f.message.find("65516 more") != std::string::npos)
            summary = true;
    CHECK(summary);
}

TEST_CASE("robustness: one 64 KiB line without a newline is handled") {
    const auto p = parse_sts_policy(std::string(kMaxPolicyBytes, 'a'));
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK(find(p.findings, "policy-field-syntax"));
}

TEST_CASE("robustness: thousands of mx lines are checked in linear time") {
    std::string body = "version: STSv1\nmode: enforce\nmax_age: 604800\n";
    int n = 0;
    while (body.size() < kMaxPolicyBytes - 32) body += "mx: m" + std::to_string(n++) + ".example\n";
    const auto p = parse_sts_policy(body);
    REQUIRE(valid(p));
    CHECK(p.policy->mx.size() == static_cast<std::size_t>(n));
}

TEST_CASE("3.2: every problem is listed with its line") {
    const auto p = parse_sts_policy(slurp("many-problems.txt"));
    CHECK(p.verdict == PolicyVerdict::invalid);
    struct Want {
        const char* code;
        int line;
    };
    for (const Want& w :
         {Want{"version-invalid", 1}, Want{"policy-key-case", 2}, Want{"mode-invalid", 3},
          Want{"policy-leading-whitespace", 4}, Want{"max-age-out-of-range", 4},
          Want{"policy-space-before-colon", 5}, Want{"mx-pattern-wildcard", 6},
          Want{"mx-pattern-invalid-char", 7}, Want{"policy-duplicate-field", 8},
          Want{"policy-blank-line", 9}, Want{"policy-field-syntax", 10}}) {
        CAPTURE(w.code);
        const Finding* f = find(p.findings, w.code);
        REQUIRE(f);
        CHECK(f->line == w.line);
    }
}

TEST_CASE("3.2: an invalid body still reports what it could read") {
    const auto p =
        parse_sts_policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n");
    CHECK(p.verdict == PolicyVerdict::invalid);
    CHECK_FALSE(p.policy.has_value());
    CHECK(p.mode_text == "enforce");
    CHECK(p.max_age == 31557601);
    CHECK(p.mx == std::vector<std::string>{"a.example"});
}
