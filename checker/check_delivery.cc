// check_delivery.cc - whether delivery would succeed under enforce
// (RFC 8461 4.1 + 4.2 per MX host), shared by the mode check and dry-run.
//
// Whether an MX is covered is decided by mx_allowed(), the very function
// the service's answer uses; match_mx() only explains why not.  Probe
// outcomes are classified once (classify_probe) so the certificate check
// and dry-run count "refused", "unreachable" and "ok" the same way.
#include "checker/checks.h"

#include "policy-cache/mx_match.h"

namespace stsguard {
namespace {

HostDelivery host_delivery(const MxHostFacts& h, const Policy& p) {
    HostDelivery d;
    d.host = h.mx.host;
    MxCoverage c = mx_coverage(p.mx, h.mx.host);
    d.covered_by = c.pattern;
    if (!c.pattern) {
        d.state = HostState::not_in_policy;
        d.why = "not covered by the policy: " + c.why;
        return d;
    }
    if (!h.addresses) {
        d.state = HostState::unknown;
        d.why = "not probed";
        return d;
    }
    if (h.addresses->failed()) {
        d.state = HostState::unknown;
        d.why = "address lookup failed: " + h.addresses->failure().reason;
        return d;
    }
    if (h.addresses->not_found()) {
        d.state = HostState::no_address;
        d.why = "no A/AAAA record (" + h.addresses->not_found_info().reason + ")";
        return d;
    }
    const ProbeResult* refused = nullptr;
    const ProbeResult* other = nullptr;
    for (const auto& pr : h.probes) {
        const ProbeClass k = classify_probe(pr);
        if (k == ProbeClass::ok) {
            d.state = HostState::ok;
            d.why = "[" + pr.address + "] " + pr.tls_version + ", certificate accepted";
            return d;
        }
        const bool perm_smtp = k == ProbeClass::smtp_error && pr.failure && !pr.failure->temporary();
        if ((tls_refused(k) || perm_smtp) && !refused) refused = &pr;
        if (!other) other = &pr;
    }
    if (refused) {
        d.state = HostState::tls_refused;
        d.why = "[" + refused->address + "] " + probe_problem(*refused);
    } else if (other) {
        d.state = HostState::unreachable;
        d.why = "[" + other->address + "] " + probe_problem(*other);
    } else {
        d.state = HostState::unknown;
        d.why = "not probed";
    }
    return d;
}


}  // namespace

// Decided by mx_allowed; the explanation prefers a "*." pattern whose base
// the host is under (the one-label wildcard rule is the usual surprise).
MxCoverage mx_coverage(const std::vector<std::string>& patterns, const std::string& host) {
    MxCoverage c;
    const bool allowed = mx_allowed(patterns, host);
    std::string first_why, wildcard_why;
    for (const auto& p : patterns) {
        MxMatch m = match_mx(p, host);
        if (m.verdict == MxVerdict::match) {
            if (allowed) {
                c.pattern = p;
                return c;
            }
            continue;
        }
        std::string why;
        for (const auto& x : m.findings)
            if (x.code == "mx-nomatch" || x.code == "mx-pattern-invalid") {
                why = "mx: " + p + ": " + x.message;
                break;
            }
        if (why.empty()) continue;
        if (first_why.empty()) first_why = why;
        if (wildcard_why.empty() && p.rfind("*.", 0) == 0) {
            const std::string base = "." + p.substr(2);
            if (host.size() > base.size() && host.compare(host.size() - base.size(), base.size(), base) == 0)
                wildcard_why = why;
        }
    }
    if (allowed) {  // mx_allowed and match_mx disagree: trust the service's decision
        c.pattern = "(policy)";
        return c;
    }
    c.why = !wildcard_why.empty() ? wildcard_why : !first_why.empty() ? first_why : "the policy lists no mx pattern";
    return c;
}

// The first error message of a probe: the failure, else the worst finding.
std::string probe_problem(const ProbeResult& p) {
    if (p.failure) return p.failure->reason;
    for (const auto& x : p.findings)
        if (x.severity == Severity::error) return x.message;
    for (const auto& x : p.findings)
        if (x.severity == Severity::warning) return x.message;
    return "";
}

// ---- probes and delivery --------------------------------------------------

const char* probe_class_name(ProbeClass c) {
    switch (c) {
        case ProbeClass::ok: return "ok";
        case ProbeClass::cert_invalid: return "cert-invalid";
        case ProbeClass::no_starttls: return "no-starttls";
        case ProbeClass::tls_failed: return "tls-failed";
        case ProbeClass::smtp_error: return "smtp-error";
        case ProbeClass::unreachable: return "unreachable";
    }
    return "unreachable";
}

ProbeClass classify_probe(const ProbeResult& r) {
    if (r.failure) {
        const std::string& c = r.failure->code;
        if (c == "mx-no-starttls") return ProbeClass::no_starttls;
        if (c == "mx-tls-handshake") return ProbeClass::tls_failed;
        if (c == "mx-banner" || c == "mx-ehlo") return ProbeClass::smtp_error;
        return ProbeClass::unreachable;  // mx-connect, mx-timeout, probe-*: nothing known about TLS
    }
    if (r.reached != ProbeStage::done) return ProbeClass::unreachable;
    return has_errors(r.findings) ? ProbeClass::cert_invalid : ProbeClass::ok;
}

bool tls_refused(ProbeClass c) {
    return c == ProbeClass::cert_invalid || c == ProbeClass::no_starttls || c == ProbeClass::tls_failed;
}

const char* delivery_name(Delivery d) {
    switch (d) {
        case Delivery::ok: return "ok";
        case Delivery::degraded: return "degraded";
        case Delivery::would_fail: return "would-fail";
        case Delivery::unknown: return "unknown";
        case Delivery::not_applicable: return "not-applicable";
    }
    return "unknown";
}

const char* host_state_name(HostState s) {
    switch (s) {
        case HostState::ok: return "ok";
        case HostState::not_in_policy: return "not-in-policy";
        case HostState::tls_refused: return "tls-refused";
        case HostState::no_address: return "no-address";
        case HostState::unreachable: return "unreachable";
        case HostState::unknown: return "unknown";
    }
    return "unknown";
}

DeliveryAssessment assess_delivery(const DomainFacts& f) {
    DeliveryAssessment a;
    const Discovery& d = f.discovery;
    const Policy* p = valid_policy(f);
    if (p == nullptr) {
        if (d.status == DiscoveryStatus::failed && d.failure_kind == FailureKind::temporary) {
            a.verdict = Delivery::unknown;
            a.code = d.code;
            a.reason = "policy discovery failed temporarily (" + d.code + "): " + d.reason;
        } else {
            a.verdict = Delivery::not_applicable;
            a.code = d.status == DiscoveryStatus::policy ? "policy-invalid" : d.code;
            a.reason = "no MTA-STS policy applies (" + d.code + "): " + d.reason;
        }
        return a;
    }
    if (p->mode == Mode::none) {
        a.verdict = Delivery::not_applicable;
        a.code = "mode-none";
        a.reason = "policy mode none: nothing is enforced";
        return a;
    }
    if (!f.mx) {
        a.verdict = Delivery::unknown;
        a.code = "mx-not-checked";
        a.reason = "the MX hosts were not looked up";
        return a;
    }
    if (f.mx->failed()) {
        a.verdict = Delivery::unknown;
        a.code = "mx-lookup-failed";
        a.reason = "MX lookup failed: " + f.mx->failure().reason;
        return a;
    }
    if (f.mx->not_found() || f.hosts.empty()) {
        a.verdict = Delivery::would_fail;
        a.code = "no-mx";
        a.reason = "the domain has no MX host" +
                   (f.mx->not_found() ? " (" + f.mx->not_found_info().reason + ")" : std::string());
        return a;
    }
    std::size_t ok = 0, broken = 0, unsure = 0, not_in_policy = 0;
    std::vector<std::string> ok_hosts, problems, unsure_why;
    for (const auto& h : f.hosts) {
        HostDelivery hd = host_delivery(h, *p);
        switch (hd.state) {
            case HostState::ok:
                ++ok;
                ok_hosts.push_back(hd.host);
                break;
            case HostState::not_in_policy:
                ++not_in_policy;
                [[fallthrough]];
            case HostState::tls_refused:
            case HostState::no_address:
                ++broken;
                problems.push_back(hd.host + " (" + host_state_name(hd.state) + "): " + hd.why);
                break;
            case HostState::unreachable:
            case HostState::unknown:
                ++unsure;
                unsure_why.push_back(hd.host + " (" + host_state_name(hd.state) + "): " + hd.why);
                break;
        }
        a.hosts.push_back(std::move(hd));
    }
    const std::size_t n = f.hosts.size();
    if (ok == n) {
        a.verdict = Delivery::ok;
        a.code = "deliverable";
        a.reason = "every MX host passes (" + join_list(ok_hosts, ", ") + ")";
    } else if (ok > 0 && broken > 0) {
        a.verdict = Delivery::degraded;
        a.code = "some-mx-refused";
        a.reason = "delivery works through " + join_list(ok_hosts, ", ") + "; refused: " + join_list(problems, "; ");
    } else if (ok > 0) {
        a.verdict = Delivery::ok;
        a.code = "deliverable";
        a.reason = "delivery works through " + join_list(ok_hosts, ", ") + "; not verified: " + join_list(unsure_why, "; ");
    } else if (unsure > 0) {
        a.verdict = Delivery::unknown;
        a.code = "mx-unreachable";
        a.reason = "no MX host could be verified: " + join_list(unsure_why, "; ") +
                   (problems.empty() ? std::string() : "; refused: " + join_list(problems, "; "));
    } else {
        a.verdict = Delivery::would_fail;
        a.code = not_in_policy == n ? "no-mx-match" : "mx-refused";
        a.reason = "no MX host would be accepted: " + join_list(problems, "; ");
    }
    return a;
}

}  // namespace stsguard
