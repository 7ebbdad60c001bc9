// check_policy.cc - policy_fetch (RFC 8461 3.3) and policy_syntax (3.2).
//
// Both read the FetchStep of the very discover() the service runs, so the
// reason codes are those of reason_table() (docs/discovery.md).  A policy
// host that answers wrongly or not at all is a failure of the domain; only
// a temporary DNS failure resolving the policy host is "unknown" (it may
// be our resolver's fault).
#include "checker/checks.h"

#include <cstdio>

namespace stsguard {
namespace {

using nlohmann::json;

struct FixRow {
    const char* code;
    const char* fix;  // "%h" = the policy host
};

const FixRow kFixes[] = {
    {"policy-host-not-found", "publish an A and/or AAAA record for %h pointing at the web server that serves the policy"},
    {"policy-host-dns", "check the DNS of %h (the lookup failed temporarily), then check again"},
    {"policy-host-private",
     "%h resolves only to internal addresses; publish public ones (policy_fetch_allow_private = yes is for test setups)"},
    {"https-connect", "make %h accept HTTPS connections on port 443"},
    {"https-timeout", "%h accepted the connection but did not answer in time; check the web server"},
    {"https-tls", "enable TLS 1.2 or later on %h, with SNI for that name"},
    {"https-cert-invalid",
     "install a certificate for %h from a public CA with the complete chain: the name must be in subjectAltName "
     "(the CN is not used) and it must be in date (RFC 8461 3.3)"},
    {"http-redirect", "serve the policy itself with status 200 at this URL: senders never follow redirects (RFC 8461 3.3)"},
    {"http-status", "serve the policy with status 200 at /.well-known/mta-sts.txt on %h"},
    {"http-content-type", "serve the policy with Content-Type: text/plain (RFC 8461 3.2)"},
    {"policy-too-large", "keep the policy under 64 KiB (RFC 8461 3.3)"},
    {"https-error", "see the reason; make the policy URL answer 200 with the policy"},
};

std::string fix_for(const std::string& code, const std::string& host) {
    for (const auto& row : kFixes)
        if (code == row.code) {
            std::string s = row.fix;
            for (auto at = s.find("%h"); at != std::string::npos; at = s.find("%h", at + host.size()))
                s.replace(at, 2, host);
            return s;
        }
    return "see the reason";
}

std::string first_of(const Findings& fs, Severity sev) {
    for (const auto& f : fs)
        if (f.severity == sev) return (f.line ? "line " + std::to_string(f.line) + ": " : std::string()) + f.message;
    return std::string();
}

std::size_t count_of(const Findings& fs, Severity sev) {
    std::size_t n = 0;
    for (const auto& f : fs) n += f.severity == sev;
    return n;
}

}  // namespace

CheckResult check_policy_fetch(const DomainFacts& f) {
    CheckResult r;
    r.id = "policy_fetch";
    const Discovery& d = f.discovery;
    const std::string host = f.domain.policy_host();
    r.details = {{"url", policy_url(f.domain, 443)}, {"host", host}};
    if (!d.fetch) {
        r.status = CheckStatus::skip;
        r.summary = "no valid _mta-sts record: senders do not fetch a policy";
        return r;
    }
    const FetchStep& s = *d.fetch;
    const ReasonInfo* info = reason_info(s.code);
    r.details["reason_code"] = s.code;
    r.details["reason"] = s.reason;
    r.details["seconds"] = f.fetch_seconds;
    if (s.fetched) {
        const FetchedPolicy& p = *s.fetched;
        r.details["url"] = p.url;
        r.details["http_status"] = p.http_status;
        r.details["content_type"] = p.content_type;
        r.details["remote_ip"] = p.remote_ip;
        r.details["tls_version"] = p.tls_version;
        r.details["bytes"] = p.body.size();
        r.details["seconds"] = p.seconds;
        r.status = CheckStatus::pass;
        char secs[32];
        std::snprintf(secs, sizeof secs, "%.2f", p.seconds);
        r.summary = "HTTP " + std::to_string(p.http_status) + ", " + p.content_type + ", " +
                    std::to_string(p.body.size()) + " bytes over " + p.tls_version + " from " + p.remote_ip +
                    " in " + secs + " s; certificate valid for " + host;
        return r;
    }
    r.details["failure"] = {{"code", s.code},
                            {"kind", s.failure_kind == FailureKind::temporary ? "temporary" : "permanent"},
                            {"reason", s.reason}};
    r.details["rfc8460_result_type"] = info ? info->rfc8460 : "sts-policy-fetch-error";
    r.status = s.code == "policy-host-dns" ? CheckStatus::unknown : CheckStatus::fail;
    r.summary = "fetching " + std::string(r.details["url"]) + " failed (" + s.code + "): " + s.reason;
    if (info) r.summary += std::string(" - ") + info->meaning;
    if (r.status == CheckStatus::fail) r.summary += "; senders without a cached policy treat the domain as having none";
    r.fix = fix_for(s.code, host);
    return r;
}

CheckResult check_policy_syntax(const DomainFacts& f) {
    CheckResult r;
    r.id = "policy_syntax";
    const Discovery& d = f.discovery;
    if (!d.fetch || !d.fetch->parse) {
        r.status = CheckStatus::skip;
        r.summary = "no policy body to check";
        return r;
    }
    const PolicyParse& p = *d.fetch->parse;
    r.findings = p.findings;
    std::size_t lines = 0;
    if (d.fetch->fetched) {
        const std::string& body = d.fetch->fetched->body;
        for (char c : body) lines += c == '\n';
        if (!body.empty() && body.back() != '\n') ++lines;
        r.details["bytes"] = body.size();
        r.details["body"] = body;
    }
    r.details["lines"] = lines;
    r.details["verdict"] = p.verdict == PolicyVerdict::valid ? "valid" : "invalid";
    r.details["mode"] = p.mode_text ? json(*p.mode_text) : json(nullptr);
    r.details["max_age"] = p.max_age ? json(*p.max_age) : json(nullptr);
    r.details["mx"] = p.mx;
    if (p.policy) {
        json ext = json::array();
        for (const auto& [k, v] : p.policy->extensions) ext.push_back({{"name", k}, {"value", v}});
        r.details["extensions"] = ext;
    }
    const std::size_t errors = count_of(p.findings, Severity::error);
    const std::size_t warnings = count_of(p.findings, Severity::warning);
    if (p.verdict != PolicyVerdict::valid) {
        r.status = CheckStatus::fail;
        r.summary = "the policy is invalid (" + std::to_string(errors) + " error(s)): " +
                    first_of(p.findings, Severity::error) + "; senders treat the domain as having no policy";
        r.fix = "correct the policy: 'key: value' lines with version: STSv1, mode: enforce|testing|none, "
                "max_age: SECONDS and one mx: line per MX pattern (RFC 8461 3.2); see the findings";
        return r;
    }
    const Policy& pol = *p.policy;
    r.summary = std::string("valid: mode ") + mode_name(pol.mode) + ", max_age " + std::to_string(pol.max_age.count()) +
                ", mx " + join_list(pol.mx, ", ");
    if (warnings > 0) {
        r.status = CheckStatus::warn;
        r.summary += "; " + std::to_string(warnings) + " warning(s): " + first_of(p.findings, Severity::warning);
        r.fix = "see the findings: the values are valid but risky or ambiguous";
    } else {
        r.status = CheckStatus::pass;
    }
    return r;
}

}  // namespace stsguard
