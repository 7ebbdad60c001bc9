// Tests plugin/milter_engine.cc with plugin/prefetcher.cc on a real LMDB
// cache and DiscoveryPool (fake DNS and HTTPS): prefetch without delaying
// the session, hold within milter_wait, headers, exemptions, the wait
// budget and a full discovery queue.  Waits are on condition variables,
// never sleeps.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "plugin/milter_engine.h"
#include "policy-cache/discovery_pool.h"
#include "policy-cache/refresher.h"
#include "tests/fakes.h"
#include "tests/temp_dir.h"

using namespace stsguard;
using namespace stsguard::testing;

namespace {

FakeFetcher world_bodies() {
    FakeFetcher f;
    f.set_body("good.test", "version: STSv1\nmode: enforce\nmx: mx.good.test\nmax_age: 86400\n");
    f.set_body("mismatch.test", "version: STSv1\nmode: enforce\nmx: mx.elsewhere.test\nmax_age: 86400\n");
    f.set_body("testing.test", "version: STSv1\nmode: testing\nmx: mx.elsewhere.test\nmax_age: 86400\n");
    return f;
}

std::unique_ptr<FakeResolver> world_dns() {
    auto dns = std::make_unique<FakeResolver>();
    for (const char* d : {"good.test", "mismatch.test", "testing.test", "slow1.test", "slow2.test", "slow3.test"}) {
        dns->set_txt(std::string("_mta-sts.") + d, {"v=STSv1; id=" + std::string(d).substr(0, 4) + "1"});
        dns->set_mx(d, {{10, std::string("mx.") + d}});
    }
    return dns;
}

struct Fixture {
    TempDir dir;
    std::unique_ptr<PolicyStore> store;
    ManualClock clock;
    Gate gate{GateState::open};
    Logger log{"milter-test", LogTarget::stderr_stream, LogSeverity::fatal};
    std::unique_ptr<Refresher> refresher;
    std::unique_ptr<DiscoveryPool> pool;
    std::unique_ptr<Prefetcher> prefetcher;
    std::unique_ptr<MilterEngine> engine;

    explicit Fixture(MilterAction action, std::chrono::milliseconds wait, std::vector<std::string> exempt = {},
                     int threads = 2, std::size_t max_queue = 100) {
        StoreOptions o;
        o.dir = dir.path() + "/cache";
        o.initial_map_size = 1 << 20;
        auto s = PolicyStore::open(o);
        REQUIRE(s.found());
        store = std::move(s.value());
        refresher = std::make_unique<Refresher>(*store, clock, RefreshSettings{}, [] { return 0.0; });
        pool = std::make_unique<DiscoveryPool>(
            *refresher,
            [this] {
                WorkerAdapters a;
                a.dns = world_dns();
                a.fetcher = std::make_unique<GatedFetcher>(gate, world_bodies());
                return a;
            },
            threads, max_queue);
        prefetcher = std::make_unique<Prefetcher>(*store, *pool, clock, log);
        MilterSettings ms;
        ms.action = action;
        ms.wait = wait;
        std::string why;
        auto list = DomainList::parse(exempt, &why);
        REQUIRE_MESSAGE(list, why);
        ms.exempt = *list;
        engine = std::make_unique<MilterEngine>(ms, *prefetcher, clock, log);
    }
    ~Fixture() {
        gate.set(GateState::open);  // never leave a worker stuck at the gate
        engine.reset();
        prefetcher.reset();
        pool.reset();
    }
    bool cached(const char* d) { return store->get(*DomainName::parse(d)).found(); }
};

constexpr auto kSmtp = RecipientSource::smtpd;
constexpr auto kLong = std::chrono::milliseconds(30'000);  // never reached: completions wake the wait

}  // namespace

TEST_CASE("milter prefetch: a new domain is discovered into the cache without delaying RCPT") {
    Fixture f(MilterAction::prefetch, std::chrono::milliseconds(0));
    f.gate.set(GateState::closed);
    MilterSession s("client[127.0.0.1]");
    s.begin_message();
    // The fetch is blocked at the gate, so returning at all proves RCPT did not wait.
    CHECK(f.engine->on_recipient(s, "<user@Good.Test>", kSmtp).action == RcptAction::accept);
    REQUIRE(f.gate.wait_inside(1));
    CHECK_FALSE(f.cached("good.test"));
    f.gate.set(GateState::open);
    // Join the running discovery and wait for it: the cache then holds the policy.
    f.prefetcher->observe(*DomainName::parse("good.test"), kLong);
    REQUIRE(f.cached("good.test"));
    CHECK(f.store->get(*DomainName::parse("good.test")).value().policy.mode == Mode::enforce);
    CHECK(f.gate.fetches.load() == 1);  // coalesced
    // prefetch never changes mail
    CHECK(f.engine->on_end_of_message(s).add.empty());
}

TEST_CASE("milter prefetch: a fresh cached domain starts no discovery") {
    Fixture f(MilterAction::prefetch, kLong);
    MilterSession s("client");
    f.engine->on_recipient(s, "<a@good.test>", kSmtp);
    REQUIRE(f.cached("good.test"));
    s.begin_message();
    f.engine->on_recipient(s, "<b@good.test>", kSmtp);
    CHECK(f.gate.fetches.load() == 1);
    CHECK(f.prefetcher->counters().fresh.load() == 1);
}

TEST_CASE("milter prefetch: an unsatisfiable enforce domain is never held in prefetch mode") {
    Fixture f(MilterAction::prefetch, kLong);
    MilterSession s("client");
    CHECK(f.engine->on_recipient(s, "<a@mismatch.test>", kSmtp).action == RcptAction::accept);
    CHECK(f.cached("mismatch.test"));
}

TEST_CASE("milter hold 5: an enforce domain whose MX set cannot satisfy its policy is tempfailed") {
    Fixture f(MilterAction::hold, kLong);
    MilterSession s("client");
    s.begin_message();
    const HoldDecision d = f.engine->on_recipient(s, "<a@mismatch.test>", kSmtp);
    CHECK(d.action == RcptAction::tempfail);
    CHECK(d.reply_text.find("mismatch.test") != std::string::npos);
    CHECK(d.reply_text.find("mx.elsewhere.test") != std::string::npos);
    // Same domain again in this message: same answer, no second discovery.
    CHECK(f.engine->on_recipient(s, "<b@MISMATCH.test>", kSmtp).action == RcptAction::tempfail);
    CHECK(f.gate.fetches.load() == 1);
    // Satisfiable enforce and testing domains pass.
    CHECK(f.engine->on_recipient(s, "<c@good.test>", kSmtp).action == RcptAction::accept);
    CHECK(f.engine->on_recipient(s, "<c@testing.test>", kSmtp).action == RcptAction::accept);
}

TEST_CASE("milter hold: unknown within milter_wait (0) continues; held once the cache knows") {
    Fixture f(MilterAction::hold, std::chrono::milliseconds(0));
    f.gate.set(GateState::closed);
    MilterSession s("client");
    s.begin_message();
    CHECK(f.engine->on_recipient(s, "<a@mismatch.test>", kSmtp).action == RcptAction::accept);
    f.gate.set(GateState::open);
    f.prefetcher->observe(*DomainName::parse("mismatch.test"), kLong);  // let discovery finish
    s.begin_message();
    CHECK(f.engine->on_recipient(s, "<a@mismatch.test>", kSmtp).action == RcptAction::tempfail);
}

TEST_CASE("milter: exempt domains start no discovery and are never held") {
    Fixture f(MilterAction::hold, kLong, {"mismatch.test", ".sub.test"});
    MilterSession s("client");
    CHECK(f.engine->on_recipient(s, "<a@mismatch.test>", kSmtp).action == RcptAction::accept);
    CHECK(f.engine->on_recipient(s, "<a@x.sub.test>", kSmtp).action == RcptAction::accept);
    CHECK(f.gate.fetches.load() == 0);
    CHECK_FALSE(f.cached("mismatch.test"));
}

TEST_CASE("milter: local, address-literal and garbage recipients are accepted untouched") {
    Fixture f(MilterAction::hold, kLong);
    MilterSession s("client");
    for (const char* a : {"<postmaster>", "<u@[192.0.2.1]>", "<>", "<\"open@x.test>", "\x01\x02", ""})
        CHECK(f.engine->on_recipient(s, a, kSmtp).action == RcptAction::accept);
    CHECK(f.gate.fetches.load() == 0);
    CHECK(f.engine->on_end_of_message(s).add.empty());
}

TEST_CASE("milter header: one X-STS-Policy per accepted recipient domain; incoming ones are removed") {
    Fixture f(MilterAction::header, kLong);
    MilterSession s("client");
    s.begin_message();
    f.engine->on_recipient(s, "<a@good.test>", kSmtp);
    f.engine->on_recipient(s, "<b@mismatch.test>", kSmtp);
    f.engine->on_recipient(s, "<c@good.test>", kSmtp);
    f.engine->on_recipient(s, "<postmaster>", kSmtp);
    f.engine->on_header(s, "X-STS-Policy");
    f.engine->on_header(s, "x-sts-policy");
    f.engine->on_header(s, "Subject");
    const EomEdits e = f.engine->on_end_of_message(s);
    CHECK(e.remove_existing == 2);
    REQUIRE(e.add.size() == 2);
    CHECK(e.add[0] == "good.test mode=enforce id=good1 mx=ok");
    CHECK(e.add[1] == "mismatch.test mode=enforce id=mism1 mx=unsatisfied");
    // The next message starts clean.
    const EomEdits next = f.engine->on_end_of_message(s);
    CHECK(next.remove_existing == 0);
    CHECK(next.add.empty());
}

TEST_CASE("milter header: a domain still pending at end of message says so") {
    Fixture f(MilterAction::header, std::chrono::milliseconds(0));
    f.gate.set(GateState::closed);
    MilterSession s("client");
    f.engine->on_recipient(s, "<a@good.test>", kSmtp);
    const EomEdits e = f.engine->on_end_of_message(s);
    REQUIRE(e.add.size() == 1);
    CHECK(e.add[0] == "good.test mode=pending");
}

TEST_CASE("milter header: headers are only counted, and kept, in header mode") {
    Fixture f(MilterAction::hold, kLong);
    MilterSession s("client");
    f.engine->on_header(s, "X-STS-Policy");
    CHECK(f.engine->on_end_of_message(s).remove_existing == 0);
}

TEST_CASE("milter: milter_wait is one budget per message, not per recipient") {
    Fixture f(MilterAction::hold, std::chrono::milliseconds(50));
    f.gate.set(GateState::closed);
    MilterSession s("client");
    s.begin_message();
    f.engine->on_recipient(s, "<a@slow1.test>", kSmtp);  // waits the whole budget
    CHECK(f.prefetcher->counters().wait_expired.load() == 1);
    f.engine->on_recipient(s, "<a@slow2.test>", kSmtp);  // nothing left: does not wait
    CHECK(f.prefetcher->counters().wait_expired.load() == 1);
    s.begin_message();                             // a new message has a new budget
    f.engine->on_recipient(s, "<a@slow3.test>", kSmtp);
    CHECK(f.prefetcher->counters().wait_expired.load() == 2);
}

TEST_CASE("milter: a full discovery queue is counted and the recipient accepted") {
    Fixture f(MilterAction::hold, std::chrono::milliseconds(0), {}, 1, 1);
    f.gate.set(GateState::closed);
    MilterSession s("client");
    f.engine->on_recipient(s, "<a@slow1.test>", kSmtp);
    REQUIRE(f.gate.wait_inside(1));                         // the only worker is busy
    f.engine->on_recipient(s, "<a@slow2.test>", kSmtp);  // queued (queue of 1)
    CHECK(f.engine->on_recipient(s, "<a@slow3.test>", kSmtp).action == RcptAction::accept);
    CHECK(f.prefetcher->counters().refused.load() == 1);
}

TEST_CASE("milter: stop() releases a waiting recipient at once") {
    Fixture f(MilterAction::hold, kLong);
    f.gate.set(GateState::closed);
    f.prefetcher->stop();
    MilterSession s("client");
    CHECK(f.engine->on_recipient(s, "<a@slow1.test>", kSmtp).action == RcptAction::accept);
    CHECK(f.prefetcher->counters().wait_expired.load() == 1);
}

TEST_CASE("milter hold: never tempfails a non-SMTP recipient (Postfix: a configuration error there)") {
    Fixture f(MilterAction::hold, kLong);
    MilterSession s("localhost[127.0.0.1]");
    CHECK(f.engine->on_recipient(s, "<a@mismatch.test>", RecipientSource::non_smtpd).action == RcptAction::accept);
    CHECK(f.cached("mismatch.test"));  // still prefetched
}

TEST_CASE("milter header: works for non-SMTP sessions too") {
    Fixture f(MilterAction::header, kLong);
    MilterSession s("localhost[127.0.0.1]");
    f.engine->on_recipient(s, "<a@good.test>", RecipientSource::non_smtpd);
    const EomEdits e = f.engine->on_end_of_message(s);
    REQUIRE(e.add.size() == 1);
    CHECK(e.add[0] == "good.test mode=enforce id=good1 mx=ok");
}
