// probe_pool.h - run many STARTTLS probes concurrently, with bounded threads.
//
// `stsguard check` probes every address of every MX host of a domain; one
// silent MX must not make the check take the sum of all timeouts.  A
// ProbePool runs the probes on up to `concurrency` std::thread workers
// that run() starts and joins before it returns: no thread outlives the
// call and none exists between calls (no hidden threads).  Each probe is
// bounded by its own timeout (the probe function's) and by the overall
// deadline of the run, which run() passes to it; a probe that has not
// started when the overall deadline passes is not started and reported as
// mx-timeout.  So a run takes about its slowest probe when concurrency
// covers all targets, and never much more than overall_timeout.
//
// Failures: results only, in the order of the targets.  A probe function
// that throws yields failure "probe-internal" for that target.  If no
// worker thread can be created, the probes run in the calling thread.
// Limits: concurrency (default 8, at least 1), overall_timeout.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "checker/starttls_probe.h"

namespace stsguard {

struct PoolSettings {
    int concurrency = 8;                               // probes in flight at once
    std::chrono::milliseconds overall_timeout{60000};  // whole run
};

// One probe: the target and the overall deadline it must respect.
using ProbeFn = std::function<ProbeResult(const ProbeTarget&, Deadline)>;

class ProbePool {
public:
    ProbePool(ProbeFn probe, PoolSettings settings);
    // Probes with prober.probe(target, deadline); prober must outlive the pool.
    ProbePool(const StarttlsProber& prober, PoolSettings settings);

    // Blocks until every target has a result; results[i] is for targets[i].
    std::vector<ProbeResult> run(const std::vector<ProbeTarget>& targets) const;

    const PoolSettings& settings() const { return settings_; }

private:
    ProbeFn probe_;
    PoolSettings settings_;
};

}  // namespace stsguard
