// Tests for checker/probe_pool: probes run concurrently with bounded
// threads, per-probe and overall deadlines, results in target order.
// The fake-probe tests synchronise with a condition variable (no sleeps);
// the network tests use silent 127.0.0.1 listeners and bound only
// relative to the probe timeout, so a loaded machine cannot fail them.
#include "checker/probe_pool.h"

#include <doctest/doctest.h>

#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "tests/checker/tls_test_util.h"

namespace stsguard {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

std::vector<ProbeTarget> targets_named(int n) {
    std::vector<ProbeTarget> t;
    for (int i = 0; i < n; ++i)
        t.push_back(ProbeTarget{"mx" + std::to_string(i) + ".example.test", "127.0.0.1", 25});
    return t;
}

ProbeResult ok_result(const ProbeTarget& t) {
    ProbeResult r;
    r.host = t.host;
    r.address = t.address;
    r.port = t.port;
    r.reached = ProbeStage::done;
    return r;
}

double seconds_since(SteadyClock::time_point start) {
    return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

const UnixTime kNow = from_unix(1'700'000'000);

std::unique_ptr<StarttlsProber> local_prober(const testing::KeyCert& ca, const Clock& clock,
                                             std::chrono::milliseconds timeout) {
    ProbeSettings s;
    s.timeout = timeout;
    s.ca_pem = testing::to_pem(ca.cert.get());
    s.ehlo_name = "probe.example.test";
    auto p = StarttlsProber::create(s, clock);
    REQUIRE(p.found());
    return std::move(p.value());
}

testing::KeyCert test_ca() {
    testing::CertSpec s;
    s.cn = "Pool CA";
    s.role = testing::CertRole::ca;
    s.not_before = from_unix(to_unix(kNow) - 86400);
    s.not_after = from_unix(to_unix(kNow) + 86400 * 365);
    return testing::make_cert(s, nullptr);
}

}  // namespace

TEST_CASE("the pool never runs more probes at once than its concurrency") {
    std::mutex m;
    std::condition_variable cv;
    int in_flight = 0, max_in_flight = 0, started = 0, calls = 0;
    const int total = 6;

    ProbePool pool(
        [&](const ProbeTarget& t, Deadline) {
            std::unique_lock lock(m);
            ++calls;
            ++started;
            ++in_flight;
            max_in_flight = std::max(max_in_flight, in_flight);
            cv.notify_all();
            // Hold until a second probe is in flight (or none can come),
            // so overlap is certain if the pool allows it.
            cv.wait_for(lock, 5s, [&] { return in_flight >= 2 || started == total; });
            --in_flight;
            cv.notify_all();
            return ok_result(t);
        },
        PoolSettings{2, 30000ms});

    const auto targets = targets_named(total);
    const auto results = pool.run(targets);
    CHECK(calls == total);
    CHECK(max_in_flight == 2);
    REQUIRE(results.size() == targets.size());
    for (std::size_t i = 0; i < targets.size(); ++i) {
        CHECK(results[i].host == targets[i].host);
        CHECK(results[i].reached == ProbeStage::done);
    }
}

TEST_CASE("with concurrency 1 probes run one after another") {
    int in_flight = 0, max_in_flight = 0;
    std::mutex m;
    ProbePool pool(
        [&](const ProbeTarget& t, Deadline) {
            {
                std::lock_guard lock(m);
                max_in_flight = std::max(max_in_flight, ++in_flight);
            }
            std::lock_guard lock(m);
            --in_flight;
            return ok_result(t);
        },
        PoolSettings{1, 30000ms});
    CHECK(pool.run(targets_named(5)).size() == 5);
    CHECK(max_in_flight == 1);
}

TEST_CASE("a concurrency below 1 is treated as 1; no targets give no results") {
    ProbePool pool([](const ProbeTarget& t, Deadline) { return ok_result(t); },
                   PoolSettings{0, 1000ms});
    CHECK(pool.settings().concurrency == 1);
    CHECK(pool.run({}).empty());
    CHECK(pool.run(targets_named(3)).size() == 3);
}

TEST_CASE("probes not started before the overall deadline are mx-timeout, not run") {
    int calls = 0;
    ProbePool pool(
        [&](const ProbeTarget& t, Deadline) {
            ++calls;
            return ok_result(t);
        },
        PoolSettings{1, 0ms});
    const auto results = pool.run(targets_named(3));
    CHECK(calls == 0);
    REQUIRE(results.size() == 3);
    for (const auto& r : results) {
        REQUIRE(r.failure.has_value());
        CHECK(r.failure->code == "mx-timeout");
        CHECK(r.failure->reason.find("not probed") != std::string::npos);
        CHECK(r.host.rfind("mx", 0) == 0);
    }
}

TEST_CASE("the overall deadline is passed to every probe") {
    Deadline seen{};
    ProbePool pool(
        [&](const ProbeTarget& t, Deadline dl) {
            seen = dl;
            return ok_result(t);
        },
        PoolSettings{1, 60000ms});
    const auto before = SteadyClock::now();
    pool.run(targets_named(1));
    CHECK(seen >= before + 60000ms);
    CHECK(seen <= SteadyClock::now() + 60000ms);
}

TEST_CASE("a probe that throws yields probe-internal for its target only") {
    ProbePool pool(
        [](const ProbeTarget& t, Deadline) -> ProbeResult {
            if (t.host == "mx1.example.test") throw std::runtime_error("boom");
            return ok_result(t);
        },
        PoolSettings{2, 30000ms});
    const auto results = pool.run(targets_named(3));
    CHECK_FALSE(results[0].failure.has_value());
    REQUIRE(results[1].failure.has_value());
    CHECK(results[1].failure->code == "probe-internal");
    CHECK(results[1].failure->reason == "boom");
    CHECK(results[1].host == "mx1.example.test");
    CHECK_FALSE(results[2].failure.has_value());
}

TEST_CASE("one stalling MX costs about one probe timeout, not the sum") {
    const auto timeout = 500ms;
    testing::KeyCert ca = test_ca();
    testing::CertSpec leaf;
    leaf.dns = {"mx.example.test"};
    leaf.not_before = from_unix(to_unix(kNow) - 86400);
    leaf.not_after = from_unix(to_unix(kNow) + 86400 * 90);
    testing::KeyCert good = testing::make_cert(leaf, &ca);
    ManualClock clock(kNow);
    auto prober = local_prober(ca, clock, timeout);

    testing::SmtpScript script;
    script.tls = &good;
    testing::SmtpServer a(script), b(script);
    testing::Listener silent;

    ProbePool pool(*prober, PoolSettings{3, 30000ms});
    const std::vector<ProbeTarget> targets{
        {"mx.example.test", "127.0.0.1", a.port()},
        {"mx.example.test", "127.0.0.1", silent.port()},
        {"mx.example.test", "127.0.0.1", b.port()},
    };
    const auto start = SteadyClock::now();
    const auto results = pool.run(targets);
    const double elapsed = seconds_since(start);

    REQUIRE(results.size() == 3);
    CHECK_MESSAGE(results[0].acceptable(),
                  (results[0].failure ? results[0].failure->reason : std::string()));
    CHECK(results[2].acceptable());
    REQUIRE(results[1].failure.has_value());
    CHECK(results[1].failure->code == "mx-timeout");
    CHECK(results[1].port == silent.port());
    CHECK(elapsed >= 0.49);
    CHECK(elapsed < 3 * 0.5);
}

TEST_CASE("three stalling MX in parallel finish in well under three timeouts") {
    const auto timeout = 400ms;
    testing::KeyCert ca = test_ca();
    ManualClock clock(kNow);
    auto prober = local_prober(ca, clock, timeout);
    testing::Listener s1, s2, s3;
    const std::vector<ProbeTarget> targets{
        {"mx1.example.test", "127.0.0.1", s1.port()},
        {"mx2.example.test", "127.0.0.1", s2.port()},
        {"mx3.example.test", "127.0.0.1", s3.port()},
    };

    SUBCASE("concurrency 3: about one timeout") {
        ProbePool pool(*prober, PoolSettings{3, 30000ms});
        const auto start = SteadyClock::now();
        const auto results = pool.run(targets);
        const double elapsed = seconds_since(start);
        for (const auto& r : results) CHECK(r.failure->code == "mx-timeout");
        CHECK(elapsed >= 0.39);
        CHECK(elapsed < 2.5 * 0.4);  // sequential would take at least 1.2 s
    }
    SUBCASE("concurrency 1: the sum, as the bound demands") {
        ProbePool pool(*prober, PoolSettings{1, 30000ms});
        const auto start = SteadyClock::now();
        const auto results = pool.run(targets);
        for (const auto& r : results) CHECK(r.failure->code == "mx-timeout");
        CHECK(seconds_since(start) >= 3 * 0.39);
    }
    SUBCASE("the overall timeout cuts a probe short and skips the rest") {
        ProbePool pool(*prober, PoolSettings{1, 600ms});
        const auto start = SteadyClock::now();
        const auto results = pool.run(targets);
        const double elapsed = seconds_since(start);
        REQUIRE(results.size() == 3);
        CHECK(results[0].failure->code == "mx-timeout");
        CHECK(results[0].seconds >= 0.39);
        CHECK(results[1].failure->code == "mx-timeout");
        CHECK(results[1].seconds < 0.4);  // only what was left of the 600 ms
        CHECK(results[2].failure->code == "mx-timeout");
        CHECK(results[2].failure->reason.find("not probed") != std::string::npos);
        CHECK(elapsed >= 0.59);
        CHECK(elapsed < 3 * 0.4);
    }
}

}  // namespace stsguard
