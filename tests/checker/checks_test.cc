// Tests for checker/checks.cc, check_dns.cc, check_policy.cc, check_mx.cc,
// check_advice.cc and check_tlsrpt.cc: the verdict of every check id on
// facts gathered from fake DNS, HTTPS and STARTTLS probes (check_gather.cc
// is exercised on the way; its own behaviour is in check_gather_test.cc).
#include <doctest/doctest.h>

#include "checker/checks.h"
#include "tests/checker/check_fakes.h"

using namespace stsguard;
using namespace stsguard::testing;

namespace {

DomainReport judge(FakeWorld& w, const std::string& domain) { return judge_domain(w.gather(domain)); }

CheckStatus status(const DomainReport& r, const std::string& id) { return check_of(r, id).status; }

}  // namespace

TEST_CASE("a valid enforce policy whose MX passes: every check passes, the domain is ok") {
    FakeWorld w;
    w.add("good.test", "enforce", {"mx1.good.test"});
    DomainReport r = judge(w, "good.test");
    CHECK(r.checks.size() == check_ids().size());
    for (const auto& id : {"dns_record", "policy_fetch", "policy_syntax", "mx_alignment", "mx_certificates", "mode",
                           "tlsrpt", "dane"})
        CHECK_MESSAGE(status(r, id) == CheckStatus::pass, id, ": ", check_of(r, id).summary);
    CHECK(status(r, "policy_id_hygiene") == CheckStatus::skip);  // no cache
    CHECK(r.status == DomainStatus::ok);
    CHECK(check_of(r, "dns_record").details["id"] == "20240101T000000");
    CHECK(check_of(r, "mx_alignment").details["mx"][0]["covered_by"] == "mx1.good.test");
}

TEST_CASE("3.1: no _mta-sts record fails dns_record, skips the policy checks, and is critical") {
    FakeWorld w;
    w.add_mx("nosts.test", {"mx.nosts.test"});
    DomainReport r = judge(w, "nosts.test");
    CHECK(status(r, "dns_record") == CheckStatus::fail);
    CHECK(check_of(r, "dns_record").details["reason_code"] == "no-txt");
    CHECK_FALSE(check_of(r, "dns_record").fix.empty());
    for (const auto& id : {"policy_fetch", "policy_syntax", "mx_alignment", "mode"})
        CHECK_MESSAGE(status(r, id) == CheckStatus::skip, id);
    CHECK(r.status == DomainStatus::critical);
}

TEST_CASE("3.1: several v=STSv1 records fail dns_record (senders assume no policy)") {
    FakeWorld w;
    w.add("multi.test", "enforce", {"mx.multi.test"});
    w.dns.base.set_txt("_mta-sts.multi.test", {"v=STSv1; id=a1", "v=STSv1; id=a2"});
    DomainReport r = judge(w, "multi.test");
    CHECK(status(r, "dns_record") == CheckStatus::fail);
    CHECK(check_of(r, "dns_record").details["reason_code"] == "txt-multiple");
    CHECK(check_of(r, "dns_record").details["sts_records"] == 2);
    CHECK(status(r, "policy_fetch") == CheckStatus::skip);
}

TEST_CASE("3.1: unrelated TXT records next to the v=STSv1 record are noted, not failed") {
    FakeWorld w;
    w.add("other.test", "enforce", {"mx.other.test"});
    w.dns.base.set_txt("_mta-sts.other.test", {"google-site-verification=x", "v=STSv1; id=abc"});
    DomainReport r = judge(w, "other.test");
    const CheckResult& c = check_of(r, "dns_record");
    CHECK(c.status == CheckStatus::pass);
    CHECK(c.details["other_records"] == 1);
    CHECK(has_code(c.findings, "txt-record-ignored"));
}

TEST_CASE("3.1: a syntactically invalid record fails dns_record with the grammar findings") {
    FakeWorld w;
    w.add("bad.test", "enforce", {"mx.bad.test"});
    w.dns.base.set_txt("_mta-sts.bad.test", {"v=STSv1; id=has-dash"});
    DomainReport r = judge(w, "bad.test");
    CHECK(status(r, "dns_record") == CheckStatus::fail);
    CHECK(check_of(r, "dns_record").details["reason_code"] == "txt-invalid");
    CHECK(has_code(check_of(r, "dns_record").findings, "txt-id-invalid"));
}

TEST_CASE("a TXT lookup timeout is unknown, never a failure of the domain") {
    FakeWorld w;
    w.add("slow.test", "enforce", {"mx.slow.test"});
    w.dns.base.txt_answers.insert_or_assign("_mta-sts.slow.test",
                                            Lookup<TxtAnswer>(Failure::temp("dns-timeout", "timed out")));
    w.dns.base.txt_answers.insert_or_assign("_smtp._tls.slow.test",
                                            Lookup<TxtAnswer>(Failure::temp("dns-timeout", "timed out")));
    DomainReport r = judge(w, "slow.test");
    CHECK(status(r, "dns_record") == CheckStatus::unknown);
    CHECK(status(r, "tlsrpt") == CheckStatus::unknown);
    CHECK(r.status == DomainStatus::unknown);
}

TEST_CASE("3.1: a CNAME chain at _mta-sts is reported") {
    FakeWorld w;
    w.add("cn.test", "enforce", {"mx.cn.test"});
    TxtAnswer a;
    a.records = {"v=STSv1; id=cname1"};
    a.meta.cnames = {"_mta-sts.target.test"};
    w.dns.base.txt_answers.insert_or_assign("_mta-sts.cn.test", Lookup<TxtAnswer>(a));
    DomainReport r = judge(w, "cn.test");
    const CheckResult& c = check_of(r, "dns_record");
    CHECK(c.status == CheckStatus::pass);
    CHECK(c.details["cnames"][0] == "_mta-sts.target.test");
    CHECK(c.summary.find("via CNAME _mta-sts.cn.test -> _mta-sts.target.test") != std::string::npos);
}

TEST_CASE("3.3: a policy host certificate failure fails policy_fetch with https-cert-invalid") {
    FakeWorld w;
    w.add("badweb.test", "enforce", {"mx.badweb.test"});
    w.web.answers.insert_or_assign(
        "badweb.test", Lookup<FetchedPolicy>(Failure::perm("https-cert-invalid", "SSL: no alternative subject name")));
    DomainReport r = judge(w, "badweb.test");
    const CheckResult& c = check_of(r, "policy_fetch");
    CHECK(c.status == CheckStatus::fail);
    CHECK(c.details["reason_code"] == "https-cert-invalid");
    CHECK(c.details["rfc8460_result_type"] == "sts-webpki-invalid");
    CHECK(c.fix.find("subjectAltName") != std::string::npos);
    CHECK(status(r, "policy_syntax") == CheckStatus::skip);
    CHECK(status(r, "mx_alignment") == CheckStatus::skip);
    CHECK(r.status == DomainStatus::critical);
}

TEST_CASE("3.3: a redirect is a policy_fetch failure that names the Location") {
    FakeWorld w;
    w.add("redir.test", "enforce", {"mx.redir.test"});
    w.web.answers.insert_or_assign(
        "redir.test", Lookup<FetchedPolicy>(Failure::perm("http-redirect", "HTTP 301 to https://elsewhere.test/x")));
    const CheckResult c = check_of(judge(w, "redir.test"), "policy_fetch");
    CHECK(c.status == CheckStatus::fail);
    CHECK(c.summary.find("https://elsewhere.test/x") != std::string::npos);
    CHECK(c.fix.find("never follow") != std::string::npos);
}

TEST_CASE("3.3: a temporary DNS failure resolving the policy host is unknown") {
    FakeWorld w;
    w.add("hostdns.test", "enforce", {"mx.hostdns.test"});
    w.web.answers.insert_or_assign("hostdns.test",
                                   Lookup<FetchedPolicy>(Failure::temp("policy-host-dns", "SERVFAIL")));
    CHECK(status(judge(w, "hostdns.test"), "policy_fetch") == CheckStatus::unknown);
}

TEST_CASE("3.3: a successful fetch reports status, content type, size and time") {
    FakeWorld w;
    w.add("meta.test", "enforce", {"mx.meta.test"});
    const CheckResult c = check_of(judge(w, "meta.test"), "policy_fetch");
    CHECK(c.status == CheckStatus::pass);
    CHECK(c.details["http_status"] == 200);
    CHECK(c.details["content_type"] == "text/plain");
    CHECK(c.details["bytes"].get<std::size_t>() > 0);
    CHECK(c.details.contains("seconds"));
}

TEST_CASE("3.2: policy syntax errors are listed with their line numbers") {
    FakeWorld w;
    w.add("syntax.test", "enforce", {"mx.syntax.test"});
    w.web.set_body("syntax.test", "version: STSv1\nmode: enforced\nmx: mx.syntax.test\nmax_age: 86400\n");
    DomainReport r = judge(w, "syntax.test");
    const CheckResult& c = check_of(r, "policy_syntax");
    CHECK(c.status == CheckStatus::fail);
    bool line2 = false;
    for (const auto& f : c.findings) line2 |= f.code == "mode-invalid" && f.line == 2;
    CHECK(line2);
    CHECK(c.summary.find("line 2") != std::string::npos);
    CHECK(status(r, "policy_fetch") == CheckStatus::pass);  // the fetch itself worked
    CHECK(status(r, "mode") == CheckStatus::skip);
}

TEST_CASE("3.2: a max_age under a day is a syntax warning and a mode warning") {
    FakeWorld w;
    w.add("short.test", "enforce", {"mx.short.test"}, {}, 3600);
    DomainReport r = judge(w, "short.test");
    CHECK(status(r, "policy_syntax") == CheckStatus::warn);
    CHECK(status(r, "mode") == CheckStatus::warn);
    CHECK(has_code(check_of(r, "mode").findings, "max-age-short"));
    CHECK(r.status == DomainStatus::warning);
}

TEST_CASE("4.1: an MX the policy does not cover fails under enforce") {
    FakeWorld w;
    w.add("mis.test", "enforce", {"mx.mis.test"}, {"mx.elsewhere.test"});
    DomainReport r = judge(w, "mis.test");
    const CheckResult& c = check_of(r, "mx_alignment");
    CHECK(c.status == CheckStatus::fail);
    CHECK(has_code(c.findings, "mx-not-covered"));
    CHECK(has_code(c.findings, "mx-pattern-unused"));  // both ways
    CHECK(c.summary.find("senders defer all mail") != std::string::npos);
    CHECK(status(r, "mode") == CheckStatus::fail);
    CHECK(r.status == DomainStatus::critical);
}

TEST_CASE("4.1: an uncovered MX under testing only warns, and mode says fix it before enforcing") {
    FakeWorld w;
    w.add("mistest.test", "testing", {"mx.mistest.test"}, {"mx.elsewhere.test"});
    DomainReport r = judge(w, "mistest.test");
    CHECK(status(r, "mx_alignment") == CheckStatus::warn);
    CHECK(status(r, "mode") == CheckStatus::warn);
    CHECK(r.status == DomainStatus::warning);
}

TEST_CASE("4.1: '*.x' covers one label only: a deeper MX fails with that explanation") {
    FakeWorld w;
    w.add("deep.test", "enforce", {"mx.sub.deep.test"}, {"*.deep.test"});
    const CheckResult c = check_of(judge(w, "deep.test"), "mx_alignment");
    CHECK(c.status == CheckStatus::fail);
    CHECK(c.details["mx"][0]["covered_by"].is_null());
    CHECK(c.details["mx"][0]["why"].get<std::string>().find("exactly one label") != std::string::npos);
}

TEST_CASE("4.1: '*.x' covers an MX one label below") {
    FakeWorld w;
    w.add("wild.test", "enforce", {"mx7.wild.test"}, {"*.wild.test"});
    const CheckResult c = check_of(judge(w, "wild.test"), "mx_alignment");
    CHECK(c.status == CheckStatus::pass);
    CHECK(c.details["mx"][0]["covered_by"] == "*.wild.test");
    CHECK(c.details["patterns"][0]["covers"][0] == "mx7.wild.test");
}

TEST_CASE("4.1: a pattern that covers no MX warns even when every MX is covered") {
    FakeWorld w;
    w.add("extra.test", "enforce", {"mx.extra.test"}, {"mx.extra.test", "old.extra.test"});
    const CheckResult c = check_of(judge(w, "extra.test"), "mx_alignment");
    CHECK(c.status == CheckStatus::warn);
    CHECK(c.summary.find("old.extra.test") != std::string::npos);
}

TEST_CASE("RFC 5321 5.1: an implicit MX (the domain itself) is aligned like any MX") {
    FakeWorld w;
    w.add("implicit.test", "enforce", {"implicit.test"});
    MxAnswer a;
    a.hosts = {{0, "implicit.test"}};
    a.implicit = true;
    w.dns.base.mx_answers.insert_or_assign("implicit.test", Lookup<MxAnswer>(a));
    DomainReport r = judge(w, "implicit.test");
    CHECK(status(r, "mx_alignment") == CheckStatus::pass);
    CHECK(check_of(r, "mx_alignment").details["implicit_mx"] == true);
    CHECK(status(r, "mx_certificates") == CheckStatus::pass);
}

TEST_CASE("4.2: an expired MX certificate fails mx_certificates under enforce") {
    FakeWorld w;
    w.add("expired.test", "enforce", {"mx.expired.test"});
    w.set_probe("mx.expired.test", Probe::expired);
    DomainReport r = judge(w, "expired.test");
    const CheckResult& c = check_of(r, "mx_certificates");
    CHECK(c.status == CheckStatus::fail);
    CHECK(has_code(c.findings, "cert-expired"));
    CHECK(c.details["hosts"][0]["probes"][0]["result"] == "cert-invalid");
    CHECK(status(r, "mode") == CheckStatus::fail);
    CHECK(check_of(r, "mode").summary.find("deferring mail") != std::string::npos);
}

TEST_CASE("4.2: a certificate problem under testing warns; under none it is information") {
    FakeWorld w;
    w.add("t.test", "testing", {"mx.t.test"});
    w.add("n.test", "none", {"mx.n.test"});
    w.set_probe("mx.t.test", Probe::wrong_name);
    w.set_probe("mx.n.test", Probe::wrong_name);
    CHECK(status(judge(w, "t.test"), "mx_certificates") == CheckStatus::warn);
    CHECK(status(judge(w, "n.test"), "mx_certificates") == CheckStatus::info);
}

TEST_CASE("RFC 3207: no STARTTLS is a TLS refusal; an unreachable MX is reported apart") {
    FakeWorld w;
    w.add("two.test", "enforce", {"mx-a.two.test", "mx-b.two.test"});
    w.set_probe("mx-a.two.test", Probe::no_starttls);
    w.set_probe("mx-b.two.test", Probe::refused);
    const CheckResult c = check_of(judge(w, "two.test"), "mx_certificates");
    CHECK(c.status == CheckStatus::fail);
    CHECK(c.details["counts"]["tls_refused"] == 1);
    CHECK(c.details["counts"]["unreachable"] == 1);
    CHECK(c.details["hosts"][1]["probes"][0]["result"] == "unreachable");
    CHECK(c.fix.find("STARTTLS") != std::string::npos);
}

TEST_CASE("no MX reachable from here is unknown, not a failure") {
    FakeWorld w;
    w.add("dark.test", "enforce", {"mx.dark.test"});
    w.set_probe("mx.dark.test", Probe::timeout);
    DomainReport r = judge(w, "dark.test");
    CHECK(status(r, "mx_certificates") == CheckStatus::unknown);
    CHECK(status(r, "mode") == CheckStatus::info);
    CHECK(r.status == DomainStatus::unknown);
}

TEST_CASE("a certificate expiring soon warns") {
    FakeWorld w;
    w.add("soon.test", "enforce", {"mx.soon.test"});
    w.set_probe("mx.soon.test", Probe::expiring);
    const CheckResult c = check_of(judge(w, "soon.test"), "mx_certificates");
    CHECK(c.status == CheckStatus::warn);
    CHECK(c.fix.find("renew") != std::string::npos);
}

TEST_CASE("every address of an MX is probed, IPv4 and IPv6, and counted") {
    FakeWorld w;
    w.add("dual.test", "enforce", {"mx.dual.test"});
    w.dns.set_addresses("mx.dual.test", {"192.0.2.7", "2001:db8::7"});
    w.probe.table["mx.dual.test 2001:db8::7"] = Probe::wrong_name;
    const CheckResult c = check_of(judge(w, "dual.test"), "mx_certificates");
    CHECK(c.details["counts"]["probes"] == 2);
    CHECK(c.details["hosts"][0]["probes"][1]["address"] == "2001:db8::7");
    CHECK(c.status == CheckStatus::fail);  // a sender may pick the IPv6 address
}

TEST_CASE("5: enforce with one MX refused and another working is degraded: mode warns") {
    FakeWorld w;
    w.add("deg.test", "enforce", {"mx-a.deg.test", "mx-b.deg.test"});
    w.set_probe("mx-a.deg.test", Probe::expired);
    DomainFacts f = w.gather("deg.test");
    DeliveryAssessment a = assess_delivery(f);
    CHECK(a.verdict == Delivery::degraded);
    CHECK(a.code == "some-mx-refused");
    DomainReport r = judge_domain(f);
    CHECK(status(r, "mode") == CheckStatus::warn);
    CHECK(status(r, "mx_certificates") == CheckStatus::fail);
}

TEST_CASE("5: testing with everything passing is ready for enforce") {
    FakeWorld w;
    w.add("ready.test", "testing", {"mx.ready.test"});
    const CheckResult c = check_of(judge(w, "ready.test"), "mode");
    CHECK(c.status == CheckStatus::pass);
    CHECK(c.summary.find("ready for mode enforce") != std::string::npos);
    CHECK(c.fix.find("mode: enforce") != std::string::npos);
}

TEST_CASE("8.3: mode none is information: the policy is being withdrawn") {
    FakeWorld w;
    w.add("gone.test", "none", {"mx.gone.test"});
    DomainReport r = judge(w, "gone.test");
    CHECK(status(r, "mode") == CheckStatus::info);
    CHECK(check_of(r, "mode").summary.find("withdrawn") != std::string::npos);
    CHECK(r.status == DomainStatus::ok);
}

TEST_CASE("RFC 8460 3: a missing TLSRPT record warns in testing mode and is advice otherwise") {
    FakeWorld w;
    w.add("t.test", "testing", {"mx.t.test"});
    w.add("e.test", "enforce", {"mx.e.test"});
    w.dns.base.txt_answers.erase("_smtp._tls.t.test");
    w.dns.base.txt_answers.erase("_smtp._tls.e.test");
    const CheckResult t = check_of(judge(w, "t.test"), "tlsrpt");
    CHECK(t.status == CheckStatus::warn);
    CHECK(t.fix.find("v=TLSRPTv1; rua=mailto:") != std::string::npos);
    CHECK(check_of(judge(w, "e.test"), "tlsrpt").status == CheckStatus::info);
}

TEST_CASE("RFC 8460 3: an invalid TLSRPT record warns") {
    FakeWorld w;
    w.add("r.test", "enforce", {"mx.r.test"});
    w.dns.base.set_txt("_smtp._tls.r.test", {"v=TLSRPTv1; rua=tlsrpt@r.test"});
    const CheckResult c = check_of(judge(w, "r.test"), "tlsrpt");
    CHECK(c.status == CheckStatus::warn);
    CHECK(c.details["verdict"] == "invalid");
}

TEST_CASE("3.1: policy_id_hygiene warns when the content changed under the same id") {
    FakeWorld w;
    w.add("hyg.test", "enforce", {"mx.hyg.test"});
    DomainFacts f = w.gather("hyg.test");
    CacheRecord rec(*DomainName::parse("hyg.test"));
    Policy old = *f.discovery.policy();
    old.mode = Mode::testing;
    rec.set_policy("version: STSv1\nmode: testing\nmx: mx.hyg.test\nmax_age: 604800\n", old,
                   PolicyId("20240101T000000"), w.clock.now());
    f.cache.state = CacheFacts::State::checked;
    f.cache.record = Lookup<CacheRecord>(rec);
    CheckResult c = check_policy_id_hygiene(f);
    CHECK(c.status == CheckStatus::warn);
    CHECK(c.details["changes"][0] == "mode testing -> enforce");
    CHECK(c.fix.find("new id") != std::string::npos);

    // A new id with the new content is what RFC 8461 wants.
    rec.policy_id = PolicyId("20230101T000000");
    f.cache.record = Lookup<CacheRecord>(rec);
    CHECK(check_policy_id_hygiene(f).status == CheckStatus::pass);

    // Same meaning, same id: fine.
    Policy same = *f.discovery.policy();
    rec.set_policy(f.discovery.fetch->fetched->body, same, PolicyId("20240101T000000"), w.clock.now());
    f.cache.record = Lookup<CacheRecord>(rec);
    CHECK(check_policy_id_hygiene(f).status == CheckStatus::pass);
}

TEST_CASE("policy_id_hygiene skips without a cache or without a cached record") {
    FakeWorld w;
    w.add("nc.test", "enforce", {"mx.nc.test"});
    DomainFacts f = w.gather("nc.test");
    CHECK(check_policy_id_hygiene(f).status == CheckStatus::skip);
    CHECK(check_policy_id_hygiene(f).summary.find("test: no cache") != std::string::npos);
    f.cache.state = CacheFacts::State::checked;
    f.cache.record = Lookup<CacheRecord>(NotFound{"not cached"});
    CHECK(check_policy_id_hygiene(f).status == CheckStatus::skip);
}

TEST_CASE("dane: TLSA records are information, with the DNSSEC (AD) state named") {
    FakeWorld w;
    w.add("dane.test", "enforce", {"mx.dane.test"});
    TlsaAnswer t;
    t.records = {{3, 1, 1, "abcd"}};
    t.meta.authenticated = false;
    w.dns.tlsa_answers.insert_or_assign("_25._tcp.mx.dane.test", Lookup<TlsaAnswer>(t));
    CheckResult c = check_of(judge(w, "dane.test"), "dane");
    CHECK(c.status == CheckStatus::info);
    CHECK(c.summary.find("not DNSSEC-validated") != std::string::npos);
    CHECK(c.details["hosts"][0]["records"][0]["usage"] == 3);

    t.meta.authenticated = true;
    w.dns.tlsa_answers.insert_or_assign("_25._tcp.mx.dane.test", Lookup<TlsaAnswer>(t));
    c = check_of(judge(w, "dane.test"), "dane");
    CHECK(c.summary.find("DANE-capable senders use DANE") != std::string::npos);
}

TEST_CASE("an MX lookup failure is unknown for alignment and certificates") {
    FakeWorld w;
    w.add("mxfail.test", "enforce", {"mx.mxfail.test"});
    w.dns.base.mx_answers.insert_or_assign("mxfail.test", Lookup<MxAnswer>(Failure::temp("dns-servfail", "SERVFAIL")));
    DomainReport r = judge(w, "mxfail.test");
    CHECK(status(r, "mx_alignment") == CheckStatus::unknown);
    CHECK(status(r, "mx_certificates") == CheckStatus::unknown);
    CHECK(r.status == DomainStatus::unknown);
}

TEST_CASE("a failing check outranks an unknown one: the domain is critical") {
    FakeWorld w;
    w.add("both.test", "enforce", {"mx.both.test"}, {"mx.other.test"});
    w.dns.base.txt_answers.insert_or_assign("_smtp._tls.both.test",
                                            Lookup<TxtAnswer>(Failure::temp("dns-timeout", "timed out")));
    DomainReport r = judge(w, "both.test");
    CHECK(status(r, "tlsrpt") == CheckStatus::unknown);
    CHECK(status(r, "mx_alignment") == CheckStatus::fail);
    CHECK(r.status == DomainStatus::critical);
    CHECK(worse(DomainStatus::unknown, DomainStatus::critical) == DomainStatus::critical);
    CHECK(worse(DomainStatus::warning, DomainStatus::unknown) == DomainStatus::unknown);
}

TEST_CASE("classify_probe keeps unreachable apart from TLS refusals") {
    ProbeTarget t{"mx.x.test", "192.0.2.1", 25};
    CHECK(classify_probe(scripted(t, Probe::ok)) == ProbeClass::ok);
    CHECK(classify_probe(scripted(t, Probe::expiring)) == ProbeClass::ok);
    CHECK(classify_probe(scripted(t, Probe::expired)) == ProbeClass::cert_invalid);
    CHECK(classify_probe(scripted(t, Probe::no_starttls)) == ProbeClass::no_starttls);
    CHECK(classify_probe(scripted(t, Probe::refused)) == ProbeClass::unreachable);
    CHECK(classify_probe(scripted(t, Probe::timeout)) == ProbeClass::unreachable);
    CHECK(classify_probe(scripted(t, Probe::banner_554)) == ProbeClass::smtp_error);
    CHECK(tls_refused(ProbeClass::tls_failed));
    CHECK_FALSE(tls_refused(ProbeClass::unreachable));
}

TEST_CASE("8.3: under mode none, alignment problems are information only") {
    FakeWorld w;
    w.add("bye.test", "none", {"mx.bye.test"}, {"mx.old.test"});
    DomainReport r = judge(w, "bye.test");
    CHECK(status(r, "mx_alignment") == CheckStatus::info);
    CHECK(r.status == DomainStatus::ok);
}
