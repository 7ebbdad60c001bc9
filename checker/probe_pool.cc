#include "checker/probe_pool.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <system_error>
#include <thread>

namespace stsguard {

namespace {

ProbeResult unstarted(const ProbeTarget& t, const Failure& why) {
    ProbeResult r;
    r.host = t.host;
    r.address = t.address;
    r.port = t.port;
    r.reached = ProbeStage::connect;
    r.failure = why;
    return r;
}

}  // namespace

ProbePool::ProbePool(ProbeFn probe, PoolSettings settings)
    : probe_(std::move(probe)), settings_(settings) {
    settings_.concurrency = std::max(1, settings_.concurrency);
}

ProbePool::ProbePool(const StarttlsProber& prober, PoolSettings settings)
    : ProbePool([&prober](const ProbeTarget& t, Deadline dl) { return prober.probe(t, dl); },
                settings) {}

std::vector<ProbeResult> ProbePool::run(const std::vector<ProbeTarget>& targets) const {
    std::vector<ProbeResult> results(targets.size());
    if (targets.empty()) return results;

    const Deadline deadline = std::chrono::steady_clock::now() + settings_.overall_timeout;
    std::atomic<std::size_t> next{0};

    // Each worker takes the next unprobed target until none is left; every
    // index is written by exactly one worker, so results needs no lock.
    auto worker = [&]() noexcept {
        for (;;) {
            const std::size_t i = next.fetch_add(1);
            if (i >= targets.size()) return;
            const ProbeTarget& t = targets[i];
            if (std::chrono::steady_clock::now() >= deadline) {
                results[i] = unstarted(
                    t, Failure::temp("mx-timeout",
                                     "not probed: the overall timeout of " +
                                         std::to_string(settings_.overall_timeout.count()) +
                                         " ms passed first"));
                continue;
            }
            try {
                results[i] = probe_(t, deadline);
            } catch (const std::exception& e) {
                results[i] = unstarted(t, Failure::temp("probe-internal", e.what()));
            } catch (...) {
                results[i] = unstarted(t, Failure::temp("probe-internal", "unknown exception"));
            }
        }
    };

    const std::size_t n = std::min(targets.size(), static_cast<std::size_t>(settings_.concurrency));
    {
        std::vector<std::jthread> workers;  // joined at the end of this block
        workers.reserve(n);
        for (std::size_t k = 0; k < n; ++k) {
            try {
                workers.emplace_back(worker);
            } catch (const std::system_error&) {
                break;  // fewer threads than asked; the ones we have share the work
            }
        }
        if (workers.empty()) worker();
    }
    return results;
}

}  // namespace stsguard
