// Tests for postfix/domain_view.cc: the view of a domain the answer is
// decided on, made from an owned record (check, query, dry-run, the
// discovery path) or from one decoded in place (the serve hot path).
// Both must lead to the same answer: what check reports is what serve
// enforces.
#include "postfix/domain_view.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace stsguard;

namespace {

DomainName dn(const char* s) {
    auto d = DomainName::parse(s);
    REQUIRE(d);
    return *d;
}

const UnixTime kNow = from_unix(1'800'000'000);

CacheRecord with_policy(const char* domain, Mode mode, std::vector<std::string> mx, std::vector<std::string> hosts) {
    CacheRecord r(dn(domain));
    Policy p;
    p.version = "STSv1";
    p.mode = mode;
    p.max_age = Seconds{86400};
    p.mx = std::move(mx);
    r.set_policy("version: STSv1\n", p, PolicyId("id1"), kNow - Seconds{600});
    r.next_refresh = kNow + Seconds{3600};
    r.last_outcome = {OutcomeKind::ok, "policy-fetched", "fetched"};
    r.mx_hosts = std::move(hosts);
    r.mx_expires_at = kNow + Seconds{3600};
    return r;
}

std::vector<CacheRecord> records() {
    std::vector<CacheRecord> out;
    out.push_back(with_policy("a.test", Mode::enforce, {"mx1.a.test", "*.b.a.test"}, {"mx1.a.test", "x.b.a.test"}));
    out.push_back(with_policy("rogue.test", Mode::enforce, {"mx.legit.test"}, {"mx.rogue.test"}));
    out.push_back(with_policy("testing.test", Mode::testing, {"mx.testing.test"}, {"mx.testing.test"}));
    out.push_back(with_policy("none.test", Mode::none, {}, {}));
    CacheRecord many = with_policy("many.test", Mode::enforce, {"*.many.test"}, {});
    for (int i = 0; i < 11; ++i) many.mx_hosts.push_back("mx" + std::to_string(i) + ".many.test");
    out.push_back(many);
    CacheRecord mx_pending = with_policy("pending.test", Mode::enforce, {"mx.pending.test"}, {});
    mx_pending.mx_expires_at = UnixTime{};  // MX set never read
    out.push_back(mx_pending);
    CacheRecord negative(dn("nopolicy.test"));
    negative.last_outcome = {OutcomeKind::no_policy, "txt-none", "no _mta-sts record"};
    negative.next_refresh = kNow + Seconds{600};
    out.push_back(negative);
    CacheRecord backoff(dn("failing.test"));
    backoff.last_outcome = {OutcomeKind::temporary, "policy-fetch-timeout", "timed out"};
    backoff.consecutive_failures = 2;
    backoff.next_refresh = kNow + Seconds{600};
    out.push_back(backoff);
    return out;
}

std::vector<MapSettings> maps() {
    std::vector<MapSettings> out;
    for (auto m : {MxMatchMode::exact, MxMatchMode::patterns})
        for (auto t : {TestingPolicies::report_only, TestingPolicies::enforce})
            for (auto f : {OnTempFailure::notfound, OnTempFailure::temp})
                for (auto a : {PostfixAttributes::off, PostfixAttributes::on}) out.push_back({m, t, f, a});
    return out;
}

}  // namespace

TEST_CASE("answer: a record decoded in place gets the same answer as the owned record (serve = check)") {
    CacheRecord fixed(dn("unused.test"));  // reused, as serve reuses it
    DomainView reused;
    int decided = 0;
    for (int round = 0; round < 2; ++round) {
        for (const CacheRecord& rec : records()) {
            std::string why;
            auto bytes = encode_record(rec, &why);
            REQUIRE_MESSAGE(bytes, why);
            REQUIRE_MESSAGE(decode_record_view(*bytes, rec.domain, fixed, reused.texts, &why), why);
            const std::optional<CacheRecord> owned = rec;
            const Assessment a = assess(owned, kNow);
            view_of_into(fixed, a, reused);
            const DomainView from_owned = view_of(owned, a);
            for (const MapSettings& map : maps()) {
                for (Explain e : {Explain::yes, Explain::no}) {
                    const Answer want = decide_answer(rec.domain, from_owned, map, e);
                    const Answer got = decide_answer(rec.domain, reused, map, e);
                    CHECK_MESSAGE(encode_reply(got.reply) == encode_reply(want.reply), rec.domain.str());
                    CHECK_MESSAGE(got.why_code == want.why_code, rec.domain.str());
                    CHECK_MESSAGE(got.why == want.why, rec.domain.str());
                    ++decided;
                }
            }
        }
    }
    CHECK(decided == 2 * 8 * 16 * 2);
}

TEST_CASE("answer: the view of a record decoded in place holds its policy and MX set") {
    const CacheRecord rec = records().front();
    auto bytes = encode_record(rec);
    REQUIRE(bytes);
    CacheRecord fixed(rec.domain);
    DomainView v;
    REQUIRE(decode_record_view(*bytes, rec.domain, fixed, v.texts));
    view_of_into(fixed, assess(std::optional<CacheRecord>(rec), kNow), v);
    CHECK(v.state == DomainView::State::policy);
    CHECK(v.mode == Mode::enforce);
    CHECK(v.texts.version == "STSv1");
    CHECK(v.max_age == Seconds{86400});
    CHECK(std::vector<std::string>(v.texts.mx.begin(), v.texts.mx.end()) == rec.policy.mx);
    CHECK(v.mx_known);
    CHECK(std::vector<std::string>(v.texts.mx_hosts.begin(), v.texts.mx_hosts.end()) == rec.mx_hosts);
    CHECK(v.remaining == Seconds{86400 - 600});
}
