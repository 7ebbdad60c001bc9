// tls_test_util.h - certificates and tiny SMTP servers for the checker tests.
//
// Certificates are made at run time with OpenSSL (EC P-256 keys, a test
// CA, leaves with chosen SANs and dates), so no test needs files.  The
// SMTP servers listen on 127.0.0.1 ephemeral ports only; each serves one
// scripted connection in a std::thread owned by the server object and
// joined by its destructor.  Every blocking call in a server is bounded
// (poll / SO_RCVTIMEO of 5 s) so a broken test cannot hang.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "checker/openssl_handles.h"
#include "policy-cache/clock.h"

namespace stsguard::testing {

// ---- certificates --------------------------------------------------------

inline ossl::PKey make_p256_key() {
    ossl::PKey k(EVP_EC_gen("P-256"));
    if (!k) throw std::runtime_error("EVP_EC_gen failed");
    return k;
}

inline ossl::PKey make_rsa_key(unsigned bits) {
    ossl::PKey k(EVP_RSA_gen(bits));
    if (!k) throw std::runtime_error("EVP_RSA_gen failed");
    return k;
}

enum class CertRole { leaf, ca };

struct CertSpec {
    std::string cn = "mx.example.test";
    std::vector<std::string> dns;  // subjectAltName DNS names; empty: no SAN
    UnixTime not_before{};
    UnixTime not_after{};
    CertRole role = CertRole::leaf;
    long serial = 1;
    std::string eku = "serverAuth";  // extendedKeyUsage value; empty: none
};

struct KeyCert {
    ossl::PKey key;
    ossl::X509Ptr cert;
};

inline void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
    ossl::X509Ext ext(X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str()));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
        throw std::runtime_error("cannot add extension " + value);
}

// Signed by issuer, or self-signed when issuer is null.  key: the
// subject's key (a fresh P-256 key when null).
inline KeyCert make_cert(const CertSpec& spec, const KeyCert* issuer, ossl::PKey key = nullptr) {
    KeyCert out;
    out.key = key ? std::move(key) : make_p256_key();
    out.cert.reset(X509_new());
    X509* x = out.cert.get();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), spec.serial);
    ASN1_TIME_set(X509_getm_notBefore(x), static_cast<time_t>(to_unix(spec.not_before)));
    ASN1_TIME_set(X509_getm_notAfter(x), static_cast<time_t>(to_unix(spec.not_after)));
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert.get()) : name);
    X509_set_pubkey(x, out.key.get());
    X509* signer_cert = issuer ? issuer->cert.get() : x;
    if (spec.role == CertRole::ca) {
        add_ext(x, signer_cert, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, signer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, signer_cert, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, signer_cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        if (!spec.eku.empty()) add_ext(x, signer_cert, NID_ext_key_usage, spec.eku);
    }
    add_ext(x, signer_cert, NID_subject_key_identifier, "hash");
    if (issuer) add_ext(x, signer_cert, NID_authority_key_identifier, "keyid:always");
    if (!spec.dns.empty()) {
        std::string san;
        for (const auto& d : spec.dns) san += (san.empty() ? "DNS:" : ",DNS:") + d;
        add_ext(x, signer_cert, NID_subject_alt_name, san);
    }
    EVP_PKEY* signer = issuer ? issuer->key.get() : out.key.get();
    if (X509_sign(x, signer, EVP_sha256()) == 0) throw std::runtime_error("X509_sign failed");
    return out;
}

inline ossl::X509StorePtr store_with(X509* anchor) {
    ossl::X509StorePtr s(X509_STORE_new());
    X509_STORE_add_cert(s.get(), anchor);
    return s;
}

inline std::string to_pem(X509* x) {
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(bio.get(), x);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

// ---- sockets ---------------------------------------------------------------

// A listening TCP socket on 127.0.0.1, ephemeral port.
class Listener {
public:
    Listener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
            ::listen(fd_, 16) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error("cannot listen on 127.0.0.1");
        port_ = ntohs(a.sin_port);
    }
    ~Listener() { close(); }
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    int fd() const { return fd_; }
    int port() const { return port_; }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
    int port_ = 0;
};

// A port on 127.0.0.1 where nothing listens (bound, then closed).
inline int closed_port() {
    Listener l;
    return l.port();
}

// What a scripted SMTP server says.  Reply strings are raw bytes, CRLFs
// included, so tests can send malformed ones.
struct SmtpScript {
    std::string banner = "220-mx.example.test ESMTP test\r\n220 ready\r\n";
    std::string ehlo_reply =
        "250-mx.example.test hello\r\n250-PIPELINING\r\n250-starttls\r\n250 8BITMIME\r\n";
    std::string starttls_reply = "220 2.0.0 go ahead\r\n";
    const KeyCert* tls = nullptr;  // null: after the 220 to STARTTLS, see `silent`
    int tls_max_version = 0;       // e.g. TLS1_1_VERSION; 0: library default
    // Without tls: close at once, or stay silent until the client hangs up.
    enum class NoTls { close, silent } no_tls = NoTls::close;
};

// One scripted SMTP session on a 127.0.0.1 ephemeral port.
class SmtpServer {
public:
    explicit SmtpServer(SmtpScript script) : script_(std::move(script)) {
        thread_ = std::thread([this] { serve(); });
    }
    ~SmtpServer() {
        if (thread_.joinable()) thread_.join();
    }
    SmtpServer(const SmtpServer&) = delete;
    SmtpServer& operator=(const SmtpServer&) = delete;

    int port() const { return listener_.port(); }

    // Lines the client sent (plain and inside TLS); valid after join().
    void join() {
        if (thread_.joinable()) thread_.join();
    }
    std::vector<std::string> commands;
    std::string sni;          // server name the client sent
    std::string tls_version;  // negotiated, as the server saw it

private:
    static bool read_line(int fd, std::string& buf, std::string& line) {
        for (;;) {
            const auto nl = buf.find('\n');
            if (nl != std::string::npos) {
                line = buf.substr(0, nl);
                if (!line.empty() && line.back() == '\r') line.pop_back();
                buf.erase(0, nl + 1);
                return true;
            }
            char tmp[1024];
            const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
            if (n <= 0) return false;
            buf.append(tmp, static_cast<std::size_t>(n));
        }
    }

    static void say(int fd, const std::string& s) {
        (void)::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    }

    void serve() {
        // OpenSSL writes to the socket with write(): a client that hung up
        // must give EPIPE here, not kill the test process.
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe, nullptr);

        pollfd p{listener_.fd(), POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) return;
        const int fd = ::accept(listener_.fd(), nullptr, nullptr);
        if (fd < 0) return;
        timeval tv{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        converse(fd);
        ::close(fd);
    }

    void converse(int fd) {
        say(fd, script_.banner);
        std::string buf, line;
        while (read_line(fd, buf, line)) {
            commands.push_back(line);
            if (line.rfind("EHLO", 0) == 0) {
                say(fd, script_.ehlo_reply);
            } else if (line == "STARTTLS") {
                say(fd, script_.starttls_reply);
                if (script_.starttls_reply.rfind("220", 0) != 0) continue;
                if (script_.tls == nullptr) {
                    if (script_.no_tls == SmtpScript::NoTls::silent) {
                        char tmp[1024];
                        while (::recv(fd, tmp, sizeof tmp, 0) > 0) {
                        }
                    }
                    return;
                }
                return tls_session(fd);
            } else if (line == "QUIT") {
                say(fd, "221 bye\r\n");
                return;
            } else {
                say(fd, "502 unknown\r\n");
            }
        }
    }

    void tls_session(int fd) {
        ossl::SslCtx ctx(SSL_CTX_new(TLS_server_method()));
        SSL_CTX_use_certificate(ctx.get(), script_.tls->cert.get());
        SSL_CTX_use_PrivateKey(ctx.get(), script_.tls->key.get());
        if (script_.tls_max_version != 0) {
            SSL_CTX_set_security_level(ctx.get(), 0);
            SSL_CTX_set_min_proto_version(ctx.get(), TLS1_VERSION);
            SSL_CTX_set_max_proto_version(ctx.get(), script_.tls_max_version);
        }
        ossl::Ssl ssl(SSL_new(ctx.get()));
        SSL_set_fd(ssl.get(), fd);
        if (SSL_accept(ssl.get()) != 1) {
            ERR_clear_error();
            return;
        }
        if (const char* n = SSL_get_servername(ssl.get(), TLSEXT_NAMETYPE_host_name)) sni = n;
        tls_version = SSL_get_version(ssl.get());
        // Read what the client sends under TLS (QUIT), never answer: the
        // client closes without waiting.
        std::string buf;
        char tmp[1024];
        int n = 0;
        while ((n = SSL_read(ssl.get(), tmp, sizeof tmp)) > 0)
            buf.append(tmp, static_cast<std::size_t>(n));
        ERR_clear_error();
        std::string line;
        while (!buf.empty()) {
            const auto nl = buf.find('\n');
            line = buf.substr(0, nl == std::string::npos ? buf.size() : nl);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            commands.push_back("TLS: " + line);
            buf.erase(0, nl == std::string::npos ? buf.size() : nl + 1);
        }
    }

    SmtpScript script_;
    Listener listener_;  // bound before the thread starts
    std::thread thread_;
};

}  // namespace stsguard::testing
