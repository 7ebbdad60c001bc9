// refresh_rules.h - RFC 8461 cache semantics, pure: what a lookup may use,
// when to ask DNS and HTTPS again, and how an attempt changes a record.
//
// The rules (RFC 8461 3.3, 5, 10.2):
// - An unexpired cached policy is used for lookups; an expired one never.
// - The TXT id is re-checked at most every txt_check_interval; a changed
//   id triggers a fetch; a valid fetched policy replaces the cached one
//   (mode none included).  With the id unchanged the policy is re-fetched
//   anyway once less than half its max_age is left, so a policy in use
//   never expires for lack of a refresh (proactive refresh, 5.1 advice).
// - A missing TXT record, a failed fetch or an invalid policy never
//   removes or weakens an unexpired cached policy (downgrade protection);
//   the failure is recorded and retried with exponential back-off.
// - "No policy" is remembered for negative_cache_ttl; failures with no
//   usable policy are retried after failure_backoff_min * 2^(n-1), capped
//   at failure_backoff_max, so a broken domain is not asked on every lookup.
// - Background refresh only for domains looked up within
//   refresh_unused_after.
//
// Pure: no I/O, time comes in as `now`, jitter as a number the caller
// draws, so every rule is unit-tested with a manual clock.
// Failures: none.  Limits: next_refresh is never sooner than 60 s ahead
// after an attempt (a policy with a tiny max_age cannot make us spin).
#pragma once

#include <optional>

#include "policy-cache/cache_record.h"
#include "policy-cache/clock.h"
#include "policy-cache/config.h"
#include "policy-cache/discovery.h"
#include "policy-cache/dns_resolver.h"

namespace stsguard {

struct RefreshSettings {
    Seconds txt_check_interval{3600};
    Seconds refresh_unused_after{30 * 86400};
    Seconds negative_cache_ttl{3600};
    Seconds failure_backoff_min{300};
    Seconds failure_backoff_max{86400};
    Seconds mx_ttl_min{60};
    Seconds mx_ttl_max{86400};
};
RefreshSettings refresh_settings(const Config& c);

inline constexpr Seconds kMinRetryDelay{60};

// What a lookup at `now` can rely on, and whether DNS/HTTPS must be asked.
struct Assessment {
    enum class Use {
        policy,        // an unexpired policy (record->policy)
        no_policy,     // remembered "no policy" (negative cache), or nothing usable after a permanent failure
        temp_failure,  // nothing usable; the last attempt failed temporarily and is in back-off
        unknown,       // never seen, or the remembered state ran out: must discover
    } use = Use::unknown;
    enum class Refresh {
        none,        // nothing to do
        background,  // usable now, but due for a TXT check / refresh
        now,         // nothing usable: discover before answering
    } refresh = Refresh::now;
    Seconds remaining{0};  // policy lifetime left (Use::policy)
    bool mx_stale = false; // a policy is usable but its cached MX set expired
};

Assessment assess(const std::optional<CacheRecord>& rec, UnixTime now);

// Whether, after a valid TXT record with `id`, the policy must be fetched.
bool needs_fetch(const std::optional<CacheRecord>& rec, const PolicyId& id, UnixTime now);

// Back-off after `failures` consecutive failures (1 = first).
Seconds backoff(std::uint32_t failures, const RefreshSettings& s);

// One refresh attempt: the TXT step, and the fetch step when one ran.
struct Attempt {
    TxtStep txt;
    std::optional<FetchStep> fetch;
};

// Applies an attempt to the record (creating it if absent).  `jitter` in
// [0, 1) spreads the next refresh by up to 10 %.
void apply_attempt(std::optional<CacheRecord>& rec, const DomainName& domain, const Attempt& a,
                   UnixTime now, const RefreshSettings& s, double jitter);

// Applies an MX lookup (for exact MX matching).  Found: the hosts, cached
// for the RRset TTL clamped to [mx_ttl_min, mx_ttl_max].  NotFound (no MX
// and no address, or null MX): an empty set for mx_ttl_min.  Failed: the
// old set is kept, unchanged.
void apply_mx(CacheRecord& rec, const Lookup<MxAnswer>& mx, UnixTime now, const RefreshSettings& s);

// Whether a background sweep should refresh this record now.
bool due_for_background_refresh(const CacheRecord& rec, UnixTime now, const RefreshSettings& s);

// A record's last_used is advanced at most this often.  It only matters
// against refresh_unused_after (an hour at the least), so steady traffic
// to one domain costs no cache write at all.
inline constexpr Seconds kLastUsedResolution{600};

// Whether a lookup at `now` should be recorded as the record's last use
// (always for a domain without a record: discovery is about to make one).
bool last_use_worth_recording(const std::optional<CacheRecord>& rec, UnixTime now);

}  // namespace stsguard
