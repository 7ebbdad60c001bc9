// checks.cc - the verdict vocabulary, shared helpers, and judge_domain().
#include "checker/checks.h"

#include <chrono>
#include <cstdio>

namespace stsguard {

const char* check_status_name(CheckStatus s) {
    switch (s) {
        case CheckStatus::pass: return "pass";
        case CheckStatus::info: return "info";
        case CheckStatus::warn: return "warn";
        case CheckStatus::fail: return "fail";
        case CheckStatus::skip: return "skip";
        case CheckStatus::unknown: return "unknown";
    }
    return "unknown";
}

const char* domain_status_name(DomainStatus s) {
    switch (s) {
        case DomainStatus::ok: return "ok";
        case DomainStatus::warning: return "warning";
        case DomainStatus::critical: return "critical";
        case DomainStatus::unknown: return "unknown";
    }
    return "unknown";
}

int severity_rank(DomainStatus s) {
    switch (s) {
        case DomainStatus::ok: return 0;
        case DomainStatus::warning: return 1;
        case DomainStatus::unknown: return 2;
        case DomainStatus::critical: return 3;
    }
    return 2;
}

DomainStatus worse(DomainStatus a, DomainStatus b) {
    return severity_rank(a) >= severity_rank(b) ? a : b;
}

const std::vector<std::string>& check_ids() {
    static const std::vector<std::string> ids = {
        "dns_record", "policy_fetch", "policy_syntax", "mx_alignment", "mx_certificates",
        "mode",       "tlsrpt",       "policy_id_hygiene", "dane"};
    return ids;
}

const Policy* valid_policy(const DomainFacts& f) {
    return f.discovery.status == DiscoveryStatus::policy ? f.discovery.policy() : nullptr;
}

CheckStatus severity_for_mode(const DomainFacts& f) {
    const Policy* p = valid_policy(f);
    if (p == nullptr) return CheckStatus::info;
    switch (p->mode) {
        case Mode::enforce: return CheckStatus::fail;
        case Mode::testing: return CheckStatus::warn;
        case Mode::none: return CheckStatus::info;
    }
    return CheckStatus::info;
}

std::string join_list(const std::vector<std::string>& items, std::string_view sep) {
    std::string out;
    for (const auto& s : items) {
        if (!out.empty()) out += sep;
        out += s;
    }
    return out;
}

nlohmann::json failure_json(const Failure& f) {
    return {{"code", f.code},
            {"kind", f.temporary() ? "temporary" : "permanent"},
            {"reason", f.reason}};
}

DomainStatus status_of(const std::vector<CheckResult>& checks) {
    DomainStatus s = DomainStatus::ok;
    for (const auto& c : checks) {
        switch (c.status) {
            case CheckStatus::fail: s = worse(s, DomainStatus::critical); break;
            case CheckStatus::unknown: s = worse(s, DomainStatus::unknown); break;
            case CheckStatus::warn: s = worse(s, DomainStatus::warning); break;
            default: break;
        }
    }
    return s;
}

DomainReport judge_domain(const DomainFacts& f, Transcripts t) {
    DomainReport r;
    r.checks.push_back(check_dns_record(f));
    r.checks.push_back(check_policy_fetch(f));
    r.checks.push_back(check_policy_syntax(f));
    r.checks.push_back(check_mx_alignment(f));
    r.checks.push_back(check_mx_certificates(f, t));
    r.checks.push_back(check_mode(f));
    r.checks.push_back(check_tlsrpt(f));
    r.checks.push_back(check_policy_id_hygiene(f));
    r.checks.push_back(check_dane(f));
    r.status = status_of(r.checks);
    return r;
}

}  // namespace stsguard
