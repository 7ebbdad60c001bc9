#include "policy-cache/discovery.h"

namespace stsguard {
namespace {

using S = DiscoveryStatus;
constexpr FailureKind T = FailureKind::temporary;
constexpr FailureKind P = FailureKind::permanent;

const std::vector<ReasonInfo> kReasons = {
    {"policy-ok", S::policy, P, "", "a valid policy was fetched"},
    {"no-txt", S::no_policy, P, "", "no _mta-sts TXT record (NXDOMAIN or NODATA)"},
    {"txt-none-sts", S::no_policy, P, "", "TXT records exist but none starts with v=STSv1"},
    {"txt-multiple", S::no_policy, P, "", "several v=STSv1 records: RFC 8461 3.1 says assume no policy"},
    {"txt-invalid", S::no_policy, P, "", "the v=STSv1 record breaks the 3.1 grammar: assume no policy"},
    {"dns-timeout", S::failed, T, "sts-policy-fetch-error", "the TXT query timed out"},
    {"dns-servfail", S::failed, T, "sts-policy-fetch-error", "the resolver answered SERVFAIL for the TXT query"},
    {"dns-refused", S::failed, T, "sts-policy-fetch-error", "the resolver refused the TXT query"},
    {"dns-truncated", S::failed, T, "sts-policy-fetch-error", "the TXT answer was truncated even over TCP"},
    {"dns-error", S::failed, T, "sts-policy-fetch-error", "the TXT query failed (other rcode or malformed answer)"},
    {"dns-setup", S::failed, T, "sts-policy-fetch-error", "no usable DNS server"},
    {"policy-host-not-found", S::failed, P, "sts-policy-fetch-error", "mta-sts.<domain> has no A/AAAA record"},
    {"policy-host-dns", S::failed, T, "sts-policy-fetch-error", "resolving mta-sts.<domain> failed"},
    {"policy-host-private", S::failed, P, "sts-policy-fetch-error",
     "mta-sts.<domain> resolves only to internal addresses (policy_fetch_allow_private = no)"},
    {"https-connect", S::failed, T, "sts-policy-fetch-error", "the HTTPS connection was refused or unreachable"},
    {"https-timeout", S::failed, T, "sts-policy-fetch-error", "the HTTPS connect or transfer timed out"},
    {"https-tls", S::failed, T, "sts-policy-fetch-error", "the TLS handshake with the policy host failed"},
    {"https-cert-invalid", S::failed, P, "sts-webpki-invalid",
     "the policy host certificate failed PKIX validation (chain, expiry or name)"},
    {"http-redirect", S::failed, P, "sts-policy-fetch-error", "the policy URL redirects; redirects are never followed (3.3)"},
    {"http-status", S::failed, P, "sts-policy-fetch-error",
     "the policy URL did not answer 200 (4xx permanent, 5xx temporary)"},
    {"http-content-type", S::failed, P, "sts-policy-invalid", "the policy is not served as text/plain (3.2)"},
    {"policy-too-large", S::failed, P, "sts-policy-invalid", "the policy body exceeds 64 KiB (3.3)"},
    {"https-error", S::failed, T, "sts-policy-fetch-error", "another HTTPS error"},
    {"policy-invalid", S::failed, P, "sts-policy-invalid", "the policy body breaks the 3.2 grammar"},
};

}  // namespace

const char* discovery_status_name(DiscoveryStatus s) {
    switch (s) {
        case S::policy: return "policy";
        case S::no_policy: return "no-policy";
        case S::failed: return "failed";
    }
    return "failed";
}

const std::vector<ReasonInfo>& reason_table() { return kReasons; }

const ReasonInfo* reason_info(std::string_view code) {
    for (const auto& r : kReasons)
        if (code == r.code) return &r;
    return nullptr;
}

const char* Discovery::rfc8460_type() const {
    if (status != S::failed) return "";
    const ReasonInfo* r = reason_info(code);
    return r ? r->rfc8460 : "sts-policy-fetch-error";
}

TxtStep discover_txt(const DomainName& domain, DnsResolver& dns) {
    TxtStep step;
    auto answer = dns.txt(domain.sts_txt_owner());
    if (answer.failed()) {
        const Failure& f = answer.failure();
        step.status = S::failed;
        step.code = reason_info(f.code) ? f.code : "dns-error";
        step.reason = f.reason;
        step.failure_kind = f.kind;
        return step;
    }
    if (answer.not_found()) {
        step.code = "no-txt";
        step.reason = domain.sts_txt_owner() + ": " + answer.not_found_info().reason;
        return step;
    }
    step.records = answer.value().records;
    step.meta = answer.value().meta;
    step.txt = parse_sts_txt(step.records);
    switch (step.txt.verdict) {
        case TxtVerdict::valid:
            step.status = S::policy;
            step.code = "txt-ok";
            step.reason = "v=STSv1 record with id " + step.txt.id->str();
            return step;
        case TxtVerdict::invalid:
            step.code = "txt-invalid";
            break;
        case TxtVerdict::no_policy: {
            // The parser decides what counts as a v=STSv1 record ("v=STSv10" does not).
            bool multiple = false;
            for (const auto& f : step.txt.findings)
                if (f.code == "txt-multiple-records") multiple = true;
            step.code = multiple ? "txt-multiple" : "txt-none-sts";
            break;
        }
    }
    step.reason = step.txt.findings.empty() ? reason_info(step.code)->meaning
                                            : step.txt.findings.front().message;
    return step;
}

FetchStep fetch_policy(const DomainName& domain, PolicyFetcher& fetcher) {
    FetchStep step;
    auto got = fetcher.fetch(domain);
    if (!got.found()) {
        Failure f = got.failed() ? got.failure()
                                 : Failure::perm("https-error", got.not_found_info().reason);
        step.code = reason_info(f.code) ? f.code : "https-error";
        step.reason = f.reason;
        step.failure_kind = f.kind;
        return step;
    }
    step.fetched = std::move(got.value());
    step.parse = parse_sts_policy(step.fetched->body);
    if (step.parse->verdict == PolicyVerdict::valid) {
        step.status = S::policy;
        step.code = "policy-ok";
        step.reason = std::string("mode ") + mode_name(step.parse->policy->mode) + ", max_age " +
                      std::to_string(step.parse->policy->max_age.count());
        return step;
    }
    step.code = "policy-invalid";
    step.failure_kind = FailureKind::permanent;
    for (const auto& f : step.parse->findings)
        if (f.severity == Severity::error) {
            step.reason = (f.line ? "line " + std::to_string(f.line) + ": " : std::string()) + f.message;
            break;
        }
    return step;
}

Discovery discover(const DomainName& domain, DnsResolver& dns, PolicyFetcher& fetcher) {
    Discovery d{domain, S::no_policy, "", "", std::nullopt, discover_txt(domain, dns), std::nullopt};
    if (d.txt.status != S::policy) {
        d.status = d.txt.status;
        d.code = d.txt.code;
        d.reason = d.txt.reason;
        d.failure_kind = d.txt.failure_kind;
        return d;
    }
    d.fetch = fetch_policy(domain, fetcher);
    d.status = d.fetch->status;
    d.code = d.fetch->code;
    d.reason = d.fetch->reason;
    d.failure_kind = d.fetch->failure_kind;
    return d;
}

}  // namespace stsguard
