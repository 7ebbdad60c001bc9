// check_report.cc - JSON and tables for check and dry-run; the cold-cache
// Postfix answer through the service's own functions.
#include "cli/check_report.h"

#include <cstdio>
#include <map>
#include <ostream>

#include "cli/json_util.h"
#include "policy-cache/utc_time.h"
#include "policy-cache/refresh_rules.h"
#include "postfix/domain_view.h"
#include "postfix/policy_answer.h"
#include "postfix/policy_service.h"
#include "postfix/socketmap_server.h"

namespace stsguard {
namespace {

using nlohmann::json;

Hue hue_of(CheckStatus s) {
    switch (s) {
        case CheckStatus::pass: return Hue::green;
        case CheckStatus::info: return Hue::cyan;
        case CheckStatus::warn: return Hue::yellow;
        case CheckStatus::fail: return Hue::red;
        case CheckStatus::skip: return Hue::bold;
        case CheckStatus::unknown: return Hue::yellow;
    }
    return Hue::bold;
}

Hue hue_of(DomainStatus s) {
    switch (s) {
        case DomainStatus::ok: return Hue::green;
        case DomainStatus::warning: return Hue::yellow;
        case DomainStatus::critical: return Hue::red;
        case DomainStatus::unknown: return Hue::yellow;
    }
    return Hue::bold;
}

Hue hue_of(DryVerdict v) {
    switch (v) {
        case DryVerdict::would_fail: return Hue::red;
        case DryVerdict::degraded: return Hue::yellow;
        case DryVerdict::unknown: return Hue::yellow;
        case DryVerdict::ok: return Hue::green;
        case DryVerdict::mode_none:
        case DryVerdict::no_policy: return Hue::cyan;
    }
    return Hue::bold;
}

std::string upper(std::string s) {
    for (auto& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return s;
}

// Pads before painting, so colour codes do not break the columns.
std::string cell(Color color, Hue hue, const std::string& text, std::size_t width) {
    std::string padded = text;
    if (padded.size() < width) padded.append(width - padded.size(), ' ');
    return paint(color, hue, padded);
}

std::string pad(const std::string& text, std::size_t width) {
    return text.size() >= width ? text : text + std::string(width - text.size(), ' ');
}

json mode_json(const DomainFacts& f) {
    const Policy* p = valid_policy(f);
    return p ? json(mode_name(p->mode)) : json(nullptr);
}

void print_probes(std::ostream& out, const DomainFacts& f) {
    for (const auto& h : f.hosts)
        for (const auto& p : h.probes) {
            out << "      probe " << p.host << " [" << p.address << "]:" << p.port << ": " << probe_class_name(classify_probe(p));
            if (!p.tls_version.empty()) out << ", " << p.tls_version << " " << p.cipher;
            if (p.cert)
                out << ", certificate " << p.cert->subject << " (SAN " << join_list(p.cert->dns_names, ", ") << "), issuer "
                    << p.cert->issuer << ", valid until " << utc_iso8601(p.cert->not_after);
            char secs[32];
            std::snprintf(secs, sizeof secs, "%.2f", p.seconds);
            out << ", " << secs << " s\n";
            for (const auto& line : p.transcript) out << "        " << line << "\n";
        }
}

}  // namespace

PostfixAnswer cold_cache_answer(const DomainFacts& f, const Config& cfg, const std::string& map) {
    // The refresher's steps on an empty record (policy-cache/refresher.cc).
    const RefreshSettings rs = refresh_settings(cfg);
    const UnixTime now = f.now;
    std::optional<CacheRecord> rec;
    apply_attempt(rec, f.domain, Attempt{f.discovery.txt, f.discovery.fetch}, now, rs, 0.0);
    if (rec && rec->policy_usable_at(now) && rec->policy.mode != Mode::none && f.mx) apply_mx(*rec, *f.mx, now, rs);
    const Assessment a = assess(rec, now);
    const Answer ans = decide_answer(f.domain, view_of(rec, a), service_settings(cfg).map_for(map));
    return {map, encode_reply(ans.reply), ans.why_code, ans.why};
}

ExitCode exit_code_of(DomainStatus s) {
    switch (s) {
        case DomainStatus::ok: return ExitCode::ok;
        case DomainStatus::warning: return ExitCode::warning;
        case DomainStatus::critical: return ExitCode::critical;
        case DomainStatus::unknown: return ExitCode::unknown;
    }
    return ExitCode::unknown;
}

json check_json(const CheckResult& c) {
    return {{"status", check_status_name(c.status)},
            {"summary", c.summary},
            {"details", c.details},
            {"fix", c.fix.empty() ? json(nullptr) : json(c.fix)},
            {"findings", findings_json(c.findings)}};
}

json postfix_answer_json(const PostfixAnswer& a) {
    return {{"map", a.map}, {"reply", a.reply}, {"reason_code", a.reason_code}, {"reason", a.reason}};
}

json domain_json(const DomainFacts& f, const DomainReport& r, const PostfixAnswer& a) {
    json checks = json::object();
    for (const auto& c : r.checks) checks[c.id] = check_json(c);
    const TxtStep& t = f.discovery.txt;
    return {{"domain", f.domain.str()},
            {"status", domain_status_name(r.status)},
            {"mode", mode_json(f)},
            {"policy_id", t.txt.id ? json(t.txt.id->str()) : json(nullptr)},
            {"discovery", {{"outcome", discovery_status_name(f.discovery.status)}, {"reason_code", f.discovery.code}, {"reason", f.discovery.reason}}},
            {"postfix_answer", postfix_answer_json(a)},
            {"seconds", f.seconds},
            {"checks", checks}};
}

std::string summary_line(Color color, const DomainFacts& f, const DomainReport& r) {
    std::map<CheckStatus, std::vector<std::string>> by;
    for (const auto& c : r.checks) by[c.status].push_back(c.id);
    std::string s = f.domain.str() + ": " + paint(color, hue_of(r.status), upper(domain_status_name(r.status)));
    const Policy* p = valid_policy(f);
    const Discovery& d = f.discovery;
    if (p != nullptr)
        s += std::string(" - MTA-STS mode ") + mode_name(p->mode);
    else if (d.status == DiscoveryStatus::failed && d.failure_kind == FailureKind::temporary)
        s += " - MTA-STS policy unknown (" + d.code + ")";
    else
        s += " - no usable MTA-STS policy (" + d.code + ")";
    for (CheckStatus st : {CheckStatus::fail, CheckStatus::unknown, CheckStatus::warn}) {
        auto it = by.find(st);
        if (it != by.end()) s += std::string("; ") + check_status_name(st) + ": " + join_list(it->second, ", ");
    }
    std::size_t passed = by.count(CheckStatus::pass) ? by[CheckStatus::pass].size() : 0;
    s += "; " + std::to_string(passed) + " of " + std::to_string(r.checks.size()) + " checks pass";
    return s;
}

void print_domain(std::ostream& out, Color color, const DomainFacts& f, const DomainReport& r, const PostfixAnswer& a,
                  Detail detail) {
    out << summary_line(color, f, r) << "\n";
    constexpr std::size_t kId = 18, kStatus = 8;
    out << "  " << pad("CHECK", kId) << pad("STATUS", kStatus) << "SUMMARY\n";
    for (const auto& c : r.checks) {
        out << "  " << pad(c.id, kId) << cell(color, hue_of(c.status), check_status_name(c.status), kStatus) << c.summary
            << "\n";
        const bool problem = c.status == CheckStatus::fail || c.status == CheckStatus::warn || c.status == CheckStatus::unknown;
        if (!c.fix.empty() && (problem || detail == Detail::verbose))
            out << "  " << std::string(kId + kStatus, ' ') << "fix: " << c.fix << "\n";
        if (detail == Detail::verbose) {
            for (const auto& x : c.findings) {
                out << "  " << std::string(kId + kStatus, ' ') << severity_name(x.severity) << " [" << x.code << "] ";
                if (x.line) out << "line " << x.line << ": ";
                out << x.message << "\n";
            }
            if (c.id == "mx_certificates") print_probes(out, f);
        }
    }
    out << "  postfix answer (" << a.map << ", cold cache): " << a.reply << "  [" << a.reason_code << ": " << a.reason
        << "]\n";
}

json dry_run_json(const std::vector<DryRunResult>& results, const DestinationList& input, const Config& cfg) {
    json domains = json::array();
    std::map<std::string, std::size_t> counts;
    for (const char* v : {"would-fail", "degraded", "unknown", "ok", "mode-none", "no-policy"}) counts[v] = 0;
    for (const auto& r : results) {
        ++counts[dry_verdict_name(r.verdict)];
        json hosts = json::array();
        for (const auto& h : r.delivery.hosts)
            hosts.push_back({{"host", h.host},
                             {"covered_by", h.covered_by ? json(*h.covered_by) : json(nullptr)},
                             {"state", host_state_name(h.state)},
                             {"why", h.why}});
        domains.push_back({{"domain", r.dest.domain.str()},
                           {"count", r.dest.count},
                           {"first_line", r.dest.first_line},
                           {"verdict", dry_verdict_name(r.verdict)},
                           {"mode", mode_json(r.facts)},
                           {"enforced_now", r.enforced_now},
                           {"reason_code", r.delivery.code},
                           {"reason", r.delivery.reason},
                           {"hosts", hosts},
                           {"checks", {{"mx_alignment", check_json(r.mx_alignment)}, {"mx_certificates", check_json(r.mx_certificates)}}},
                           {"postfix_answer", postfix_answer_json(cold_cache_answer(r.facts, cfg, "postfix"))},
                           {"seconds", r.facts.seconds}});
    }
    json problems = json::array();
    for (const auto& p : input.problems) problems.push_back({{"line", p.line}, {"text", p.text}, {"why", p.why}});
    return {{"status", domain_status_name(dry_run_status(results))},
            {"summary", counts},
            {"input",
             {{"lines", input.lines},
              {"log_lines", input.log_lines},
              {"ignored", input.ignored},
              {"domains", input.destinations.size()},
              {"problem_count", input.problem_count},
              {"problems", problems}}},
            {"domains", domains}};
}

void print_dry_run(std::ostream& out, Color color, const std::vector<DryRunResult>& results, const DestinationList& input) {
    std::size_t width = 6;
    for (const auto& r : results) width = std::max(width, r.dest.domain.str().size());
    width = std::min<std::size_t>(width + 2, 48);
    constexpr std::size_t kVerdict = 12, kMode = 9, kCount = 7;
    out << pad("VERDICT", kVerdict) << pad("MODE", kMode) << pad("LINES", kCount) << pad("DOMAIN", width) << "WHY\n";
    std::map<std::string, std::size_t> counts;
    for (const auto& r : results) {
        ++counts[dry_verdict_name(r.verdict)];
        const Policy* p = valid_policy(r.facts);
        std::string why = r.delivery.reason;
        if (r.verdict == DryVerdict::would_fail || r.verdict == DryVerdict::degraded)
            why += r.enforced_now ? " [enforced now: mail is affected today]" : " [only if switched to enforce]";
        out << cell(color, hue_of(r.verdict), dry_verdict_name(r.verdict), kVerdict) << pad(p ? mode_name(p->mode) : "-", kMode)
            << pad(std::to_string(r.dest.count), kCount) << pad(r.dest.domain.str(), width) << why << "\n";
    }
    out << results.size() << " domain(s) from " << input.lines << " line(s) (" << input.log_lines << " smtp log line(s), "
        << input.ignored << " ignored, " << input.problem_count << " bad):";
    bool first = true;
    for (const char* v : {"would-fail", "degraded", "unknown", "ok", "mode-none", "no-policy"}) {
        auto it = counts.find(v);
        if (it == counts.end()) continue;
        out << (first ? " " : ", ") << it->second << " " << v;
        first = false;
    }
    out << "\n";
}

}  // namespace stsguard
