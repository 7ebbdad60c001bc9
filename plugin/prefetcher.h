// prefetcher.h - the milter's bridge to the shared policy cache: read a
// recipient domain's record, and when it is not fresh start discovery in
// the background, waiting for it at most a given time.
//
// Discovery goes through the DiscoveryPool (coalesced: many recipients of
// one new domain cost one discovery) and the Refresher, which applies the
// RFC 8461 cache rules and writes the result to the LMDB cache that
// `stsguard serve` reads, so the first delivery to a new destination
// already finds its policy (RFC 8461 5: a policy not yet cached cannot
// protect the message an attacker chooses to downgrade).  Back-off is the
// cache's: a domain whose last discovery failed is not asked again before
// its next_refresh, however many recipients name it.
//
// Threads: thread-safe; called from libmilter's per-connection threads.
// Discovery completions arrive on pool threads and wake the waiters
// through one shared condition variable.  stop() wakes every waiter at
// once and makes later calls not wait (shutdown must not hang on a
// DNS or HTTPS timeout).
// Failures: a cache read error is logged (at most every 10 s) and treated
// as "nothing cached"; a full discovery queue is logged the same way and
// the session goes on without discovery.  Nothing throws.
// Limits: wait is bounded by the caller (milter_wait).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "policy-cache/cache_record.h"
#include "policy-cache/clock.h"
#include "policy-cache/discovery_pool.h"
#include "policy-cache/domain_name.h"
#include "policy-cache/logger.h"
#include "policy-cache/policy_store.h"

namespace stsguard {

struct PrefetchCounters {
    std::atomic<std::uint64_t> fresh{0};       // cache already fresh: nothing started
    std::atomic<std::uint64_t> started{0};     // discovery started (or joined one running)
    std::atomic<std::uint64_t> refused{0};     // discovery queue full
    std::atomic<std::uint64_t> completed_in_wait{0};
    std::atomic<std::uint64_t> wait_expired{0};
    std::atomic<std::uint64_t> cache_errors{0};
};

class Prefetcher {
public:
    // store, pool, clock and log must outlive the Prefetcher.
    Prefetcher(PolicyStore& store, DiscoveryPool& pool, const Clock& clock, const Logger& log);
    ~Prefetcher();
    Prefetcher(const Prefetcher&) = delete;
    Prefetcher& operator=(const Prefetcher&) = delete;

    enum class Source {
        cache,    // the cache was fresh (or discovery was not possible)
        fetched,  // discovery finished within the wait: its record
        pending,  // discovery runs on; the (possibly absent) cached record
    };
    struct Seen {
        std::optional<CacheRecord> record;
        Source source = Source::cache;
    };

    // Reads the cache; if the domain needs discovery (milter_verdict.h
    // needs_discovery), submits it and waits up to `wait` for the result.
    Seen observe(const DomainName& domain, std::chrono::milliseconds wait);

    // The cached record only (no discovery).
    std::optional<CacheRecord> read(const DomainName& domain);

    // Wakes every waiter; observe() no longer waits afterwards.
    void stop();

    const PrefetchCounters& counters() const { return counters_; }

private:
    struct Hub;  // mutex + condition variable shared with pool callbacks

    void warn_rate_limited(const std::string& msg);

    PolicyStore& store_;
    DiscoveryPool& pool_;
    const Clock& clock_;
    const Logger& log_;
    std::shared_ptr<Hub> hub_;
    PrefetchCounters counters_;
    std::mutex warn_mu_;
    std::chrono::steady_clock::time_point last_warning_{};
};

}  // namespace stsguard
