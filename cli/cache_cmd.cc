// cache_cmd.cc - `stsguard cache ...`: operators inspect, refresh, delete,
// export and import the policy cache, beside a running service (LMDB
// lets readers and one writer work at once across processes).
//
//   list [--json] [--mode enforce|testing|none] [--failing] [--expired]
//   show DOMAIN [--json]      every field, the raw policy, last outcome
//   delete DOMAIN...          forget domains (next lookup rediscovers)
//   refresh [DOMAIN...|--all] discover now (TXT, policy, MX), store
//   stats [--json]            entries by mode, failing, file and map size
//   export                    JSON lines on stdout
//   import [FILE|-]           JSON lines; each policy is re-validated
//
// Exit status: 0 done, 1 some domains failed (refresh/import/delete),
// 2 not found (show), 3 usage or cache error.
#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "cli/engine_wiring.h"
#include "cli/json_util.h"
#include "cli/record_json.h"
#include "policy-cache/config.h"
#include "policy-cache/discovery_pool.h"
#include "policy-cache/policy_store.h"
#include "policy-cache/refresher.h"
#include "policy-cache/settings.h"

namespace stsguard {
namespace {

constexpr std::size_t kImportBatch = 1000;
constexpr std::size_t kMaxImportLine = 1 << 20;

std::unique_ptr<PolicyStore> open_store(const Config& cfg, StoreAccess access, int& rc) {
    auto s = PolicyStore::open(store_options(cfg, access));
    if (s.found()) return std::move(s.value());
    if (s.not_found())
        std::cerr << "stsguard cache: no cache in " << cfg.cache_dir << " yet\n";
    else
        std::cerr << "stsguard cache: " << s.failure().reason << "\n";
    rc = static_cast<int>(ExitCode::unknown);
    return nullptr;
}

std::vector<DomainName> parse_domains(const std::vector<std::string>& args, int& rc) {
    std::vector<DomainName> out;
    for (const auto& a : args) {
        std::string why;
        auto d = DomainName::parse(a, &why);
        if (!d) {
            std::cerr << "stsguard cache: invalid domain '" << a << "': " << why << "\n";
            rc = static_cast<int>(ExitCode::unknown);
            return {};
        }
        out.push_back(*d);
    }
    return out;
}

void print_record(const CacheRecord& r, UnixTime now) {
    auto j = record_json(r);
    std::cout << r.domain.str() << "\n";
    std::cout << "  state:        " << j["state"].get<std::string>();
    if (r.state == PolicyState::has_policy)
        std::cout << " (mode " << mode_name(r.policy.mode) << ", id " << (r.policy_id ? r.policy_id->str() : "?")
                  << (r.policy_usable_at(now) ? "" : ", EXPIRED") << ")";
    std::cout << "\n  fetched:      " << iso_time(r.fetched_at) << "\n  expires:      " << iso_time(r.expires_at)
              << "\n  last checked: " << iso_time(r.last_checked) << "\n  last used:    " << iso_time(r.last_used)
              << "\n  next refresh: " << iso_time(r.next_refresh) << "\n  last outcome: "
              << outcome_kind_name(r.last_outcome.kind) << " " << r.last_outcome.code << ": " << r.last_outcome.text
              << "\n  failures:     " << r.consecutive_failures << "\n  MX hosts:     ";
    for (const auto& h : r.mx_hosts) std::cout << h << " ";
    std::cout << "(until " << iso_time(r.mx_expires_at) << ")\n";
    if (!r.policy_body.empty()) {
        std::cout << "  policy:\n";
        std::string line;
        for (char c : r.policy_body) {
            if (c == '\n') {
                std::cout << "    " << line << "\n";
                line.clear();
            } else if (c != '\r') {
                line += c;
            }
        }
        if (!line.empty()) std::cout << "    " << line << "\n";
    }
}

int do_refresh(const Config& cfg, PolicyStore& store, const std::vector<DomainName>& domains, bool json) {
    https_global_init();
    SystemClock clock;
    Jitter jitter;
    Refresher refresher(store, clock, refresh_settings(cfg), [&jitter] { return jitter(); });
    AdapterFactory factory = worker_adapter_factory(cfg);
    std::mutex out_mu;
    int failures = 0;
    {
        const int threads = std::max(1, std::min<int>(cfg.fetch_concurrency, static_cast<int>(domains.size())));
        DiscoveryPool pool(refresher, factory, threads, domains.size() + 1);
        for (const auto& d : domains) {
            pool.submit(d, [&, d](const RefreshResult& r) {
                std::lock_guard<std::mutex> l(out_mu);
                bool ok = r.record && !r.store_failure && r.record->last_outcome.kind != OutcomeKind::temporary;
                if (!ok) ++failures;
                if (json) {
                    nlohmann::json j = r.record ? record_json(*r.record) : nlohmann::json{{"domain", d.str()}};
                    if (r.store_failure) j["store_error"] = r.store_failure->reason;
                    std::cout << dump_json(j, JsonStyle::compact) << "\n";
                } else if (r.record) {
                    std::cout << d.str() << ": " << outcome_kind_name(r.record->last_outcome.kind) << " "
                              << r.record->last_outcome.code << " (" << r.record->last_outcome.text << ")";
                    if (r.record->policy_usable_at(clock.now()))
                        std::cout << "; cached policy mode " << mode_name(r.record->policy.mode) << " until "
                                  << iso_time(r.record->expires_at);
                    if (r.store_failure) std::cout << "; NOT STORED: " << r.store_failure->reason;
                    std::cout << "\n";
                }
            });
        }
    }  // joins the workers
    return failures ? static_cast<int>(ExitCode::warning) : 0;
}

}  // namespace

void add_cache_command(CLI::App& app, const GlobalOptions& g, int& rc) {
    auto* cmd = app.add_subcommand("cache", "inspect, refresh, delete, export and import the policy cache");
    cmd->require_subcommand(1);

    struct ListOpts {
        bool json = false, failing = false, expired = false;
        std::string mode;
    };
    auto lo = std::make_shared<ListOpts>();
    auto* list = cmd->add_subcommand("list", "list cached domains");
    list->add_flag("--json", lo->json, "JSON lines");
    list->add_option("--mode", lo->mode, "only policies with this mode")
        ->check(CLI::IsMember({"enforce", "testing", "none"}));
    list->add_flag("--failing", lo->failing, "only domains whose last refresh failed");
    list->add_flag("--expired", lo->expired, "only domains whose policy has expired");
    list->callback([lo, &g, &rc] {
        Config cfg;
        if (!load_cli_config(g, cfg)) return void(rc = 3);
        auto store = open_store(cfg, StoreAccess::read_only, rc);
        if (!store) return;
        const UnixTime now = SystemClock().now();
        rc = 0;
        auto f = store->for_each([&](std::string_view key, const Lookup<CacheRecord>& r) {
            if (!r.found()) {
                std::cerr << "stsguard cache: " << key << ": "
                          << (r.failed() ? r.failure().reason : std::string("unreadable")) << "\n";
                return Visit::next;
            }
            const CacheRecord& c = r.value();
            const bool has = c.state == PolicyState::has_policy;
            if (!lo->mode.empty() && (!has || lo->mode != mode_name(c.policy.mode))) return Visit::next;
            if (lo->failing && c.consecutive_failures == 0) return Visit::next;
            if (lo->expired && !(has && !c.policy_usable_at(now))) return Visit::next;
            if (lo->json) {
                std::cout << dump_json(record_json(c), JsonStyle::compact) << "\n";
            } else {
                std::cout << c.domain.str() << "\t" << (has ? mode_name(c.policy.mode) : "no-policy") << "\t"
                          << (has ? iso_time(c.expires_at) : "-") << "\t"
                          << outcome_kind_name(c.last_outcome.kind) << ":" << c.last_outcome.code << "\n";
            }
            return Visit::next;
        });
        if (f) {
            std::cerr << "stsguard cache: " << f->reason << "\n";
            rc = 3;
        }
    });

    struct ShowOpts {
        bool json = false;
        std::string domain;
    };
    auto so = std::make_shared<ShowOpts>();
    auto* show = cmd->add_subcommand("show", "every field of one cached domain");
    show->add_flag("--json", so->json, "JSON output");
    show->add_option("DOMAIN", so->domain)->required();
    show->callback([so, &g, &rc] {
        Config cfg;
        if (!load_cli_config(g, cfg)) return void(rc = 3);
        auto ds = parse_domains({so->domain}, rc);
        if (ds.empty()) return;
        auto store = open_store(cfg, StoreAccess::read_only, rc);
        if (!store) return;
        auto r = store->get(ds[0]);
        if (r.not_found()) {
            std::cerr << "stsguard cache: " << ds[0].str() << " is not cached\n";
            return void(rc = 2);
        }
        if (r.failed()) {
            std::cerr << "stsguard cache: " << r.failure().reason << "\n";
            return void(rc = 3);
        }
        if (so->json) std::cout << dump_json(record_json(r.value())) << "\n";
        else print_record(r.value(), SystemClock().now());
        rc = 0;
    });

    auto del_domains = std::make_shared<std::vector<std::string>>();
    auto* del = cmd->add_subcommand("delete", "forget domains; the next lookup rediscovers them");
    del->add_option("DOMAIN", *del_domains)->required();
    del->callback([del_domains, &g, &rc] {
        Config cfg;
        if (!load_cli_config(g, cfg)) return void(rc = 3);
        auto ds = parse_domains(*del_domains, rc);
        if (ds.empty()) return;
        auto store = open_store(cfg, StoreAccess::read_write, rc);
        if (!store) return;
        rc = 0;
        for (const auto& d : ds) {
            auto r = store->remove(d);
            if (r.found()) std::cout << d.str() << ": deleted\n";
            else if (r.not_found()) std::cout << d.str() << ": not cached\n", rc = std::max(rc, 1);
            else std::cerr << "stsguard cache: " << r.failure().reason << "\n", rc = 3;
        }
    });

    struct RefreshOpts {
        bool all = false, json = false;
        std::vector<std::string> domains;
    };
    auto ro = std::make_shared<RefreshOpts>();
    auto* refresh = cmd->add_subcommand("refresh", "discover domains now (TXT, policy, MX) and store the result");
    refresh->add_flag("--all", ro->all, "every cached domain");
    refresh->add_flag("--json", ro->json, "JSON lines");
    refresh->add_option("DOMAIN", ro->domains);
    refresh->callback([ro, &g, &rc] {
        Config cfg;
        if (!load_cli_config(g, cfg)) return void(rc = 3);
        if (ro->all == !ro->domains.empty()) {
            std::cerr << "stsguard cache refresh: name domains or --all (not both)\n";
            return void(rc = 3);
        }
        auto store = open_store(cfg, StoreAccess::read_write, rc);
        if (!store) return;
        std::vector<DomainName> ds;
        if (ro->all) {
            store->for_each([&](std::string_view, const Lookup<CacheRecord>& r) {
                if (r.found()) ds.push_back(r.value().domain);
                return Visit::next;
            });
        } else {
            ds = parse_domains(ro->domains, rc);
            if (ds.empty()) return;
        }
        if (ds.empty()) return void(rc = 0);
        rc = do_refresh(cfg, *store, ds, ro->json);
    });

    auto stats_json = std::make_shared<bool>(false);
    auto* stats = cmd->add_subcommand("stats", "entries by mode, failing domains, file and map size");
    stats->add_flag("--json", *stats_json, "JSON output");
    stats->callback([stats_json, &g, &rc] {
        Config cfg;
        if (!load_cli_config(g, cfg)) return void(rc = 3);
        auto store = open_store(cfg, StoreAccess::read_only, rc);
        if (!store) return;
        auto s = store->stats(StatsDetail::by_mode);
        if (!s.found()) {
            std::cerr << "stsguard cache: " << (s.failed() ? s.failure().reason : "no stats") << "\n";
            return void(rc = 3);
        }
        std::uint64_t failing = 0;
        store->for_each([&](std::string_view, const Lookup<CacheRecord>& r) {
            if (r.found() && r.value().consecutive_failures > 0) ++failing;
            return Visit::next;
        });
        const StoreStats& st = s.value();
        nlohmann::json j = {{"entries", st.entries},   {"enforce", st.enforce},     {"testing", st.testing},
                            {"none", st.none},         {"no_policy", st.no_policy}, {"failing", failing},
                            {"corrupt", st.corrupt},   {"file_bytes", st.file_bytes}, {"used_bytes", st.used_bytes},
                            {"map_bytes", st.map_bytes}, {"schema_version", st.schema_version}, {"path", st.data_path}};
        if (*stats_json) std::cout << dump_json(j) << "\n";
        else
            for (auto& [k, v] : j.items()) std::cout << k << ": " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
        rc = 0;
    });

    auto* exp = cmd->add_subcommand("export", "every record as one JSON object per line");
    exp->callback([&g, &rc] {
        Config cfg;
        if (!load_cli_config(g, cfg)) return void(rc = 3);
        auto store = open_store(cfg, StoreAccess::read_only, rc);
        if (!store) return;
        rc = 0;
        auto f = store->for_each([&](std::string_view key, const Lookup<CacheRecord>& r) {
            if (r.found()) std::cout << dump_json(record_json(r.value()), JsonStyle::compact) << "\n";
            else std::cerr << "stsguard cache: skipping " << key << ": unreadable\n", rc = 1;
            return Visit::next;
        });
        if (f) std::cerr << "stsguard cache: " << f->reason << "\n", rc = 3;
    });

    auto imp_file = std::make_shared<std::string>("-");
    auto* imp = cmd->add_subcommand("import", "load records (JSON lines, as written by export)");
    imp->add_option("FILE", *imp_file, "file, or - for standard input");
    imp->callback([imp_file, &g, &rc] {
        Config cfg;
        if (!load_cli_config(g, cfg)) return void(rc = 3);
        std::ifstream file;
        std::istream* in = &std::cin;
        if (*imp_file != "-") {
            file.open(*imp_file);
            if (!file) {
                std::cerr << "stsguard cache import: cannot open " << *imp_file << "\n";
                return void(rc = 3);
            }
            in = &file;
        }
        auto store = open_store(cfg, StoreAccess::read_write, rc);
        if (!store) return;
        rc = 0;
        std::vector<CacheRecord> batch;
        std::size_t imported = 0, lineno = 0, bad = 0;
        auto flush = [&] {
            if (batch.empty()) return true;
            if (auto f = store->put_all(batch)) {
                std::cerr << "stsguard cache import: " << f->reason << "\n";
                rc = 3;
                return false;
            }
            imported += batch.size();
            batch.clear();
            return true;
        };
        std::string line;
        while (std::getline(*in, line)) {
            ++lineno;
            if (line.empty()) continue;
            std::string why;
            if (line.size() > kMaxImportLine) why = "line longer than 1 MiB";
            std::optional<CacheRecord> r;
            if (why.empty()) {
                auto j = nlohmann::json::parse(line, nullptr, false);
                if (j.is_discarded()) why = "not valid JSON";
                else r = record_from_json(j, &why);
            }
            if (!r) {
                std::cerr << "stsguard cache import: line " << lineno << ": " << why << "\n";
                ++bad;
                continue;
            }
            batch.push_back(std::move(*r));
            if (batch.size() >= kImportBatch && !flush()) return;
        }
        if (!flush()) return;
        std::cerr << "stsguard cache import: " << imported << " records imported, " << bad << " skipped\n";
        if (bad) rc = 1;
    });
}

}  // namespace stsguard
