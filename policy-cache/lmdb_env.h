// lmdb_env.h - RAII owners for LMDB handles, and LMDB errors as Failures.
//
// Owners: Env (MDB_env), Txn (MDB_txn, read or write), Cursor
// (MDB_cursor), ReadTxnPool (reset read transactions kept for reuse) and
// MapLock (the process-wide lock that makes a remap safe).  Calls return
// the raw LMDB code (0 = success) so the store can react to MDB_MAP_FULL
// and MDB_MAP_RESIZED before turning a code into a Failure with
// lmdb_failure(), which names the data file and uses mdb_strerror().
//
// Rules LMDB imposes and these owners rely on (lmdb.h, "Caveats"):
//  - one Env per data file per process, never used after fork();
//  - mdb_env_set_mapsize() only while this process has no transaction
//    open: every transaction is taken under MapLock::shared(), a remap
//    under MapLock::exclusive();
//  - a Cursor must be destroyed before its Txn ends (declare it after the
//    Txn in the same scope);
//  - environments are opened with MDB_NOTLS so read transactions belong to
//    their handle, not to a thread, and can be pooled;
//  - never with MDB_WRITEMAP: nested write transactions (the store's group
//    commit isolates each request in one) are not allowed with it.
//
// Failures: lmdb_failure() sorts codes into cache-full, cache-io,
//   cache-corrupt (with the recovery command), cache-permission,
//   cache-readers-full.  Limits: keys up to mdb_env_get_maxkeysize() (511).
#pragma once

#include <lmdb.h>
#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "policy-cache/outcome.h"

namespace stsguard::lmdb {

// The operator's way out of a corrupt cache, quoted in every cache-corrupt
// reason (the cache only accelerates discovery; it refills itself).
std::string corrupt_cache_advice(const std::string& data_path, std::string_view detail);

// True for codes that mean the file itself is damaged or unreadable by
// this LMDB: MDB_CORRUPTED, MDB_INVALID, MDB_VERSION_MISMATCH,
// MDB_PAGE_NOTFOUND.
bool is_corruption(int rc);

// rc (LMDB code or errno) during `during` on data file data_path.
Failure lmdb_failure(int rc, std::string_view during, const std::string& data_path);

inline MDB_val to_val(std::string_view s) {
    return MDB_val{s.size(), const_cast<char*>(s.data())};  // LMDB never writes through it
}
inline std::string_view to_view(const MDB_val& v) {
    return {static_cast<const char*>(v.mv_data), v.mv_size};
}

enum class EnvAccess { read_write, read_only };

// full: fsync data and meta at each commit.  no_sync (MDB_NOSYNC): commits
// survive a killed process but not an OS crash or power loss, which may
// also damage the file; for tests and throwaway caches only.
enum class EnvSync { full, no_sync };

struct EnvOptions {
    std::size_t map_size = 0;  // 0: the size recorded in the file (LMDB default if new)
    unsigned max_readers = 126;
    unsigned max_dbs = 4;
    EnvAccess access = EnvAccess::read_write;
    EnvSync sync = EnvSync::full;
    mode_t file_mode = 0640;
};

class Env {
public:
    Env() = default;
    Env(Env&& o) noexcept;
    Env& operator=(Env&& o) noexcept;
    Env(const Env&) = delete;
    Env& operator=(const Env&) = delete;
    ~Env();

    // Opens dir/data.mdb (+ lock.mdb); dir must exist.  On error *this
    // stays closed.
    int open(const std::string& dir, const EnvOptions& opts);
    void close();

    MDB_env* get() const { return env_; }
    bool is_open() const { return env_ != nullptr; }
    const std::string& dir() const { return dir_; }
    const std::string& data_path() const { return data_path_; }

    // Caller guarantees no transaction of this process is open (MapLock).
    // size 0 adopts the size another process recorded.  If LMDB fails to
    // map the new size the handle is unusable: broken() turns true.
    int set_map_size(std::size_t size);
    bool broken() const { return broken_; }
    std::size_t map_size() const;
    std::size_t used_bytes() const;  // (last page + 1) * page size
    unsigned max_readers() const;
    unsigned readers_in_use() const;  // slots in the lock file, incl. idle ones

    // Clears reader slots of dead processes; returns how many (or -1).
    int reader_check();

private:
    MDB_env* env_ = nullptr;
    std::string dir_;
    std::string data_path_;
    bool broken_ = false;
};

enum class TxnKind { read_only, read_write };

class Txn {
public:
    Txn() = default;
    Txn(Txn&& o) noexcept : txn_(o.txn_), kind_(o.kind_), live_(o.live_) {
        o.txn_ = nullptr;
        o.live_ = false;
    }
    Txn& operator=(Txn&& o) noexcept;
    Txn(const Txn&) = delete;
    Txn& operator=(const Txn&) = delete;
    ~Txn() { abort(); }

    int begin(const Env& env, TxnKind kind);
    // A nested write transaction inside `parent`, a live write transaction
    // begun by this thread: commit() hands its changes to the parent (they
    // reach the file with the parent's commit), abort() drops them and
    // leaves the parent exactly as it was, even after an error such as
    // MDB_MAP_FULL inside the child.  While the child is live the parent
    // must not be used, and the child must end first: aborting a parent
    // frees its live child (declare the child after the parent).  LMDB
    // refuses nesting with MDB_WRITEMAP, which Env::open never sets.
    // Costs a ~3 MiB malloc (LMDB's dirty-page list) per child.
    int begin_nested(Txn& parent);
    int commit();  // the handle is gone afterwards, whatever the result
    void abort();  // no-op when not begun

    // Read-only transactions only: reset keeps the handle and its reader
    // slot (no snapshot held); renew takes a fresh snapshot.
    void reset();
    int renew();

    bool live() const { return live_; }
    MDB_txn* get() const { return txn_; }

    // For ReadTxnPool's lock-free slot: hands over the handle of a reset
    // read-only transaction, leaving this one empty (nullptr for any other
    // state, which stays put), and takes such a handle over.
    MDB_txn* release_reset();
    void adopt_reset(MDB_txn* t);

    int open_dbi(const char* name, unsigned flags, MDB_dbi& out) const;
    // MDB_NOTFOUND when absent.  out points into the map: valid until the
    // transaction ends or writes to this key.
    int get(MDB_dbi dbi, std::string_view key, std::string_view& out) const;
    int put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
    int del(MDB_dbi dbi, std::string_view key);
    int stat(MDB_dbi dbi, MDB_stat& out) const;
    int drop(MDB_dbi dbi, int del);

private:
    MDB_txn* txn_ = nullptr;
    TxnKind kind_ = TxnKind::read_only;
    bool live_ = false;  // begun and neither committed, aborted nor reset
};

class Cursor {
public:
    Cursor() = default;
    Cursor(const Cursor&) = delete;
    Cursor& operator=(const Cursor&) = delete;
    ~Cursor() { close(); }

    int open(const Txn& txn, MDB_dbi dbi);
    void close();
    // op: MDB_FIRST, MDB_NEXT, MDB_SET_RANGE (key is input then), ...
    int get(std::string_view& key, std::string_view& value, MDB_cursor_op op);

private:
    MDB_cursor* cur_ = nullptr;
};

// Readers-writer lock with writer preference (a remap must not starve
// behind a stream of lookups).  Readers must not nest: take it once.
class MapLock {
public:
    MapLock();
    ~MapLock();
    MapLock(const MapLock&) = delete;
    MapLock& operator=(const MapLock&) = delete;

    class Shared {
    public:
        explicit Shared(MapLock& l) : l_(l) { pthread_rwlock_rdlock(&l_.lock_); }
        ~Shared() { pthread_rwlock_unlock(&l_.lock_); }
        Shared(const Shared&) = delete;
        Shared& operator=(const Shared&) = delete;

    private:
        MapLock& l_;
    };
    class Exclusive {
    public:
        explicit Exclusive(MapLock& l) : l_(l) { pthread_rwlock_wrlock(&l_.lock_); }
        ~Exclusive() { pthread_rwlock_unlock(&l_.lock_); }
        Exclusive(const Exclusive&) = delete;
        Exclusive& operator=(const Exclusive&) = delete;

    private:
        MapLock& l_;
    };

private:
    pthread_rwlock_t lock_;
};

// Reset read-only transactions for reuse: renewing one costs two stores
// into the reader table instead of a malloc and a reader-table mutex.
// Each idle transaction keeps its reader slot; at most max_idle + 1 are
// kept: one in a slot taken and refilled with one atomic exchange (the
// serve loop's lookup per request nearly always finds it), the rest in a
// list under a mutex for concurrent readers.
// Thread-safe.  Must be cleared (or destroyed) before its Env closes.
class ReadTxnPool {
public:
    explicit ReadTxnPool(std::size_t max_idle = 64) : max_idle_(max_idle) {}
    ~ReadTxnPool() { clear(); }
    ReadTxnPool(const ReadTxnPool&) = delete;
    ReadTxnPool& operator=(const ReadTxnPool&) = delete;

    // A live read transaction in out (renewed or begun), or an LMDB code.
    int acquire(const Env& env, Txn& out);
    // Resets txn and keeps it (or aborts it when the pool is full).
    void release(Txn&& txn);
    void clear();

private:
    std::atomic<MDB_txn*> hot_{nullptr};  // a reset read-only handle, owned by the pool
    std::mutex m_;
    std::vector<Txn> idle_;
    std::size_t max_idle_;
};

}  // namespace stsguard::lmdb
