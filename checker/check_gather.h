// check_gather.h - collect the facts about one domain that the checks judge.
//
// One code path with the service: the TXT record and the policy come from
// discover() (policy-cache/discovery.h) through the same DnsResolver and
// PolicyFetcher adapters `serve` uses; MX (implicit MX included),
// addresses, TLSA and the TLSRPT record from the same DnsResolver; the
// cached copy from the PolicyStore opened read-only.  Every address of
// every MX host is probed with STARTTLS through a ProbePool, so a domain
// with several MX hosts takes about its slowest probe, not the sum.
//
// Threads: gather_facts() uses env.dns and env.fetcher on the calling
// thread only (ldns resolvers and curl handles are not thread-safe); the
// pool's threads only run env.probe, which must be thread-safe
// (StarttlsProber::probe is).  The pool's threads end before it returns.
//
// Failures: none - every lookup's outcome is kept in the facts.
// Limits: at most kMaxProbedHosts MX hosts and kMaxProbedAddresses
// addresses per host are probed (a hostile MX set cannot make a check
// run for hours); each probe has its own timeout; the whole probe run
// stops starting probes after probe_timeout per round of
// probe_concurrency probes (or probe_overall when set).
#pragma once

#include <chrono>
#include <string>

#include "checker/checks.h"
#include "checker/probe_pool.h"
#include "policy-cache/clock.h"
#include "policy-cache/dns_resolver.h"
#include "policy-cache/https_fetcher.h"
#include "policy-cache/policy_store.h"

namespace stsguard {

inline constexpr std::size_t kMaxProbedHosts = 20;
inline constexpr std::size_t kMaxProbedAddresses = 8;

struct CheckEnv {
    DnsResolver& dns;
    PolicyFetcher& fetcher;
    const Clock& clock;
    ProbeFn probe;                                  // one STARTTLS probe; thread-safe
    int probe_concurrency = 8;
    std::chrono::milliseconds probe_timeout{15000};
    std::chrono::milliseconds probe_overall{0};     // 0: probe_timeout per round of probes, + 2 s
    const PolicyStore* store = nullptr;             // nullptr: no cache (store_note says why)
    std::string store_note{};
    int smtp_port = 25;
};

// full: every check (stsguard check).  delivery: what dry-run needs - the
// discovery, and MX / addresses / probes only when a policy in mode testing
// or enforce applies; no TLSRPT, TLSA or cache.
enum class CheckScope { full, delivery };

DomainFacts gather_facts(const DomainName& domain, const CheckEnv& env, CheckScope scope);

}  // namespace stsguard
