// commands.h - how cli/main.cc wires the subcommands of `stsguard`.
//
// Each subcommand lives in its own cli/<name>_cmd.cc and registers itself
// on the CLI11 app through an add_*_command() function.  A command's
// callback stores its exit status in the shared `int& rc`; statuses follow
// the monitoring-plugin convention used by every stsguard command.
//
// Failures: usage errors exit 3 (ExitCode::unknown) with a message naming
// the bad argument.  Limits: none.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace stsguard {

struct Config;

// Monitoring-plugin exit status (Nagios/Icinga): also used by lint.
enum class ExitCode : int { ok = 0, warning = 1, critical = 2, unknown = 3 };

// Options accepted before or after any subcommand.
struct GlobalOptions {
    std::string config_file;               // -c FILE; empty = default path if present
    std::vector<std::string> dns_servers;  // --dns ADDR[:PORT] (repeatable)
    std::string ca_file;                   // --ca-file FILE
};

// Loads the config named by the global options (or the default file, or
// embedded defaults) and applies command-line overrides.  On error prints
// every problem to stderr and returns false.
bool load_cli_config(const GlobalOptions& g, Config& out);

void add_lint_command(CLI::App& app, int& rc);
void add_fetch_command(CLI::App& app, const GlobalOptions& g, int& rc);
void add_config_command(CLI::App& app, const GlobalOptions& g, int& rc);
void add_serve_command(CLI::App& app, const GlobalOptions& g, int& rc);
void add_query_command(CLI::App& app, const GlobalOptions& g, int& rc);
void add_cache_command(CLI::App& app, const GlobalOptions& g, int& rc);
void add_check_command(CLI::App& app, const GlobalOptions& g, int& rc);
void add_dry_run_command(CLI::App& app, const GlobalOptions& g, int& rc);
void add_milter_command(CLI::App& app, const GlobalOptions& g, int& rc);

}  // namespace stsguard
