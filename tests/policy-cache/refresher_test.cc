// Tests policy-cache/refresher.cc: refreshes land in the LMDB store, the
// MX set is read for policies that need it, store failures still yield a
// record.
#include <doctest/doctest.h>

#include "policy-cache/refresher.h"
#include "tests/fakes.h"
#include "tests/temp_dir.h"

using namespace stsguard;
using namespace stsguard::testing;

namespace {

struct Env {
    TempDir dir;
    std::unique_ptr<PolicyStore> store;
    ManualClock clock;
    FakeResolver dns;
    FakeFetcher web;
    DomainName d = *DomainName::parse("example.com");

    Env() {
        StoreOptions o;
        o.dir = dir.path() + "/cache";
        o.initial_map_size = 1 << 20;
        auto s = PolicyStore::open(o);
        REQUIRE(s.found());
        store = std::move(s.value());
        dns.set_txt("_mta-sts.example.com", {"v=STSv1; id=one"});
        dns.set_mx("example.com", {{10, "mx.example.com"}});
        web.set_body("example.com", "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n");
    }
    Refresher refresher() { return Refresher(*store, clock, RefreshSettings{}, [] { return 0.0; }); }
};

}  // namespace

TEST_CASE("refresher: a discovered policy and its MX set are stored") {
    Env e;
    auto r = e.refresher().refresh(e.d, e.dns, e.web);
    CHECK_FALSE(r.store_failure);
    REQUIRE(r.record);
    CHECK(r.record->policy.mode == Mode::enforce);
    CHECK(r.record->mx_hosts == std::vector<std::string>{"mx.example.com"});
    auto stored = e.store->get(e.d);
    REQUIRE(stored.found());
    CHECK(stored.value() == *r.record);
    CHECK(e.dns.mx_calls == 1);
}

TEST_CASE("refresher: no MX lookup for a domain without a policy or with mode none") {
    Env e;
    e.dns.txt_answers.clear();
    e.refresher().refresh(e.d, e.dns, e.web);
    CHECK(e.dns.mx_calls == 0);
    Env f;
    f.web.set_body("example.com", "version: STSv1\nmode: none\nmax_age: 86400\n");
    f.refresher().refresh(f.d, f.dns, f.web);
    CHECK(f.dns.mx_calls == 0);
}

TEST_CASE("refresher: the MX set is re-read only when its TTL ran out") {
    Env e;
    auto ref = e.refresher();
    ref.refresh(e.d, e.dns, e.web);
    e.clock.advance(Seconds{3600});  // MX TTL 300 s: stale; TXT check due
    ref.refresh(e.d, e.dns, e.web);
    CHECK(e.dns.mx_calls == 2);
    CHECK(e.web.calls == 1);
}

TEST_CASE("refresher 5: a refresh after the TXT record vanished keeps the stored policy") {
    Env e;
    auto ref = e.refresher();
    ref.refresh(e.d, e.dns, e.web);
    e.clock.advance(Seconds{3600});
    e.dns.txt_answers.clear();
    auto r = ref.refresh(e.d, e.dns, e.web);
    REQUIRE(r.record);
    CHECK(r.record->policy_usable_at(e.clock.now()));
    CHECK(e.store->get(e.d).value().policy.mode == Mode::enforce);
}

TEST_CASE("refresher: the attempt is reported for callers that explain outcomes") {
    Env e;
    e.web.answers.insert_or_assign("example.com",
                                   Lookup<FetchedPolicy>(Failure::perm("http-redirect", "redirects to x")));
    auto r = e.refresher().refresh(e.d, e.dns, e.web);
    REQUIRE(r.attempt);
    REQUIRE(r.attempt->fetch);
    CHECK(r.attempt->fetch->code == "http-redirect");
    CHECK(r.record->last_outcome.code == "http-redirect");
}
