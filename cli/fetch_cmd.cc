// fetch_cmd.cc - `stsguard fetch [--json] DOMAIN`: run RFC 8461 discovery
// now (no cache) and show the policy, or the exact reason there is none
// with its RFC 8460 result type.
//
// Exit status: 0 valid policy, 1 valid policy with warnings, 2 no policy
// or a permanent failure, 3 temporary failure or usage error.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/commands.h"
#include "cli/json_util.h"
#include "policy-cache/config.h"
#include "policy-cache/discovery.h"
#include "policy-cache/settings.h"
#include "policy-cache/trust_store.h"

namespace stsguard {
namespace {

nlohmann::json discovery_json(const Discovery& d) {
    using nlohmann::json;
    json j;
    j["domain"] = d.domain.str();
    j["outcome"] = discovery_status_name(d.status);
    j["reason_code"] = d.code;
    j["reason"] = d.reason;
    j["failure"] = d.failure_kind ? json(*d.failure_kind == FailureKind::temporary ? "temporary" : "permanent")
                                  : json(nullptr);
    j["rfc8460_result_type"] = d.status == DiscoveryStatus::failed ? json(d.rfc8460_type()) : json(nullptr);
    json txt;
    txt["owner"] = d.domain.sts_txt_owner();
    txt["records"] = d.txt.records;
    txt["cnames"] = d.txt.meta.cnames;
    txt["authenticated"] = d.txt.meta.authenticated;
    txt["verdict"] = txt_verdict_name(d.txt.txt.verdict);
    txt["id"] = d.txt.txt.id ? json(d.txt.txt.id->str()) : json(nullptr);
    txt["findings"] = findings_json(d.txt.txt.findings);
    j["txt"] = txt;
    j["fetch"] = nullptr;
    j["policy"] = nullptr;
    if (d.fetch && d.fetch->fetched) {
        const FetchedPolicy& f = *d.fetch->fetched;
        j["fetch"] = {{"url", f.url},           {"http_status", f.http_status},
                      {"content_type", f.content_type}, {"remote_ip", f.remote_ip},
                      {"tls_version", f.tls_version},   {"seconds", f.seconds},
                      {"bytes", f.body.size()}};
    }
    if (d.fetch && d.fetch->parse) {
        const PolicyParse& p = *d.fetch->parse;
        j["policy"] = {{"verdict", p.verdict == PolicyVerdict::valid ? "valid" : "invalid"},
                       {"mode", p.mode_text ? json(*p.mode_text) : json(nullptr)},
                       {"max_age", p.max_age ? json(*p.max_age) : json(nullptr)},
                       {"mx", p.mx},
                       {"findings", findings_json(p.findings)},
                       {"raw", d.fetch->fetched->body}};
    }
    return j;
}

void print_findings(const Findings& fs, const char* what) {
    for (const auto& f : fs) {
        std::cout << "  " << what << " ";
        if (f.line) std::cout << "line " << f.line << ": ";
        std::cout << severity_name(f.severity) << " [" << f.code << "] " << f.message << "\n";
    }
}

void print_human(const Discovery& d) {
    std::cout << d.domain.str() << ": " << discovery_status_name(d.status) << " (" << d.code << ")\n";
    std::cout << "  reason: " << d.reason << "\n";
    if (d.status == DiscoveryStatus::failed)
        std::cout << "  failure: "
                  << (d.failure_kind == FailureKind::temporary ? "temporary" : "permanent")
                  << ", RFC 8460 result type " << d.rfc8460_type() << "\n";
    for (const auto& r : d.txt.records) std::cout << "  TXT " << d.domain.sts_txt_owner() << ": \"" << r << "\"\n";
    print_findings(d.txt.txt.findings, "TXT");
    if (d.fetch && d.fetch->fetched) {
        const auto& f = *d.fetch->fetched;
        std::cout << "  fetched " << f.url << " from " << f.remote_ip << " (" << f.tls_version << ", HTTP "
                  << f.http_status << ", " << f.body.size() << " bytes, " << f.seconds << " s)\n";
    }
    if (const Policy* p = d.policy()) {
        std::cout << "  mode: " << mode_name(p->mode) << "\n  max_age: " << p->max_age.count() << "\n";
        for (const auto& mx : p->mx) std::cout << "  mx: " << mx << "\n";
    }
    if (d.fetch && d.fetch->parse) print_findings(d.fetch->parse->findings, "policy");
}

ExitCode exit_code(const Discovery& d) {
    switch (d.status) {
        case DiscoveryStatus::policy:
            return has_warnings(d.fetch->parse->findings) ? ExitCode::warning : ExitCode::ok;
        case DiscoveryStatus::no_policy: return ExitCode::critical;
        case DiscoveryStatus::failed:
            return d.failure_kind == FailureKind::temporary ? ExitCode::unknown : ExitCode::critical;
    }
    return ExitCode::unknown;
}

}  // namespace

void add_fetch_command(CLI::App& app, const GlobalOptions& g, int& rc) {
    struct Opts {
        bool json = false;
        std::string domain;
    };
    auto opts = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("fetch", "discover and fetch a domain's MTA-STS policy now (no cache)");
    cmd->add_flag("--json", opts->json, "JSON output");
    cmd->add_option("DOMAIN", opts->domain, "the policy domain")->required();
    cmd->callback([opts, &g, &rc] {
        Config cfg;
        if (!load_cli_config(g, cfg)) {
            rc = static_cast<int>(ExitCode::unknown);
            return;
        }
        std::string why;
        auto domain = DomainName::parse(opts->domain, &why);
        if (!domain) {
            std::cerr << "stsguard fetch: invalid domain '" << opts->domain << "': " << why << "\n";
            rc = static_cast<int>(ExitCode::unknown);
            return;
        }
        auto dns = make_ldns_resolver(dns_settings(cfg), &why);
        if (!dns) {
            std::cerr << "stsguard fetch: DNS: " << why << "\n";
            rc = static_cast<int>(ExitCode::unknown);
            return;
        }
        https_global_init();
        SystemClock clock;
        auto fetcher = make_curl_fetcher(fetch_settings(cfg), *dns,
                                         std::make_shared<TrustStore>(fetch_settings(cfg), clock));
        Discovery d = discover(*domain, *dns, *fetcher);
        if (opts->json)
            std::cout << dump_json(discovery_json(d)) << "\n";
        else
            print_human(d);
        rc = static_cast<int>(exit_code(d));
    });
}

}  // namespace stsguard
