// main.cc - the `stsguard` command: one binary, one subcommand per role.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
    using namespace stsguard;
    CLI::App app{"stsguard " STSGUARD_VERSION
                 " - MTA-STS (RFC 8461) for Postfix: check, lint and enforce policies",
                 "stsguard"};
    app.require_subcommand(1);
    // Global options (-c, --dns, --ca-file) also after the subcommand:
    // subcommands created below inherit fallthrough.
    app.fallthrough();
    app.set_version_flag("--version", "stsguard " STSGUARD_VERSION);

    GlobalOptions g;
    app.add_option("-c,--config", g.config_file, "configuration file (main.cf style)");
    app.add_option("--dns", g.dns_servers, "DNS server ADDR[:PORT] (repeatable); default /etc/resolv.conf");
    app.add_option("--ca-file", g.ca_file, "CA bundle for policy HTTPS (default: system store)");

    int rc = static_cast<int>(ExitCode::unknown);
    add_lint_command(app, rc);
    add_fetch_command(app, g, rc);
    add_config_command(app, g, rc);
    add_serve_command(app, g, rc);
    add_query_command(app, g, rc);
    add_cache_command(app, g, rc);
    add_check_command(app, g, rc);
    add_dry_run_command(app, g, rc);
    add_milter_command(app, g, rc);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        // CLI11 delegates help() to the selected subcommand.
        std::cout << app.help();
        return 0;
    } catch (const CLI::CallForVersion&) {
        std::cout << "stsguard " STSGUARD_VERSION "\n";
        return 0;
    } catch (const CLI::ParseError& e) {
        std::cerr << "stsguard: " << e.what() << "\n"
                  << "Run 'stsguard --help' for usage.\n";
        return static_cast<int>(ExitCode::unknown);
    } catch (const std::exception& e) {
        // Start-up errors only; commands report outcomes through rc.
        std::cerr << "stsguard: fatal: " << e.what() << "\n";
        return static_cast<int>(ExitCode::unknown);
    }
    return rc;
}
