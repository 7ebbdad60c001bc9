#include "postfix/domain_view.h"

namespace stsguard {

DomainView view_of(const std::optional<CacheRecord>& rec, const Assessment& a, std::string_view pending_code,
                   std::string_view pending_reason) {
    DomainView v;
    if (!rec) {  // assess() says unknown for an absent record
        v.state = DomainView::State::temp_failure;
        v.failure_code = pending_code;
        v.failure_reason = pending_reason;
        return v;
    }
    // The owned record's texts as views; then the one way of deciding the
    // rest (state, MX set known or not) that serve uses too.
    v.use_policy(rec->policy);
    v.use_mx_hosts(rec->mx_hosts);
    v.texts.outcome_code = rec->last_outcome.code;
    v.texts.outcome_text = rec->last_outcome.text;
    view_of_into(*rec, a, v, pending_code, pending_reason);
    return v;
}

void view_of_into(const CacheRecord& fixed, const Assessment& a, DomainView& v, std::string_view pending_code,
                  std::string_view pending_reason) {
    // Whatever the last record left, field by field: storage is kept.
    v.mode = Mode::none;
    v.max_age = Seconds{0};
    v.remaining = Seconds{0};
    v.mx_known = false;
    v.mx_failure.clear();
    v.failure_code.clear();
    v.failure_reason.clear();
    switch (a.use) {
        case Assessment::Use::policy:
            v.state = DomainView::State::policy;
            v.mode = fixed.policy.mode;
            v.max_age = fixed.policy.max_age;
            v.remaining = a.remaining;
            // Serve a stale MX set while a refresh runs: MX sets change
            // rarely, and the certificate check still binds to the policy.
            v.mx_known = fixed.mx_expires_at != UnixTime{};
            if (!v.mx_known)
                v.mx_failure = "MX set of " + fixed.domain.str() + " not known yet (lookup failed or pending)";
            break;
        case Assessment::Use::no_policy:
        case Assessment::Use::temp_failure:
            v.state = a.use == Assessment::Use::no_policy ? DomainView::State::no_policy
                                                          : DomainView::State::temp_failure;
            v.failure_code = v.texts.outcome_code;
            v.failure_reason = v.texts.outcome_text;
            break;
        case Assessment::Use::unknown:
            v.state = DomainView::State::temp_failure;
            v.failure_code = pending_code;
            v.failure_reason = pending_reason;
            break;
    }
}

Answer answer_for(const DomainName& domain, const std::optional<CacheRecord>& rec, UnixTime now,
                  const MapSettings& map) {
    Assessment a = assess(rec, now);
    return decide_answer(domain, view_of(rec, a), map);
}

}  // namespace stsguard
