// starttls_probe.h - one SMTP STARTTLS probe of one MX address.
//
// Connects to ADDRESS:PORT (IPv4 or IPv6), reads the 220 banner, sends
// EHLO, checks that STARTTLS is advertised (keyword case-insensitive,
// RFC 3207), sends STARTTLS, completes a TLS handshake with SNI = the MX
// host name, and judges the certificate with cert_verdict.h as an RFC 8461
// 4.2 sender would (chain, DNS-ID name, dates by the injected Clock, TLS
// 1.2+).  Then QUIT and close_notify, without waiting for answers.
//
// All socket I/O (probe_io.h) is non-blocking with poll(), bounded by one
// deadline per probe (the earlier of now + timeout and the caller's
// deadline): connect, each read and each write use what is left of it.
// TLS runs over memory BIOs so every byte goes through
// send(MSG_NOSIGNAL)/recv under that deadline (no SIGPIPE, no blocking
// inside OpenSSL).  The handshake offers
// TLS 1.0 and later at OpenSSL security level 0 so that an old server is
// seen and named (tls-version-old) rather than failing opaquely; the
// certificate's key strength is judged by verify_chain, not by the
// handshake.
//
// Failure codes (ProbeResult::failure; kind in brackets):
//   mx-connect        [temp]  refused, unreachable, any connect error
//   mx-timeout        [temp]  the deadline passed; the reason names the stage
//   mx-banner         [temp; perm for 5xx] non-220 greeting, malformed
//                     reply, line too long, reply too large, closed
//   mx-ehlo           [temp; perm for 5xx] EHLO not answered with 250
//   mx-no-starttls    [perm; temp for 4xx] STARTTLS not advertised, or the
//                     STARTTLS command not answered with 220
//   mx-tls-handshake  [temp]  handshake failed, no certificate, or plain
//                     text arrived after the 220 to STARTTLS
//   probe-target      [perm]  the host name, address or port is invalid
// Certificate findings (ProbeResult::findings, from cert_verdict.h):
//   cert-chain-invalid, cert-name-mismatch, cert-expired,
//   cert-not-yet-valid, cert-expiring-soon (warning), tls-version-old.
//
// Limits: a reply line may hold max_line_bytes (4096) before its CRLF
// (RFC 5321 4.5.3.1.5 allows 512; servers exceed it); one probe reads at
// most max_reply_bytes (64 KiB) of SMTP text in total; transcript lines
// are rendered with printable() and capped at 200.  Link-local IPv6
// addresses with a zone (fe80::1%eth0) are not supported.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checker/cert_verdict.h"
#include "policy-cache/clock.h"
#include "policy-cache/config.h"
#include "policy-cache/finding.h"
#include "policy-cache/outcome.h"

namespace stsguard {

using Deadline = std::chrono::steady_clock::time_point;  // also in probe_io.h

// Where a probe stopped: the stage in progress when it failed, or done.
enum class ProbeStage { connect, banner, ehlo, starttls, handshake, done };
const char* probe_stage_name(ProbeStage s);

struct ProbeTarget {
    std::string host;     // MX host name: SNI and certificate name check
    std::string address;  // IPv4 or IPv6 text form, no brackets
    int port = 25;
};

struct ProbeResult {
    std::string host;
    std::string address;
    int port = 25;
    ProbeStage reached = ProbeStage::connect;
    std::optional<Failure> failure;  // connection/protocol failure
    std::string tls_version;         // e.g. "TLSv1.3" once the handshake is done
    std::string cipher;
    std::optional<CertInfo> cert;         // when the server presented one
    Findings findings;                    // certificate and TLS version verdict
    double seconds = 0;                   // wall time of this probe
    std::vector<std::string> transcript;  // "S: 220 ...", "C: EHLO ...", for --verbose

    // Reached TLS with a certificate an RFC 8461 sender accepts
    // (warnings such as cert-expiring-soon allowed).
    bool acceptable() const {
        return !failure && reached == ProbeStage::done && !has_errors(findings);
    }
};

struct ProbeSettings {
    std::chrono::milliseconds timeout{15000};  // whole probe: connect .. handshake
    // Trust anchors: every source given is loaded; the system store is
    // used only when ca_file, ca_dir and ca_pem are all empty.
    std::string ca_file;
    std::string ca_dir;
    std::string ca_pem;     // PEM certificates as text (tests, embedding)
    std::string ehlo_name;  // empty: default_ehlo_name()
    int cert_expiry_warn_days = 14;
    std::size_t max_line_bytes = 4096;
    std::size_t max_reply_bytes = 65536;
};

// probe_timeout, tls_ca_file, tls_ca_dir, cert_expiry_warn_days.
ProbeSettings probe_settings(const Config& c);

// This machine's host name if it is a dotted DNS name, else "stsguard.invalid".
std::string default_ehlo_name();

// Holds the SSL_CTX (trust store loaded once) and the clock; probe() is
// const and may be called from several threads at once.
class StarttlsProber {
public:
    // Failure "probe-setup" (permanent) if the CA file/dir/PEM cannot be
    // loaded or the EHLO name is not a valid host name.
    static Lookup<std::unique_ptr<StarttlsProber>> create(ProbeSettings settings,
                                                          const Clock& clock);

    // Probes one address; never throws for network conditions.
    ProbeResult probe(const ProbeTarget& target) const;
    ProbeResult probe(const ProbeTarget& target, Deadline overall) const;

    const ProbeSettings& settings() const { return settings_; }

    ~StarttlsProber();
    StarttlsProber(const StarttlsProber&) = delete;
    StarttlsProber& operator=(const StarttlsProber&) = delete;

private:
    struct Impl;
    StarttlsProber(ProbeSettings s, const Clock& clock, std::unique_ptr<Impl> impl);

    ProbeSettings settings_;
    const Clock& clock_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace stsguard
