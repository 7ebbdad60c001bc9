// https_fetcher.cc - the libcurl (OpenSSL) policy fetcher.  See
// https_fetcher.h for the rules and failure codes.
//
// One easy handle per fetcher, reset before every fetch.  Nothing carries
// over between fetches: every fetch opens a new connection
// (FRESH_CONNECT) and closes it (FORBID_REUSE), and the previous fetch's
// pinned address is removed from the handle's DNS cache by the next one,
// so the cache holds at most one entry.  So a fetcher belongs to one
// thread at a time, as the adapters do.  Every callback is noexcept and
// reports through the Transfer it is given.
//
// Trust anchors: curl is told to load no CA at all (CURLOPT_CAINFO and
// CURLOPT_CAPATH NULL), and the SSL_CTX callback installs the shared
// TrustStore's X509_STORE as the context's *verify* store
// (SSL_CTX_set1_verify_cert_store; every SSL made from the context gets
// it), which OpenSSL uses in place of the context's own cert store to
// verify the server's chain (CURLOPT_SSL_VERIFYPEER).  Not
// SSL_CTX_set1_cert_store: libcurl 7.88 sets up the context's cert store
// lazily, after the callback, during the handshake; it writes flags into
// that store, and with its CA cache it caches it per handle and puts the
// cached one back into later contexts, so a replaced cert store would be
// shared with curl's writes and a reloaded one never seen.  Curl's own
// store stays empty and unused.  The fetch holds its own reference to
// the shared store until it returns, so a reload by another thread never
// frees it under the handshake.
//
// Host name check: curl's own check (CURLOPT_SSL_VERIFYHOST) falls back
// to the subject CN when the certificate has no DNS SAN, which RFC 8461
// 3.3 / RFC 6125 6.4.4 forbid.  So the host name is also set on the
// SSL_CTX's verify parameters with X509_CHECK_FLAG_NEVER_CHECK_SUBJECT:
// OpenSSL then fails the handshake itself ("hostname mismatch") for a
// certificate whose only name is in the CN.
//
// With a proxy (policy_fetch_proxy) the proxy connects to the policy
// host, so the address pinning and the private-address guard only cover
// our own DNS answer, not where the proxy goes.
#include "policy-cache/https_fetcher.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "policy-cache/curl_handles.h"
#include "policy-cache/policy_host.h"
#include "policy-cache/trust_store.h"

#ifndef STSGUARD_VERSION
#error "STSGUARD_VERSION must be defined (the Makefile does)"
#endif

namespace stsguard {
namespace {

// State shared with the curl callbacks of one transfer.
struct Transfer {
    CURL* curl = nullptr;
    X509_STORE* trust = nullptr;  // the fetch's reference keeps it alive
    std::string host;  // for the SSL_CTX host check
    std::size_t max_bytes = 0;
    std::string body;
    bool too_large = false;
    std::string tls_version;
    long verify_error = X509_V_OK;  // first PKIX error OpenSSL reported
};

size_t on_body(char* data, size_t size, size_t nmemb, void* user) noexcept {
    auto* t = static_cast<Transfer*>(user);
    const size_t n = size * nmemb;
    if (n > t->max_bytes - t->body.size()) {
        t->too_large = true;
        return 0;  // short count: curl aborts with CURLE_WRITE_ERROR
    }
    try {
        t->body.append(data, n);
    } catch (...) {
        return 0;
    }
    return n;
}

// Headers arrive while the connection is surely alive: the place to read
// the negotiated TLS version (the connection may be gone after perform).
size_t on_header(char*, size_t size, size_t nitems, void* user) noexcept {
    auto* t = static_cast<Transfer*>(user);
    if (t->tls_version.empty()) {
        curl_tlssessioninfo* info = nullptr;
        if (curl_easy_getinfo(t->curl, CURLINFO_TLS_SSL_PTR, &info) == CURLE_OK && info &&
            info->backend == CURLSSLBACKEND_OPENSSL && info->internals) {
            const char* v = SSL_get_version(static_cast<SSL*>(info->internals));
            try {
                t->tls_version = v ? v : "";
            } catch (...) {
                return 0;
            }
        }
    }
    return size * nitems;
}

// Runs OpenSSL's normal chain verification and keeps its verdict: curl
// classifies a handshake failure by the first error on the OpenSSL error
// queue, which for some bad chains (a forged signature under a trusted
// issuer name) is an ASN.1/EVP error, not "certificate verify failed";
// the verdict recorded here lets us still call it https-cert-invalid.
int on_verify(X509_STORE_CTX* store, void* user) noexcept {
    auto* t = static_cast<Transfer*>(user);
    const int ok = X509_verify_cert(store);
    if (ok <= 0 && t->verify_error == X509_V_OK) {
        t->verify_error = X509_STORE_CTX_get_error(store);
    }
    return ok;
}

CURLcode on_ssl_ctx(CURL*, void* ssl_ctx, void* user) noexcept {
    auto* t = static_cast<Transfer*>(user);
    // Takes its own reference: the SSL_CTX may outlive this callback.
    if (SSL_CTX_set1_verify_cert_store(static_cast<SSL_CTX*>(ssl_ctx), t->trust) != 1) {
        return CURLE_SSL_CONNECT_ERROR;
    }
    SSL_CTX_set_cert_verify_callback(static_cast<SSL_CTX*>(ssl_ctx), on_verify, t);
    X509_VERIFY_PARAM* param = SSL_CTX_get0_param(static_cast<SSL_CTX*>(ssl_ctx));
    if (param == nullptr) {
        return CURLE_SSL_CONNECT_ERROR;
    }
    X509_VERIFY_PARAM_set_hostflags(
        param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(param, t->host.c_str(), t->host.size()) != 1) {
        return CURLE_SSL_CONNECT_ERROR;
    }
    return CURLE_OK;
}

bool is_tls_error(CURLcode rc) {
    switch (rc) {
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_USE_SSL_FAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_SHUTDOWN_FAILED:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CLIENTCERT:
            return true;
        default:
            return false;
    }
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

std::string_view trim(std::string_view s) {
    const auto ows = [](char c) { return c == ' ' || c == '\t'; };
    while (!s.empty() && ows(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && ows(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

class CurlFetcher final : public PolicyFetcher {
public:
    CurlFetcher(const FetchSettings& settings, DnsResolver& dns, std::shared_ptr<TrustStore> trust)
        : settings_(settings), dns_(dns), trust_(std::move(trust)) {}

    Lookup<FetchedPolicy> fetch(const DomainName& domain) override {
        const std::string host = domain.policy_host();
        FetchedPolicy out;
        out.url = policy_url(domain, settings_.port);

        auto addresses =
            usable_policy_addresses(host, dns_.addresses(host), settings_.private_addresses);
        if (addresses.failed()) {
            return addresses.failure();
        }
        // Held until the fetch returns, whatever reloads meanwhile.
        auto trust = trust_->acquire();
        if (trust.failed()) {
            Failure f = trust.failure();
            f.reason = out.url + ": " + f.reason;
            return f;
        }

        if (!curl_) {
            curl_.reset(curl_easy_init());
            if (!curl_) {
                return Failure::temp("https-error", "curl_easy_init failed");
            }
        } else {
            curl_easy_reset(curl_.get());
        }
        CURL* const curl = curl_.get();
        // CURLOPT_RESOLVE entries never expire in curl's DNS cache: drop
        // the previous fetch's pin before adding this one.
        CurlSlistPtr resolve;
        const std::string pin = host + ":" + std::to_string(settings_.port);
        if ((!last_pin_.empty() && !slist_append(resolve, ("-" + last_pin_).c_str())) ||
            !slist_append(resolve,
                          curl_resolve_entry(host, settings_.port, addresses.value()).c_str())) {
            return Failure::temp("https-error", "out of memory");
        }
        last_pin_ = pin;
        Transfer t;
        t.curl = curl;
        t.trust = trust.value().get();
        t.host = host;
        t.max_bytes = settings_.max_bytes;
        char errbuf[CURL_ERROR_SIZE] = {};

        std::string setup_error;
        auto check = [&](CURLcode rc, const char* what) {
            if (rc != CURLE_OK && setup_error.empty()) {
                setup_error = std::string(what) + ": " + curl_easy_strerror(rc);
            }
        };
#define STSGUARD_SETOPT(opt, value) check(curl_easy_setopt(curl, opt, value), #opt)
        STSGUARD_SETOPT(CURLOPT_ERRORBUFFER, errbuf);
        STSGUARD_SETOPT(CURLOPT_URL, out.url.c_str());
        STSGUARD_SETOPT(CURLOPT_PROTOCOLS_STR, "https");
        STSGUARD_SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "https");
        STSGUARD_SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
        STSGUARD_SETOPT(CURLOPT_HTTPGET, 1L);
        STSGUARD_SETOPT(CURLOPT_RESOLVE, resolve.get());
        STSGUARD_SETOPT(CURLOPT_FRESH_CONNECT, 1L);
        STSGUARD_SETOPT(CURLOPT_FORBID_REUSE, 1L);
        // No TLS resumption either: every fetch sees and checks the
        // certificate the server presents now.
        STSGUARD_SETOPT(CURLOPT_SSL_SESSIONID_CACHE, 0L);
        STSGUARD_SETOPT(CURLOPT_NOSIGNAL, 1L);
        STSGUARD_SETOPT(CURLOPT_USERAGENT, "stsguard/" STSGUARD_VERSION);
        // 0 would mean "no timeout" to curl: never wait forever.
        STSGUARD_SETOPT(
            CURLOPT_CONNECTTIMEOUT_MS,
            static_cast<long>(std::max<std::int64_t>(1, settings_.connect_timeout.count()) * 1000));
        STSGUARD_SETOPT(
            CURLOPT_TIMEOUT_MS,
            static_cast<long>(std::max<std::int64_t>(1, settings_.total_timeout.count()) * 1000));
        STSGUARD_SETOPT(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(settings_.max_bytes));
        STSGUARD_SETOPT(CURLOPT_WRITEFUNCTION, on_body);
        STSGUARD_SETOPT(CURLOPT_WRITEDATA, &t);
        STSGUARD_SETOPT(CURLOPT_HEADERFUNCTION, on_header);
        STSGUARD_SETOPT(CURLOPT_HEADERDATA, &t);
        // PKIX (RFC 8461 3.3): chain and DNS-ID, never the CN, TLS >= 1.2.
        STSGUARD_SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
        STSGUARD_SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
        STSGUARD_SETOPT(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
        STSGUARD_SETOPT(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        STSGUARD_SETOPT(CURLOPT_SSL_CTX_DATA, &t);
        // The trust anchors are the shared store on_ssl_ctx installs:
        // curl reads no CA file or directory of its own (after the reset
        // both are back at curl's compiled-in defaults).
        STSGUARD_SETOPT(CURLOPT_CAINFO, static_cast<const char*>(nullptr));
        STSGUARD_SETOPT(CURLOPT_CAPATH, static_cast<const char*>(nullptr));
        // "" disables the *_proxy environment variables.
        STSGUARD_SETOPT(CURLOPT_PROXY, settings_.proxy.c_str());
        if (settings_.proxy.empty()) {
            STSGUARD_SETOPT(CURLOPT_NOPROXY, "*");
        }
#undef STSGUARD_SETOPT
        if (!setup_error.empty()) {
            // E.g. a libcurl without OpenSSL refuses CURLOPT_SSL_CTX_FUNCTION:
            // never fetch without the CN-free host check.
            return Failure::temp("https-error", "cannot set up libcurl: " + setup_error);
        }

        const CURLcode rc = curl_easy_perform(curl);

        long status = 0;
        char* content_type = nullptr;
        char* redirect = nullptr;
        char* ip = nullptr;
        curl_off_t total_us = 0;
        long verify = X509_V_OK;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &content_type);
        curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &redirect);
        curl_easy_getinfo(curl, CURLINFO_PRIMARY_IP, &ip);
        curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME_T, &total_us);
        curl_easy_getinfo(curl, CURLINFO_SSL_VERIFYRESULT, &verify);
        if (t.verify_error != X509_V_OK) {
            verify = t.verify_error;
        }

        const std::string where = out.url + (ip && *ip ? std::string(" (") + ip + ")" : "");
        const std::string detail = errbuf[0] ? std::string(errbuf) : curl_easy_strerror(rc);
        const bool over_limit =
            (rc == CURLE_WRITE_ERROR && t.too_large) || rc == CURLE_FILESIZE_EXCEEDED;

        if (rc == CURLE_OK || over_limit) {
            // Status and Content-Type decide before the size: a 404 page
            // over 64 KiB is a 404.
            if (auto f = check_http_response(status, content_type ? content_type : "",
                                             redirect ? redirect : "")) {
                f->reason = where + ": " + f->reason;
                return *f;
            }
            if (over_limit) {
                return Failure::perm("policy-too-large", where + ": policy body exceeds " +
                                                             std::to_string(settings_.max_bytes) +
                                                             " bytes");
            }
            out.body = std::move(t.body);
            out.content_type = content_type ? content_type : "";
            out.http_status = status;
            out.remote_ip = ip ? ip : "";
            out.tls_version = std::move(t.tls_version);
            out.seconds = static_cast<double>(total_us) / 1e6;
            return out;
        }
        switch (rc) {
            case CURLE_OPERATION_TIMEDOUT:
                return Failure::temp("https-timeout", where + ": " + detail);
            case CURLE_COULDNT_CONNECT:
                return Failure::temp("https-connect", where + ": " + detail);
            case CURLE_PEER_FAILED_VERIFICATION:
                return cert_invalid(where, host, verify, detail);
            case CURLE_SSL_CACERT_BADFILE:
                // Not expected (curl loads no CA file; the TrustStore does,
                // and reports https-ca): still a local problem, not the
                // domain's, so never permanent.
                return Failure::temp("https-tls",
                                     where + ": cannot load CA certificates (" + detail + ")");
            default:
                if (is_tls_error(rc)) {
                    if (t.verify_error != X509_V_OK) {
                        return cert_invalid(where, host, t.verify_error, detail);
                    }
                    return Failure::temp("https-tls", where + ": " + detail);
                }
                return Failure::temp("https-error", where + ": " + detail);
        }
    }

private:
    static Failure cert_invalid(const std::string& where, const std::string& host, long verify,
                                const std::string& detail) {
        const std::string why =
            verify != X509_V_OK ? X509_verify_cert_error_string(verify) : detail;
        return Failure::perm("https-cert-invalid",
                             where + ": certificate not valid for " + host + ": " + why);
    }

    FetchSettings settings_;
    DnsResolver& dns_;
    std::shared_ptr<TrustStore> trust_;
    CurlEasyPtr curl_;
    std::string last_pin_;  // "host:port" pinned by the previous fetch
};

}  // namespace

void https_global_init() {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        throw std::runtime_error("curl_global_init failed");
    }
    const curl_version_info_data* v = curl_version_info(CURLVERSION_NOW);
    if (v == nullptr || v->ssl_version == nullptr ||
        std::string_view(v->ssl_version).find("OpenSSL") == std::string_view::npos) {
        throw std::runtime_error(std::string("libcurl must use OpenSSL for policy fetches, has: ") +
                                 (v && v->ssl_version ? v->ssl_version : "no TLS"));
    }
}

std::string policy_url(const DomainName& domain, int port) {
    std::string url = "https://" + domain.policy_host();
    if (port != 443) {
        url += ":" + std::to_string(port);
    }
    return url + "/.well-known/mta-sts.txt";
}

std::unique_ptr<PolicyFetcher> make_curl_fetcher(const FetchSettings& settings, DnsResolver& dns,
                                                 std::shared_ptr<TrustStore> trust) {
    if (!trust) {
        throw std::invalid_argument("make_curl_fetcher: no trust store");
    }
    if (trust->ca_file() != settings.ca_file || trust->ca_dir() != settings.ca_dir) {
        throw std::invalid_argument("make_curl_fetcher: the trust store was made for ca_file '" +
                                    trust->ca_file() + "', ca_dir '" + trust->ca_dir() +
                                    "', the fetcher is configured with '" + settings.ca_file +
                                    "', '" + settings.ca_dir + "'");
    }
    return std::make_unique<CurlFetcher>(settings, dns, std::move(trust));
}

std::optional<Failure> check_http_response(long status, const std::string& content_type,
                                           const std::string& location) {
    if (status >= 300 && status <= 399) {
        return Failure::perm("http-redirect",
                             "HTTP " + std::to_string(status) + " redirects to " +
                                 (location.empty() ? std::string("(no Location)") : location) +
                                 "; RFC 8461 3.3: redirects are not followed");
    }
    if (status != 200) {
        const std::string reason = "HTTP status " + std::to_string(status) + " (must be 200)";
        if (status >= 500 && status <= 599) {
            return Failure::temp("http-status", reason);
        }
        return Failure::perm("http-status", reason);
    }
    const std::string_view full = trim(content_type);
    if (full.empty()) {
        return Failure::perm("http-content-type", "no Content-Type (must be text/plain)");
    }
    const std::string media = lower(trim(full.substr(0, full.find(';'))));
    if (media != "text/plain") {
        return Failure::perm("http-content-type",
                             "Content-Type \"" + std::string(full) + "\" (must be text/plain)");
    }
    return std::nullopt;
}

}  // namespace stsguard
