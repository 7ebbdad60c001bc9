// https_fetcher.h - fetch https://mta-sts.<domain>/.well-known/mta-sts.txt
//
// RFC 8461 3.3: HTTPS only, PKIX validation against the policy host name
// (DNS-ID in subjectAltName; the subject CN is never used, RFC 6125
// 6.4.4 as 8461 3.3 requires), SNI, TLS 1.2 or later, redirects never
// followed, only status 200, Content-Type text/plain (parameters such as
// charset allowed), the body capped at 64 KiB (reading stops past it).
//
// The policy host is resolved through our own DnsResolver, the addresses
// pass the private-address guard (address_guard.h), and curl is pinned to
// exactly those addresses (CURLOPT_RESOLVE), so a DNS answer cannot change
// between the check and the connection.
//
// Failure codes (temporary unless marked permanent):
//   policy-host-not-found (perm)  no A/AAAA for mta-sts.<domain>
//   policy-host-dns               DNS failure resolving the policy host
//   policy-host-private (perm)    guard refused every address
//   https-connect                 refused / unreachable
//   https-timeout                 connect or total timeout
//   https-ca                      the trust store cannot be loaded
//                                 (trust_store.h); the reason names the
//                                 CA file or directory.  Ours, not the
//                                 domain's: temporary.
//   https-tls                     TLS handshake failed (protocol, version)
//   https-cert-invalid (perm)     PKIX chain or host name check failed
//   http-redirect (perm)          3xx; the reason names the Location
//   http-status                   not 200 (4xx permanent, 5xx temporary)
//   http-content-type (perm)      not text/plain
//   policy-too-large (perm)       body over max_bytes
//   https-error                   anything else curl reports
// Limits: connect_timeout, total_timeout, max_bytes (FetchSettings).
// Trust anchors come from a TrustStore (trust_store.h) that any number of
// fetchers share, so the CA bundle is parsed once per process (and again
// after an hour), not once per fetcher.  A fetcher keeps one curl handle
// across fetches: use it from one thread at a time.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "policy-cache/clock.h"
#include "policy-cache/dns_resolver.h"
#include "policy-cache/domain_name.h"
#include "policy-cache/outcome.h"

namespace stsguard {

struct FetchedPolicy {
    std::string url;
    std::string body;            // raw bytes, at most max_bytes
    std::string content_type;
    long http_status = 0;
    std::string remote_ip;       // address actually connected to
    std::string tls_version;     // e.g. "TLSv1.3"
    double seconds = 0;          // total transfer time
};

enum class PrivateAddresses { refuse, allow };

struct FetchSettings {
    std::string ca_file;         // empty: system store
    std::string ca_dir;
    Seconds connect_timeout{10};
    Seconds total_timeout{20};
    std::size_t max_bytes = 65536;
    PrivateAddresses private_addresses = PrivateAddresses::refuse;
    std::string proxy;           // empty: none (environment ignored)
    int port = 443;              // only tests change this
};

class PolicyFetcher {
public:
    virtual ~PolicyFetcher() = default;
    virtual Lookup<FetchedPolicy> fetch(const DomainName& domain) = 0;
};

// Once at process start, before any thread exists (curl_global_init is
// not thread-safe).  Throws std::runtime_error if libcurl cannot start or
// is not built with OpenSSL (the fetcher's CN-free host check needs it).
// Calling it again is harmless.  (Added by the fetcher engineer.)
void https_global_init();

// "https://mta-sts.<domain>/.well-known/mta-sts.txt"; ":port" only when
// port != 443.  (Added.)
std::string policy_url(const DomainName& domain, int port);

class TrustStore;

// The real fetcher: libcurl (OpenSSL).  `dns` resolves the policy host;
// it must outlive the fetcher.  `trust` holds the CA certificates every
// TLS handshake verifies against; it is shared (one per process is the
// point) and must have been made from the same ca_file/ca_dir as
// `settings`: a null or mismatched store throws std::invalid_argument
// (a wiring error, found at start-up).
std::unique_ptr<PolicyFetcher> make_curl_fetcher(const FetchSettings& settings, DnsResolver& dns,
                                                 std::shared_ptr<TrustStore> trust);

// curl_global_init(); call once at process start, before any thread.
void https_global_init();

// Pure checks of a completed response, shared by the fetcher and tests:
// returns nullopt if acceptable, else the Failure (codes above).
std::optional<Failure> check_http_response(long status, const std::string& content_type,
                                           const std::string& location);

}  // namespace stsguard
