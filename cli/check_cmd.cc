// check_cmd.cc - `stsguard check [--json] [--verbose] [--map NAME] DOMAIN...`:
// every check of checker/checks.h for each domain, with the service's own
// adapters, and what `serve` would answer Postfix for it on a cold cache.
//
// Exit status (monitoring plugin, worst over the domains; critical >
// unknown > warning > ok): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (a
// temporary DNS failure, no MX reachable from here, or a usage error).
// Output: a table per domain (colour only on a terminal), or --json with
// the schema of docs/checks.md.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "checker/check_gather.h"
#include "checker/probe_pool.h"
#include "checker/starttls_probe.h"
#include "cli/check_report.h"
#include "cli/commands.h"
#include "cli/json_util.h"
#include "policy-cache/config.h"
#include "policy-cache/policy_store.h"
#include "policy-cache/settings.h"
#include "policy-cache/trust_store.h"

namespace stsguard {

void add_check_command(CLI::App& app, const GlobalOptions& g, int& rc) {
    struct Opts {
        bool json = false;
        bool verbose = false;
        std::string map = "postfix";
        std::vector<std::string> domains;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("check", "check a domain's MTA-STS deployment: DNS, policy, MX, certificates, TLSRPT");
    cmd->add_flag("--json", o->json, "JSON output (schema: docs/checks.md)");
    cmd->add_flag("-v,--verbose", o->verbose, "every finding, every probe and its SMTP transcript");
    cmd->add_option("--map", o->map, "socketmap name for the Postfix answer (default postfix)");
    cmd->add_option("DOMAIN", o->domains, "policy domains")->required();
    cmd->callback([o, &g, &rc] {
        const auto usage_error = [&rc](const std::string& msg) {
            std::cerr << "stsguard check: " << msg << "\n";
            rc = static_cast<int>(ExitCode::unknown);
        };
        Config cfg;
        if (!load_cli_config(g, cfg)) {
            rc = static_cast<int>(ExitCode::unknown);
            return;
        }
        std::string why;
        auto dns = make_ldns_resolver(dns_settings(cfg), &why);
        if (!dns) return usage_error("DNS: " + why);
        https_global_init();
        SystemClock clock;
        auto fetcher = make_curl_fetcher(fetch_settings(cfg), *dns,
                                         std::make_shared<TrustStore>(fetch_settings(cfg), clock));
        auto prober = StarttlsProber::create(probe_settings(cfg), clock);
        if (!prober.found())
            return usage_error("STARTTLS probe: " +
                               (prober.failed() ? prober.failure().reason : prober.not_found_info().reason));
        const StarttlsProber& p = *prober.value();

        std::unique_ptr<PolicyStore> store;
        std::string store_note;
        auto opened = PolicyStore::open(store_options(cfg, StoreAccess::read_only));
        if (opened.found())
            store = std::move(opened.value());
        else if (opened.not_found())
            store_note = "no cache in " + cfg.cache_dir;
        else
            store_note = "cache " + cfg.cache_dir + ": " + opened.failure().reason;

        CheckEnv env{.dns = *dns,
                     .fetcher = *fetcher,
                     .clock = clock,
                     .probe = [&p](const ProbeTarget& t, Deadline dl) { return p.probe(t, dl); },
                     .probe_concurrency = cfg.probe_concurrency,
                     .probe_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.probe_timeout),
                     .probe_overall = std::chrono::milliseconds(0),
                     .store = store.get(),
                     .store_note = store_note,
                     .smtp_port = 25};
        const Color color = o->json ? Color::off : color_for_fd(1);
        const Detail detail = o->verbose ? Detail::verbose : Detail::normal;
        DomainStatus worst = DomainStatus::ok;
        nlohmann::json domains = nlohmann::json::array();
        bool first = true;
        for (const auto& text : o->domains) {
            auto domain = DomainName::parse(text, &why);
            if (!domain) {
                worst = worse(worst, DomainStatus::unknown);
                if (o->json)
                    domains.push_back({{"domain", text},
                                       {"status", "unknown"},
                                       {"error", "invalid domain: " + why},
                                       {"postfix_answer", nullptr},
                                       {"checks", nlohmann::json::object()}});
                else
                    std::cout << (first ? "" : "\n") << printable(text, 253) << ": UNKNOWN - invalid domain: " << why
                              << "\n";
                first = false;
                continue;
            }
            const DomainFacts facts = gather_facts(*domain, env, CheckScope::full);
            const DomainReport report =
                judge_domain(facts, o->verbose ? Transcripts::include : Transcripts::omit);
            const PostfixAnswer answer = cold_cache_answer(facts, cfg, o->map);
            worst = worse(worst, report.status);
            if (o->json) {
                domains.push_back(domain_json(facts, report, answer));
            } else {
                if (!first) std::cout << "\n";
                print_domain(std::cout, color, facts, report, answer, detail);
                std::cout.flush();
            }
            first = false;
        }
        if (o->json)
            std::cout << dump_json({{"status", domain_status_name(worst)}, {"domains", domains}}) << "\n";
        rc = static_cast<int>(exit_code_of(worst));
    });
}

}  // namespace stsguard
