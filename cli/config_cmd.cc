// config_cmd.cc - loading the configuration for every command, and
// `stsguard config check`, which prints the effective settings (like
// `postconf`) and every error with its file and line.
#include <CLI/CLI.hpp>

#include <iostream>
#include <unistd.h>

#include "cli/commands.h"
#include "policy-cache/config.h"

namespace stsguard {
namespace {

void print_errors(const std::vector<ConfigError>& errors) {
    for (const auto& e : errors) {
        std::cerr << "stsguard: " << e.file;
        if (e.line) std::cerr << ", line " << e.line;
        std::cerr << ": " << e.message << "\n";
    }
}

std::vector<ConfigError> load_into(const GlobalOptions& g, Config& cfg) {
    std::vector<ConfigError> errors;
    if (!g.config_file.empty())
        errors = load_config_file(g.config_file, MissingFile::error, cfg);
    else
        errors = load_config_file(kDefaultConfigPath, MissingFile::ok, cfg);
    // Command-line overrides win over the file, as postfix -o does.
    if (!g.dns_servers.empty()) cfg.dns_servers = g.dns_servers;
    if (!g.ca_file.empty()) {
        if (access(g.ca_file.c_str(), R_OK) != 0)
            errors.push_back({"--ca-file", 0, "cannot read " + g.ca_file});
        cfg.tls_ca_file = g.ca_file;
    }
    return errors;
}

}  // namespace

bool load_cli_config(const GlobalOptions& g, Config& out) {
    auto errors = load_into(g, out);
    print_errors(errors);
    return errors.empty();
}

void add_config_command(CLI::App& app, const GlobalOptions& g, int& rc) {
    auto* cmd = app.add_subcommand("config", "inspect the configuration");
    cmd->require_subcommand(1);
    auto* check = cmd->add_subcommand("check", "print the effective settings and every error");
    check->callback([&g, &rc] {
        Config cfg;
        auto errors = load_into(g, cfg);
        const std::string src = g.config_file.empty() ? kDefaultConfigPath : g.config_file;
        for (const auto& [k, v] : config_effective(cfg)) std::cout << k << " = " << v << "\n";
        print_errors(errors);
        if (errors.empty()) std::cerr << "stsguard: " << src << ": configuration OK\n";
        rc = static_cast<int>(errors.empty() ? ExitCode::ok : ExitCode::critical);
    });
}

}  // namespace stsguard
