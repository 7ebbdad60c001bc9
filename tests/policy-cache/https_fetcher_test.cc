// Tests for policy-cache/https_fetcher.cc and policy-cache/policy_host.cc:
// RFC 8461 3.3 policy fetch rules.  The real-network tests use only
// 127.0.0.1: a TLS server in a test thread (OpenSSL, certificates made
// here by a throwaway CA), a socket that never answers, a closed port.
#include "policy-cache/https_fetcher.h"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <vector>

#include "policy-cache/policy_host.h"
#include "policy-cache/trust_store.h"
#include "tests/policy-cache/local_tls_server.h"

using namespace stsguard;
using namespace stsguard_test;

// --- check_http_response (pure) -----------------------------------------

TEST_CASE("3.3: status 200 with text/plain, parameters allowed, any case, is accepted") {
    for (const char* ct :
         {"text/plain", "text/plain; charset=utf-8", "TEXT/PLAIN", "Text/Plain;charset=UTF-8",
          " text/plain ", "text/plain ;charset=us-ascii", "text/plain;",
          "text/plain\t; format=flowed"}) {
        CAPTURE(ct);
        CHECK_FALSE(check_http_response(200, ct, "").has_value());
    }
}

TEST_CASE("3.3: a Content-Type other than text/plain, or none, is a permanent http-content-type") {
    for (const char* ct : {"", "   ", "text/html", "text/plain-x", "text/plainx", "text/ plain",
                           "application/octet-stream", "text/plain, text/html", "text",
                           "plain/text", "text/html; x=text/plain", ";text/plain"}) {
        CAPTURE(ct);
        auto f = check_http_response(200, ct, "");
        REQUIRE(f.has_value());
        CHECK(f->code == "http-content-type");
        CHECK_FALSE(f->temporary());
    }
    auto f = check_http_response(200, "text/html; charset=utf-8", "");
    REQUIRE(f.has_value());
    CHECK(f->reason.find("text/html; charset=utf-8") != std::string::npos);
    CHECK(check_http_response(200, "", "")->reason.find("no Content-Type") != std::string::npos);
}

TEST_CASE("3.3: every 3xx is a permanent http-redirect naming the Location, never followed") {
    for (long status : {300L, 301L, 302L, 303L, 307L, 308L, 399L}) {
        CAPTURE(status);
        auto f = check_http_response(status, "text/plain", "https://evil.example/p.txt");
        REQUIRE(f.has_value());
        CHECK(f->code == "http-redirect");
        CHECK_FALSE(f->temporary());
        CHECK(f->reason.find("https://evil.example/p.txt") != std::string::npos);
    }
    auto f = check_http_response(302, "", "");
    REQUIRE(f.has_value());
    CHECK(f->code == "http-redirect");
    CHECK(f->reason.find("no Location") != std::string::npos);
}

TEST_CASE("3.3: a status other than 200 is http-status, 4xx permanent, 5xx temporary") {
    struct Row {
        long status;
        FailureKind kind;
    };
    for (const Row& r : {Row{404, FailureKind::permanent}, Row{400, FailureKind::permanent},
                         Row{403, FailureKind::permanent}, Row{410, FailureKind::permanent},
                         Row{429, FailureKind::permanent}, Row{499, FailureKind::permanent},
                         Row{500, FailureKind::temporary}, Row{502, FailureKind::temporary},
                         Row{503, FailureKind::temporary}, Row{599, FailureKind::temporary},
                         Row{201, FailureKind::permanent}, Row{204, FailureKind::permanent},
                         Row{206, FailureKind::permanent}, Row{100, FailureKind::permanent},
                         Row{0, FailureKind::permanent}, Row{600, FailureKind::permanent}}) {
        CAPTURE(r.status);
        auto f = check_http_response(r.status, "text/plain", "");
        REQUIRE(f.has_value());
        CHECK(f->code == "http-status");
        CHECK(f->kind == r.kind);
        CHECK(f->reason.find(std::to_string(r.status)) != std::string::npos);
    }
}

TEST_CASE("3.3: status is judged before Content-Type") {
    auto f = check_http_response(404, "text/html", "");
    REQUIRE(f.has_value());
    CHECK(f->code == "http-status");
}

TEST_CASE("3.3: the policy URL is https://mta-sts.<domain>/.well-known/mta-sts.txt") {
    auto d = DomainName::parse("example.com");
    REQUIRE(d.has_value());
    CHECK(policy_url(*d, 443) == "https://mta-sts.example.com/.well-known/mta-sts.txt");
    CHECK(policy_url(*d, 8443) == "https://mta-sts.example.com:8443/.well-known/mta-sts.txt");
}

// --- address selection (pure) -------------------------------------------

namespace {

AddressAnswer addrs(std::vector<std::string> list) {
    AddressAnswer a;
    a.addresses = std::move(list);
    return a;
}

}  // namespace

TEST_CASE("3.3: policy host without A/AAAA is a permanent policy-host-not-found") {
    auto r = usable_policy_addresses("mta-sts.example.com", NotFound{"NXDOMAIN"},
                                     PrivateAddresses::refuse);
    REQUIRE(r.failed());
    CHECK(r.failure().code == "policy-host-not-found");
    CHECK_FALSE(r.failure().temporary());
    CHECK(r.failure().reason.find("mta-sts.example.com") != std::string::npos);
    CHECK(r.failure().reason.find("NXDOMAIN") != std::string::npos);
}

TEST_CASE("3.3: a DNS failure for the policy host is a temporary policy-host-dns") {
    auto r = usable_policy_addresses("mta-sts.example.com",
                                     Failure::temp("dns-servfail", "SERVFAIL for x"),
                                     PrivateAddresses::refuse);
    REQUIRE(r.failed());
    CHECK(r.failure().code == "policy-host-dns");
    CHECK(r.failure().temporary());
    CHECK(r.failure().reason.find("dns-servfail") != std::string::npos);
}

TEST_CASE("guard: internal addresses are dropped, public ones kept, order preserved") {
    auto r = usable_policy_addresses(
        "mta-sts.example.com",
        addrs({"10.0.0.1", "93.184.216.34", "::1", "2606:2800:220:1::248", "169.254.169.254"}),
        PrivateAddresses::refuse);
    REQUIRE(r.found());
    CHECK(r.value() == std::vector<std::string>{"93.184.216.34", "2606:2800:220:1::248"});
}

TEST_CASE("guard: only internal addresses is a permanent policy-host-private naming them") {
    auto r = usable_policy_addresses("mta-sts.example.com", addrs({"127.0.0.1", "fd00::5"}),
                                     PrivateAddresses::refuse);
    REQUIRE(r.failed());
    CHECK(r.failure().code == "policy-host-private");
    CHECK_FALSE(r.failure().temporary());
    CHECK(r.failure().reason.find("127.0.0.1 is loopback (127.0.0.0/8)") != std::string::npos);
    CHECK(r.failure().reason.find("fd00::5 is unique local (fc00::/7)") != std::string::npos);
}

TEST_CASE("guard: allow keeps internal addresses but never unparsable ones") {
    auto r = usable_policy_addresses("mta-sts.example.com", addrs({"127.0.0.1", "garbage", "::1"}),
                                     PrivateAddresses::allow);
    REQUIRE(r.found());
    CHECK(r.value() == std::vector<std::string>{"127.0.0.1", "::1"});
    auto g = usable_policy_addresses("mta-sts.example.com", addrs({"127.0.0.1:80"}),
                                     PrivateAddresses::allow);
    REQUIRE(g.failed());
    CHECK(g.failure().code == "policy-host-private");
    CHECK(g.failure().reason.find("unparsable") != std::string::npos);
}

TEST_CASE("3.3: curl is pinned to exactly the usable addresses, IPv6 in brackets") {
    CHECK(curl_resolve_entry("mta-sts.example.com", 443, {"192.0.2.1"}) ==
          "mta-sts.example.com:443:192.0.2.1");
    CHECK(curl_resolve_entry("mta-sts.example.com", 8443, {"192.0.2.1", "2001:db8::1"}) ==
          "mta-sts.example.com:8443:192.0.2.1,[2001:db8::1]");
}

// --- the fetcher against 127.0.0.1 ----------------------------------------

namespace {

class FakeDns final : public DnsResolver {
public:
    explicit FakeDns(Lookup<AddressAnswer> answer) : answer_(std::move(answer)) {}
    Lookup<TxtAnswer> txt(const std::string&) override { return unused(); }
    Lookup<MxAnswer> mx(const DomainName&) override { return unused(); }
    Lookup<TlsaAnswer> tlsa(const std::string&) override { return unused(); }
    Lookup<AddressAnswer> addresses(const std::string& host) override {
        asked.push_back(host);
        return answer_;
    }
    void set(Lookup<AddressAnswer> answer) { answer_ = std::move(answer); }
    std::vector<std::string> asked;

private:
    static Failure unused() { return Failure::temp("dns-error", "not used by the fetcher"); }
    Lookup<AddressAnswer> answer_;
};

// A fetcher with a trust store of its own, as `stsguard fetch` makes one.
// The clock is never advanced: the store is loaded once.
std::unique_ptr<PolicyFetcher> fetcher_for(const FetchSettings& s, DnsResolver& dns) {
    static const ManualClock clock;
    return make_curl_fetcher(s, dns, std::make_shared<TrustStore>(s, clock));
}

DomainName test_domain() {
    auto d = DomainName::parse("example.test");
    REQUIRE(d.has_value());
    return *d;
}

// A TCP socket on 127.0.0.1 (ephemeral port): listening (connections
// complete in the kernel backlog but nobody ever answers) or only bound
// (connections are refused).
class LocalSocket {
public:
    enum class Mode { silent, refuse };
    explicit LocalSocket(Mode mode) {
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        if (mode == Mode::silent) REQUIRE(listen(fd_, 8) == 0);
        socklen_t len = sizeof a;
        REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
    }
    ~LocalSocket() { close(fd_); }
    int port() const { return port_; }

private:
    int fd_ = -1;
    int port_ = 0;
};

FetchSettings fast_settings(int port) {
    FetchSettings s;
    s.connect_timeout = Seconds{1};
    s.total_timeout = Seconds{1};
    s.port = port;
    s.private_addresses = PrivateAddresses::allow;
    return s;
}

}  // namespace

TEST_CASE("guard: with refuse, a policy host on 127.0.0.1 is never contacted") {
    https_global_init();
    LocalSocket sock(LocalSocket::Mode::silent);
    FakeDns dns(addrs({"127.0.0.1"}));
    auto settings = fast_settings(sock.port());
    settings.private_addresses = PrivateAddresses::refuse;
    auto fetcher = fetcher_for(settings, dns);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = fetcher->fetch(test_domain());
    REQUIRE(r.failed());
    CHECK(r.failure().code == "policy-host-private");
    CHECK(r.failure().reason.find("127.0.0.1 is loopback (127.0.0.0/8)") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(500));
    CHECK(dns.asked == std::vector<std::string>{"mta-sts.example.test"});
}

TEST_CASE("3.3: policy host NotFound and DNS failure map to policy-host-* without a connection") {
    https_global_init();
    FakeDns nx(NotFound{"NXDOMAIN"});
    auto r = fetcher_for(fast_settings(1), nx)->fetch(test_domain());
    REQUIRE(r.failed());
    CHECK(r.failure().code == "policy-host-not-found");
    FakeDns broken(Failure::temp("dns-timeout", "no answer"));
    auto f = fetcher_for(fast_settings(1), broken)->fetch(test_domain());
    REQUIRE(f.failed());
    CHECK(f.failure().code == "policy-host-dns");
    CHECK(f.failure().temporary());
}

TEST_CASE("3.3: a server that accepts and never answers gives https-timeout (1 s)") {
    https_global_init();
    LocalSocket sock(LocalSocket::Mode::silent);
    FakeDns dns(addrs({"127.0.0.1"}));
    auto fetcher = fetcher_for(fast_settings(sock.port()), dns);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = fetcher->fetch(test_domain());
    const auto elapsed = std::chrono::steady_clock::now() - t0;
    REQUIRE(r.failed());
    CHECK(r.failure().code == "https-timeout");
    CHECK(r.failure().temporary());
    CHECK(r.failure().reason.find("https://mta-sts.example.test:" + std::to_string(sock.port())) ==
          0);
    CHECK(elapsed >= std::chrono::milliseconds(900));
    CHECK(elapsed < std::chrono::seconds(3));
}

TEST_CASE("3.3: a refused connection gives a temporary https-connect") {
    https_global_init();
    LocalSocket sock(LocalSocket::Mode::refuse);
    FakeDns dns(addrs({"127.0.0.1"}));
    auto r = fetcher_for(fast_settings(sock.port()), dns)->fetch(test_domain());
    REQUIRE(r.failed());
    CHECK(r.failure().code == "https-connect");
    CHECK(r.failure().temporary());
}

// --- a real TLS server on 127.0.0.1 -----------------------------------------

namespace {

std::string http_response(const std::string& status_line, const std::string& headers,
                          const std::string& body, bool with_length = true) {
    std::string r = "HTTP/1.1 " + status_line + "\r\n" + headers;
    if (with_length) r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    return r + "Connection: close\r\n\r\n" + body;
}

const std::string kPolicy =
    "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n";
const std::string kSan = "DNS:mta-sts.example.test";

// Settings for the TLS server on 127.0.0.1 at `port`, trusting only `ca`.
FetchSettings local_settings(int port, const TestCa& ca) {
    FetchSettings s = fast_settings(port);
    s.total_timeout = Seconds{5};
    s.ca_file = ca.path();
    return s;
}

const std::string kPlainOk = "Content-Type: text/plain\r\n";

// Fetch from a TLS server on 127.0.0.1 presenting `leaf` (issued by ca).
Lookup<FetchedPolicy> fetch_from(const TestCa& ca, const CertSpec& leaf,
                                 const std::string& response, std::size_t max_bytes = 65536,
                                 std::string* request = nullptr) {
    https_global_init();
    PkeyPtr key = new_key();
    X509Ptr cert = ca.issue(leaf, key.get());
    TlsServer server(cert.get(), key.get(), response);
    FakeDns dns(addrs({"127.0.0.1"}));
    FetchSettings s = local_settings(server.port(), ca);
    s.max_bytes = max_bytes;
    auto r = fetcher_for(s, dns)->fetch(test_domain());
    if (request) *request = server.request();
    return r;
}

}  // namespace

TEST_CASE("3.3: a valid policy is fetched with status, type, address, TLS version, URL") {
    TestCa ca;
    std::string request;
    auto r =
        fetch_from(ca, {"mta-sts.example.test", kSan},
                   http_response("200 OK", "Content-Type: text/plain; charset=utf-8\r\n", kPolicy),
                   65536, &request);
    REQUIRE_MESSAGE(r.found(), (r.failed() ? r.failure().code + ": " + r.failure().reason : ""));
    const FetchedPolicy& p = r.value();
    CHECK(p.body == kPolicy);
    CHECK(p.http_status == 200);
    CHECK(p.content_type == "text/plain; charset=utf-8");
    CHECK(p.remote_ip == "127.0.0.1");
    CHECK(p.tls_version == "TLSv1.3");
    CHECK(p.url.find("https://mta-sts.example.test:") == 0);
    CHECK(p.url.find("/.well-known/mta-sts.txt") != std::string::npos);
    CHECK(p.seconds > 0);
    CHECK(p.seconds < 5);
    CHECK(request.find("GET /.well-known/mta-sts.txt HTTP/1.1\r\n") == 0);
    CHECK(request.find("\r\nHost: mta-sts.example.test:") != std::string::npos);
    CHECK(request.find("\r\nUser-Agent: stsguard/" STSGUARD_VERSION "\r\n") != std::string::npos);
}

TEST_CASE("3.3: a fetcher used again connects anew each time, to the addresses of that fetch only") {
    https_global_init();
    TestCa ca;
    PkeyPtr key = new_key();
    X509Ptr cert = ca.issue({"mta-sts.example.test", kSan}, key.get());
    TlsServer server(cert.get(), key.get(),
                     http_response("200 OK", kPlainOk, kPolicy));
    FakeDns dns(addrs({"127.0.0.1"}));
    auto fetcher = fetcher_for(local_settings(server.port(), ca), dns);

    auto first = fetcher->fetch(test_domain());
    REQUIRE_MESSAGE(first.found(), (first.failed() ? first.failure().reason : ""));
    auto second = fetcher->fetch(test_domain());
    REQUIRE_MESSAGE(second.found(), (second.failed() ? second.failure().reason : ""));
    CHECK(server.connections() == 2);  // no connection outlives its fetch

    // The earlier pin to 127.0.0.1 must not survive: nothing listens on
    // 127.0.0.2 at this port, so this fetch cannot succeed, and the
    // server on 127.0.0.1 sees no third connection.
    dns.set(addrs({"127.0.0.2"}));
    auto moved = fetcher->fetch(test_domain());
    REQUIRE(moved.failed());
    CHECK(moved.failure().code == "https-connect");
    CHECK(server.connections() == 2);
}

TEST_CASE("3.3: a fetcher used again checks every certificate: a good fetch does not excuse a bad one") {
    https_global_init();
    TestCa ca;
    TestCa other("some other CA");
    PkeyPtr key = new_key();
    X509Ptr good = ca.issue({"mta-sts.example.test", kSan}, key.get());
    X509Ptr untrusted = other.issue({"mta-sts.example.test", kSan}, key.get());
    TlsServer server(good.get(), key.get(),
                     http_response("200 OK", kPlainOk, kPolicy));
    FakeDns dns(addrs({"127.0.0.1"}));
    auto fetcher = fetcher_for(local_settings(server.port(), ca), dns);

    CHECK(fetcher->fetch(test_domain()).found());
    server.use_certificate(untrusted.get(), key.get());
    auto bad = fetcher->fetch(test_domain());
    REQUIRE(bad.failed());
    CHECK(bad.failure().code == "https-cert-invalid");
    server.use_certificate(good.get(), key.get());
    CHECK(fetcher->fetch(test_domain()).found());
    CHECK(server.connections() == 3);
}

TEST_CASE("3.3: a certificate naming the host only in the CN is rejected (RFC 6125 6.4.4)") {
    TestCa ca;
    auto r = fetch_from(ca, {"mta-sts.example.test", ""},
                        http_response("200 OK", kPlainOk, kPolicy));
    REQUIRE(r.failed());
    CHECK(r.failure().code == "https-cert-invalid");
    CHECK_FALSE(r.failure().temporary());
    CHECK(r.failure().reason.find("hostname mismatch") != std::string::npos);
}

TEST_CASE("3.3: a certificate for another name is a permanent https-cert-invalid") {
    TestCa ca;
    auto r = fetch_from(ca, {"mta-sts.example.test", "DNS:www.example.test"},
                        http_response("200 OK", kPlainOk, kPolicy));
    REQUIRE(r.failed());
    CHECK(r.failure().code == "https-cert-invalid");
    CHECK(r.failure().reason.find("hostname mismatch") != std::string::npos);
}

TEST_CASE("3.3: a full-label wildcard matches; a partial-label wildcard does not") {
    TestCa ca;
    auto ok = fetch_from(ca, {"x", "DNS:*.example.test"},
                         http_response("200 OK", kPlainOk, kPolicy));
    CHECK(ok.found());
    auto partial = fetch_from(ca, {"x", "DNS:mta-*.example.test"},
                              http_response("200 OK", kPlainOk, kPolicy));
    REQUIRE(partial.failed());
    CHECK(partial.failure().code == "https-cert-invalid");
}

TEST_CASE("3.3: an expired certificate is https-cert-invalid with OpenSSL's reason") {
    TestCa ca;
    auto r = fetch_from(ca, {"mta-sts.example.test", kSan, Validity::expired},
                        http_response("200 OK", kPlainOk, kPolicy));
    REQUIRE(r.failed());
    CHECK(r.failure().code == "https-cert-invalid");
    CHECK(r.failure().reason.find("certificate has expired") != std::string::npos);
}

namespace {

// The fetcher trusts `trusted`; the server's certificate comes from `signer`.
Lookup<FetchedPolicy> fetch_signed_by(const TestCa& trusted, const TestCa& signer) {
    https_global_init();
    PkeyPtr key = new_key();
    X509Ptr cert = signer.issue({"mta-sts.example.test", kSan}, key.get());
    TlsServer server(cert.get(), key.get(),
                     http_response("200 OK", kPlainOk, kPolicy));
    FakeDns dns(addrs({"127.0.0.1"}));
    return fetcher_for(local_settings(server.port(), trusted), dns)->fetch(test_domain());
}

}  // namespace

TEST_CASE("3.3: a certificate from an untrusted issuer is https-cert-invalid") {
    TestCa ca;
    TestCa other("some other CA");
    auto r = fetch_signed_by(ca, other);
    REQUIRE(r.failed());
    CHECK(r.failure().code == "https-cert-invalid");
    CHECK_FALSE(r.failure().temporary());
    CHECK(r.failure().reason.find("unable to get local issuer certificate") != std::string::npos);
}

TEST_CASE("3.3: a certificate forged under a trusted issuer's name is https-cert-invalid") {
    TestCa ca;
    TestCa forger;  // same subject name as ca, different key
    auto r = fetch_signed_by(ca, forger);
    REQUIRE(r.failed());
    CHECK(r.failure().code == "https-cert-invalid");
    CHECK(r.failure().reason.find("certificate signature failure") != std::string::npos);
}

TEST_CASE("3.3: a self-signed server certificate is https-cert-invalid") {
    TestCa ca;
    https_global_init();
    PkeyPtr key = new_key();
    X509Ptr cert = make_cert({"mta-sts.example.test", kSan}, key.get(), nullptr, nullptr);
    TlsServer server(cert.get(), key.get(),
                     http_response("200 OK", kPlainOk, kPolicy));
    FakeDns dns(addrs({"127.0.0.1"}));
    FetchSettings s = fast_settings(server.port());
    s.total_timeout = Seconds{5};
    s.ca_file = ca.path();
    auto r = fetcher_for(s, dns)->fetch(test_domain());
    REQUIRE(r.failed());
    CHECK(r.failure().code == "https-cert-invalid");
    CHECK(r.failure().reason.find("self-signed certificate") != std::string::npos);
}

TEST_CASE("3.3: an unreadable CA file is a temporary https-ca naming it, not the domain's fault") {
    https_global_init();
    LocalSocket sock(LocalSocket::Mode::silent);
    FakeDns dns(addrs({"127.0.0.1"}));
    FetchSettings s = fast_settings(sock.port());
    s.ca_file = "/nonexistent/stsguard-ca.pem";
    const auto t0 = std::chrono::steady_clock::now();
    auto r = fetcher_for(s, dns)->fetch(test_domain());
    REQUIRE(r.failed());
    CHECK(r.failure().temporary());
    CHECK(r.failure().code == "https-ca");
    CHECK(r.failure().reason ==
          policy_url(test_domain(), sock.port()) +
              ": cannot load trust store /nonexistent/stsguard-ca.pem: No such file or directory");
    // Refused before connecting: the silent server would have cost 1 s.
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(500));
}

TEST_CASE("3.3: a redirect is reported with its Location and never followed") {
    TestCa ca;
    auto r = fetch_from(ca, {"mta-sts.example.test", kSan},
                        http_response("301 Moved Permanently",
                                      "Location: https://elsewhere.example.test/p.txt\r\n"
                                      "Content-Type: text/plain\r\n",
                                      ""));
    REQUIRE(r.failed());
    CHECK(r.failure().code == "http-redirect");
    CHECK_FALSE(r.failure().temporary());
    CHECK(r.failure().reason.find("https://elsewhere.example.test/p.txt") != std::string::npos);
}

TEST_CASE("3.3: 404 is a permanent and 503 a temporary http-status") {
    TestCa ca;
    auto nf =
        fetch_from(ca, {"mta-sts.example.test", kSan},
                   http_response("404 Not Found", "Content-Type: text/html\r\n", "<h1>no</h1>"));
    REQUIRE(nf.failed());
    CHECK(nf.failure().code == "http-status");
    CHECK_FALSE(nf.failure().temporary());
    auto busy = fetch_from(
        ca, {"mta-sts.example.test", kSan},
        http_response("503 Service Unavailable", "Content-Type: text/plain\r\n", "later"));
    REQUIRE(busy.failed());
    CHECK(busy.failure().code == "http-status");
    CHECK(busy.failure().temporary());
}

TEST_CASE("3.3: a policy served as text/html or without Content-Type is refused") {
    TestCa ca;
    auto html = fetch_from(ca, {"mta-sts.example.test", kSan},
                           http_response("200 OK", "Content-Type: text/html\r\n", kPolicy));
    REQUIRE(html.failed());
    CHECK(html.failure().code == "http-content-type");
    auto none =
        fetch_from(ca, {"mta-sts.example.test", kSan}, http_response("200 OK", "", kPolicy));
    REQUIRE(none.failed());
    CHECK(none.failure().code == "http-content-type");
}

TEST_CASE("3.3: a body over max_bytes is policy-too-large, with or without Content-Length") {
    TestCa ca;
    const std::string big(5000, 'x');
    auto declared = fetch_from(ca, {"mta-sts.example.test", kSan},
                               http_response("200 OK", "Content-Type: text/plain\r\n", big), 1000);
    REQUIRE(declared.failed());
    CHECK(declared.failure().code == "policy-too-large");
    CHECK_FALSE(declared.failure().temporary());
    CHECK(declared.failure().reason.find("1000 bytes") != std::string::npos);

    auto streamed = fetch_from(
        ca, {"mta-sts.example.test", kSan},
        http_response("200 OK", "Content-Type: text/plain\r\n", big, /*with_length=*/false), 1000);
    REQUIRE(streamed.failed());
    CHECK(streamed.failure().code == "policy-too-large");

    // Exactly max_bytes is fine.
    auto exact =
        fetch_from(ca, {"mta-sts.example.test", kSan},
                   http_response("200 OK", "Content-Type: text/plain\r\n", big, false), 5000);
    REQUIRE(exact.found());
    CHECK(exact.value().body.size() == 5000);
}

TEST_CASE("3.3: a server offering only TLS 1.1 is a temporary https-tls") {
    TestCa ca;
    https_global_init();
    PkeyPtr key = new_key();
    X509Ptr cert = ca.issue({"mta-sts.example.test", kSan}, key.get());
    TlsServer server(cert.get(), key.get(),
                     http_response("200 OK", kPlainOk, kPolicy),
                     TlsServer::Options{TLS1_1_VERSION});
    FakeDns dns(addrs({"127.0.0.1"}));
    FetchSettings s = fast_settings(server.port());
    s.total_timeout = Seconds{5};
    s.ca_file = ca.path();
    auto r = fetcher_for(s, dns)->fetch(test_domain());
    REQUIRE(r.failed());
    CHECK(r.failure().code == "https-tls");
    CHECK(r.failure().temporary());
}

// --- one trust store shared by every fetcher --------------------------------

namespace {

std::string show(const Lookup<FetchedPolicy>& r) {
    if (r.found()) return "found";
    if (r.failed()) return r.failure().code + ": " + r.failure().reason;
    return "not found: " + r.not_found_info().reason;
}

void copy_file(const std::string& from, const std::string& to) {
    std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
}

// The CA's certificate as a hashed directory holds it (<hash>.0).
void add_to_hashed_dir(const TestCa& ca, const std::string& dir) {
    FILE* f = std::fopen(ca.path().c_str(), "r");
    REQUIRE(f != nullptr);
    X509Ptr cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
    std::fclose(f);
    REQUIRE(cert);
    char name[32];
    std::snprintf(name, sizeof name, "%08lx.0", X509_subject_name_hash(cert.get()));
    copy_file(ca.path(), dir + "/" + name);
}

}  // namespace

TEST_CASE("fetch: certificate from a CA not in the shared store is https-cert-invalid (RFC 8461 3.3)") {
    https_global_init();
    TestCa trusted;
    TestCa other("some other CA");
    PkeyPtr key = new_key();
    X509Ptr good = trusted.issue({"mta-sts.example.test", kSan}, key.get());
    X509Ptr bad = other.issue({"mta-sts.example.test", kSan}, key.get());
    TlsServer server(good.get(), key.get(), http_response("200 OK", kPlainOk, kPolicy));
    FakeDns dns(addrs({"127.0.0.1"}));
    const FetchSettings s = local_settings(server.port(), trusted);
    ManualClock clock;
    auto trust = std::make_shared<TrustStore>(s, clock);
    auto a = make_curl_fetcher(s, dns, trust);
    auto b = make_curl_fetcher(s, dns, trust);

    // The private CA is trusted only through the installed store: curl
    // loads no CA of its own (its default, the system bundle, lacks it).
    for (PolicyFetcher* f : {a.get(), b.get()}) {
        auto r = f->fetch(test_domain());
        CHECK_MESSAGE(r.found(), show(r));
    }
    // And the store is really verified against, not bypassed.
    server.use_certificate(bad.get(), key.get());
    for (PolicyFetcher* f : {a.get(), b.get()}) {
        auto r = f->fetch(test_domain());
        REQUIRE(r.failed());
        CHECK(r.failure().code == "https-cert-invalid");
        CHECK_FALSE(r.failure().temporary());
        CHECK(r.failure().reason.find("unable to get local issuer certificate") != std::string::npos);
    }
    CHECK(trust->loads() == 1);
    CHECK(server.connections() == 4);
}

TEST_CASE("trust store: parsed once and shared by every fetcher (4 worker threads)") {
    https_global_init();
    TestCa ca;
    PkeyPtr key = new_key();
    X509Ptr cert = ca.issue({"mta-sts.example.test", kSan}, key.get());
    TlsServer server(cert.get(), key.get(), http_response("200 OK", kPlainOk, kPolicy));
    const FetchSettings s = local_settings(server.port(), ca);
    ManualClock clock;
    auto trust = std::make_shared<TrustStore>(s, clock);
    CHECK(trust->loads() == 0);  // lazily: nothing read before the first fetch

    constexpr int kWorkers = 4;
    std::vector<std::string> results(kWorkers * 2);
    {
        std::vector<std::thread> workers;
        for (int w = 0; w < kWorkers; ++w) {
            workers.emplace_back([&, w] {
                FakeDns dns(addrs({"127.0.0.1"}));  // each worker its own adapters
                auto fetcher = make_curl_fetcher(s, dns, trust);
                for (int i = 0; i < 2; ++i) results[w * 2 + i] = show(fetcher->fetch(test_domain()));
            });
        }
        for (auto& t : workers) t.join();
    }
    for (const std::string& r : results) CHECK(r == "found");
    CHECK(trust->loads() == 1);
    CHECK(server.connections() == kWorkers * 2);
}

TEST_CASE("trust store: a changed CA file reaches every fetcher after one hour (manual clock)") {
    https_global_init();
    TestCa old_ca("stsguard old CA");
    TestCa new_ca("stsguard new CA");
    TempDir dir;
    const std::string path = dir.path() + "/ca.pem";
    copy_file(old_ca.path(), path);
    PkeyPtr key = new_key();
    X509Ptr old_cert = old_ca.issue({"mta-sts.example.test", kSan}, key.get());
    X509Ptr new_cert = new_ca.issue({"mta-sts.example.test", kSan}, key.get());
    TlsServer server(old_cert.get(), key.get(), http_response("200 OK", kPlainOk, kPolicy));
    FakeDns dns(addrs({"127.0.0.1"}));
    FetchSettings s = fast_settings(server.port());
    s.total_timeout = Seconds{5};
    s.ca_file = path;
    ManualClock clock;
    auto trust = std::make_shared<TrustStore>(s, clock);
    auto fetcher = make_curl_fetcher(s, dns, trust);

    auto first = fetcher->fetch(test_domain());
    CHECK_MESSAGE(first.found(), show(first));
    copy_file(new_ca.path(), path);
    clock.advance(kTrustStoreMaxAge - Seconds{1});
    auto cached = fetcher->fetch(test_domain());
    CHECK_MESSAGE(cached.found(), show(cached));  // the parsed store, not the file
    CHECK(trust->loads() == 1);

    clock.advance(Seconds{1});
    auto stale = fetcher->fetch(test_domain());
    CAPTURE(trust->loads());
    CAPTURE(show(stale));
    REQUIRE(stale.failed());
    CHECK(stale.failure().code == "https-cert-invalid");
    CHECK(trust->loads() == 2);
    server.use_certificate(new_cert.get(), key.get());
    auto renewed = fetcher->fetch(test_domain());
    CHECK_MESSAGE(renewed.found(), show(renewed));
    CHECK(trust->loads() == 2);
}

TEST_CASE("fetch: with no CA configured, the system roots are used and a private CA is refused") {
    https_global_init();
    TestCa ca;
    PkeyPtr key = new_key();
    X509Ptr cert = ca.issue({"mta-sts.example.test", kSan}, key.get());
    TlsServer server(cert.get(), key.get(), http_response("200 OK", kPlainOk, kPolicy));
    FakeDns dns(addrs({"127.0.0.1"}));
    FetchSettings s = fast_settings(server.port());
    s.total_timeout = Seconds{5};
    ManualClock clock;
    auto trust = std::make_shared<TrustStore>(s, clock);
    auto r = make_curl_fetcher(s, dns, trust)->fetch(test_domain());
    REQUIRE(r.failed());
    CHECK(r.failure().code == "https-cert-invalid");
    CHECK(r.failure().reason.find("unable to get local issuer certificate") != std::string::npos);
    CHECK(trust->loads() == 1);
}

TEST_CASE("fetch: a hashed CA directory (ca_dir) trusts its CAs and only those") {
    https_global_init();
    TestCa ca;
    TestCa other("some other CA");
    TempDir dir;
    add_to_hashed_dir(ca, dir.path());
    PkeyPtr key = new_key();
    X509Ptr good = ca.issue({"mta-sts.example.test", kSan}, key.get());
    X509Ptr bad = other.issue({"mta-sts.example.test", kSan}, key.get());
    TlsServer server(good.get(), key.get(), http_response("200 OK", kPlainOk, kPolicy));
    FakeDns dns(addrs({"127.0.0.1"}));
    FetchSettings s = fast_settings(server.port());
    s.total_timeout = Seconds{5};
    s.ca_dir = dir.path();
    auto fetcher = fetcher_for(s, dns);
    auto ok = fetcher->fetch(test_domain());
    CHECK_MESSAGE(ok.found(), show(ok));
    server.use_certificate(bad.get(), key.get());
    auto r = fetcher->fetch(test_domain());
    REQUIRE(r.failed());
    CHECK(r.failure().code == "https-cert-invalid");
}

TEST_CASE("fetch: a fetcher without a trust store, or with one for other CA settings, is refused") {
    FakeDns dns(addrs({"127.0.0.1"}));
    FetchSettings s = fast_settings(443);
    s.ca_file = "/etc/stsguard/ca.pem";
    CHECK_THROWS_AS(make_curl_fetcher(s, dns, nullptr), std::invalid_argument);
    ManualClock clock;
    FetchSettings other = s;
    other.ca_file = "/etc/stsguard/other.pem";
    CHECK_THROWS_WITH_AS(make_curl_fetcher(s, dns, std::make_shared<TrustStore>(other, clock)),
                         doctest::Contains("/etc/stsguard/other.pem"), std::invalid_argument);
    CHECK_NOTHROW(make_curl_fetcher(s, dns, std::make_shared<TrustStore>(s, clock)));
}
