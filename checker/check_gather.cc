// check_gather.cc - DNS, HTTPS, cache and STARTTLS facts for one domain.
#include "checker/check_gather.h"

#include <algorithm>

namespace stsguard {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Times the policy fetch of discover() without changing it: the check
// reports how long the fetch took even when it failed.
class TimedFetcher final : public PolicyFetcher {
public:
    explicit TimedFetcher(PolicyFetcher& inner) : inner_(inner) {}
    Lookup<FetchedPolicy> fetch(const DomainName& domain) override {
        const auto t0 = SteadyClock::now();
        auto r = inner_.fetch(domain);
        seconds += std::chrono::duration<double>(SteadyClock::now() - t0).count();
        return r;
    }
    double seconds = 0;

private:
    PolicyFetcher& inner_;
};

void probe_hosts(DomainFacts& f, const CheckEnv& env) {
    std::vector<ProbeTarget> targets;
    std::vector<std::size_t> owner;  // targets[i] belongs to f.hosts[owner[i]]
    for (std::size_t h = 0; h < f.hosts.size(); ++h) {
        const MxHostFacts& host = f.hosts[h];
        if (!host.addresses || !host.addresses->found()) continue;
        const auto& addrs = host.addresses->value().addresses;
        for (std::size_t a = 0; a < addrs.size() && a < kMaxProbedAddresses; ++a) {
            targets.push_back(ProbeTarget{host.mx.host, addrs[a], env.smtp_port});
            owner.push_back(h);
        }
    }
    if (targets.empty()) return;
    const int conc = std::max(1, env.probe_concurrency);
    const auto rounds = static_cast<long>((targets.size() + static_cast<std::size_t>(conc) - 1) /
                                          static_cast<std::size_t>(conc));
    PoolSettings ps;
    ps.concurrency = conc;
    ps.overall_timeout = env.probe_overall.count() > 0
                             ? env.probe_overall
                             : env.probe_timeout * rounds + std::chrono::milliseconds(2000);
    ProbePool pool(env.probe, ps);
    std::vector<ProbeResult> results = pool.run(targets);
    for (std::size_t i = 0; i < results.size(); ++i) f.hosts[owner[i]].probes.push_back(std::move(results[i]));
}

}  // namespace

DomainFacts gather_facts(const DomainName& domain, const CheckEnv& env, CheckScope scope) {
    const auto t0 = SteadyClock::now();
    TimedFetcher timed(env.fetcher);
    DomainFacts f(domain, discover(domain, env.dns, timed));
    f.fetch_seconds = timed.seconds;
    f.now = env.clock.now();

    const Policy* p = valid_policy(f);
    const bool want_mx = scope == CheckScope::full || (p != nullptr && p->mode != Mode::none);
    if (want_mx) {
        f.mx = env.dns.mx(domain);
        if (f.mx->found()) {
            const auto& hosts = f.mx->value().hosts;
            for (std::size_t i = 0; i < hosts.size() && i < kMaxProbedHosts; ++i) {
                MxHostFacts h{.mx = hosts[i]};
                h.addresses = env.dns.addresses(hosts[i].host);
                if (scope == CheckScope::full) h.tlsa = env.dns.tlsa("_25._tcp." + hosts[i].host);
                f.hosts.push_back(std::move(h));
            }
            probe_hosts(f, env);
        }
    }
    if (scope == CheckScope::full) {
        f.tlsrpt = env.dns.txt(domain.tlsrpt_owner());
        if (env.store != nullptr) {
            f.cache.state = CacheFacts::State::checked;
            f.cache.record = env.store->get(domain);
        } else {
            f.cache.state = CacheFacts::State::unavailable;
            f.cache.note = env.store_note;
        }
    }
    f.seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    return f;
}

}  // namespace stsguard
