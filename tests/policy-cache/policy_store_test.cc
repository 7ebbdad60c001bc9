// Tests for policy-cache/policy_store.cc: the LMDB policy store (RFC 8461 5).
#include "policy-cache/policy_store.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <latch>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "policy-cache/lmdb_env.h"
#include "tests/temp_dir.h"

using stsguard::testing::TempDir;
using namespace stsguard;

namespace {

std::string cache_dir(const TempDir& d) { return d.path() + "/cache"; }


DomainName dn(const std::string& s) {
    auto d = DomainName::parse(s);
    if (!d) throw std::logic_error("bad test domain " + s);
    return *d;
}

DomainName nth_domain(int i) { return dn("d" + std::to_string(i) + ".example"); }

// Deterministic record number i, so a reader can check a record is intact
// without having seen it written.
CacheRecord nth_record(int i) {
    CacheRecord r(nth_domain(i));
    if (i % 5 == 4) {
        r.last_outcome = {OutcomeKind::no_policy, "no-sts-record", "no _mta-sts TXT record"};
        r.next_refresh = from_unix(1'700'000'000 + 3600);
        return r;
    }
    Policy p;
    p.version = "STSv1";
    p.mode = i % 3 == 0 ? Mode::enforce : i % 3 == 1 ? Mode::testing : Mode::none;
    p.max_age = Seconds{86400 + i};
    p.mx = {"mx" + std::to_string(i) + ".example", "*.backup.example"};
    std::string body = "version: STSv1\nmode: " +
                       std::string(p.mode == Mode::enforce   ? "enforce"
                                   : p.mode == Mode::testing ? "testing"
                                                             : "none") +
                       "\nmx: mx" + std::to_string(i) +
                       ".example\nmx: *.backup.example\nmax_age: " + std::to_string(86400 + i) +
                       "\n";
    r.set_policy(body, p, PolicyId("id" + std::to_string(i)), from_unix(1'700'000'000 + i));
    r.last_checked = from_unix(1'700'000'000 + 2 * i);
    r.next_refresh = r.expires_at - Seconds{3600};
    r.last_outcome = {OutcomeKind::ok, "ok", ""};
    r.consecutive_failures = static_cast<std::uint32_t>(i % 4);
    r.mx_hosts = {"mx" + std::to_string(i) + ".example"};
    r.mx_expires_at = from_unix(1'700'000'300 + i);
    return r;
}

// Most tests skip fsync (MDB_NOSYNC) to stay fast on a loaded machine;
// process crashes are survived either way.  The durability tests use full.
StoreOptions opts_for(const TempDir& d, std::size_t map = 1 << 20,
                      lmdb::EnvSync sync = lmdb::EnvSync::no_sync) {
    StoreOptions o;
    o.dir = cache_dir(d);
    o.initial_map_size = map;
    o.sync = sync;
    return o;
}

std::unique_ptr<PolicyStore> open_ok(const StoreOptions& o) {
    auto s = PolicyStore::open(o);
    if (s.failed()) FAIL(s.failure().code << ": " << s.failure().reason);
    REQUIRE(s.found());
    return std::move(s.value());
}

void put_ok(PolicyStore& s, const CacheRecord& r) {
    auto f = s.put(r);
    if (f) FAIL(f->code << ": " << f->reason);
}

// Raw access for tests that plant bad data: only while no store is open
// in this process.
void raw_put(const std::string& dir, const char* db, const std::string& key,
             const std::string& value) {
    lmdb::Env env;
    lmdb::EnvOptions o;
    o.map_size = 1 << 20;
    REQUIRE(env.open(dir, o) == 0);
    lmdb::Txn t;
    REQUIRE(t.begin(env, lmdb::TxnKind::read_write) == 0);
    MDB_dbi dbi = 0;
    REQUIRE(t.open_dbi(db, MDB_CREATE, dbi) == 0);
    REQUIRE(t.put(dbi, key, value) == 0);
    REQUIRE(t.commit() == 0);
}

std::string u32le(std::uint32_t v) {
    std::string s(4, '\0');
    for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    return s;
}

int wait_exit(pid_t pid) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status)) return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return WEXITSTATUS(status);
}

// Group commit: holds a lone update of lead inside its transaction until
// every call in `rest` (one thread each) has queued behind it, then lets
// it commit, so `rest` shares the next batch.  Failures in order, lead's
// first.  A call that throws reports the failure code "thrown".
using StoreCall = std::function<std::optional<Failure>()>;
std::vector<std::optional<Failure>> behind_one_update(PolicyStore& s, const CacheRecord& lead,
                                                      const std::vector<StoreCall>& rest) {
    std::latch entered(1), release(1);
    std::atomic<bool> first_run{true};
    std::vector<std::optional<Failure>> out(rest.size() + 1);
    auto guarded = [](const StoreCall& c) -> std::optional<Failure> {
        try {
            return c();
        } catch (const std::exception& e) {
            return Failure::perm("thrown", e.what());
        }
    };
    std::thread leader([&] {
        out[0] = guarded([&] {
            return s.update(lead.domain, [&](std::optional<CacheRecord>& r) {
                if (first_run.exchange(false)) {
                    entered.count_down();
                    release.wait();
                }
                r = lead;
            });
        });
    });
    entered.wait();
    std::vector<std::thread> followers;
    for (std::size_t i = 0; i < rest.size(); ++i)
        followers.emplace_back([&, i] { out[i + 1] = guarded(rest[i]); });
    s.wait_until_writes_queued(rest.size());
    release.count_down();
    leader.join();
    for (auto& t : followers) t.join();
    return out;
}

}  // namespace

TEST_CASE("store: open creates the cache directory 0750 and a schema-1 store") {
    TempDir d;
    StoreOptions o = opts_for(d);
    o.dir = d.path() + "/var/lib/stsguard";
    auto s = open_ok(o);
    struct stat st {};
    REQUIRE(stat(o.dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0750);
    CHECK(s->data_path() == o.dir + "/data.mdb");
    auto stats = s->stats(StatsDetail::quick);
    REQUIRE(stats.found());
    CHECK(stats.value().entries == 0);
    CHECK(stats.value().schema_version == kSchemaVersion);
    CHECK(stats.value().map_bytes >= (1u << 20));
    CHECK(stats.value().file_bytes > 0);
}

TEST_CASE("store: every field of a record survives put and get (RFC 8461 5)") {
    TempDir d;
    auto s = open_ok(opts_for(d, 1 << 20, lmdb::EnvSync::full));
    for (int i = 0; i < 10; ++i) put_ok(*s, nth_record(i));
    for (int i = 0; i < 10; ++i) {
        auto r = s->get(nth_domain(i));
        REQUIRE(r.found());
        CHECK(r.value() == nth_record(i));
    }
    // A reopened store (a restarted service) still has them.
    s.reset();
    s = open_ok(opts_for(d));
    auto r = s->get(nth_domain(7));
    REQUIRE(r.found());
    CHECK(r.value() == nth_record(7));
}

TEST_CASE("store: an unknown domain is NotFound, and put replaces a record") {
    TempDir d;
    auto s = open_ok(opts_for(d));
    auto none = s->get(dn("unknown.example"));
    CHECK(none.not_found());
    CHECK(none.not_found_info().reason.find("unknown.example") != std::string::npos);
    CacheRecord r = nth_record(1);
    put_ok(*s, r);
    r.policy.mode = Mode::enforce;
    r.last_outcome = {OutcomeKind::permanent, "policy-invalid", "line 2: bad mode"};
    put_ok(*s, r);
    auto got = s->get(r.domain);
    REQUIRE(got.found());
    CHECK(got.value() == r);
    CHECK(s->stats(StatsDetail::quick).value().entries == 1);
}

TEST_CASE("store: put_all writes a batch all or nothing, growing the map as needed") {
    TempDir d;
    auto s = open_ok(opts_for(d, 64 * 1024));
    std::vector<CacheRecord> batch;
    for (int i = 0; i < 2000; ++i) batch.push_back(nth_record(i));
    batch.back().policy_body.assign(kMaxPolicyBytes + 1, 'x');
    auto f = s->put_all(batch);
    REQUIRE(f);
    CHECK(f->code == "cache-record-too-large");
    CHECK(s->stats(StatsDetail::quick).value().entries == 0);

    batch.back() = nth_record(1999);
    CHECK_FALSE(s->put_all(batch));
    CHECK(s->stats(StatsDetail::quick).value().entries == 2000);
    CHECK(s->stats(StatsDetail::quick).value().map_bytes > 64 * 1024);
    for (int i = 0; i < 2000; i += 111) CHECK(s->get(nth_domain(i)).value() == nth_record(i));
}

TEST_CASE("store: remove deletes one record and reports an absent one as NotFound") {
    TempDir d;
    auto s = open_ok(opts_for(d));
    put_ok(*s, nth_record(1));
    put_ok(*s, nth_record(2));
    CHECK(s->remove(nth_domain(1)).found());
    CHECK(s->get(nth_domain(1)).not_found());
    CHECK(s->get(nth_domain(2)).found());
    CHECK(s->remove(nth_domain(1)).not_found());
}

TEST_CASE("store: update reads, modifies and writes in one transaction") {
    TempDir d;
    auto s = open_ok(opts_for(d));
    const DomainName dom = nth_domain(3);

    // Absent: the callback sees nullopt and may create the record.
    bool saw_absent = false;
    auto f = s->update(dom, [&](std::optional<CacheRecord>& r) {
        saw_absent = !r.has_value();
        r = nth_record(3);
    });
    CHECK_FALSE(f);
    CHECK(saw_absent);
    CHECK(s->get(dom).value() == nth_record(3));

    // Present: modified in place.
    f = s->update(dom, [](std::optional<CacheRecord>& r) {
        REQUIRE(r);
        r->consecutive_failures += 10;
        r->last_outcome = {OutcomeKind::temporary, "dns-timeout", "no answer"};
    });
    CHECK_FALSE(f);
    auto got = s->get(dom);
    REQUIRE(got.found());
    CHECK(got.value().consecutive_failures == nth_record(3).consecutive_failures + 10);
    CHECK(got.value().last_outcome.code == "dns-timeout");

    // Left unchanged: nothing to write.
    CHECK_FALSE(s->update(dom, [](std::optional<CacheRecord>&) {}));
    CHECK(s->get(dom).value() == got.value());

    // Reset to nullopt: removed.
    CHECK_FALSE(s->update(dom, [](std::optional<CacheRecord>& r) { r.reset(); }));
    CHECK(s->get(dom).not_found());
    CHECK_FALSE(s->update(dom, [](std::optional<CacheRecord>& r) { CHECK_FALSE(r); }));
}

TEST_CASE("store: a failed or throwing update changes nothing and leaves the store usable") {
    TempDir d;
    auto s = open_ok(opts_for(d));
    put_ok(*s, nth_record(1));

    auto f = s->update(nth_domain(1), [](std::optional<CacheRecord>& r) { r = nth_record(2); });
    REQUIRE(f);
    CHECK(f->code == "cache-key-mismatch");
    CHECK(s->get(nth_domain(1)).value() == nth_record(1));
    CHECK(s->get(nth_domain(2)).not_found());

    CHECK_THROWS_AS(s->update(nth_domain(1),
                              [](std::optional<CacheRecord>& r) {
                                  r->consecutive_failures = 99;
                                  throw std::runtime_error("broken invariant");
                              }),
                    std::runtime_error);
    CHECK(s->get(nth_domain(1)).value() == nth_record(1));
    put_ok(*s, nth_record(4));  // the write lock was released

    f = s->update(nth_domain(1), [](std::optional<CacheRecord>& r) {
        r->policy_body.assign(kMaxPolicyBytes + 1, 'x');
    });
    REQUIRE(f);
    CHECK(f->code == "cache-record-too-large");
    CHECK(s->get(nth_domain(1)).value() == nth_record(1));
}

TEST_CASE("store: concurrent updates from several processes lose no increment") {
    TempDir d;
    {
        auto s = open_ok(opts_for(d));
        put_ok(*s, nth_record(0));
    }
    const int kProcs = 3, kEach = 40;
    std::vector<pid_t> kids;
    for (int p = 0; p < kProcs; ++p) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            auto s = PolicyStore::open(opts_for(d));
            if (!s.found()) _exit(2);
            for (int i = 0; i < kEach; ++i)
                if (s.value()->update(nth_domain(0), [](std::optional<CacheRecord>& r) {
                        if (r) ++r->consecutive_failures;
                    }))
                    _exit(3);
            _exit(0);
        }
        kids.push_back(pid);
    }
    for (pid_t pid : kids) CHECK(wait_exit(pid) == 0);
    auto s = open_ok(opts_for(d));
    auto r = s->get(nth_domain(0));
    REQUIRE(r.found());
    CHECK(r.value().consecutive_failures == nth_record(0).consecutive_failures + kProcs * kEach);
}

TEST_CASE("store: two processes share one cache, each with its own environment") {
    TempDir d;
    auto s = open_ok(opts_for(d, 64 * 1024));
    put_ok(*s, nth_record(1));
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Never touch the parent's store here (LMDB: no env across fork).
        auto c = PolicyStore::open(opts_for(d, 64 * 1024));
        if (!c.found()) _exit(2);
        auto r = c.value()->get(nth_domain(1));
        if (!r.found() || !(r.value() == nth_record(1))) _exit(3);
        // Far more than 64 KiB: this process grows the map.
        for (int i = 2; i < 1500; ++i)
            if (c.value()->put(nth_record(i))) _exit(4);
        _exit(0);
    }
    REQUIRE(wait_exit(pid) == 0);
    // The other process grew the map beyond ours: adopted on MDB_MAP_RESIZED.
    for (int i : {2, 750, 1499}) {
        auto r = s->get(nth_domain(i));
        if (r.failed()) FAIL(r.failure().reason);
        REQUIRE(r.found());
        CHECK(r.value() == nth_record(i));
    }
    put_ok(*s, nth_record(1500));  // and writes work with the adopted size
    CHECK(s->stats(StatsDetail::quick).value().entries == 1500);
}

TEST_CASE("store: the map doubles when full, starting from 64 KiB") {
    TempDir d;
    auto s = open_ok(opts_for(d, 64 * 1024));
    const std::size_t first = s->stats(StatsDetail::quick).value().map_bytes;
    for (int i = 0; i < 3000; ++i) put_ok(*s, nth_record(i));
    auto st = s->stats(StatsDetail::quick);
    REQUIRE(st.found());
    CHECK(st.value().entries == 3000);
    CHECK(st.value().map_bytes > first);
    CHECK(st.value().used_bytes <= st.value().map_bytes);
    for (int i = 0; i < 3000; i += 97) CHECK(s->get(nth_domain(i)).value() == nth_record(i));
}

TEST_CASE("store: a map at its limit is a temporary cache-full and lookups keep working") {
    TempDir d;
    StoreOptions o = opts_for(d, 64 * 1024);
    o.max_map_size = 256 * 1024;
    auto s = open_ok(o);
    std::optional<Failure> f;
    int written = 0;
    for (; written < 5000 && !f; ++written) f = s->put(nth_record(written));
    REQUIRE(f);
    CHECK(f->code == "cache-full");
    CHECK(f->temporary());
    CHECK(f->reason.find(s->data_path()) != std::string::npos);
    CHECK(s->get(nth_domain(0)).value() == nth_record(0));
    CHECK(s->get(nth_domain(written - 2)).value() == nth_record(written - 2));
    CHECK(s->remove(nth_domain(0)).found());  // deleting still works
}

TEST_CASE("store: a full disk is a temporary cache-full and lookups keep working") {
    TempDir d;
    {
        auto s = open_ok(opts_for(d));
        for (int i = 0; i < 20; ++i) put_ok(*s, nth_record(i));
    }
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // The file may not grow past its current size: like a full disk
        // (EFBIG instead of ENOSPC; SIGXFSZ ignored so write() fails).
        signal(SIGXFSZ, SIG_IGN);
        auto s = PolicyStore::open(opts_for(d));
        if (!s.found()) _exit(2);
        struct stat st {};
        if (stat(s.value()->data_path().c_str(), &st) != 0) _exit(3);
        struct rlimit lim {
            static_cast<rlim_t>(st.st_size), static_cast<rlim_t>(st.st_size)
        };
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(4);
        std::optional<Failure> f;
        for (int i = 20; i < 2000 && !f; ++i) f = s.value()->put(nth_record(i));
        if (!f) _exit(5);
        if (f->code != "cache-full" || !f->temporary()) _exit(6);
        auto r = s.value()->get(nth_domain(3));
        if (!r.found() || !(r.value() == nth_record(3))) _exit(7);
        _exit(0);
    }
    CHECK(wait_exit(pid) == 0);
    auto s = open_ok(opts_for(d));
    CHECK(s->get(nth_domain(19)).value() == nth_record(19));
}

TEST_CASE("store: a newer schema is refused with a clear message") {
    TempDir d;
    {
        auto s = open_ok(opts_for(d));
        put_ok(*s, nth_record(1));
    }
    raw_put(cache_dir(d), "meta", kSchemaKey, u32le(kSchemaVersion + 1));
    auto s = PolicyStore::open(opts_for(d));
    REQUIRE(s.failed());
    CHECK(s.failure().code == "cache-schema-newer");
    CHECK_FALSE(s.failure().temporary());
    CHECK(s.failure().reason.find("written by a newer stsguard (schema 2") != std::string::npos);
    CHECK(s.failure().reason.find("upgrade stsguard or move the cache aside") != std::string::npos);
    CHECK(s.failure().reason.find(cache_dir(d) + "/data.mdb") != std::string::npos);
}

TEST_CASE("store: a schema-0 cache is migrated read-write and refused read-only") {
    TempDir d;
    { auto s = open_ok(opts_for(d)); }
    raw_put(cache_dir(d), "policies", "d1.example", *encode_record(nth_record(1)));
    raw_put(cache_dir(d), "policies", "D2.Example",
            *encode_record(nth_record(2)));  // key not normalized
    raw_put(cache_dir(d), "policies", "d3.example", "garbage");
    raw_put(cache_dir(d), "meta", kSchemaKey, u32le(0));

    StoreOptions ro = opts_for(d);
    ro.access = StoreAccess::read_only;
    auto r = PolicyStore::open(ro);
    REQUIRE(r.failed());
    CHECK(r.failure().code == "cache-schema-old");
    CHECK(r.failure().reason.find("schema 0") != std::string::npos);

    auto s = open_ok(opts_for(d));
    auto st = s->stats(StatsDetail::by_mode);
    REQUIRE(st.found());
    CHECK(st.value().schema_version == 1);
    CHECK(st.value().entries == 1);
    CHECK(st.value().corrupt == 0);
    CHECK(s->get(nth_domain(1)).value() == nth_record(1));
    s.reset();
    auto again = PolicyStore::open(ro);  // now current: read-only works
    REQUIRE(again.found());
    CHECK(again.value()->stats(StatsDetail::quick).value().schema_version == 1);
}

TEST_CASE("store: records without a schema marker or a malformed marker are corruption") {
    TempDir d;
    raw_put((std::filesystem::create_directories(cache_dir(d)), cache_dir(d)), "policies", "d1.example",
            *encode_record(nth_record(1)));
    auto s = PolicyStore::open(opts_for(d));
    REQUIRE(s.failed());
    CHECK(s.failure().code == "cache-corrupt");
    CHECK(s.failure().reason.find("no schema version") != std::string::npos);

    raw_put(cache_dir(d), "meta", kSchemaKey, "1");
    s = PolicyStore::open(opts_for(d));
    REQUIRE(s.failed());
    CHECK(s.failure().code == "cache-corrupt");
}

TEST_CASE("store: a data file of garbage is refused naming the file and the recovery command") {
    TempDir d;
    std::filesystem::create_directories(cache_dir(d));
    {
        int fd = ::open((cache_dir(d) + "/data.mdb").c_str(), O_CREAT | O_WRONLY, 0600);
        REQUIRE(fd >= 0);
        std::string junk(128 * 1024, '\0');
        for (std::size_t i = 0; i < junk.size(); ++i)
            junk[i] = static_cast<char>((i * 131) ^ (i >> 7));
        REQUIRE(::write(fd, junk.data(), junk.size()) == static_cast<ssize_t>(junk.size()));
        ::close(fd);
    }
    for (StoreAccess a : {StoreAccess::read_write, StoreAccess::read_only}) {
        StoreOptions o = opts_for(d);
        o.access = a;
        auto s = PolicyStore::open(o);
        REQUIRE(s.failed());
        CHECK(s.failure().code == "cache-corrupt");
        CHECK_FALSE(s.failure().temporary());
        CHECK(s.failure().reason ==
              "stsguard cache: " + cache_dir(d) +
                  "/data.mdb is corrupt (opening the environment: MDB_INVALID: File is not an "
                  "LMDB file); move it aside and rebuild with: stsguard cache import "
                  "<export.jsonl>, or delete it: the cache refills itself");
    }
}

TEST_CASE("store: one undecodable record fails for its domain only and is replaced by update") {
    TempDir d;
    {
        auto s = open_ok(opts_for(d));
        for (int i = 0; i < 5; ++i) put_ok(*s, nth_record(i));
    }
    std::string bogus = *encode_record(nth_record(2));
    bogus.resize(bogus.size() - 3);
    raw_put(cache_dir(d), "policies", nth_domain(2).str(), bogus);
    raw_put(cache_dir(d), "policies", "Not_Normal.Example", *encode_record(nth_record(9)));

    auto s = open_ok(opts_for(d));
    auto bad = s->get(nth_domain(2));
    REQUIRE(bad.failed());
    CHECK(bad.failure().code == "cache-record-corrupt");
    CHECK_FALSE(bad.failure().temporary());
    CHECK(bad.failure().reason.find("d2.example") != std::string::npos);
    CHECK(bad.failure().reason.find("policy body length") != std::string::npos);
    for (int i : {0, 1, 3, 4}) CHECK(s->get(nth_domain(i)).value() == nth_record(i));

    std::vector<std::string> failed;
    CHECK_FALSE(s->for_each([&](std::string_view key, const Lookup<CacheRecord>& r) {
        if (r.failed()) failed.emplace_back(key);
        return Visit::next;
    }));
    CHECK(failed == std::vector<std::string>{"Not_Normal.Example", "d2.example"});
    CHECK(s->stats(StatsDetail::by_mode).value().corrupt == 2);

    bool saw = true;
    CHECK_FALSE(s->update(nth_domain(2), [&](std::optional<CacheRecord>& r) {
        saw = r.has_value();
        r = nth_record(2);
    }));
    CHECK_FALSE(saw);  // offered as absent
    CHECK(s->get(nth_domain(2)).value() == nth_record(2));
}

TEST_CASE(
    "store: read-only access reads, refuses writes, and reports a missing cache as NotFound") {
    TempDir d;
    StoreOptions ro = opts_for(d);
    ro.access = StoreAccess::read_only;
    auto missing = PolicyStore::open(ro);
    CHECK(missing.not_found());
    CHECK(missing.not_found_info().reason.find(cache_dir(d)) != std::string::npos);

    {
        auto s = open_ok(opts_for(d));
        put_ok(*s, nth_record(1));
    }
    auto s = open_ok(ro);
    CHECK(s->get(nth_domain(1)).value() == nth_record(1));
    auto f = s->put(nth_record(2));
    REQUIRE(f);
    CHECK(f->code == "cache-permission");
}

TEST_CASE("store: for_each walks every record in key order across batches and may stop") {
    TempDir d;
    auto s = open_ok(opts_for(d));
    std::set<std::string> want;
    for (int i = 0; i < 700; ++i) {
        put_ok(*s, nth_record(i));
        want.insert(nth_domain(i).str());
    }
    std::vector<std::string> seen;
    CHECK_FALSE(s->for_each([&](std::string_view key, const Lookup<CacheRecord>& r) {
        REQUIRE(r.found());
        CHECK(r.value().domain.str() == key);
        // The visitor runs outside any transaction: it may use the store.
        CHECK(s->get(r.value().domain).found());
        seen.emplace_back(key);
        return Visit::next;
    }));
    CHECK(seen.size() == 700);
    CHECK(std::set<std::string>(seen.begin(), seen.end()) == want);
    CHECK(std::is_sorted(seen.begin(), seen.end()));

    int n = 0;
    CHECK_FALSE(s->for_each([&](std::string_view, const Lookup<CacheRecord>&) {
        return ++n == 300 ? Visit::stop : Visit::next;
    }));
    CHECK(n == 300);
}

TEST_CASE("store: stats counts records by mode and state (RFC 8461 5)") {
    TempDir d;
    auto s = open_ok(opts_for(d));
    for (int i = 0; i < 30; ++i) put_ok(*s, nth_record(i));
    auto st = s->stats(StatsDetail::by_mode);
    REQUIRE(st.found());
    std::uint64_t enforce = 0, testing = 0, none = 0, nopol = 0;
    for (int i = 0; i < 30; ++i) {
        CacheRecord r = nth_record(i);
        if (r.state == PolicyState::no_policy)
            ++nopol;
        else if (r.policy.mode == Mode::enforce)
            ++enforce;
        else if (r.policy.mode == Mode::testing)
            ++testing;
        else
            ++none;
    }
    CHECK(st.value().entries == 30);
    CHECK(st.value().enforce == enforce);
    CHECK(st.value().testing == testing);
    CHECK(st.value().none == none);
    CHECK(st.value().no_policy == nopol);
    CHECK(st.value().corrupt == 0);
    auto quick = s->stats(StatsDetail::quick);
    CHECK(quick.value().enforce == 0);  // not scanned
}

TEST_CASE("store: touch_last_used updates many records in one write and never goes backwards") {
    TempDir d;
    ManualClock clock(from_unix(1'800'000'000));
    auto s = open_ok(opts_for(d));
    for (int i = 0; i < 3; ++i) put_ok(*s, nth_record(i));
    std::vector<std::pair<DomainName, UnixTime>> uses{{nth_domain(0), clock.now()},
                                                      {nth_domain(1), clock.now()},
                                                      {dn("absent.example"), clock.now()}};
    CHECK_FALSE(s->touch_last_used(uses));
    CHECK(s->get(nth_domain(0)).value().last_used == clock.now());
    CHECK(s->get(nth_domain(1)).value().last_used == clock.now());
    CHECK(s->get(nth_domain(2)).value().last_used == nth_record(2).last_used);
    CHECK(s->get(dn("absent.example")).not_found());

    const UnixTime later = clock.now();
    clock.set(from_unix(1'700'000'000));
    CHECK_FALSE(s->touch_last_used({{nth_domain(0), clock.now()}}));
    CHECK(s->get(nth_domain(0)).value().last_used == later);
}

TEST_CASE("store: stale reader slots of dead processes are cleared at open") {
    TempDir d;
    auto s = open_ok(opts_for(d));  // keeps the lock table alive between children
    put_ok(*s, nth_record(1));
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        auto c = PolicyStore::open(opts_for(d));
        if (!c.found() || !c.value()->get(nth_domain(1)).found()) _exit(2);
        _exit(0);  // no destructors: its pooled read transaction keeps a slot
    }
    REQUIRE(wait_exit(pid) == 0);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        auto c = PolicyStore::open(opts_for(d));
        if (!c.found()) _exit(2);
        _exit(10 + c.value()->stats(StatsDetail::quick).value().stale_readers_cleared);
    }
    CHECK(wait_exit(pid) == 11);
}

TEST_CASE("store: lookups from several threads stay correct while the writer grows the map") {
    TempDir d;
    auto s = open_ok(opts_for(d, 64 * 1024));
    for (int i = 0; i < 50; ++i) put_ok(*s, nth_record(i));
    std::atomic<bool> stop{false};
    std::atomic<int> errors{0}, lookups{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 3; ++t) {
        readers.emplace_back([&, t] {
            int i = t;
            while (!stop.load()) {
                int k = i++ % 2000;
                auto r = s->get(nth_domain(k));
                if (r.failed() || (r.found() && !(r.value() == nth_record(k))) ||
                    (k < 50 && !r.found()))
                    ++errors;
                ++lookups;
            }
        });
    }
    for (int i = 50; i < 2000; ++i) put_ok(*s, nth_record(i));
    stop = true;
    for (auto& t : readers) t.join();
    CHECK(errors.load() == 0);
    CHECK(lookups.load() > 0);
    CHECK(s->stats(StatsDetail::quick).value().map_bytes > 64 * 1024);
}

TEST_CASE("store: every record a writer killed with SIGKILL reported committed is intact") {
    TempDir d;
    // This process keeps the cache open, so the dead writer's lock and
    // reader slots must be recovered (not just reset by a lone opener).
    auto s = open_ok(opts_for(d, 64 * 1024, lmdb::EnvSync::full));
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        auto c = PolicyStore::open(opts_for(d, 64 * 1024, lmdb::EnvSync::full));
        if (!c.found()) _exit(2);
        for (int i = 0;; ++i) {
            if (c.value()->put(nth_record(i))) _exit(3);
            c.value()->get(nth_domain(i / 2));  // also hold reader slots
            if (write(fds[1], &i, sizeof i) != static_cast<ssize_t>(sizeof i)) _exit(4);
        }
    }
    close(fds[1]);
    std::vector<int> committed;
    int i = 0;
    while (committed.size() < 150 && read(fds[0], &i, sizeof i) == static_cast<ssize_t>(sizeof i))
        committed.push_back(i);
    REQUIRE(kill(pid, SIGKILL) == 0);
    CHECK(wait_exit(pid) == 128 + SIGKILL);
    while (read(fds[0], &i, sizeof i) == static_cast<ssize_t>(sizeof i)) committed.push_back(i);
    close(fds[0]);
    REQUIRE(committed.size() >= 150);

    auto check_all = [&](PolicyStore& st) {
        int bad = 0;
        for (int k : committed) {
            auto r = st.get(nth_domain(k));
            if (!r.found() || !(r.value() == nth_record(k))) ++bad;
        }
        CHECK(bad == 0);
    };
    check_all(*s);
    put_ok(*s, nth_record(1'000'000));  // the dead writer's lock was recovered
    s.reset();

    auto again = PolicyStore::open(opts_for(d));  // a clean mdb_env_open
    REQUIRE(again.found());
    check_all(*again.value());
    CHECK(again.value()->get(nth_domain(1'000'000)).found());
    auto st = again.value()->stats(StatsDetail::by_mode);
    REQUIRE(st.found());
    CHECK(st.value().corrupt == 0);
    CHECK(st.value().entries >= committed.size() + 1);
}

// ---- group commit (write_batch.h) ---------------------------------------

TEST_CASE("store: group commit: a lone writer commits at once (one commit per call)") {
    TempDir d;
    auto s = open_ok(opts_for(d));
    for (int i = 0; i < 3; ++i) {
        put_ok(*s, nth_record(i));
        CHECK(s->write_counters().commits == static_cast<std::uint64_t>(i + 1));
    }
    CHECK_FALSE(s->update(nth_domain(1), [](std::optional<CacheRecord>&) {}));  // no change
    CHECK(s->remove(dn("absent.example")).not_found());
    CHECK(s->write_counters().commits == 3);  // nothing to write: no commit, no fsync
    CHECK(s->write_counters().writes == 5);
}

TEST_CASE(
    "store: group commit: concurrent writes share one commit and each caller gets its own result") {
    TempDir d;
    auto s = open_ok(opts_for(d));
    put_ok(*s, nth_record(5));
    put_ok(*s, nth_record(6));
    const std::uint64_t before = s->write_counters().commits;
    std::optional<Lookup<Removed>> removed, absent;
    std::vector<StoreCall> rest{
        [&] { return s->put(nth_record(1)); },
        [&] {
            return s->update(nth_domain(2),
                             [](std::optional<CacheRecord>& r) { r = nth_record(2); });
        },
        [&] {
            return s->update(nth_domain(6),
                             [](std::optional<CacheRecord>& r) { r = nth_record(7); });
        },
        [&] {
            return s->update(nth_domain(6), [](std::optional<CacheRecord>& r) {
                r->policy_body.assign(kMaxPolicyBytes + 1, 'x');
            });
        },
        [&] {
            return s->update(nth_domain(6), [](std::optional<CacheRecord>& r) -> void {
                r->consecutive_failures = 99;
                throw std::runtime_error("broken invariant");
            });
        },
        [&] {
            removed = s->remove(nth_domain(5));
            return removed->failed() ? std::optional<Failure>(removed->failure()) : std::nullopt;
        },
        [&] {
            absent = s->remove(dn("absent.example"));
            return absent->failed() ? std::optional<Failure>(absent->failure()) : std::nullopt;
        },
        [&] {
            return s->put_all({nth_record(10), nth_record(11)});
        },
        [&] {
            return s->touch_last_used({{nth_domain(6), from_unix(1'900'000'000)}});
        },
    };
    auto f = behind_one_update(*s, nth_record(0), rest);
    REQUIRE(f.size() == 10);
    CHECK_FALSE(f[0]);
    CHECK_FALSE(f[1]);
    CHECK_FALSE(f[2]);
    REQUIRE(f[3]);
    CHECK(f[3]->code == "cache-key-mismatch");
    REQUIRE(f[4]);
    CHECK(f[4]->code == "cache-record-too-large");
    REQUIRE(f[5]);
    CHECK(f[5]->code == "thrown");
    CHECK(f[5]->reason == "broken invariant");
    CHECK_FALSE(f[6]);
    CHECK(removed->found());
    CHECK_FALSE(f[7]);
    CHECK(absent->not_found());
    CHECK_FALSE(f[8]);
    CHECK_FALSE(f[9]);

    CHECK(s->write_counters().commits == before + 2);  // the lone lead, then the other nine
    for (int i : {0, 1, 2, 10, 11}) CHECK(s->get(nth_domain(i)).value() == nth_record(i));
    CHECK(s->get(nth_domain(5)).not_found());
    CacheRecord six = nth_record(6);
    six.last_used = from_unix(1'900'000'000);
    CHECK(s->get(nth_domain(6)).value() == six);  // only the touch changed it
    CHECK(s->get(nth_domain(7)).not_found());
}

TEST_CASE(
    "store: group commit: map growth during a batch reruns the writes that did not fit and loses "
    "none") {
    TempDir d;
    auto s = open_ok(opts_for(d, 64 * 1024));
    const std::size_t map_before = s->stats(StatsDetail::quick).value().map_bytes;
    auto big = [](int i) {
        CacheRecord r = nth_record(i);
        r.policy_body.assign(6000, static_cast<char>('a' + i % 26));  // overflow pages
        return r;
    };
    std::vector<StoreCall> rest;
    for (int i = 1; i <= 24; ++i) {
        if (i % 2 == 0)
            rest.push_back([&, i] { return s->put(big(i)); });
        else
            rest.push_back([&, i] {
                return s->update(nth_domain(i),
                                 [&, i](std::optional<CacheRecord>& r) { r = big(i); });
            });
    }
    auto f = behind_one_update(*s, nth_record(0), rest);
    for (std::size_t i = 0; i < f.size(); ++i) {
        INFO("writer " << i);
        CHECK_FALSE(f[i]);
    }
    CHECK(s->get(nth_domain(0)).value() == nth_record(0));
    for (int i = 1; i <= 24; ++i) CHECK(s->get(nth_domain(i)).value() == big(i));
    auto st = s->stats(StatsDetail::quick);
    REQUIRE(st.found());
    CHECK(st.value().map_bytes > map_before);
    CHECK(st.value().entries == 25);
}

TEST_CASE(
    "store: group commit: a write is durable when update() returns (reopen the store and read "
    "it)") {
    TempDir d;
    { auto s = open_ok(opts_for(d, 1 << 20, lmdb::EnvSync::full)); }
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Killed the moment every call returned: no destructor closes the
        // environment.  No doctest in this process.
        auto c = PolicyStore::open(opts_for(d, 1 << 20, lmdb::EnvSync::full));
        if (!c.found()) _exit(2);
        PolicyStore& s = *c.value();
        std::vector<StoreCall> rest;
        for (int i = 1; i <= 10; ++i)
            rest.push_back([&, i] {
                return s.update(nth_domain(i),
                                [i](std::optional<CacheRecord>& r) { r = nth_record(i); });
            });
        auto f = behind_one_update(s, nth_record(0), rest);
        for (const auto& x : f)
            if (x) _exit(3);
        if (s.write_counters().commits != 2) _exit(4);
        raise(SIGKILL);
        _exit(5);
    }
    CHECK(wait_exit(pid) == 128 + SIGKILL);
    auto s = open_ok(opts_for(d));
    for (int i = 0; i <= 10; ++i) CHECK(s->get(nth_domain(i)).value() == nth_record(i));
}

// ---- Reading: the serve hot path's read, decoded in place --------------

namespace {

std::vector<std::string> names(const NameViews& v) { return {v.begin(), v.end()}; }

}  // namespace

TEST_CASE("store: a Reading finds what get() finds, as views, and tells NotFound from a corrupt record") {
    TempDir d;
    {
        auto s = open_ok(opts_for(d));
        for (int i = 0; i < 4; ++i) put_ok(*s, nth_record(i));
    }
    std::string bogus = *encode_record(nth_record(2));
    bogus.resize(bogus.size() - 3);
    raw_put(cache_dir(d), "policies", nth_domain(2).str(), bogus);

    auto s = open_ok(opts_for(d));
    PolicyStore::Reading reading(*s);
    CacheRecord fixed(nth_domain(0));
    RecordTexts texts;
    for (int i : {0, 1, 3}) {
        CAPTURE(i);
        const CacheRecord want = nth_record(i);
        REQUIRE(reading.get(nth_domain(i), fixed, texts).found());
        CHECK(fixed.domain == want.domain);
        CHECK(fixed.expires_at == want.expires_at);
        CHECK(fixed.policy.mode == want.policy.mode);
        CHECK(texts.version == want.policy.version);
        CHECK(names(texts.mx) == want.policy.mx);
        CHECK(names(texts.mx_hosts) == want.mx_hosts);
        reading.end();
    }
    auto missing = reading.get(nth_domain(7), fixed, texts);
    CHECK(missing.not_found());
    reading.end();
    auto bad = reading.get(nth_domain(2), fixed, texts);
    REQUIRE(bad.failed());
    CHECK(bad.failure().code == "cache-record-corrupt");
    CHECK(bad.failure().reason.find("d2.example") != std::string::npos);
    reading.end();
    reading.end();  // idempotent
}

TEST_CASE("store: a kept Reading sees each write made between its reads (a fresh snapshot per read)") {
    // serve keeps one Reading for its whole life: its handle is reset
    // between requests, never holding an old snapshot.
    TempDir d;
    auto s = open_ok(opts_for(d));
    put_ok(*s, nth_record(1));
    PolicyStore::Reading reading(*s);
    CacheRecord fixed(nth_domain(1));
    RecordTexts texts;
    REQUIRE(reading.get(nth_domain(1), fixed, texts).found());
    CHECK(names(texts.mx_hosts) == nth_record(1).mx_hosts);
    reading.end();
    CacheRecord changed = nth_record(1);
    changed.mx_hosts = {"mx-new.example"};
    put_ok(*s, changed);
    put_ok(*s, nth_record(5));
    REQUIRE(reading.get(nth_domain(1), fixed, texts).found());
    CHECK(names(texts.mx_hosts) == std::vector<std::string>{"mx-new.example"});
    reading.end();
    CHECK(reading.get(nth_domain(5), fixed, texts).found());
    reading.end();
}

TEST_CASE("store: the map grows while a Reading is kept between reads, and the Reading still reads") {
    // A reset handle holds no map pointer: growth (which needs every
    // transaction of the process closed) goes on, and the next read
    // renews the handle on the grown map.
    TempDir d;
    auto s = open_ok(opts_for(d, 64 * 1024));
    put_ok(*s, nth_record(0));
    PolicyStore::Reading reading(*s);
    CacheRecord fixed(nth_domain(0));
    RecordTexts texts;
    REQUIRE(reading.get(nth_domain(0), fixed, texts).found());
    reading.end();
    const std::size_t first = s->stats(StatsDetail::quick).value().map_bytes;
    for (int i = 1; i < 3000; ++i) put_ok(*s, nth_record(i));
    CHECK(s->stats(StatsDetail::quick).value().map_bytes > first);
    for (int i : {0, 1500, 2999}) {
        CAPTURE(i);
        REQUIRE(reading.get(nth_domain(i), fixed, texts).found());
        CHECK(names(texts.mx_hosts) == nth_record(i).mx_hosts);
        reading.end();
    }
}
