// Tests for checker/dry_run.cc: reading destinations (domains and Postfix
// smtp log lines), verdicts under enforce, bounded concurrency, order.
#include "checker/dry_run.h"

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <sstream>

#include "tests/checker/check_fakes.h"

using namespace stsguard;
using namespace stsguard::testing;

namespace {

DestinationList read(const std::string& text) {
    std::istringstream in(text);
    return read_destinations(in);
}

std::vector<std::string> names(const DestinationList& l) {
    std::vector<std::string> out;
    for (const auto& d : l.destinations) out.push_back(d.domain.str());
    return out;
}

AdapterFactory factory_of(FakeWorld& w) {
    return [&w]() {
        WorkerAdapters a;
        auto dns = std::make_unique<FakeDns>(w.dns);  // each worker its own copy
        a.fetcher = std::make_unique<FakeFetcher>(w.web);
        a.dns = std::move(dns);
        return a;
    };
}

const DryRunResult& result_for(const std::vector<DryRunResult>& rs, const std::string& d) {
    for (const auto& r : rs)
        if (r.dest.domain.str() == d) return r;
    throw std::logic_error("no result for " + d);
}

}  // namespace

TEST_CASE("dry-run input: domains, comments, blank lines and addresses; deduplicated in order") {
    DestinationList l = read("# destinations\nExample.COM\n\n  b.test  # second\nuser@example.com\nb.test.\n");
    CHECK(names(l) == std::vector<std::string>{"example.com", "b.test"});
    CHECK(l.destinations[0].count == 2);
    CHECK(l.destinations[0].first_line == 2);
    CHECK(l.destinations[1].count == 2);
    CHECK(l.problem_count == 0);
    CHECK(l.lines == 6);
}

TEST_CASE("dry-run input: the recipient domain of smtp(8) log lines, any syslog_name") {
    DestinationList l = read(
        "Mar  1 12:00:00 mx postfix/smtp[123]: 4F3A2B: to=<alice@good.test>, relay=mx.good.test[192.0.2.1]:25, "
        "status=sent (250 ok)\n"
        "Mar  1 12:00:01 mx postfix-out/relay/smtp[77]: 5A: to=<bob@Other.Test>, orig_to=<x@y.test>, status=deferred\n"
        "Mar  1 12:00:02 mx postfix/smtp[123]: 6B: to=<carol@good.test>, status=sent\n");
    CHECK(names(l) == std::vector<std::string>{"good.test", "other.test"});
    CHECK(l.log_lines == 3);
    CHECK(l.destinations[0].count == 2);
}

TEST_CASE("dry-run input: local, lmtp and qmgr lines, bare users and address literals are ignored") {
    DestinationList l = read(
        "Mar  1 12:00:00 mx postfix/local[9]: 1A: to=<root@mx.example.com>, status=sent\n"
        "Mar  1 12:00:00 mx postfix/lmtp[9]: 1B: to=<u@mailbox.test>, status=sent\n"
        "Mar  1 12:00:00 mx postfix/qmgr[9]: 1C: from=<a@b.test>, size=100, nrcpt=1 (queue active)\n"
        "Mar  1 12:00:00 mx postfix/smtp[9]: 1D: to=<root>, status=bounced\n"
        "Mar  1 12:00:00 mx postfix/smtp[9]: 1E: to=<u@[192.0.2.1]>, status=sent\n");
    CHECK(l.destinations.empty());
    CHECK(l.ignored == 5);
    CHECK(l.problem_count == 0);
}

TEST_CASE("dry-run input: bad lines are reported with their line number and the run goes on") {
    DestinationList l = read("good.test\nnot a domain\nbad_host!.test\n192.0.2.1\nok.test\n");
    CHECK(names(l) == std::vector<std::string>{"good.test", "ok.test"});
    REQUIRE(l.problem_count == 3);
    CHECK(l.problems[0].line == 2);
    CHECK(l.problems[0].why == "expected one domain per line");
    CHECK(l.problems[1].line == 3);
    CHECK(l.problems[2].line == 4);
}

TEST_CASE("dry-run input: an overlong line is refused without reading it into memory whole") {
    std::string text = std::string(kMaxInputLine + 10, 'a') + "\nfine.test\n";
    DestinationList l = read(text);
    CHECK(names(l) == std::vector<std::string>{"fine.test"});
    REQUIRE(l.problems.size() == 1);
    CHECK(l.problems[0].line == 1);
    CHECK(l.problems[0].text.size() < 100);
}

TEST_CASE("dry-run input: CRLF line ends and a last line without newline") {
    DestinationList l = read("a.test\r\nb.test");
    CHECK(names(l) == std::vector<std::string>{"a.test", "b.test"});
}

TEST_CASE("dry-run verdicts: good, broken, degraded, unknown, no policy, none, testing") {
    FakeWorld w;
    w.add("good.test", "enforce", {"mx.good.test"});
    w.add("expired.test", "enforce", {"mx.expired.test"});
    w.set_probe("mx.expired.test", Probe::expired);
    w.add("mismatch.test", "enforce", {"mx.mismatch.test"}, {"mx.elsewhere.test"});
    w.add("two.test", "enforce", {"mx-a.two.test", "mx-b.two.test"});
    w.set_probe("mx-a.two.test", Probe::expired);
    w.add("testing-bad.test", "testing", {"mx.testing-bad.test"});
    w.set_probe("mx.testing-bad.test", Probe::wrong_name);
    w.add("none.test", "none", {"mx.none.test"});
    w.add_mx("nosts.test", {"mx.nosts.test"});
    w.add("slow.test", "enforce", {"mx.slow.test"});
    w.dns.base.txt_answers.insert_or_assign("_mta-sts.slow.test",
                                            Lookup<TxtAnswer>(Failure::temp("dns-timeout", "timed out")));
    w.add("dark.test", "enforce", {"mx.dark.test"});
    w.set_probe("mx.dark.test", Probe::timeout);

    DestinationList l = read(
        "good.test\nexpired.test\nmismatch.test\ntwo.test\ntesting-bad.test\nnone.test\nnosts.test\nslow.test\n"
        "dark.test\n");
    auto ran = run_dry_run(l.destinations, factory_of(w), w.probe.fn(), w.clock, DryRunSettings{});
    REQUIRE(ran.found());
    const auto& rs = ran.value();
    REQUIRE(rs.size() == 9);
    CHECK(result_for(rs, "good.test").verdict == DryVerdict::ok);
    CHECK(result_for(rs, "expired.test").verdict == DryVerdict::would_fail);
    CHECK(result_for(rs, "expired.test").enforced_now);
    CHECK(result_for(rs, "expired.test").delivery.code == "mx-refused");
    CHECK(result_for(rs, "mismatch.test").verdict == DryVerdict::would_fail);
    CHECK(result_for(rs, "mismatch.test").delivery.code == "no-mx-match");
    CHECK(result_for(rs, "mismatch.test").mx_alignment.status == CheckStatus::fail);
    CHECK(result_for(rs, "two.test").verdict == DryVerdict::degraded);
    CHECK(result_for(rs, "testing-bad.test").verdict == DryVerdict::would_fail);
    CHECK_FALSE(result_for(rs, "testing-bad.test").enforced_now);
    CHECK(result_for(rs, "none.test").verdict == DryVerdict::mode_none);
    CHECK(result_for(rs, "nosts.test").verdict == DryVerdict::no_policy);
    CHECK(result_for(rs, "slow.test").verdict == DryVerdict::unknown);  // a timeout is not "broken"
    CHECK(result_for(rs, "slow.test").delivery.code == "dns-timeout");
    CHECK(result_for(rs, "dark.test").verdict == DryVerdict::unknown);
    CHECK(dry_run_status(rs) == DomainStatus::critical);

    // No probes for domains whose policy is not enforced or testing.
    for (const auto& t : w.probe.asked()) {
        CHECK(t.host != "mx.none.test");
        CHECK(t.host != "mx.nosts.test");
    }
}

TEST_CASE("dry-run sorts what would break first, then by how often a domain occurs") {
    FakeWorld w;
    w.add("ok.test", "enforce", {"mx.ok.test"});
    w.add("bad1.test", "enforce", {"mx.bad1.test"});
    w.add("bad2.test", "enforce", {"mx.bad2.test"});
    w.set_probe("mx.bad1.test", Probe::expired);
    w.set_probe("mx.bad2.test", Probe::expired);
    w.add_mx("plain.test", {"mx.plain.test"});
    DestinationList l = read("plain.test\nok.test\nbad1.test\nbad2.test\nbad2.test\n");
    auto ran = run_dry_run(l.destinations, factory_of(w), w.probe.fn(), w.clock, DryRunSettings{});
    REQUIRE(ran.found());
    auto rs = std::move(ran.value());
    CHECK(rs[0].dest.domain.str() == "plain.test");  // input order before sorting
    sort_by_breakage(rs);
    std::vector<std::string> order;
    for (const auto& r : rs) order.push_back(r.dest.domain.str());
    CHECK(order == std::vector<std::string>{"bad2.test", "bad1.test", "ok.test", "plain.test"});
}

TEST_CASE("dry-run status: unknown outranks degraded, critical outranks unknown") {
    FakeWorld w;
    w.add("two.test", "enforce", {"mx-a.two.test", "mx-b.two.test"});
    w.set_probe("mx-a.two.test", Probe::expired);
    w.add("dark.test", "enforce", {"mx.dark.test"});
    w.set_probe("mx.dark.test", Probe::refused);
    auto ran = run_dry_run(read("two.test\n").destinations, factory_of(w), w.probe.fn(), w.clock, DryRunSettings{});
    CHECK(dry_run_status(ran.value()) == DomainStatus::warning);
    ran = run_dry_run(read("two.test\ndark.test\n").destinations, factory_of(w), w.probe.fn(), w.clock,
                      DryRunSettings{});
    CHECK(dry_run_status(ran.value()) == DomainStatus::unknown);
}

TEST_CASE("dry-run checks at most `concurrency` domains and `probe_concurrency` probes at once") {
    FakeWorld w;
    std::string list;
    for (int i = 0; i < 12; ++i) {
        const std::string d = "d" + std::to_string(i) + ".test";
        w.add(d, "enforce", {"mx1." + d, "mx2." + d, "mx3." + d});
        list += d + "\n";
    }
    std::mutex mu;
    int probes_now = 0, max_probes = 0;
    std::set<std::thread::id> threads;
    ProbeFn probe = [&](const ProbeTarget& t, Deadline) {
        {
            std::lock_guard lock(mu);
            max_probes = std::max(max_probes, ++probes_now);
        }
        ProbeResult r = probe_ok(t);
        std::lock_guard lock(mu);
        --probes_now;
        return r;
    };
    std::atomic<int> made{0};
    AdapterFactory make = [&]() {
        ++made;
        return factory_of(w)();
    };
    DryRunSettings s;
    s.concurrency = 3;
    s.probe_concurrency = 2;
    std::vector<std::size_t> progress;
    auto ran = run_dry_run(read(list).destinations, make, probe, w.clock, s,
                           [&](std::size_t done, std::size_t total, const DomainName&) {
                               CHECK(total == 12);
                               progress.push_back(done);
                           });
    REQUIRE(ran.found());
    CHECK(ran.value().size() == 12);
    CHECK(made == 3);  // one set of adapters per worker
    CHECK(max_probes <= 2);
    CHECK(progress.size() == 12);
    CHECK(progress.back() == 12);
    for (const auto& r : ran.value()) CHECK(r.verdict == DryVerdict::ok);
}

TEST_CASE("dry-run fails before checking anything when the adapters cannot be made") {
    FakeWorld w;
    AdapterFactory broken = []() -> WorkerAdapters { throw std::runtime_error("DNS: no server"); };
    auto ran = run_dry_run(read("a.test\n").destinations, broken, w.probe.fn(), w.clock, DryRunSettings{});
    REQUIRE(ran.failed());
    CHECK(ran.failure().code == "dry-run-setup");
    CHECK(ran.failure().reason.find("no server") != std::string::npos);
    CHECK(run_dry_run({}, broken, w.probe.fn(), w.clock, DryRunSettings{}).value().empty());
}
