// Tests for checker/check_gather.cc: which lookups and probes a check
// makes, in each scope, and that the probes of a domain run concurrently.
// Concurrency is shown with a condition variable (every probe waits until
// all are in flight), not with sleeps or timing.
#include <doctest/doctest.h>

#include <condition_variable>
#include <mutex>

#include "checker/check_gather.h"
#include "tests/checker/check_fakes.h"

using namespace stsguard;
using namespace stsguard::testing;

TEST_CASE("full scope: discovery, MX, addresses, TLSA, TLSRPT and one probe per address") {
    FakeWorld w;
    w.add("g.test", "enforce", {"mx1.g.test", "mx2.g.test"});
    w.dns.set_addresses("mx2.g.test", {"192.0.2.50", "2001:db8::50"});
    DomainFacts f = w.gather("g.test");
    CHECK(f.discovery.status == DiscoveryStatus::policy);
    REQUIRE(f.mx);
    REQUIRE(f.hosts.size() == 2);
    CHECK(f.hosts[0].tlsa);
    CHECK(f.tlsrpt);
    CHECK(f.cache.state == CacheFacts::State::unavailable);
    CHECK(f.hosts[1].probes.size() == 2);
    const auto asked = w.probe.asked();
    CHECK(asked.size() == 3);
    for (const auto& t : asked) {
        CHECK(t.port == 25);
        CHECK((t.host == "mx1.g.test" || t.host == "mx2.g.test"));  // the MX name: SNI and name check
    }
    CHECK(f.hosts[1].probes[1].address == "2001:db8::50");
}

TEST_CASE("full scope probes the MX of a domain without a policy (readiness), delivery scope does not") {
    FakeWorld w;
    w.add_mx("plain.test", {"mx.plain.test"});
    DomainFacts full = w.gather("plain.test");
    CHECK(full.mx);
    CHECK(w.probe.asked().size() == 1);
    FakeWorld w2;
    w2.add_mx("plain.test", {"mx.plain.test"});
    DomainFacts d = w2.gather("plain.test", CheckScope::delivery);
    CHECK_FALSE(d.mx);
    CHECK_FALSE(d.tlsrpt);
    CHECK(w2.probe.asked().empty());
    CHECK(w2.dns.base.mx_calls == 0);
}

TEST_CASE("delivery scope skips mode none and looks up no TLSRPT, TLSA or cache") {
    FakeWorld w;
    w.add("none.test", "none", {"mx.none.test"});
    w.add("test.test", "testing", {"mx.test.test"});
    CHECK_FALSE(w.gather("none.test", CheckScope::delivery).mx);
    DomainFacts t = w.gather("test.test", CheckScope::delivery);
    REQUIRE(t.mx);
    CHECK_FALSE(t.hosts[0].tlsa);
    CHECK_FALSE(t.tlsrpt);
    CHECK(t.cache.state == CacheFacts::State::not_checked);
    CHECK(t.hosts[0].probes.size() == 1);
}

TEST_CASE("an MX without addresses is kept with its NotFound and not probed") {
    FakeWorld w;
    w.add("noaddr.test", "enforce", {"mx.noaddr.test"});
    w.dns.base.addr_answers.erase("mx.noaddr.test");
    DomainFacts f = w.gather("noaddr.test");
    REQUIRE(f.hosts.size() == 1);
    CHECK(f.hosts[0].addresses->not_found());
    CHECK(f.hosts[0].probes.empty());
    CHECK(assess_delivery(f).verdict == Delivery::would_fail);
}

TEST_CASE("the probes of all MX hosts run at the same time (a stalled MX costs one timeout, not the sum)") {
    FakeWorld w;
    w.add("par.test", "enforce", {"mx1.par.test", "mx2.par.test", "mx3.par.test"});
    std::mutex mu;
    std::condition_variable cv;
    int in_flight = 0, max_in_flight = 0;
    CheckEnv env = w.env();
    env.probe = [&](const ProbeTarget& t, Deadline) {
        std::unique_lock lock(mu);
        max_in_flight = std::max(max_in_flight, ++in_flight);
        cv.notify_all();
        // Each probe waits until all three are running: only possible if they run concurrently.
        cv.wait_for(lock, std::chrono::seconds(10), [&] { return max_in_flight >= 3; });
        --in_flight;
        return probe_ok(t);
    };
    DomainFacts f = gather_facts(*DomainName::parse("par.test"), env, CheckScope::full);
    CHECK(max_in_flight == 3);
    for (const auto& h : f.hosts) CHECK(h.probes.size() == 1);
}

TEST_CASE("probe_concurrency bounds the probes of one domain") {
    FakeWorld w;
    w.add("bound.test", "enforce", {"a.bound.test", "b.bound.test", "c.bound.test", "d.bound.test"});
    std::mutex mu;
    int in_flight = 0, max_in_flight = 0;
    CheckEnv env = w.env();
    env.probe_concurrency = 2;
    env.probe = [&](const ProbeTarget& t, Deadline) {
        {
            std::lock_guard lock(mu);
            max_in_flight = std::max(max_in_flight, ++in_flight);
        }
        ProbeResult r = probe_ok(t);
        std::lock_guard lock(mu);
        --in_flight;
        return r;
    };
    gather_facts(*DomainName::parse("bound.test"), env, CheckScope::full);
    CHECK(max_in_flight <= 2);
    CHECK(max_in_flight >= 1);
}

TEST_CASE("at most kMaxProbedHosts MX hosts are probed; alignment still sees all") {
    FakeWorld w;
    std::vector<std::string> many;
    for (std::size_t i = 0; i < kMaxProbedHosts + 5; ++i) many.push_back("mx" + std::to_string(i) + ".many.test");
    w.add("many.test", "enforce", many);
    DomainFacts f = w.gather("many.test");
    CHECK(f.hosts.size() == kMaxProbedHosts);
    CHECK(f.mx->value().hosts.size() == kMaxProbedHosts + 5);
    CheckResult c = check_mx_certificates(f);
    CHECK(c.details["not_probed_hosts"] == 5);
    CHECK(check_mx_alignment(f).details["mx"].size() == kMaxProbedHosts + 5);
}

TEST_CASE("the policy fetch is timed even when it fails") {
    FakeWorld w;
    w.add("t.test", "enforce", {"mx.t.test"});
    w.web.answers.insert_or_assign("t.test", Lookup<FetchedPolicy>(Failure::temp("https-timeout", "timed out")));
    DomainFacts f = w.gather("t.test");
    CHECK(f.fetch_seconds >= 0.0);
    CHECK(w.web.calls == 1);
    CHECK(f.discovery.code == "https-timeout");
}
