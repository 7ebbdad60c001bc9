// cache_record.h - what the cache remembers about one domain, and its
// compact, versioned binary encoding (the LMDB value; the key is the
// domain's A-label form).
//
// RFC 8461 5: a sender keeps a policy until it expires so that an attacker
// who blocks one fetch cannot downgrade delivery; 5.1 (refresh) needs the
// policy id, fetch time and refresh bookkeeping; 4.1 (MX matching) needs
// the mode and "mx" patterns, stored parsed so the per-message lookup never
// reparses the body; the domain's own MX host set from DNS is cached here
// too, by its TTL (mx_expires_at).
//
// Encoding (format 1), little-endian, fields in this order:
//   u8 format=1, u8 state, u8 mode, u8 outcome kind, u32 consecutive
//   failures, i64 max_age, i64 fetched_at, expires_at, last_checked,
//   last_used, next_refresh, mx_expires_at (Unix seconds),
//   s8 domain, s8 policy id ("" = none), s8 policy version,
//   u16 n + n*s16 mx patterns, u16 n + n*(s16 key, s16 value) extensions,
//   s16 outcome code, s16 outcome text, u16 n + n*s8 MX hosts, s32 body.
// sN = length as uN, then that many bytes.  Nothing may follow.
//
// Failures: encode_record() refuses a field too long for its prefix;
//   decode_record() validates every length, enum and limit, never reads
//   past the buffer, and explains the first problem in *why.
// Limits: body <= kMaxPolicyBytes, id <= 32 alphanumerics, host names and
//   the domain <= 253 octets, other strings <= 65535 octets, lists <= 65535.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy-cache/clock.h"
#include "policy-cache/domain_name.h"
#include "policy-cache/name_views.h"
#include "policy-cache/sts_policy.h"
#include "policy-cache/sts_txt.h"

namespace stsguard {

inline constexpr std::uint8_t kRecordFormat = 1;

// Whether the domain published a policy when last discovered.
enum class PolicyState : std::uint8_t { no_policy = 0, has_policy = 1 };

// How the last discovery or refresh attempt ended.
enum class OutcomeKind : std::uint8_t { ok = 0, no_policy = 1, temporary = 2, permanent = 3 };
const char* outcome_kind_name(OutcomeKind k);  // "ok" | "no-policy" | "temporary" | "permanent"

struct RecordOutcome {
    OutcomeKind kind = OutcomeKind::ok;
    std::string code;  // stable reason code, e.g. "policy-fetch-timeout"
    std::string text;  // human readable detail
};

struct CacheRecord {
    explicit CacheRecord(DomainName d) : domain(std::move(d)) {}

    DomainName domain;
    PolicyState state = PolicyState::no_policy;
    std::string policy_body;            // raw bytes as fetched (export, `cache show`)
    Policy policy;                      // parsed; meaningful when state == has_policy
    std::optional<PolicyId> policy_id;  // the TXT id the policy was fetched under
    UnixTime fetched_at{};
    UnixTime expires_at{};    // fetched_at + max_age (RFC 8461 3.2)
    UnixTime last_checked{};  // last TXT id check (5.1)
    UnixTime last_used{};     // last lookup that used the record
    UnixTime next_refresh{};
    RecordOutcome last_outcome;
    std::uint32_t consecutive_failures = 0;
    std::vector<std::string> mx_hosts;  // the domain's MX host names from DNS
    UnixTime mx_expires_at{};           // when that MX set's TTL runs out

    // Stores a freshly fetched policy: state, body, parse, id, fetched_at
    // and expires_at = fetched_at + max_age.
    void set_policy(std::string body, Policy parsed, PolicyId id, UnixTime fetched);
    // True while a policy is held and not expired (RFC 8461 5: it still
    // protects delivery even if refreshing it fails).
    bool policy_usable_at(UnixTime now) const {
        return state == PolicyState::has_policy && now < expires_at;
    }
};

// Field-by-field equality (tests, and "did update() change anything").
bool operator==(const CacheRecord& a, const CacheRecord& b);

// The encoding above; nullopt (and *why) if a field exceeds its limit.
std::optional<std::string> encode_record(const CacheRecord& r, std::string* why = nullptr);

// Decodes a value stored under key; the encoded domain must equal key.
std::optional<CacheRecord> decode_record(std::string_view bytes, const DomainName& key,
                                         std::string* why = nullptr);

// decode_record() into an existing record, replacing every field and
// reusing its strings' and lists' storage.  On false, *why says why and
// `into` holds a partial record that must not be used.
bool decode_record_into(std::string_view bytes, const DomainName& key, CacheRecord& into,
                        std::string* why = nullptr);

// A record's texts as an answer needs them, viewed in its encoded bytes
// (valid only while those are: inside the LMDB read transaction).
struct RecordTexts {
    std::string_view version;  // the policy's
    NameViews mx;              // the policy's "mx" patterns
    std::string_view outcome_code;
    std::string_view outcome_text;
    NameViews mx_hosts;  // the domain's MX host names from DNS
};

// The serve hot path's decode: every check decode_record() makes (the
// policy id's characters aside), the fixed-width fields into `fixed`, the
// texts as views into `texts`, nothing copied.  `fixed`'s own strings and
// lists (id, version, patterns, extensions, outcome texts, MX hosts,
// body) are left empty: only `texts` holds them.
bool decode_record_view(std::string_view bytes, const DomainName& key, CacheRecord& fixed, RecordTexts& texts,
                        std::string* why = nullptr);

}  // namespace stsguard
