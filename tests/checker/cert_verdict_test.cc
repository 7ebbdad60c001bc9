// Tests for checker/cert_verdict: RFC 8461 4.2 / RFC 6125 certificate
// judgement, with certificates generated at run time (no files).
#include "checker/cert_verdict.h"

#include <doctest/doctest.h>

#include <cstdio>

#include "tests/checker/tls_test_util.h"

namespace stsguard {
namespace {

using testing::CertRole;
using testing::CertSpec;
using testing::KeyCert;
using testing::make_cert;

constexpr std::int64_t kDay = 86400;
const UnixTime kNow = from_unix(1'700'000'000);  // 2023-11-14T22:13:20Z

UnixTime days(std::int64_t n) { return from_unix(to_unix(kNow) + n * kDay); }

KeyCert make_ca(const std::string& cn = "Test Root CA", UnixTime nb = days(-365),
                UnixTime na = days(3650)) {
    CertSpec s;
    s.cn = cn;
    s.role = CertRole::ca;
    s.not_before = nb;
    s.not_after = na;
    return make_cert(s, nullptr);
}

KeyCert make_leaf(const KeyCert* issuer, std::vector<std::string> dns, UnixTime nb = days(-30),
                  UnixTime na = days(90), std::string cn = "mx.example.test") {
    CertSpec s;
    s.cn = std::move(cn);
    s.dns = std::move(dns);
    s.not_before = nb;
    s.not_after = na;
    return make_cert(s, issuer);
}

std::vector<std::string> codes(const Findings& f) {
    std::vector<std::string> out;
    for (const auto& x : f) out.push_back(x.code);
    return out;
}

struct Verdict {
    CertInfo info;
    Findings findings;
};

Verdict judge(X509_STORE* store, X509* leaf, const std::string& host, UnixTime now = kNow,
              int warn_days = 14, STACK_OF(X509) * untrusted = nullptr) {
    Verdict v;
    v.info = inspect_certificate(store, leaf, untrusted, host, now);
    v.findings = judge_certificate(v.info, host, now, warn_days);
    return v;
}

}  // namespace

TEST_CASE("4.2: a leaf from a trusted CA with the exact MX name in SAN has no findings") {
    KeyCert ca = make_ca();
    KeyCert leaf = make_leaf(&ca, {"mx.example.test"});
    auto store = testing::store_with(ca.cert.get());
    Verdict v = judge(store.get(), leaf.cert.get(), "mx.example.test");
    CHECK(v.findings.empty());
    CHECK(v.info.chain == ChainStatus::trusted);
    CHECK(v.info.chain_error.empty());
    CHECK(v.info.name == NameMatch::matches);
    CHECK(v.info.dns_names == std::vector<std::string>{"mx.example.test"});
    CHECK(v.info.subject == "CN=mx.example.test");
    CHECK(v.info.issuer == "CN=Test Root CA");
    CHECK(v.info.not_before == days(-30));
    CHECK(v.info.not_after == days(90));
}

TEST_CASE("RFC 6125 6.4.1: DNS-ID comparison is case-insensitive") {
    KeyCert ca = make_ca();
    KeyCert leaf = make_leaf(&ca, {"MX.Example.TEST"});
    auto store = testing::store_with(ca.cert.get());
    CHECK(judge(store.get(), leaf.cert.get(), "mx.example.test").findings.empty());
}

TEST_CASE("RFC 6125 6.4.3: a wildcard covers exactly one left-most label") {
    KeyCert ca = make_ca();
    KeyCert leaf = make_leaf(&ca, {"*.example.test"});
    auto store = testing::store_with(ca.cert.get());

    CHECK(judge(store.get(), leaf.cert.get(), "mx.example.test").findings.empty());

    Verdict deep = judge(store.get(), leaf.cert.get(), "a.mx.example.test");
    CHECK(codes(deep.findings) == std::vector<std::string>{"cert-name-mismatch"});
    CHECK(deep.info.name == NameMatch::mismatch);
    CHECK(deep.findings[0].message.find("*.example.test") != std::string::npos);

    Verdict bare = judge(store.get(), leaf.cert.get(), "example.test");
    CHECK(codes(bare.findings) == std::vector<std::string>{"cert-name-mismatch"});
}

TEST_CASE("RFC 6125 6.4.3: a partial-label wildcard (mx*.example.test) never matches") {
    KeyCert ca = make_ca();
    KeyCert leaf = make_leaf(&ca, {"mx*.example.test"});
    auto store = testing::store_with(ca.cert.get());
    CHECK(codes(judge(store.get(), leaf.cert.get(), "mx1.example.test").findings) ==
          std::vector<std::string>{"cert-name-mismatch"});
}

TEST_CASE("RFC 6125 6.4.4: the subject CN is never used when there is no SAN") {
    KeyCert ca = make_ca();
    KeyCert leaf = make_leaf(&ca, {}, days(-30), days(90), "mx.example.test");
    auto store = testing::store_with(ca.cert.get());
    Verdict v = judge(store.get(), leaf.cert.get(), "mx.example.test");
    CHECK(v.info.dns_names.empty());
    REQUIRE(codes(v.findings) == std::vector<std::string>{"cert-name-mismatch"});
    CHECK(v.findings[0].message.find("no subjectAltName") != std::string::npos);
    CHECK(v.findings[0].message.find("CN=mx.example.test") != std::string::npos);
}

TEST_CASE("4.2: the CN is ignored even when the SAN lists other names") {
    KeyCert ca = make_ca();
    KeyCert leaf = make_leaf(&ca, {"other.example.test"}, days(-30), days(90), "mx.example.test");
    auto store = testing::store_with(ca.cert.get());
    CHECK(codes(judge(store.get(), leaf.cert.get(), "mx.example.test").findings) ==
          std::vector<std::string>{"cert-name-mismatch"});
}

TEST_CASE("4.2: an expired leaf is cert-expired, not a chain error") {
    KeyCert ca = make_ca();
    KeyCert leaf = make_leaf(&ca, {"mx.example.test"}, days(-400), days(-2));
    auto store = testing::store_with(ca.cert.get());
    Verdict v = judge(store.get(), leaf.cert.get(), "mx.example.test");
    REQUIRE(codes(v.findings) == std::vector<std::string>{"cert-expired"});
    CHECK(v.findings[0].severity == Severity::error);
    CHECK(v.findings[0].message.find("2 days ago") != std::string::npos);
    CHECK(v.info.chain == ChainStatus::trusted);
    // OpenSSL saw the expiry too, at the same (injected) time.
    REQUIRE(v.info.verify_errors.size() == 1);
    CHECK(v.info.verify_errors[0].code == X509_V_ERR_CERT_HAS_EXPIRED);
    CHECK(v.info.verify_errors[0].depth == 0);
}

TEST_CASE("4.2: a leaf not yet valid is cert-not-yet-valid") {
    KeyCert ca = make_ca();
    KeyCert leaf = make_leaf(&ca, {"mx.example.test"}, days(1), days(90));
    auto store = testing::store_with(ca.cert.get());
    Verdict v = judge(store.get(), leaf.cert.get(), "mx.example.test");
    CHECK(codes(v.findings) == std::vector<std::string>{"cert-not-yet-valid"});
    CHECK(v.info.chain == ChainStatus::trusted);
    REQUIRE(v.info.verify_errors.size() == 1);
    CHECK(v.info.verify_errors[0].code == X509_V_ERR_CERT_NOT_YET_VALID);
}

TEST_CASE("expiring within cert_expiry_warn_days is a warning only") {
    KeyCert ca = make_ca();
    KeyCert leaf = make_leaf(&ca, {"mx.example.test"}, days(-80), days(3));
    auto store = testing::store_with(ca.cert.get());
    Verdict v = judge(store.get(), leaf.cert.get(), "mx.example.test", kNow, 14);
    REQUIRE(codes(v.findings) == std::vector<std::string>{"cert-expiring-soon"});
    CHECK(v.findings[0].severity == Severity::warning);
    CHECK(v.findings[0].message.find("in 3 days") != std::string::npos);
    CHECK_FALSE(has_errors(v.findings));

    // Beyond the threshold: quiet; a larger threshold warns again.
    KeyCert later = make_leaf(&ca, {"mx.example.test"}, days(-80), days(20));
    CHECK(judge(store.get(), later.cert.get(), "mx.example.test", kNow, 14).findings.empty());
    CHECK(codes(judge(store.get(), later.cert.get(), "mx.example.test", kNow, 30).findings) ==
          std::vector<std::string>{"cert-expiring-soon"});
    // 0 disables the warning.
    CHECK(judge(store.get(), leaf.cert.get(), "mx.example.test", kNow, 0).findings.empty());
}

TEST_CASE("4.2: a self-signed leaf is cert-chain-invalid") {
    KeyCert ca = make_ca();
    KeyCert self = make_leaf(nullptr, {"mx.example.test"});
    auto store = testing::store_with(ca.cert.get());
    Verdict v = judge(store.get(), self.cert.get(), "mx.example.test");
    REQUIRE(codes(v.findings) == std::vector<std::string>{"cert-chain-invalid"});
    CHECK(v.info.chain == ChainStatus::untrusted);
    CHECK(v.info.chain_error == "self-signed certificate");
    CHECK(v.findings[0].message.find("self-signed") != std::string::npos);
}

TEST_CASE("4.2: a leaf from an unknown CA is cert-chain-invalid") {
    KeyCert ca = make_ca();
    KeyCert other = make_ca("Other CA");
    KeyCert leaf = make_leaf(&other, {"mx.example.test"});
    auto store = testing::store_with(ca.cert.get());
    Verdict v = judge(store.get(), leaf.cert.get(), "mx.example.test");
    CHECK(codes(v.findings) == std::vector<std::string>{"cert-chain-invalid"});
    CHECK(v.info.chain_error.find("unable to get local issuer") != std::string::npos);
}

TEST_CASE("4.2: the chain through an intermediate sent by the server verifies") {
    KeyCert root = make_ca("Root");
    KeyCert inter = make_ca("Intermediate");
    KeyCert inter_signed =
        make_cert(CertSpec{"Intermediate", {}, days(-100), days(1000), CertRole::ca, 7, ""}, &root,
                  std::move(inter.key));
    KeyCert leaf = make_leaf(&inter_signed, {"mx.example.test"});
    auto store = testing::store_with(root.cert.get());

    // Without the intermediate the chain cannot be built.
    CHECK(judge(store.get(), leaf.cert.get(), "mx.example.test").info.chain ==
          ChainStatus::untrusted);

    ossl::X509Stack chain(sk_X509_new_null());
    X509_up_ref(inter_signed.cert.get());
    sk_X509_push(chain.get(), inter_signed.cert.get());
    Verdict v = judge(store.get(), leaf.cert.get(), "mx.example.test", kNow, 14, chain.get());
    CHECK(v.findings.empty());
}

TEST_CASE("4.2: an expired intermediate makes the chain invalid (not cert-expired)") {
    KeyCert root = make_ca("Root");
    KeyCert inter = make_cert(
        CertSpec{"Old Intermediate", {}, days(-1000), days(-1), CertRole::ca, 8, ""}, &root);
    KeyCert leaf = make_leaf(&inter, {"mx.example.test"});
    auto store = testing::store_with(root.cert.get());
    ossl::X509Stack chain(sk_X509_new_null());
    X509_up_ref(inter.cert.get());
    sk_X509_push(chain.get(), inter.cert.get());
    Verdict v = judge(store.get(), leaf.cert.get(), "mx.example.test", kNow, 14, chain.get());
    CHECK(codes(v.findings) == std::vector<std::string>{"cert-chain-invalid"});
    CHECK(v.info.chain_error.find("expired") != std::string::npos);
    CHECK(v.info.chain_error.find("depth 1") != std::string::npos);
}

TEST_CASE("a leaf without serverAuth in extendedKeyUsage is cert-chain-invalid") {
    KeyCert ca = make_ca();
    CertSpec s;
    s.dns = {"mx.example.test"};
    s.not_before = days(-1);
    s.not_after = days(60);
    s.eku = "clientAuth";
    KeyCert leaf = make_cert(s, &ca);
    auto store = testing::store_with(ca.cert.get());
    Verdict v = judge(store.get(), leaf.cert.get(), "mx.example.test");
    CHECK(codes(v.findings) == std::vector<std::string>{"cert-chain-invalid"});
    CHECK(v.info.chain_error.find("purpose") != std::string::npos);
}

TEST_CASE("a 1024-bit RSA leaf fails at auth level 2, as on Debian's defaults") {
    KeyCert ca = make_ca();
    CertSpec s;
    s.dns = {"mx.example.test"};
    s.not_before = days(-1);
    s.not_after = days(60);
    KeyCert weak = make_cert(s, &ca, testing::make_rsa_key(1024));
    auto store = testing::store_with(ca.cert.get());
    Verdict v = judge(store.get(), weak.cert.get(), "mx.example.test");
    CHECK(codes(v.findings) == std::vector<std::string>{"cert-chain-invalid"});
    CHECK(v.info.chain_error.find("too weak") != std::string::npos);

    KeyCert ok = make_cert(s, &ca, testing::make_rsa_key(2048));
    CHECK(judge(store.get(), ok.cert.get(), "mx.example.test").findings.empty());
}

TEST_CASE("several problems are all reported: untrusted, wrong name, expired") {
    KeyCert self = make_leaf(nullptr, {"other.example.test"}, days(-100), days(-10));
    KeyCert ca = make_ca();
    auto store = testing::store_with(ca.cert.get());
    Verdict v = judge(store.get(), self.cert.get(), "mx.example.test");
    CHECK(codes(v.findings) ==
          std::vector<std::string>{"cert-chain-invalid", "cert-name-mismatch", "cert-expired"});
}

TEST_CASE("OpenSSL's chain dates use the injected clock, not the real time") {
    KeyCert ca = make_ca("Clock CA", from_unix(0), from_unix(4'000'000'000));
    auto store = testing::store_with(ca.cert.get());

    // Valid in 2001, long expired in real time: clean at a 2001 clock.
    const UnixTime y2001 = from_unix(1'000'000'000);
    KeyCert old =
        make_leaf(&ca, {"mx.example.test"}, from_unix(990'000'000), from_unix(1'010'000'000));
    Verdict then = judge(store.get(), old.cert.get(), "mx.example.test", y2001);
    CHECK(then.findings.empty());
    CHECK(then.info.verify_errors.empty());

    // The same certificate judged at kNow: both OpenSSL and we see expiry.
    Verdict now = judge(store.get(), old.cert.get(), "mx.example.test", kNow);
    CHECK(codes(now.findings) == std::vector<std::string>{"cert-expired"});
    REQUIRE(now.info.verify_errors.size() == 1);
    CHECK(now.info.verify_errors[0].code == X509_V_ERR_CERT_HAS_EXPIRED);

    // And a ManualClock moved past notAfter is seen the same way.
    ManualClock clock(kNow);
    KeyCert leaf = make_leaf(&ca, {"mx.example.test"});
    CHECK(judge(store.get(), leaf.cert.get(), "mx.example.test", clock.now()).findings.empty());
    clock.advance(Seconds{91 * kDay});
    Verdict moved = judge(store.get(), leaf.cert.get(), "mx.example.test", clock.now());
    CHECK(codes(moved.findings) == std::vector<std::string>{"cert-expired"});
    REQUIRE(moved.info.verify_errors.size() == 1);
    CHECK(moved.info.verify_errors[0].code == X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST_CASE("describe_certificate: serial, SHA-256 fingerprint, SAN list") {
    KeyCert ca = make_ca();
    CertSpec s;
    s.dns = {"mx1.example.test", "mx2.example.test"};
    s.not_before = days(-1);
    s.not_after = days(60);
    s.serial = 0x1234AB;
    KeyCert leaf = make_cert(s, &ca);
    CertInfo info = describe_certificate(leaf.cert.get());
    CHECK(info.serial == "1234AB");
    CHECK(info.dns_names == std::vector<std::string>{"mx1.example.test", "mx2.example.test"});
    REQUIRE(info.sha256.size() == 64);
    CHECK(info.sha256.find_first_not_of("0123456789abcdef") == std::string::npos);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    X509_digest(leaf.cert.get(), EVP_sha256(), md, &len);
    char first[3];
    std::snprintf(first, sizeof first, "%02x", md[0]);
    CHECK(info.sha256.substr(0, 2) == first);
    CHECK(info.chain == ChainStatus::not_checked);
    CHECK(info.name == NameMatch::not_checked);
    CHECK(describe_certificate(ca.cert.get()).sha256 != info.sha256);
}

TEST_CASE("check_host_name refuses an empty host and a leading dot") {
    KeyCert ca = make_ca();
    KeyCert leaf = make_leaf(&ca, {"*.example.test"});
    CHECK(check_host_name(leaf.cert.get(), "") == NameMatch::mismatch);
    CHECK(check_host_name(leaf.cert.get(), ".example.test") == NameMatch::mismatch);
    CHECK(check_host_name(leaf.cert.get(), "mx.example.test") == NameMatch::matches);
    CHECK(check_host_name(nullptr, "mx.example.test") == NameMatch::mismatch);
}

TEST_CASE("verify_chain without a certificate or store is untrusted, not a crash") {
    ChainCheck c = verify_chain(nullptr, nullptr, nullptr, kNow);
    CHECK(c.status == ChainStatus::untrusted);
    CHECK_FALSE(c.error.empty());
}

// ---- pure judgement on hand-made CertInfo -----------------------------------

TEST_CASE("judge_certificate: validity boundaries are inclusive") {
    CertInfo c;
    c.chain = ChainStatus::trusted;
    c.name = NameMatch::matches;
    c.dns_names = {"mx.example.test"};
    c.not_before = days(-10);
    c.not_after = days(30);
    CHECK(judge_certificate(c, "mx.example.test", days(-10), 14).empty());
    CHECK(codes(judge_certificate(c, "mx.example.test", from_unix(to_unix(days(-10)) - 1), 14)) ==
          std::vector<std::string>{"cert-not-yet-valid"});
    CHECK(codes(judge_certificate(c, "mx.example.test", days(30), 14)) ==
          std::vector<std::string>{"cert-expiring-soon"});
    CHECK(codes(judge_certificate(c, "mx.example.test", from_unix(to_unix(days(30)) + 1), 14)) ==
          std::vector<std::string>{"cert-expired"});
    // Exactly warn_days left is not yet "within" the window.
    CHECK(judge_certificate(c, "mx.example.test", days(16), 14).empty());
    CHECK(codes(judge_certificate(c, "mx.example.test", from_unix(to_unix(days(16)) + 1), 14)) ==
          std::vector<std::string>{"cert-expiring-soon"});
}

TEST_CASE("judge_certificate: an unchecked chain or name is never silently accepted") {
    CertInfo c;
    c.not_before = days(-1);
    c.not_after = days(100);
    CHECK(codes(judge_certificate(c, "mx.example.test", kNow, 14)) ==
          std::vector<std::string>{"cert-chain-invalid", "cert-name-mismatch"});
}

TEST_CASE("judge_certificate: messages are printable even for hostile names") {
    CertInfo c;
    c.chain = ChainStatus::trusted;
    c.name = NameMatch::mismatch;
    c.dns_names = {"evil\\x0a.example"};
    c.not_before = days(-1);
    c.not_after = days(100);
    Findings f = judge_certificate(c, "mx\n.example.test", kNow, 14);
    REQUIRE(f.size() == 1);
    CHECK(f[0].message.find('\n') == std::string::npos);
    CHECK(f[0].message.find("mx\\n.example.test") != std::string::npos);
}

TEST_CASE("TLS 1.2 or later is required; older versions are tls-version-old") {
    CHECK_FALSE(judge_tls_version("TLSv1.3").has_value());
    CHECK_FALSE(judge_tls_version("TLSv1.2").has_value());
    for (const char* old : {"TLSv1.1", "TLSv1", "SSLv3", "", "TLSv1.x", "unknown"}) {
        auto f = judge_tls_version(old);
        REQUIRE(f.has_value());
        CHECK(f->code == "tls-version-old");
        CHECK(f->severity == Severity::error);
    }
}

TEST_CASE("is_leaf_date_error only covers the leaf's own dates") {
    CHECK(is_leaf_date_error({X509_V_ERR_CERT_HAS_EXPIRED, 0, ""}));
    CHECK(is_leaf_date_error({X509_V_ERR_CERT_NOT_YET_VALID, 0, ""}));
    CHECK_FALSE(is_leaf_date_error({X509_V_ERR_CERT_HAS_EXPIRED, 1, ""}));
    CHECK_FALSE(is_leaf_date_error({X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, 0, ""}));
}

}  // namespace stsguard
