#include "policy-cache/refresh_rules.h"

#include <algorithm>
#include <cmath>

namespace stsguard {
namespace {

Seconds jittered(Seconds d, double jitter) {
    jitter = std::clamp(jitter, 0.0, 1.0);
    return d + Seconds{static_cast<std::int64_t>(static_cast<double>(d.count()) * 0.1 * jitter)};
}

// When to look again at a domain whose policy was just confirmed.
UnixTime next_check_with_policy(const CacheRecord& r, UnixTime now, const RefreshSettings& s,
                                double jitter) {
    UnixTime by_txt = now + jittered(s.txt_check_interval, jitter);
    // Re-fetch once half the lifetime is gone (needs_fetch() agrees).
    UnixTime half_life = r.fetched_at + Seconds{r.policy.max_age.count() / 2};
    return std::max(std::min(by_txt, half_life), now + kMinRetryDelay);
}

void record_failure(CacheRecord& r, const std::string& code, const std::string& text, FailureKind kind,
                    UnixTime now, const RefreshSettings& s, double jitter) {
    ++r.consecutive_failures;
    r.last_outcome = {kind == FailureKind::temporary ? OutcomeKind::temporary : OutcomeKind::permanent, code,
                      text};
    UnixTime retry = now + std::max(jittered(backoff(r.consecutive_failures, s), jitter), kMinRetryDelay);
    if (r.policy_usable_at(now)) {
        // Keep checking at least as often as a healthy domain.
        retry = std::min(retry, now + std::max(s.txt_check_interval, kMinRetryDelay));
    }
    r.next_refresh = retry;
}

}  // namespace

RefreshSettings refresh_settings(const Config& c) {
    RefreshSettings s;
    s.txt_check_interval = c.txt_check_interval;
    s.refresh_unused_after = c.refresh_unused_after;
    s.negative_cache_ttl = c.negative_cache_ttl;
    s.failure_backoff_min = c.failure_backoff_min;
    s.failure_backoff_max = c.failure_backoff_max;
    return s;
}

Assessment assess(const std::optional<CacheRecord>& rec, UnixTime now) {
    Assessment a;
    if (!rec) return a;  // unknown, now
    const CacheRecord& r = *rec;
    if (r.policy_usable_at(now)) {
        a.use = Assessment::Use::policy;
        a.remaining = std::chrono::duration_cast<Seconds>(r.expires_at - now);
        a.refresh = now >= r.next_refresh ? Assessment::Refresh::background : Assessment::Refresh::none;
        a.mx_stale = r.policy.mode != Mode::none && now >= r.mx_expires_at;
        return a;
    }
    if (now < r.next_refresh && r.last_outcome.kind != OutcomeKind::ok) {
        // Remembered outcome still in force (negative cache or back-off).
        // A policy that simply ran out (last outcome ok) is rediscovered.
        a.refresh = Assessment::Refresh::none;
        a.use = r.last_outcome.kind == OutcomeKind::temporary ? Assessment::Use::temp_failure
                                                                : Assessment::Use::no_policy;
        return a;
    }
    return a;  // expired, or the negative entry ran out: discover now
}

bool needs_fetch(const std::optional<CacheRecord>& rec, const PolicyId& id, UnixTime now) {
    if (!rec || !rec->policy_usable_at(now)) return true;
    if (!rec->policy_id || !(*rec->policy_id == id)) return true;  // 3.1: a new id means a new policy
    // Same id: refetch once half the lifetime is used, to extend it.
    return now >= rec->fetched_at + Seconds{rec->policy.max_age.count() / 2};
}

Seconds backoff(std::uint32_t failures, const RefreshSettings& s) {
    if (failures == 0) return Seconds{0};
    std::int64_t d = s.failure_backoff_min.count();
    for (std::uint32_t i = 1; i < failures && d < s.failure_backoff_max.count(); ++i) d *= 2;
    return std::min(Seconds{d}, s.failure_backoff_max);
}

void apply_attempt(std::optional<CacheRecord>& rec, const DomainName& domain, const Attempt& a, UnixTime now,
                   const RefreshSettings& s, double jitter) {
    if (!rec) rec.emplace(domain);
    CacheRecord& r = *rec;
    const TxtStep& txt = a.txt;

    if (txt.status == DiscoveryStatus::failed) {
        record_failure(r, txt.code, txt.reason, txt.failure_kind.value_or(FailureKind::temporary), now, s, jitter);
        return;
    }
    r.last_checked = now;
    if (txt.status == DiscoveryStatus::no_policy) {
        if (r.policy_usable_at(now)) {
            // Downgrade protection (RFC 8461 5): the TXT record vanished or
            // broke, but the cached policy stays until it expires.
            record_failure(r, txt.code, txt.reason, FailureKind::permanent, now, s, jitter);
            return;
        }
        r.state = PolicyState::no_policy;
        r.consecutive_failures = 0;
        r.last_outcome = {OutcomeKind::no_policy, txt.code, txt.reason};
        r.next_refresh = now + std::max(jittered(s.negative_cache_ttl, jitter), kMinRetryDelay);
        return;
    }

    // A valid TXT record.
    if (!a.fetch) {
        // The id is unchanged and the policy young enough: confirmed.
        r.consecutive_failures = 0;
        r.last_outcome = {OutcomeKind::ok, "txt-id-unchanged", txt.reason};
        r.next_refresh = next_check_with_policy(r, now, s, jitter);
        return;
    }
    const FetchStep& f = *a.fetch;
    if (f.status == DiscoveryStatus::policy && f.parse && f.parse->policy && txt.txt.id) {
        r.set_policy(f.fetched ? f.fetched->body : std::string(), *f.parse->policy, *txt.txt.id, now);
        r.consecutive_failures = 0;
        r.last_outcome = {OutcomeKind::ok, f.code, f.reason};
        r.mx_expires_at = UnixTime{};  // re-read the MX set against the new patterns
        r.next_refresh = next_check_with_policy(r, now, s, jitter);
        return;
    }
    // The fetch failed or the policy is invalid: never weakens a usable
    // cached policy (downgrade protection); without one, the domain is
    // treated as having no policy until the back-off ends.
    if (!r.policy_usable_at(now)) r.state = PolicyState::no_policy;
    record_failure(r, f.code, f.reason, f.failure_kind.value_or(FailureKind::permanent), now, s, jitter);
}

void apply_mx(CacheRecord& rec, const Lookup<MxAnswer>& mx, UnixTime now, const RefreshSettings& s) {
    if (mx.failed()) return;
    if (mx.not_found()) {
        rec.mx_hosts.clear();
        rec.mx_expires_at = now + s.mx_ttl_min;
        return;
    }
    rec.mx_hosts.clear();
    for (const auto& h : mx.value().hosts) rec.mx_hosts.push_back(h.host);
    Seconds ttl{mx.value().meta.ttl};
    rec.mx_expires_at = now + std::clamp(ttl, s.mx_ttl_min, s.mx_ttl_max);
}

bool due_for_background_refresh(const CacheRecord& rec, UnixTime now, const RefreshSettings& s) {
    if (now < rec.next_refresh) return false;
    if (rec.last_used + s.refresh_unused_after < now) return false;  // unused: let it expire
    return true;
}

bool last_use_worth_recording(const std::optional<CacheRecord>& rec, UnixTime now) {
    return !rec || now - rec->last_used >= kLastUsedResolution;
}

}  // namespace stsguard
