// openssl_handles.h - RAII owners for the OpenSSL objects the checker uses.
//
// Every OpenSSL handle the STARTTLS probe and the certificate verdict
// touch is owned by one of these std::unique_ptr aliases, so an early
// return (a timeout, a refused connection, a bad certificate) can never
// leak an SSL, an X509 or a store context.  Borrowed pointers (e.g.
// SSL_get_peer_cert_chain) stay raw and are documented where used.
//
// Failures: none (plain ownership).  Limits: none.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <memory>

namespace stsguard::ossl {

template <auto Fn>
struct Deleter {
    template <typename T>
    void operator()(T* p) const noexcept {
        if (p != nullptr) Fn(p);
    }
};

using SslCtx = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX_free>>;
using Ssl = std::unique_ptr<SSL, Deleter<SSL_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using Bignum = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using GeneralNames = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using X509Ext = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;

// Memory OpenSSL allocated with OPENSSL_malloc (BN_bn2hex and friends).
struct OpensslFree {
    void operator()(char* p) const noexcept { OPENSSL_free(p); }
};
using OsslString = std::unique_ptr<char, OpensslFree>;

// A STACK_OF(X509) that owns its certificates.
struct X509StackFree {
    void operator()(STACK_OF(X509) * s) const noexcept { sk_X509_pop_free(s, X509_free); }
};
using X509Stack = std::unique_ptr<STACK_OF(X509), X509StackFree>;

}  // namespace stsguard::ossl
