// Tests for cli/lint_cmd.cc and cli/term.cc: `stsguard lint` output, exit
// status and JSON, against golden files in tests/data/lint/ (compared as
// parsed JSON).  STSGUARD_UPDATE_GOLDEN=1 rewrites the golden files from the
// current output; review the diff before committing them.
#include "cli/lint_cmd.h"

#include <doctest/doctest.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <streambuf>

#include "cli/commands.h"
#include "policy-cache/sts_policy.h"

using namespace stsguard;
using nlohmann::json;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    REQUIRE_MESSAGE(f.good(), "missing test data " << path << " (run from the repository root)");
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Compares output (one JSON document) with tests/data/lint/<name>.json.
void check_golden(const std::string& name, const std::string& output) {
    const std::string path = "tests/data/lint/" + name + ".json";
    json actual;
    REQUIRE_NOTHROW(actual = json::parse(output));
    if (std::getenv("STSGUARD_UPDATE_GOLDEN")) {
        std::ofstream(path, std::ios::binary) << actual.dump(2) << "\n";
    }
    const json expected = json::parse(slurp(path));
    CHECK_MESSAGE(actual == expected, "golden " << path << " differs; actual:\n" << actual.dump(2));
}

struct Run {
    int rc;
    std::string out;
};

Run txt(const std::vector<std::string>& records, OutputFormat f = OutputFormat::json) {
    std::ostringstream out;
    const int rc = lint_txt(records, f, out);
    return {rc, out.str()};
}

Run policy_file(const std::string& name, OutputFormat f = OutputFormat::json) {
    std::ostringstream out, err;
    std::istringstream in;
    const int rc = lint_policy_input("tests/data/policies/" + name, in, f, out, err);
    REQUIRE_MESSAGE(err.str().empty(), err.str());
    return {rc, out.str()};
}

Run mx(std::string_view pattern, std::string_view host, OutputFormat f = OutputFormat::json) {
    std::ostringstream out;
    const int rc = lint_mx(pattern, host, f, out);
    return {rc, out.str()};
}

// An endless stream of 'v' that counts what is taken from it.
class EndlessBuf : public std::streambuf {
public:
    std::size_t served = 0;

protected:
    int_type underflow() override {
        setg(buf_, buf_, buf_ + sizeof buf_);
        served += sizeof buf_;
        return traits_type::to_int_type(buf_[0]);
    }

private:
    char buf_[4096] = {};
};

// Runs `stsguard ARGS...` through the real CLI11 wiring, capturing stdout.
Run cli(std::vector<std::string> args) {
    CLI::App app{"test", "stsguard"};
    app.require_subcommand(1);
    int rc = -1;
    add_lint_command(app, rc);
    std::vector<const char*> argv{"stsguard"};
    for (const auto& a : args) argv.push_back(a.c_str());
    std::ostringstream captured;
    auto* old = std::cout.rdbuf(captured.rdbuf());
    try {
        app.parse(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
    } catch (const CLI::ParseError&) {
        rc = static_cast<int>(ExitCode::unknown);  // what cli/main.cc does
    }
    std::cout.rdbuf(old);
    return {rc, captured.str()};
}

}  // namespace

// --- lint txt ---------------------------------------------------------------

TEST_CASE("lint txt: a valid record exits 0 (golden)") {
    const auto r = txt({"v=STSv1; id=20240101T000000Z;"});
    CHECK(r.rc == 0);
    check_golden("txt-valid", r.out);
}

TEST_CASE("lint txt: a valid record with warnings exits 1 (golden)") {
    const auto r = txt({"v=STSv1 ; id=abc; x=1; x=2"});
    CHECK(r.rc == 1);
    check_golden("txt-valid-warnings", r.out);
}

TEST_CASE("lint txt: an invalid record exits 2 and says where (golden)") {
    const auto r = txt({"v=STSv1; id = 2024-01-01 ; ext=a=b"});
    CHECK(r.rc == 2);
    check_golden("txt-invalid", r.out);
}

TEST_CASE("lint txt: two v=STSv1 arguments are one set with no policy (golden)") {
    const auto r = txt({"v=STSv1; id=a", "v=spf1 -all", "v=STSv1; id=b"});
    CHECK(r.rc == 2);
    check_golden("txt-multiple", r.out);
}

TEST_CASE("lint txt: no record beginning with v=STSv1 is no policy (golden)") {
    const auto r = txt({"V=STSv1; id=abc"});
    CHECK(r.rc == 2);
    check_golden("txt-none", r.out);
}

TEST_CASE("lint txt: JSON has the documented keys and types") {
    const json j = json::parse(txt({"v=STSv1; id=abc"}).out);
    CHECK(j.at("verdict") == "valid");
    CHECK(j.at("id") == "abc");
    CHECK(j.at("findings").is_array());
    const json n = json::parse(txt({"v=STSv1"}).out);
    CHECK(n.at("verdict") == "invalid");
    CHECK(n.at("id").is_null());
    for (const auto& f : n.at("findings")) {
        CHECK(f.contains("severity"));
        CHECK(f.contains("code"));
        CHECK(f.contains("message"));
        CHECK_FALSE(f.contains("line"));  // no lines in a TXT record
    }
}

// --- lint policy ------------------------------------------------------------

TEST_CASE("lint policy: a valid enforce policy exits 0 (golden)") {
    const auto r = policy_file("valid-enforce-crlf.txt");
    CHECK(r.rc == 0);
    check_golden("policy-valid-enforce", r.out);
}

TEST_CASE("lint policy: a valid policy with warnings exits 1") {
    std::ostringstream out;
    const int rc = lint_policy("version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: 3600\n",
                               OutputFormat::json, out);
    CHECK(rc == 1);
    const json j = json::parse(out.str());
    CHECK(j.at("verdict") == "valid");
    CHECK(j.at("max_age") == 3600);
}

TEST_CASE("lint policy: mode testing with only notes exits 0") {
    const auto r = policy_file("valid-no-final-newline.txt");
    CHECK(r.rc == 0);
    CHECK(json::parse(r.out).at("mode") == "testing");
}

TEST_CASE("lint policy: every problem with its line, exit 2 (golden)") {
    const auto r = policy_file("many-problems.txt");
    CHECK(r.rc == 2);
    check_golden("policy-many-problems", r.out);
}

TEST_CASE("lint policy: a bare-CR file (golden)") {
    const auto r = policy_file("bare-cr-only.txt");
    CHECK(r.rc == 2);
    check_golden("policy-bare-cr", r.out);
}

TEST_CASE("lint policy: NUL bytes and invalid UTF-8 still give valid JSON (golden)") {
    const auto r = policy_file("nul-bytes.txt");
    CHECK(r.rc == 2);
    check_golden("policy-nul-bytes", r.out);
}

TEST_CASE("lint policy: binary junk gives valid JSON (golden)") {
    const auto r = policy_file("binary-junk.bin");
    CHECK(r.rc == 2);
    check_golden("policy-binary-junk", r.out);
}

TEST_CASE("lint policy: findings carry line, null for whole-body findings") {
    const json j = json::parse(policy_file("html-error-page.txt").out);
    bool null_line = false, int_line = false;
    for (const auto& f : j.at("findings")) {
        REQUIRE(f.contains("line"));
        null_line |= f.at("line").is_null();
        int_line |= f.at("line").is_number_integer();
    }
    CHECK(null_line);
    CHECK(int_line);
    CHECK(j.at("mode").is_null());
    CHECK(j.at("max_age").is_null());
    CHECK(j.at("mx") == json::array());
}

TEST_CASE("lint policy: mx is listed in file order as written, even if invalid") {
    const json j = json::parse(policy_file("many-problems.txt").out);
    CHECK(j.at("mx") == json({"mail.example.com", "*.*.example.com", "mail_1.example.com"}));
    CHECK(j.at("mode") == "Enforce");
    CHECK(j.at("max_age") == 31557601);
}

TEST_CASE("lint policy: a missing file exits 3 with an error naming it") {
    std::ostringstream out, err;
    std::istringstream in;
    const int rc =
        lint_policy_input("tests/data/policies/no-such-file.txt", in, OutputFormat::json, out, err);
    CHECK(rc == 3);
    CHECK(out.str().empty());
    CHECK(err.str().find("no-such-file.txt") != std::string::npos);
    CHECK(err.str().find("No such file") != std::string::npos);
}

TEST_CASE("lint policy: a directory exits 3") {
    std::ostringstream out, err;
    std::istringstream in;
    CHECK(lint_policy_input("tests/data", in, OutputFormat::human, out, err) == 3);
    CHECK(err.str().find("is a directory") != std::string::npos);
}

TEST_CASE("lint policy: '-' reads standard input as bytes") {
    std::ostringstream out, err;
    std::string body = "version: STSv1\r\nmode: none\r\nmax_age: 604800\r\n";
    body.push_back('\0');
    std::istringstream in(body);
    const int rc = lint_policy_input("-", in, OutputFormat::json, out, err);
    CHECK(rc == 2);  // the NUL after the last CRLF is a line of its own
    const json j = json::parse(out.str());
    CHECK(j.at("verdict") == "invalid");
    CHECK(j.at("mode") == "none");
}

TEST_CASE("lint policy: input over 1 MiB is refused after reading 1 MiB + 1 byte") {
    EndlessBuf buf;
    std::istream in(&buf);
    std::ostringstream out, err;
    const int rc = lint_policy_input("-", in, OutputFormat::json, out, err);
    CHECK(rc == 2);
    CHECK(buf.served <= kMaxLintInput + 2 * 4096);
    const json j = json::parse(out.str());
    REQUIRE(j.at("findings").size() == 1);
    CHECK(j.at("findings")[0].at("code") == "policy-too-large");
}

TEST_CASE("lint policy: 64 KiB + 1 through the CLI is too large") {
    std::ostringstream out;
    const int rc = lint_policy(std::string(kMaxPolicyBytes + 1, 'a'), OutputFormat::json, out);
    CHECK(rc == 2);
    CHECK(json::parse(out.str()).at("findings")[0].at("code") == "policy-too-large");
}

TEST_CASE("lint policy: human output gives the verdict, then 'line N: severity [code]'") {
    const auto r = policy_file("many-problems.txt", OutputFormat::human);
    CHECK(r.out.rfind("policy: invalid\n", 0) == 0);
    CHECK(r.out.find("line 4: error [max-age-out-of-range] max_age 31557601") != std::string::npos);
    CHECK(r.out.find("line 8: error [policy-duplicate-field]") != std::string::npos);
    CHECK(r.out.find("\033[") == std::string::npos);  // no colour off a terminal
}

// --- lint mx ----------------------------------------------------------------

TEST_CASE("lint mx: a match exits 0 (golden)") {
    const auto r = mx("*.example.com", "MX1.Example.com.");
    CHECK(r.rc == 0);
    check_golden("mx-match", r.out);
}

TEST_CASE("lint mx: two labels under a wildcard do not match, exit 2 (golden)") {
    const auto r = mx("*.example.com", "a.b.example.com");
    CHECK(r.rc == 2);
    check_golden("mx-nomatch-two-labels", r.out);
}

TEST_CASE("lint mx: an invalid pattern matches nothing, exit 2 (golden)") {
    const auto r = mx("mail.*.example.com", "mail.x.example.com");
    CHECK(r.rc == 2);
    check_golden("mx-invalid-pattern", r.out);
}

TEST_CASE("lint mx: a match with a risky pattern exits 1") {
    CHECK(mx("*.com", "mail.com").rc == 1);
}

TEST_CASE("lint mx: bytes that are not UTF-8 still give valid JSON") {
    const auto r = mx("mail\xff.example.com", "h\xfe.example.com");
    CHECK(r.rc == 2);
    json j;
    REQUIRE_NOTHROW(j = json::parse(r.out));
    CHECK(j.at("verdict") == "nomatch");
}

TEST_CASE("lint mx: human output names host and pattern") {
    const auto r = mx("*.example.com", "example.com", OutputFormat::human);
    CHECK(r.out.rfind("mx: nomatch ('example.com' against '*.example.com')\n", 0) == 0);
    CHECK(r.out.find("error [mx-nomatch]") != std::string::npos);
}

// --- colour and the command line ---------------------------------------------

TEST_CASE("term: colour only on a terminal, with TERM set and not dumb, NO_COLOR unset") {
    CHECK(color_choice(StreamKind::terminal, "xterm-256color", nullptr) == Color::on);
    CHECK(color_choice(StreamKind::other, "xterm-256color", nullptr) == Color::off);
    CHECK(color_choice(StreamKind::terminal, "dumb", nullptr) == Color::off);
    CHECK(color_choice(StreamKind::terminal, nullptr, nullptr) == Color::off);
    CHECK(color_choice(StreamKind::terminal, "", nullptr) == Color::off);
    CHECK(color_choice(StreamKind::terminal, "xterm", "1") == Color::off);
    CHECK(color_choice(StreamKind::terminal, "xterm", "") == Color::off);
    CHECK(paint(Color::off, Hue::red, "error") == "error");
    CHECK(paint(Color::on, Hue::red, "error") == "\033[1;31merror\033[0m");
}

TEST_CASE("lint human output is coloured only when asked") {
    std::ostringstream plain, coloured;
    lint_txt({"v=STSv1"}, OutputFormat::human, plain, Color::off);
    lint_txt({"v=STSv1"}, OutputFormat::human, coloured, Color::on);
    CHECK(plain.str().find('\033') == std::string::npos);
    CHECK(coloured.str().find("\033[1;31minvalid\033[0m") != std::string::npos);
}

TEST_CASE("cli: `lint txt --json RECORD...` parses arguments and sets the exit status") {
    const auto r = cli({"lint", "txt", "--json", "v=STSv1; id=a", "v=STSv1; id=b"});
    CHECK(r.rc == 2);
    CHECK(json::parse(r.out).at("verdict") == "no-policy");
}

TEST_CASE("cli: `lint --json mx PATTERN HOST` works with --json before the subcommand") {
    const auto r = cli({"lint", "--json", "mx", "*.example.com", "mx.example.com"});
    CHECK(r.rc == 0);
    CHECK(json::parse(r.out).at("verdict") == "match");
}

TEST_CASE("cli: `lint policy FILE` reads the file") {
    const auto r = cli({"lint", "policy", "tests/data/policies/valid-enforce-lf.txt"});
    CHECK(r.rc == 0);
    CHECK(r.out.rfind("policy: valid (mode enforce, max_age 604800, 2 mx)\n", 0) == 0);
}

TEST_CASE("cli: missing arguments are a usage error (exit 3)") {
    CHECK(cli({"lint", "mx", "*.example.com"}).rc == 3);
    CHECK(cli({"lint", "txt"}).rc == 3);
    CHECK(cli({"lint"}).rc == 3);
}
