// lmdb_env.cc - see lmdb_env.h.
#include "policy-cache/lmdb_env.h"

#include <cerrno>
#include <stdexcept>
#include <utility>

namespace stsguard::lmdb {

std::string corrupt_cache_advice(const std::string& data_path, std::string_view detail) {
    return "stsguard cache: " + data_path + " is corrupt (" + std::string(detail) +
           "); move it aside and rebuild with: stsguard cache import <export.jsonl>, "
           "or delete it: the cache refills itself";
}

bool is_corruption(int rc) {
    return rc == MDB_CORRUPTED || rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ||
           rc == MDB_PAGE_NOTFOUND;
}

Failure lmdb_failure(int rc, std::string_view during, const std::string& data_path) {
    const std::string what = std::string(during) + ": " + mdb_strerror(rc);
    const std::string where = "stsguard cache: " + data_path + ": " + what;
    if (is_corruption(rc))
        return Failure::perm("cache-corrupt", corrupt_cache_advice(data_path, what));
    switch (rc) {
        case MDB_MAP_FULL:
            return Failure::temp("cache-full", where + " (the map could not grow further)");
        case ENOSPC:
        case EDQUOT:
        case EFBIG:
            return Failure::temp("cache-full", where + " (free disk space or raise the quota)");
        case MDB_READERS_FULL:
            return Failure::temp("cache-readers-full",
                                 where + " (too many concurrent readers; raise max readers)");
        case EACCES:
        case EPERM:
        case EROFS:
            return Failure::perm("cache-permission",
                                 where + " (check the owner and mode of the cache directory)");
        case ENOENT:
            return Failure::perm("cache-missing", where);
        case MDB_PANIC:
            return Failure::temp("cache-io",
                                 where + " (an earlier write failed; restart stsguard)");
        default:
            return Failure::temp("cache-io", where);
    }
}

// ---- Env ---------------------------------------------------------------

Env::Env(Env&& o) noexcept
    : env_(o.env_),
      dir_(std::move(o.dir_)),
      data_path_(std::move(o.data_path_)),
      broken_(o.broken_) {
    o.env_ = nullptr;
}

Env& Env::operator=(Env&& o) noexcept {
    if (this != &o) {
        close();
        env_ = o.env_;
        dir_ = std::move(o.dir_);
        data_path_ = std::move(o.data_path_);
        broken_ = o.broken_;
        o.env_ = nullptr;
    }
    return *this;
}

Env::~Env() { close(); }

void Env::close() {
    if (env_ != nullptr) mdb_env_close(env_);
    env_ = nullptr;
}

int Env::open(const std::string& dir, const EnvOptions& opts) {
    close();
    broken_ = false;
    dir_ = dir;
    data_path_ = dir + "/data.mdb";
    MDB_env* e = nullptr;
    int rc = mdb_env_create(&e);
    if (rc != 0) return rc;
    if (opts.map_size != 0) rc = mdb_env_set_mapsize(e, opts.map_size);
    if (rc == 0) rc = mdb_env_set_maxreaders(e, opts.max_readers);
    if (rc == 0) rc = mdb_env_set_maxdbs(e, opts.max_dbs);
    unsigned flags = MDB_NOTLS;  // never MDB_WRITEMAP: it forbids nested transactions
    if (opts.access == EnvAccess::read_only) flags |= MDB_RDONLY;
    if (opts.sync == EnvSync::no_sync) flags |= MDB_NOSYNC;
    if (rc == 0) rc = mdb_env_open(e, dir.c_str(), flags, opts.file_mode);
    if (rc != 0) {
        mdb_env_close(e);  // required after a failed mdb_env_open
        return rc;
    }
    env_ = e;
    return 0;
}

int Env::set_map_size(std::size_t size) {
    int rc = mdb_env_set_mapsize(env_, size);
    // LMDB unmaps before mapping anew; if the new mapping fails the env has
    // no map at all and must not be touched again (mdb_env_map()).
    if (rc != 0 && rc != EINVAL) broken_ = true;
    return rc;
}

std::size_t Env::map_size() const {
    MDB_envinfo info{};
    if (env_ == nullptr || mdb_env_info(env_, &info) != 0) return 0;
    return info.me_mapsize;
}

std::size_t Env::used_bytes() const {
    MDB_envinfo info{};
    MDB_stat st{};
    if (env_ == nullptr || mdb_env_info(env_, &info) != 0 || mdb_env_stat(env_, &st) != 0) return 0;
    return (info.me_last_pgno + 1) * static_cast<std::size_t>(st.ms_psize);
}

unsigned Env::max_readers() const {
    unsigned n = 0;
    if (env_ != nullptr) mdb_env_get_maxreaders(env_, &n);
    return n;
}

unsigned Env::readers_in_use() const {
    MDB_envinfo info{};
    if (env_ == nullptr || mdb_env_info(env_, &info) != 0) return 0;
    return info.me_numreaders;
}

int Env::reader_check() {
    int dead = 0;
    if (env_ == nullptr || mdb_reader_check(env_, &dead) != 0) return -1;
    return dead;
}

// ---- Txn ---------------------------------------------------------------

Txn& Txn::operator=(Txn&& o) noexcept {
    if (this != &o) {
        abort();
        txn_ = o.txn_;
        kind_ = o.kind_;
        live_ = o.live_;
        o.txn_ = nullptr;
        o.live_ = false;
    }
    return *this;
}

int Txn::begin(const Env& env, TxnKind kind) {
    abort();
    if (!env.is_open() || env.broken()) return MDB_PANIC;
    MDB_txn* t = nullptr;
    int rc = mdb_txn_begin(env.get(), nullptr, kind == TxnKind::read_only ? MDB_RDONLY : 0, &t);
    if (rc != 0) return rc;  // LMDB freed t
    txn_ = t;
    kind_ = kind;
    live_ = true;
    return 0;
}

int Txn::begin_nested(Txn& parent) {
    abort();
    if (!parent.live_ || parent.kind_ != TxnKind::read_write || &parent == this) return EINVAL;
    MDB_txn* t = nullptr;
    int rc = mdb_txn_begin(mdb_txn_env(parent.txn_), parent.txn_, 0, &t);
    if (rc != 0) return rc;  // LMDB freed t; the parent is unchanged
    txn_ = t;
    kind_ = TxnKind::read_write;
    live_ = true;
    return 0;
}

int Txn::commit() {
    if (!live_) return EINVAL;
    int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    live_ = false;
    return rc;
}

void Txn::abort() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);  // valid on a reset read txn too
    txn_ = nullptr;
    live_ = false;
}

void Txn::reset() {
    if (txn_ == nullptr || kind_ != TxnKind::read_only) return;
    mdb_txn_reset(txn_);
    live_ = false;
}

int Txn::renew() {
    if (txn_ == nullptr || kind_ != TxnKind::read_only) return EINVAL;
    int rc = mdb_txn_renew(txn_);
    live_ = rc == 0;
    return rc;
}

MDB_txn* Txn::release_reset() {
    if (live_ || kind_ != TxnKind::read_only) return nullptr;
    MDB_txn* t = txn_;
    txn_ = nullptr;
    return t;
}

void Txn::adopt_reset(MDB_txn* t) {
    abort();
    txn_ = t;
    kind_ = TxnKind::read_only;
    live_ = false;
}

int Txn::open_dbi(const char* name, unsigned flags, MDB_dbi& out) const {
    return mdb_dbi_open(txn_, name, flags, &out);
}

int Txn::get(MDB_dbi dbi, std::string_view key, std::string_view& out) const {
    MDB_val k = to_val(key);
    MDB_val v{0, nullptr};
    int rc = mdb_get(txn_, dbi, &k, &v);
    if (rc == 0) out = to_view(v);
    return rc;
}

int Txn::put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
    MDB_val k = to_val(key);
    MDB_val v = to_val(value);
    return mdb_put(txn_, dbi, &k, &v, flags);
}

int Txn::del(MDB_dbi dbi, std::string_view key) {
    MDB_val k = to_val(key);
    return mdb_del(txn_, dbi, &k, nullptr);
}

int Txn::stat(MDB_dbi dbi, MDB_stat& out) const { return mdb_stat(txn_, dbi, &out); }

int Txn::drop(MDB_dbi dbi, int del) { return mdb_drop(txn_, dbi, del); }

// ---- Cursor ------------------------------------------------------------

int Cursor::open(const Txn& txn, MDB_dbi dbi) {
    close();
    return mdb_cursor_open(txn.get(), dbi, &cur_);
}

void Cursor::close() {
    if (cur_ != nullptr) mdb_cursor_close(cur_);
    cur_ = nullptr;
}

int Cursor::get(std::string_view& key, std::string_view& value, MDB_cursor_op op) {
    MDB_val k = to_val(key);
    MDB_val v{0, nullptr};
    int rc = mdb_cursor_get(cur_, &k, &v, op);
    if (rc == 0) {
        key = to_view(k);
        value = to_view(v);
    }
    return rc;
}

// ---- MapLock -----------------------------------------------------------

MapLock::MapLock() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&lock_, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) throw std::runtime_error("stsguard cache: cannot create the map lock");
}

MapLock::~MapLock() { pthread_rwlock_destroy(&lock_); }

// ---- ReadTxnPool -------------------------------------------------------

int ReadTxnPool::acquire(const Env& env, Txn& out) {
    if (MDB_txn* t = hot_.exchange(nullptr)) {
        out.adopt_reset(t);
    } else {
        std::lock_guard<std::mutex> g(m_);
        if (!idle_.empty()) {
            out = std::move(idle_.back());
            idle_.pop_back();
        }
    }
    if (out.get() != nullptr) {
        if (env.broken()) return MDB_PANIC;
        return out.renew();  // on failure out stays a reset handle
    }
    return out.begin(env, TxnKind::read_only);
}

void ReadTxnPool::release(Txn&& txn) {
    if (txn.get() == nullptr) return;
    txn.reset();
    if (hot_.load() == nullptr) {
        if (MDB_txn* t = txn.release_reset()) {
            MDB_txn* empty = nullptr;
            if (hot_.compare_exchange_strong(empty, t)) return;
            txn.adopt_reset(t);  // another thread filled the slot first
        }
    }
    std::lock_guard<std::mutex> g(m_);
    if (idle_.size() < max_idle_) {
        idle_.push_back(std::move(txn));
    } else {
        txn.abort();
    }
}

void ReadTxnPool::clear() {
    Txn hot;
    hot.adopt_reset(hot_.exchange(nullptr));  // aborted as it goes out of scope
    std::lock_guard<std::mutex> g(m_);
    idle_.clear();  // ~Txn aborts each, freeing its reader slot
}

}  // namespace stsguard::lmdb
