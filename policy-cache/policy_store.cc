// policy_store.cc - see policy_store.h.
#include "policy-cache/policy_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>

#include "policy-cache/config.h"

namespace stsguard {

StoreOptions store_options(const Config& cfg, StoreAccess access) {
    StoreOptions o;
    o.dir = cfg.cache_dir;
    if (cfg.cache_map_size > 0) o.initial_map_size = static_cast<std::size_t>(cfg.cache_map_size);
    o.max_map_size = std::max(o.max_map_size, o.initial_map_size);
    o.access = access;
    return o;
}

namespace {

constexpr int kMaxWriteAttempts = 6;  // growths or adoptions before giving up
constexpr std::size_t kBatch = 256;   // for_each records per read transaction
constexpr const char* kPoliciesDb = "policies";
constexpr const char* kMetaDb = "meta";

std::string encode_u32(std::uint32_t v) {
    std::string s(4, '\0');
    for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    return s;
}

bool decode_u32(std::string_view s, std::uint32_t& v) {
    if (s.size() != 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i)
        v |= static_cast<std::uint32_t>(static_cast<unsigned char>(s[i])) << (8 * i);
    return true;
}

// mkdir -p; components it creates get 0750 (the cache holds which domains
// this host mails, not for every local user).
int make_dirs(const std::string& dir) {
    if (dir.empty()) return ENOENT;
    for (std::size_t pos = 1;; ++pos) {
        pos = dir.find('/', pos);
        std::string part = dir.substr(0, pos);
        if (mkdir(part.c_str(), 0750) != 0 && errno != EEXIST) return errno;
        if (pos == std::string::npos) break;
    }
    struct stat st {};
    if (stat(dir.c_str(), &st) != 0) return errno;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

// Parses a stored key; only keys already in normal form are accepted.
std::optional<DomainName> key_domain(std::string_view key) {
    auto d = DomainName::parse(key);
    if (!d || d->str() != key) return std::nullopt;
    return d;
}

// ---- schema migrations -------------------------------------------------
//
// migrations[i] upgrades schema i to i+1 inside the open write transaction.
// Schema 0 was the development layout: the same record format but keys
// were not guaranteed to be normalized.  0 -> 1 keeps every record whose key
// is a normalized domain and whose value decodes, and drops the rest (the
// cache refills them).  A future format change adds a step here.

struct MigrationResult {
    int rc = 0;
    std::uint64_t dropped = 0;
};

MigrationResult migrate_0_to_1(lmdb::Txn& txn, MDB_dbi policies) {
    MigrationResult res;
    std::vector<std::string> drop;
    {
        lmdb::Cursor cur;
        if ((res.rc = cur.open(txn, policies)) != 0) return res;
        std::string_view k, v;
        int rc = cur.get(k, v, MDB_FIRST);
        for (; rc == 0; rc = cur.get(k, v, MDB_NEXT)) {
            auto d = key_domain(k);
            if (!d || !decode_record(v, *d)) drop.emplace_back(k);
        }
        if (rc != MDB_NOTFOUND) {
            res.rc = rc;
            return res;
        }
    }
    for (const auto& k : drop)
        if ((res.rc = txn.del(policies, k)) != 0) return res;
    res.dropped = drop.size();
    return res;
}

using MigrationFn = MigrationResult (*)(lmdb::Txn&, MDB_dbi);
constexpr MigrationFn kMigrations[] = {migrate_0_to_1};
static_assert(std::size(kMigrations) == kSchemaVersion, "one migration step per older schema");

}  // namespace

// ---- open --------------------------------------------------------------

PolicyStore::PolicyStore(const StoreOptions& opts)
    : opts_(opts),
      batcher_(env_, map_lock_,
               {[this] { return grow_map(); }, [this] { return adopt_map_size(); }},
               kMaxWriteAttempts) {}

Lookup<std::unique_ptr<PolicyStore>> PolicyStore::open(const StoreOptions& opts) {
    std::unique_ptr<PolicyStore> s(new PolicyStore(opts));
    const bool ro = opts.access == StoreAccess::read_only;
    const std::string data_path = opts.dir + "/data.mdb";
    if (ro) {
        struct stat st {};
        if (stat(data_path.c_str(), &st) != 0 && errno == ENOENT)
            return NotFound{"no cache at " + data_path + " yet"};
    } else if (int e = make_dirs(opts.dir); e != 0) {
        return lmdb::lmdb_failure(e, "creating the cache directory " + opts.dir, data_path);
    }

    lmdb::EnvOptions eo;
    eo.map_size = ro ? 0 : opts.initial_map_size;
    eo.max_readers = opts.max_readers;
    eo.max_dbs = 4;
    eo.access = ro ? lmdb::EnvAccess::read_only : lmdb::EnvAccess::read_write;
    eo.sync = opts.sync;
    if (int rc = s->env_.open(opts.dir, eo); rc != 0)
        return lmdb::lmdb_failure(rc, "opening the environment", data_path);

    // Slots of processes that died inside a read transaction would pin old
    // pages (the file grows) and use up max_readers.
    s->stale_readers_ = s->env_.reader_check();
    if (auto f = s->open_schema()) {
        if (f->code == "cache-missing") return NotFound{f->reason};
        return *f;
    }
    return s;
}

// Opens the named DBs and checks the schema marker: in a read transaction
// when everything is in place (the normal case, no writer lock taken), in
// a write transaction to create or migrate.
std::optional<Failure> PolicyStore::open_schema() {
    const std::string& path = env_.data_path();
    for (int attempt = 0; attempt < 2; ++attempt) {
        lmdb::Txn rt;
        int rc = rt.begin(env_, lmdb::TxnKind::read_only);
        if (rc == MDB_MAP_RESIZED) {
            if (auto f = adopt_map_size()) return f;
            continue;
        }
        if (rc != 0) return fail(rc, "starting a read transaction");
        MDB_dbi pol = 0, meta = 0;
        int rp = rt.open_dbi(kPoliciesDb, 0, pol);
        int rm = rt.open_dbi(kMetaDb, 0, meta);
        if (rp == 0 && rm == 0) {
            std::string_view v;
            rc = rt.get(meta, kSchemaKey, v);
            std::uint32_t ver = 0;
            if (rc == 0 && decode_u32(v, ver) && ver == kSchemaVersion) {
                if ((rc = rt.commit()) != 0)
                    return fail(rc, "opening the databases");  // keeps the DBI handles
                policies_ = pol;
                meta_ = meta;
                schema_ = ver;
                return std::nullopt;
            }
            if (rc != 0 && rc != MDB_NOTFOUND) return fail(rc, "reading the schema version");
        } else {
            for (int r : {rp, rm})
                if (r != 0 && r != MDB_NOTFOUND) return fail(r, "opening the databases");
        }
        break;  // something to create, migrate or refuse
    }

    const bool ro = opts_.access == StoreAccess::read_only;
    lmdb::Txn txn;
    int rc = txn.begin(env_, ro ? lmdb::TxnKind::read_only : lmdb::TxnKind::read_write);
    if (rc != 0) return fail(rc, "starting the schema transaction");
    const unsigned create = ro ? 0 : MDB_CREATE;
    if ((rc = txn.open_dbi(kPoliciesDb, create, policies_)) != 0 ||
        (rc = txn.open_dbi(kMetaDb, create, meta_)) != 0) {
        if (ro && rc == MDB_NOTFOUND)
            return Failure::perm("cache-missing", "no cache databases in " + path + " yet");
        return fail(rc, "opening the databases");
    }
    std::string_view v;
    rc = txn.get(meta_, kSchemaKey, v);
    std::uint32_t ver = 0;
    if (rc == MDB_NOTFOUND) {
        MDB_stat st{};
        if ((rc = txn.stat(policies_, st)) != 0) return fail(rc, "reading the database statistics");
        if (st.ms_entries != 0)
            return Failure::perm("cache-corrupt",
                                 lmdb::corrupt_cache_advice(path, "records but no schema version"));
        if (ro)
            return Failure::perm("cache-missing",
                                 "the cache in " + path + " is not initialized yet");
        ver = kSchemaVersion;  // a new cache
    } else if (rc != 0) {
        return fail(rc, "reading the schema version");
    } else if (!decode_u32(v, ver)) {
        return Failure::perm("cache-corrupt",
                             lmdb::corrupt_cache_advice(path, "schema version is not 4 bytes"));
    } else if (ver > kSchemaVersion) {
        return Failure::perm("cache-schema-newer",
                             path + " was written by a newer stsguard (schema " +
                                 std::to_string(ver) + ", this one knows " +
                                 std::to_string(kSchemaVersion) +
                                 "); upgrade stsguard or move the cache aside");
    } else if (ver < kSchemaVersion) {
        if (ro)
            return Failure::perm(
                "cache-schema-old",
                path + " has the older schema " + std::to_string(ver) +
                    "; open it read-write once (start stsguard serve) to migrate it");
        for (std::uint32_t from = ver; from < kSchemaVersion; ++from) {
            MigrationResult m = kMigrations[from](txn, policies_);
            if (m.rc != 0)
                return fail(m.rc, "migrating schema " + std::to_string(from) + " to " +
                                      std::to_string(from + 1));
        }
        ver = kSchemaVersion;
    }
    if (!ro && (rc = txn.put(meta_, kSchemaKey, encode_u32(ver))) != 0)
        return fail(rc, "writing the schema version");
    if ((rc = txn.commit()) != 0) return fail(rc, "committing the schema");
    schema_ = ver;
    return std::nullopt;
}

PolicyStore::~PolicyStore() { pool_.clear(); }  // before env_ closes

// ---- failures ----------------------------------------------------------

Failure PolicyStore::fail(int rc, std::string_view during) const {
    return lmdb::lmdb_failure(rc, during, env_.data_path());
}

Failure PolicyStore::record_corrupt(const DomainName& d, const std::string& why) const {
    return Failure::perm("cache-record-corrupt", "stsguard cache: " + env_.data_path() + ": " +
                                                     why + "; the next refresh of " + d.str() +
                                                     " replaces it");
}

// ---- map size ----------------------------------------------------------

std::optional<Failure> PolicyStore::grow_map() {
    lmdb::MapLock::Exclusive x(map_lock_);  // waits for every transaction of this process
    const std::size_t cur = env_.map_size();
    if (cur >= opts_.max_map_size)
        return Failure::temp("cache-full", "stsguard cache: " + env_.data_path() +
                                               ": the map reached its limit of " +
                                               std::to_string(opts_.max_map_size) + " bytes");
    const std::size_t next = std::min(std::max(cur * 2, cur + (1u << 20)), opts_.max_map_size);
    if (int rc = env_.set_map_size(next); rc != 0)
        return Failure::temp("cache-full", "stsguard cache: " + env_.data_path() +
                                               ": growing the map to " + std::to_string(next) +
                                               " bytes: " + mdb_strerror(rc) +
                                               (env_.broken() ? " (restart stsguard)" : ""));
    return std::nullopt;
}

std::optional<Failure> PolicyStore::adopt_map_size() const {
    lmdb::MapLock::Exclusive x(map_lock_);
    if (int rc = env_.set_map_size(0); rc != 0)
        return fail(rc, "adopting the map size grown by another process");
    return std::nullopt;
}

// ---- reads -------------------------------------------------------------

Lookup<CacheRecord> PolicyStore::get(const DomainName& domain) const {
    Reading reading(*this);
    std::string_view bytes;
    auto r = reading.raw(domain, bytes);
    if (r.not_found()) return r.not_found_info();
    if (r.failed()) return r.failure();
    CacheRecord rec(domain);
    std::string why;
    if (!decode_record_into(bytes, domain, rec, &why)) return record_corrupt(domain, why);
    return rec;
}

// A read transaction under the map lock's shared side, or the LMDB code
// it failed with (nothing then held).  The handle kept from the last
// read is renewed: a Reading that lives across requests (serve's) skips
// the pool.
int PolicyStore::Reading::begin() {
    lock_.emplace(store_.map_lock_);
    int rc = 0;
    if (txn_.get() == nullptr)
        rc = store_.pool_.acquire(store_.env_, txn_);
    else
        rc = store_.env_.broken() ? MDB_PANIC : txn_.renew();  // on failure still a reset handle
    if (rc == 0) {
        open_ = true;
        return 0;
    }
    store_.pool_.release(std::move(txn_));
    lock_.reset();
    return rc;
}

// The handle is reset, not closed: like the pool's idle ones it holds no
// snapshot and no map pointer, so a map growth may go on.
void PolicyStore::Reading::end() {
    if (open_) txn_.reset();
    open_ = false;
    lock_.reset();
}

PolicyStore::Reading::~Reading() {
    end();
    store_.pool_.release(std::move(txn_));
}

Lookup<std::monostate> PolicyStore::Reading::raw(const DomainName& domain, std::string_view& bytes) {
    for (int attempt = 0;; ++attempt) {
        const int rc = open_ ? 0 : begin();
        if (rc == 0) {
            const int got = txn_.get(store_.policies_, domain.str(), bytes);
            if (got == 0) return std::monostate{};
            if (got == MDB_NOTFOUND) return NotFound{"no cache record for " + domain.str()};
            return store_.fail(got, "reading " + domain.str());
        }
        // Both retries need the transaction closed (begin() left none).
        if (attempt < 2 && rc == MDB_MAP_RESIZED) {
            if (auto f = store_.adopt_map_size()) return *f;
            continue;
        }
        if (attempt < 2 && rc == MDB_READERS_FULL && store_.env_.reader_check() > 0) continue;
        return store_.fail(rc, "starting a read transaction");
    }
}

Lookup<std::monostate> PolicyStore::Reading::get(const DomainName& domain, CacheRecord& fixed,
                                                 RecordTexts& texts) {
    std::string_view bytes;
    auto r = raw(domain, bytes);
    if (!r.found()) return r;
    std::string why;
    if (!decode_record_view(bytes, domain, fixed, texts, &why)) return store_.record_corrupt(domain, why);
    return r;
}

std::optional<Failure> PolicyStore::for_each(const Visitor& visit) const {
    std::string resume;
    bool first = true;
    for (int resized = 0;;) {
        std::vector<std::pair<std::string, Lookup<CacheRecord>>> batch;
        batch.reserve(kBatch);
        int rc = 0;
        {
            lmdb::MapLock::Shared s(map_lock_);
            lmdb::Txn txn;
            rc = pool_.acquire(env_, txn);
            if (rc == 0) {
                lmdb::Cursor cur;
                rc = cur.open(txn, policies_);
                std::string_view k = resume, v;
                if (rc == 0) rc = cur.get(k, v, first ? MDB_FIRST : MDB_SET_RANGE);
                if (rc == 0 && !first && k == resume) rc = cur.get(k, v, MDB_NEXT);
                for (; rc == 0 && batch.size() < kBatch; rc = cur.get(k, v, MDB_NEXT)) {
                    auto d = key_domain(k);
                    if (!d) {
                        batch.emplace_back(std::string(k),
                                           Failure::perm("cache-record-corrupt",
                                                         "stsguard cache: " + env_.data_path() +
                                                             ": key \"" + std::string(k) +
                                                             "\" is not a normalized domain name"));
                        continue;
                    }
                    std::string why;
                    auto rec = decode_record(v, *d, &why);
                    if (rec)
                        batch.emplace_back(std::string(k), std::move(*rec));
                    else
                        batch.emplace_back(std::string(k), record_corrupt(*d, why));
                }
                cur.close();  // before its transaction ends
            }
            pool_.release(std::move(txn));
        }
        if (rc == MDB_MAP_RESIZED && batch.empty() && resized++ < 2) {
            if (auto f = adopt_map_size()) return f;
            continue;
        }
        if (rc != 0 && rc != MDB_NOTFOUND) return fail(rc, "listing the cache");
        for (const auto& [key, rec] : batch)
            if (visit(key, rec) == Visit::stop) return std::nullopt;
        if (rc == MDB_NOTFOUND || batch.empty()) return std::nullopt;
        resume = batch.back().first;
        first = false;
    }
}

Lookup<StoreStats> PolicyStore::stats(StatsDetail detail) const {
    StoreStats st;
    st.data_path = env_.data_path();
    st.schema_version = schema_;
    st.stale_readers_cleared = stale_readers_;
    {
        lmdb::MapLock::Shared s(map_lock_);
        lmdb::Txn txn;
        int rc = pool_.acquire(env_, txn);
        MDB_stat ms{};
        if (rc == 0) rc = txn.stat(policies_, ms);
        pool_.release(std::move(txn));
        if (rc != 0) return fail(rc, "reading the database statistics");
        st.entries = ms.ms_entries;
        st.map_bytes = env_.map_size();
        st.used_bytes = env_.used_bytes();
        st.max_readers = env_.max_readers();
        st.reader_slots = env_.readers_in_use();
    }
    struct stat fs {};
    if (::stat(st.data_path.c_str(), &fs) == 0)
        st.file_bytes = static_cast<std::uint64_t>(fs.st_size);
    if (detail == StatsDetail::by_mode) {
        auto f = for_each([&](std::string_view, const Lookup<CacheRecord>& r) {
            if (!r.found()) {
                ++st.corrupt;
            } else if (r.value().state == PolicyState::no_policy) {
                ++st.no_policy;
            } else {
                switch (r.value().policy.mode) {
                    case Mode::enforce:
                        ++st.enforce;
                        break;
                    case Mode::testing:
                        ++st.testing;
                        break;
                    case Mode::none:
                        ++st.none;
                        break;
                }
            }
            return Visit::next;
        });
        if (f) return *f;
    }
    return st;
}

// ---- writes ------------------------------------------------------------

std::optional<Failure> PolicyStore::write(const WriteBody& body) {
    if (opts_.access == StoreAccess::read_only)
        return Failure::perm("cache-permission",
                             "stsguard cache: " + env_.data_path() + " is open read-only");
    // Group commit: transactions, map growth (grow_map) and adoption
    // (adopt_map_size) and the per-call results are the batcher's.
    return batcher_.write(body);
}

std::optional<Failure> PolicyStore::put(const CacheRecord& rec) {
    std::string why;
    auto bytes = encode_record(rec, &why);  // outside the transaction
    if (!bytes) return Failure::perm("cache-record-too-large", why);
    return write([&](lmdb::Txn& txn) {
        WriteStep st;
        st.during = "writing " + rec.domain.str();
        st.rc = txn.put(policies_, rec.domain.str(), *bytes);
        return st;
    });
}

std::optional<Failure> PolicyStore::put_all(const std::vector<CacheRecord>& recs) {
    std::vector<std::string> encoded;
    encoded.reserve(recs.size());
    for (const auto& r : recs) {
        std::string why;
        auto bytes = encode_record(r, &why);
        if (!bytes) return Failure::perm("cache-record-too-large", why);
        encoded.push_back(std::move(*bytes));
    }
    return write([&](lmdb::Txn& txn) {
        WriteStep st;
        for (std::size_t i = 0; i < recs.size() && st.rc == 0; ++i) {
            st.during = "writing " + recs[i].domain.str();
            st.rc = txn.put(policies_, recs[i].domain.str(), encoded[i]);
        }
        return st;
    });
}

std::optional<Failure> PolicyStore::update(const DomainName& domain, const Updater& fn) {
    return write([&](lmdb::Txn& txn) {
        WriteStep st;
        st.during = "reading " + domain.str() + " for update";
        std::string_view old;
        st.rc = txn.get(policies_, domain.str(), old);
        if (st.rc != 0 && st.rc != MDB_NOTFOUND) return st;
        const bool existed = st.rc == 0;
        st.rc = 0;
        std::optional<CacheRecord> rec;
        if (existed) rec = decode_record(old, domain);  // undecodable: treated as absent
        fn(rec);
        if (!rec) {
            st.changed = existed;
            st.during = "removing " + domain.str();
            if (existed) st.rc = txn.del(policies_, domain.str());
            return st;
        }
        if (!(rec->domain == domain)) {
            st.failure = Failure::perm(
                "cache-key-mismatch",
                "update of " + domain.str() + " returned a record for " + rec->domain.str());
            return st;
        }
        std::string why;
        auto bytes = encode_record(*rec, &why);
        if (!bytes) {
            st.failure = Failure::perm("cache-record-too-large", why);
            return st;
        }
        if (existed && *bytes == old) {
            st.changed = false;  // no commit, no fsync
            return st;
        }
        st.during = "writing " + domain.str();
        st.rc = txn.put(policies_, domain.str(), *bytes);
        return st;
    });
}

Lookup<Removed> PolicyStore::remove(const DomainName& domain) {
    bool absent = false;
    auto f = write([&](lmdb::Txn& txn) {
        WriteStep st;
        st.during = "removing " + domain.str();
        st.rc = txn.del(policies_, domain.str());
        absent = st.rc == MDB_NOTFOUND;  // set on every run: the body may run again
        if (absent) {
            st.rc = 0;
            st.changed = false;
        }
        return st;
    });
    if (f) return *f;
    if (absent) return NotFound{"no cache record for " + domain.str()};
    return Removed{};
}

std::optional<Failure> PolicyStore::touch_last_used(
    const std::vector<std::pair<DomainName, UnixTime>>& uses) {
    if (uses.empty()) return std::nullopt;
    return write([&](lmdb::Txn& txn) {
        WriteStep st;
        st.changed = false;
        for (const auto& [domain, when] : uses) {
            std::string_view old;
            st.during = "reading " + domain.str();
            st.rc = txn.get(policies_, domain.str(), old);
            if (st.rc == MDB_NOTFOUND) continue;
            if (st.rc != 0) return st;
            auto rec = decode_record(old, domain);
            if (!rec || rec->last_used >= when) continue;
            rec->last_used = when;
            auto bytes = encode_record(*rec);
            if (!bytes) continue;
            st.during = "writing " + domain.str();
            if ((st.rc = txn.put(policies_, domain.str(), *bytes)) != 0) return st;
            st.changed = true;
        }
        st.rc = 0;
        return st;
    });
}

}  // namespace stsguard
