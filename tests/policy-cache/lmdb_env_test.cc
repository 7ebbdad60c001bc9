// Tests for policy-cache/lmdb_env.cc: the LMDB handle owners.
#include "policy-cache/lmdb_env.h"
#include "tests/temp_dir.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

using stsguard::testing::TempDir;
using namespace stsguard;
using namespace stsguard::lmdb;

namespace {


Env open_env(const std::string& dir, std::size_t map = 1 << 20) {
    Env env;
    EnvOptions o;
    o.map_size = map;
    o.sync = EnvSync::no_sync;  // fsync is not under test here; keeps the suite fast
    REQUIRE(env.open(dir, o) == 0);
    return env;
}

MDB_dbi create_db(Env& env, const char* name) {
    Txn t;
    REQUIRE(t.begin(env, TxnKind::read_write) == 0);
    MDB_dbi dbi = 0;
    REQUIRE(t.open_dbi(name, MDB_CREATE, dbi) == 0);
    REQUIRE(t.commit() == 0);
    return dbi;
}

void put_one(Env& env, MDB_dbi dbi, const std::string& k, const std::string& v) {
    Txn t;
    REQUIRE(t.begin(env, TxnKind::read_write) == 0);
    REQUIRE(t.put(dbi, k, v) == 0);
    REQUIRE(t.commit() == 0);
}

std::string get_one(const Env& env, MDB_dbi dbi, const std::string& k) {
    Txn t;
    REQUIRE(t.begin(env, TxnKind::read_only) == 0);
    std::string_view v;
    int rc = t.get(dbi, k, v);
    if (rc == MDB_NOTFOUND) return "<absent>";
    REQUIRE(rc == 0);
    return std::string(v);
}

}  // namespace

TEST_CASE("lmdb: error codes map to stable failure codes naming the file") {
    const std::string path = "/var/lib/stsguard/data.mdb";
    Failure f = lmdb_failure(MDB_MAP_FULL, "committing", path);
    CHECK(f.code == "cache-full");
    CHECK(f.temporary());
    CHECK(f.reason.find(path) != std::string::npos);
    CHECK(f.reason.find("MDB_MAP_FULL") != std::string::npos);  // mdb_strerror text

    CHECK(lmdb_failure(ENOSPC, "committing", path).code == "cache-full");
    CHECK(lmdb_failure(ENOSPC, "committing", path).reason.find("No space left") !=
          std::string::npos);
    CHECK(lmdb_failure(EIO, "committing", path).code == "cache-io");
    CHECK(lmdb_failure(EIO, "committing", path).temporary());
    CHECK(lmdb_failure(EACCES, "opening", path).code == "cache-permission");
    CHECK(lmdb_failure(MDB_READERS_FULL, "reading", path).code == "cache-readers-full");

    for (int rc : {MDB_CORRUPTED, MDB_INVALID, MDB_VERSION_MISMATCH, MDB_PAGE_NOTFOUND}) {
        CHECK(is_corruption(rc));
        Failure c = lmdb_failure(rc, "opening", path);
        CHECK(c.code == "cache-corrupt");
        CHECK_FALSE(c.temporary());
        CHECK(c.reason.find("stsguard cache: " + path + " is corrupt (opening: ") == 0);
        CHECK(c.reason.find("stsguard cache import <export.jsonl>") != std::string::npos);
        CHECK(c.reason.find("the cache refills itself") != std::string::npos);
    }
    CHECK_FALSE(is_corruption(MDB_MAP_FULL));
}

TEST_CASE("lmdb: a committed write is visible; an unfinished one is aborted by its owner") {
    TempDir dir;
    Env env = open_env(dir.path());
    CHECK(env.data_path() == dir.path() + "/data.mdb");
    MDB_dbi db = create_db(env, "t");
    put_one(env, db, "a", "1");
    {
        Txn t;
        REQUIRE(t.begin(env, TxnKind::read_write) == 0);
        REQUIRE(t.put(db, "b", "2") == 0);
        REQUIRE(t.put(db, "a", "changed") == 0);
    }  // ~Txn aborts
    CHECK(get_one(env, db, "a") == "1");
    CHECK(get_one(env, db, "b") == "<absent>");

    Txn t;
    REQUIRE(t.begin(env, TxnKind::read_write) == 0);
    REQUIRE(t.del(db, "a") == 0);
    CHECK(t.del(db, "a") == MDB_NOTFOUND);
    REQUIRE(t.commit() == 0);
    CHECK_FALSE(t.live());
    CHECK(t.commit() == EINVAL);  // the handle is gone
    CHECK(get_one(env, db, "a") == "<absent>");
}

TEST_CASE(
    "lmdb: a reader keeps its snapshot while the writer commits (MVCC, readers never block)") {
    TempDir dir;
    Env env = open_env(dir.path());
    MDB_dbi db = create_db(env, "t");
    put_one(env, db, "k", "old");

    Txn reader;
    REQUIRE(reader.begin(env, TxnKind::read_only) == 0);
    put_one(env, db, "k", "new");  // would deadlock if readers blocked writers
    std::string_view v;
    REQUIRE(reader.get(db, "k", v) == 0);
    CHECK(v == "old");

    // reset + renew moves the same handle to the newest snapshot.
    MDB_txn* handle = reader.get();
    reader.reset();
    CHECK_FALSE(reader.live());
    REQUIRE(reader.renew() == 0);
    CHECK(reader.get() == handle);
    REQUIRE(reader.get(db, "k", v) == 0);
    CHECK(v == "new");
}

TEST_CASE("lmdb: a cursor walks keys in order and can resume with MDB_SET_RANGE") {
    TempDir dir;
    Env env = open_env(dir.path());
    MDB_dbi db = create_db(env, "t");
    for (const char* k : {"c", "a", "d", "b"}) put_one(env, db, k, std::string("v") + k);
    Txn t;
    REQUIRE(t.begin(env, TxnKind::read_only) == 0);
    Cursor cur;
    REQUIRE(cur.open(t, db) == 0);
    std::vector<std::string> keys;
    std::string_view k, v;
    for (int rc = cur.get(k, v, MDB_FIRST); rc == 0; rc = cur.get(k, v, MDB_NEXT))
        keys.emplace_back(k);
    CHECK(keys == std::vector<std::string>{"a", "b", "c", "d"});
    k = "bb";
    REQUIRE(cur.get(k, v, MDB_SET_RANGE) == 0);
    CHECK(k == "c");
    CHECK(v == "vc");
    cur.close();
}

TEST_CASE("lmdb: the read transaction pool reuses reset handles") {
    TempDir dir;
    Env env = open_env(dir.path());
    MDB_dbi db = create_db(env, "t");
    put_one(env, db, "k", "1");
    ReadTxnPool pool(2);
    Txn a;
    REQUIRE(pool.acquire(env, a) == 0);
    MDB_txn* first = a.get();
    pool.release(std::move(a));
    put_one(env, db, "k", "2");
    Txn b;
    REQUIRE(pool.acquire(env, b) == 0);
    CHECK(b.get() == first);  // renewed, not begun
    std::string_view v;
    REQUIRE(b.get(db, "k", v) == 0);
    CHECK(v == "2");  // and it sees the newest commit
    pool.release(std::move(b));
    pool.clear();
}

// Reader slots in use (mdb_reader_list prints a header line, then one
// line per slot, "pid thread txnid", or "(no active readers)").
int reader_slots_held(const Env& env) {
    int lines = 0;
    mdb_reader_list(
        env.get(),
        [](const char* msg, void* ctx) -> int {
            const std::string_view line(msg);
            if (line.find("pid") == std::string_view::npos && line.find("no active readers") == std::string_view::npos)
                ++*static_cast<int*>(ctx);
            return 0;
        },
        &lines);
    return lines;
}

TEST_CASE("lmdb: the read transaction pool keeps max_idle + 1 handles, and clear() gives back every reader slot") {
    TempDir dir;
    Env env = open_env(dir.path());
    MDB_dbi db = create_db(env, "t");
    put_one(env, db, "k", "1");
    const int before = reader_slots_held(env);
    ReadTxnPool pool(2);
    // Four at once: one goes to the lock-free slot, two to the list, one
    // is aborted.
    Txn t[4];
    std::set<MDB_txn*> handles;
    for (auto& x : t) {
        REQUIRE(pool.acquire(env, x) == 0);
        handles.insert(x.get());
    }
    CHECK(handles.size() == 4);
    for (auto& x : t) pool.release(std::move(x));
    CHECK(reader_slots_held(env) == before + 3);
    // All three come back, renewed, and each sees the newest commit.
    put_one(env, db, "k", "2");
    Txn back[3];
    for (auto& x : back) {
        REQUIRE(pool.acquire(env, x) == 0);
        CHECK(handles.count(x.get()) == 1);
        std::string_view v;
        REQUIRE(x.get(db, "k", v) == 0);
        CHECK(v == "2");
    }
    CHECK(back[0].get() != back[1].get());
    CHECK(back[1].get() != back[2].get());
    CHECK(back[0].get() != back[2].get());
    Txn fresh;  // the pool is empty: a new handle, with a reader slot of its own
    REQUIRE(pool.acquire(env, fresh) == 0);
    // (Not told apart by address: the aborted fourth handle's memory may
    // be the new one's.)
    CHECK(reader_slots_held(env) == before + 4);
    for (auto& x : back) pool.release(std::move(x));
    pool.release(std::move(fresh));
    CHECK(reader_slots_held(env) == before + 3);
    pool.clear();
    CHECK(reader_slots_held(env) == before);
}

TEST_CASE("lmdb: a full map reports MDB_MAP_FULL and set_map_size lets the write through") {
    TempDir dir;
    Env env = open_env(dir.path(), 64 * 1024);
    MDB_dbi db = create_db(env, "t");
    const std::string value(1000, 'x');
    int rc = 0, written = 0;
    while (rc == 0 && written < 1000) {
        Txn t;
        REQUIRE(t.begin(env, TxnKind::read_write) == 0);
        rc = t.put(db, "key" + std::to_string(written), value);
        if (rc == 0) rc = t.commit();
        if (rc == 0) ++written;
    }
    CHECK(rc == MDB_MAP_FULL);
    CHECK(written > 3);
    const std::size_t before = env.map_size();
    REQUIRE(env.set_map_size(before * 4) == 0);
    CHECK(env.map_size() == before * 4);
    CHECK_FALSE(env.broken());
    for (int i = 0; i < 40; ++i) put_one(env, db, "key" + std::to_string(written + i), value);
    CHECK(get_one(env, db, "key0") == value);
    CHECK(env.used_bytes() > before);
}

TEST_CASE("lmdb: a data file that is not LMDB is reported as corruption") {
    TempDir dir;
    {
        int fd = ::open((dir.path() + "/data.mdb").c_str(), O_CREAT | O_WRONLY, 0600);
        REQUIRE(fd >= 0);
        std::string junk(64 * 1024, '\0');
        for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>(i * 7 + 3);
        REQUIRE(::write(fd, junk.data(), junk.size()) == static_cast<ssize_t>(junk.size()));
        ::close(fd);
    }
    Env env;
    int rc = env.open(dir.path(), EnvOptions{});
    CHECK(rc == MDB_INVALID);
    CHECK(is_corruption(rc));
    CHECK_FALSE(env.is_open());
}

TEST_CASE("lmdb: reader_check clears the slot of a process that died inside a read transaction") {
    TempDir dir;
    // Keep the environment open in this process: the last process to
    // leave an environment lets the next opener reset the reader table.
    Env env = open_env(dir.path());
    create_db(env, "t");
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Child: its own environment (LMDB forbids using the parent's).
        Env env;
        if (env.open(dir.path(), EnvOptions{}) != 0) _exit(2);
        Txn t;
        if (t.begin(env, TxnKind::read_only) != 0) _exit(3);
        _exit(0);  // dies holding the reader slot
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    CHECK(env.reader_check() == 1);
    CHECK(env.reader_check() == 0);
}
