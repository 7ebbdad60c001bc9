#include "plugin/milter_verdict.h"

#include "policy-cache/refresh_rules.h"
#include "postfix/domain_view.h"
#include "postfix/policy_answer.h"

namespace stsguard {
namespace {

// Reason codes and ids come from the cache file, which other processes
// write: keep only what a token may hold.
std::string token(std::string_view s, std::size_t max_bytes = 64) {
    std::string out;
    for (char c : s) {
        if (out.size() >= max_bytes) break;
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '-' || c == '_' || c == '.';
        out += ok ? c : '_';
    }
    return out.empty() ? "-" : out;
}

}  // namespace

bool needs_discovery(const std::optional<CacheRecord>& rec, UnixTime now) {
    const Assessment a = assess(rec, now);
    return a.refresh != Assessment::Refresh::none || a.mx_stale;
}

const char* mx_verdict_name(MxVerdict v) {
    switch (v) {
        case MxVerdict::ok: return "ok";
        case MxVerdict::unsatisfied: return "unsatisfied";
        case MxVerdict::pending: return "pending";
        case MxVerdict::not_applicable: return "n/a";
    }
    return "pending";
}

DomainStatus domain_status(const DomainName& domain, const std::optional<CacheRecord>& rec, UnixTime now) {
    DomainStatus s;
    const Assessment a = assess(rec, now);
    switch (a.use) {
        case Assessment::Use::unknown:
            s.kind = DomainStatus::Kind::pending;
            s.reason_code = "lookup-pending";
            s.why = "no MTA-STS state for " + domain.str() + " yet (discovery pending)";
            return s;
        case Assessment::Use::no_policy:
            s.kind = DomainStatus::Kind::no_policy;
            s.reason_code = rec->last_outcome.code;
            s.why = domain.str() + " publishes no usable MTA-STS policy";
            return s;
        case Assessment::Use::temp_failure:
            s.kind = DomainStatus::Kind::unavailable;
            s.reason_code = rec->last_outcome.code;
            s.why = "MTA-STS discovery for " + domain.str() + " failed: " + rec->last_outcome.text;
            return s;
        case Assessment::Use::policy:
            break;
    }
    s.kind = DomainStatus::Kind::policy;
    s.mode = rec->policy.mode;
    s.policy_id = rec->policy_id ? rec->policy_id->str() : std::string();
    if (s.mode == Mode::none) {
        s.mx = MxVerdict::not_applicable;
        s.why = "policy mode none";
        return s;
    }
    // The service's decision (mx_match exact); testing is checked like
    // enforce here because the header reports on it.
    MapSettings map;
    map.testing = TestingPolicies::enforce;
    const Answer ans = decide_answer(domain, view_of(rec, a), map);
    s.why = ans.why;
    if (ans.reply.kind == SocketmapReply::Kind::ok) {
        s.mx = MxVerdict::ok;
    } else if (ans.reply.kind == SocketmapReply::Kind::temp && ans.why_code == "no-mx-match") {
        s.mx = MxVerdict::unsatisfied;
        s.reason_code = ans.why_code;
    } else {
        s.mx = MxVerdict::pending;
        s.reason_code = ans.why_code;
    }
    return s;
}

std::string policy_header_value(const DomainName& domain, const DomainStatus& s) {
    std::string v = domain.str();
    switch (s.kind) {
        case DomainStatus::Kind::policy:
            v += std::string(" mode=") + mode_name(s.mode) + " id=" + token(s.policy_id, 32);
            if (s.mode != Mode::none) v += std::string(" mx=") + mx_verdict_name(s.mx);
            break;
        case DomainStatus::Kind::no_policy:
            v += " mode=no-policy";
            break;
        case DomainStatus::Kind::unavailable:
            v += " mode=unavailable reason=" + token(s.reason_code);
            break;
        case DomainStatus::Kind::pending:
            v += " mode=pending";
            break;
    }
    // DomainName is LDH A-labels (<= 253), the rest tokens: this never
    // trims in practice, and smtp_safe_text would only guard the bound.
    if (v.size() > kMaxHeaderValueBytes) v.resize(kMaxHeaderValueBytes);
    return v;
}

HoldDecision hold_decision(const DomainName& domain, const DomainStatus& s) {
    HoldDecision d;
    if (s.kind != DomainStatus::Kind::policy || s.mode != Mode::enforce || s.mx != MxVerdict::unsatisfied)
        return d;
    d.action = RcptAction::tempfail;
    d.reply_text = smtp_safe_text("MTA-STS policy of " + domain.str() +
                                  " (mode enforce) cannot be satisfied: " + s.why +
                                  "; mail to it would wait in the queue, try again later");
    return d;
}

std::string smtp_safe_text(std::string_view text, std::size_t max_bytes) {
    std::string out;
    for (unsigned char c : text) {
        const std::size_t need = c == '%' ? 2 : 1;
        if (out.size() + need > max_bytes) break;
        if (c == '%') out += "%%";
        else if (c < 0x20 || c >= 0x7f) out += '?';
        else out += static_cast<char>(c);
    }
    return out;
}

}  // namespace stsguard
