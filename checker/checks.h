// checks.h - the checks of `stsguard check`: facts about a domain in,
// one verdict per check out.
//
// A check run has two halves, kept apart so every verdict is unit-tested
// without a network:
//   - check_gather.h collects DomainFacts with the service's own adapters
//     (discover() for TXT + policy, the DnsResolver for MX / addresses /
//     TLSA / TLSRPT, the STARTTLS probe pool, the cache read-only);
//   - the judge functions below are pure: DomainFacts -> CheckResult.
// The same judges serve `dry-run` (mx_alignment, mx_certificates and
// assess_delivery()), so check and dry-run cannot disagree.
//
// Statuses: pass, info (nothing wrong, something worth knowing), warn,
// fail, skip (not applicable, e.g. no policy to fetch), unknown (could not
// be decided: a temporary DNS failure, no MX reachable from here).
// A domain is critical if any check fails, else unknown if any check is
// unknown, else warning if any warns, else ok (Icinga's order of severity:
// a known failure outranks "could not check").
//
// How an MX-level problem counts depends on the policy mode (RFC 8461 5):
// enforce -> fail (mail to that MX is refused now), testing -> warn
// (reported only; it would fail under enforce), none or no policy -> info.
//
// Check ids, meanings, fixes and RFC sections: docs/checks.md.
// Failures: none (verdicts are the output).  Limits: none beyond the facts.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checker/starttls_probe.h"
#include "policy-cache/cache_record.h"
#include "policy-cache/discovery.h"
#include "policy-cache/dns_resolver.h"
#include "policy-cache/finding.h"

namespace stsguard {

// ---- verdict vocabulary -------------------------------------------------

enum class CheckStatus { pass, info, warn, fail, skip, unknown };
const char* check_status_name(CheckStatus s);  // "pass" | "info" | ... | "unknown"

enum class DomainStatus { ok, warning, critical, unknown };
const char* domain_status_name(DomainStatus s);  // "ok" | "warning" | "critical" | "unknown"

// Icinga's severity order: critical > unknown > warning > ok.
int severity_rank(DomainStatus s);
DomainStatus worse(DomainStatus a, DomainStatus b);

struct CheckResult {
    std::string id;  // stable: "dns_record", "policy_fetch", ...
    CheckStatus status = CheckStatus::skip;
    std::string summary;                             // one line, plain words
    nlohmann::json details = nlohmann::json::object();  // check-specific, documented
    std::string fix;                                 // what to change; "" when nothing
    Findings findings;                               // every problem, with codes
};

// The check ids in report order.
const std::vector<std::string>& check_ids();

// ---- facts --------------------------------------------------------------

// One MX host: its addresses and what the probes of each address found.
struct MxHostFacts {
    MxHost mx{};
    std::optional<Lookup<AddressAnswer>> addresses{};  // nullopt: not looked up
    std::vector<ProbeResult> probes{};                 // one per address, same order
    std::optional<Lookup<TlsaAnswer>> tlsa{};          // _25._tcp.<host>; nullopt: not looked up
};

// The local cache's copy, for policy_id_hygiene.
struct CacheFacts {
    enum class State { not_checked, unavailable, checked } state = State::not_checked;
    std::string note;                          // why unavailable (no cache, open error)
    std::optional<Lookup<CacheRecord>> record;  // set when checked
};

struct DomainFacts {
    DomainFacts(DomainName d, Discovery disc) : domain(std::move(d)), discovery(std::move(disc)) {}

    DomainName domain;
    Discovery discovery;
    double fetch_seconds = 0;                  // wall time of the policy fetch, if one ran
    std::optional<Lookup<MxAnswer>> mx;        // nullopt: not looked up
    std::vector<MxHostFacts> hosts;            // in MX preference order
    std::optional<Lookup<TxtAnswer>> tlsrpt;   // _smtp._tls.<domain>; nullopt: not looked up
    CacheFacts cache;
    UnixTime now{};
    double seconds = 0;                        // wall time of gathering
};

// The policy senders would apply now: valid TXT and valid policy body.
const Policy* valid_policy(const DomainFacts& f);

// ---- probes and delivery ------------------------------------------------

// What one probe says about delivery to that address.
enum class ProbeClass {
    ok,            // TLS 1.2+, certificate accepted (warnings allowed)
    cert_invalid,  // handshake done, certificate or TLS version refused (4.2)
    no_starttls,   // STARTTLS not offered or refused
    tls_failed,    // the TLS handshake failed
    smtp_error,    // banner or EHLO refused (not a TLS problem)
    unreachable,   // connect refused, timed out: says nothing about TLS
};
const char* probe_class_name(ProbeClass c);  // "ok", "cert-invalid", ...
ProbeClass classify_probe(const ProbeResult& r);
// cert_invalid, no_starttls or tls_failed: a sender applying the policy refuses it.
bool tls_refused(ProbeClass c);

// Whether delivery would succeed if the domain's policy were enforced
// (shared by the mode check and dry-run).
enum class Delivery { ok, degraded, would_fail, unknown, not_applicable };
const char* delivery_name(Delivery d);  // "ok" | "degraded" | "would-fail" | "unknown" | "not-applicable"

enum class HostState { ok, not_in_policy, tls_refused, no_address, unreachable, unknown };
const char* host_state_name(HostState s);  // "ok" | "not-in-policy" | "tls-refused" | ...

struct HostDelivery {
    std::string host;
    std::optional<std::string> covered_by;  // the policy pattern that covers it
    HostState state = HostState::unknown;
    std::string why;
};

struct DeliveryAssessment {
    Delivery verdict = Delivery::not_applicable;
    std::string code;    // stable: "deliverable", "some-mx-refused", "no-mx-match", ...
    std::string reason;  // plain words
    std::vector<HostDelivery> hosts;
};

DeliveryAssessment assess_delivery(const DomainFacts& f);

// Whether a policy covers an MX host: decided by mx_allowed() (the
// service's function); `why` explains a miss with match_mx()'s reason,
// preferring a "*." pattern the host is under (the one-label rule).
struct MxCoverage {
    std::optional<std::string> pattern;  // the covering pattern
    std::string why;                     // why not covered
};
MxCoverage mx_coverage(const std::vector<std::string>& patterns, const std::string& host);

// A probe's first problem: its failure, else its first error (or warning) finding.
std::string probe_problem(const ProbeResult& p);

// ---- the checks (pure) ----------------------------------------------------

enum class Transcripts { omit, include };  // SMTP transcripts in mx_certificates details

CheckResult check_dns_record(const DomainFacts& f);
CheckResult check_policy_fetch(const DomainFacts& f);
CheckResult check_policy_syntax(const DomainFacts& f);
CheckResult check_mx_alignment(const DomainFacts& f);
CheckResult check_mx_certificates(const DomainFacts& f, Transcripts t = Transcripts::omit);
CheckResult check_mode(const DomainFacts& f);
CheckResult check_tlsrpt(const DomainFacts& f);
CheckResult check_policy_id_hygiene(const DomainFacts& f);
CheckResult check_dane(const DomainFacts& f);

struct DomainReport {
    DomainStatus status = DomainStatus::ok;
    std::vector<CheckResult> checks;  // in check_ids() order
};

// Every check, and the domain's status.
DomainReport judge_domain(const DomainFacts& f, Transcripts t = Transcripts::omit);
DomainStatus status_of(const std::vector<CheckResult>& checks);

// ---- helpers shared by the check files -------------------------------------

// "2024-03-01T12:00:00Z"
// The status an MX-level problem gets under the domain's mode (see above).
CheckStatus severity_for_mode(const DomainFacts& f);
std::string join_list(const std::vector<std::string>& items, std::string_view sep);
nlohmann::json failure_json(const Failure& f);

}  // namespace stsguard
