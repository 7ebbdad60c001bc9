#include "postfix/domain_view.h"

namespace stsguard {

DomainView view_of(const std::optional<CacheRecord>& rec, const Assessment& a, std::string_view pending_code,
                   std::string_view pending_reason) {
    DomainView v;
    switch (a.use) {
        case Assessment::Use::policy:
            v.state = DomainView::State::policy;
            v.policy = &rec->policy;
            v.remaining = a.remaining;
            if (rec->mx_expires_at != UnixTime{}) {
                // Serve a stale MX set while a refresh runs: MX sets change
                // rarely, and the certificate check still binds to the policy.
                v.mx_hosts = &rec->mx_hosts;
            } else {
                v.mx_failure = "MX set of " + rec->domain.str() + " not known yet (lookup failed or pending)";
            }
            break;
        case Assessment::Use::no_policy:
            v.state = DomainView::State::no_policy;
            v.failure_code = rec->last_outcome.code;
            v.failure_reason = rec->last_outcome.text;
            break;
        case Assessment::Use::temp_failure:
            v.state = DomainView::State::temp_failure;
            v.failure_code = rec->last_outcome.code;
            v.failure_reason = rec->last_outcome.text;
            break;
        case Assessment::Use::unknown:
            v.state = DomainView::State::temp_failure;
            v.failure_code = pending_code;
            v.failure_reason = pending_reason;
            break;
    }
    return v;
}

Answer answer_for(const DomainName& domain, const std::optional<CacheRecord>& rec, UnixTime now,
                  const MapSettings& map) {
    Assessment a = assess(rec, now);
    return decide_answer(domain, view_of(rec, a), map);
}

}  // namespace stsguard
