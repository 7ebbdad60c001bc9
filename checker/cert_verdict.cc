#include "checker/cert_verdict.h"

#include <openssl/asn1.h>
#include <openssl/err.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "checker/openssl_handles.h"
#include "policy-cache/utc_time.h"

namespace stsguard {

namespace {

constexpr std::size_t kMaxDnsNames = 64;
constexpr std::size_t kMaxVerifyErrors = 16;
constexpr std::int64_t kDay = 86400;

std::string join_names(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) {
        if (!out.empty()) out += ", ";
        out += n;
    }
    return out;
}

Finding error(std::string code, std::string message) {
    return Finding{Severity::error, std::move(code), std::move(message), 0};
}

}  // namespace

const char* chain_status_name(ChainStatus s) {
    switch (s) {
        case ChainStatus::not_checked:
            return "not-checked";
        case ChainStatus::trusted:
            return "trusted";
        case ChainStatus::untrusted:
            return "untrusted";
    }
    return "not-checked";
}

const char* name_match_name(NameMatch m) {
    switch (m) {
        case NameMatch::not_checked:
            return "not-checked";
        case NameMatch::matches:
            return "matches";
        case NameMatch::mismatch:
            return "mismatch";
    }
    return "not-checked";
}

bool is_leaf_date_error(const VerifyError& e) {
    return e.depth == 0 &&
           (e.code == X509_V_ERR_CERT_HAS_EXPIRED || e.code == X509_V_ERR_CERT_NOT_YET_VALID);
}

// ---- pure judgement ---------------------------------------------------

Findings judge_certificate(const CertInfo& cert, std::string_view host, UnixTime now,
                           int expiry_warn_days) {
    Findings out;
    const std::string h = printable(host, 253);

    switch (cert.chain) {
        case ChainStatus::trusted:
            break;
        case ChainStatus::untrusted:
            out.push_back(
                error("cert-chain-invalid",
                      "certificate of " + h + " does not chain to a trusted root: " +
                          (cert.chain_error.empty() ? "verification failed" : cert.chain_error) +
                          " (RFC 8461 4.2)"));
            break;
        case ChainStatus::not_checked:
            out.push_back(
                error("cert-chain-invalid", "certificate chain of " + h + " was not verified"));
            break;
    }

    switch (cert.name) {
        case NameMatch::matches:
            break;
        case NameMatch::mismatch:
            if (cert.dns_names.empty()) {
                out.push_back(error(
                    "cert-name-mismatch",
                    "certificate of " + h + " has no subjectAltName DNS names; the subject CN (" +
                        cert.subject + ") is not used (RFC 8461 4.2, RFC 6125 6.4.4)"));
            } else {
                out.push_back(
                    error("cert-name-mismatch", "certificate is not valid for " + h +
                                                    ": subjectAltName DNS names are " +
                                                    join_names(cert.dns_names) +
                                                    " (a wildcard covers one left-most label only, "
                                                    "RFC 8461 4.2, RFC 6125 6.4.3)"));
            }
            break;
        case NameMatch::not_checked:
            out.push_back(
                error("cert-name-mismatch", "certificate name was not checked against " + h));
            break;
    }

    if (now < cert.not_before) {
        out.push_back(error("cert-not-yet-valid", "certificate of " + h + " is not valid before " +
                                                      utc_iso8601(cert.not_before) + " (now " +
                                                      utc_iso8601(now) + ")"));
    } else if (now > cert.not_after) {
        const auto ago = (to_unix(now) - to_unix(cert.not_after)) / kDay;
        out.push_back(error("cert-expired", "certificate of " + h + " expired on " +
                                                utc_iso8601(cert.not_after) + " (" +
                                                std::to_string(ago) + " days ago)"));
    } else {
        const auto left = to_unix(cert.not_after) - to_unix(now);
        if (expiry_warn_days > 0 && left < static_cast<std::int64_t>(expiry_warn_days) * kDay) {
            out.push_back(Finding{Severity::warning, "cert-expiring-soon",
                                  "certificate of " + h + " expires on " +
                                      utc_iso8601(cert.not_after) + " (in " +
                                      std::to_string(left / kDay) + " days; warning below " +
                                      std::to_string(expiry_warn_days) + " days)",
                                  0});
        }
    }
    return out;
}

std::optional<Finding> judge_tls_version(std::string_view version) {
    // SSL_get_version spellings; "TLSv1.2" and later are acceptable.
    constexpr std::string_view prefix = "TLSv1.";
    if (version.size() == prefix.size() + 1 && version.substr(0, prefix.size()) == prefix) {
        const char minor = version.back();
        if (minor >= '2' && minor <= '9') return std::nullopt;
    }
    return error("tls-version-old",
                 "negotiated " +
                     (version.empty() ? std::string("no TLS version") : printable(version, 32)) +
                     ", older than TLS 1.2 (RFC 8461 requires 1.2 or later)");
}

// ---- OpenSSL extraction ---------------------------------------------

namespace {

std::string name_text(const X509_NAME* name) {
    if (name == nullptr) return "";
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    if (!bio) return "";
    if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "";
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    if (n <= 0 || data == nullptr) return "";
    return printable(std::string_view(data, static_cast<std::size_t>(n)), 512);
}

UnixTime asn1_time(const ASN1_TIME* t) {
    std::tm tm{};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return UnixTime{};
    using namespace std::chrono;
    const year_month_day ymd{year{tm.tm_year + 1900}, month{static_cast<unsigned>(tm.tm_mon + 1)},
                             day{static_cast<unsigned>(tm.tm_mday)}};
    if (!ymd.ok()) return UnixTime{};
    return sys_days{ymd} + hours{tm.tm_hour} + minutes{tm.tm_min} + seconds{tm.tm_sec};
}

std::string hex_lower(const unsigned char* p, unsigned n) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (unsigned i = 0; i < n; ++i) {
        out += kHex[p[i] >> 4];
        out += kHex[p[i] & 0xf];
    }
    return out;
}

// C callback of X509_verify_cert: records every error and keeps going
// (returns 1) so that all problems of the chain are seen.  Must not throw.
int collect_verify_errors(int ok, X509_STORE_CTX* ctx) noexcept {
    if (ok != 0) return 1;
    auto* sink = static_cast<std::vector<VerifyError>*>(X509_STORE_CTX_get_app_data(ctx));
    if (sink == nullptr) return 0;
    const int code = X509_STORE_CTX_get_error(ctx);
    if (sink->size() < kMaxVerifyErrors) {
        try {
            sink->push_back(VerifyError{code, X509_STORE_CTX_get_error_depth(ctx),
                                        X509_verify_cert_error_string(code)});
        } catch (...) {
            return 0;  // out of memory: stop; the caller sees a failed verify
        }
    }
    return 1;
}

}  // namespace

CertInfo describe_certificate(X509* x) {
    CertInfo info;
    if (x == nullptr) return info;
    info.subject = name_text(X509_get_subject_name(x));
    info.issuer = name_text(X509_get_issuer_name(x));

    ossl::GeneralNames sans(
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr)));
    if (sans) {
        const int n = sk_GENERAL_NAME_num(sans.get());
        for (int i = 0; i < n && info.dns_names.size() < kMaxDnsNames; ++i) {
            const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans.get(), i);
            if (g == nullptr || g->type != GEN_DNS) continue;
            const ASN1_IA5STRING* s = g->d.dNSName;
            const auto* data = reinterpret_cast<const char*>(ASN1_STRING_get0_data(s));
            const int len = ASN1_STRING_length(s);
            if (data == nullptr || len < 0) continue;
            info.dns_names.push_back(
                printable(std::string_view(data, static_cast<std::size_t>(len)), 255));
        }
    }

    info.not_before = asn1_time(X509_get0_notBefore(x));
    info.not_after = asn1_time(X509_get0_notAfter(x));

    if (const ASN1_INTEGER* serial = X509_get0_serialNumber(x); serial != nullptr) {
        ossl::Bignum bn(ASN1_INTEGER_to_BN(serial, nullptr));
        if (bn) {
            ossl::OsslString hex(BN_bn2hex(bn.get()));
            if (hex) info.serial = hex.get();
        }
    }

    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    if (X509_digest(x, EVP_sha256(), md, &md_len) == 1) info.sha256 = hex_lower(md, md_len);
    return info;
}

ChainCheck verify_chain(X509_STORE* store, X509* leaf, STACK_OF(X509) * untrusted, UnixTime at) {
    ChainCheck out;
    out.status = ChainStatus::untrusted;
    if (store == nullptr || leaf == nullptr) {
        out.error = "no certificate or trust store";
        return out;
    }
    ossl::StoreCtx ctx(X509_STORE_CTX_new());
    if (!ctx || X509_STORE_CTX_init(ctx.get(), store, leaf, untrusted) != 1 ||
        X509_STORE_CTX_set_default(ctx.get(), "ssl_server") != 1) {
        ERR_clear_error();
        out.error = "cannot set up certificate verification";
        return out;
    }
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(to_unix(at)));
    X509_VERIFY_PARAM_set_auth_level(param, 2);
    X509_STORE_CTX_set_app_data(ctx.get(), &out.errors);
    X509_STORE_CTX_set_verify_cb(ctx.get(), collect_verify_errors);

    const int rc = X509_verify_cert(ctx.get());
    const int last = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();

    for (const auto& e : out.errors) {
        if (!is_leaf_date_error(e)) {
            out.error = e.text;
            if (e.depth > 0) out.error += " (chain depth " + std::to_string(e.depth) + ")";
            return out;
        }
    }
    if (rc != 1) {
        // Failed without the callback hearing of it (internal error).
        out.error = last != X509_V_OK ? X509_verify_cert_error_string(last)
                                      : "certificate verification failed";
        return out;
    }
    out.status = ChainStatus::trusted;
    return out;
}

NameMatch check_host_name(X509* leaf, std::string_view host) {
    if (leaf == nullptr || host.empty() || host.front() == '.') return NameMatch::mismatch;
    const unsigned flags =
        X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;
    const int rc = X509_check_host(leaf, host.data(), host.size(), flags, nullptr);
    ERR_clear_error();
    return rc == 1 ? NameMatch::matches : NameMatch::mismatch;
}

CertInfo inspect_certificate(X509_STORE* store, X509* leaf, STACK_OF(X509) * untrusted,
                             std::string_view host, UnixTime at) {
    CertInfo info = describe_certificate(leaf);
    ChainCheck chain = verify_chain(store, leaf, untrusted, at);
    info.chain = chain.status;
    info.chain_error = std::move(chain.error);
    info.verify_errors = std::move(chain.errors);
    info.name = check_host_name(leaf, host);
    return info;
}

}  // namespace stsguard
