// Tests policy-cache/discovery_pool.cc: coalescing, bounded concurrency,
// queue limit.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

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
