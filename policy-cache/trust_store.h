// trust_store.h - the parsed PKIX trust anchors that every policy fetcher
// verifies against (RFC 8461 3.3: the policy host's certificate must chain
// to a trusted root).
//
// Parsing the system bundle (Debian: 145 roots) costs tens of
// milliseconds, so it is done once per process and shared: every fetcher
// installs the same X509_STORE in each TLS context it makes.  Nothing
// writes to a store once it is handed out (only a hashed directory's
// lookup caches what it reads, under OpenSSL's store lock), so sharing it
// between threads is safe.  The store is loaded lazily, by the first
// fetch that needs it (not at start-up), and again by the first fetch
// that finds it kTrustStoreMaxAge old, so a changed CA file is picked up
// within an hour or at once by a restart.  A fetch keeps the reference it
// was handed: a reload never frees a store under a handshake.  A failed
// load is not kept: the next fetch tries again (a missing file fails in
// microseconds, a repaired one is used at once).
//
// What is loaded: a configured ca_file and/or ca_dir (a hashed directory,
// as made by c_rehash/openssl rehash; its certificates are read lazily by
// OpenSSL at verification time) REPLACE the system store.  Otherwise the
// system store is the CA bundle file libcurl was built with (Debian:
// /etc/ssl/certs/ca-certificates.crt), else libcurl's CA directory, else
// OpenSSL's default locations.
//
// Failures: Failure::temp("https-ca", "cannot load trust store <path>:
// <reason>"), temporary because it is our configuration, not the domain's.
// Limits: the store is only as fresh as kTrustStoreMaxAge.
#pragma once

#include <openssl/ossl_typ.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "policy-cache/clock.h"
#include "policy-cache/https_fetcher.h"
#include "policy-cache/outcome.h"

namespace stsguard {

// How long a parsed store is used before the next fetch reads it again.
inline constexpr Seconds kTrustStoreMaxAge{3600};

// One counted reference to an X509_STORE (X509_STORE_free on release).
struct X509StoreUnref {
    void operator()(X509_STORE* s) const;
};
using X509StoreRef = std::unique_ptr<X509_STORE, X509StoreUnref>;

class TrustStore {
public:
    // Keeps settings.ca_file and settings.ca_dir; reads nothing yet.
    // `clock` ages the store and must outlive this object.
    TrustStore(const FetchSettings& settings, const Clock& clock);
    TrustStore(const TrustStore&) = delete;
    TrustStore& operator=(const TrustStore&) = delete;

    // A new reference to the current store, loading it first if there is
    // none yet or it is kTrustStoreMaxAge old.  Thread-safe; concurrent
    // callers wait for one load rather than each parsing the bundle.
    Lookup<X509StoreRef> acquire();

    // Successful loads so far: 1 after first use, +1 per reload.
    std::uint64_t loads() const;

    const std::string& ca_file() const { return ca_file_; }
    const std::string& ca_dir() const { return ca_dir_; }

private:
    Lookup<X509StoreRef> load() const;

    const std::string ca_file_;
    const std::string ca_dir_;
    const Clock& clock_;
    mutable std::mutex mu_;
    X509StoreRef store_;  // guarded by mu_, as are the two below
    UnixTime loaded_at_{};
    std::uint64_t loads_ = 0;
};

}  // namespace stsguard
