// dry_run_cmd.cc - `stsguard dry-run [--json] [FILE|-]`: for the
// destinations in FILE (domains, or Postfix smtp log lines; see
// checker/dry_run.h), would delivery succeed if their policy were
// enforced?  Checks check_concurrency domains at once; a progress line on
// stderr only when stderr is a terminal.
//
// Exit status (critical > unknown > warning > ok): 0 nothing would break,
// 1 some domain is degraded (an MX refused, another works), 2 some domain
// would fail, 3 some domain could not be decided (timeouts), or a usage
// or input error (unreadable file; no usable line at all).
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>

#include "checker/dry_run.h"
#include "checker/starttls_probe.h"
#include "cli/check_report.h"
#include "cli/commands.h"
#include "cli/engine_wiring.h"
#include "cli/json_util.h"
#include "policy-cache/config.h"
#include "policy-cache/settings.h"

namespace stsguard {

void add_dry_run_command(CLI::App& app, const GlobalOptions& g, int& rc) {
    struct Opts {
        bool json = false;
        std::string file = "-";
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand(
        "dry-run", "which destinations would break if their MTA-STS policy were enforced (domains or Postfix log)");
    cmd->add_flag("--json", o->json, "JSON output (schema: docs/checks.md)");
    cmd->add_option("FILE", o->file, "domains, one per line, or Postfix log lines; - for stdin (default)");
    cmd->callback([o, &g, &rc] {
        const auto fail = [&rc](const std::string& msg) {
            std::cerr << "stsguard dry-run: " << msg << "\n";
            rc = static_cast<int>(ExitCode::unknown);
        };
        Config cfg;
        if (!load_cli_config(g, cfg)) {
            rc = static_cast<int>(ExitCode::unknown);
            return;
        }
        DestinationList input;
        if (o->file == "-") {
            input = read_destinations(std::cin);
        } else {
            std::ifstream in(o->file, std::ios::binary);
            if (!in) return fail("cannot read " + o->file);
            input = read_destinations(in);
            if (in.bad()) return fail("error reading " + o->file);
        }
        if (!o->json)
            for (const auto& p : input.problems)
                std::cerr << "stsguard dry-run: " << o->file << ", line " << p.line << ": " << p.why << ": " << p.text
                          << "\n";
        if (input.destinations.empty() && input.problem_count > 0)
            return fail("no usable destination in " + o->file);

        https_global_init();
        SystemClock clock;
        auto prober = StarttlsProber::create(probe_settings(cfg), clock);
        if (!prober.found())
            return fail("STARTTLS probe: " + (prober.failed() ? prober.failure().reason : prober.not_found_info().reason));
        const StarttlsProber& p = *prober.value();
        AdapterFactory make = worker_adapter_factory(cfg);
        DryRunSettings s;
        s.concurrency = cfg.check_concurrency;
        s.probe_concurrency = cfg.probe_concurrency;
        s.probe_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.probe_timeout);

        const bool show_progress = isatty(2) == 1;
        ProgressFn progress;
        if (show_progress)
            progress = [](std::size_t done, std::size_t total, const DomainName& last) {
                std::cerr << "\r\033[K[" << done << "/" << total << "] " << last.str() << std::flush;
            };
        auto ran = run_dry_run(
            input.destinations, make,
            [&p](const ProbeTarget& t, Deadline dl) { return p.probe(t, dl); }, clock, s, progress);
        if (show_progress) std::cerr << "\r\033[K" << std::flush;
        if (!ran.found()) return fail(ran.failed() ? ran.failure().reason : ran.not_found_info().reason);
        std::vector<DryRunResult>& results = ran.value();
        sort_by_breakage(results);
        if (o->json)
            std::cout << dump_json(dry_run_json(results, input, cfg)) << "\n";
        else
            print_dry_run(std::cout, color_for_fd(1), results, input);
        rc = static_cast<int>(exit_code_of(dry_run_status(results)));
    });
}

}  // namespace stsguard
