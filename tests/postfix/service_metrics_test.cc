// Tests for postfix/service_metrics.cc: lookup counters by reply and
// reason, and their Prometheus text.
#include "postfix/service_metrics.h"

#include <chrono>
#include <string>

#include <doctest/doctest.h>

namespace stsguard {
namespace {

using std::chrono::microseconds;

bool has_line(const std::string& text, const std::string& line) {
    return text.find(line + "\n") != std::string::npos;
}

TEST_CASE("metrics: each lookup counts once under its reply and reason, in any order") {
    ServiceMetrics m;
    // Runs of one series, interleaved with others: the counter of the
    // previous lookup is reused only while reply and reason both match.
    m.count_lookup("OK", "enforce", microseconds(50));
    m.count_lookup("OK", "enforce", microseconds(50));
    m.count_lookup("NOTFOUND", "no-policy", microseconds(50));
    m.count_lookup("OK", "enforce", microseconds(50));
    m.count_lookup("OK", "testing", microseconds(50));
    m.count_lookup("NOTFOUND", "enforce", microseconds(50));  // same reason, other reply
    m.count_lookup("NOTFOUND", "no-policy", microseconds(50));
    CHECK(m.lookups_total() == 7);
    const std::string text = m.render(GaugeSnapshot{});
    CHECK(has_line(text, "stsguard_lookups_total{reply=\"OK\",reason=\"enforce\"} 3"));
    CHECK(has_line(text, "stsguard_lookups_total{reply=\"OK\",reason=\"testing\"} 1"));
    CHECK(has_line(text, "stsguard_lookups_total{reply=\"NOTFOUND\",reason=\"no-policy\"} 2"));
    CHECK(has_line(text, "stsguard_lookups_total{reply=\"NOTFOUND\",reason=\"enforce\"} 1"));
}

TEST_CASE("metrics: the latency histogram is cumulative and counts every lookup") {
    ServiceMetrics m;
    m.count_lookup("OK", "enforce", microseconds(50));    // <= 0.0001
    m.count_lookup("OK", "enforce", microseconds(2000));  // <= 0.0025
    const std::string text = m.render(GaugeSnapshot{});
    CHECK(has_line(text, "stsguard_lookup_duration_seconds_bucket{le=\"0.0001\"} 1"));
    CHECK(has_line(text, "stsguard_lookup_duration_seconds_bucket{le=\"0.001\"} 1"));
    CHECK(has_line(text, "stsguard_lookup_duration_seconds_bucket{le=\"0.0025\"} 2"));
    CHECK(has_line(text, "stsguard_lookup_duration_seconds_bucket{le=\"+Inf\"} 2"));
    CHECK(has_line(text, "stsguard_lookup_duration_seconds_count 2"));
}

TEST_CASE("metrics: cache writes and the commits that carried them are counters") {
    ServiceMetrics m;
    GaugeSnapshot g;
    g.cache_writes = 12;
    g.cache_commits = 3;  // group commit: several writes per fsync
    const std::string text = m.render(g);
    CHECK(has_line(text, "# TYPE stsguard_cache_writes_total counter"));
    CHECK(has_line(text, "stsguard_cache_writes_total 12"));
    CHECK(has_line(text, "# TYPE stsguard_cache_commits_total counter"));
    CHECK(has_line(text, "stsguard_cache_commits_total 3"));
}

}  // namespace
}  // namespace stsguard
