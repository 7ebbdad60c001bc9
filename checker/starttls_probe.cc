#include "checker/starttls_probe.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <unistd.h>

#include "checker/openssl_handles.h"
#include "checker/probe_io.h"
#include "policy-cache/domain_name.h"

namespace stsguard {

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const char* stage_activity(ProbeStage s) {
    switch (s) {
        case ProbeStage::connect:
            return "connecting";
        case ProbeStage::banner:
            return "waiting for the banner";
        case ProbeStage::ehlo:
            return "waiting for the EHLO reply";
        case ProbeStage::starttls:
            return "waiting for the STARTTLS reply";
        case ProbeStage::handshake:
            return "during the TLS handshake";
        case ProbeStage::done:
            return "closing";
    }
    return "";
}

const char* stage_code(ProbeStage s) {
    switch (s) {
        case ProbeStage::connect:
            return "mx-connect";
        case ProbeStage::banner:
            return "mx-banner";
        case ProbeStage::ehlo:
            return "mx-ehlo";
        case ProbeStage::starttls:
            return "mx-no-starttls";
        case ProbeStage::handshake:
        case ProbeStage::done:
            return "mx-tls-handshake";
    }
    return "mx-connect";
}

// The Failure for an I/O error at `stage`: timeouts are mx-timeout
// whatever the stage, the rest get the stage's code.
Failure io_failure(ProbeStage stage, const IoError& e, const SmtpConnection& c,
                   const Endpoint& ep) {
    if (e.kind == Io::timeout)
        return Failure::temp("mx-timeout", "no progress within " +
                                               std::to_string(c.elapsed().count()) + " ms " +
                                               stage_activity(stage) + " (" + ep.text + ")");
    return Failure::temp(stage_code(stage), e.detail);
}

// A 4xx reply is temporary, 5xx permanent (RFC 5321 4.2.1).
Failure reply_failure(const char* code, const std::string& what, const Reply& r) {
    const std::string reason = what + ": " + reply_text(r);
    return r.code >= 500 ? Failure::perm(code, reason) : Failure::temp(code, reason);
}

// Handshake verification is deferred: inspect_certificate() verifies the
// chain after the handshake at the injected clock's time.
int accept_chain_for_later(X509_STORE_CTX*, void*) { return 1; }

}  // namespace

const char* probe_stage_name(ProbeStage s) {
    switch (s) {
        case ProbeStage::connect:
            return "connect";
        case ProbeStage::banner:
            return "banner";
        case ProbeStage::ehlo:
            return "ehlo";
        case ProbeStage::starttls:
            return "starttls";
        case ProbeStage::handshake:
            return "handshake";
        case ProbeStage::done:
            return "done";
    }
    return "connect";
}

ProbeSettings probe_settings(const Config& c) {
    ProbeSettings s;
    s.timeout = std::chrono::duration_cast<milliseconds>(c.probe_timeout);
    s.ca_file = c.tls_ca_file;
    s.ca_dir = c.tls_ca_dir;
    s.cert_expiry_warn_days = c.cert_expiry_warn_days;
    return s;
}

std::string default_ehlo_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) == 0) {
        auto name = DomainName::parse(buf);
        if (name && name->str().find('.') != std::string::npos) return name->str();
    }
    return "stsguard.invalid";
}

struct StarttlsProber::Impl {
    ossl::SslCtx ctx;
    std::string ehlo_name;

    // Runs the stages; sets result.reached / failure / TLS fields.
    void run(const StarttlsProber& self, const std::string& host, const Endpoint& ep, Deadline dl,
             ProbeResult& r) const;
};

StarttlsProber::StarttlsProber(ProbeSettings s, const Clock& clock, std::unique_ptr<Impl> impl)
    : settings_(std::move(s)), clock_(clock), impl_(std::move(impl)) {}

StarttlsProber::~StarttlsProber() = default;

Lookup<std::unique_ptr<StarttlsProber>> StarttlsProber::create(ProbeSettings settings,
                                                               const Clock& clock) {
    auto impl = std::make_unique<Impl>();
    if (settings.ehlo_name.empty()) {
        impl->ehlo_name = default_ehlo_name();
    } else {
        std::string why;
        auto name = DomainName::parse(settings.ehlo_name, &why);
        if (!name)
            return Failure::perm("probe-setup", "invalid EHLO name \"" +
                                                    printable(settings.ehlo_name) + "\": " + why);
        impl->ehlo_name = name->str();
    }
    if (settings.timeout <= milliseconds::zero())
        return Failure::perm("probe-setup", "probe timeout must be positive");

    ERR_clear_error();
    impl->ctx.reset(SSL_CTX_new(TLS_client_method()));
    if (!impl->ctx) return Failure::perm("probe-setup", openssl_error_text("SSL_CTX_new failed"));
    SSL_CTX* ctx = impl->ctx.get();
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_cert_verify_callback(ctx, accept_chain_for_later, nullptr);

    const bool any_source =
        !settings.ca_file.empty() || !settings.ca_dir.empty() || !settings.ca_pem.empty();
    if (!settings.ca_file.empty() || !settings.ca_dir.empty()) {
        const char* file = settings.ca_file.empty() ? nullptr : settings.ca_file.c_str();
        const char* dir = settings.ca_dir.empty() ? nullptr : settings.ca_dir.c_str();
        if (SSL_CTX_load_verify_locations(ctx, file, dir) != 1)
            return Failure::perm("probe-setup", "cannot load CA file \"" + settings.ca_file +
                                                    "\" / dir \"" + settings.ca_dir +
                                                    "\": " + openssl_error_text("unknown error"));
    }
    if (!settings.ca_pem.empty()) {
        ossl::Bio bio(
            BIO_new_mem_buf(settings.ca_pem.data(), static_cast<int>(settings.ca_pem.size())));
        int added = 0;
        while (bio) {
            ossl::X509Ptr x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
            if (!x) break;
            if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x.get()) == 1) ++added;
        }
        ERR_clear_error();  // the end of the text reads as "no start line"
        if (added == 0)
            return Failure::perm("probe-setup", "no usable certificate in the CA PEM text");
    }
    if (!any_source && SSL_CTX_set_default_verify_paths(ctx) != 1)
        return Failure::perm("probe-setup", "cannot load the system trust store: " +
                                                openssl_error_text("unknown error"));
    ERR_clear_error();

    return std::unique_ptr<StarttlsProber>(
        new StarttlsProber(std::move(settings), clock, std::move(impl)));
}

ProbeResult StarttlsProber::probe(const ProbeTarget& target) const {
    return probe(target, Deadline::max());
}

ProbeResult StarttlsProber::probe(const ProbeTarget& target, Deadline overall) const {
    const auto start = SteadyClock::now();
    const Deadline dl = std::min(overall, start + settings_.timeout);
    ProbeResult r;
    r.host = target.host;
    r.address = target.address;
    r.port = target.port;

    std::string why;
    auto host = DomainName::parse(target.host, &why);
    auto ep = parse_endpoint(target.address, target.port);
    if (!host) {
        r.failure = Failure::perm(
            "probe-target", "invalid MX host name \"" + printable(target.host) + "\": " + why);
    } else if (target.port < 1 || target.port > 65535) {
        r.failure = Failure::perm("probe-target", "invalid port " + std::to_string(target.port));
    } else if (!ep) {
        r.failure = Failure::perm(
            "probe-target", "\"" + printable(target.address) + "\" is not an IPv4 or IPv6 address");
    } else {
        impl_->run(*this, host->str(), *ep, dl, r);
    }
    r.seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
    return r;
}

void StarttlsProber::Impl::run(const StarttlsProber& self, const std::string& host,
                               const Endpoint& ep, Deadline dl, ProbeResult& r) const {
    const ProbeSettings& cfg = self.settings_;
    SmtpConnection c(dl, cfg.max_line_bytes, cfg.max_reply_bytes, r.transcript);
    auto fail_io = [&](const IoError& e) { r.failure = io_failure(r.reached, e, c, ep); };

    r.reached = ProbeStage::connect;
    if (auto e = c.connect(ep)) {
        if (e->kind != Io::timeout) e->detail = "connect to " + ep.text + ": " + e->detail;
        return fail_io(*e);
    }
    c.note("-- connected to " + ep.text);

    Reply reply;
    r.reached = ProbeStage::banner;
    if (auto e = c.read_reply(reply)) return fail_io(*e);
    if (reply.code != 220) {
        r.failure = reply_failure("mx-banner", "greeting is not 220", reply);
        return c.quit_plain();
    }

    r.reached = ProbeStage::ehlo;
    if (auto e = c.command("EHLO " + ehlo_name)) return fail_io(*e);
    if (auto e = c.read_reply(reply)) return fail_io(*e);
    if (reply.code != 250) {
        r.failure = reply_failure("mx-ehlo", "EHLO rejected", reply);
        return c.quit_plain();
    }

    r.reached = ProbeStage::starttls;
    if (!advertises_starttls(reply)) {
        r.failure = Failure::perm("mx-no-starttls",
                                  "STARTTLS is not advertised in the EHLO reply (RFC 3207)");
        return c.quit_plain();
    }
    if (auto e = c.command("STARTTLS")) return fail_io(*e);
    if (auto e = c.read_reply(reply)) return fail_io(*e);
    if (reply.code != 220) {
        r.failure = reply_failure("mx-no-starttls", "STARTTLS answered", reply);
        return c.quit_plain();
    }

    r.reached = ProbeStage::handshake;
    if (c.buffered() > 0) {
        // Plain text after the 220 would be taken as protected later
        // (STARTTLS response injection): refuse, as a careful client must.
        r.failure = Failure::temp("mx-tls-handshake",
                                  "the server sent " + std::to_string(c.buffered()) +
                                      " bytes of plain text after its 220 reply to STARTTLS");
        return;
    }
    ERR_clear_error();
    ossl::Ssl ssl(SSL_new(ctx.get()));
    if (!ssl) {
        r.failure = Failure::temp("mx-tls-handshake", openssl_error_text("SSL_new failed"));
        return;
    }
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
    SSL_set_connect_state(ssl.get());
    if (auto e = tls_handshake(c, ssl.get())) return fail_io(*e);

    r.tls_version = SSL_get_version(ssl.get());
    if (const SSL_CIPHER* ci = SSL_get_current_cipher(ssl.get()))
        r.cipher = SSL_CIPHER_get_name(ci);
    c.note("-- TLS " + r.tls_version + " " + r.cipher);
    ossl::X509Ptr leaf(SSL_get1_peer_certificate(ssl.get()));
    if (!leaf) {
        r.failure = Failure::temp("mx-tls-handshake", "the server presented no certificate");
        return tls_quit(c, ssl.get());
    }
    r.reached = ProbeStage::done;
    STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl.get());  // borrowed from ssl
    const UnixTime now = self.clock_.now();
    CertInfo info =
        inspect_certificate(SSL_CTX_get_cert_store(ctx.get()), leaf.get(), chain, host, now);
    r.findings = judge_certificate(info, host, now, cfg.cert_expiry_warn_days);
    if (auto v = judge_tls_version(r.tls_version)) r.findings.push_back(std::move(*v));
    r.cert = std::move(info);
    tls_quit(c, ssl.get());
}

}  // namespace stsguard
