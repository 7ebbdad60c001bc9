// policy_answer.h - what stsguard tells Postfix for one domain.
//
// Turns the engine's view of a domain (usable cached policy or not, the
// domain's MX hosts from DNS, the last failure) into one socketmap reply,
// the single decision point shared by `serve`, `query` and `dry-run`.
//
// RFC 8461 4 wants two checks: the MX host name must match a policy "mx"
// pattern (4.1) and its certificate must be valid for that name (4.2).
// Postfix 3.7 can only check certificate names ("secure match=..."), so
// with mx_match = exact (default) the match list names exactly the
// domain's current MX hosts that satisfy the policy patterns, with RFC
// one-label wildcards: the certificate must then be valid for a
// policy-approved MX.  If no MX satisfies the policy the reply is TEMP
// (mail waits; RFC 8461 5: enforce means do not deliver).  mx_match =
// patterns maps "*.x" to Postfix's ".x", which matches any depth: looser,
// documented, for parity with other services.  With postfix_attributes =
// yes the Postfix 3.10+ attributes are appended (TLSRPT_README), so a
// Postfix >= 3.10.5 with smtp_tls_enforce_sts_mx_patterns enforces the
// MX patterns itself and reports via TLSRPT.
//
// testing and none: NOTFOUND (deliver as usual), unless the map enforces
// testing policies.  No usable policy after a temporary failure:
// NOTFOUND (RFC fail-open) or TEMP (on_temp_failure = temp).
//
// Pure: no I/O.  Failures: none.  Limits: Postfix refuses replies over
// 100000 bytes; the caller's server enforces that.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy-cache/domain_name.h"
#include "policy-cache/cache_record.h"
#include "policy-cache/name_views.h"
#include "policy-cache/sts_policy.h"
#include "postfix/socketmap_server.h"

namespace stsguard {

enum class MxMatchMode { exact, patterns };
enum class TestingPolicies { report_only, enforce };
enum class OnTempFailure { notfound, temp };
enum class PostfixAttributes { off, on };

struct MapSettings {
    MxMatchMode mx_match = MxMatchMode::exact;
    TestingPolicies testing = TestingPolicies::report_only;
    OnTempFailure on_temp_failure = OnTempFailure::notfound;
    PostfixAttributes attributes = PostfixAttributes::off;
};

// What the engine knows about the domain right now.  Names are views into
// the record (or Policy and host list) the view was made from, which must
// outlive it: the serve hot path decides on the bytes LMDB hands out,
// without copying them.
struct DomainView {
    enum class State {
        policy,        // an unexpired policy is usable (cached or just fetched)
        no_policy,     // the domain has no policy (or only a failed one, permanent)
        temp_failure,  // no usable policy, and discovery failed temporarily or timed out
    } state = State::no_policy;
    // The policy, for State::policy: its mode and max_age, and in texts
    // its version and "mx" patterns.
    Mode mode = Mode::none;
    Seconds max_age{0};
    Seconds remaining{0};  // policy lifetime left
    // The domain's MX hosts (lower case, no trailing dot), for exact
    // matching, in texts.mx_hosts when mx_known; otherwise the MX lookup
    // failed and mx_failure says why.
    bool mx_known = false;
    // Views into the record: the serve hot path decodes straight into
    // them (decode_record_view), the others point them at a CacheRecord.
    // texts' outcome fields are not read: failure_code/reason are.
    RecordTexts texts;
    std::string mx_failure;
    std::string failure_code;  // for temp_failure / no_policy
    std::string failure_reason;

    // State::policy with p (which must outlive the view).
    void use_policy(const Policy& p) {
        state = State::policy;
        mode = p.mode;
        max_age = p.max_age;
        texts.version = p.version;
        texts.mx.assign(p.mx);
    }
    // The domain's MX set (which must outlive the view).
    void use_mx_hosts(const std::vector<std::string>& hosts) {
        mx_known = true;
        texts.mx_hosts.assign(hosts);
    }
};

struct Answer {
    SocketmapReply reply;
    std::string why_code;  // stable, for logs and metrics, e.g. "enforce", "no-mx-match"
    std::string why;       // human readable
};

// Whether decide_answer() spells out Answer::why for a policy answer (logs,
// query, check, dry-run) or leaves it empty: the serve hot path when
// log_decisions is off.  why_code and the reply are the same either way.
enum class Explain { yes, no };

Answer decide_answer(const DomainName& domain, const DomainView& view, const MapSettings& map,
                     Explain explain = Explain::yes);
// The same into `into`, whatever it held: a policy answer's reply text and
// why keep the storage they had (the serve hot path decides one answer per
// request into the same Answer).
void decide_answer_into(const DomainName& domain, const DomainView& view, const MapSettings& map, Explain explain,
                        Answer& into);

// "*.x" -> ".x", others unchanged: Postfix's match syntax (patterns mode).
std::string postfix_match_pattern(std::string_view sts_pattern);

}  // namespace stsguard
