#include "postfix/service_metrics.h"

#include <ostream>
#include <sstream>
#include <string_view>

namespace stsguard {

void ServiceMetrics::count_lookup(std::string_view reply, std::string_view reason,
                                  std::chrono::nanoseconds latency) {
    double s = std::chrono::duration<double>(latency).count();
    std::lock_guard<std::mutex> l(mu_);
    if (last_count_ == nullptr || *last_reply_ != reply || *last_reason_ != reason) {
        auto r = lookups_.find(reply);
        if (r == lookups_.end()) r = lookups_.emplace(std::string(reply), Reasons{}).first;
        auto c = r->second.find(reason);
        if (c == r->second.end()) c = r->second.emplace(std::string(reason), 0).first;
        last_reply_ = &r->first;
        last_reason_ = &c->first;
        last_count_ = &c->second;
    }
    ++*last_count_;
    // One counter per bucket, cumulated when rendered: a lookup stops at
    // the first bound it fits (nearly always the first one or two).
    std::size_t i = 0;
    while (i < kLatencyBucketsSeconds.size() && s > kLatencyBucketsSeconds[i]) ++i;
    if (i < kLatencyBucketsSeconds.size()) ++buckets_[i];
    ++latency_count_;
    latency_sum_ += s;
}

void ServiceMetrics::count_cache(bool hit) { (hit ? hits_ : misses_)++; }

void ServiceMetrics::count_discovery(const std::string& outcome) {
    std::lock_guard<std::mutex> l(mu_);
    ++discoveries_[outcome];
}

std::uint64_t ServiceMetrics::lookups_total() const {
    std::lock_guard<std::mutex> l(mu_);
    std::uint64_t n = 0;
    for (const auto& [reply, reasons] : lookups_)
        for (const auto& [reason, count] : reasons) n += count;
    return n;
}

namespace {

// "# HELP" and "# TYPE" lines of one metric family.
void family(std::ostream& o, std::string_view name, std::string_view type, std::string_view help) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

// A family with one unlabelled series.
void single(std::ostream& o, std::string_view name, std::string_view type, std::string_view help,
            std::uint64_t value) {
    family(o, name, type, help);
    o << name << ' ' << value << '\n';
}

}  // namespace

std::string ServiceMetrics::render(const GaugeSnapshot& g) const {
    std::ostringstream o;
    std::lock_guard<std::mutex> l(mu_);
    family(o, "stsguard_lookups_total", "counter", "Socketmap lookups by reply and reason.");
    for (const auto& [reply, reasons] : lookups_)
        for (const auto& [reason, count] : reasons)
            o << "stsguard_lookups_total{reply=\"" << reply << "\",reason=\"" << reason << "\"} " << count << "\n";
    family(o, "stsguard_cache_lookups_total", "counter", "Cache lookups by result.");
    o << "stsguard_cache_lookups_total{result=\"hit\"} " << hits_.load() << "\n"
      << "stsguard_cache_lookups_total{result=\"miss\"} " << misses_.load() << "\n";
    family(o, "stsguard_discoveries_total", "counter", "Policy discoveries by outcome code.");
    for (const auto& [k, v] : discoveries_) o << "stsguard_discoveries_total{outcome=\"" << k << "\"} " << v << "\n";
    family(o, "stsguard_lookup_duration_seconds", "histogram", "Time from request to reply.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kLatencyBucketsSeconds.size(); ++i)
        o << "stsguard_lookup_duration_seconds_bucket{le=\"" << kLatencyBucketsSeconds[i] << "\"} "
          << (cumulative += buckets_[i]) << "\n";
    o << "stsguard_lookup_duration_seconds_bucket{le=\"+Inf\"} " << latency_count_ << "\n"
      << "stsguard_lookup_duration_seconds_sum " << latency_sum_ << "\n"
      << "stsguard_lookup_duration_seconds_count " << latency_count_ << "\n";
    family(o, "stsguard_cache_entries", "gauge", "Cached domains by policy mode.");
    o << "stsguard_cache_entries{mode=\"enforce\"} " << g.cache_enforce << "\n"
      << "stsguard_cache_entries{mode=\"testing\"} " << g.cache_testing << "\n"
      << "stsguard_cache_entries{mode=\"none\"} " << g.cache_none << "\n"
      << "stsguard_cache_entries{mode=\"no-policy\"} " << g.cache_no_policy << "\n";
    single(o, "stsguard_open_connections", "gauge", "Open socketmap connections.", g.open_connections);
    family(o, "stsguard_discoveries_in_flight", "gauge", "Discoveries running and queued.");
    o << "stsguard_discoveries_in_flight{state=\"running\"} " << g.discoveries_running << "\n"
      << "stsguard_discoveries_in_flight{state=\"queued\"} " << g.discoveries_queued << "\n";
    single(o, "stsguard_discovery_workers", "gauge", "Discovery worker threads started (up to fetch_concurrency).",
           g.discovery_workers);
    single(o, "stsguard_discovery_worker_start_failures_total", "counter", "Workers that could not be started.",
           g.discovery_worker_start_failures);
    single(o, "stsguard_cache_writes_total", "counter", "Cache writes (discoveries, refreshes, last-use updates).",
           g.cache_writes);
    single(o, "stsguard_cache_commits_total", "counter", "Cache write transactions committed (one fsync each).",
           g.cache_commits);
    return o.str();
}

}  // namespace stsguard
