#include "policy-cache/refresher.h"

namespace stsguard {

Refresher::Refresher(PolicyStore& store, const Clock& clock, RefreshSettings settings,
                     std::function<double()> jitter)
    : store_(store), clock_(clock), settings_(settings), jitter_(std::move(jitter)) {}

RefreshResult Refresher::refresh(const DomainName& domain, DnsResolver& dns, PolicyFetcher& fetcher) const {
    RefreshResult out;
    std::optional<CacheRecord> before;
    auto got = store_.get(domain);
    if (got.found()) before = std::move(got.value());
    else if (got.failed() && got.failure().code != "cache-record-corrupt") out.store_failure = got.failure();

    // Network I/O: no transaction is open here.
    UnixTime now = clock_.now();
    Attempt a{discover_txt(domain, dns), std::nullopt};
    if (a.txt.status == DiscoveryStatus::policy && needs_fetch(before, *a.txt.txt.id, now))
        a.fetch = fetch_policy(domain, fetcher);

    const double jitter = jitter_ ? jitter_() : 0.0;
    std::optional<CacheRecord> predicted = before;
    apply_attempt(predicted, domain, a, now, settings_, jitter);
    std::optional<Lookup<MxAnswer>> mx;
    if (predicted && predicted->policy_usable_at(now) && predicted->policy.mode != Mode::none &&
        now >= predicted->mx_expires_at)
        mx = dns.mx(domain);
    if (mx) apply_mx(*predicted, *mx, now, settings_);

    auto apply = [&](std::optional<CacheRecord>& rec) {
        apply_attempt(rec, domain, a, now, settings_, jitter);
        if (mx && rec) apply_mx(*rec, *mx, now, settings_);
    };
    std::optional<CacheRecord> stored;
    auto failure = store_.update(domain, [&](std::optional<CacheRecord>& rec) {
        apply(rec);
        stored = rec;
    });
    if (failure) {
        out.store_failure = failure;
        out.record = std::move(predicted);
    } else {
        out.record = std::move(stored);
    }
    out.attempt = std::move(a);
    return out;
}

}  // namespace stsguard
