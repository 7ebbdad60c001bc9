// Tests policy-cache/config.cc: main.cf-style parsing and validation.
#include <doctest/doctest.h>

#include "policy-cache/config.h"

using namespace stsguard;

TEST_CASE("config: no text gives the embedded defaults") {
    Config c;
    CHECK(parse_config("", "f", c).empty());
    CHECK(c.listen == std::vector<std::string>{"inet:127.0.0.1:8461"});
    CHECK(c.cache_dir == "/var/lib/stsguard");
    CHECK(c.policy_fetch_allow_private == false);
}

TEST_CASE("config: key = value, comments, blank lines and continuation lines") {
    Config c;
    auto errs = parse_config(
        "# comment\n\ndns_servers = 127.0.0.53,\n    127.0.0.54:5353\n"
        "policy_fetch_allow_private=yes\n  # indented comment\ndns_timeout = 3s\n",
        "f", c);
    CHECK(errs.empty());
    CHECK(c.dns_servers == std::vector<std::string>{"127.0.0.53", "127.0.0.54:5353"});
    CHECK(c.policy_fetch_allow_private);
    CHECK(c.dns_timeout == Seconds{3});
}

TEST_CASE("config: durations take Postfix units") {
    Seconds s{};
    CHECK(parse_duration("30", s));
    CHECK(s == Seconds{30});
    CHECK(parse_duration("5m", s));
    CHECK(s == Seconds{300});
    CHECK(parse_duration("2h", s));
    CHECK(s == Seconds{7200});
    CHECK(parse_duration("1d", s));
    CHECK(s == Seconds{86400});
    CHECK(parse_duration("1w", s));
    CHECK(s == Seconds{604800});
    CHECK_FALSE(parse_duration("", s));
    CHECK_FALSE(parse_duration("5x", s));
    CHECK_FALSE(parse_duration("-5s", s));
    CHECK_FALSE(parse_duration("1.5h", s));
}

TEST_CASE("config: errors name the line and the key, other keys still apply") {
    Config c;
    auto errs = parse_config("dns_timeout = soon\nbogus_key = 1\nno equals sign\ndns_retries = 3\n", "my.conf", c);
    REQUIRE(errs.size() == 3);
    CHECK(errs[0].line == 1);
    CHECK(errs[0].message.find("dns_timeout") != std::string::npos);
    CHECK(errs[1].line == 2);
    CHECK(errs[1].message.find("unknown key 'bogus_key'") != std::string::npos);
    CHECK(errs[2].line == 3);
    CHECK(errs[0].file == "my.conf");
    CHECK(c.dns_retries == 3);
    CHECK(c.dns_timeout == Seconds{5});
}

TEST_CASE("config: out-of-range limits are refused") {
    Config c;
    CHECK(parse_config("policy_max_bytes = 100000\n", "f", c).size() == 1);
    CHECK(parse_config("max_connections = 0\n", "f", c).size() == 1);
    CHECK(parse_config("dns_timeout = 1w\n", "f", c).size() == 1);
    CHECK(parse_config("log_target = file\n", "f", c).size() == 1);
    CHECK(parse_config("unix_socket_mode = 0999\n", "f", c).size() == 1);
    CHECK(parse_config("policy_fetch_allow_private = maybe\n", "f", c).size() == 1);
}

TEST_CASE("config: inconsistent settings are reported") {
    Config c;
    CHECK(parse_config("failure_backoff_min = 2d\nfailure_backoff_max = 1d\n", "f", c).size() == 1);
    Config d;
    CHECK(parse_config("listen = tcp:1.2.3.4:5\n", "f", d).size() == 1);
}

TEST_CASE("config: a continuation line before any key is an error") {
    Config c;
    auto errs = parse_config("  dangling\n", "f", c);
    REQUIRE(errs.size() == 1);
    CHECK(errs[0].line == 1);
}

TEST_CASE("config: effective settings print every key in parseable form") {
    Config c;
    c.dns_servers = {"127.0.0.53"};
    std::string text;
    for (const auto& [k, v] : config_effective(c)) text += k + " = " + v + "\n";
    Config back;
    CHECK(parse_config(text, "roundtrip", back).empty());
    CHECK(config_effective(back) == config_effective(c));
}

TEST_CASE("config: a missing default file is fine, a missing named file is an error") {
    Config c;
    CHECK(load_config_file("/nonexistent/stsguard.conf", MissingFile::ok, c).empty());
    auto errs = load_config_file("/nonexistent/stsguard.conf", MissingFile::error, c);
    REQUIRE(errs.size() == 1);
    CHECK(errs[0].message.find("cannot open") != std::string::npos);
}

TEST_CASE("config: per-map settings for names declared in map_names, in any order") {
    Config c;
    auto errs = parse_config("tlsrpt_postfix_attributes = yes\nmap_names = tlsrpt, strict\n"
                             "strict_on_temp_failure = temp\nother_mx_match = exact\n",
                             "f", c);
    REQUIRE(errs.size() == 1);  // "other" is not a declared map
    CHECK(errs[0].line == 4);
    CHECK(c.map_overrides["tlsrpt"]["postfix_attributes"] == "yes");
    CHECK(c.map_overrides["strict"]["on_temp_failure"] == "temp");
}

TEST_CASE("config: per-map values are validated like the global key") {
    Config c;
    auto errs = parse_config("map_names = x\nx_mx_match = sloppy\n", "f", c);
    REQUIRE(errs.size() == 1);
    CHECK(errs[0].message.find("x_mx_match") != std::string::npos);
}
