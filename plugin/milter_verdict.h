// milter_verdict.h - what the milter concludes about one recipient
// domain from its cache record: whether to start discovery, the text of
// the X-STS-Policy header, and whether to hold (tempfail) the recipient.
//
// The MX verdict comes from the service's own decision code
// (postfix/domain_view.h view_of + postfix/policy_answer.h decide_answer,
// mx_match exact), so the milter says "mx=unsatisfied" exactly when
// `stsguard serve` would answer Postfix TEMP "no-mx-match" and the mail
// would wait in the queue (RFC 8461 4.1, 5: enforce means do not deliver
// to an MX the policy does not name).  Testing-mode policies are checked
// the same way for the header (it reports, like testing mode itself,
// RFC 8461 5); only enforce mode can hold mail.
//
// hold: only with a usable policy and a known MX set that satisfies none
// of its patterns.  Anything unknown (no record, discovery pending or
// failed, MX lookup failed) never holds: the milter must not turn its
// own ignorance into refused mail; the service still enforces at delivery.
//
// Pure: no I/O; `now` is passed in.  Failures: none.
// Limits: header values <= kMaxHeaderValueBytes, reply text <=
// kMaxReplyTextBytes; both printable ASCII only.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "policy-cache/cache_record.h"
#include "policy-cache/clock.h"
#include "policy-cache/domain_name.h"
#include "policy-cache/sts_policy.h"

namespace stsguard {

inline constexpr const char* kPolicyHeaderName = "X-STS-Policy";
inline constexpr std::size_t kMaxHeaderValueBytes = 400;  // RFC 5322 2.1.1: lines <= 998
inline constexpr std::size_t kMaxReplyTextBytes = 400;    // RFC 5321 4.5.3.1.5: reply line <= 512

// Whether the cache lacks a fresh answer for this domain: nothing usable,
// a refresh due (refresh_rules.h assess), or a policy whose MX set is
// stale or was never read.  A domain in failure back-off is not due.
bool needs_discovery(const std::optional<CacheRecord>& rec, UnixTime now);

enum class MxVerdict { ok, unsatisfied, pending, not_applicable };
const char* mx_verdict_name(MxVerdict v);  // "ok" | "unsatisfied" | "pending" | "n/a"

struct DomainStatus {
    enum class Kind {
        policy,       // an unexpired policy is cached
        no_policy,    // the domain publishes none (remembered)
        unavailable,  // nothing usable; the last discovery failed (in back-off)
        pending,      // never seen, or the remembered state ran out
    } kind = Kind::pending;
    Mode mode = Mode::none;      // Kind::policy
    std::string policy_id;       // Kind::policy ("" if the record has none)
    MxVerdict mx = MxVerdict::not_applicable;
    std::string reason_code;     // Kind::unavailable, and mx pending/unsatisfied
    std::string why;             // human readable, for logs and SMTP replies
};

DomainStatus domain_status(const DomainName& domain, const std::optional<CacheRecord>& rec, UnixTime now);

// "example.com mode=enforce id=20240101 mx=ok"; other forms:
// "mode=none id=X", "mode=no-policy", "mode=unavailable reason=CODE",
// "mode=pending".  Printable ASCII, bounded, safe as a header value.
std::string policy_header_value(const DomainName& domain, const DomainStatus& status);

enum class RcptAction { accept, tempfail };
struct HoldDecision {
    RcptAction action = RcptAction::accept;
    std::string reply_text;  // for tempfail: already safe for smfi_setreply
};
inline constexpr const char* kHoldReplyCode = "451";
inline constexpr const char* kHoldStatusCode = "4.7.5";

HoldDecision hold_decision(const DomainName& domain, const DomainStatus& status);

// Text safe to hand to smfi_setreply: control characters and non-ASCII
// become '?', '%' is doubled (libmilter formats it), cut to max_bytes.
std::string smtp_safe_text(std::string_view text, std::size_t max_bytes = kMaxReplyTextBytes);

}  // namespace stsguard
