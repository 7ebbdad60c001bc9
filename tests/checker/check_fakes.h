// check_fakes.h - fakes for the checker's tests: a DNS fake with TLSA
// answers (tests/fakes.h's FakeResolver has none), a scripted STARTTLS
// probe, and a builder for a world of test domains.
//
// FakeProbe answers from a table keyed by "host address" and records the
// targets it was asked for; it is thread-safe (the pool calls it from
// several threads) and never sleeps.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "checker/check_gather.h"
#include "checker/probe_pool.h"
#include "policy-cache/discovery.h"
#include "tests/fakes.h"

namespace stsguard::testing {

class FakeDns final : public DnsResolver {
public:
    FakeResolver base;
    std::map<std::string, Lookup<TlsaAnswer>> tlsa_answers;

    Lookup<TxtAnswer> txt(const std::string& owner) override { return base.txt(owner); }
    Lookup<MxAnswer> mx(const DomainName& d) override { return base.mx(d); }
    Lookup<AddressAnswer> addresses(const std::string& host) override { return base.addresses(host); }
    Lookup<TlsaAnswer> tlsa(const std::string& owner) override {
        auto it = tlsa_answers.find(owner);
        if (it == tlsa_answers.end()) return NotFound{"NXDOMAIN"};
        return it->second;
    }

    void set_addresses(const std::string& host, std::vector<std::string> addrs) {
        AddressAnswer a;
        a.addresses = std::move(addrs);
        base.addr_answers.insert_or_assign(host, Lookup<AddressAnswer>(std::move(a)));
    }
};

// A probe result as a sender would see it.
inline ProbeResult probe_ok(const ProbeTarget& t) {
    ProbeResult r;
    r.host = t.host;
    r.address = t.address;
    r.port = t.port;
    r.reached = ProbeStage::done;
    r.tls_version = "TLSv1.3";
    r.cipher = "TLS_AES_256_GCM_SHA384";
    CertInfo c;
    c.subject = "CN=" + t.host;
    c.issuer = "CN=Test CA";
    c.dns_names = {t.host};
    c.not_before = from_unix(1'600'000'000);
    c.not_after = from_unix(1'800'000'000);
    c.chain = ChainStatus::trusted;
    c.name = NameMatch::matches;
    r.cert = c;
    return r;
}

inline ProbeResult probe_with_finding(const ProbeTarget& t, Severity sev, const std::string& code,
                                      const std::string& message) {
    ProbeResult r = probe_ok(t);
    r.findings.push_back({sev, code, message, 0});
    return r;
}

inline ProbeResult probe_failed(const ProbeTarget& t, ProbeStage stage, Failure f) {
    ProbeResult r;
    r.host = t.host;
    r.address = t.address;
    r.port = t.port;
    r.reached = stage;
    r.failure = std::move(f);
    return r;
}

enum class Probe { ok, expired, expiring, wrong_name, no_starttls, refused, timeout, banner_554 };

inline ProbeResult scripted(const ProbeTarget& t, Probe p) {
    switch (p) {
        case Probe::ok: return probe_ok(t);
        case Probe::expired:
            return probe_with_finding(t, Severity::error, "cert-expired", "certificate of " + t.host + " expired");
        case Probe::expiring:
            return probe_with_finding(t, Severity::warning, "cert-expiring-soon",
                                      "certificate of " + t.host + " expires in 3 days");
        case Probe::wrong_name:
            return probe_with_finding(t, Severity::error, "cert-name-mismatch",
                                      "certificate is not valid for " + t.host);
        case Probe::no_starttls:
            return probe_failed(t, ProbeStage::starttls,
                                Failure::perm("mx-no-starttls", "STARTTLS is not advertised in the EHLO reply"));
        case Probe::refused:
            return probe_failed(t, ProbeStage::connect, Failure::temp("mx-connect", "connection refused"));
        case Probe::timeout:
            return probe_failed(t, ProbeStage::banner, Failure::temp("mx-timeout", "no progress within 3000 ms"));
        case Probe::banner_554:
            return probe_failed(t, ProbeStage::banner, Failure::perm("mx-banner", "greeting is not 220: 554 go away"));
    }
    return probe_ok(t);
}

class FakeProbe {
public:
    std::map<std::string, Probe> table;  // "host address" -> behaviour; missing: ok

    ProbeResult operator()(const ProbeTarget& t, Deadline) {
        std::lock_guard lock(mu_);
        asked_.push_back(t);
        auto it = table.find(t.host + " " + t.address);
        return scripted(t, it == table.end() ? Probe::ok : it->second);
    }
    std::vector<ProbeTarget> asked() const {
        std::lock_guard lock(mu_);
        return asked_;
    }
    ProbeFn fn() {
        return [this](const ProbeTarget& t, Deadline dl) { return (*this)(t, dl); };
    }

private:
    mutable std::mutex mu_;
    std::vector<ProbeTarget> asked_;
};

// Test domains in the style of tests/world/domains.conf, built in fakes.
struct FakeWorld {
    FakeDns dns;
    FakeFetcher web;
    FakeProbe probe;
    ManualClock clock;

    // A domain with a TXT record, a policy, its MX hosts (each on one
    // IPv4 address 192.0.2.N) and a TLSRPT record.
    void add(const std::string& domain, const std::string& mode, const std::vector<std::string>& mx,
             std::vector<std::string> patterns = {}, long max_age = 604800) {
        if (patterns.empty()) patterns = mx;
        dns.base.set_txt("_mta-sts." + domain, {"v=STSv1; id=20240101T000000"});
        std::string body = "version: STSv1\nmode: " + mode + "\n";
        for (const auto& p : patterns) body += "mx: " + p + "\n";
        body += "max_age: " + std::to_string(max_age) + "\n";
        web.set_body(domain, body);
        add_mx(domain, mx);
        dns.base.set_txt("_smtp._tls." + domain, {"v=TLSRPTv1; rua=mailto:tlsrpt@" + domain});
    }
    void add_mx(const std::string& domain, const std::vector<std::string>& mx) {
        std::vector<MxHost> hosts;
        std::uint16_t pref = 10;
        for (const auto& h : mx) {
            hosts.push_back({pref, h});
            pref = static_cast<std::uint16_t>(pref + 10);
            if (!dns.base.addr_answers.count(h)) dns.set_addresses(h, {"192.0.2." + std::to_string(++next_addr_)});
        }
        dns.base.set_mx(domain, hosts);
    }
    std::string address_of(const std::string& host) {
        return dns.base.addr_answers.at(host).value().addresses.front();
    }
    void set_probe(const std::string& host, Probe p) { probe.table[host + " " + address_of(host)] = p; }

    CheckEnv env() {
        return CheckEnv{.dns = dns,
                        .fetcher = web,
                        .clock = clock,
                        .probe = probe.fn(),
                        .probe_concurrency = 8,
                        .probe_timeout = std::chrono::milliseconds(5000),
                        .probe_overall = std::chrono::milliseconds(0),
                        .store = nullptr,
                        .store_note = "test: no cache",
                        .smtp_port = 25};
    }
    DomainFacts gather(const std::string& domain, CheckScope scope = CheckScope::full) {
        return gather_facts(*DomainName::parse(domain), env(), scope);
    }

private:
    int next_addr_ = 0;
};

inline const CheckResult& check_of(const DomainReport& r, const std::string& id) {
    for (const auto& c : r.checks)
        if (c.id == id) return c;
    throw std::logic_error("no check " + id);
}

inline bool has_code(const Findings& fs, const std::string& code) {
    for (const auto& f : fs)
        if (f.code == code) return true;
    return false;
}

}  // namespace stsguard::testing
