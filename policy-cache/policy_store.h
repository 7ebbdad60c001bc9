// policy_store.h - the persistent MTA-STS policy store (LMDB).
//
// RFC 8461 5: a sender remembers each domain's policy until it expires so
// that an attacker who blocks one fetch cannot downgrade delivery.  This
// is that memory, shared by every stsguard process on the host (service,
// CLI, milter): one LMDB environment in cache_dir with the named DBs
// "policies" (A-label domain -> CacheRecord) and "meta" (schema version).
// The refresh rules (when to fetch, back-off) live in the refresh engine;
// this module only stores.
//
// Concurrency: LMDB MVCC, so readers never block the writer nor each
// other; one write transaction at a time across processes (LMDB's
// writer lock).  Within this process concurrent writes share one
// transaction and one commit (group commit, write_batch.h): the caller
// who finds no write running leads a batch of everything queued, the
// others wait for its result.  A PolicyStore is thread-safe.  Open ONE
// PolicyStore per directory per process (LMDB forbids two environments
// on one file in a process) and never use it in a fork()ed child.
// Transactions are short: get() is one mdb_get; a Reading (serve's hot
// path) spans one mdb_get and the pure decision on its bytes; the
// update() callback runs inside the write transaction and must be pure
// (no I/O, no call back into the store; it may run twice, see below, and
// on another writer's thread).
//
// Crash safety: when put/put_all/update/remove/touch_last_used returns
// success its change is committed in an LMDB transaction (fsync'd), alone
// or with concurrent writes; a killed process leaves either the old or the
// new record.  A write that fails does not fail the others of its batch.
// Stale reader slots of dead processes are cleared at open.
//
// Map growth: on MDB_MAP_FULL the write is aborted, the map doubled (up to
// max_map_size) and the write retried (the callback of update() runs
// again on fresh input; the rest of its batch commits first).
// mdb_env_set_mapsize() needs every transaction of this process closed:
// each transaction is taken under the shared side of map_lock_, a remap
// under its exclusive side, and pooled read transactions are reset (no
// snapshot, no map pointers) while idle, as is the handle a Reading keeps
// between reads.  A map grown by another process (MDB_MAP_RESIZED) is
// adopted the same way.
//
// Start-up cost: open() reads the schema marker only; it never scans.
// stats(StatsDetail::by_mode) and for_each() scan (CLI only).
//
// Failures (outcomes, never exceptions):
//   cache-full (temporary)  map at max_map_size, disk full, quota;
//   cache-io (temporary)    other I/O errors;
//   cache-corrupt (permanent) the file is damaged: the reason names the
//     file and the recovery command;
//   cache-record-corrupt (permanent) one record does not decode: get()
//     fails for that domain only, update() treats it as absent so the next
//     refresh replaces it;
//   cache-schema-newer / cache-schema-old (permanent) see open();
//   cache-permission, cache-readers-full, cache-key-mismatch.
// Limits: see cache_record.h; max_readers concurrent read transactions
// per host (pooled idle ones included).
//
// Benchmark note (for bench/): fill a store with N ~240-byte records via
// put_all() in batches of 5000 (sync = no_sync for the fill only), reopen,
// and time get() over uniformly random keys, next to a raw
// mdb_txn_renew/mdb_get/mdb_txn_reset loop on the same file.  Measured
// (2 loaded vCPUs, CPU time): N=1,000: get() ~0.5 us, raw ~0.26 us;
// N=1,000,000: get() ~4 us, raw ~3 us.  The growth with N is LMDB's
// B-tree walk missing the CPU caches (raw LMDB grows the same way), not
// this module; smaller values help (raw, 1M: 240 B 2.8 us, 100 B 1.7 us).
// open() + first get() with 1,000,000 records: under 1 ms warm.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "policy-cache/cache_record.h"
#include "policy-cache/clock.h"
#include "policy-cache/domain_name.h"
#include "policy-cache/lmdb_env.h"
#include "policy-cache/outcome.h"
#include "policy-cache/write_batch.h"

namespace stsguard {

struct Config;

inline constexpr std::uint32_t kSchemaVersion = 1;
inline constexpr const char* kSchemaKey = "schema-version";  // in "meta": u32 LE

enum class StoreAccess { read_write, read_only };

struct StoreOptions {
    std::string dir = "/var/lib/stsguard";       // created 0750 if missing
    std::size_t initial_map_size = 64ULL << 20;  // an existing larger map is kept
    std::size_t max_map_size = 64ULL << 30;      // growth stops here: cache-full
    StoreAccess access = StoreAccess::read_write;
    lmdb::EnvSync sync = lmdb::EnvSync::full;  // see lmdb_env.h; keep full in production
    unsigned max_readers = 126;
};

// cache_dir and cache_map_size from the configuration.
StoreOptions store_options(const Config& cfg, StoreAccess access);

enum class StatsDetail { quick, by_mode };  // by_mode scans every record

struct StoreStats {
    std::uint64_t entries = 0;
    // Filled by StatsDetail::by_mode only:
    std::uint64_t enforce = 0, testing = 0, none = 0;  // records with a policy, by mode
    std::uint64_t no_policy = 0;
    std::uint64_t corrupt = 0;     // records that do not decode
    std::uint64_t file_bytes = 0;  // data.mdb size on disk
    std::uint64_t used_bytes = 0;  // pages in use
    std::uint64_t map_bytes = 0;   // current map size
    std::uint32_t schema_version = 0;
    unsigned max_readers = 0;
    unsigned reader_slots = 0;      // slots in the lock file
    int stale_readers_cleared = 0;  // at open
    std::string data_path;
};

struct Removed {};
enum class Visit { next, stop };

class PolicyStore {
public:
    // Opens (read-write: creates) the store.  Schema: a newer marker is
    // refused (cache-schema-newer), an older one migrated in one write
    // transaction (read-only: refused, cache-schema-old).  Read-only and no
    // cache yet: NotFound.
    static Lookup<std::unique_ptr<PolicyStore>> open(const StoreOptions& opts);

    ~PolicyStore();
    PolicyStore(const PolicyStore&) = delete;
    PolicyStore& operator=(const PolicyStore&) = delete;

    // NotFound if the domain has no record.
    Lookup<CacheRecord> get(const DomainName& domain) const;

    // One read transaction for records decoded in place: what get() reads,
    // without copying a byte (decode_record_view), for the serve hot path.
    // The views it hands out stay valid until end() or destruction, so the
    // answer is decided inside the transaction; nothing else may happen
    // there (it holds an LMDB reader slot and map_lock_ shared, which a
    // map growth waits for).  A Reading may be kept and used again: it
    // keeps its transaction handle reset in between (no snapshot held),
    // as the pool would.  One thread at a time.
    class Reading {
    public:
        explicit Reading(const PolicyStore& store) : store_(store) {}
        ~Reading();
        Reading(const Reading&) = delete;
        Reading& operator=(const Reading&) = delete;

        // Found: `fixed` and `texts` hold the record (see
        // decode_record_view).  Otherwise get()'s NotFound or Failure, and
        // neither may be used.
        Lookup<std::monostate> get(const DomainName& domain, CacheRecord& fixed, RecordTexts& texts);
        // The stored bytes of domain's record, undecoded.
        Lookup<std::monostate> raw(const DomainName& domain, std::string_view& bytes);
        // Ends the transaction (idempotent); every view becomes invalid.
        // The next get() or raw() starts a fresh one.
        void end();

    private:
        int begin();

        const PolicyStore& store_;
        std::optional<lmdb::MapLock::Shared> lock_;
        lmdb::Txn txn_;
        bool open_ = false;
    };

    std::optional<Failure> put(const CacheRecord& rec);
    // All or nothing, in one write transaction (import).  Keep batches to
    // a few thousand records: a batch that outgrows the map is retried
    // after each growth, up to 5 times.
    std::optional<Failure> put_all(const std::vector<CacheRecord>& recs);

    // Read-modify-write in one write transaction.  The callback gets the
    // current record (nullopt if absent or undecodable) and may change it,
    // replace it, or reset it to nullopt (the record is removed).  It must
    // be pure: it may be called again if the map has to grow.
    using Updater = std::function<void(std::optional<CacheRecord>&)>;
    std::optional<Failure> update(const DomainName& domain, const Updater& fn);

    // NotFound if there was nothing to remove.
    Lookup<Removed> remove(const DomainName& domain);

    // Sets last_used (never moving it backwards) on many records in one
    // write transaction; absent or undecodable records are skipped.
    std::optional<Failure> touch_last_used(
        const std::vector<std::pair<DomainName, UnixTime>>& uses);

    // Every record in key order, for list/export.  Records are read in
    // batches of short read transactions and the visitor runs outside any
    // transaction (it may call the store); each record is consistent, the
    // whole walk is not one snapshot.  A key that is not a normalized
    // domain or a value that does not decode is passed as a Failure.
    using Visitor = std::function<Visit(std::string_view key, const Lookup<CacheRecord>& rec)>;
    std::optional<Failure> for_each(const Visitor& visit) const;

    Lookup<StoreStats> stats(StatsDetail detail) const;

    const std::string& data_path() const { return env_.data_path(); }
    StoreAccess access() const { return opts_.access; }

    // Writes, batches and commits by this PolicyStore since open (the
    // service's metrics, tests).
    WriteCounters write_counters() const { return batcher_.counters(); }
    // Test hook: blocks until n writes wait behind the running batch.
    void wait_until_writes_queued(std::size_t n) const { batcher_.wait_until_queued(n); }

private:
    explicit PolicyStore(const StoreOptions& opts);

    // Every write goes through here: the body runs in a write transaction
    // (a nested one when it shares the batch) and must be pure.
    std::optional<Failure> write(const WriteBody& body);
    std::optional<Failure> grow_map();
    std::optional<Failure> adopt_map_size() const;
    std::optional<Failure> open_schema();
    Failure fail(int rc, std::string_view during) const;
    Failure record_corrupt(const DomainName& d, const std::string& why) const;

    StoreOptions opts_;
    mutable lmdb::Env env_;  // mutable: a reader may have to adopt a grown map
    MDB_dbi policies_ = 0;
    MDB_dbi meta_ = 0;
    std::uint32_t schema_ = 0;
    int stale_readers_ = 0;
    mutable lmdb::MapLock map_lock_;
    mutable lmdb::ReadTxnPool pool_;
    WriteBatcher batcher_;  // last: destroyed first, before env_
};

}  // namespace stsguard
