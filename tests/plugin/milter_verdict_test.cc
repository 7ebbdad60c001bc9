// Tests plugin/milter_verdict.cc: when to discover, the X-STS-Policy
// header text, and the hold (tempfail) decision, from cache records.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "plugin/milter_verdict.h"

using namespace stsguard;

namespace {

const UnixTime kNow = from_unix(1'700'000'000);

DomainName dn(const std::string& s) { return *DomainName::parse(s); }

// A record as the refresher leaves it after a successful discovery.
CacheRecord policy_record(const std::string& domain, Mode mode, std::vector<std::string> patterns,
                          std::vector<std::string> mx_hosts, const std::string& id = "20240101") {
    CacheRecord r(dn(domain));
    Policy p;
    p.version = "STSv1";
    p.mode = mode;
    p.max_age = Seconds{86400};
    p.mx = std::move(patterns);
    r.set_policy("version: STSv1\n", p, PolicyId(id), kNow - Seconds{60});
    r.last_checked = kNow - Seconds{60};
    r.next_refresh = kNow + Seconds{3600};
    r.mx_hosts = std::move(mx_hosts);
    r.mx_expires_at = kNow + Seconds{300};
    return r;
}

CacheRecord failure_record(const std::string& domain, OutcomeKind kind, const std::string& code) {
    CacheRecord r(dn(domain));
    r.last_outcome = {kind, code, "detail of " + code};
    r.consecutive_failures = kind == OutcomeKind::temporary ? 1 : 0;
    r.last_checked = kNow - Seconds{10};
    r.next_refresh = kNow + Seconds{300};
    return r;
}

std::string header(const std::string& domain, const std::optional<CacheRecord>& rec) {
    return policy_header_value(dn(domain), domain_status(dn(domain), rec, kNow));
}

HoldDecision hold(const std::string& domain, const std::optional<CacheRecord>& rec) {
    return hold_decision(dn(domain), domain_status(dn(domain), rec, kNow));
}

}  // namespace

TEST_CASE("discovery: needed for an unknown domain, not for a fresh cached policy") {
    CHECK(needs_discovery(std::nullopt, kNow));
    CHECK_FALSE(needs_discovery(policy_record("example.com", Mode::enforce, {"mx.example.com"}, {"mx.example.com"}),
                                kNow));
}

TEST_CASE("discovery 5.1: needed when the TXT re-check is due, the policy expired, or the MX set is stale") {
    CacheRecord due = policy_record("example.com", Mode::enforce, {"mx.example.com"}, {"mx.example.com"});
    due.next_refresh = kNow - Seconds{1};
    CHECK(needs_discovery(due, kNow));

    CacheRecord expired = policy_record("example.com", Mode::enforce, {"mx.example.com"}, {"mx.example.com"});
    expired.expires_at = kNow - Seconds{1};
    CHECK(needs_discovery(expired, kNow));

    CacheRecord mx_stale = policy_record("example.com", Mode::enforce, {"mx.example.com"}, {"mx.example.com"});
    mx_stale.mx_expires_at = kNow - Seconds{1};
    CHECK(needs_discovery(mx_stale, kNow));

    CacheRecord mx_never = policy_record("example.com", Mode::testing, {"mx.example.com"}, {});
    mx_never.mx_expires_at = UnixTime{};
    CHECK(needs_discovery(mx_never, kNow));

    // mode none needs no MX set
    CacheRecord none = policy_record("example.com", Mode::none, {"mx.example.com"}, {});
    none.mx_expires_at = UnixTime{};
    CHECK_FALSE(needs_discovery(none, kNow));
}

TEST_CASE("discovery 5.1: not while a failure is in back-off or 'no policy' is remembered") {
    CHECK_FALSE(needs_discovery(failure_record("example.com", OutcomeKind::temporary, "policy-fetch-timeout"), kNow));
    CHECK_FALSE(needs_discovery(failure_record("example.com", OutcomeKind::no_policy, "no-txt-record"), kNow));
    CacheRecord ran_out = failure_record("example.com", OutcomeKind::temporary, "policy-fetch-timeout");
    ran_out.next_refresh = kNow - Seconds{1};
    CHECK(needs_discovery(ran_out, kNow));
}

TEST_CASE("header 4.1: an enforce policy whose MX set matches says mx=ok") {
    CHECK(header("example.com", policy_record("example.com", Mode::enforce, {"mx.example.com"}, {"mx.example.com"})) ==
          "example.com mode=enforce id=20240101 mx=ok");
    CHECK(header("example.com", policy_record("example.com", Mode::enforce, {"*.example.com"},
                                              {"mx1.example.com", "backup.other.test"})) ==
          "example.com mode=enforce id=20240101 mx=ok");
}

TEST_CASE("header 4.1: an MX set no pattern covers says mx=unsatisfied (wildcards cover one label)") {
    CHECK(header("example.com", policy_record("example.com", Mode::enforce, {"mx.elsewhere.test"},
                                              {"mx.example.com"})) == "example.com mode=enforce id=20240101 mx=unsatisfied");
    CHECK(header("example.com", policy_record("example.com", Mode::enforce, {"*.example.com"},
                                              {"mx.sub.example.com"})) == "example.com mode=enforce id=20240101 mx=unsatisfied");
    CHECK(header("example.com", policy_record("example.com", Mode::enforce, {"mx.example.com"}, {})) ==
          "example.com mode=enforce id=20240101 mx=unsatisfied");  // null MX / no MX host
}

TEST_CASE("header 5: testing policies are reported with their MX verdict too") {
    CHECK(header("example.com", policy_record("example.com", Mode::testing, {"mx.elsewhere.test"},
                                              {"mx.example.com"})) == "example.com mode=testing id=20240101 mx=unsatisfied");
    CHECK(header("example.com", policy_record("example.com", Mode::testing, {"mx.example.com"}, {"mx.example.com"})) ==
          "example.com mode=testing id=20240101 mx=ok");
}

TEST_CASE("header: mode none has no MX verdict; an unread MX set is pending") {
    CHECK(header("example.com", policy_record("example.com", Mode::none, {"mx.example.com"}, {}, "n1")) ==
          "example.com mode=none id=n1");
    CacheRecord mx_never = policy_record("example.com", Mode::enforce, {"mx.example.com"}, {});
    mx_never.mx_expires_at = UnixTime{};
    CHECK(header("example.com", mx_never) == "example.com mode=enforce id=20240101 mx=pending");
}

TEST_CASE("header: unknown, no policy, and failed discovery") {
    CHECK(header("example.com", std::nullopt) == "example.com mode=pending");
    CHECK(header("example.com", failure_record("example.com", OutcomeKind::no_policy, "no-txt-record")) ==
          "example.com mode=no-policy");
    CHECK(header("example.com", failure_record("example.com", OutcomeKind::temporary, "policy-fetch-timeout")) ==
          "example.com mode=unavailable reason=policy-fetch-timeout");
}

TEST_CASE("header: values from the cache file cannot inject lines or spaces") {
    CacheRecord evil = failure_record("example.com", OutcomeKind::temporary, "x\r\nBcc: victim@example.org y");
    const std::string v = header("example.com", evil);
    CHECK(v == "example.com mode=unavailable reason=x__Bcc__victim_example.org_y");
    CacheRecord odd_id = policy_record("example.com", Mode::enforce, {"mx.example.com"}, {"mx.example.com"}, "a b\nc");
    CHECK(header("example.com", odd_id) == "example.com mode=enforce id=a_b_c mx=ok");
    const std::string long_code(500, 'c');
    CHECK(header("example.com", failure_record("example.com", OutcomeKind::temporary, long_code)).size() <= 100);
}

TEST_CASE("header: bounded even for a 253-octet domain, printable ASCII only") {
    std::string name;
    while (name.size() < 240) name += std::string(59, 'a') + ".";
    name += "example";
    REQUIRE(DomainName::parse(name));
    const std::string v =
        policy_header_value(dn(name), domain_status(dn(name),
                                                    policy_record(name, Mode::enforce, {"mx.example.com"},
                                                                  {"mx.other.test"}, std::string(32, 'Z')),
                                                    kNow));
    CHECK(v.size() <= kMaxHeaderValueBytes);
    for (unsigned char c : v) CHECK((c >= 0x20 && c < 0x7f));
    CHECK(v.find(" mx=unsatisfied") != std::string::npos);
}

TEST_CASE("hold 5: an enforce policy no MX host can satisfy is tempfailed, naming the domain and why") {
    const HoldDecision d =
        hold("mx-mismatch.test", policy_record("mx-mismatch.test", Mode::enforce, {"mx.elsewhere.test"},
                                               {"mx.mx-mismatch.test"}));
    CHECK(d.action == RcptAction::tempfail);
    CHECK(d.reply_text.find("mx-mismatch.test") != std::string::npos);
    CHECK(d.reply_text.find("mx.elsewhere.test") != std::string::npos);
    CHECK(d.reply_text.find("mx.mx-mismatch.test") != std::string::npos);
    CHECK(d.reply_text.size() <= kMaxReplyTextBytes);
    CHECK(d.reply_text.find('\n') == std::string::npos);
    CHECK(std::string(kHoldReplyCode) == "451");
    CHECK(std::string(kHoldStatusCode) == "4.7.5");
}

TEST_CASE("hold: never for testing or none, a satisfiable policy, or anything unknown") {
    CHECK(hold("x.test", policy_record("x.test", Mode::testing, {"mx.elsewhere.test"}, {"mx.x.test"})).action ==
          RcptAction::accept);
    CHECK(hold("x.test", policy_record("x.test", Mode::none, {"mx.elsewhere.test"}, {"mx.x.test"})).action ==
          RcptAction::accept);
    CHECK(hold("x.test", policy_record("x.test", Mode::enforce, {"mx.x.test"}, {"mx.x.test"})).action ==
          RcptAction::accept);
    CHECK(hold("x.test", std::nullopt).action == RcptAction::accept);
    CHECK(hold("x.test", failure_record("x.test", OutcomeKind::temporary, "dns-timeout")).action == RcptAction::accept);
    CHECK(hold("x.test", failure_record("x.test", OutcomeKind::no_policy, "no-txt-record")).action ==
          RcptAction::accept);
    CacheRecord mx_never = policy_record("x.test", Mode::enforce, {"mx.elsewhere.test"}, {});
    mx_never.mx_expires_at = UnixTime{};
    CHECK(hold("x.test", mx_never).action == RcptAction::accept);
    CacheRecord expired = policy_record("x.test", Mode::enforce, {"mx.elsewhere.test"}, {"mx.x.test"});
    expired.expires_at = kNow;
    CHECK(hold("x.test", expired).action == RcptAction::accept);
}

TEST_CASE("hold: a stale but known MX set is judged like serve judges it") {
    CacheRecord stale = policy_record("x.test", Mode::enforce, {"mx.elsewhere.test"}, {"mx.x.test"});
    stale.mx_expires_at = kNow - Seconds{10};
    CHECK(hold("x.test", stale).action == RcptAction::tempfail);
}

TEST_CASE("reply text: '%' doubled for libmilter, controls and non-ASCII replaced, bounded") {
    CHECK(smtp_safe_text("100% sure") == "100%% sure");
    CHECK(smtp_safe_text("a\r\nb\tc\x01") == "a??b?c?");
    CHECK(smtp_safe_text("b\xc3\xbc") == "b??");
    CHECK(smtp_safe_text(std::string(1000, 'x')).size() == kMaxReplyTextBytes);
    CHECK(smtp_safe_text("ab%", 3) == "ab");  // never half an escape
    CHECK(smtp_safe_text("a%", 3) == "a%%");
}

TEST_CASE("mx verdict names") {
    CHECK(std::string(mx_verdict_name(MxVerdict::ok)) == "ok");
    CHECK(std::string(mx_verdict_name(MxVerdict::unsatisfied)) == "unsatisfied");
    CHECK(std::string(mx_verdict_name(MxVerdict::pending)) == "pending");
    CHECK(std::string(mx_verdict_name(MxVerdict::not_applicable)) == "n/a");
}
