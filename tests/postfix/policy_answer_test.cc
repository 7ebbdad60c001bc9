// Tests postfix/policy_answer.cc against the golden table
// tests/data/postfix/answers.golden (RFC 8461 4.1 MX matching expressed
// in Postfix socketmap replies, Postfix 3.7 and 3.10+ forms).
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "postfix/policy_answer.h"

using namespace stsguard;

namespace {

Policy enforce_policy(std::vector<std::string> mx) {
    Policy p;
    p.version = "STSv1";
    p.mode = Mode::enforce;
    p.max_age = Seconds{86400};
    p.mx = std::move(mx);
    return p;
}

std::vector<std::string> split(const std::string& s, const std::string& sep) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (true) {
        auto i = s.find(sep, pos);
        out.push_back(s.substr(pos, i == std::string::npos ? std::string::npos : i - pos));
        if (i == std::string::npos) break;
        pos = i + sep.size();
    }
    return out;
}

std::vector<std::string> list(const std::string& s) {
    if (s.empty() || s == "-") return {};
    return split(s, ",");
}

std::string trim(std::string s) {
    while (!s.empty() && s.front() == ' ') s.erase(0, 1);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

}  // namespace

TEST_CASE("golden: socketmap replies for every policy state and map setting") {
    std::ifstream in("tests/data/postfix/answers.golden");
    REQUIRE(in);
    std::string line;
    int rows = 0;
    const DomainName domain = *DomainName::parse("example.com");
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        auto c = split(line, " | ");
        REQUIRE_MESSAGE(c.size() == 10, line);
        ++rows;
        MapSettings map;
        map.mx_match = trim(c[1]) == "patterns" ? MxMatchMode::patterns : MxMatchMode::exact;
        map.testing = trim(c[2]) == "enforce" ? TestingPolicies::enforce : TestingPolicies::report_only;
        map.on_temp_failure = trim(c[3]) == "temp" ? OnTempFailure::temp : OnTempFailure::notfound;
        map.attributes = trim(c[4]) == "on" ? PostfixAttributes::on : PostfixAttributes::off;
        Policy p;
        p.version = "STSv1";
        p.max_age = Seconds{604800};
        DomainView v;
        std::vector<std::string> hosts;
        std::string state = trim(c[5]);
        if (state == "policy") {
            p.mode = *parse_mode(trim(c[6]));
            p.mx = list(trim(c[7]));
            v.use_policy(p);
            v.remaining = Seconds{86400};
            std::string mx = trim(c[8]);
            if (mx == "FAIL") v.mx_failure = "dns-servfail";
            else {
                hosts = list(mx);
                v.use_mx_hosts(hosts);
            }
        } else if (state == "temp_failure") {
            v.state = DomainView::State::temp_failure;
            v.failure_code = "dns-servfail";
            v.failure_reason = "SERVFAIL for _mta-sts.example.com";
        } else {
            v.state = DomainView::State::no_policy;
        }
        std::string want = c[9];
        while (!want.empty() && want.back() == '\r') want.pop_back();
        if (want.rfind("NOTFOUND", 0) == 0) want = "NOTFOUND ";
        Answer a = decide_answer(domain, v, map);
        CHECK_MESSAGE(encode_reply(a.reply) == want, "case " << trim(c[0]));
        CHECK_FALSE(a.why_code.empty());
    }
    CHECK(rows >= 19);
}

TEST_CASE("4.1: patterns mode maps *.x to Postfix .x, exact names unchanged") {
    CHECK(postfix_match_pattern("*.example.com") == ".example.com");
    CHECK(postfix_match_pattern("mx.example.com") == "mx.example.com");
}

TEST_CASE("answer: the reason for a no-MX-match names the MX hosts and the patterns") {
    const Policy p = enforce_policy({"mx.legit.test"});
    DomainView v;
    v.use_policy(p);
    const std::vector<std::string> hosts{"mx.rogue.test"};
    v.use_mx_hosts(hosts);
    Answer a = decide_answer(*DomainName::parse("mxname-vs-cert.test"), v, MapSettings{});
    CHECK(a.reply.kind == SocketmapReply::Kind::temp);
    CHECK(a.why_code == "no-mx-match");
    CHECK(a.why.find("mx.rogue.test") != std::string::npos);
    CHECK(a.why.find("mx.legit.test") != std::string::npos);
}

TEST_CASE("answer: Explain::no gives the same reply and reason code, without the text") {
    const Policy p = enforce_policy({"*.Example.test", "mx9.other.test"});
    DomainView v;
    v.use_policy(p);
    const std::vector<std::string> hosts{"mx1.example.test", "a.b.example.test", "mx9.other.test"};
    v.use_mx_hosts(hosts);
    const auto d = *DomainName::parse("example.test");
    for (MxMatchMode m : {MxMatchMode::exact, MxMatchMode::patterns}) {
        MapSettings map;
        map.mx_match = m;
        const Answer yes = decide_answer(d, v, map, Explain::yes);
        const Answer no = decide_answer(d, v, map, Explain::no);
        CHECK(yes.reply.text == no.reply.text);
        CHECK(yes.why_code == no.why_code);
        CHECK_FALSE(yes.why.empty());
        CHECK(no.why.empty());
    }
    // 4.1: one-label wildcard, case-insensitive; a.b.example.test is two labels below.
    CHECK(decide_answer(d, v, MapSettings{}, Explain::no).reply.text ==
          "secure match=mx1.example.test:mx9.other.test servername=hostname");
    CHECK(decide_answer(d, v, MapSettings{}, Explain::yes).why ==
          "policy enforce, approved MX mx1.example.test, mx9.other.test");
}

TEST_CASE("answer: deciding into a used Answer gives what a fresh one gives, for every state") {
    // The serve hot path decides every request into the same Answer.
    const Policy p = enforce_policy({"*.example.test"});
    const std::vector<std::string> good{"mx1.example.test", "mx2.example.test"};
    const std::vector<std::string> rogue{"mx.rogue.test"};
    const auto d = *DomainName::parse("example.test");
    std::vector<DomainView> views;
    DomainView v;
    v.use_policy(p);
    v.remaining = Seconds{3600};
    v.use_mx_hosts(good);
    views.push_back(v);  // OK secure match=...
    v.use_mx_hosts(rogue);
    views.push_back(v);  // no MX matches
    v.mx_known = false;
    v.texts.mx_hosts.clear();
    v.mx_failure = "SERVFAIL";
    views.push_back(v);  // MX lookup failed
    DomainView none;
    none.state = DomainView::State::no_policy;
    views.push_back(none);
    DomainView temp;
    temp.state = DomainView::State::temp_failure;
    temp.failure_code = "fetch-timeout";
    temp.failure_reason = "timed out";
    views.push_back(temp);
    Answer reused;
    for (int round = 0; round < 2; ++round) {
        for (const MxMatchMode m : {MxMatchMode::exact, MxMatchMode::patterns}) {
            MapSettings map;
            map.mx_match = m;
            for (const Explain e : {Explain::yes, Explain::no}) {
                for (std::size_t i = 0; i < views.size(); ++i) {
                    decide_answer_into(d, views[i], map, e, reused);
                    const Answer fresh = decide_answer(d, views[i], map, e);
                    CHECK_MESSAGE(reused.reply.kind == fresh.reply.kind, i);
                    CHECK_MESSAGE(reused.reply.text == fresh.reply.text, i);
                    CHECK_MESSAGE(reused.why_code == fresh.why_code, i);
                    CHECK_MESSAGE(reused.why == fresh.why, i);
                }
            }
        }
    }
    decide_answer_into(d, views[0], MapSettings{}, Explain::no, reused);
    CHECK(reused.reply.text == "secure match=mx1.example.test:mx2.example.test servername=hostname");
}
