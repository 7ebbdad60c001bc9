// write_batch.cc - see write_batch.h.
#include "policy-cache/write_batch.h"

#include <algorithm>
#include <array>
#include <exception>
#include <utility>

namespace stsguard {

struct WriteBatcher::Request {
    explicit Request(const WriteBody& b) : body(b) {}
    const WriteBody& body;
    // Written by the leader outside m_, read by the caller once published:
    std::optional<Failure> failure;
    std::exception_ptr thrown;
    bool done = false;  // the result is final (the leader's bookkeeping)
    // Under m_:
    Request* next = nullptr;
    bool published = false;
    bool lead = false;  // handed the leader role
    std::condition_variable cv;
};

WriteBatcher::WriteBatcher(const lmdb::Env& env, lmdb::MapLock& map_lock, Hooks hooks,
                           int max_attempts)
    : env_(env), map_lock_(map_lock), hooks_(std::move(hooks)), max_attempts_(max_attempts) {}

Failure WriteBatcher::fail(int rc, std::string_view during) const {
    return lmdb::lmdb_failure(rc, during, env_.data_path());
}

WriteCounters WriteBatcher::counters() const {
    return {writes_.load(std::memory_order_relaxed), batches_.load(std::memory_order_relaxed),
            commits_.load(std::memory_order_relaxed)};
}

void WriteBatcher::wait_until_queued(std::size_t n) const {
    std::unique_lock<std::mutex> lk(m_);
    ++watchers_;
    queued_cv_.wait(lk, [&] { return queued_ >= n; });
    --watchers_;
}

// ---- leader election ---------------------------------------------------
//
// Invariant: when no leader runs, the queue is empty (a finishing leader
// hands the role to the head of the queue if there is one).  So a caller
// who becomes leader, either way, is at the head: its own request is
// always in the batch it runs, and it returns after that one batch.
// Nothing on the leader's path between taking the role and handing it on
// allocates or throws (run_batch is noexcept, the batch is on the stack).

std::optional<Failure> WriteBatcher::write(const WriteBody& body) {
    Request me(body);
    std::array<Request*, kMaxWriteBatch> batch{};
    std::size_t n = 0;
    {
        std::unique_lock<std::mutex> lk(m_);
        writes_.fetch_add(1, std::memory_order_relaxed);
        (tail_ != nullptr ? tail_->next : head_) = &me;
        tail_ = &me;
        ++queued_;
        if (watchers_ > 0) queued_cv_.notify_all();
        if (leading_)
            me.cv.wait(lk, [&] { return me.published || me.lead; });
        else
            leading_ = me.lead = true;
        if (!me.published) {
            for (Request* r = head_; r != nullptr && n < kMaxWriteBatch; r = r->next)
                batch[n++] = r;
            head_ = batch[n - 1]->next;
            if (head_ == nullptr) tail_ = nullptr;
            queued_ -= n;
        }
    }
    if (n > 0) {
        run_batch(std::span<Request*>(batch.data(), n));
        batches_.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard<std::mutex> lk(m_);
        // Notified under m_: a follower cannot return (and destroy its
        // Request) before the leader is done with it.
        for (std::size_t i = 0; i < n; ++i) {
            batch[i]->published = true;
            if (batch[i] != &me) batch[i]->cv.notify_one();
        }
        if (head_ != nullptr) {
            head_->lead = true;
            head_->cv.notify_one();
        } else {
            leading_ = false;
        }
    }
    if (me.thrown) std::rethrow_exception(me.thrown);
    return std::move(me.failure);
}

// ---- running a batch ---------------------------------------------------

void WriteBatcher::run_batch(std::span<Request*> batch) noexcept {
    std::size_t pending = batch.size();  // batch[0, pending): not done, in queue order
    try {
        for (int attempt = 1; pending > 0; ++attempt) {
            Retry retry = Retry::none;
            pending = run_once(batch.first(pending), retry);
            if (pending == 0) break;
            if (attempt >= max_attempts_) {  // each keeps the failure it ran into
                for (std::size_t i = 0; i < pending; ++i) batch[i]->done = true;
                break;
            }
            auto f = retry == Retry::adopt ? hooks_.adopt_map_size() : hooks_.grow_map();
            if (f) {
                for (std::size_t i = 0; i < pending; ++i) {
                    batch[i]->failure = *f;
                    batch[i]->done = true;
                }
                break;
            }
        }
    } catch (...) {
        // Not from a body (run_request catches those): bad_alloc while
        // building a failure, or from a hook.  The transactions are gone
        // (RAII); whoever has no result yet gets the exception.
        for (Request* r : batch) {
            if (r->done) continue;
            r->failure.reset();
            r->thrown = std::current_exception();
            r->done = true;
        }
    }
}

// One write transaction over `pending`.  Requests that are finished
// (committed, or failed by themselves or by the commit) are marked done;
// the rest, which need more room or a remap (`retry`), are moved to the
// front of `pending`, in order, and counted in the return value.
std::size_t WriteBatcher::run_once(std::span<Request*> pending, Retry& retry) {
    std::array<Ran, kMaxWriteBatch> ran{};
    {
        lmdb::MapLock::Shared s(map_lock_);
        lmdb::Txn parent;
        if (int rc = parent.begin(env_, lmdb::TxnKind::read_write); rc != 0) {
            for (Request* r : pending) {
                r->failure = fail(rc, "starting a write transaction");
                r->done = rc != MDB_MAP_RESIZED;
            }
            if (rc != MDB_MAP_RESIZED) return 0;
            retry = Retry::adopt;
            return pending.size();
        }
        const bool nested = pending.size() > 1;
        bool changed = false;
        for (std::size_t i = 0; i < pending.size(); ++i) {
            ran[i] = run_request(*pending[i], parent, nested);
            changed = changed || ran[i] == Ran::changed;
        }
        int rc = 0;
        if (changed) {
            rc = parent.commit();
            if (rc == 0) commits_.fetch_add(1, std::memory_order_relaxed);
        }  // else nothing to write: no commit, no fsync (the parent aborts here)
        for (std::size_t i = 0; i < pending.size(); ++i) {
            Request& r = *pending[i];
            switch (ran[i]) {
                case Ran::failed:
                    r.done = true;
                    break;
                case Ran::unchanged:
                case Ran::changed:
                    if (rc != 0) r.failure = fail(rc, "committing");
                    if (rc == MDB_MAP_FULL)
                        retry = std::max(retry, Retry::grow);  // the whole batch runs again
                    else
                        r.done = true;
                    break;
                case Ran::no_room:
                    retry = std::max(retry, Retry::grow);
                    break;
                case Ran::resized:
                    retry = Retry::adopt;
                    break;
            }
        }
    }
    auto rest = std::stable_partition(pending.begin(), pending.end(),
                                      [](const Request* r) { return !r->done; });
    return static_cast<std::size_t>(rest - pending.begin());
}

WriteBatcher::Ran WriteBatcher::run_request(Request& r, lmdb::Txn& parent, bool nested) {
    r.failure.reset();
    lmdb::Txn child;  // ends before the caller's parent
    if (nested) {
        if (int rc = child.begin_nested(parent); rc != 0) {
            r.failure = fail(rc, "starting a nested write transaction");
            return Ran::failed;
        }
    }
    lmdb::Txn& txn = nested ? child : parent;
    WriteStep st;
    try {
        st = r.body(txn);
    } catch (...) {
        // Nested: ~Txn drops the child.  Alone: nothing changed, so the
        // parent is not committed.
        r.thrown = std::current_exception();
        return Ran::failed;
    }
    if (st.failure) {
        r.failure = std::move(st.failure);
        return Ran::failed;
    }
    if (st.rc != 0) {
        // For MAP_FULL / MAP_RESIZED: what the caller gets if no room can be made.
        r.failure = fail(st.rc, st.during);
        if (st.rc == MDB_MAP_FULL) return Ran::no_room;
        if (st.rc == MDB_MAP_RESIZED) return Ran::resized;
        return Ran::failed;
    }
    if (!st.changed) return Ran::unchanged;
    if (nested) {
        if (int rc = child.commit(); rc != 0) {
            r.failure = fail(rc, st.during + " (nested commit)");
            return rc == MDB_MAP_FULL ? Ran::no_room : Ran::failed;
        }
    }
    return Ran::changed;
}

}  // namespace stsguard
