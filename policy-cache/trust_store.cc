// trust_store.cc - load, share and age the fetchers' X509_STORE.  See
// trust_store.h.
//
// OpenSSL reports a missing file as three queued errors, the first a
// system error whose text is only "calling fopen(...)", and a directory
// given as a CA file as "no certificate or crl found": so the path is
// checked with stat() first and the reason is ours when we can name it,
// OpenSSL's root cause (the oldest queued error) otherwise.  The error
// queue is thread-local and curl reads it to classify a failed
// handshake on the same thread: it is left empty after every load.
#include "policy-cache/trust_store.h"

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <system_error>

#include "policy-cache/curl_handles.h"

namespace stsguard {

void X509StoreUnref::operator()(X509_STORE* s) const { X509_STORE_free(s); }

namespace {

std::string errno_text(int e) { return std::generic_category().message(e); }

// The root cause on OpenSSL's error queue; empties the queue.
std::string openssl_reason() {
    std::string reason;
    while (const unsigned long e = ERR_get_error()) {
        if (!reason.empty()) {
            continue;
        }
        if (ERR_SYSTEM_ERROR(e)) {
            reason = errno_text(ERR_GET_REASON(e));
        } else if (const char* r = ERR_reason_error_string(e)) {
            reason = r;
        }
    }
    return reason.empty() ? "unknown OpenSSL error" : reason;
}

Failure cannot_load(const std::string& what, const std::string& why) {
    return Failure::temp("https-ca", "cannot load trust store " + what + ": " + why);
}

enum class PathKind { file, directory };

// Why `path` cannot be the CA file or directory, if we can tell.
std::optional<std::string> unusable(const std::string& path, PathKind kind) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
        return errno_text(errno);
    }
    if (kind == PathKind::file && S_ISDIR(st.st_mode)) {
        return "is a directory, not a PEM file (a hashed directory is ca_dir)";
    }
    if (kind == PathKind::directory && !S_ISDIR(st.st_mode)) {
        return "not a directory (a PEM bundle is ca_file)";
    }
    if (access(path.c_str(), kind == PathKind::file ? R_OK : R_OK | X_OK) != 0) {
        return errno_text(errno);
    }
    return std::nullopt;
}

// All certificates of a PEM file, parsed now.
std::optional<Failure> load_file(X509_STORE* store, const std::string& path) {
    if (auto why = unusable(path, PathKind::file)) {
        return cannot_load(path, *why);
    }
    if (X509_STORE_load_file(store, path.c_str()) != 1) {
        return cannot_load(path, openssl_reason());
    }
    return std::nullopt;
}

// A hashed directory: OpenSSL reads a certificate when a chain needs it.
std::optional<Failure> load_dir(X509_STORE* store, const std::string& path) {
    if (auto why = unusable(path, PathKind::directory)) {
        return cannot_load(path, *why);
    }
    if (X509_STORE_load_path(store, path.c_str()) != 1) {
        return cannot_load(path, openssl_reason());
    }
    return std::nullopt;
}

// The CA file and directory libcurl was built with (either may be empty).
struct CurlDefaults {
    std::string file;
    std::string dir;
};

CurlDefaults curl_defaults() {
    CurlDefaults d;
    CurlEasyPtr curl(curl_easy_init());
    if (!curl) {
        return d;
    }
    char* s = nullptr;
    if (curl_easy_getinfo(curl.get(), CURLINFO_CAINFO, &s) == CURLE_OK && s != nullptr) {
        d.file = s;
    }
    s = nullptr;
    if (curl_easy_getinfo(curl.get(), CURLINFO_CAPATH, &s) == CURLE_OK && s != nullptr) {
        d.dir = s;
    }
    return d;
}

}  // namespace

TrustStore::TrustStore(const FetchSettings& settings, const Clock& clock)
    : ca_file_(settings.ca_file), ca_dir_(settings.ca_dir), clock_(clock) {}

Lookup<X509StoreRef> TrustStore::load() const {
    ERR_clear_error();
    X509StoreRef store(X509_STORE_new());
    if (!store) {
        ERR_clear_error();
        return Failure::temp("https-ca", "cannot create a trust store: out of memory");
    }
    std::optional<Failure> failed;
    if (!ca_file_.empty() || !ca_dir_.empty()) {
        if (!ca_file_.empty()) {
            failed = load_file(store.get(), ca_file_);
        }
        if (!failed && !ca_dir_.empty()) {
            failed = load_dir(store.get(), ca_dir_);
        }
    } else if (const CurlDefaults d = curl_defaults(); !d.file.empty()) {
        // The bundle alone, as curl used it: Debian's directory holds the
        // same roots, and a file is parsed once where a directory is
        // searched on every verification.
        failed = load_file(store.get(), d.file);
    } else if (!d.dir.empty()) {
        failed = load_dir(store.get(), d.dir);
    } else if (X509_STORE_set_default_paths(store.get()) != 1) {
        failed = cannot_load("(OpenSSL default locations)", openssl_reason());
    }
    // The flags libcurl sets on the stores it loads, so verification is
    // what it was when curl loaded the CA file itself: trusted
    // certificates are preferred while building the chain, and one that
    // is not self-signed may still be an anchor.
    if (!failed && X509_STORE_set_flags(store.get(), X509_V_FLAG_TRUSTED_FIRST |
                                                         X509_V_FLAG_PARTIAL_CHAIN) != 1) {
        failed = cannot_load("(flags)", openssl_reason());
    }
    ERR_clear_error();
    if (failed) {
        return *failed;
    }
    return store;
}

Lookup<X509StoreRef> TrustStore::acquire() {
    std::lock_guard<std::mutex> lock(mu_);
    const UnixTime now = clock_.now();
    // A clock set back also reloads: the age is unknown then.
    const bool fresh = store_ && now >= loaded_at_ && now - loaded_at_ < kTrustStoreMaxAge;
    if (!fresh) {
        // In-flight fetches hold their own references: dropping ours
        // frees nothing under them.
        store_.reset();
        auto loaded = load();
        if (loaded.failed()) {
            return loaded.failure();
        }
        store_ = std::move(loaded.value());
        loaded_at_ = now;
        ++loads_;
    }
    if (X509_STORE_up_ref(store_.get()) != 1) {
        return Failure::temp("https-ca", "cannot reference the trust store");
    }
    return X509StoreRef(store_.get());
}

std::uint64_t TrustStore::loads() const {
    std::lock_guard<std::mutex> lock(mu_);
    return loads_;
}

}  // namespace stsguard
