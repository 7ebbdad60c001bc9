// Tests policy-cache/refresh_rules.cc: RFC 8461 3.3 / 5 cache semantics
// with a manual clock (no sleeping).  Attempts are produced by the real
// discovery steps over fake DNS and HTTPS.
#include <doctest/doctest.h>

#include "policy-cache/refresh_rules.h"
#include "tests/fakes.h"

using namespace stsguard;
using stsguard::testing::FakeFetcher;
using stsguard::testing::FakeResolver;

namespace {

const char* kEnforce = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 604800\n";
const char* kTesting = "version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 604800\n";
const char* kNone = "version: STSv1\nmode: none\nmax_age: 604800\n";

struct World {
    FakeResolver dns;
    FakeFetcher web;
    ManualClock clock;
    RefreshSettings s;
    DomainName d = *DomainName::parse("example.com");
    std::optional<CacheRecord> rec;

    World() {
        dns.set_txt("_mta-sts.example.com", {"v=STSv1; id=one"});
        web.set_body("example.com", kEnforce);
    }
    // One refresh attempt, as the engine runs it.
    void attempt() {
        Attempt a{discover_txt(d, dns), std::nullopt};
        if (a.txt.status == DiscoveryStatus::policy && needs_fetch(rec, *a.txt.txt.id, clock.now()))
            a.fetch = fetch_policy(d, web);
        apply_attempt(rec, d, a, clock.now(), s, 0.0);
    }
    Assessment look() const { return assess(rec, clock.now()); }
};

}  // namespace

TEST_CASE("5: a never-seen domain must be discovered before answering") {
    std::optional<CacheRecord> none;
    Assessment a = assess(none, ManualClock().now());
    CHECK(a.use == Assessment::Use::unknown);
    CHECK(a.refresh == Assessment::Refresh::now);
}

TEST_CASE("3.3: an unexpired cached policy is used for lookups") {
    World w;
    w.attempt();
    Assessment a = w.look();
    CHECK(a.use == Assessment::Use::policy);
    CHECK(a.refresh == Assessment::Refresh::none);
    CHECK(a.remaining == Seconds{604800});
    CHECK(w.rec->policy.mode == Mode::enforce);
    CHECK(w.rec->expires_at == w.clock.now() + Seconds{604800});
}

TEST_CASE("3.3: an expired policy is never used") {
    World w;
    w.attempt();
    w.clock.advance(Seconds{604800});
    Assessment a = w.look();
    CHECK(a.use != Assessment::Use::policy);
    CHECK(a.refresh == Assessment::Refresh::now);
}

TEST_CASE("3.1: the TXT id is re-checked only after txt_check_interval") {
    World w;
    w.attempt();
    w.clock.advance(Seconds{3599});
    CHECK(w.look().refresh == Assessment::Refresh::none);
    w.clock.advance(Seconds{1});
    CHECK(w.look().refresh == Assessment::Refresh::background);
    CHECK(w.look().use == Assessment::Use::policy);
}

TEST_CASE("3.1: an unchanged id does not fetch the policy again") {
    World w;
    w.attempt();
    CHECK(w.web.calls == 1);
    w.clock.advance(Seconds{3600});
    w.attempt();
    CHECK(w.web.calls == 1);
    CHECK(w.rec->last_outcome.code == "txt-id-unchanged");
    CHECK(w.rec->last_checked == w.clock.now());
}

TEST_CASE("3.1: a changed id triggers a fetch and the new policy replaces the cached one") {
    World w;
    w.attempt();
    w.clock.advance(Seconds{3600});
    w.dns.set_txt("_mta-sts.example.com", {"v=STSv1; id=two"});
    w.web.set_body("example.com", kTesting);
    w.attempt();
    CHECK(w.web.calls == 2);
    CHECK(w.rec->policy.mode == Mode::testing);
    CHECK(w.rec->policy_id->str() == "two");
    CHECK(w.rec->fetched_at == w.clock.now());
}

TEST_CASE("3.3: a fetched mode none policy replaces an enforce policy") {
    World w;
    w.attempt();
    w.clock.advance(Seconds{3600});
    w.dns.set_txt("_mta-sts.example.com", {"v=STSv1; id=withdraw"});
    w.web.set_body("example.com", kNone);
    w.attempt();
    CHECK(w.rec->policy.mode == Mode::none);
    CHECK(w.look().use == Assessment::Use::policy);
}

TEST_CASE("5: a removed TXT record does not remove an unexpired cached policy") {
    World w;
    w.attempt();
    w.clock.advance(Seconds{3600});
    w.dns.txt_answers.clear();
    w.attempt();
    CHECK(w.look().use == Assessment::Use::policy);
    CHECK(w.rec->policy.mode == Mode::enforce);
    CHECK(w.rec->last_outcome.code == "no-txt");
    CHECK(w.rec->consecutive_failures == 1);
}

TEST_CASE("5: a failed fetch does not weaken an unexpired cached policy") {
    World w;
    w.attempt();
    w.clock.advance(Seconds{3600});
    w.dns.set_txt("_mta-sts.example.com", {"v=STSv1; id=two"});
    w.web.answers.insert_or_assign("example.com",
                                   Lookup<FetchedPolicy>(Failure::temp("https-timeout", "timed out")));
    w.attempt();
    CHECK(w.rec->policy.mode == Mode::enforce);
    CHECK(w.rec->policy_id->str() == "one");
    CHECK(w.rec->last_outcome.kind == OutcomeKind::temporary);
    CHECK(w.look().use == Assessment::Use::policy);
}

TEST_CASE("5: an invalid new policy does not replace a valid cached one") {
    World w;
    w.attempt();
    w.clock.advance(Seconds{3600});
    w.dns.set_txt("_mta-sts.example.com", {"v=STSv1; id=two"});
    w.web.set_body("example.com", "version: STSv1\nmode: enforce\nmax_age: oops\n");
    w.attempt();
    CHECK(w.rec->policy.mode == Mode::enforce);
    CHECK(w.rec->policy_id->str() == "one");
    CHECK(w.rec->last_outcome.code == "policy-invalid");
    CHECK(w.rec->last_outcome.kind == OutcomeKind::permanent);
}

TEST_CASE("5: the cached policy survives failures until expiry, then is dropped") {
    World w;
    w.attempt();
    w.dns.txt_answers.clear();
    for (int i = 0; i < 6; ++i) {
        w.clock.advance(Seconds{86400});
        w.attempt();
        CHECK(w.look().use == Assessment::Use::policy);
    }
    w.clock.advance(Seconds{86400});
    CHECK(w.look().use != Assessment::Use::policy);
    w.attempt();
    CHECK(w.look().use == Assessment::Use::no_policy);
    CHECK(w.rec->state == PolicyState::no_policy);
}

TEST_CASE("5.1: the same id is re-fetched once half of max_age is gone, extending the policy") {
    World w;
    w.attempt();
    w.clock.advance(Seconds{604800 / 2});
    w.attempt();
    CHECK(w.web.calls == 2);
    CHECK(w.rec->expires_at == w.clock.now() + Seconds{604800});
}

TEST_CASE("negative cache: no policy is remembered for negative_cache_ttl") {
    World w;
    w.dns.txt_answers.clear();
    w.attempt();
    CHECK(w.look().use == Assessment::Use::no_policy);
    CHECK(w.look().refresh == Assessment::Refresh::none);
    w.clock.advance(Seconds{3599});
    CHECK(w.look().refresh == Assessment::Refresh::none);
    w.clock.advance(Seconds{1});
    CHECK(w.look().refresh == Assessment::Refresh::now);
    CHECK(w.dns.txt_calls == 1);
}

TEST_CASE("back-off: a failing domain without a policy is retried with exponential delays") {
    World w;
    w.dns.txt_answers.insert_or_assign("_mta-sts.example.com",
                                       Lookup<TxtAnswer>(Failure::temp("dns-servfail", "SERVFAIL")));
    std::vector<std::int64_t> delays;
    for (int i = 0; i < 12; ++i) {
        w.attempt();
        CHECK(w.look().use == Assessment::Use::temp_failure);
        CHECK(w.look().refresh == Assessment::Refresh::none);
        delays.push_back((w.rec->next_refresh - w.clock.now()).count());
        w.clock.set(w.rec->next_refresh);
        CHECK(w.look().refresh == Assessment::Refresh::now);
    }
    CHECK(delays[0] == 300);
    CHECK(delays[1] == 600);
    CHECK(delays[2] == 1200);
    CHECK(delays.back() == 86400);
    CHECK(w.rec->consecutive_failures == 12);
}

TEST_CASE("back-off: a success resets the failure count") {
    World w;
    w.dns.txt_answers.insert_or_assign("_mta-sts.example.com",
                                       Lookup<TxtAnswer>(Failure::temp("dns-timeout", "timeout")));
    w.attempt();
    w.clock.set(w.rec->next_refresh);
    w.dns.set_txt("_mta-sts.example.com", {"v=STSv1; id=one"});
    w.attempt();
    CHECK(w.rec->consecutive_failures == 0);
    CHECK(w.look().use == Assessment::Use::policy);
}

TEST_CASE("back-off: a permanent fetch failure without a cached policy means no policy") {
    World w;
    w.web.answers.insert_or_assign("example.com",
                                   Lookup<FetchedPolicy>(Failure::perm("https-cert-invalid", "expired")));
    w.attempt();
    CHECK(w.look().use == Assessment::Use::no_policy);
    CHECK(w.rec->state == PolicyState::no_policy);
}

TEST_CASE("back-off: failures with a usable policy are retried at least every txt_check_interval") {
    World w;
    w.attempt();
    w.dns.txt_answers.insert_or_assign("_mta-sts.example.com",
                                       Lookup<TxtAnswer>(Failure::temp("dns-timeout", "timeout")));
    for (int i = 0; i < 8; ++i) {
        w.clock.set(w.rec->next_refresh);
        w.attempt();
        CHECK(w.rec->next_refresh - w.clock.now() <= Seconds{3600});
    }
}

TEST_CASE("back-off formula is capped at failure_backoff_max") {
    RefreshSettings s;
    CHECK(backoff(0, s) == Seconds{0});
    CHECK(backoff(1, s) == Seconds{300});
    CHECK(backoff(2, s) == Seconds{600});
    CHECK(backoff(100, s) == Seconds{86400});
    CHECK(backoff(4'000'000'000u, s) == Seconds{86400});
}

TEST_CASE("a tiny max_age cannot make refreshes spin faster than once a minute") {
    World w;
    w.web.set_body("example.com", "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 1\n");
    w.attempt();
    CHECK(w.rec->next_refresh >= w.clock.now() + kMinRetryDelay);
}

TEST_CASE("jitter spreads the next refresh by at most 10 percent") {
    World w;
    Attempt a{discover_txt(w.d, w.dns), fetch_policy(w.d, w.web)};
    std::optional<CacheRecord> r0, r1;
    apply_attempt(r0, w.d, a, w.clock.now(), w.s, 0.0);
    apply_attempt(r1, w.d, a, w.clock.now(), w.s, 0.999);
    CHECK(r1->next_refresh > r0->next_refresh);
    CHECK(r1->next_refresh - r0->next_refresh <= Seconds{360});
}

TEST_CASE("background refresh only for domains used within refresh_unused_after") {
    World w;
    w.attempt();
    w.rec->last_used = w.clock.now();
    w.clock.advance(Seconds{3600});
    CHECK(due_for_background_refresh(*w.rec, w.clock.now(), w.s));
    w.clock.advance(Seconds{31 * 86400});
    CHECK_FALSE(due_for_background_refresh(*w.rec, w.clock.now(), w.s));
}

TEST_CASE("MX set: cached by TTL (clamped), kept on failure, emptied on NXDOMAIN") {
    World w;
    w.attempt();
    CHECK(w.look().mx_stale);  // a new policy always re-reads the MX set
    MxAnswer ans;
    ans.hosts = {{10, "mx.example.com"}};
    ans.meta.ttl = 5;
    apply_mx(*w.rec, Lookup<MxAnswer>(ans), w.clock.now(), w.s);
    CHECK(w.rec->mx_hosts == std::vector<std::string>{"mx.example.com"});
    CHECK(w.rec->mx_expires_at == w.clock.now() + Seconds{60});
    CHECK_FALSE(w.look().mx_stale);
    w.clock.advance(Seconds{60});
    CHECK(w.look().mx_stale);
    apply_mx(*w.rec, Lookup<MxAnswer>(Failure::temp("dns-timeout", "t")), w.clock.now(), w.s);
    CHECK(w.rec->mx_hosts == std::vector<std::string>{"mx.example.com"});
    apply_mx(*w.rec, Lookup<MxAnswer>(NotFound{"NXDOMAIN"}), w.clock.now(), w.s);
    CHECK(w.rec->mx_hosts.empty());
}

TEST_CASE("5.1: last use is recorded once per kLastUsedResolution, and always for a new domain") {
    World w;
    CHECK(last_use_worth_recording(std::nullopt, w.clock.now()));
    w.attempt();
    REQUIRE(w.rec);
    w.rec->last_used = w.clock.now();
    CHECK_FALSE(last_use_worth_recording(w.rec, w.clock.now()));
    w.clock.advance(kLastUsedResolution - Seconds{1});
    CHECK_FALSE(last_use_worth_recording(w.rec, w.clock.now()));
    w.clock.advance(Seconds{1});
    CHECK(last_use_worth_recording(w.rec, w.clock.now()));
    // Coarser than the smallest refresh_unused_after would hide real use.
    CHECK(kLastUsedResolution < Seconds{3600});
}
