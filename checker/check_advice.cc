// check_advice.cc - mode (RFC 8461 5, 8.3, 3.2 max_age) and
// policy_id_hygiene (3.1: the id must change whenever the policy does).
#include "checker/checks.h"
#include "policy-cache/utc_time.h"

#include <algorithm>
#include <cctype>

namespace stsguard {
namespace {

using nlohmann::json;

constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kWeek = 7 * kDay;

std::vector<std::string> lowered_sorted(std::vector<std::string> v) {
    for (auto& s : v)
        std::transform(s.begin(), s.end(), s.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

// What changed in meaning between two policies (the mx order does not matter).
std::vector<std::string> policy_changes(const Policy& was, const Policy& now) {
    std::vector<std::string> out;
    if (was.mode != now.mode) out.push_back(std::string("mode ") + mode_name(was.mode) + " -> " + mode_name(now.mode));
    if (was.max_age != now.max_age)
        out.push_back("max_age " + std::to_string(was.max_age.count()) + " -> " + std::to_string(now.max_age.count()));
    if (lowered_sorted(was.mx) != lowered_sorted(now.mx))
        out.push_back("mx " + join_list(was.mx, ", ") + " -> " + join_list(now.mx, ", "));
    if (was.extensions != now.extensions) out.push_back("extension fields changed");
    return out;
}

}  // namespace

CheckResult check_mode(const DomainFacts& f) {
    CheckResult r;
    r.id = "mode";
    const Policy* p = valid_policy(f);
    if (p == nullptr) {
        r.status = CheckStatus::skip;
        r.summary = "no valid policy";
        return r;
    }
    const DeliveryAssessment a = assess_delivery(f);
    const std::int64_t max_age = p->max_age.count();
    json hosts = json::array();
    for (const auto& h : a.hosts)
        hosts.push_back({{"host", h.host},
                         {"covered_by", h.covered_by ? json(*h.covered_by) : json(nullptr)},
                         {"state", host_state_name(h.state)},
                         {"why", h.why}});
    r.details = {{"mode", mode_name(p->mode)},
                 {"max_age", max_age},
                 {"delivery_if_enforced", {{"verdict", delivery_name(a.verdict)}, {"code", a.code}, {"reason", a.reason}, {"hosts", hosts}}}};

    switch (p->mode) {
        case Mode::none:
            r.status = CheckStatus::info;
            r.summary = "mode none: the policy is being withdrawn; senders that see it stop applying MTA-STS "
                        "to this domain (RFC 8461 8.3)";
            r.fix = "keep serving this policy until every sender's cached copy has expired (the old max_age), "
                    "then remove the _mta-sts record and the policy host; or switch back to testing or enforce";
            return r;
        case Mode::testing:
            switch (a.verdict) {
                case Delivery::ok:
                    r.status = CheckStatus::pass;
                    r.summary = "mode testing and every MX passes: ready for mode enforce";
                    r.fix = "to enforce: set 'mode: enforce' in the policy and publish a new id in the _mta-sts record";
                    break;
                case Delivery::degraded:
                case Delivery::would_fail:
                    r.status = CheckStatus::warn;
                    r.summary = "mode testing: under enforce, " + a.reason;
                    r.fix = "fix the MX problems (mx_alignment, mx_certificates) before switching to enforce";
                    break;
                default:
                    r.status = CheckStatus::info;
                    r.summary = "mode testing; whether enforce would work could not be verified: " + a.reason;
                    break;
            }
            break;
        case Mode::enforce:
            switch (a.verdict) {
                case Delivery::ok:
                    r.status = CheckStatus::pass;
                    r.summary = "mode enforce and every MX passes";
                    break;
                case Delivery::degraded:
                    r.status = CheckStatus::warn;
                    r.summary = "mode enforce: " + a.reason + " (mail goes to the remaining MX hosts)";
                    r.fix = "fix the refused MX hosts (mx_alignment, mx_certificates) or remove them from the MX records";
                    break;
                case Delivery::would_fail:
                    r.status = CheckStatus::fail;
                    r.summary = "mode enforce and " + a.reason + ": MTA-STS senders are deferring mail to this domain now";
                    r.fix = "fix the MX problems now, or switch to 'mode: testing' (with a new policy id) while you do";
                    break;
                default:
                    r.status = CheckStatus::info;
                    r.summary = "mode enforce; delivery could not be verified: " + a.reason;
                    break;
            }
            break;
    }
    if (max_age < kDay || max_age > kMaxAgeLimit) {
        r.findings.push_back({Severity::warning, "max-age-short",
                              "max_age " + std::to_string(max_age) +
                                  " s is under a day: the policy protects little against a downgrade at the "
                                  "next fetch; a week (604800) or more is recommended",
                              0});
        if (max_age > kMaxAgeLimit) {
            r.findings.back().code = "max-age-long";
            r.findings.back().message = "max_age " + std::to_string(max_age) + " s is over a year (31557600, RFC 8461 3.2)";
        }
        if (r.status == CheckStatus::pass || r.status == CheckStatus::info) r.status = CheckStatus::warn;
        r.summary += "; " + r.findings.back().message;
        if (r.fix.empty()) r.fix = "set max_age between 604800 (a week) and 31557600 (a year)";
    } else if (max_age < kWeek) {
        r.findings.push_back({Severity::info, "max-age-under-week",
                              "max_age " + std::to_string(max_age) + " s is under a week; a week (604800) or more is "
                                                                      "recommended once the policy is stable",
                              0});
    }
    return r;
}

CheckResult check_policy_id_hygiene(const DomainFacts& f) {
    CheckResult r;
    r.id = "policy_id_hygiene";
    const CacheFacts& c = f.cache;
    if (c.state == CacheFacts::State::not_checked) {
        r.status = CheckStatus::skip;
        r.summary = "the local cache was not consulted";
        return r;
    }
    if (c.state == CacheFacts::State::unavailable || !c.record) {
        r.status = CheckStatus::skip;
        r.summary = "no local cache to compare with" + (c.note.empty() ? std::string() : " (" + c.note + ")");
        return r;
    }
    if (c.record->failed()) {
        r.status = CheckStatus::skip;
        r.summary = "the cached record could not be read: " + c.record->failure().reason;
        return r;
    }
    if (c.record->not_found()) {
        r.status = CheckStatus::skip;
        r.summary = f.domain.str() + " is not in the local cache: nothing to compare";
        return r;
    }
    const CacheRecord& rec = c.record->value();
    const Policy* fresh = valid_policy(f);
    const TxtStep& t = f.discovery.txt;
    r.details = {{"cached_id", rec.policy_id ? json(rec.policy_id->str()) : json(nullptr)},
                 {"cached_fetched_at", rec.fetched_at == UnixTime{} ? json(nullptr) : json(utc_iso8601(rec.fetched_at))},
                 {"fresh_id", t.txt.id ? json(t.txt.id->str()) : json(nullptr)}};
    if (rec.state != PolicyState::has_policy || !rec.policy_id) {
        r.status = CheckStatus::skip;
        r.summary = "the local cache holds no policy for " + f.domain.str();
        return r;
    }
    if (fresh == nullptr || !t.txt.id || !f.discovery.fetch || !f.discovery.fetch->fetched) {
        r.status = CheckStatus::skip;
        r.summary = "no valid policy fetched now to compare with the cached one";
        return r;
    }
    const bool same_id = *rec.policy_id == *t.txt.id;
    const std::vector<std::string> changes = policy_changes(rec.policy, *fresh);
    const bool bytes_differ = rec.policy_body != f.discovery.fetch->fetched->body;
    r.details["content_changed"] = !changes.empty();
    r.details["bytes_changed"] = bytes_differ;
    r.details["changes"] = changes;
    if (same_id && !changes.empty()) {
        r.status = CheckStatus::warn;
        r.summary = "the policy changed (" + join_list(changes, "; ") + ") but its id is still " + t.txt.id->str() +
                    ": senders holding the old policy will not fetch the new one until it expires (RFC 8461 3.1)";
        r.fix = "publish a new id in the _mta-sts record whenever the policy changes (e.g. a timestamp)";
    } else if (same_id && bytes_differ) {
        r.status = CheckStatus::info;
        r.summary = "the policy text changed but means the same; id " + t.txt.id->str() + " unchanged: harmless";
    } else if (!same_id && changes.empty()) {
        r.status = CheckStatus::info;
        r.summary = "the id changed (" + rec.policy_id->str() + " -> " + t.txt.id->str() +
                    ") but the policy means the same: harmless, senders fetch it again";
    } else {
        r.status = CheckStatus::pass;
        r.summary = same_id ? "the cached policy (id " + t.txt.id->str() + ") matches the published one"
                            : "the policy and its id both changed since the cached copy (" + rec.policy_id->str() +
                                  " -> " + t.txt.id->str() + ")";
    }
    return r;
}

}  // namespace stsguard
