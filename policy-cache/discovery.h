// discovery.h - RFC 8461 policy discovery: domain -> TXT -> fetch -> parse.
//
// One call gives one outcome with a stable reason code, so the service,
// the checker and `stsguard fetch` explain a missing policy the same way.
// The steps are separate functions because the cache engine needs them
// apart: it checks the TXT id (3.1) and fetches only when the id changed
// (3.3, 5.1).
//
// Outcomes:
//   policy     a valid policy was fetched (any mode, "none" included)
//   no-policy  the domain has no usable _mta-sts record (3.1: none, several,
//              or invalid) - not a failure, nothing to report
//   failed     a valid record exists but no valid policy could be had, or
//              DNS failed; temporary or permanent, with the RFC 8460
//              result type for TLSRPT.  Per 5 a sender with no cached
//              policy then delivers as if the domain had no policy.
// Every reason code, its kind and its RFC 8460 type are in reason_table()
// and docs/discovery.md.
//
// Limits: those of the DnsResolver and PolicyFetcher passed in.
// Failures: only through the outcome; never throws.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy-cache/dns_resolver.h"
#include "policy-cache/domain_name.h"
#include "policy-cache/https_fetcher.h"
#include "policy-cache/outcome.h"
#include "policy-cache/sts_policy.h"
#include "policy-cache/sts_txt.h"

namespace stsguard {

enum class DiscoveryStatus { policy, no_policy, failed };
const char* discovery_status_name(DiscoveryStatus s);  // "policy" | "no-policy" | "failed"

// One row of the reason table.
struct ReasonInfo {
    const char* code;
    DiscoveryStatus status;
    FailureKind kind;      // meaningful for failed
    const char* rfc8460;   // "" when the outcome is not a TLSRPT failure
    const char* meaning;
};
const std::vector<ReasonInfo>& reason_table();
const ReasonInfo* reason_info(std::string_view code);

struct TxtStep {
    DiscoveryStatus status = DiscoveryStatus::no_policy;  // policy = valid record found
    std::string code;     // "txt-ok" or a reason code
    std::string reason;
    std::vector<std::string> records;  // every TXT RR at the owner, joined strings
    DnsMeta meta;
    StsTxt txt;
    std::optional<FailureKind> failure_kind;
};

struct FetchStep {
    DiscoveryStatus status = DiscoveryStatus::failed;  // policy or failed
    std::string code;     // "policy-ok" or a reason code
    std::string reason;
    std::optional<FetchedPolicy> fetched;  // set when an HTTP 200 body arrived
    std::optional<PolicyParse> parse;      // set when a body was parsed
    std::optional<FailureKind> failure_kind;
};

struct Discovery {
    DomainName domain;
    DiscoveryStatus status = DiscoveryStatus::no_policy;
    std::string code;
    std::string reason;
    std::optional<FailureKind> failure_kind;  // set when failed
    TxtStep txt;
    std::optional<FetchStep> fetch;           // absent when TXT ended discovery

    const Policy* policy() const {
        return (fetch && fetch->parse && fetch->parse->policy) ? &*fetch->parse->policy : nullptr;
    }
    const char* rfc8460_type() const;         // "" unless failed
};

TxtStep discover_txt(const DomainName& domain, DnsResolver& dns);
FetchStep fetch_policy(const DomainName& domain, PolicyFetcher& fetcher);
Discovery discover(const DomainName& domain, DnsResolver& dns, PolicyFetcher& fetcher);

}  // namespace stsguard
