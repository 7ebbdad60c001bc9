// refresher.h - one refresh of one domain: DNS and HTTPS outside any
// transaction, then the outcome applied in one short write transaction.
//
// This is the only place where discovery results reach the cache, so the
// service, `stsguard cache refresh`, the milter and the background sweep
// all follow refresh_rules.h the same way.  The record is re-read inside
// the write transaction and the attempt applied to that copy, so a refresh
// by another process in between is never lost.
//
// Failures: a store failure (full disk, corrupt file) is returned beside
// the record computed in memory, so a lookup can still be answered;
// discovery failures are part of the record (last_outcome).
// Limits: those of the adapters passed in; one refresh costs at most one
// TXT query, one HTTPS fetch (plus the policy host's A/AAAA) and one MX query.
#pragma once

#include <functional>
#include <optional>

#include "policy-cache/cache_record.h"
#include "policy-cache/clock.h"
#include "policy-cache/dns_resolver.h"
#include "policy-cache/https_fetcher.h"
#include "policy-cache/policy_store.h"
#include "policy-cache/refresh_rules.h"

namespace stsguard {

struct RefreshResult {
    std::optional<CacheRecord> record;       // as stored (or as it would be, on store failure)
    std::optional<Failure> store_failure;    // reading or writing the cache failed
    std::optional<Attempt> attempt;          // what discovery saw (absent for MX-only refreshes)
};

class Refresher {
public:
    // jitter: draws a number in [0, 1) for spreading refreshes; tests pass
    // a constant.  store and clock must outlive the Refresher.
    Refresher(PolicyStore& store, const Clock& clock, RefreshSettings settings,
              std::function<double()> jitter);

    // Full refresh: TXT, the policy if needed, and the MX set when a policy
    // with mode enforce or testing is held and its MX set is stale.
    RefreshResult refresh(const DomainName& domain, DnsResolver& dns, PolicyFetcher& fetcher) const;

    const RefreshSettings& settings() const { return settings_; }
    const Clock& clock() const { return clock_; }
    PolicyStore& store() const { return store_; }

private:
    PolicyStore& store_;
    const Clock& clock_;
    RefreshSettings settings_;
    std::function<double()> jitter_;
};

}  // namespace stsguard
