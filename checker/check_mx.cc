// check_mx.cc - mx_alignment (RFC 8461 4.1) and mx_certificates (4.2).
// Coverage and probe classification come from check_delivery.cc, so these
// checks, the mode advice and dry-run count every MX the same way.
#include "checker/checks.h"

#include <algorithm>
#include <map>

#include "policy-cache/utc_time.h"
#include "policy-cache/mx_match.h"

namespace stsguard {
namespace {

using nlohmann::json;

int rank(CheckStatus s) {
    switch (s) {
        case CheckStatus::skip: return 0;
        case CheckStatus::pass: return 1;
        case CheckStatus::info: return 2;
        case CheckStatus::warn: return 3;
        case CheckStatus::unknown: return 4;
        case CheckStatus::fail: return 5;
    }
    return 0;
}
CheckStatus max_status(CheckStatus a, CheckStatus b) { return rank(a) >= rank(b) ? a : b; }

std::string mode_note(const DomainFacts& f) {
    const Policy* p = valid_policy(f);
    if (p == nullptr) return " (no policy applies: informational)";
    switch (p->mode) {
        case Mode::enforce: return "";
        case Mode::testing: return " (mode testing: reported only; under enforce this would be refused)";
        case Mode::none: return " (mode none: informational)";
    }
    return "";
}

std::string where(const ProbeResult& p) {
    return p.host + " [" + p.address + "]";
}

json cert_json(const CertInfo& c) {
    return {{"subject", c.subject},
            {"issuer", c.issuer},
            {"dns_names", c.dns_names},
            {"not_before", utc_iso8601(c.not_before)},
            {"not_after", utc_iso8601(c.not_after)},
            {"serial", c.serial},
            {"sha256", c.sha256},
            {"chain", chain_status_name(c.chain)},
            {"chain_error", c.chain_error},
            {"name", name_match_name(c.name)}};
}

}  // namespace
// ---- mx_alignment ---------------------------------------------------------

CheckResult check_mx_alignment(const DomainFacts& f) {
    CheckResult r;
    r.id = "mx_alignment";
    const Policy* p = valid_policy(f);
    if (p == nullptr) {
        r.status = CheckStatus::skip;
        r.summary = "no valid policy: nothing to align the MX hosts with";
        return r;
    }
    r.details["patterns_in_policy"] = p->mx;
    if (!f.mx) {
        r.status = CheckStatus::skip;
        r.summary = "the MX hosts were not looked up";
        return r;
    }
    if (f.mx->failed()) {
        r.status = CheckStatus::unknown;
        r.details["failure"] = failure_json(f.mx->failure());
        r.summary = "the MX lookup of " + f.domain.str() + " failed: " + f.mx->failure().reason;
        r.fix = "check that the domain's name servers answer; then check again";
        return r;
    }
    if (f.mx->not_found()) {
        const std::string why = f.mx->not_found_info().reason;
        r.details["mx"] = json::array();
        r.status = why.find("null MX") != std::string::npos ? CheckStatus::info : CheckStatus::warn;
        r.summary = "the domain has no MX host (" + why + "): it receives no mail, the policy is moot";
        if (r.status == CheckStatus::warn)
            r.fix = "publish MX records for " + f.domain.str() + ", or withdraw the policy (mode: none)";
        return r;
    }
    const MxAnswer& mx = f.mx->value();
    json hosts = json::array();
    std::vector<std::string> uncovered, all_hosts;
    std::map<std::string, std::vector<std::string>> covers;
    for (const auto& pat : p->mx) covers[pat];
    for (const auto& h : mx.hosts) {
        all_hosts.push_back(h.host);
        MxCoverage c = mx_coverage(p->mx, h.host);
        json hj = {{"host", h.host}, {"preference", h.preference}};
        if (c.pattern) {
            hj["covered_by"] = *c.pattern;
            covers[*c.pattern].push_back(h.host);
        } else {
            hj["covered_by"] = nullptr;
            hj["why"] = c.why;
            uncovered.push_back(h.host);
            r.findings.push_back({Severity::error, "mx-not-covered",
                                  "MX " + h.host + " is not covered by the policy: " + c.why +
                                      "; senders applying the policy refuse it (RFC 8461 4.1)",
                                  0});
        }
        hosts.push_back(hj);
    }
    json patterns = json::array();
    std::vector<std::string> unused;
    for (const auto& pat : p->mx) {
        // A pattern may cover several hosts; count every host it matches.
        std::vector<std::string> matched;
        for (const auto& h : mx.hosts)
            if (mx_allowed({pat}, h.host)) matched.push_back(h.host);
        patterns.push_back({{"pattern", pat}, {"covers", matched}});
        if (matched.empty()) {
            unused.push_back(pat);
            r.findings.push_back({Severity::warning, "mx-pattern-unused",
                                  "mx: " + pat + " covers none of the MX hosts (" + join_list(all_hosts, ", ") + ")",
                                  0});
        }
    }
    r.details["implicit_mx"] = mx.implicit;
    r.details["mx"] = hosts;
    r.details["patterns"] = patterns;

    if (!uncovered.empty()) {
        r.status = severity_for_mode(f);
        r.summary = join_list(uncovered, ", ") + (uncovered.size() == 1 ? " is" : " are") +
                    " not covered by the policy (mx: " + join_list(p->mx, ", ") + ")";
        if (uncovered.size() == 1) r.summary += ": " + mx_coverage(p->mx, uncovered.front()).why;
        if (uncovered.size() == mx.hosts.size() && p->mode == Mode::enforce)
            r.summary += "; no MX is acceptable, so MTA-STS senders defer all mail";
        r.summary += mode_note(f);
        r.fix = "list every MX host in the policy (an exact 'mx: HOST' line, or '*.PARENT' which covers exactly "
                "one label) and publish a new policy id, or point the MX records at hosts the policy lists";
        if (!unused.empty() && p->mode != Mode::none) r.status = max_status(r.status, CheckStatus::warn);
        return r;
    }
    if (!unused.empty()) {
        r.status = p->mode == Mode::none ? CheckStatus::info : CheckStatus::warn;
        r.summary = "every MX host is covered, but " + join_list(unused, ", ") + " covers no MX host";
        r.fix = "remove stale mx lines from the policy (and publish a new id), or check the MX records";
        return r;
    }
    r.status = CheckStatus::pass;
    r.summary = "every MX host (" + join_list(all_hosts, ", ") + ") is covered by the policy" +
                (mx.implicit ? " (implicit MX: the domain itself, RFC 5321 5.1)" : "");
    return r;
}

// ---- mx_certificates --------------------------------------------------------

CheckResult check_mx_certificates(const DomainFacts& f, Transcripts t) {
    CheckResult r;
    r.id = "mx_certificates";
    if (!f.mx) {
        r.status = CheckStatus::skip;
        r.summary = "the MX hosts were not probed";
        return r;
    }
    if (f.mx->failed()) {
        r.status = CheckStatus::unknown;
        r.details["failure"] = failure_json(f.mx->failure());
        r.summary = "the MX lookup failed: " + f.mx->failure().reason;
        r.fix = "check that the domain's name servers answer; then check again";
        return r;
    }
    if (f.mx->not_found() || f.hosts.empty()) {
        r.status = CheckStatus::skip;
        r.summary = "no MX host to probe";
        return r;
    }
    std::size_t probes = 0, ok = 0, refused = 0, unreachable = 0, smtp = 0, no_address = 0, addr_unknown = 0,
                cert_warnings = 0;
    const ProbeResult* first_refused = nullptr;
    const ProbeResult* first_other = nullptr;
    ProbeClass refused_class = ProbeClass::ok;
    std::string first_host_problem;
    json hosts = json::array();
    for (const auto& h : f.hosts) {
        json hj = {{"host", h.mx.host}, {"preference", h.mx.preference}};
        json pj = json::array();
        if (!h.addresses) {
            hj["addresses"] = nullptr;
        } else if (h.addresses->failed()) {
            ++addr_unknown;
            hj["addresses"] = nullptr;
            hj["address_failure"] = failure_json(h.addresses->failure());
            r.findings.push_back({Severity::warning, "mx-address-lookup",
                                  "address lookup of " + h.mx.host + " failed: " + h.addresses->failure().reason, 0});
        } else if (h.addresses->not_found()) {
            ++no_address;
            hj["addresses"] = json::array();
            const std::string msg = "MX " + h.mx.host + " has no A/AAAA record (" +
                                    h.addresses->not_found_info().reason + "): mail cannot go there";
            if (first_host_problem.empty()) first_host_problem = msg;
            r.findings.push_back({Severity::warning, "mx-no-address", msg, 0});
        } else {
            hj["addresses"] = h.addresses->value().addresses;
        }
        for (const auto& pr : h.probes) {
            ++probes;
            const ProbeClass k = classify_probe(pr);
            json one = {{"address", pr.address},
                        {"port", pr.port},
                        {"result", probe_class_name(k)},
                        {"reached", probe_stage_name(pr.reached)},
                        {"tls_version", pr.tls_version},
                        {"cipher", pr.cipher},
                        {"seconds", pr.seconds},
                        {"failure", pr.failure ? failure_json(*pr.failure) : json(nullptr)},
                        {"certificate", pr.cert ? cert_json(*pr.cert) : json(nullptr)}};
            json problems = json::array();
            for (const auto& x : pr.findings) problems.push_back(x.code);
            one["problems"] = problems;
            if (t == Transcripts::include) one["transcript"] = pr.transcript;
            pj.push_back(one);

            const std::string at = where(pr) + ": ";
            if (pr.failure) {
                const Severity sev = tls_refused(k) ? Severity::error : Severity::warning;
                r.findings.push_back({sev, pr.failure->code, at + pr.failure->reason, 0});
            }
            for (const auto& x : pr.findings) r.findings.push_back({x.severity, x.code, at + x.message, 0});
            switch (k) {
                case ProbeClass::ok:
                    ++ok;
                    if (has_warnings(pr.findings)) {
                        ++cert_warnings;
                        if (!first_other) first_other = &pr;
                    }
                    break;
                case ProbeClass::cert_invalid:
                case ProbeClass::no_starttls:
                case ProbeClass::tls_failed:
                    ++refused;
                    if (!first_refused) {
                        first_refused = &pr;
                        refused_class = k;
                    }
                    break;
                case ProbeClass::smtp_error:
                    ++smtp;
                    if (!first_other) first_other = &pr;
                    break;
                case ProbeClass::unreachable:
                    ++unreachable;
                    if (!first_other) first_other = &pr;
                    break;
            }
        }
        hj["probes"] = pj;
        hosts.push_back(hj);
    }
    r.details["hosts"] = hosts;
    r.details["counts"] = {{"probes", probes},        {"ok", ok},           {"tls_refused", refused},
                           {"unreachable", unreachable}, {"smtp_error", smtp}, {"no_address", no_address},
                           {"address_lookup_failed", addr_unknown}, {"expiring_soon", cert_warnings}};
    if (f.mx->found() && f.mx->value().hosts.size() > f.hosts.size())
        r.details["not_probed_hosts"] = f.mx->value().hosts.size() - f.hosts.size();

    if (refused > 0) {
        r.status = severity_for_mode(f);
        r.summary = where(*first_refused) + ": " + probe_problem(*first_refused);
        if (refused > 1) r.summary += " (and " + std::to_string(refused - 1) + " more refused)";
        r.summary += mode_note(f);
        const std::string& host = first_refused->host;
        switch (refused_class) {
            case ProbeClass::no_starttls:
                r.fix = "enable STARTTLS on " + host + " with a certificate for that name (Postfix: "
                        "smtpd_tls_security_level = may, smtpd_tls_chain_files)";
                break;
            case ProbeClass::tls_failed:
                r.fix = "make TLS 1.2 or later work on " + host + " (see the handshake error)";
                break;
            default:
                r.fix = "install on " + host + " a certificate that chains to a public CA (send the intermediates), "
                        "lists " + host + " in subjectAltName (the CN is not used), is in date, and offer TLS 1.2 "
                        "or later (RFC 8461 4.2)";
                break;
        }
        return r;
    }
    if (ok == 0 && unreachable + addr_unknown > 0 && smtp == 0 && no_address == 0) {
        r.status = CheckStatus::unknown;
        r.summary = "no MX address could be checked from here: " +
                    (first_other ? where(*first_other) + ": " + probe_problem(*first_other)
                                 : std::string("address lookups failed"));
        r.fix = "check that this host may connect to port 25 (many networks block it), then check again";
        return r;
    }
    if (unreachable + smtp + no_address + addr_unknown + cert_warnings > 0) {
        r.status = CheckStatus::warn;
        if (!first_host_problem.empty() && !first_other)
            r.summary = first_host_problem;
        else if (first_other)
            r.summary = where(*first_other) + ": " + probe_problem(*first_other);
        else
            r.summary = "an MX address lookup failed";
        r.summary += "; " + std::to_string(ok) + " of " + std::to_string(probes) + " addresses pass";
        r.fix = cert_warnings > 0 && unreachable + smtp + no_address + addr_unknown == 0
                    ? "renew the certificate before it expires"
                    : "make every MX host reachable on port 25 with STARTTLS, or remove it from the MX records";
        return r;
    }
    r.status = CheckStatus::pass;
    if (probes == 1) {
        const ProbeResult& pr = f.hosts.front().probes.front();
        r.summary = where(pr) + ": STARTTLS, " + pr.tls_version + ", certificate valid" +
                    (pr.cert ? " until " + utc_iso8601(pr.cert->not_after) : std::string());
    } else {
        r.summary = "all " + std::to_string(probes) + " addresses of " + std::to_string(f.hosts.size()) +
                    " MX host(s): STARTTLS, TLS 1.2+, certificate valid";
    }
    return r;
}

}  // namespace stsguard
