// query_cmd.cc - `stsguard query [--json] [--map NAME] DOMAIN...`: exactly
// what `serve` would answer Postfix for each domain now, from the same
// configuration and the same cache, and why.  Read-only: it never
// discovers (run `stsguard cache refresh DOMAIN` for that), so a domain
// the service has not seen shows what serve does on a miss.
//
// Exit status: 0 every answer is OK or NOTFOUND by policy, 1 an answer
// comes from a failure (fail-open NOTFOUND), 2 an answer defers mail
// (TEMP), 3 usage or cache error.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/commands.h"
#include "cli/json_util.h"
#include "cli/record_json.h"
#include "policy-cache/config.h"
#include "policy-cache/policy_store.h"
#include "postfix/domain_view.h"
#include "postfix/policy_service.h"
#include "postfix/socketmap_key.h"

namespace stsguard {
namespace {

const char* use_name(Assessment::Use u) {
    switch (u) {
        case Assessment::Use::policy: return "policy";
        case Assessment::Use::no_policy: return "no-policy";
        case Assessment::Use::temp_failure: return "temporary-failure";
        case Assessment::Use::unknown: return "unknown";
    }
    return "unknown";
}

const char* refresh_name(Assessment::Refresh r) {
    switch (r) {
        case Assessment::Refresh::none: return "none";
        case Assessment::Refresh::background: return "background";
        case Assessment::Refresh::now: return "now";
    }
    return "now";
}

}  // namespace

void add_query_command(CLI::App& app, const GlobalOptions& g, int& rc) {
    struct Opts {
        bool json = false;
        std::string map = "postfix";
        std::vector<std::string> domains;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("query", "show what `serve` answers Postfix for a domain now, and why");
    cmd->add_flag("--json", o->json, "JSON output");
    cmd->add_option("--map", o->map, "socketmap name, as in socketmap:...:NAME (default postfix)");
    cmd->add_option("DOMAIN", o->domains, "next-hop domains")->required();
    cmd->callback([o, &g, &rc] {
        Config cfg;
        if (!load_cli_config(g, cfg)) {
            rc = static_cast<int>(ExitCode::unknown);
            return;
        }
        auto opened = PolicyStore::open(store_options(cfg, StoreAccess::read_only));
        std::unique_ptr<PolicyStore> store;
        if (opened.found()) store = std::move(opened.value());
        else if (opened.failed()) {
            std::cerr << "stsguard query: cache " << cfg.cache_dir << ": " << opened.failure().reason << "\n";
            rc = static_cast<int>(ExitCode::unknown);
            return;
        }
        const ServiceSettings settings = service_settings(cfg);
        const MapSettings& map = settings.map_for(o->map);
        SystemClock clock;
        const UnixTime now = clock.now();
        int worst = 0;
        nlohmann::json out = nlohmann::json::array();
        for (const auto& key : o->domains) {
            nlohmann::json j;
            j["key"] = key;
            KeyClass k = classify_key(key);
            if (k.kind != KeyClass::Kind::domain) {
                j["reply"] = "NOTFOUND ";
                j["reason_code"] = k.kind == KeyClass::Kind::invalid ? "invalid-key" : "not-a-domain";
                j["reason"] = k.why;
                if (!o->json) std::cout << key << ": NOTFOUND (" << k.why << ")\n";
                out.push_back(j);
                continue;
            }
            std::optional<CacheRecord> rec;
            if (store) {
                auto got = store->get(*k.domain);
                if (got.found()) rec = std::move(got.value());
                else if (got.failed()) j["cache_error"] = got.failure().reason;
            }
            Assessment a = assess(rec, now);
            Answer ans = decide_answer(*k.domain, view_of(rec, a, "not-cached",
                                                            "not in the cache: serve discovers it, waiting up to lookup_wait"),
                                       map);
            std::string wire = encode_reply(ans.reply);
            j["domain"] = k.domain->str();
            j["reply"] = wire;
            j["reason_code"] = ans.why_code;
            j["reason"] = ans.why;
            j["cache"] = {{"state", use_name(a.use)}, {"refresh", refresh_name(a.refresh)}};
            if (rec) {
                j["cache"]["mode"] = rec->state == PolicyState::has_policy ? mode_name(rec->policy.mode) : "none";
                j["cache"]["policy_id"] = rec->policy_id ? nlohmann::json(rec->policy_id->str()) : nlohmann::json(nullptr);
                j["cache"]["fetched_at"] = iso_time(rec->fetched_at);
                j["cache"]["expires_at"] = iso_time(rec->expires_at);
                j["cache"]["age_seconds"] = rec->fetched_at == UnixTime{} ? 0 : (now - rec->fetched_at).count();
                j["cache"]["next_refresh"] = iso_time(rec->next_refresh);
                j["cache"]["last_outcome"] = {{"kind", outcome_kind_name(rec->last_outcome.kind)},
                                              {"code", rec->last_outcome.code},
                                              {"text", rec->last_outcome.text}};
                j["cache"]["mx_hosts"] = rec->mx_hosts;
            }
            int level = 0;
            if (ans.reply.kind == SocketmapReply::Kind::temp) level = 2;
            else if (ans.why_code == "temp-failure-open") level = 1;
            worst = std::max(worst, level);
            if (!o->json) {
                std::cout << k.domain->str() << ": " << wire << "\n  why: " << ans.why_code << ": " << ans.why << "\n";
                if (rec)
                    std::cout << "  cache: " << use_name(a.use) << ", fetched " << iso_time(rec->fetched_at) << ", expires "
                              << iso_time(rec->expires_at) << ", next refresh " << iso_time(rec->next_refresh)
                              << ", last outcome " << outcome_kind_name(rec->last_outcome.kind) << " "
                              << rec->last_outcome.code << "\n";
                else
                    std::cout << "  cache: not cached\n";
            }
            out.push_back(j);
        }
        if (o->json) std::cout << dump_json(out) << "\n";
        rc = worst;
    });
}

}  // namespace stsguard
