#include "plugin/prefetcher.h"

#include "plugin/milter_verdict.h"

namespace stsguard {
namespace {

constexpr auto kWarningInterval = std::chrono::seconds(10);

// One observe() call's view of its discovery; shared with the pool's
// callback, which may run after the caller stopped waiting.
struct Waiter {
    bool done = false;
    std::optional<CacheRecord> record;
};

}  // namespace

struct Prefetcher::Hub {
    std::mutex mu;
    std::condition_variable cv;
    bool stopping = false;
};

Prefetcher::Prefetcher(PolicyStore& store, DiscoveryPool& pool, const Clock& clock, const Logger& log)
    : store_(store), pool_(pool), clock_(clock), log_(log), hub_(std::make_shared<Hub>()) {}

Prefetcher::~Prefetcher() { stop(); }

void Prefetcher::stop() {
    {
        std::lock_guard<std::mutex> l(hub_->mu);
        hub_->stopping = true;
    }
    hub_->cv.notify_all();
}

void Prefetcher::warn_rate_limited(const std::string& msg) {
    std::lock_guard<std::mutex> l(warn_mu_);
    const auto now = std::chrono::steady_clock::now();
    if (last_warning_ != std::chrono::steady_clock::time_point{} && now - last_warning_ < kWarningInterval)
        return;
    last_warning_ = now;
    log_.warning(msg);
}

std::optional<CacheRecord> Prefetcher::read(const DomainName& domain) {
    auto got = store_.get(domain);
    if (got.found()) return std::move(got.value());
    if (got.failed()) {
        ++counters_.cache_errors;
        warn_rate_limited("cache read for " + domain.str() + ": " + got.failure().reason);
    }
    return std::nullopt;
}

Prefetcher::Seen Prefetcher::observe(const DomainName& domain, std::chrono::milliseconds wait) {
    Seen seen;
    seen.record = read(domain);
    if (!needs_discovery(seen.record, clock_.now())) {
        ++counters_.fresh;
        return seen;
    }

    auto waiter = std::make_shared<Waiter>();
    std::shared_ptr<Hub> hub = hub_;
    auto done = [hub, waiter](const RefreshResult& r) {
        std::optional<CacheRecord> rec;
        try {
            rec = r.record;
        } catch (...) {
            // out of memory: the waiter falls back to its cached record
        }
        {
            std::lock_guard<std::mutex> l(hub->mu);
            waiter->done = true;
            waiter->record = std::move(rec);
        }
        hub->cv.notify_all();
    };
    const auto sub = pool_.submit(domain, std::move(done));
    if (sub == DiscoveryPool::Submit::queue_full) {
        ++counters_.refused;
        warn_rate_limited("discovery queue full: no prefetch for " + domain.str() +
                          " (discovery_queue_max, fetch_concurrency)");
        return seen;
    }
    ++counters_.started;
    seen.source = Source::pending;
    if (sub == DiscoveryPool::Submit::started)
        log_.info(domain.str() + ": no fresh MTA-STS state cached; discovery started");
    if (wait <= std::chrono::milliseconds::zero()) return seen;

    std::unique_lock<std::mutex> l(hub->mu);
    const auto deadline = std::chrono::steady_clock::now() + wait;
    hub->cv.wait_until(l, deadline, [&] { return waiter->done || hub->stopping; });
    if (!waiter->done) {
        ++counters_.wait_expired;
        return seen;
    }
    ++counters_.completed_in_wait;
    // A store failure still yields the record as computed in memory;
    // without any record (should not happen) keep what the cache had.
    if (waiter->record) seen.record = std::move(waiter->record);
    seen.source = Source::fetched;
    return seen;
}

}  // namespace stsguard
