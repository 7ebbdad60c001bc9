#include "cli/record_json.h"

#include <ctime>

#include "policy-cache/sts_policy.h"
#include "policy-cache/utc_time.h"

namespace stsguard {

std::string iso_time(UnixTime t) { return t == UnixTime{} ? "never" : utc_iso8601(t); }

nlohmann::json record_json(const CacheRecord& r) {
    using nlohmann::json;
    const bool has = r.state == PolicyState::has_policy;
    return json{
        {"domain", r.domain.str()},
        {"state", has ? "policy" : "no-policy"},
        {"mode", has ? json(mode_name(r.policy.mode)) : json(nullptr)},
        {"max_age", has ? json(r.policy.max_age.count()) : json(nullptr)},
        {"mx", has ? json(r.policy.mx) : json::array()},
        {"policy_id", r.policy_id ? json(r.policy_id->str()) : json(nullptr)},
        {"policy", r.policy_body},
        {"fetched_at", to_unix(r.fetched_at)},
        {"expires_at", to_unix(r.expires_at)},
        {"last_checked", to_unix(r.last_checked)},
        {"last_used", to_unix(r.last_used)},
        {"next_refresh", to_unix(r.next_refresh)},
        {"last_outcome",
         {{"kind", outcome_kind_name(r.last_outcome.kind)}, {"code", r.last_outcome.code}, {"text", r.last_outcome.text}}},
        {"consecutive_failures", r.consecutive_failures},
        {"mx_hosts", r.mx_hosts},
        {"mx_expires_at", to_unix(r.mx_expires_at)},
    };
}

std::optional<CacheRecord> record_from_json(const nlohmann::json& j, std::string* why) {
    auto fail = [&](std::string w) -> std::optional<CacheRecord> {
        if (why) *why = std::move(w);
        return std::nullopt;
    };
    try {
        if (!j.is_object()) return fail("not a JSON object");
        std::string dwhy;
        auto d = DomainName::parse(j.at("domain").get<std::string>(), &dwhy);
        if (!d) return fail("domain: " + dwhy);
        CacheRecord r(*d);
        auto t = [&](const char* k) { return from_unix(j.value(k, std::int64_t{0})); };
        const std::string state = j.value("state", "no-policy");
        if (state == "policy") {
            const std::string body = j.at("policy").get<std::string>();
            PolicyParse p = parse_sts_policy(body);
            if (p.verdict != PolicyVerdict::valid || !p.policy) return fail("policy body is not a valid RFC 8461 policy");
            if (!j.at("policy_id").is_string()) return fail("policy_id missing");
            r.set_policy(body, *p.policy, PolicyId(j.at("policy_id").get<std::string>()), t("fetched_at"));
        } else if (state != "no-policy") {
            return fail("state must be policy or no-policy");
        }
        r.last_checked = t("last_checked");
        r.last_used = t("last_used");
        r.next_refresh = t("next_refresh");
        r.mx_expires_at = t("mx_expires_at");
        r.consecutive_failures = j.value("consecutive_failures", 0u);
        r.mx_hosts = j.value("mx_hosts", std::vector<std::string>{});
        if (j.contains("last_outcome")) {
            const auto& o = j.at("last_outcome");
            std::string kind = o.value("kind", "ok");
            r.last_outcome.kind = kind == "no-policy"   ? OutcomeKind::no_policy
                                  : kind == "temporary" ? OutcomeKind::temporary
                                  : kind == "permanent" ? OutcomeKind::permanent
                                                        : OutcomeKind::ok;
            r.last_outcome.code = o.value("code", "");
            r.last_outcome.text = o.value("text", "");
        }
        return r;
    } catch (const nlohmann::json::exception& e) {
        return fail(std::string("malformed record: ") + e.what());
    }
}

}  // namespace stsguard
