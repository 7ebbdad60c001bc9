#include "policy-cache/config.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

namespace stsguard {
namespace {

constexpr std::size_t kMaxConfigBytes = 1 << 20;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

bool parse_int(std::string_view v, std::int64_t lo, std::int64_t hi, std::int64_t& out) {
    std::int64_t x = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (ec != std::errc{} || p != v.data() + v.size() || x < lo || x > hi) return false;
    out = x;
    return true;
}

std::vector<std::string> split_list(std::string_view v) {
    // Postfix lists: separated by white space and/or commas.
    std::vector<std::string> out;
    std::string cur;
    for (char c : v) {
        if (c == ',' || c == ' ' || c == '\t') {
            if (!cur.empty()) out.push_back(std::move(cur)), cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

std::string format_duration(Seconds s) {
    auto n = s.count();
    if (n != 0 && n % 604800 == 0) return std::to_string(n / 604800) + "w";
    if (n != 0 && n % 86400 == 0) return std::to_string(n / 86400) + "d";
    if (n != 0 && n % 3600 == 0) return std::to_string(n / 3600) + "h";
    if (n != 0 && n % 60 == 0) return std::to_string(n / 60) + "m";
    return std::to_string(n) + "s";
}

// One entry per key: how to set it from text, and how to print it.  A
// table keeps parse and print in one place, so `config check` can never
// disagree with what is parsed.
struct Key {
    const char* name;
    std::function<std::string(Config&, std::string_view)> set;  // "" = ok, else error
    std::function<std::string(const Config&)> get;
};

Key duration_key(const char* name, Seconds Config::*m, std::int64_t min_s, std::int64_t max_s) {
    return {name,
            [=](Config& c, std::string_view v) -> std::string {
                Seconds d{};
                if (!parse_duration(v, d)) return "invalid duration '" + std::string(v) + "' (use e.g. 30s, 5m, 2h, 1d, 1w)";
                if (d.count() < min_s || d.count() > max_s)
                    return "duration " + std::string(v) + " out of range " + format_duration(Seconds{min_s}) + ".." +
                           format_duration(Seconds{max_s});
                c.*m = d;
                return "";
            },
            [=](const Config& c) { return format_duration(c.*m); }};
}

template <typename T>
Key int_key(const char* name, T Config::*m, std::int64_t lo, std::int64_t hi) {
    return {name,
            [=](Config& c, std::string_view v) -> std::string {
                std::int64_t x = 0;
                if (!parse_int(v, lo, hi, x))
                    return "invalid number '" + std::string(v) + "' (expected " + std::to_string(lo) + ".." +
                           std::to_string(hi) + ")";
                c.*m = static_cast<T>(x);
                return "";
            },
            [=](const Config& c) { return std::to_string(c.*m); }};
}

Key bool_key(const char* name, bool Config::*m) {
    return {name,
            [=](Config& c, std::string_view v) -> std::string {
                if (v == "yes" || v == "true" || v == "1") c.*m = true;
                else if (v == "no" || v == "false" || v == "0") c.*m = false;
                else return "invalid boolean '" + std::string(v) + "' (use yes or no)";
                return "";
            },
            [=](const Config& c) { return std::string(c.*m ? "yes" : "no"); }};
}

Key string_key(const char* name, std::string Config::*m) {
    return {name,
            [=](Config& c, std::string_view v) -> std::string {
                c.*m = std::string(v);
                return "";
            },
            [=](const Config& c) { return c.*m; }};
}

Key list_key(const char* name, std::vector<std::string> Config::*m) {
    return {name,
            [=](Config& c, std::string_view v) -> std::string {
                c.*m = split_list(v);
                return "";
            },
            [=](const Config& c) {
                std::string s;
                for (const auto& x : c.*m) s += (s.empty() ? "" : ", ") + x;
                return s;
            }};
}

Key mode_key(const char* name, int Config::*m) {
    return {name,
            [=](Config& c, std::string_view v) -> std::string {
                int x = 0;
                auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x, 8);
                if (ec != std::errc{} || p != v.data() + v.size() || x < 0 || x > 0777)
                    return "invalid octal mode '" + std::string(v) + "'";
                c.*m = x;
                return "";
            },
            [=](const Config& c) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "%04o", c.*m);
                return std::string(buf);
            }};
}

Key oneof_key(const char* name, std::string Config::*m, std::vector<std::string> allowed) {
    return {name,
            [=](Config& c, std::string_view v) -> std::string {
                for (const auto& a : allowed)
                    if (v == a) {
                        c.*m = std::string(v);
                        return "";
                    }
                std::string all;
                for (const auto& a : allowed) all += (all.empty() ? "" : ", ") + a;
                return "invalid value '" + std::string(v) + "' (expected one of: " + all + ")";
            },
            [=](const Config& c) { return c.*m; }};
}

const std::vector<Key>& keys() {
    constexpr std::int64_t kYear = 366LL * 86400;
    static const std::vector<Key> k = {
        list_key("dns_servers", &Config::dns_servers),
        duration_key("dns_timeout", &Config::dns_timeout, 1, 300),
        int_key("dns_retries", &Config::dns_retries, 0, 10),
        string_key("tls_ca_file", &Config::tls_ca_file),
        string_key("tls_ca_dir", &Config::tls_ca_dir),
        duration_key("policy_fetch_connect_timeout", &Config::policy_fetch_connect_timeout, 1, 300),
        duration_key("policy_fetch_timeout", &Config::policy_fetch_timeout, 1, 600),
        int_key("policy_max_bytes", &Config::policy_max_bytes, 1024, 65536),
        bool_key("policy_fetch_allow_private", &Config::policy_fetch_allow_private),
        string_key("policy_fetch_proxy", &Config::policy_fetch_proxy),
        string_key("cache_dir", &Config::cache_dir),
        int_key("cache_map_size", &Config::cache_map_size, 1LL << 20, 1LL << 40),
        duration_key("txt_check_interval", &Config::txt_check_interval, 60, 86400),
        duration_key("refresh_unused_after", &Config::refresh_unused_after, 3600, kYear),
        duration_key("negative_cache_ttl", &Config::negative_cache_ttl, 0, 7 * 86400),
        duration_key("failure_backoff_min", &Config::failure_backoff_min, 1, 86400),
        duration_key("failure_backoff_max", &Config::failure_backoff_max, 1, 7 * 86400),
        int_key("fetch_concurrency", &Config::fetch_concurrency, 1, 1024),
        list_key("listen", &Config::listen),
        string_key("unix_socket_owner", &Config::unix_socket_owner),
        string_key("unix_socket_group", &Config::unix_socket_group),
        mode_key("unix_socket_mode", &Config::unix_socket_mode),
        int_key("max_request_bytes", &Config::max_request_bytes, 256, 1 << 20),
        int_key("max_connections", &Config::max_connections, 1, 1 << 20),
        duration_key("idle_timeout", &Config::idle_timeout, 1, 86400),
        duration_key("lookup_wait", &Config::lookup_wait, 0, 90),
        string_key("user", &Config::user),
        bool_key("log_decisions", &Config::log_decisions),
        oneof_key("log_target", &Config::log_target, {"syslog", "stderr"}),
        string_key("metrics_listen", &Config::metrics_listen),
        int_key("metrics_max_connections", &Config::metrics_max_connections, 1, 1024),
        duration_key("metrics_timeout", &Config::metrics_timeout, 1, 300),
        int_key("discovery_queue_max", &Config::discovery_queue_max, 1, 10'000'000),
        duration_key("sweep_interval", &Config::sweep_interval, 10, 86400),
        duration_key("last_used_flush", &Config::last_used_flush, 1, 3600),
        oneof_key("mx_match", &Config::mx_match, {"exact", "patterns"}),
        bool_key("enforce_testing", &Config::enforce_testing),
        oneof_key("on_temp_failure", &Config::on_temp_failure, {"notfound", "temp"}),
        bool_key("postfix_attributes", &Config::postfix_attributes),
        list_key("map_names", &Config::map_names),
        string_key("milter_listen", &Config::milter_listen),
        duration_key("milter_wait", &Config::milter_wait, 0, 60),
        oneof_key("milter_action", &Config::milter_action, {"prefetch", "header", "hold"}),
        list_key("milter_exempt_domains", &Config::milter_exempt_domains),
        duration_key("milter_timeout", &Config::milter_timeout, 1, 3600),
        duration_key("probe_timeout", &Config::probe_timeout, 1, 600),
        int_key("probe_concurrency", &Config::probe_concurrency, 1, 256),
        int_key("check_concurrency", &Config::check_concurrency, 1, 256),
        int_key("cert_expiry_warn_days", &Config::cert_expiry_warn_days, 0, 3650),
    };
    return k;
}

const Key* find_key(std::string_view name) {
    for (const auto& k : keys())
        if (name == k.name) return &k;
    return nullptr;
}

bool valid_key_name(std::string_view k) {
    if (k.empty()) return false;
    for (char c : k)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

}  // namespace

bool is_map_setting(std::string_view key) {
    return key == "mx_match" || key == "enforce_testing" || key == "on_temp_failure" ||
           key == "postfix_attributes";
}

bool parse_duration(std::string_view text, Seconds& out) {
    text = trim(text);
    if (text.empty()) return false;
    std::int64_t mult = 1;
    char unit = text.back();
    if (unit < '0' || unit > '9') {
        switch (unit) {
            case 's': mult = 1; break;
            case 'm': mult = 60; break;
            case 'h': mult = 3600; break;
            case 'd': mult = 86400; break;
            case 'w': mult = 604800; break;
            default: return false;
        }
        text.remove_suffix(1);
    }
    std::int64_t n = 0;
    if (!parse_int(text, 0, 100LL * 365 * 86400, n)) return false;
    out = Seconds{n * mult};
    return true;
}

std::vector<std::pair<std::string, std::string>> config_effective(const Config& c) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& k : keys()) out.emplace_back(k.name, k.get(c));
    for (const auto& [map, settings] : c.map_overrides)
        for (const auto& [key, value] : settings) out.emplace_back(map + "_" + key, value);
    return out;
}

std::vector<ConfigError> parse_config(std::string_view text, const std::string& file, Config& cfg) {
    std::vector<ConfigError> errors;
    struct Deferred {
        int line;
        std::string key, value;
    };
    std::vector<Deferred> deferred;  // unknown keys: maybe per-map settings
    // Join continuation lines first, remembering where each logical line began.
    struct Logical {
        int line;
        std::string text;
    };
    std::vector<Logical> lines;
    int lineno = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        std::size_t nl = text.find('\n', pos);
        std::string_view raw = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        ++lineno;
        pos = (nl == std::string_view::npos) ? text.size() + 1 : nl + 1;
        std::string_view t = trim(raw);
        if (t.empty() || t.front() == '#') continue;  // Postfix: comments and blank lines end nothing
        if (raw.front() == ' ' || raw.front() == '\t') {
            if (lines.empty()) {
                errors.push_back({file, lineno, "continuation line without a preceding 'key = value' line"});
                continue;
            }
            lines.back().text += " ";
            lines.back().text += t;
            continue;
        }
        lines.push_back({lineno, std::string(t)});
    }
    for (const auto& l : lines) {
        std::string_view t = l.text;
        auto eq = t.find('=');
        if (eq == std::string_view::npos) {
            errors.push_back({file, l.line, "expected 'key = value', got '" + l.text + "'"});
            continue;
        }
        std::string_view key = trim(t.substr(0, eq));
        std::string_view value = trim(t.substr(eq + 1));
        if (!valid_key_name(key)) {
            errors.push_back({file, l.line, "invalid key name '" + std::string(key) + "'"});
            continue;
        }
        const Key* k = find_key(key);
        if (!k) {
            deferred.push_back({l.line, std::string(key), std::string(value)});
            continue;
        }
        std::string err = k->set(cfg, value);
        if (!err.empty()) errors.push_back({file, l.line, std::string(key) + ": " + err});
    }
    // "<map>_<setting>" for a map declared in map_names (in any order).
    for (const auto& d : deferred) {
        bool matched = false;
        for (const auto& m : cfg.map_names) {
            if (d.key.size() <= m.size() + 1 || d.key.compare(0, m.size(), m) != 0 || d.key[m.size()] != '_')
                continue;
            std::string setting = d.key.substr(m.size() + 1);
            if (!is_map_setting(setting)) continue;
            Config probe;  // validate the value with the global key's rules
            std::string err = find_key(setting)->set(probe, d.value);
            if (!err.empty()) errors.push_back({file, d.line, d.key + ": " + err});
            else cfg.map_overrides[m][setting] = d.value;
            matched = true;
            break;
        }
        if (!matched) errors.push_back({file, d.line, "unknown key '" + d.key + "'"});
    }
    std::stable_sort(errors.begin(), errors.end(),
                     [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
    if (cfg.failure_backoff_min > cfg.failure_backoff_max)
        errors.push_back({file, 0, "failure_backoff_min is larger than failure_backoff_max"});
    if (cfg.listen.empty() ) errors.push_back({file, 0, "listen: at least one endpoint is required"});
    for (const auto& ep : cfg.listen)
        if (ep.rfind("inet:", 0) != 0 && ep.rfind("unix:", 0) != 0)
            errors.push_back({file, 0, "listen: '" + ep + "' must start with inet: or unix:"});
    return errors;
}

std::vector<ConfigError> load_config_file(const std::string& path, MissingFile missing, Config& cfg) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (errno == ENOENT && missing == MissingFile::ok) return {};
        return {{path, 0, std::string("cannot open: ") + std::strerror(errno)}};
    }
    std::string text;
    text.resize(kMaxConfigBytes + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxConfigBytes) return {{path, 0, "file is larger than 1 MiB"}};
    return parse_config(text, path, cfg);
}

}  // namespace stsguard
