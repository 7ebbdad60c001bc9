// store_cost.cc - the in-process cost of one cache-hit lookup, without
// sockets: what `serve` does per request between reading the key and
// writing the reply (normalize the key into kept storage, one read
// decoded in place through a kept PolicyStore::Reading, assess, decide
// the answer into a kept Answer), and the bare PolicyStore::get alone.
//
// Used by bench/run_bench.py to show how the per-lookup cost grows with
// the number of cached domains (1,000 vs 1,000,000): the socket path is
// the same for both, so any growth comes from here (LMDB B-tree depth and
// CPU cache misses on a larger map).
//
// Usage: store_cost --dir DIR --keys FILE [--lookups N] [--mx-match exact|patterns]
// Prints one JSON object: CPU nanoseconds per lookup (CLOCK_PROCESS_CPUTIME_ID)
// for "get" and for "answer" (parse + get + decide), and reply counts.
// Failures: exit 1 with the store's reason.
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "policy-cache/clock.h"
#include "policy-cache/domain_name.h"
#include "policy-cache/policy_store.h"
#include "postfix/domain_view.h"
#include "postfix/policy_answer.h"

using namespace stsguard;

namespace {

[[noreturn]] void die(const std::string& m) {
    std::fprintf(stderr, "store_cost: %s\n", m.c_str());
    std::exit(1);
}

double cpu_now() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir, keys_file, mx_match = "exact";
    long lookups = 300000;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--dir") dir = argv[i + 1];
        else if (a == "--keys") keys_file = argv[i + 1];
        else if (a == "--lookups") lookups = std::atol(argv[i + 1]);
        else if (a == "--mx-match") mx_match = argv[i + 1];
        else die("unknown argument " + a);
    }
    if (dir.empty() || keys_file.empty() || lookups <= 0)
        die("usage: store_cost --dir DIR --keys FILE [--lookups N] [--mx-match exact|patterns]");
    std::vector<std::string> keys;
    {
        std::ifstream f(keys_file);
        std::string line;
        while (std::getline(f, line))
            if (!line.empty()) keys.push_back(line);
    }
    if (keys.empty()) die("no keys in " + keys_file);

    StoreOptions opts;
    opts.dir = dir;
    opts.access = StoreAccess::read_only;
    auto opened = PolicyStore::open(opts);
    if (!opened.found()) die(opened.failed() ? opened.failure().reason : "no cache in " + dir);
    const PolicyStore& store = *opened.value();
    MapSettings map;
    map.mx_match = mx_match == "patterns" ? MxMatchMode::patterns : MxMatchMode::exact;
    const UnixTime now = SystemClock().now();

    std::vector<DomainName> names;
    names.reserve(keys.size());
    for (const auto& k : keys) {
        auto d = DomainName::parse(k);
        if (!d) die("bad key " + k);
        names.push_back(*d);
    }

    // Bare get() over pre-parsed names.
    std::size_t found = 0;
    double t0 = cpu_now();
    for (long i = 0; i < lookups; ++i) found += store.get(names[static_cast<std::size_t>(i) % names.size()]).found();
    const double get_ns = (cpu_now() - t0) * 1e9 / static_cast<double>(lookups);

    // The whole in-process decision, as serve's PolicyService::answer_now()
    // does it per request (its storage kept between requests).
    std::size_t ok = 0, other = 0;
    PolicyStore::Reading reading(store);
    DomainName d = names.front();
    std::optional<CacheRecord> rec;
    DomainView view;
    Answer a;
    t0 = cpu_now();
    for (long i = 0; i < lookups; ++i) {
        if (!DomainName::parse_into(keys[static_cast<std::size_t>(i) % keys.size()], d)) die("bad key");
        if (!rec) rec.emplace(d);
        if (!reading.get(d, *rec, view.texts).found()) rec.reset();
        const Assessment as = assess(rec, now);
        if (rec) view_of_into(*rec, as, view);
        else view = view_of(rec, as);
        decide_answer_into(d, view, map, Explain::no, a);
        reading.end();
        (a.reply.kind == SocketmapReply::Kind::ok ? ok : other)++;
    }
    const double answer_ns = (cpu_now() - t0) * 1e9 / static_cast<double>(lookups);
    auto st = store.stats(StatsDetail::quick);
    std::printf("{\"dir\":\"%s\",\"entries\":%llu,\"lookups\":%ld,\"found\":%zu,\"get_ns\":%.0f,"
                "\"answer_ns\":%.0f,\"ok\":%zu,\"other\":%zu}\n",
                dir.c_str(), st.found() ? static_cast<unsigned long long>(st.value().entries) : 0ULL, lookups, found,
                get_ns, answer_ns, ok, other);
    return 0;
}
