#include "cli/engine_wiring.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <stdexcept>

#include "cli/commands.h"
#include "policy-cache/config.h"
#include "policy-cache/dns_resolver.h"
#include "policy-cache/https_fetcher.h"
#include "policy-cache/logger.h"
#include "policy-cache/settings.h"
#include "policy-cache/trust_store.h"

namespace stsguard {

namespace {

// The workers' trust store with the clock it ages by, in one allocation:
// the fetchers may outlive the factory, and the store refers to the clock.
struct SharedTrust {
    explicit SharedTrust(const FetchSettings& fs) : store(fs, clock) {}
    SystemClock clock;
    TrustStore store;
};

std::shared_ptr<TrustStore> shared_trust_store(const FetchSettings& fs) {
    auto owner = std::make_shared<SharedTrust>(fs);
    return std::shared_ptr<TrustStore>(owner, &owner->store);
}

}  // namespace

// Every worker's fetcher shares one TrustStore: the CA bundle is parsed
// once per process (lazily, on the first fetch), not once per worker.
AdapterFactory worker_adapter_factory(const Config& cfg) {
    FetchSettings fs = fetch_settings(cfg);
    std::shared_ptr<TrustStore> trust = shared_trust_store(fs);
    return [ds = dns_settings(cfg), fs = std::move(fs), trust = std::move(trust)]() {
        WorkerAdapters a;
        std::string why;
        a.dns = make_ldns_resolver(ds, &why);
        if (!a.dns) throw std::runtime_error("DNS resolver: " + why);
        a.fetcher = make_curl_fetcher(fs, *a.dns, trust);
        return a;
    };
}

int startup_error(const Logger& log, const std::string& msg) {
    log.log(LogSeverity::fatal, msg);
    std::string who = log.ident();  // "stsguard/serve" -> "stsguard serve"
    std::replace(who.begin(), who.end(), '/', ' ');
    std::cerr << who << ": " << msg << "\n";
    return static_cast<int>(ExitCode::unknown);
}

bool drop_privileges(const std::string& user, const Logger& log) {
    if (user.empty() || geteuid() != 0) return true;
    struct passwd* pw = getpwnam(user.c_str());
    if (!pw) {
        log.error("user '" + user + "' does not exist");
        return false;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        log.error("cannot drop privileges to '" + user + "'");
        return false;
    }
    return true;
}

}  // namespace stsguard
