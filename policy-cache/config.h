// config.h - the one typed, validated configuration of stsguard.
//
// Read from /etc/stsguard/stsguard.conf (or -c FILE) in Postfix main.cf
// style: "key = value", '#' comments, a line starting with white space
// continues the previous one.  Durations take Postfix units (s m h d w;
// a bare number is seconds); booleans are yes/no.  Every limit stsguard
// has is a named key here with its default, so nothing is hidden.
// Unknown keys and bad values are errors that name the file and line.
//
// Failures: parse_config() returns the errors, never throws.
// Limits: a config file over 1 MiB is refused.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "policy-cache/clock.h"

namespace stsguard {

inline constexpr const char* kDefaultConfigPath = "/etc/stsguard/stsguard.conf";

struct Config {
    // --- DNS (policy-cache/dns_resolver) --------------------------------
    std::vector<std::string> dns_servers;  // ADDR[:PORT]; empty: /etc/resolv.conf
    Seconds dns_timeout{5};                // per query attempt
    int dns_retries = 2;                   // extra attempts after the first

    // --- policy fetch (policy-cache/https_fetcher) ----------------------
    std::string tls_ca_file;               // empty: system trust store
    std::string tls_ca_dir;
    Seconds policy_fetch_connect_timeout{10};
    Seconds policy_fetch_timeout{20};      // whole transfer (RFC 8461 3.3 suggests a timeout)
    std::int64_t policy_max_bytes = 65536; // RFC 8461 3.3: 64 KiB
    bool policy_fetch_allow_private = false;
    std::string policy_fetch_proxy;        // empty: no proxy, environment ignored

    // --- cache and refresh (policy-cache/policy_cache) ------------------
    std::string cache_dir = "/var/lib/stsguard";
    std::int64_t cache_map_size = 64LL * 1024 * 1024;  // initial LMDB map; grows
    Seconds txt_check_interval{3600};
    Seconds refresh_unused_after{30 * 86400};
    Seconds negative_cache_ttl{3600};      // "no policy" remembered this long
    Seconds failure_backoff_min{300};      // first retry after a failure
    Seconds failure_backoff_max{86400};
    int fetch_concurrency = 16;            // discoveries in flight at once

    // --- service (postfix/) ---------------------------------------------
    std::vector<std::string> listen{"inet:127.0.0.1:8461"};  // inet:HOST:PORT | unix:PATH
    std::string unix_socket_owner;
    std::string unix_socket_group;
    int unix_socket_mode = 0666;
    std::int64_t max_request_bytes = 4096;
    int max_connections = 4096;
    Seconds idle_timeout{300};
    Seconds lookup_wait{10};              // at most 90s: Postfix gives up on a socketmap after 100s
    std::string user;                      // drop privileges after bind; empty: stay
    bool log_decisions = false;
    std::string log_target = "syslog";     // syslog | stderr
    std::string metrics_listen;            // inet:HOST:PORT; empty: off
    int metrics_max_connections = 16;      // concurrent scrape connections
    Seconds metrics_timeout{10};           // idle scrape connection
    std::size_t discovery_queue_max = 10000;  // domains waiting for a worker
    Seconds sweep_interval{300};           // background refresh scan of the cache
    Seconds last_used_flush{60};           // how often lookups' last_used reach the cache

    // --- answers (postfix/policy_answer), defaults for every map name ----
    std::string mx_match = "exact";        // exact | patterns
    bool enforce_testing = false;          // testing policies answered like enforce
    std::string on_temp_failure = "notfound";  // notfound (RFC fail-open) | temp
    bool postfix_attributes = false;       // Postfix 3.10+ policy_type=sts ... attributes
    // Per-map overrides: "map_names = tlsrpt" then "tlsrpt_postfix_attributes = yes".
    std::vector<std::string> map_names;
    std::map<std::string, std::map<std::string, std::string>> map_overrides;

    // --- milter (plugin/) -------------------------------------------------
    std::string milter_listen = "inet:8462@127.0.0.1";  // libmilter: inet:PORT@HOST | unix:PATH
    Seconds milter_wait{0};                // longest a recipient waits for discovery (0: never)
    std::string milter_action = "prefetch";  // prefetch | header | hold
    std::vector<std::string> milter_exempt_domains;  // "example.com" exact, ".example.com" subdomains
    Seconds milter_timeout{30};            // libmilter smfi_settimeout: I/O with the MTA

    // --- checker ----------------------------------------------------------
    Seconds probe_timeout{15};
    int probe_concurrency = 8;             // STARTTLS probes at once (check, dry-run)
    int check_concurrency = 8;             // domains checked at once (dry-run)
    int cert_expiry_warn_days = 14;
};

struct ConfigError {
    std::string file;
    int line = 0;  // 0: not tied to a line (command line, missing file)
    std::string message;
};

// The text form of every key, for `stsguard config check`.
std::vector<std::pair<std::string, std::string>> config_effective(const Config& c);

// Parses main.cf-style text into cfg (which holds the defaults to start
// from).  Returns every error found; cfg keeps defaults for bad keys.
std::vector<ConfigError> parse_config(std::string_view text, const std::string& file_name,
                                      Config& cfg);

// Reads and parses a file.  missing_ok: a missing file is not an error
// (the default path; embedded defaults apply).
enum class MissingFile { error, ok };
std::vector<ConfigError> load_config_file(const std::string& path, MissingFile missing,
                                          Config& cfg);

// Settings that may be overridden per socketmap name.
bool is_map_setting(std::string_view key);

// Postfix-style duration: "30", "30s", "5m", "2h", "1d", "1w".
bool parse_duration(std::string_view text, Seconds& out);

}  // namespace stsguard
