// engine_wiring.h - the parts every command that runs discoveries builds
// the engine from (serve, milter, cache refresh, dry-run): one worker
// adapter factory, the refresh jitter source, and the daemons' privilege
// drop.  Kept in one place so the commands cannot drift apart.
//
// Failures: the factory throws std::runtime_error when a worker's DNS
// resolver cannot be created (start-up only: DiscoveryPool builds every
// worker in its constructor); drop_privileges() logs and returns false.
// Limits: none.
#pragma once

#include <mutex>
#include <random>
#include <string>

#include "policy-cache/discovery_pool.h"

namespace stsguard {

struct Config;
class Logger;

// Uniform [0, 1) for refresh scheduling, safe to call from worker threads.
class Jitter {
public:
    double operator()() {
        std::lock_guard<std::mutex> l(mu_);
        return dist_(rng_);
    }

private:
    std::mutex mu_;
    std::minstd_rand rng_{std::random_device{}()};
    std::uniform_real_distribution<double> dist_{0.0, 1.0};
};

// One ldns resolver and one curl fetcher per worker, from cfg's DNS and
// fetch settings (copied: the factory does not refer to cfg); the
// fetchers share one TrustStore (trust_store.h), parsed once.
AdapterFactory worker_adapter_factory(const Config& cfg);

// A fatal start-up error: logged (syslog or stderr, as configured) and
// printed to stderr as "stsguard <command>: msg"; returns the exit status.
int startup_error(const Logger& log, const std::string& msg);

// setuid/setgid/initgroups to `user` when running as root; a no-op for an
// empty user or a non-root process.
bool drop_privileges(const std::string& user, const Logger& log);

}  // namespace stsguard
