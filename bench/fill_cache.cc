// fill_cache.cc - fills an stsguard cache directory with N fresh enforce
// policies for the benchmark, and writes the key file the load generator
// cycles over.
//
// Domain i is "d<i>.bench.test" (7 digits, zero padded).  Its record is
// what a successful discovery leaves (RFC 8461 3.2, 5): an enforce
// policy with max_age 31557600 (one year) naming mx1 and mx2 of the
// domain, fetched now under id "bench1", TXT checked now, the next
// refresh a week ahead, and the domain's MX set (mx1, mx2) from DNS
// cached for a week.  So `stsguard serve` answers every key from the
// cache ("OK secure match=..."), with mx_match = exact or patterns,
// without DNS, and queues no refresh during a run.
//
// Records are written with PolicyStore::put_all in batches of 10,000 per
// transaction (no fsync; the directory is a throwaway benchmark cache).
//
// Usage: fill_cache --dir DIR --count N [--keys FILE] [--shuffled-keys FILE] [--seed S]
//   --keys: the domains in order, one a line; --shuffled-keys: the same
//   domains in a random order (uniform lookups over the whole cache).
// Failures: exit 1 with the store's reason.  Limits: N <= 9,999,999.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "policy-cache/cache_record.h"
#include "policy-cache/clock.h"
#include "policy-cache/domain_name.h"
#include "policy-cache/policy_store.h"
#include "policy-cache/sts_policy.h"

using namespace stsguard;

namespace {

[[noreturn]] void die(const std::string& m) {
    std::fprintf(stderr, "fill_cache: %s\n", m.c_str());
    std::exit(1);
}

std::string domain_name(long i) {
    char b[64];
    std::snprintf(b, sizeof b, "d%07ld.bench.test", i);
    return b;
}

CacheRecord make_record(const std::string& name, UnixTime now) {
    auto d = DomainName::parse(name);
    if (!d) die("bad generated domain " + name);
    const std::string mx1 = "mx1." + name, mx2 = "mx2." + name;
    std::string body = "version: STSv1\nmode: enforce\nmx: " + mx1 + "\nmx: " + mx2 + "\nmax_age: 31557600\n";
    PolicyParse p = parse_sts_policy(body);
    if (p.verdict != PolicyVerdict::valid || !p.policy) die("generated policy does not parse: " + body);
    CacheRecord r(*d);
    r.set_policy(body, *p.policy, PolicyId("bench1"), now);
    r.last_checked = now;
    r.last_used = now;
    r.next_refresh = now + Seconds{7 * 86400};
    r.last_outcome = RecordOutcome{OutcomeKind::ok, "ok", "policy fetched (benchmark fill)"};
    r.mx_hosts = {mx1, mx2};
    r.mx_expires_at = now + Seconds{7 * 86400};
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir, keys, shuffled;
    long count = 0;
    unsigned seed = 7;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--dir") dir = argv[i + 1];
        else if (a == "--count") count = std::atol(argv[i + 1]);
        else if (a == "--keys") keys = argv[i + 1];
        else if (a == "--shuffled-keys") shuffled = argv[i + 1];
        else if (a == "--seed") seed = static_cast<unsigned>(std::atol(argv[i + 1]));
        else die("unknown argument " + a);
    }
    if (dir.empty() || count <= 0 || count > 9'999'999)
        die("usage: fill_cache --dir DIR --count N [--keys FILE] [--shuffled-keys FILE] [--seed S]");

    StoreOptions opts;
    opts.dir = dir;
    opts.sync = lmdb::EnvSync::no_sync;
    // About 300 bytes a record plus B-tree pages: size the map once.
    opts.initial_map_size = std::max<std::size_t>(64ULL << 20, static_cast<std::size_t>(count) * 700);
    auto opened = PolicyStore::open(opts);
    if (!opened.found()) die(opened.failed() ? opened.failure().reason : "cannot open " + dir);
    PolicyStore& store = *opened.value();

    const auto t0 = std::chrono::steady_clock::now();
    const UnixTime now = SystemClock().now();
    std::vector<CacheRecord> batch;
    batch.reserve(10000);
    for (long i = 0; i < count; ++i) {
        batch.push_back(make_record(domain_name(i), now));
        if (batch.size() == 10000 || i + 1 == count) {
            if (auto f = store.put_all(batch)) die("put_all: " + f->reason);
            batch.clear();
        }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    std::vector<std::string> names;
    names.reserve(static_cast<std::size_t>(count));
    for (long i = 0; i < count; ++i) names.push_back(domain_name(i));
    auto write = [](const std::string& path, const std::vector<std::string>& v) {
        std::ofstream f(path);
        for (const auto& s : v) f << s << '\n';
        if (!f) die("cannot write " + path);
    };
    if (!keys.empty()) write(keys, names);
    if (!shuffled.empty()) {
        std::mt19937_64 rng(seed);
        std::shuffle(names.begin(), names.end(), rng);
        write(shuffled, names);
    }
    auto st = store.stats(StatsDetail::quick);
    std::printf("{\"dir\":\"%s\",\"records\":%ld,\"fill_seconds\":%.2f,\"entries\":%llu}\n", dir.c_str(), count, secs,
                st.found() ? static_cast<unsigned long long>(st.value().entries) : 0ULL);
    return 0;
}
