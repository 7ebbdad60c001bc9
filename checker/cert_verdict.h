// cert_verdict.h - judge an MX host's certificate as an RFC 8461 sender would.
//
// RFC 8461 4.2 (with RFC 6125): the certificate presented after STARTTLS
// must chain to a trusted root, be valid for the MX host name (a DNS-ID in
// subjectAltName; the subject CN is never used; a wildcard is the whole
// left-most label and covers exactly one label), be within its validity
// dates, and the session must use TLS 1.2 or later.
//
// Two halves, kept apart so the judgement is testable without a network:
//   - OpenSSL extraction (describe_certificate, verify_chain,
//     check_host_name, inspect_certificate) turns an X509 and its chain
//     into plain data (CertInfo).
//   - judge_certificate / judge_tls_version are pure: CertInfo + host +
//     time -> Findings.
//
// Decisions:
//   - The chain is verified by verify_chain with our own X509_STORE_CTX,
//     not during the handshake: the verification time is the injected
//     Clock's now (X509_VERIFY_PARAM_set_time), so OpenSSL's date checks
//     and ours agree and tests can move time; every verify error is
//     collected, not only the last one OpenSSL keeps.
//   - The expected host name is NOT set on the verify param: the name is
//     checked separately with X509_check_host, so a wrong name and an
//     untrusted chain are reported as two findings instead of one masking
//     the other.  Flags: NEVER_CHECK_SUBJECT (no CN fallback, RFC 6125
//     6.4.4) and NO_PARTIAL_WILDCARDS ("mx*.example.com" never matches).
//     OpenSSL's default already lets '*' cover one label only (we do not
//     pass MULTI_LABEL_WILDCARDS); SINGLE_LABEL_SUBDOMAINS only concerns
//     reference names that start with '.', which we refuse.
//   - The leaf's own date errors (expired / not yet valid) are left out of
//     the chain verdict: judge_certificate reports them as cert-expired /
//     cert-not-yet-valid from the same clock.  An expired intermediate or
//     root is a chain error.
//   - Key and signature strength is checked at OpenSSL auth level 2 (112
//     bits: RSA/DSA >= 2048, no SHA-1 signatures), Debian's default that a
//     Postfix sender would apply.
//
// Finding codes: cert-chain-invalid, cert-name-mismatch, cert-expired,
// cert-not-yet-valid (errors), cert-expiring-soon (warning),
// tls-version-old (error).
// Failures: none (findings are the output).  Limits: at most 64 SAN names
// and 16 verify errors are kept for display; each rendered with printable().
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy-cache/clock.h"
#include "policy-cache/finding.h"

namespace stsguard {

enum class ChainStatus { not_checked, trusted, untrusted };
enum class NameMatch { not_checked, matches, mismatch };

const char* chain_status_name(ChainStatus s);
const char* name_match_name(NameMatch m);

// One error reported by X509_verify_cert (code, chain depth, text).
struct VerifyError {
    int code = 0;
    int depth = 0;
    std::string text;  // X509_verify_cert_error_string(code)
};

struct CertInfo {
    std::string subject;  // RFC 2253, printable()
    std::string issuer;
    std::vector<std::string> dns_names;  // subjectAltName dNSName entries, printable()
    UnixTime not_before{};
    UnixTime not_after{};
    std::string serial;  // upper-case hex
    std::string sha256;  // lower-case hex of the DER
    ChainStatus chain = ChainStatus::not_checked;
    std::string chain_error;                 // first chain error text, "" when trusted
    std::vector<VerifyError> verify_errors;  // all, including leaf date errors
    NameMatch name = NameMatch::not_checked;
};

// ---- pure judgement ---------------------------------------------------

// Findings for one certificate presented by `host` at time `now`.
// expiry_warn_days: warn when notAfter is less than this many days away.
Findings judge_certificate(const CertInfo& cert, std::string_view host, UnixTime now,
                           int expiry_warn_days);

// tls-version-old for anything below TLS 1.2 (version as SSL_get_version
// prints it: "TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3").
std::optional<Finding> judge_tls_version(std::string_view version);

// True if a leaf date error: left to judge_certificate's own date checks.
bool is_leaf_date_error(const VerifyError& e);

// ---- OpenSSL extraction ---------------------------------------------

// Subject, issuer, SAN DNS names, dates, serial and fingerprint of x.
// chain and name stay not_checked.
CertInfo describe_certificate(X509* x);

struct ChainCheck {
    ChainStatus status = ChainStatus::not_checked;
    std::string error;                // first error that is not a leaf date error
    std::vector<VerifyError> errors;  // every error, in the order OpenSSL found them
};

// Verifies leaf (+ untrusted intermediates, may be null) against store
// for TLS server use, at time `at`.  Thread-safe for a shared store.
ChainCheck verify_chain(X509_STORE* store, X509* leaf, STACK_OF(X509) * untrusted, UnixTime at);

// RFC 6125 DNS-ID check of leaf against host (flags above).  A host that
// is empty or starts with '.' is a mismatch.
NameMatch check_host_name(X509* leaf, std::string_view host);

// All three: describe, verify at `at`, check the name.
CertInfo inspect_certificate(X509_STORE* store, X509* leaf, STACK_OF(X509) * untrusted,
                             std::string_view host, UnixTime at);

}  // namespace stsguard
