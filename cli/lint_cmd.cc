// lint_cmd.cc - `stsguard lint`: output and exit status around the model.
#include "cli/lint_cmd.h"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/json_util.h"
#include "policy-cache/mx_match.h"
#include "policy-cache/sts_policy.h"
#include "policy-cache/sts_txt.h"

namespace stsguard {
namespace {

using nlohmann::json;

int status(bool ok, const Findings& f) {
    if (!ok) return static_cast<int>(ExitCode::critical);
    return static_cast<int>(has_warnings(f) ? ExitCode::warning : ExitCode::ok);
}

Hue hue_of(Severity s) {
    switch (s) {
        case Severity::error:
            return Hue::red;
        case Severity::warning:
            return Hue::yellow;
        case Severity::info:
            return Hue::cyan;
    }
    return Hue::red;
}

void print_verdict(std::ostream& out, Color c, std::string_view what, std::string_view verdict,
                   bool ok, const std::string& detail) {
    out << what << ": " << paint(c, ok ? Hue::green : Hue::red, verdict);
    if (!detail.empty()) out << " (" << detail << ")";
    out << "\n";
}

// "line 3: error [code] message"; messages are already printable ASCII.
void print_findings(std::ostream& out, Color c, const Findings& fs) {
    std::size_t n[3] = {0, 0, 0};
    for (const auto& f : fs) {
        ++n[static_cast<int>(f.severity)];
        if (f.line) out << "line " << f.line << ": ";
        out << paint(c, hue_of(f.severity), severity_name(f.severity)) << " [" << f.code << "] "
            << f.message << "\n";
    }
    auto plural = [](std::size_t k, const char* w) {
        return std::to_string(k) + " " + w + (k == 1 ? "" : "s");
    };
    out << plural(n[0], "error") << ", " << plural(n[1], "warning") << ", " << plural(n[2], "note")
        << "\n";
}

json pairs_json(const std::vector<std::pair<std::string, std::string>>& kv) {
    json a = json::array();
    for (const auto& [k, v] : kv) a.push_back({{"name", k}, {"value", v}});
    return a;
}

void emit(std::ostream& out, const json& j) { out << dump_json(j) << "\n"; }

// A policy input that is larger than anything worth parsing.
PolicyParse too_large_input() {
    PolicyParse p;
    p.findings.push_back({Severity::error, "policy-too-large",
                          "input is larger than " + std::to_string(kMaxLintInput) +
                              " bytes (stopped reading); the limit is " +
                              std::to_string(kMaxPolicyBytes) + " bytes (3.3)",
                          0});
    return p;
}

int report_policy(const PolicyParse& p, OutputFormat format, std::ostream& out, Color color) {
    const bool ok = p.verdict == PolicyVerdict::valid;
    if (format == OutputFormat::json) {
        json findings = findings_json(p.findings);
        for (auto& f : findings)
            if (!f.contains("line")) f["line"] = nullptr;  // whole-body findings
        json j = {{"verdict", ok ? "valid" : "invalid"},
                  {"mode", p.mode_text ? json(*p.mode_text) : json(nullptr)},
                  {"max_age", p.max_age ? json(*p.max_age) : json(nullptr)},
                  {"mx", p.mx},
                  {"extensions",
                   pairs_json(p.policy ? p.policy->extensions
                                       : std::vector<std::pair<std::string, std::string>>{})},
                  {"findings", findings}};
        emit(out, j);
    } else {
        std::string detail;
        if (p.policy)
            detail = std::string("mode ") + mode_name(p.policy->mode) + ", max_age " +
                     std::to_string(p.policy->max_age.count()) + ", " +
                     std::to_string(p.policy->mx.size()) + " mx";
        print_verdict(out, color, "policy", ok ? "valid" : "invalid", ok, detail);
        print_findings(out, color, p.findings);
    }
    return status(ok, p.findings);
}

}  // namespace

int lint_txt(const std::vector<std::string>& records, OutputFormat format, std::ostream& out,
             Color color) {
    const StsTxt t = parse_sts_txt(records);
    const bool ok = t.verdict == TxtVerdict::valid;
    if (format == OutputFormat::json) {
        emit(out,
             {{"verdict", txt_verdict_name(t.verdict)},
              {"id", t.id ? json(t.id->str()) : json(nullptr)},
              {"extensions",
               pairs_json(ok ? t.extensions : std::vector<std::pair<std::string, std::string>>{})},
              {"findings", findings_json(t.findings)}});
    } else {
        print_verdict(out, color, "TXT", txt_verdict_name(t.verdict), ok,
                      t.id ? "id " + t.id->str() : std::string());
        print_findings(out, color, t.findings);
    }
    return status(ok, t.findings);
}

int lint_policy(std::string_view body, OutputFormat format, std::ostream& out, Color color) {
    return report_policy(parse_sts_policy(body), format, out, color);
}

int lint_policy_input(const std::string& path, std::istream& in, OutputFormat format,
                      std::ostream& out, std::ostream& err, Color color) {
    std::ifstream file;
    std::istream* src = &in;
    if (path != "-") {
        std::error_code ec;
        if (std::filesystem::is_directory(path, ec)) {
            err << "stsguard lint policy: '" << printable(path, 200) << "' is a directory\n";
            return static_cast<int>(ExitCode::unknown);
        }
        errno = 0;
        file.open(path, std::ios::binary);
        if (!file) {
            err << "stsguard lint policy: cannot open '" << printable(path, 200)
                << "': " << (errno ? std::strerror(errno) : "unknown error") << "\n";
            return static_cast<int>(ExitCode::unknown);
        }
        src = &file;
    }
    // Read at most one byte more than the limit: enough to know it is over.
    std::string body(kMaxLintInput + 1, '\0');
    src->read(body.data(), static_cast<std::streamsize>(body.size()));
    body.resize(static_cast<std::size_t>(src->gcount()));
    if (src->bad()) {
        err << "stsguard lint policy: read error on '" << printable(path, 200) << "'\n";
        return static_cast<int>(ExitCode::unknown);
    }
    if (body.size() > kMaxLintInput) return report_policy(too_large_input(), format, out, color);
    return lint_policy(body, format, out, color);
}

int lint_mx(std::string_view pattern, std::string_view host, OutputFormat format, std::ostream& out,
            Color color) {
    const MxMatch m = match_mx(pattern, host);
    const bool ok = m.verdict == MxVerdict::match;
    if (format == OutputFormat::json) {
        emit(out, {{"verdict", ok ? "match" : "nomatch"},
                   {"pattern", std::string(pattern)},
                   {"host", std::string(host)},
                   {"findings", findings_json(m.findings)}});
    } else {
        print_verdict(out, color, "mx", ok ? "match" : "nomatch", ok,
                      "'" + printable(host) + "' against '" + printable(pattern) + "'");
        print_findings(out, color, m.findings);
    }
    return status(ok, m.findings);
}

void add_lint_command(CLI::App& app, int& rc) {
    struct Opts {
        bool json = false;
        std::vector<std::string> records;
        std::string file;
        std::string pattern, host;
    };
    auto o = std::make_shared<Opts>();
    auto format = [o] { return o->json ? OutputFormat::json : OutputFormat::human; };
    auto color = [o] { return o->json ? Color::off : color_for_fd(1); };

    auto* lint = app.add_subcommand(
        "lint", "check an MTA-STS TXT record, policy body or MX pattern offline (RFC 8461)");
    lint->require_subcommand(1);
    lint->add_flag("--json", o->json, "JSON output");

    auto* txt = lint->add_subcommand(
        "txt", "check the _mta-sts TXT record set; each RECORD is the text of one TXT RR");
    txt->add_flag("--json", o->json, "JSON output");
    txt->add_option("RECORD", o->records, "text of one TXT RR (its strings joined)")->required();
    txt->callback(
        [o, format, color, &rc] { rc = lint_txt(o->records, format(), std::cout, color()); });

    auto* policy =
        lint->add_subcommand("policy", "check a policy body (mta-sts.txt); '-' reads stdin");
    policy->add_flag("--json", o->json, "JSON output");
    policy->add_option("FILE", o->file, "policy file, or - for standard input")->required();
    policy->callback([o, format, color, &rc] {
        rc = lint_policy_input(o->file, std::cin, format(), std::cout, std::cerr, color());
    });

    auto* mx =
        lint->add_subcommand("mx", "check whether an MX host matches a policy mx pattern (4.1)");
    mx->add_flag("--json", o->json, "JSON output");
    mx->add_option("PATTERN", o->pattern, "mx pattern, e.g. *.example.com")->required();
    mx->add_option("HOST", o->host, "MX host name")->required();
    mx->callback([o, format, color, &rc] {
        rc = lint_mx(o->pattern, o->host, format(), std::cout, color());
    });
}

}  // namespace stsguard
