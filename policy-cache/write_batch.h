// write_batch.h - group commit: concurrent store writes share one commit.
//
// Each committed LMDB write transaction costs an fdatasync of the data
// plus a synchronous meta-page write, and LMDB has one writer at a time.
// When many threads write at once (the serve workers, each finishing a
// discovery with PolicyStore::update()), one transaction per call makes
// them queue behind each other's fsync.  WriteBatcher lets them share it:
//
//  - leader/follower, no extra thread: a caller who finds no batch running
//    is the leader; it takes every request queued so far (at most
//    kMaxWriteBatch), runs the batch in ONE write transaction, publishes
//    each request's result, wakes its waiters and hands the leader role to
//    the oldest request still queued.  Followers sleep on their own
//    condition variable until their result is published or they are made
//    leader.  A request that arrives while a batch runs waits for the next
//    one; a lone writer commits at once, exactly as before.
//  - isolation: with more than one request each body runs in its own
//    nested transaction (lmdb::Txn::begin_nested).  A body that fails (its
//    Failure, an LMDB code, or an exception) aborts only its child and
//    only its caller sees the failure (an exception is rethrown in the
//    caller's thread).  A body that changed nothing aborts its child.
//    Then the batch commits once; if that commit fails, every request
//    that had not failed by itself gets the failure (a request that changed
//    nothing still saw the batch's earlier, now lost, changes).
//  - per call, the same contract as one transaction per call: when write()
//    returns success the change is committed (fsync'd under EnvSync::full).
//  - map growth: a body hitting MDB_MAP_FULL aborts its child; the rest of
//    the batch commits, the map is grown (hooks.grow_map) and the bodies
//    that did not fit run again on fresh input.  MDB_MAP_FULL from the
//    batch's own commit aborts it: grow, then every body runs again.
//    MDB_MAP_RESIZED (another process grew the map): adopt, run again.
//    At most max_attempts growths/adoptions per batch.  Bodies must be
//    pure and may run more than once (and on the leader's thread).
//
// Failures: the caller's own, as the store reports them (lmdb_failure()),
//   e.g. cache-full when the map cannot grow (only the requests that did
//   not fit get it, unless the batch's commit itself did not fit).
// Limits: kMaxWriteBatch requests per transaction; the Env must not use
//   MDB_WRITEMAP; a body must not call back into the store (the leader
//   would wait for itself).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "policy-cache/lmdb_env.h"
#include "policy-cache/outcome.h"

namespace stsguard {

// Requests per transaction: bounds the leader's extra latency and the
// rework after a failed commit; 16 serve workers never reach it.
inline constexpr std::size_t kMaxWriteBatch = 64;

// What a write body reports about its work inside the transaction.
struct WriteStep {
    int rc = 0;                      // LMDB code of the failing call
    std::string during;              // what it was doing
    std::optional<Failure> failure;  // a non-LMDB failure (encode, key mismatch)
    bool changed = true;             // false: nothing written, abort instead of commit
};
using WriteBody = std::function<WriteStep(lmdb::Txn&)>;

struct WriteCounters {
    std::uint64_t writes = 0;   // requests submitted
    std::uint64_t batches = 0;  // batches led (one or more transactions each)
    std::uint64_t commits = 0;  // write transactions committed (one fsync each)
};

class WriteBatcher {
public:
    // Called by the leader with no transaction of its own open; each takes
    // the map lock exclusively.  A Failure fails the requests waiting for
    // the room or the remap.
    struct Hooks {
        std::function<std::optional<Failure>()> grow_map;        // after MDB_MAP_FULL
        std::function<std::optional<Failure>()> adopt_map_size;  // after MDB_MAP_RESIZED
    };

    // env and map_lock must outlive the batcher; transactions are taken
    // under map_lock's shared side.
    WriteBatcher(const lmdb::Env& env, lmdb::MapLock& map_lock, Hooks hooks, int max_attempts);
    WriteBatcher(const WriteBatcher&) = delete;
    WriteBatcher& operator=(const WriteBatcher&) = delete;

    // Runs body in the next batch and returns its own result once the
    // batch is committed (or failed).  Rethrows what body threw.
    std::optional<Failure> write(const WriteBody& body);

    WriteCounters counters() const;

    // Test hook: blocks until at least n requests are queued behind the
    // running batch (they will share the next one).  No polling.
    void wait_until_queued(std::size_t n) const;

private:
    struct Request;
    enum class Ran { failed, unchanged, changed, no_room, resized };
    enum class Retry { none, grow, adopt };

    void run_batch(std::span<Request*> batch) noexcept;
    std::size_t run_once(std::span<Request*> pending, Retry& retry);
    Ran run_request(Request& r, lmdb::Txn& parent, bool nested);
    Failure fail(int rc, std::string_view during) const;

    const lmdb::Env& env_;
    lmdb::MapLock& map_lock_;
    Hooks hooks_;
    int max_attempts_;

    mutable std::mutex m_;  // guards the queue and the leader role
    mutable std::condition_variable queued_cv_;
    Request* head_ = nullptr;  // FIFO of requests no leader has taken yet
    Request* tail_ = nullptr;
    std::size_t queued_ = 0;
    mutable std::size_t watchers_ = 0;  // threads in wait_until_queued()
    bool leading_ = false;              // a leader is running a batch

    std::atomic<std::uint64_t> writes_{0}, batches_{0}, commits_{0};
};

}  // namespace stsguard
