// serve_cmd.cc - `stsguard serve`: the Postfix smtp_tls_policy_maps
// socketmap service.  Wires the engine (store, refresher, discovery pool)
// to the socketmap server on one event loop, and handles the daemon's
// life: signals (HUP reload, TERM/INT drain), sd_notify, privilege drop,
// periodic last-used flushes and background refresh sweeps.
#include <CLI/CLI.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <iostream>
#include <mutex>
#include <optional>

#include "cli/commands.h"
#include "cli/engine_wiring.h"
#include "policy-cache/config.h"
#include "policy-cache/discovery_pool.h"
#include "policy-cache/logger.h"
#include "policy-cache/policy_store.h"
#include "policy-cache/refresher.h"
#include "policy-cache/settings.h"
#include "postfix/event_loop.h"
#include "postfix/metrics_endpoint.h"
#include "postfix/policy_service.h"
#include "postfix/socketmap_server.h"

namespace stsguard {
namespace {

constexpr std::size_t kMaxSweepBatch = 10000;  // domains queued per sweep at most

// Cache entries by mode, recounted by the sweep on a worker (a full scan
// has no place on the loop thread) and read by metrics scrapes.
class CacheGauges {
public:
    void set(const StoreStats& s) {
        std::lock_guard<std::mutex> l(mu_);
        stats_ = s;
    }
    void fill(GaugeSnapshot& g) const {
        std::lock_guard<std::mutex> l(mu_);
        g.cache_entries = stats_.entries;
        g.cache_enforce = stats_.enforce;
        g.cache_testing = stats_.testing;
        g.cache_none = stats_.none;
        g.cache_no_policy = stats_.no_policy;
    }

private:
    mutable std::mutex mu_;
    StoreStats stats_;
};

// Opened with the socketmap listeners, before the privilege drop.
Lookup<ListenSocket> open_metrics_socket(const std::string& text) {
    auto addr = parse_listen_address(text);
    if (!addr.found()) return Failure::perm("metrics-listen", addr.failed() ? addr.failure().reason : "invalid");
    if (addr.value().kind != ListenAddress::Kind::inet)
        return Failure::perm("metrics-listen", "must be inet:HOST:PORT");
    return open_listen_socket(addr.value());
}

ServerLimits server_limits(const Config& c) {
    ServerLimits l;
    l.max_request_bytes = static_cast<std::size_t>(c.max_request_bytes);
    l.max_connections = static_cast<std::size_t>(c.max_connections);
    l.idle_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.idle_timeout);
    return l;
}

LogFn server_log(const Logger& log) {
    return [&log](LogLevel level, const std::string& msg) {
        switch (level) {
            case LogLevel::debug: log.debug(msg); break;
            case LogLevel::info: log.info(msg); break;
            case LogLevel::warning: log.warning(msg); break;
            case LogLevel::error: log.error(msg); break;
        }
    };
}

int run_serve(const GlobalOptions& g, bool log_stderr) {
    // Block the signals before any thread starts (threads inherit the
    // mask), so only the loop's signalfd ever sees them.
    sigset_t mask;
    sigemptyset(&mask);
    for (int s : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&mask, s);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);
    Config cfg;
    if (!load_cli_config(g, cfg)) return static_cast<int>(ExitCode::unknown);
    Logger log("stsguard/serve", log_stderr || cfg.log_target == "stderr" ? LogTarget::stderr_stream : LogTarget::syslog);

    auto opened = PolicyStore::open(store_options(cfg, StoreAccess::read_write));
    if (!opened.found())
        return startup_error(log, "cache " + cfg.cache_dir + ": " +
                                      (opened.failed() ? opened.failure().reason : opened.not_found_info().reason));
    PolicyStore& store = *opened.value();

    // Listeners first, so a port conflict fails start-up loudly.
    std::vector<ListenSocket> sockets;
    UnixSocketOptions unix_opts{cfg.unix_socket_owner, cfg.unix_socket_group, cfg.unix_socket_mode};
    for (const auto& text : cfg.listen) {
        auto addr = parse_listen_address(text);
        if (!addr.found())
            return startup_error(log, "listen = " + text + ": " + (addr.failed() ? addr.failure().reason : "invalid"));
        auto sock = open_listen_socket(addr.value(), unix_opts);
        if (!sock.found())
            return startup_error(log, "listen " + text + ": " + (sock.failed() ? sock.failure().reason : "cannot listen"));
        sockets.push_back(std::move(sock.value()));
    }
    std::optional<ListenSocket> metrics_socket;
    if (!cfg.metrics_listen.empty()) {
        auto sock = open_metrics_socket(cfg.metrics_listen);
        if (!sock.found())
            return startup_error(log, "metrics_listen = " + cfg.metrics_listen + ": " +
                                          (sock.failed() ? sock.failure().reason : "cannot listen"));
        metrics_socket = std::move(sock.value());
    }
    if (!drop_privileges(cfg.user, log)) return static_cast<int>(ExitCode::unknown);

    https_global_init();
    SystemClock clock;
    Jitter jitter;
    Refresher refresher(store, clock, refresh_settings(cfg), [&jitter] { return jitter(); });
    AdapterFactory factory = worker_adapter_factory(cfg);
    ServiceMetrics metrics;
    SteadyMonotonicClock mono;
    EventLoop loop(mono);
    DiscoveryPool pool(refresher, factory, cfg.fetch_concurrency, cfg.discovery_queue_max);
    auto service = std::make_shared<PolicyService>(store, pool, clock, loop, service_settings(cfg), log, metrics);
    SocketmapServer server(loop, service, server_limits(cfg), server_log(log));
    for (auto& s : sockets) {
        std::string name = s.address().to_string();
        if (!server.add_listener(std::move(s))) return static_cast<int>(ExitCode::unknown);
        log.info("listening on " + name);
    }

    auto gauges = std::make_shared<CacheGauges>();
    std::unique_ptr<MetricsEndpoint> metrics_endpoint;
    if (metrics_socket) {
        MetricsLimits ml;
        ml.max_connections = static_cast<unsigned>(cfg.metrics_max_connections);
        ml.timeout = cfg.metrics_timeout;
        MetricsRenderFn render = [&metrics, &server, &pool, &store, gauges] {
            GaugeSnapshot g;
            const WriteCounters wc = store.write_counters();
            g.cache_writes = wc.writes;
            g.cache_commits = wc.commits;
            g.open_connections = server.counters().open_connections;
            PoolStats ps = pool.stats();
            g.discoveries_running = ps.running;
            g.discoveries_queued = ps.queued;
            g.discovery_workers = ps.workers;
            g.discovery_worker_start_failures = ps.worker_start_failures;
            gauges->fill(g);
            return metrics.render(g);
        };
        std::string name = metrics_socket->address().to_string();
        auto ep = MetricsEndpoint::start(loop, std::move(*metrics_socket), ml, render, server_log(log));
        if (!ep.found())
            return startup_error(log, "metrics_listen = " + cfg.metrics_listen + ": " +
                                          (ep.failed() ? ep.failure().reason : "cannot start"));
        metrics_endpoint = std::move(ep.value());
        log.info("metrics on http://" + name.substr(5) + "/metrics");
    }

    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) throw std::runtime_error("signalfd failed");
    bool stopping = false;
    std::shared_ptr<PolicyService> current = service;
    loop.watch(sfd, IoInterest::read, [&](IoEvents) {
        signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
            if (si.ssi_signo == SIGHUP) {
                sd_notify(0, "RELOADING=1");
                Config next;
                if (!load_cli_config(g, next)) {
                    log.error("reload: configuration has errors (run 'stsguard config check'); "
                              "keeping the running configuration");
                } else {
                    current = std::make_shared<PolicyService>(store, pool, clock, loop, service_settings(next), log,
                                                              metrics);
                    server.set_handler(current);
                    server.set_limits(server_limits(next));
                    log.info("reloaded configuration (listen addresses, cache and workers need a restart)");
                }
                sd_notify(0, "READY=1");
            } else if (!stopping) {
                stopping = true;
                sd_notify(0, "STOPPING=1");
                log.info("stopping: draining connections");
                server.stop_accepting();
                server.drain(std::chrono::seconds(5), [&loop] { loop.stop(); });
            }
        }
    });

    // Periodic work: last-used flushes and background refresh sweeps.
    std::function<void()> flush = [&] {
        current->flush_last_used();
        loop.run_after(cfg.last_used_flush, flush);
    };
    loop.run_after(cfg.last_used_flush, flush);
    const RefreshSettings rs = refresh_settings(cfg);
    std::function<void()> sweep = [&] {
        pool.post([&store, &pool, &clock, rs, gauges] {
            if (auto st = store.stats(StatsDetail::by_mode); st.found()) gauges->set(st.value());
            std::vector<DomainName> due;
            UnixTime now = clock.now();
            store.for_each([&](std::string_view, const Lookup<CacheRecord>& r) {
                if (r.found() && due_for_background_refresh(r.value(), now, rs)) due.push_back(r.value().domain);
                return due.size() >= kMaxSweepBatch ? Visit::stop : Visit::next;
            });
            for (const auto& d : due) pool.submit(d, nullptr);
        });
        loop.run_after(cfg.sweep_interval, sweep);
    };
    loop.run_after(std::chrono::seconds(5), sweep);

    sd_notify(0, "READY=1");
    log.info("stsguard " STSGUARD_VERSION " ready; cache " + cfg.cache_dir);
    loop.run();
    metrics_endpoint.reset();
    current->flush_last_used();
    close(sfd);
    log.info("stopped");
    return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, const GlobalOptions& g, int& rc) {
    auto log_stderr = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("serve", "run the Postfix smtp_tls_policy_maps socketmap service");
    cmd->add_flag("--log-to-stderr", *log_stderr, "log to standard error instead of syslog");
    cmd->callback([&g, &rc, log_stderr] { rc = run_serve(g, *log_stderr); });
}

}  // namespace stsguard
