// Tests for policy-cache/write_batch.cc: group commit of store writes.
//
// Concurrency is made deterministic without sleeps: the first writer's
// body blocks inside its transaction until the test has seen the other
// writers queue behind it (WriteBatcher::wait_until_queued), so they all
// share the next batch.
#include "policy-cache/write_batch.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <latch>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "policy-cache/lmdb_env.h"
#include "tests/temp_dir.h"

using stsguard::testing::TempDir;
using namespace stsguard;

namespace {

// An environment with one DB "t" and a batcher over it whose map hooks
// count their calls (and grow the map by doubling, like the store).
struct Bed {
    // dir_in empty: a fresh temporary directory, removed at the end.
    explicit Bed(std::size_t map = 1 << 20, lmdb::EnvSync sync = lmdb::EnvSync::no_sync,
                 const std::string& dir_in = {})
        : tmp(dir_in.empty() ? std::make_unique<TempDir>() : nullptr),
          dir(tmp ? tmp->path() : dir_in) {
        lmdb::EnvOptions o;
        o.map_size = map;
        o.sync = sync;
        REQUIRE(env.open(dir, o) == 0);
        lmdb::Txn t;
        REQUIRE(t.begin(env, lmdb::TxnKind::read_write) == 0);
        REQUIRE(t.open_dbi("t", MDB_CREATE, db) == 0);
        REQUIRE(t.commit() == 0);
    }

    std::string get(const std::string& key) const {
        lmdb::Txn t;
        REQUIRE(t.begin(env, lmdb::TxnKind::read_only) == 0);
        std::string_view v;
        int rc = t.get(db, key, v);
        if (rc == MDB_NOTFOUND) return "<absent>";
        REQUIRE(rc == 0);
        return std::string(v);
    }

    WriteBody put(std::string key, std::string value) const {
        return [this, key, value](lmdb::Txn& t) {
            WriteStep st;
            st.during = "writing " + key;
            st.rc = t.put(db, key, value);
            return st;
        };
    }

    std::unique_ptr<TempDir> tmp;
    std::string dir;
    lmdb::Env env;
    MDB_dbi db = 0;
    lmdb::MapLock lock;
    std::atomic<int> grows{0}, adopts{0};
    std::optional<Failure> grow_failure;  // set: the map "cannot grow"
    WriteBatcher batcher{env,
                         lock,
                         {[this]() -> std::optional<Failure> {
                              ++grows;
                              if (grow_failure) return grow_failure;
                              lmdb::MapLock::Exclusive x(lock);
                              if (int rc = env.set_map_size(env.map_size() * 2); rc != 0)
                                  return lmdb::lmdb_failure(rc, "growing", env.data_path());
                              return std::nullopt;
                          },
                          [this]() -> std::optional<Failure> {
                              ++adopts;
                              return std::nullopt;
                          }},
                         6};
};

// What one caller of write() got.
struct Result {
    std::optional<Failure> failure;
    std::string thrown;  // what() of an exception, if one came out
    bool ok() const { return !failure && thrown.empty(); }
};

Result call(WriteBatcher& b, const WriteBody& body) {
    Result r;
    try {
        r.failure = b.write(body);
    } catch (const std::exception& e) {
        r.thrown = e.what();
    } catch (...) {
        r.thrown = "an exception that is not a std::exception";
    }
    return r;
}

// Runs `lead` as the only write and holds it inside its transaction until
// every write in `rest` (one thread each) has queued behind it; then lets
// it go.  So `rest` shares the next batch (batches of kMaxWriteBatch).
// Results in order, lead first.
std::vector<Result> behind_one(WriteBatcher& b, const WriteBody& lead,
                               const std::vector<WriteBody>& rest) {
    std::latch entered(1), release(1);
    std::atomic<bool> first_run{true};
    WriteBody held = [&](lmdb::Txn& t) {
        if (first_run.exchange(false)) {
            entered.count_down();
            release.wait();
        }
        return lead(t);
    };
    std::vector<Result> results(rest.size() + 1);
    std::thread leader([&] { results[0] = call(b, held); });
    entered.wait();
    std::vector<std::thread> followers;
    for (std::size_t i = 0; i < rest.size(); ++i)
        followers.emplace_back([&, i] { results[i + 1] = call(b, rest[i]); });
    b.wait_until_queued(rest.size());
    release.count_down();
    leader.join();
    for (auto& t : followers) t.join();
    return results;
}

std::string key(int i) { return "k" + std::to_string(i); }
std::string val(int i, std::size_t size = 16) {
    std::string v = "v" + std::to_string(i) + ":";
    v.resize(size, static_cast<char>('a' + i % 26));
    return v;
}

}  // namespace

// Lives here, not in lmdb_env_test.cc, because the group commit is what
// relies on it.
TEST_CASE(
    "lmdb: a nested transaction's commit reaches its parent, its abort leaves the parent as it "
    "was") {
    Bed bed(64 * 1024);
    lmdb::Txn parent;
    REQUIRE(parent.begin(bed.env, lmdb::TxnKind::read_write) == 0);
    {
        lmdb::Txn child;
        REQUIRE(child.begin_nested(parent) == 0);
        REQUIRE(child.put(bed.db, "kept", "1") == 0);
        REQUIRE(child.commit() == 0);
    }
    {
        lmdb::Txn child;
        REQUIRE(child.begin_nested(parent) == 0);
        REQUIRE(child.put(bed.db, "dropped", "2") == 0);
        REQUIRE(child.del(bed.db, "kept") == 0);
    }  // ~Txn aborts the child only
    {
        // Fill the map inside a child: MDB_MAP_FULL there leaves the parent usable.
        lmdb::Txn child;
        REQUIRE(child.begin_nested(parent) == 0);
        int rc = 0;
        for (int i = 0; rc == 0 && i < 1000; ++i) rc = child.put(bed.db, key(i), val(i, 1000));
        CHECK(rc == MDB_MAP_FULL);
    }
    lmdb::Txn reader;  // not a write txn: refused as a parent
    REQUIRE(reader.begin(bed.env, lmdb::TxnKind::read_only) == 0);
    lmdb::Txn bad;
    CHECK(bad.begin_nested(reader) == EINVAL);
    reader.abort();
    REQUIRE(parent.commit() == 0);
    CHECK(bed.get("kept") == "1");
    CHECK(bed.get("dropped") == "<absent>");
    CHECK(bed.get(key(0)) == "<absent>");
    lmdb::Txn orphan;
    CHECK(orphan.begin_nested(parent) == EINVAL);  // the parent is gone
}

TEST_CASE("group commit: a lone writer commits at once (one commit per call)") {
    Bed bed;
    for (int i = 0; i < 5; ++i) {
        REQUIRE(call(bed.batcher, bed.put(key(i), val(i))).ok());
        CHECK(bed.get(key(i)) == val(i));  // visible (committed) as soon as write() returns
        CHECK(bed.batcher.counters().commits == static_cast<std::uint64_t>(i + 1));
    }
    WriteCounters c = bed.batcher.counters();
    CHECK(c.writes == 5);
    CHECK(c.batches == 5);
    // A write that changes nothing does not commit (no fsync).
    CHECK(call(bed.batcher, [](lmdb::Txn&) { return WriteStep{0, "", std::nullopt, false}; }).ok());
    CHECK(bed.batcher.counters().commits == 5);
    CHECK(bed.batcher.counters().writes == 6);
}

TEST_CASE("group commit: writers that queue behind a commit share the next commit") {
    Bed bed;
    std::vector<WriteBody> rest;
    for (int i = 1; i <= 12; ++i) rest.push_back(bed.put(key(i), val(i)));
    auto results = behind_one(bed.batcher, bed.put(key(0), val(0)), rest);
    for (std::size_t i = 0; i < results.size(); ++i) {
        INFO("writer " << i);
        CHECK(results[i].ok());
        CHECK(bed.get(key(static_cast<int>(i))) == val(static_cast<int>(i)));
    }
    WriteCounters c = bed.batcher.counters();
    CHECK(c.writes == 13);
    CHECK(c.batches == 2);
    CHECK(c.commits == 2);  // the lone first write, then the 12 queued behind it
}

TEST_CASE("group commit: more writers than kMaxWriteBatch take several batches") {
    Bed bed;
    const int n = static_cast<int>(kMaxWriteBatch) + 20;
    std::vector<WriteBody> rest;
    // Every writer appends its number to one key: the final value shows
    // each one's change committed exactly once.
    for (int i = 1; i <= n; ++i) {
        rest.push_back([&bed, i](lmdb::Txn& t) {
            WriteStep st;
            std::string_view old;
            int rc = t.get(bed.db, "log", old);
            std::string v = rc == 0 ? std::string(old) : std::string();
            v += std::to_string(i) + ",";
            st.rc = t.put(bed.db, "log", v);
            st.during = "appending";
            return st;
        });
    }
    auto results = behind_one(bed.batcher, bed.put("log", ""), rest);
    for (const auto& r : results) CHECK(r.ok());
    CHECK(bed.batcher.counters().commits == 3);  // 1, then 64, then 20
    CHECK(bed.batcher.counters().batches == 3);
    std::string log = bed.get("log");
    std::vector<bool> seen(n + 1, false);
    std::size_t pos = 0;
    int count = 0;
    while (pos < log.size()) {
        std::size_t comma = log.find(',', pos);
        REQUIRE(comma != std::string::npos);
        int i = std::stoi(log.substr(pos, comma - pos));
        REQUIRE(i >= 1);
        REQUIRE(i <= n);
        CHECK_FALSE(seen[i]);
        seen[i] = true;
        ++count;
        pos = comma + 1;
    }
    CHECK(count == n);
}

TEST_CASE("group commit: a failing write fails alone, the others in its batch commit") {
    Bed bed;
    REQUIRE(call(bed.batcher, bed.put("shared", "before")).ok());
    std::vector<WriteBody> rest;
    rest.push_back(bed.put(key(1), val(1)));
    // Its own Failure, after writing: the write must vanish.
    rest.push_back([&bed](lmdb::Txn& t) {
        WriteStep st;
        st.rc = t.put(bed.db, "shared", "from the failing write");
        if (st.rc == 0) st.failure = Failure::perm("cache-key-mismatch", "injected");
        return st;
    });
    rest.push_back(bed.put(key(2), val(2)));
    // An LMDB error of its own (an empty key is refused).
    rest.push_back([&bed](lmdb::Txn& t) {
        WriteStep st;
        st.during = "writing an empty key";
        st.rc = t.put(bed.db, key(90), "partial");
        if (st.rc == 0) st.rc = t.put(bed.db, "", "x");
        return st;
    });
    // An exception (a broken invariant, bad_alloc): rethrown to its caller only.
    rest.push_back([&bed](lmdb::Txn& t) -> WriteStep {
        if (t.put(bed.db, "shared", "from the throwing write") != 0) return {};
        throw std::runtime_error("broken invariant");
    });
    rest.push_back(bed.put(key(3), val(3)));
    auto r = behind_one(bed.batcher, bed.put(key(0), val(0)), rest);
    REQUIRE(r.size() == 7);
    CHECK(r[0].ok());
    CHECK(r[1].ok());
    REQUIRE(r[2].failure);
    CHECK(r[2].failure->code == "cache-key-mismatch");
    CHECK(r[3].ok());
    REQUIRE(r[4].failure);
    CHECK(r[4].failure->reason.find("writing an empty key") != std::string::npos);
    CHECK(r[4].failure->reason.find(bed.env.data_path()) != std::string::npos);
    CHECK_FALSE(r[5].failure);
    CHECK(r[5].thrown == "broken invariant");
    CHECK(r[6].ok());
    for (int i = 0; i <= 3; ++i) CHECK(bed.get(key(i)) == val(i));
    CHECK(bed.get("shared") == "before");
    CHECK(bed.get(key(90)) == "<absent>");
    CHECK(bed.batcher.counters().commits == 3);  // "before", the lead, the batch
    // The leader role was handed back: a lone write still goes through.
    CHECK(call(bed.batcher, bed.put(key(4), val(4))).ok());
    CHECK(bed.batcher.counters().commits == 4);
}

TEST_CASE(
    "group commit: a leader whose own write throws still commits its batch and hands on the role") {
    Bed bed;
    std::vector<WriteBody> rest;
    for (int i = 1; i <= 4; ++i) rest.push_back(bed.put(key(i), val(i)));
    auto r = behind_one(
        bed.batcher, [](lmdb::Txn&) -> WriteStep { throw std::bad_alloc(); }, rest);
    CHECK(r[0].thrown == std::bad_alloc().what());
    for (int i = 1; i <= 4; ++i) {
        CHECK(r[static_cast<std::size_t>(i)].ok());
        CHECK(bed.get(key(i)) == val(i));
    }
    CHECK(bed.batcher.counters().commits == 1);  // the leader's write had nothing to commit
    CHECK(call(bed.batcher, bed.put(key(5), val(5))).ok());
}

TEST_CASE("group commit: writes that change nothing in a batch add no commit") {
    Bed bed;
    auto nothing = [](lmdb::Txn&) { return WriteStep{0, "", std::nullopt, false}; };
    auto r = behind_one(bed.batcher, nothing, {nothing, nothing, nothing});
    for (const auto& x : r) CHECK(x.ok());
    CHECK(bed.batcher.counters().commits == 0);
    CHECK(bed.batcher.counters().batches == 2);
}

TEST_CASE(
    "group commit: map growth during a batch reruns the bodies that did not fit and loses none") {
    Bed bed(64 * 1024);
    const std::size_t map_before = bed.env.map_size();
    std::vector<WriteBody> rest;
    std::vector<std::unique_ptr<std::atomic<int>>> runs;
    for (int i = 1; i <= 24; ++i) {
        runs.push_back(std::make_unique<std::atomic<int>>(0));
        std::atomic<int>* n = runs.back().get();
        WriteBody put = bed.put(key(i), val(i, 6000));  // two overflow pages each
        rest.push_back([n, put](lmdb::Txn& t) {
            ++*n;
            return put(t);
        });
    }
    auto r = behind_one(bed.batcher, bed.put(key(0), val(0)), rest);
    for (std::size_t i = 0; i < r.size(); ++i) {
        INFO("writer " << i);
        CHECK(r[i].ok());
    }
    for (int i = 0; i <= 24; ++i) CHECK(bed.get(key(i)) == val(i, i == 0 ? 16 : 6000));
    CHECK(bed.grows.load() >= 1);
    CHECK(bed.env.map_size() > map_before);
    int reran = 0;
    for (const auto& n : runs) {
        CHECK(n->load() >= 1);
        if (n->load() > 1) ++reran;
    }
    CHECK(reran >= 1);  // the bodies that hit MDB_MAP_FULL ran again on fresh input
}

TEST_CASE(
    "group commit: a body that hits MDB_MAP_FULL runs again after the growth; the rest of its "
    "batch commits first") {
    Bed bed;
    std::atomic<int> runs{0};
    WriteBody once_full = [&](lmdb::Txn& t) {
        WriteStep st;
        st.during = "writing big";
        // What it sees on the second run shows the others committed first.
        std::string_view other;
        bool others_visible = t.get(bed.db, key(1), other) == 0;
        if (runs++ == 0) {
            st.rc = MDB_MAP_FULL;
            return st;
        }
        st.rc = t.put(bed.db, "big", others_visible ? "after the others" : "alone");
        return st;
    };
    auto r = behind_one(bed.batcher, bed.put(key(0), val(0)),
                        {bed.put(key(1), val(1)), once_full, bed.put(key(2), val(2))});
    for (const auto& x : r) CHECK(x.ok());
    CHECK(runs.load() == 2);
    CHECK(bed.grows.load() == 1);
    CHECK(bed.get("big") == "after the others");
    CHECK(bed.get(key(2)) == val(2));
    CHECK(bed.batcher.counters().commits == 3);  // lead; k1+k2; then "big" alone
}

TEST_CASE(
    "group commit: when the map cannot grow only the writes that did not fit fail (cache-full)") {
    Bed bed;
    bed.grow_failure = Failure::temp("cache-full", "the map reached its limit");
    WriteBody never_fits = [](lmdb::Txn&) {
        WriteStep st;
        st.during = "writing big";
        st.rc = MDB_MAP_FULL;
        return st;
    };
    auto r = behind_one(bed.batcher, bed.put(key(0), val(0)),
                        {bed.put(key(1), val(1)), never_fits, bed.put(key(2), val(2))});
    CHECK(r[0].ok());
    CHECK(r[1].ok());
    REQUIRE(r[2].failure);
    CHECK(r[2].failure->code == "cache-full");
    CHECK(r[3].ok());
    CHECK(bed.get(key(1)) == val(1));
    CHECK(bed.get(key(2)) == val(2));

    // Alone, and the map keeps "growing" but never has room: after 6
    // attempts the write reports MDB_MAP_FULL as cache-full.
    bed.grow_failure.reset();
    bed.grows = 0;
    auto alone = call(bed.batcher, never_fits);
    REQUIRE(alone.failure);
    CHECK(alone.failure->code == "cache-full");
    CHECK(alone.failure->reason.find("writing big") != std::string::npos);
    CHECK(bed.grows.load() == 5);
}

TEST_CASE("group commit: a map grown by another process is adopted and the batch runs again") {
    Bed bed;
    std::atomic<int> runs{0};
    WriteBody resized_once = [&](lmdb::Txn& t) {
        WriteStep st;
        st.during = "writing r";
        st.rc = runs++ == 0 ? MDB_MAP_RESIZED : t.put(bed.db, "r", "1");
        return st;
    };
    auto r =
        behind_one(bed.batcher, bed.put(key(0), val(0)), {resized_once, bed.put(key(1), val(1))});
    for (const auto& x : r) CHECK(x.ok());
    CHECK(bed.adopts.load() == 1);
    CHECK(bed.grows.load() == 0);
    CHECK(bed.get("r") == "1");
    CHECK(bed.get(key(1)) == val(1));
}

TEST_CASE("group commit: a write is durable when write() returns (reopen the env and read it)") {
    TempDir d;
    const std::string dir = d.path() + "/env";
    REQUIRE(mkdir(dir.c_str(), 0700) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // The writer: a batch with fsync, then killed the moment every
        // write() returned.  No doctest here (another process).
        int code = 0;
        {
            Bed bed(1 << 20, lmdb::EnvSync::full, dir);
            std::vector<WriteBody> rest;
            for (int i = 1; i <= 10; ++i) rest.push_back(bed.put(key(i), val(i)));
            auto r = behind_one(bed.batcher, bed.put(key(0), val(0)), rest);
            for (const auto& x : r)
                if (!x.ok()) code = 3;
            if (bed.batcher.counters().commits != 2) code = 4;
            if (code == 0) raise(SIGKILL);  // no destructor, no env close
        }
        _exit(code);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    Bed again(1 << 20, lmdb::EnvSync::full, dir);
    for (int i = 0; i <= 10; ++i) CHECK(again.get(key(i)) == val(i));
}

TEST_CASE(
    "group commit: when the batch's commit fails every write that ran gets the failure, a write "
    "that failed keeps its own") {
    TempDir d;
    const std::string dir = d.path() + "/env";
    REQUIRE(mkdir(dir.c_str(), 0700) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // The data file may not grow (like a full disk): the commit fails
        // with EFBIG.  No doctest here (another process).
        signal(SIGXFSZ, SIG_IGN);
        Bed bed(1 << 20, lmdb::EnvSync::full, dir);
        struct stat st {};
        if (stat(bed.env.data_path().c_str(), &st) != 0) _exit(2);
        struct rlimit lim {
            static_cast<rlim_t>(st.st_size), static_cast<rlim_t>(st.st_size)
        };
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(2);
        WriteBody own_failure = [](lmdb::Txn&) {
            WriteStep s;
            s.failure = Failure::perm("own-failure", "mine");
            return s;
        };
        WriteBody nothing = [](lmdb::Txn&) { return WriteStep{0, "", std::nullopt, false}; };
        auto r = behind_one(
            bed.batcher, bed.put(key(0), val(0, 20000)),
            {bed.put(key(1), val(1, 20000)), own_failure, nothing, bed.put(key(2), val(2, 20000))});
        int code = 0;
        auto full = [](const Result& x) {
            return x.failure && x.failure->code == "cache-full" &&
                   x.failure->reason.find("committing") != std::string::npos;
        };
        if (!full(r[0])) code = 10;
        if (!full(r[1])) code = 11;
        if (!r[2].failure || r[2].failure->code != "own-failure") code = 12;
        if (!full(r[3])) code = 13;  // it saw the lost changes of the batch
        if (!full(r[4])) code = 14;
        if (bed.batcher.counters().commits != 0) code = 15;
        if (bed.get(key(1)) != "<absent>") code = 16;
        _exit(code);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
