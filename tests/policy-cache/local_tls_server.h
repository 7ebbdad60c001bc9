// local_tls_server.h - test helper: a throwaway CA and an HTTPS server on
// 127.0.0.1 (OpenSSL, one thread), for the policy fetcher tests.
//
// The server answers every connection with one canned HTTP response and
// records the last request.  Bounded: it stops 5 s after start or when
// destroyed, every socket read/write has a 2 s timeout, and SIGPIPE is
// blocked in its thread (a client aborting mid-response must not kill
// the test binary).  Never listens beyond 127.0.0.1.
#pragma once

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tests/temp_dir.h"

namespace stsguard_test {

using stsguard::testing::TempDir;

struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
struct SslCtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

enum class Validity { current, expired };
enum class Role { leaf, ca };

struct CertSpec {
    CertSpec(std::string cn_, std::string san_, Validity v = Validity::current, Role r = Role::leaf)
        : cn(std::move(cn_)), san(std::move(san_)), validity(v), role(r) {}
    std::string cn;
    std::string san;  // "DNS:a,DNS:b" or "" for none
    Validity validity;
    Role role;
};

inline void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    REQUIRE(ext != nullptr);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

// A certificate for `key`, signed by issuer_key (issuer == nullptr: self-signed).
inline X509Ptr make_cert(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
    static std::atomic<long> serial{1};
    X509Ptr cert(X509_new());
    REQUIRE(cert);
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
    if (spec.validity == Validity::current) {
        X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
        X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
    } else {
        X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3 * 86400);
        X509_gmtime_adj(X509_getm_notAfter(cert.get()), -86400);
    }
    X509_set_pubkey(cert.get(), key);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1, 0);
    X509* signer = issuer ? issuer : cert.get();
    X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
    if (spec.role == Role::ca) {
        add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(cert.get(), signer, NID_ext_key_usage, "serverAuth");
    }
    add_ext(cert.get(), signer, NID_subject_key_identifier, "hash");
    if (!spec.san.empty()) add_ext(cert.get(), signer, NID_subject_alt_name, spec.san);
    REQUIRE(X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return cert;
}

inline PkeyPtr new_key() {
    PkeyPtr k(EVP_EC_gen("P-256"));
    REQUIRE(k);
    return k;
}

// A private CA whose certificate is written to a temporary PEM file.
class TestCa {
public:
    explicit TestCa(const std::string& name = "stsguard test CA") : key_(new_key()) {
        cert_ = make_cert({name, "", Validity::current, Role::ca}, key_.get(), nullptr, nullptr);
        path_ = dir_.path() + "/ca.pem";
        FILE* f = std::fopen(path_.c_str(), "w");
        REQUIRE(f != nullptr);
        PEM_write_X509(f, cert_.get());
        std::fclose(f);
    }
    const std::string& path() const { return path_; }
    X509Ptr issue(const CertSpec& spec, EVP_PKEY* key) const {
        return make_cert(spec, key, cert_.get(), key_.get());
    }

private:
    TempDir dir_;  // holds ca.pem; removed with the CA
    PkeyPtr key_;
    X509Ptr cert_;
    std::string path_;
};

// Serves canned HTTP responses over TLS on 127.0.0.1 from a thread.
// Bounded: gives up 5 s after start; every socket read has a timeout.
class TlsServer {
public:
    struct Options {
        int max_tls_version = 0;  // 0: OpenSSL default
    };

    TlsServer(X509* cert, EVP_PKEY* key, std::string response)
        : TlsServer(cert, key, std::move(response), Options{}) {}
    TlsServer(X509* cert, EVP_PKEY* key, std::string response, Options opt)
        : response_(std::move(response)) {
        ctx_.reset(SSL_CTX_new(TLS_server_method()));
        REQUIRE(ctx_);
        REQUIRE(SSL_CTX_use_certificate(ctx_.get(), cert) == 1);
        REQUIRE(SSL_CTX_use_PrivateKey(ctx_.get(), key) == 1);
        if (opt.max_tls_version) {
            SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_VERSION);
            SSL_CTX_set_max_proto_version(ctx_.get(), opt.max_tls_version);
            SSL_CTX_set_security_level(ctx_.get(), 0);
        }
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(listen(fd_, 8) == 0);
        socklen_t len = sizeof a;
        REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~TlsServer() {
        stop_ = true;
        thread_.join();
        close(fd_);
    }
    int port() const { return port_; }
    // Connections accepted so far (TLS handshake or not).
    int connections() const { return connections_; }
    // Present another certificate from the next connection on.
    void use_certificate(X509* cert, EVP_PKEY* key) {
        std::lock_guard l(m_);
        REQUIRE(SSL_CTX_use_certificate(ctx_.get(), cert) == 1);
        REQUIRE(SSL_CTX_use_PrivateKey(ctx_.get(), key) == 1);
    }
    std::string request() const {
        std::lock_guard l(m_);
        return request_;
    }

private:
    void serve() {
        // A client that aborts mid-response must not SIGPIPE the test
        // binary: the signal goes to this thread, which blocks it.
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!stop_ && std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, 50) <= 0) continue;
            const int c = accept(fd_, nullptr, nullptr);
            if (c < 0) continue;
            ++connections_;
            timeval tv{2, 0};
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            handle(c);
            close(c);
        }
    }

    void handle(int c) {
        SslPtr ssl;
        {
            std::lock_guard l(m_);
            ssl.reset(SSL_new(ctx_.get()));
        }
        if (!ssl) return;
        SSL_set_fd(ssl.get(), c);
        if (SSL_accept(ssl.get()) != 1) return;  // e.g. the client refused our certificate
        std::string req;
        char buf[4096];
        while (req.find("\r\n\r\n") == std::string::npos && req.size() < 65536) {
            const int n = SSL_read(ssl.get(), buf, sizeof buf);
            if (n <= 0) break;
            req.append(buf, static_cast<std::size_t>(n));
        }
        {
            std::lock_guard l(m_);
            request_ = req;
        }
        std::size_t off = 0;
        while (off < response_.size()) {
            const int n =
                SSL_write(ssl.get(), response_.data() + off,
                          static_cast<int>(std::min<std::size_t>(response_.size() - off, 16384)));
            if (n <= 0) break;
            off += static_cast<std::size_t>(n);
        }
        SSL_shutdown(ssl.get());
    }

    SslCtxPtr ctx_;
    std::string response_;
    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> connections_{0};
    mutable std::mutex m_;
    std::string request_;
    std::thread thread_;
};

}  // namespace stsguard_test
