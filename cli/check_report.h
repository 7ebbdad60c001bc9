// check_report.h - output of `stsguard check` and `stsguard dry-run`:
// the JSON documents (schema in docs/checks.md), the terminal tables, and
// the "what would serve answer" line.
//
// The Postfix answer is computed the way `serve` computes it for a domain
// it has never seen (a cold cache): the fresh discovery and MX lookup go
// through apply_attempt() / apply_mx() (the refresher's record update),
// assess() and view_of() (the cache's view) and decide_answer() with the
// map's settings from service_settings(cfg) - the functions serve runs,
// so check and serve agree by construction.  Not modelled: a discovery
// slower than lookup_wait (serve then answers the map's temporary-failure
// answer at once and caches the result for the next lookup).
//
// Failures: none.  Limits: none.
#pragma once

#include <iosfwd>
#include <string>

#include <nlohmann/json.hpp>

#include "checker/checks.h"
#include "checker/dry_run.h"
#include "cli/commands.h"
#include "cli/term.h"
#include "policy-cache/config.h"

namespace stsguard {

struct PostfixAnswer {
    std::string map;          // socketmap name, e.g. "postfix"
    std::string reply;        // the socketmap reply as sent: "OK secure match=...", "NOTFOUND ", "TEMP ..."
    std::string reason_code;  // decide_answer()'s why_code
    std::string reason;
};

PostfixAnswer cold_cache_answer(const DomainFacts& f, const Config& cfg, const std::string& map);

ExitCode exit_code_of(DomainStatus s);

// {"status", "summary", "details", "fix" (null when none), "findings"}
nlohmann::json check_json(const CheckResult& c);
nlohmann::json postfix_answer_json(const PostfixAnswer& a);
// One element of "domains" of `check --json`.
nlohmann::json domain_json(const DomainFacts& f, const DomainReport& r, const PostfixAnswer& a);

enum class Detail { normal, verbose };

// The summary line, then the table of checks (fixes under failing rows;
// with verbose, every finding and every probe).
void print_domain(std::ostream& out, Color color, const DomainFacts& f, const DomainReport& r,
                  const PostfixAnswer& a, Detail detail);
// "DOMAIN: CRITICAL - ..." (no newline)
std::string summary_line(Color color, const DomainFacts& f, const DomainReport& r);

// dry-run
nlohmann::json dry_run_json(const std::vector<DryRunResult>& results, const DestinationList& input,
                            const Config& cfg);
void print_dry_run(std::ostream& out, Color color, const std::vector<DryRunResult>& results,
                   const DestinationList& input);

}  // namespace stsguard
