// service_metrics.h - counters of the policy service, rendered in the
// Prometheus text exposition format (version 0.0.4).
//
// Updated on the loop thread (lookups) and from workers (discoveries),
// hence atomics and a mutex for the labelled maps.  Rendering is pure
// text assembly of numbers and fixed label values we choose ourselves
// (answer kinds and reason codes), so no escaping of foreign input.
//
// Failures: none.  Limits: label values come from fixed code tables, so
// the number of series is bounded.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace stsguard {

inline constexpr std::array<double, 12> kLatencyBucketsSeconds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};

struct GaugeSnapshot {
    std::uint64_t open_connections = 0;
    std::uint64_t cache_entries = 0;
    std::uint64_t cache_enforce = 0, cache_testing = 0, cache_none = 0, cache_no_policy = 0;
    std::uint64_t discoveries_running = 0, discoveries_queued = 0;
    std::uint64_t discovery_workers = 0, discovery_worker_start_failures = 0;
    // Cache writes since start and the transactions (fsyncs) that
    // committed them: fewer commits than writes when writes were batched.
    std::uint64_t cache_writes = 0, cache_commits = 0;
};

class ServiceMetrics {
public:
    // reply: "OK" | "NOTFOUND" | "TEMP" | "PERM"; reason: a why_code.
    void count_lookup(std::string_view reply, std::string_view reason, std::chrono::nanoseconds latency);
    void count_cache(bool hit);
    void count_discovery(const std::string& outcome);  // discovery reason code
    std::string render(const GaugeSnapshot& gauges) const;

    std::uint64_t lookups_total() const;

private:
    mutable std::mutex mu_;
    // reply -> reason -> count; looked up by string_view, no copies per lookup.
    using Reasons = std::map<std::string, std::uint64_t, std::less<>>;
    std::map<std::string, Reasons, std::less<>> lookups_;
    // The counter the previous lookup went to: consecutive lookups nearly
    // always share reply and reason, and map nodes never move.
    const std::string* last_reply_ = nullptr;
    const std::string* last_reason_ = nullptr;
    std::uint64_t* last_count_ = nullptr;
    std::map<std::string, std::uint64_t> discoveries_;
    // Lookups per latency bucket, not cumulative: those above the one
    // before and at most its bound; render() sums them for Prometheus.
    std::array<std::uint64_t, kLatencyBucketsSeconds.size()> buckets_{};
    std::uint64_t latency_count_ = 0;
    double latency_sum_ = 0;
    std::atomic<std::uint64_t> hits_{0}, misses_{0};
};

}  // namespace stsguard
