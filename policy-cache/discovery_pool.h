// discovery_pool.h - bounded, coalescing workers for refreshes.
//
// DNS (ldns) and HTTPS (curl easy handles) block, so refreshes run on
// worker threads owned by this object (nothing is started behind anyone's
// back: the owner creates the pool and joins it by destroying it).  Each
// worker owns its own DnsResolver and PolicyFetcher, made by the factory,
// because ldns resolvers are not thread-safe.  One worker starts with the
// pool (a factory that fails is a start-up error); more start, up to
// `threads`, only when jobs queue up with no idle worker, and then stay.
// So a service answering from its cache starts fast and stays small.
//
// Coalescing: while a refresh of a domain is queued or running, further
// submissions for it only add their callback; all callbacks get the one
// result.  So a thousand concurrent lookups of a new domain cost one
// discovery, and at most `threads` discoveries are in flight at once
// (fetch_concurrency).
//
// Failures: a full queue refuses the submission (Submit::queue_full) and
// the caller answers as for a temporary failure.  Callbacks run on a
// worker thread and must not throw (an exception is caught and dropped).
// Limits: threads, max_queue.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "policy-cache/refresher.h"

namespace stsguard {

struct WorkerAdapters {
    std::unique_ptr<DnsResolver> dns;          // declared first: the fetcher uses it
    std::unique_ptr<PolicyFetcher> fetcher;
};
using AdapterFactory = std::function<WorkerAdapters()>;

struct PoolStats {
    std::size_t queued = 0;
    std::size_t running = 0;
    std::size_t max_running_seen = 0;
    std::uint64_t started = 0;
    std::uint64_t coalesced = 0;
    std::uint64_t refused = 0;
    std::uint64_t completed = 0;
    std::size_t workers = 0;                 // started so far (<= threads)
    std::uint64_t worker_start_failures = 0; // factory failed after start-up
};

class DiscoveryPool {
public:
    using Done = std::function<void(const RefreshResult&)>;
    enum class Submit { started, joined, queue_full };

    // Starts the first worker (each worker calls factory() once); throws
    // (a start-up error) if the factory fails.  Later workers that cannot
    // be made are counted in worker_start_failures; the pool goes on with
    // the workers it has.
    DiscoveryPool(const Refresher& refresher, const AdapterFactory& factory, int threads,
                  std::size_t max_queue);
    ~DiscoveryPool();  // stops accepting, finishes running jobs, joins
    DiscoveryPool(const DiscoveryPool&) = delete;
    DiscoveryPool& operator=(const DiscoveryPool&) = delete;

    Submit submit(const DomainName& domain, Done done);

    // Runs a task on a worker (for the cache sweep and last-used flushes);
    // not coalesced.  Returns false when the queue is full or stopping.
    bool post(std::function<void()> task);

    PoolStats stats() const;

private:
    struct Job {
        std::optional<DomainName> domain;   // refresh job
        std::function<void()> task;         // or a plain task
    };
    void worker_main(WorkerAdapters adapters);
    // With mu_ held, after queueing: start a worker if jobs outnumber the
    // idle workers and fewer than max_threads_ run.
    void grow_locked();

    const Refresher& refresher_;
    const AdapterFactory factory_;
    const std::size_t max_threads_;
    const std::size_t max_queue_;
    std::size_t idle_ = 0;  // workers waiting for a job
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job> queue_;
    std::map<std::string, std::vector<Done>> waiting_;  // domain -> callbacks (queued or running)
    bool stopping_ = false;
    PoolStats stats_;
    std::vector<std::thread> threads_;
};

}  // namespace stsguard
