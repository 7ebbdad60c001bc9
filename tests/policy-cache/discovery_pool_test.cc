// Tests policy-cache/discovery_pool.cc: coalescing, bounded concurrency,
// queue limit.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "policy-cache/discovery_pool.h"
#include "tests/fakes.h"
#include "tests/temp_dir.h"

using namespace stsguard;
using namespace stsguard::testing;

namespace {

struct Env {
    TempDir dir;
    std::unique_ptr<PolicyStore> store;
    ManualClock clock;
    Gate gate{GateState::closed};
    Env() {
        StoreOptions o;
        o.dir = dir.path() + "/cache";
        o.initial_map_size = 1 << 20;
        store = std::move(PolicyStore::open(o).value());
    }
    AdapterFactory factory() {
        return [this] {
            auto dns = std::make_unique<FakeResolver>();
            for (int i = 0; i < 50; ++i)
                dns->set_txt("_mta-sts.d" + std::to_string(i) + ".example", {"v=STSv1; id=one"});
            WorkerAdapters a;
            a.dns = std::move(dns);
            FakeFetcher bodies;
            for (int i = 0; i < 50; ++i)
                bodies.set_body("d" + std::to_string(i) + ".example",
                                "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n");
            a.fetcher = std::make_unique<GatedFetcher>(gate, std::move(bodies));
            return a;
        };
    }
};

DomainName nth(int i) { return *DomainName::parse("d" + std::to_string(i) + ".example"); }

bool wait_until(const std::function<bool()>& f) {
    for (int i = 0; i < 500; ++i) {
        if (f()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

}  // namespace

TEST_CASE("pool: concurrent lookups of one domain share one discovery") {
    Env e;
    Refresher ref(*e.store, e.clock, RefreshSettings{}, [] { return 0.0; });
    std::atomic<int> done{0};
    {
        DiscoveryPool pool(ref, e.factory(), 4, 100);
        CHECK(pool.submit(nth(1), [&](const RefreshResult& r) {
            CHECK(r.record.has_value());
            ++done;
        }) == DiscoveryPool::Submit::started);
        REQUIRE(wait_until([&] { return e.gate.fetches.load() == 1; }));
        for (int i = 0; i < 20; ++i)
            CHECK(pool.submit(nth(1), [&](const RefreshResult&) { ++done; }) == DiscoveryPool::Submit::joined);
        e.gate.set(GateState::open);
        REQUIRE(wait_until([&] { return done.load() == 21; }));
        CHECK(pool.stats().coalesced == 20);
    }
    CHECK(e.gate.fetches.load() == 1);
}

TEST_CASE("pool: no more than `threads` discoveries are in flight at once") {
    Env e;
    Refresher ref(*e.store, e.clock, RefreshSettings{}, [] { return 0.0; });
    std::atomic<int> done{0};
    {
        DiscoveryPool pool(ref, e.factory(), 3, 100);
        for (int i = 0; i < 12; ++i) pool.submit(nth(i), [&](const RefreshResult&) { ++done; });
        REQUIRE(e.gate.wait_inside(3));
        CHECK(pool.stats().queued == 9);
        e.gate.set(GateState::open);
        REQUIRE(wait_until([&] { return done.load() == 12; }));
    }
    CHECK(e.gate.max_inside() == 3);
}

TEST_CASE("pool: a full queue refuses further domains") {
    Env e;
    Refresher ref(*e.store, e.clock, RefreshSettings{}, [] { return 0.0; });
    DiscoveryPool pool(ref, e.factory(), 1, 2);
    pool.submit(nth(0), nullptr);
    REQUIRE(e.gate.wait_inside(1));
    CHECK(pool.submit(nth(1), nullptr) == DiscoveryPool::Submit::started);
    CHECK(pool.submit(nth(2), nullptr) == DiscoveryPool::Submit::started);
    CHECK(pool.submit(nth(3), nullptr) == DiscoveryPool::Submit::queue_full);
    CHECK(pool.stats().refused == 1);
    e.gate.set(GateState::open);
}

TEST_CASE("pool: results are stored and callbacks see the stored record") {
    Env e;
    Refresher ref(*e.store, e.clock, RefreshSettings{}, [] { return 0.0; });
    e.gate.set(GateState::open);
    std::atomic<int> done{0};
    {
        DiscoveryPool pool(ref, e.factory(), 2, 10);
        pool.submit(nth(7), [&](const RefreshResult& r) {
            if (r.record && r.record->policy.mode == Mode::enforce) ++done;
        });
        REQUIRE(wait_until([&] { return done.load() == 1; }));
    }
    CHECK(e.store->get(nth(7)).found());
}

TEST_CASE("pool: one worker at start; more only while jobs wait, never more than `threads`") {
    Env e;
    Refresher ref(*e.store, e.clock, RefreshSettings{}, [] { return 0.0; });
    std::atomic<int> made{0};
    AdapterFactory counted = [&, inner = e.factory()] {
        ++made;
        return inner();
    };
    std::atomic<int> done{0};
    {
        DiscoveryPool pool(ref, counted, 4, 100);
        CHECK(made == 1);  // a service answering from its cache starts one worker
        CHECK(pool.stats().workers == 1);
        for (int i = 0; i < 10; ++i) pool.submit(nth(i), [&](const RefreshResult&) { ++done; });
        REQUIRE(e.gate.wait_inside(4));
        CHECK(pool.stats().workers == 4);
        CHECK(made == 4);
        e.gate.set(GateState::open);
        REQUIRE(wait_until([&] { return done.load() == 10; }));
        // Workers stay: a second burst makes none.
        for (int i = 10; i < 20; ++i) pool.submit(nth(i), [&](const RefreshResult&) { ++done; });
        REQUIRE(wait_until([&] { return done.load() == 20; }));
        CHECK(made == 4);
    }
    CHECK(e.gate.max_inside() == 4);
}

TEST_CASE("pool: a factory failing after start-up is counted; the pool goes on with its workers") {
    Env e;
    Refresher ref(*e.store, e.clock, RefreshSettings{}, [] { return 0.0; });
    std::atomic<int> calls{0};
    AdapterFactory first_only = [&, inner = e.factory()]() -> WorkerAdapters {
        if (calls++ == 0) return inner();
        if (calls % 2 == 0) throw std::runtime_error("no more resolvers");
        return WorkerAdapters{};
    };
    std::atomic<int> done{0};
    {
        DiscoveryPool pool(ref, first_only, 4, 100);
        for (int i = 0; i < 5; ++i) pool.submit(nth(i), [&](const RefreshResult&) { ++done; });
        REQUIRE(e.gate.wait_inside(1));
        CHECK(pool.stats().workers == 1);
        CHECK(pool.stats().worker_start_failures >= 2);
        e.gate.set(GateState::open);
        REQUIRE(wait_until([&] { return done.load() == 5; }));
    }
    CHECK(e.gate.max_inside() == 1);
}

TEST_CASE("pool: a factory failing at start-up is a start-up error") {
    Env e;
    Refresher ref(*e.store, e.clock, RefreshSettings{}, [] { return 0.0; });
    CHECK_THROWS_AS(DiscoveryPool(ref, [] { return WorkerAdapters{}; }, 4, 100), std::runtime_error);
}
