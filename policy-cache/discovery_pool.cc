#include "policy-cache/discovery_pool.h"

#include <stdexcept>
#include <system_error>

namespace stsguard {

DiscoveryPool::DiscoveryPool(const Refresher& refresher, const AdapterFactory& factory, int threads,
                             std::size_t max_queue)
    : refresher_(refresher),
      factory_(factory),
      max_threads_(threads < 1 ? 0 : static_cast<std::size_t>(threads)),
      max_queue_(max_queue) {
    if (threads < 1) throw std::invalid_argument("discovery pool needs at least one thread");
    WorkerAdapters first = factory_();
    if (!first.dns || !first.fetcher)
        throw std::runtime_error("cannot create DNS resolver / HTTPS fetcher for a worker");
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back(&DiscoveryPool::worker_main, this, std::move(first));
    stats_.workers = threads_.size();
}

void DiscoveryPool::grow_locked() {
    if (queue_.size() <= idle_ || threads_.size() >= max_threads_) return;
    WorkerAdapters a;
    try {
        a = factory_();
    } catch (...) {
        // counted below, like a factory that returns nothing
    }
    if (!a.dns || !a.fetcher) {
        ++stats_.worker_start_failures;
        return;
    }
    try {
        threads_.emplace_back(&DiscoveryPool::worker_main, this, std::move(a));
    } catch (const std::system_error&) {
        ++stats_.worker_start_failures;  // e.g. EAGAIN: the workers we have go on
        return;
    }
    stats_.workers = threads_.size();
}

DiscoveryPool::~DiscoveryPool() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
}

DiscoveryPool::Submit DiscoveryPool::submit(const DomainName& domain, Done done) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = waiting_.find(domain.str());
    if (it != waiting_.end()) {
        if (done) it->second.push_back(std::move(done));
        ++stats_.coalesced;
        return Submit::joined;
    }
    if (stopping_ || queue_.size() >= max_queue_) {
        ++stats_.refused;
        return Submit::queue_full;
    }
    auto& cbs = waiting_[domain.str()];
    if (done) cbs.push_back(std::move(done));
    queue_.push_back(Job{domain, {}});
    stats_.queued = queue_.size();
    grow_locked();
    cv_.notify_one();
    return Submit::started;
}

bool DiscoveryPool::post(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() >= max_queue_) return false;
    queue_.push_back(Job{std::nullopt, std::move(task)});
    stats_.queued = queue_.size();
    grow_locked();
    cv_.notify_one();
    return true;
}

PoolStats DiscoveryPool::stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
}

void DiscoveryPool::worker_main(WorkerAdapters adapters) {
    for (;;) {
        Job job;
        {
            std::unique_lock<std::mutex> lock(mu_);
            ++idle_;
            cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            --idle_;
            if (queue_.empty()) return;  // stopping and drained
            job = std::move(queue_.front());
            queue_.pop_front();
            stats_.queued = queue_.size();
            ++stats_.running;
            if (job.domain) ++stats_.started;
            stats_.max_running_seen = std::max(stats_.max_running_seen, stats_.running);
        }
        if (!job.domain) {
            try {
                job.task();
            } catch (...) {
                // a task must not take the worker down
            }
            std::lock_guard<std::mutex> lock(mu_);
            --stats_.running;
            continue;
        }
        RefreshResult result = refresher_.refresh(*job.domain, *adapters.dns, *adapters.fetcher);
        std::vector<Done> callbacks;
        {
            std::lock_guard<std::mutex> lock(mu_);
            auto it = waiting_.find(job.domain->str());
            if (it != waiting_.end()) {
                callbacks = std::move(it->second);
                waiting_.erase(it);
            }
            --stats_.running;
            ++stats_.completed;
        }
        for (auto& cb : callbacks) {
            try {
                cb(result);
            } catch (...) {
                // callbacks must not throw; never let one kill the worker
            }
        }
    }
}

}  // namespace stsguard
