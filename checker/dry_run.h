// dry_run.h - `stsguard dry-run`: which destinations would break if their
// MTA-STS policy were enforced.
//
// Input (read_destinations): one destination per line, in either form,
// mixed freely:
//   - a domain (or an address user@domain: the domain is taken); '#'
//     starts a comment, blank lines are skipped;
//   - a Postfix log line of the smtp(8) delivery agent
//     ("postfix/smtp[PID]: QUEUEID: to=<user@domain>, relay=..."), any
//     syslog_name prefix ("postfix-out/smtp[...]").  The domain of the first
//     to=<...> is taken.  Lines of other Postfix programs are ignored:
//     lmtp(8), local(8), virtual(8) and pipe(8) deliver locally or to
//     configured next hops, where smtp_tls_policy_maps (and so MTA-STS)
//     does not apply; qmgr/cleanup lines carry no recipient.
//     Recipients without a domain (to=<root>) or with an address literal
//     (user@[192.0.2.1]) are skipped: MTA-STS needs a domain.
// Domains are normalized (DomainName) and deduplicated in first-seen
// order, with the number of lines naming each.
//
// Each domain is then checked with the same gather and check functions
// as `stsguard check` (scope delivery: discovery, and for a policy in mode
// testing or enforce the MX alignment and STARTTLS certificate checks),
// and assess_delivery() says whether delivery would succeed under enforce.
// Verdicts, worst first (the report's sort order): would-fail, degraded,
// unknown (a lookup timed out or failed temporarily, no MX reachable from
// here: never reported as broken), ok, mode-none, no-policy.
//
// Threads: up to `concurrency` std::thread workers that run_dry_run()
// starts and joins before returning; each has its own DnsResolver and
// PolicyFetcher (made by the factory on the calling thread, as ldns and
// curl handles are not thread-safe).  STARTTLS probes of all workers
// together are limited to probe_concurrency at once; each probe has its
// own timeout.  The progress callback is called under a lock, from
// worker threads.
//
// Failures: read_destinations() reports bad lines (line number, text,
// why) and goes on; run_dry_run() fails only if the factory cannot make
// adapters (dry-run-setup).  Limits: input lines over kMaxInputLine bytes are refused;
// at most kMaxInputProblems bad lines are kept (all are counted).
#pragma once

#include <cstddef>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checker/check_gather.h"
#include "checker/checks.h"
#include "policy-cache/discovery_pool.h"  // WorkerAdapters, AdapterFactory: as serve makes them

namespace stsguard {

inline constexpr std::size_t kMaxInputLine = 8192;
inline constexpr std::size_t kMaxInputProblems = 100;

struct Destination {
    DomainName domain;
    std::size_t count = 1;       // input lines that named it
    std::size_t first_line = 0;  // 1-based
};

struct InputProblem {
    std::size_t line = 0;
    std::string text;  // printable(), cut
    std::string why;
};

struct DestinationList {
    std::vector<Destination> destinations;  // deduplicated, first-seen order
    std::size_t lines = 0;                  // lines read
    std::size_t log_lines = 0;              // smtp delivery log lines used
    std::size_t ignored = 0;                // other log lines, recipients without a domain
    std::size_t problem_count = 0;          // all bad lines
    std::vector<InputProblem> problems;     // the first kMaxInputProblems
};

DestinationList read_destinations(std::istream& in);

// What one input line names.  Exposed for tests.
struct LineParse {
    enum class Kind { blank, domain, log_recipient, ignored, invalid } kind = Kind::blank;
    std::optional<DomainName> domain;
    std::string why;  // for invalid / ignored
};
LineParse parse_destination_line(std::string_view line);

enum class DryVerdict { would_fail, degraded, unknown, ok, mode_none, no_policy };
const char* dry_verdict_name(DryVerdict v);  // "would-fail" | "degraded" | ... | "no-policy"

struct DryRunResult {
    Destination dest;
    DomainFacts facts;
    DeliveryAssessment delivery;
    DryVerdict verdict = DryVerdict::unknown;
    CheckResult mx_alignment;
    CheckResult mx_certificates;
    // The policy is in mode enforce, so the verdict applies to mail now;
    // otherwise it says what would happen after switching to enforce.
    bool enforced_now = false;
};

DryVerdict dry_verdict(const DeliveryAssessment& a);

// Judges gathered facts (pure; also used by tests).
DryRunResult judge_destination(const Destination& d, DomainFacts facts);

using ProgressFn = std::function<void(std::size_t done, std::size_t total, const DomainName& last)>;

struct DryRunSettings {
    int concurrency = 8;        // domains at once (check_concurrency)
    int probe_concurrency = 8;  // STARTTLS probes at once, over all domains
    std::chrono::milliseconds probe_timeout{15000};
    int smtp_port = 25;
};

// Results in input order.  The factory is called on the calling thread,
// once per worker; an exception from it or a null adapter fails the run
// ("dry-run-setup") before any domain is checked.
Lookup<std::vector<DryRunResult>> run_dry_run(const std::vector<Destination>& dests, const AdapterFactory& make,
                                              const ProbeFn& probe, const Clock& clock, const DryRunSettings& s,
                                              const ProgressFn& progress = nullptr);

// Worst first (DryVerdict order), then by how often the input named the
// domain, then by name.
void sort_by_breakage(std::vector<DryRunResult>& results);

// would-fail -> critical, unknown -> unknown, degraded -> warning, else ok.
DomainStatus dry_run_status(const std::vector<DryRunResult>& results);

}  // namespace stsguard
