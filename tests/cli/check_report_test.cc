// Tests for cli/check_report.cc: the cold-cache Postfix answer goes
// through the service's own functions (so check and serve agree), the
// JSON schema of check and dry-run (docs/checks.md), the terminal table,
// and the monitoring exit codes.
#include "cli/check_report.h"

#include <doctest/doctest.h>

#include <sstream>

#include "tests/checker/check_fakes.h"

using namespace stsguard;
using namespace stsguard::testing;

namespace {

PostfixAnswer answer(FakeWorld& w, const std::string& d, const Config& cfg = Config{}) {
    return cold_cache_answer(w.gather(d), cfg, "postfix");
}

}  // namespace

TEST_CASE("postfix answer: enforce with a covered MX is 'secure match=' the approved MX") {
    FakeWorld w;
    w.add("good.test", "enforce", {"mx1.good.test", "mx2.good.test"});
    PostfixAnswer a = answer(w, "good.test");
    CHECK(a.reply == "OK secure match=mx1.good.test:mx2.good.test servername=hostname");
    CHECK(a.reason_code == "enforce");
    CHECK(a.map == "postfix");
}

TEST_CASE("postfix answer: testing and none are NOTFOUND; testing is enforced when the map says so") {
    FakeWorld w;
    w.add("t.test", "testing", {"mx.t.test"});
    w.add("n.test", "none", {"mx.n.test"});
    CHECK(answer(w, "t.test").reply == "NOTFOUND ");
    CHECK(answer(w, "t.test").reason_code == "mode-testing");
    CHECK(answer(w, "n.test").reason_code == "mode-none");
    Config cfg;
    cfg.enforce_testing = true;
    CHECK(answer(w, "t.test", cfg).reply.rfind("OK secure match=mx.t.test", 0) == 0);
}

TEST_CASE("postfix answer: an MX outside the policy defers (TEMP), exactly as serve does") {
    FakeWorld w;
    w.add("mis.test", "enforce", {"mx.mis.test"}, {"mx.elsewhere.test"});
    PostfixAnswer a = answer(w, "mis.test");
    CHECK(a.reply.rfind("TEMP ", 0) == 0);
    CHECK(a.reason_code == "no-mx-match");
}

TEST_CASE("postfix answer: no policy, a failed fetch and a DNS timeout are NOTFOUND (fail-open, RFC 8461 5)") {
    FakeWorld w;
    w.add_mx("plain.test", {"mx.plain.test"});
    w.add("err.test", "enforce", {"mx.err.test"});
    w.web.answers.insert_or_assign("err.test", Lookup<FetchedPolicy>(Failure::perm("http-status", "HTTP 404")));
    w.add("slow.test", "enforce", {"mx.slow.test"});
    w.dns.base.txt_answers.insert_or_assign("_mta-sts.slow.test",
                                            Lookup<TxtAnswer>(Failure::temp("dns-timeout", "timed out")));
    CHECK(answer(w, "plain.test").reply == "NOTFOUND ");
    CHECK(answer(w, "err.test").reply == "NOTFOUND ");
    CHECK(answer(w, "slow.test").reply == "NOTFOUND ");
    CHECK(answer(w, "slow.test").reason_code == "temp-failure-open");
    Config cfg;
    cfg.on_temp_failure = "temp";
    CHECK(answer(w, "slow.test", cfg).reply.rfind("TEMP ", 0) == 0);
}

TEST_CASE("postfix answer: mx_match = patterns maps '*.x' to Postfix's '.x'") {
    FakeWorld w;
    w.add("wild.test", "enforce", {"mx7.wild.test"}, {"*.wild.test"});
    Config cfg;
    cfg.mx_match = "patterns";
    CHECK(answer(w, "wild.test", cfg).reply == "OK secure match=.wild.test servername=hostname");
}

TEST_CASE("check --json schema: status, mode, postfix_answer and every check with status/summary/details/fix") {
    FakeWorld w;
    w.add("good.test", "enforce", {"mx1.good.test"});
    DomainFacts f = w.gather("good.test");
    DomainReport r = judge_domain(f);
    nlohmann::json j = domain_json(f, r, cold_cache_answer(f, Config{}, "postfix"));
    CHECK(j["domain"] == "good.test");
    CHECK(j["status"] == "ok");
    CHECK(j["mode"] == "enforce");
    CHECK(j["policy_id"] == "20240101T000000");
    CHECK(j["postfix_answer"]["reply"] == "OK secure match=mx1.good.test servername=hostname");
    REQUIRE(j["checks"].size() == check_ids().size());
    for (const auto& id : check_ids()) {
        const auto& c = j["checks"][id];
        CHECK_MESSAGE(c.contains("status"), id);
        CHECK(c["summary"].is_string());
        CHECK(c["details"].is_object());
        CHECK((c["fix"].is_null() || c["fix"].is_string()));
        CHECK(c["findings"].is_array());
    }
    CHECK(j["checks"]["policy_id_hygiene"]["status"] == "skip");
    CHECK(j["checks"]["dns_record"]["fix"].is_null());
}

TEST_CASE("the table names every check, colours nothing when colour is off, and prints fixes for problems") {
    FakeWorld w;
    w.add("bad.test", "enforce", {"mx.bad.test"});
    w.set_probe("mx.bad.test", Probe::expired);
    DomainFacts f = w.gather("bad.test");
    DomainReport r = judge_domain(f);
    std::ostringstream out;
    print_domain(out, Color::off, f, r, cold_cache_answer(f, Config{}, "postfix"), Detail::normal);
    const std::string s = out.str();
    CHECK(s.rfind("bad.test: CRITICAL - MTA-STS mode enforce; fail: mx_certificates, mode", 0) == 0);
    for (const auto& id : check_ids()) CHECK(s.find(id) != std::string::npos);
    CHECK(s.find("fix: install on mx.bad.test") != std::string::npos);
    CHECK(s.find("\033[") == std::string::npos);
    CHECK(s.find("postfix answer (postfix, cold cache): TEMP") == std::string::npos);
    CHECK(s.find("postfix answer (postfix, cold cache): OK secure match=mx.bad.test") != std::string::npos);

    std::ostringstream coloured;
    print_domain(coloured, Color::on, f, r, cold_cache_answer(f, Config{}, "postfix"), Detail::verbose);
    CHECK(coloured.str().find("\033[1;31m") != std::string::npos);
    CHECK(coloured.str().find("[cert-expired]") != std::string::npos);
}

TEST_CASE("exit codes follow the monitoring-plugin convention") {
    CHECK(exit_code_of(DomainStatus::ok) == ExitCode::ok);
    CHECK(exit_code_of(DomainStatus::warning) == ExitCode::warning);
    CHECK(exit_code_of(DomainStatus::critical) == ExitCode::critical);
    CHECK(exit_code_of(DomainStatus::unknown) == ExitCode::unknown);
}

TEST_CASE("dry-run --json schema: status, summary counts, input and one entry per domain") {
    FakeWorld w;
    w.add("good.test", "enforce", {"mx.good.test"});
    w.add("bad.test", "enforce", {"mx.bad.test"});
    w.set_probe("mx.bad.test", Probe::expired);
    std::istringstream in("good.test\nbad.test\nnot a domain\n");
    DestinationList l = read_destinations(in);
    AdapterFactory make = [&w]() {
        WorkerAdapters a;
        a.dns = std::make_unique<FakeDns>(w.dns);
        a.fetcher = std::make_unique<FakeFetcher>(w.web);
        return a;
    };
    auto ran = run_dry_run(l.destinations, make, w.probe.fn(), w.clock, DryRunSettings{});
    REQUIRE(ran.found());
    sort_by_breakage(ran.value());
    nlohmann::json j = dry_run_json(ran.value(), l, Config{});
    CHECK(j["status"] == "critical");
    CHECK(j["summary"]["would-fail"] == 1);
    CHECK(j["summary"]["ok"] == 1);
    CHECK(j["summary"]["no-policy"] == 0);
    CHECK(j["input"]["problem_count"] == 1);
    CHECK(j["input"]["problems"][0]["line"] == 3);
    REQUIRE(j["domains"].size() == 2);
    CHECK(j["domains"][0]["domain"] == "bad.test");
    CHECK(j["domains"][0]["verdict"] == "would-fail");
    CHECK(j["domains"][0]["enforced_now"] == true);
    CHECK(j["domains"][0]["checks"]["mx_certificates"]["status"] == "fail");
    CHECK(j["domains"][0]["hosts"][0]["state"] == "tls-refused");
    CHECK(j["domains"][1]["postfix_answer"]["reply"] == "OK secure match=mx.good.test servername=hostname");

    std::ostringstream out;
    print_dry_run(out, Color::off, ran.value(), l);
    CHECK(out.str().find("would-fail  enforce") != std::string::npos);
    CHECK(out.str().find("1 would-fail, 1 ok") != std::string::npos);
}
