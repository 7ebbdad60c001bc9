#include "postfix/domain_view.h"

namespace stsguard {
namespace {

// Both kinds of record as one: what a view needs of the stored texts.
struct Texts {
    std::string_view outcome_code;
    std::string_view outcome_text;
};

template <class UsePolicy, class UseMx>
void fill(DomainView& v, const CacheRecord& rec, Texts t, const Assessment& a, std::string_view pending_code,
          std::string_view pending_reason, UsePolicy use_policy, UseMx use_mx) {
    switch (a.use) {
        case Assessment::Use::policy:
            use_policy();
            v.remaining = a.remaining;
            if (rec.mx_expires_at != UnixTime{}) {
                // Serve a stale MX set while a refresh runs: MX sets change
                // rarely, and the certificate check still binds to the policy.
                use_mx();
            } else {
                v.mx_failure = "MX set of " + rec.domain.str() + " not known yet (lookup failed or pending)";
            }
            break;
        case Assessment::Use::no_policy:
            v.state = DomainView::State::no_policy;
            v.failure_code = t.outcome_code;
            v.failure_reason = t.outcome_text;
            break;
        case Assessment::Use::temp_failure:
            v.state = DomainView::State::temp_failure;
            v.failure_code = t.outcome_code;
            v.failure_reason = t.outcome_text;
            break;
        case Assessment::Use::unknown:
            v.state = DomainView::State::temp_failure;
            v.failure_code = pending_code;
            v.failure_reason = pending_reason;
            break;
    }
}

}  // namespace

DomainView view_of(const std::optional<CacheRecord>& rec, const Assessment& a, std::string_view pending_code,
                   std::string_view pending_reason) {
    DomainView v;
    if (!rec) {  // assess() says unknown for an absent record
        v.state = DomainView::State::temp_failure;
        v.failure_code = pending_code;
        v.failure_reason = pending_reason;
        return v;
    }
    fill(v, *rec, Texts{rec->last_outcome.code, rec->last_outcome.text}, a, pending_code, pending_reason,
         [&] { v.use_policy(rec->policy); }, [&] { v.use_mx_hosts(rec->mx_hosts); });
    return v;
}

void view_of_into(const CacheRecord& fixed, const Assessment& a, DomainView& v) {
    // Whatever the last record left, field by field: storage is kept.
    v.mode = Mode::none;
    v.max_age = Seconds{0};
    v.remaining = Seconds{0};
    v.mx_known = false;
    v.mx_failure.clear();
    v.failure_code.clear();
    v.failure_reason.clear();
    fill(v, fixed, Texts{v.texts.outcome_code, v.texts.outcome_text}, a, "lookup-pending",
         "policy discovery did not finish in time",
         [&] {
             v.state = DomainView::State::policy;
             v.mode = fixed.policy.mode;
             v.max_age = fixed.policy.max_age;
         },
         [&] { v.mx_known = true; });
}

Answer answer_for(const DomainName& domain, const std::optional<CacheRecord>& rec, UnixTime now,
                  const MapSettings& map) {
    Assessment a = assess(rec, now);
    return decide_answer(domain, view_of(rec, a), map);
}

}  // namespace stsguard
