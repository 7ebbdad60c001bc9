// milter_cmd.cc - `stsguard milter`: the Postfix milter (smtpd_milters,
// non_smtpd_milters) that fetches recipient domains' MTA-STS policies at
// submission into the cache `stsguard serve` reads, and optionally
// annotates (header) or tempfails (hold) mail by destination policy.
// Wires the engine (store, refresher, discovery pool) to plugin/, and
// handles the daemon's life: signals, privilege drop, sd_notify.
// See docs/milter.md.
#include <CLI/CLI.hpp>

#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <mutex>

#include "cli/commands.h"
#include "cli/engine_wiring.h"
#include "plugin/milter_engine.h"
#include "plugin/milter_runner.h"
#include "plugin/milter_settings.h"
#include "plugin/prefetcher.h"
#include "policy-cache/config.h"
#include "policy-cache/discovery_pool.h"
#include "policy-cache/logger.h"
#include "policy-cache/policy_store.h"
#include "policy-cache/refresher.h"
#include "policy-cache/settings.h"

namespace stsguard {
namespace {

// Postfix's default milter_command_timeout: a longer wait makes Postfix
// give up on us (and apply milter_default_action) first.
constexpr Seconds kPostfixMilterCommandTimeout{30};
constexpr auto kDrainTimeout = std::chrono::seconds(10);

// libmilter leaves its unix socket behind (and removes a stale one at the
// next start); remove it at stop, like `serve` does, so a stopped milter
// is visibly stopped.  Best effort: after a privilege drop the directory
// may not allow it.
void remove_unix_socket(const std::string& listen, const Logger& log) {
    for (const char* prefix : {"unix:", "local:"}) {
        const std::string p = prefix;
        if (listen.compare(0, p.size(), p) != 0) continue;
        const std::string path = listen.substr(p.size());
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            log.warning("cannot remove socket " + path + ": " + std::strerror(errno));
    }
}

int run_milter(const GlobalOptions& g, bool log_stderr) {
    // Before any thread exists: libmilter's signal thread sigwait()s for
    // these, so every other thread (the discovery workers) must block them.
    sigset_t mask;
    sigemptyset(&mask);
    for (int s : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&mask, s);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);

    Config cfg;
    if (!load_cli_config(g, cfg)) return static_cast<int>(ExitCode::unknown);
    Logger log("stsguard/milter",
               log_stderr || cfg.log_target == "stderr" ? LogTarget::stderr_stream : LogTarget::syslog);
    std::string why;
    auto settings = milter_settings(cfg, &why);
    if (!settings) return startup_error(log, why);
    if (cfg.milter_wait >= kPostfixMilterCommandTimeout)
        log.warning("milter_wait = " + std::to_string(cfg.milter_wait.count()) +
                    "s reaches Postfix's default milter_command_timeout (30s); Postfix may give up first");

    auto opened = PolicyStore::open(store_options(cfg, StoreAccess::read_write));
    if (!opened.found())
        return startup_error(log, "cache " + cfg.cache_dir + ": " +
                                      (opened.failed() ? opened.failure().reason : opened.not_found_info().reason));
    PolicyStore& store = *opened.value();

    // The socket first, so a port conflict fails start-up loudly, then
    // the privilege drop, then threads.
    if (!milter_open(*settings, &why)) return startup_error(log, why);
    if (!drop_privileges(cfg.user, log)) return static_cast<int>(ExitCode::unknown);

    https_global_init();
    SystemClock clock;
    Jitter jitter;
    Refresher refresher(store, clock, refresh_settings(cfg), [&jitter] { return jitter(); });
    AdapterFactory factory = worker_adapter_factory(cfg);
    DiscoveryPool pool(refresher, factory, cfg.fetch_concurrency, cfg.discovery_queue_max);
    Prefetcher prefetcher(store, pool, clock, log);
    const std::string listen = settings->listen;
    const MilterAction action = settings->action;
    MilterEngine engine(std::move(*settings), prefetcher, clock, log);

    sd_notify(0, "READY=1");
    log.info("stsguard " STSGUARD_VERSION " milter ready on " + listen + "; action " + milter_action_name(action) +
             ", wait " + std::to_string(cfg.milter_wait.count()) + "s; cache " + cfg.cache_dir);
    const int rc = milter_run(engine, prefetcher, kDrainTimeout);
    sd_notify(0, "STOPPING=1");
    remove_unix_socket(listen, log);
    const auto& c = prefetcher.counters();
    log.info("stopped; discoveries started " + std::to_string(c.started.load()) + ", fresh in cache " +
             std::to_string(c.fresh.load()) + ", finished within milter_wait " +
             std::to_string(c.completed_in_wait.load()) + ", refused (queue full) " + std::to_string(c.refused.load()));
    return rc == 0 ? 0 : static_cast<int>(ExitCode::unknown);
}

}  // namespace

void add_milter_command(CLI::App& app, const GlobalOptions& g, int& rc) {
    auto log_stderr = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand(
        "milter", "run the Postfix milter: prefetch recipient domains' policies at submission (see docs/milter.md)");
    cmd->add_flag("--log-to-stderr", *log_stderr, "log to standard error instead of syslog");
    cmd->callback([&g, &rc, log_stderr] { rc = run_milter(g, *log_stderr); });
}

}  // namespace stsguard
