// policy_service.h - the SocketmapHandler behind `stsguard serve`.
//
// For each Postfix request: classify the key (socketmap_key.h), read the
// domain's record from the cache (one LMDB read), assess it
// (refresh_rules.h) and answer (domain_view.h, policy_answer.h).  A usable
// cached state is answered at once; a due refresh is queued in the
// background (coalesced).  A domain with nothing usable is discovered now
// on the DiscoveryPool, and the reply waits at most lookup_wait; after
// that the answer is the temporary-failure answer of the map
// (on_temp_failure) and the discovery still completes into the cache.
//
// Threads: handle() runs on the loop thread; discovery completions are
// posted back to it, so all answering and logging of a request happens
// there.  Domains used are remembered in memory and written to the cache
// (last_used) in batches every last_used_flush, off the loop thread.
//
// Failures: a cache read error is logged (rate-limited) and handled as a
// miss; a full discovery queue answers as a temporary failure.
// Limits: lookup_wait, and the pool's fetch_concurrency / queue size.
#pragma once

#include <map>
#include <unordered_map>
#include <memory>
#include <set>
#include <string>

#include "policy-cache/clock.h"
#include "policy-cache/config.h"
#include "policy-cache/discovery_pool.h"
#include "policy-cache/logger.h"
#include "policy-cache/policy_store.h"
#include "postfix/event_loop.h"
#include "postfix/policy_answer.h"
#include "postfix/socketmap_key.h"
#include "postfix/service_metrics.h"
#include "postfix/socketmap_server.h"

namespace stsguard {


enum class DecisionLog { off, on };

struct ServiceSettings {
    MapSettings defaults;
    std::map<std::string, MapSettings> maps;  // per socketmap name
    Seconds lookup_wait{10};
    DecisionLog log_decisions = DecisionLog::off;

    const MapSettings& map_for(const std::string& name) const {
        auto it = maps.find(name);
        return it == maps.end() ? defaults : it->second;
    }
};

// Map settings from the configuration: the global keys, then each
// map_names entry with its overrides.
ServiceSettings service_settings(const Config& c);

class PolicyService final : public SocketmapHandler, public std::enable_shared_from_this<PolicyService> {
public:
    PolicyService(PolicyStore& store, DiscoveryPool& pool, const Clock& clock, EventLoop& loop,
                  ServiceSettings settings, const Logger& log, ServiceMetrics& metrics);

    // Cache hits and keys that are not domains are answered at once;
    // handle() runs discovery for the rest (and answers the same way).
    Answered answer_now(const SocketmapRequest& req, SocketmapReply& out) override;
    void handle(const SocketmapRequest& req, ReplyFn done) override;

    // Hands the domains used since the last call to the pool, which writes
    // their last_used in one transaction.  Call on the loop thread.
    void flush_last_used();

private:
    // Counts and (log_decisions) logs the answer.
    void finish(const DomainName* domain, const std::string& key, const Answer& a, const char* cache,
                std::chrono::steady_clock::time_point t0);
    void discover_now(const DomainName& d, const MapSettings& map, std::chrono::steady_clock::time_point t0,
                      ReplyFn done);

    PolicyStore& store_;
    DiscoveryPool& pool_;
    const Clock& clock_;
    EventLoop& loop_;
    ServiceSettings settings_;
    const Logger& log_;
    ServiceMetrics& metrics_;
    const Explain explain_;  // Answer::why is built only for the decision log
    std::unordered_map<std::string, UnixTime> used_;  // domain -> last lookup, not yet flushed
    // answer_now()'s key, record and answer, kept so that their storage
    // is reused from one request to the next; loop thread only.
    KeyClass key_;
    PolicyStore::Reading reading_;        // its transaction handle is kept, reset, between requests
    std::optional<CacheRecord> scratch_;  // fixed-width fields of the record being answered
    DomainView view_;                     // its texts: views valid inside the read only
    Answer answer_;
    EventLoop::time_point last_store_warning_{};
};

}  // namespace stsguard
