// Tests for checker/starttls_probe: one SMTP STARTTLS probe against tiny
// scripted servers on 127.0.0.1 (RFC 3207, RFC 5321 replies, RFC 8461 4.2
// certificate judgement).  Certificates are generated at run time.
#include "checker/starttls_probe.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "checker/probe_io.h"
#include "policy-cache/domain_name.h"
#include "tests/checker/tls_test_util.h"

namespace stsguard {
namespace {

using namespace std::chrono_literals;
using testing::CertRole;
using testing::CertSpec;
using testing::KeyCert;
using testing::SmtpScript;
using testing::SmtpServer;

constexpr std::int64_t kDay = 86400;
const UnixTime kNow = from_unix(1'700'000'000);
UnixTime days(std::int64_t n) { return from_unix(to_unix(kNow) + n * kDay); }

struct Pki {
    KeyCert ca;
    KeyCert good;       // mx.example.test, valid kNow-30d .. kNow+90d
    KeyCert wrongname;  // other.example.test
    KeyCert selfsigned;

    Pki() {
        CertSpec ca_spec;
        ca_spec.cn = "Probe Test CA";
        ca_spec.role = CertRole::ca;
        ca_spec.not_before = days(-365);
        ca_spec.not_after = days(3650);
        ca = testing::make_cert(ca_spec, nullptr);
        CertSpec leaf;
        leaf.dns = {"mx.example.test"};
        leaf.not_before = days(-30);
        leaf.not_after = days(90);
        good = testing::make_cert(leaf, &ca);
        selfsigned = testing::make_cert(leaf, nullptr);
        leaf.dns = {"other.example.test"};
        wrongname = testing::make_cert(leaf, &ca);
    }
};

ProbeSettings settings_for(const Pki& pki, std::chrono::milliseconds timeout = 5000ms) {
    ProbeSettings s;
    s.timeout = timeout;
    s.ca_pem = testing::to_pem(pki.ca.cert.get());
    s.ehlo_name = "probe.example.test";
    return s;
}

std::unique_ptr<StarttlsProber> make_prober(const ProbeSettings& s, const Clock& clock) {
    auto p = StarttlsProber::create(s, clock);
    if (p.failed()) FAIL("prober setup: " << p.failure().reason);
    return std::move(p.value());
}

ProbeTarget local(int port, std::string host = "mx.example.test") {
    return ProbeTarget{std::move(host), "127.0.0.1", port};
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

std::vector<std::string> codes(const Findings& f) {
    std::vector<std::string> out;
    for (const auto& x : f) out.push_back(x.code);
    return out;
}

std::string failure_code(const ProbeResult& r) { return r.failure ? r.failure->code : ""; }
std::string failure_reason(const ProbeResult& r) { return r.failure ? r.failure->reason : ""; }

}  // namespace

TEST_CASE("RFC 3207: a good STARTTLS server passes with a trusted, matching certificate") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    SmtpScript script;
    script.tls = &pki.good;
    SmtpServer server(script);

    ProbeResult r = prober->probe(local(server.port()));
    server.join();

    CHECK_MESSAGE(!r.failure, failure_reason(r));
    CHECK(r.reached == ProbeStage::done);
    CHECK(r.acceptable());
    CHECK(r.findings.empty());
    CHECK(r.tls_version == "TLSv1.3");
    CHECK_FALSE(r.cipher.empty());
    REQUIRE(r.cert.has_value());
    CHECK(r.cert->dns_names == std::vector<std::string>{"mx.example.test"});
    CHECK(r.cert->chain == ChainStatus::trusted);
    CHECK(r.host == "mx.example.test");
    CHECK(r.address == "127.0.0.1");
    CHECK(r.port == server.port());
    CHECK(r.seconds > 0);
    CHECK(r.seconds < 5);

    // Multi-line replies are read whole; the keyword match ignores case.
    CHECK(contains(r.transcript, "S: 220-mx.example.test ESMTP test"));
    CHECK(contains(r.transcript, "S: 220 ready"));
    CHECK(contains(r.transcript, "C: EHLO probe.example.test"));
    CHECK(contains(r.transcript, "S: 250-starttls"));
    CHECK(contains(r.transcript, "C: STARTTLS"));
    CHECK(contains(r.transcript, "C: QUIT"));

    // What the server saw: EHLO name, SNI = MX host name, QUIT under TLS.
    CHECK(server.sni == "mx.example.test");
    REQUIRE(server.commands.size() >= 2);
    CHECK(server.commands[0] == "EHLO probe.example.test");
    CHECK(server.commands[1] == "STARTTLS");
}

TEST_CASE("RFC 3207: STARTTLS not advertised is mx-no-starttls and the probe says QUIT") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    SmtpScript script;
    script.ehlo_reply = "250-mx.example.test\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n";
    SmtpServer server(script);

    ProbeResult r = prober->probe(local(server.port()));
    server.join();
    CHECK(failure_code(r) == "mx-no-starttls");
    CHECK_FALSE(r.failure->temporary());
    CHECK(failure_reason(r).find("not advertised") != std::string::npos);
    CHECK(r.reached == ProbeStage::starttls);
    CHECK_FALSE(r.cert.has_value());
    CHECK_FALSE(r.acceptable());
    CHECK(server.commands == std::vector<std::string>{"EHLO probe.example.test", "QUIT"});
}

TEST_CASE("RFC 5321 4.1.1.1: STARTTLS counts only as a whole keyword after the first line") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    for (const char* ehlo : {"250-mx.example.test STARTTLS\r\n250 SIZE 10\r\n",
                             "250-mx.example.test\r\n250 STARTTLSX\r\n", "250 STARTTLS\r\n"}) {
        SmtpScript script;
        script.ehlo_reply = ehlo;
        SmtpServer server(script);
        ProbeResult r = prober->probe(local(server.port()));
        server.join();
        CHECK_MESSAGE(failure_code(r) == "mx-no-starttls", ehlo);
    }
}

TEST_CASE("RFC 3207: STARTTLS answered 454 is a temporary mx-no-starttls") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    SmtpScript script;
    script.starttls_reply = "454 4.7.0 TLS not available due to temporary reason\r\n";
    SmtpServer server(script);

    ProbeResult r = prober->probe(local(server.port()));
    server.join();
    CHECK(failure_code(r) == "mx-no-starttls");
    CHECK(r.failure->temporary());
    CHECK(failure_reason(r).find("454 4.7.0 TLS not available") != std::string::npos);
    CHECK(r.reached == ProbeStage::starttls);
    CHECK(contains(server.commands, "QUIT"));
}

TEST_CASE("RFC 5321 3.1: a 554 banner is a permanent mx-banner") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    SmtpScript script;
    script.banner = "554 5.7.1 go away\r\n";
    SmtpServer server(script);

    ProbeResult r = prober->probe(local(server.port()));
    server.join();
    CHECK(failure_code(r) == "mx-banner");
    CHECK_FALSE(r.failure->temporary());
    CHECK(failure_reason(r).find("554 5.7.1 go away") != std::string::npos);
    CHECK(r.reached == ProbeStage::banner);
    CHECK(contains(r.transcript, "S: 554 5.7.1 go away"));
}

TEST_CASE("a server that accepts and never speaks is mx-timeout at the banner") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki, 300ms), clock);
    testing::Listener silent;  // the kernel completes the handshake; nobody reads

    ProbeResult r = prober->probe(local(silent.port()));
    CHECK(failure_code(r) == "mx-timeout");
    CHECK(r.failure->temporary());
    CHECK(r.reached == ProbeStage::banner);
    CHECK(failure_reason(r).find("waiting for the banner") != std::string::npos);
    CHECK(r.seconds >= 0.29);
    CHECK(r.seconds < 3.0);
}

TEST_CASE("the caller's deadline cuts a probe short of its own timeout") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki, 10000ms), clock);
    testing::Listener silent;
    ProbeResult r = prober->probe(local(silent.port()), std::chrono::steady_clock::now() + 200ms);
    CHECK(failure_code(r) == "mx-timeout");
    CHECK(r.seconds >= 0.19);
    CHECK(r.seconds < 5.0);
}

TEST_CASE("a closed port is mx-connect (refused), reported apart from TLS failures") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    ProbeResult r = prober->probe(local(testing::closed_port()));
    CHECK(failure_code(r) == "mx-connect");
    CHECK(r.failure->temporary());
    CHECK(r.reached == ProbeStage::connect);
    CHECK(failure_reason(r).find("refused") != std::string::npos);
    CHECK(failure_reason(r).find("127.0.0.1:") != std::string::npos);
}

TEST_CASE("4.2: a certificate for another name completes TLS with cert-name-mismatch") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    SmtpScript script;
    script.tls = &pki.wrongname;
    SmtpServer server(script);

    ProbeResult r = prober->probe(local(server.port()));
    server.join();
    CHECK_FALSE(r.failure);
    CHECK(r.reached == ProbeStage::done);
    CHECK(codes(r.findings) == std::vector<std::string>{"cert-name-mismatch"});
    CHECK_FALSE(r.acceptable());
    REQUIRE(r.cert.has_value());
    CHECK(r.cert->dns_names == std::vector<std::string>{"other.example.test"});
}

TEST_CASE("4.2: a self-signed certificate is seen and reported as cert-chain-invalid") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    SmtpScript script;
    script.tls = &pki.selfsigned;
    SmtpServer server(script);

    ProbeResult r = prober->probe(local(server.port()));
    server.join();
    CHECK_FALSE(r.failure);
    CHECK(codes(r.findings) == std::vector<std::string>{"cert-chain-invalid"});
    REQUIRE(r.cert.has_value());
    CHECK(r.cert->chain_error == "self-signed certificate");
}

TEST_CASE("certificate dates follow the injected clock (expiring soon, then expired)") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);

    clock.advance(Seconds{87 * kDay});  // 3 days left
    {
        SmtpScript script;
        script.tls = &pki.good;
        SmtpServer server(script);
        ProbeResult r = prober->probe(local(server.port()));
        CHECK(codes(r.findings) == std::vector<std::string>{"cert-expiring-soon"});
        CHECK(r.acceptable());
    }
    clock.advance(Seconds{4 * kDay});  // one day past notAfter
    {
        SmtpScript script;
        script.tls = &pki.good;
        SmtpServer server(script);
        ProbeResult r = prober->probe(local(server.port()));
        CHECK(codes(r.findings) == std::vector<std::string>{"cert-expired"});
        CHECK_FALSE(r.acceptable());
    }
}

TEST_CASE("a reply line over 4096 bytes is mx-banner \"line too long\"") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    SmtpScript script;
    script.banner = "220 " + std::string(5000, 'x') + "\r\n";
    SmtpServer server(script);
    ProbeResult r = prober->probe(local(server.port()));
    server.join();
    CHECK(failure_code(r) == "mx-banner");
    CHECK(failure_reason(r).find("too long") != std::string::npos);
}

TEST_CASE("the total size of SMTP replies is capped") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    SmtpScript script;
    script.banner.clear();
    for (int i = 0; i < 400; ++i) script.banner += "220-" + std::string(300, 'y') + "\r\n";
    script.banner += "220 end\r\n";
    SmtpServer server(script);
    ProbeResult r = prober->probe(local(server.port()));
    server.join();
    CHECK(failure_code(r) == "mx-banner");
    CHECK(failure_reason(r).find("more than 65536 bytes") != std::string::npos);
}

TEST_CASE("a garbage greeting is mx-banner naming the line") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    SmtpScript script;
    script.banner = "HTTP/1.1 400 Bad Request\r\n";
    SmtpServer server(script);
    ProbeResult r = prober->probe(local(server.port()));
    server.join();
    CHECK(failure_code(r) == "mx-banner");
    CHECK(failure_reason(r).find("malformed reply line \"HTTP/1.1 400 Bad Request\"") !=
          std::string::npos);
}

TEST_CASE("bare LF line endings are tolerated") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    SmtpScript script;
    script.banner = "220 lf only\n";
    script.ehlo_reply = "250-mx\n250 STARTTLS\n";
    script.starttls_reply = "220 go\n";
    script.tls = &pki.good;
    SmtpServer server(script);
    ProbeResult r = prober->probe(local(server.port()));
    CHECK_MESSAGE(!r.failure, failure_reason(r));
    CHECK(r.reached == ProbeStage::done);
}

TEST_CASE("EHLO answered 550 is a permanent mx-ehlo") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    SmtpScript script;
    script.ehlo_reply = "550 5.7.1 no\r\n";
    SmtpServer server(script);
    ProbeResult r = prober->probe(local(server.port()));
    server.join();
    CHECK(failure_code(r) == "mx-ehlo");
    CHECK_FALSE(r.failure->temporary());
    CHECK(r.reached == ProbeStage::ehlo);
}

TEST_CASE("RFC 5321 4.2.1: a code change inside a multi-line reply is malformed") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    SmtpScript script;
    script.ehlo_reply = "250-mx.example.test\r\n251 STARTTLS\r\n";
    SmtpServer server(script);
    ProbeResult r = prober->probe(local(server.port()));
    server.join();
    CHECK(failure_code(r) == "mx-ehlo");
    CHECK(failure_reason(r).find("from 250 to 251") != std::string::npos);
}

TEST_CASE("a server that closes after 220 to STARTTLS is mx-tls-handshake") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    SmtpScript script;  // tls == nullptr: close right after the 220
    SmtpServer server(script);
    ProbeResult r = prober->probe(local(server.port()));
    server.join();
    CHECK(failure_code(r) == "mx-tls-handshake");
    CHECK(r.reached == ProbeStage::handshake);
    // A FIN or, if the client's hello raced the close, a reset.
    CHECK(failure_reason(r).find("TLS handshake") != std::string::npos);
}

TEST_CASE("a server silent after 220 to STARTTLS is mx-timeout in the handshake") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki, 300ms), clock);
    SmtpScript script;
    script.no_tls = SmtpScript::NoTls::silent;
    SmtpServer server(script);
    ProbeResult r = prober->probe(local(server.port()));
    server.join();
    CHECK_MESSAGE(failure_code(r) == "mx-timeout", failure_reason(r));
    CHECK(r.reached == ProbeStage::handshake);
    CHECK(failure_reason(r).find("during the TLS handshake") != std::string::npos);
    CHECK(r.seconds >= 0.29);
}

TEST_CASE("plain text after the 220 to STARTTLS is refused (response injection)") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    SmtpScript script;
    script.starttls_reply = "220 go ahead\r\n250 injected\r\n";
    SmtpServer server(script);
    ProbeResult r = prober->probe(local(server.port()));
    server.join();
    CHECK(failure_code(r) == "mx-tls-handshake");
    CHECK(failure_reason(r).find("plain text after") != std::string::npos);
}

TEST_CASE("a TLS 1.1 server is probed and named tls-version-old") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    SmtpScript script;
    script.tls = &pki.good;
    script.tls_max_version = TLS1_1_VERSION;
    SmtpServer server(script);
    ProbeResult r = prober->probe(local(server.port()));
    server.join();
    CHECK_MESSAGE(!r.failure, failure_reason(r));
    CHECK(r.tls_version == "TLSv1.1");
    CHECK(codes(r.findings) == std::vector<std::string>{"tls-version-old"});
}

TEST_CASE("invalid targets are probe-target failures without any connection") {
    Pki pki;
    ManualClock clock(kNow);
    auto prober = make_prober(settings_for(pki), clock);
    ProbeResult bad_ip = prober->probe(ProbeTarget{"mx.example.test", "127.0.0.999", 25});
    CHECK(failure_code(bad_ip) == "probe-target");
    CHECK_FALSE(bad_ip.failure->temporary());
    CHECK(failure_reason(bad_ip).find("127.0.0.999") != std::string::npos);
    CHECK(failure_code(prober->probe(ProbeTarget{"mx.example.test", "127.0.0.1", 0})) ==
          "probe-target");
    CHECK(failure_code(prober->probe(ProbeTarget{"mx.example.test", "127.0.0.1", 70000})) ==
          "probe-target");
    ProbeResult bad_host = prober->probe(ProbeTarget{"bad host\r\n", "127.0.0.1", 25});
    CHECK(failure_code(bad_host) == "probe-target");
    CHECK(failure_reason(bad_host).find("bad host\\r\\n") != std::string::npos);
}

TEST_CASE("prober setup errors are probe-setup failures naming the problem") {
    ManualClock clock(kNow);
    ProbeSettings s;
    s.ca_file = "/nonexistent/stsguard-test-ca.pem";
    auto missing = StarttlsProber::create(s, clock);
    REQUIRE(missing.failed());
    CHECK(missing.failure().code == "probe-setup");
    CHECK(missing.failure().reason.find("/nonexistent/stsguard-test-ca.pem") != std::string::npos);

    ProbeSettings pem;
    pem.ca_pem = "not a certificate";
    CHECK(StarttlsProber::create(pem, clock).failed());

    ProbeSettings ehlo;
    ehlo.ca_pem = testing::to_pem(Pki().ca.cert.get());
    ehlo.ehlo_name = "bad name\r\nRCPT TO:<x>";
    auto bad = StarttlsProber::create(ehlo, clock);
    REQUIRE(bad.failed());
    CHECK(bad.failure().reason.find("EHLO name") != std::string::npos);

    ProbeSettings zero;
    zero.ca_pem = ehlo.ca_pem;
    zero.timeout = 0ms;
    CHECK(StarttlsProber::create(zero, clock).failed());
}

TEST_CASE("RFC 5321 4.1.1.1: advertises_starttls reads keywords of the lines after the first") {
    CHECK(advertises_starttls(Reply{250, {"mx", "PIPELINING", "StartTLS"}}));
    CHECK(advertises_starttls(Reply{250, {"mx", "STARTTLS extra"}}));
    CHECK_FALSE(advertises_starttls(Reply{250, {"STARTTLS"}}));
    CHECK_FALSE(advertises_starttls(Reply{250, {"mx", "XSTARTTLS", "STARTTLS2"}}));
    CHECK_FALSE(advertises_starttls(Reply{250, {}}));
}

TEST_CASE("parse_endpoint takes IPv4 and IPv6 text and writes IPv6 in brackets") {
    auto v4 = parse_endpoint("192.0.2.7", 25);
    REQUIRE(v4.has_value());
    CHECK(v4->family == AF_INET);
    CHECK(v4->text == "192.0.2.7:25");
    auto v6 = parse_endpoint("2001:db8::1", 2525);
    REQUIRE(v6.has_value());
    CHECK(v6->family == AF_INET6);
    CHECK(v6->text == "[2001:db8::1]:2525");
    CHECK_FALSE(parse_endpoint("[2001:db8::1]", 25).has_value());
    CHECK_FALSE(parse_endpoint("fe80::1%eth0", 25).has_value());
    CHECK_FALSE(parse_endpoint("mx.example.test", 25).has_value());
}

TEST_CASE("default EHLO name is a dotted host name") {
    const std::string n = default_ehlo_name();
    CHECK(n.find('.') != std::string::npos);
    CHECK(DomainName::parse(n).has_value());
}

TEST_CASE("probe_settings maps the checker keys of Config") {
    Config c;
    c.probe_timeout = Seconds{7};
    c.tls_ca_file = "/etc/ssl/x.pem";
    c.cert_expiry_warn_days = 21;
    ProbeSettings s = probe_settings(c);
    CHECK(s.timeout == 7000ms);
    CHECK(s.ca_file == "/etc/ssl/x.pem");
    CHECK(s.cert_expiry_warn_days == 21);
}

}  // namespace stsguard
