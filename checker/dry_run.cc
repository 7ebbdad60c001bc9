// dry_run.cc - destination input, bounded-concurrency checks, verdicts.
#include "checker/dry_run.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <istream>
#include <map>
#include <mutex>
#include <semaphore>
#include <system_error>
#include <thread>

namespace stsguard {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// "postfix/smtp[123]" or "postfix-out/relay/smtp[123]" before the recipient.
bool from_smtp(std::string_view head) {
    constexpr std::string_view kTag = "/smtp[";
    for (auto i = head.find(kTag); i != std::string_view::npos; i = head.find(kTag, i + 1)) {
        std::size_t k = i + kTag.size();
        const std::size_t digits_at = k;
        while (k < head.size() && is_digit(head[k])) ++k;
        if (k > digits_at && k < head.size() && head[k] == ']') return true;
    }
    return false;
}

LineParse domain_of(std::string_view text, LineParse::Kind kind) {
    LineParse r;
    std::string_view dom = text;
    const auto at = dom.rfind('@');
    if (at != std::string_view::npos) dom = dom.substr(at + 1);
    if (dom.empty()) {
        r.kind = kind == LineParse::Kind::log_recipient ? LineParse::Kind::ignored : LineParse::Kind::invalid;
        r.why = "no domain after '@'";
        return r;
    }
    if (dom.front() == '[') {
        r.kind = kind == LineParse::Kind::log_recipient ? LineParse::Kind::ignored : LineParse::Kind::invalid;
        r.why = "an address literal has no MTA-STS policy";
        return r;
    }
    std::string why;
    r.domain = DomainName::parse(dom, &why);
    if (!r.domain) {
        r.kind = LineParse::Kind::invalid;
        r.why = "'" + printable(dom) + "' is not a domain name: " + why;
        return r;
    }
    r.kind = kind;
    return r;
}

// Reads one line of at most kMaxInputLine bytes; the rest of a longer
// line is skipped.  False at the end of input.
bool read_line(std::streambuf* sb, std::string& line, bool& too_long) {
    line.clear();
    too_long = false;
    bool any = false;
    for (;;) {
        const int c = sb->sbumpc();
        if (c == std::char_traits<char>::eof()) return any;
        any = true;
        if (c == '\n') return true;
        if (line.size() < kMaxInputLine)
            line.push_back(static_cast<char>(c));
        else
            too_long = true;
    }
}

}  // namespace

LineParse parse_destination_line(std::string_view line) {
    const auto to = line.find("to=<");
    if (to != std::string_view::npos) {
        if (!from_smtp(line.substr(0, to))) {
            LineParse r;
            r.kind = LineParse::Kind::ignored;
            r.why = "not an smtp(8) delivery line";
            return r;
        }
        const auto start = to + 4;
        const auto end = line.find('>', start);
        if (end == std::string_view::npos) {
            LineParse r;
            r.kind = LineParse::Kind::invalid;
            r.why = "to=< without a closing '>'";
            return r;
        }
        const std::string_view rcpt = line.substr(start, end - start);
        if (rcpt.find('@') == std::string_view::npos) {
            LineParse r;
            r.kind = LineParse::Kind::ignored;
            r.why = "recipient without a domain";
            return r;
        }
        return domain_of(rcpt, LineParse::Kind::log_recipient);
    }
    std::string_view text = line;
    const auto hash = text.find('#');
    if (hash != std::string_view::npos) text = text.substr(0, hash);
    text = trim(text);
    if (text.empty()) return {};
    if (std::any_of(text.begin(), text.end(), is_space)) {
        LineParse r;
        if (text.find("postfix") != std::string_view::npos || text.find("]: ") != std::string_view::npos) {
            r.kind = LineParse::Kind::ignored;
            r.why = "log line without a recipient";
        } else {
            r.kind = LineParse::Kind::invalid;
            r.why = "expected one domain per line";
        }
        return r;
    }
    return domain_of(text, LineParse::Kind::domain);
}

DestinationList read_destinations(std::istream& in) {
    DestinationList out;
    std::map<std::string, std::size_t> seen;  // domain -> index in destinations
    std::string line;
    bool too_long = false;
    std::streambuf* sb = in.rdbuf();
    auto problem = [&out](std::size_t no, const std::string& text, std::string why) {
        ++out.problem_count;
        if (out.problems.size() < kMaxInputProblems) out.problems.push_back({no, printable(text, 80), std::move(why)});
    };
    while (sb != nullptr && read_line(sb, line, too_long)) {
        const std::size_t no = ++out.lines;
        if (too_long) {
            problem(no, line, "line longer than " + std::to_string(kMaxInputLine) + " bytes");
            continue;
        }
        LineParse p = parse_destination_line(line);
        switch (p.kind) {
            case LineParse::Kind::blank: continue;
            case LineParse::Kind::ignored: ++out.ignored; continue;
            case LineParse::Kind::invalid: problem(no, line, p.why); continue;
            case LineParse::Kind::log_recipient: ++out.log_lines; break;
            case LineParse::Kind::domain: break;
        }
        auto [it, fresh] = seen.emplace(p.domain->str(), out.destinations.size());
        if (fresh)
            out.destinations.push_back({*p.domain, 1, no});
        else
            ++out.destinations[it->second].count;
    }
    return out;
}

const char* dry_verdict_name(DryVerdict v) {
    switch (v) {
        case DryVerdict::would_fail: return "would-fail";
        case DryVerdict::degraded: return "degraded";
        case DryVerdict::unknown: return "unknown";
        case DryVerdict::ok: return "ok";
        case DryVerdict::mode_none: return "mode-none";
        case DryVerdict::no_policy: return "no-policy";
    }
    return "unknown";
}

DryVerdict dry_verdict(const DeliveryAssessment& a) {
    switch (a.verdict) {
        case Delivery::ok: return DryVerdict::ok;
        case Delivery::degraded: return DryVerdict::degraded;
        case Delivery::would_fail: return DryVerdict::would_fail;
        case Delivery::unknown: return DryVerdict::unknown;
        case Delivery::not_applicable: return a.code == "mode-none" ? DryVerdict::mode_none : DryVerdict::no_policy;
    }
    return DryVerdict::unknown;
}

DryRunResult judge_destination(const Destination& d, DomainFacts facts) {
    DeliveryAssessment a = assess_delivery(facts);
    const Policy* p = valid_policy(facts);
    const bool enforced = p != nullptr && p->mode == Mode::enforce;
    const DryVerdict v = dry_verdict(a);
    DryRunResult r{d, std::move(facts), std::move(a), v, CheckResult{}, CheckResult{}, enforced};
    r.mx_alignment = check_mx_alignment(r.facts);
    r.mx_certificates = check_mx_certificates(r.facts);
    return r;
}

Lookup<std::vector<DryRunResult>> run_dry_run(const std::vector<Destination>& dests, const AdapterFactory& make,
                                              const ProbeFn& probe, const Clock& clock, const DryRunSettings& s,
                                              const ProgressFn& progress) {
    std::vector<DryRunResult> results;
    const std::size_t n = dests.size();
    if (n == 0) return results;
    const std::size_t workers = std::min(n, static_cast<std::size_t>(std::max(1, s.concurrency)));

    std::vector<WorkerAdapters> adapters;
    adapters.reserve(workers);
    for (std::size_t k = 0; k < workers; ++k) {
        try {
            WorkerAdapters a = make();
            if (!a.dns || !a.fetcher) return Failure::perm("dry-run-setup", "no DNS resolver or policy fetcher");
            adapters.push_back(std::move(a));
        } catch (const std::exception& e) {
            return Failure::perm("dry-run-setup", e.what());
        }
    }

    // One limit for the probes of every worker together.
    constexpr std::ptrdiff_t kMaxProbes = 1024;
    std::counting_semaphore<kMaxProbes> slots(std::clamp<std::ptrdiff_t>(s.probe_concurrency, 1, kMaxProbes));
    ProbeFn limited = [&slots, &probe](const ProbeTarget& t, Deadline dl) {
        slots.acquire();
        struct Release {
            std::counting_semaphore<kMaxProbes>& s;
            ~Release() { s.release(); }
        } release{slots};
        return probe(t, dl);
    };

    std::vector<std::optional<DryRunResult>> out(n);
    std::atomic<std::size_t> next{0};
    std::mutex progress_mu;
    std::size_t done = 0;

    auto work = [&](WorkerAdapters& ad) noexcept {
        // Waiting for a probe slot must not use up the pool's deadline:
        // each probe is bounded by its own timeout instead.
        CheckEnv env{.dns = *ad.dns,
                     .fetcher = *ad.fetcher,
                     .clock = clock,
                     .probe = limited,
                     .probe_concurrency = s.probe_concurrency,
                     .probe_timeout = s.probe_timeout,
                     .probe_overall = std::chrono::hours(24),
                     .store = nullptr,
                     .store_note = {},
                     .smtp_port = s.smtp_port};
        for (;;) {
            const std::size_t i = next.fetch_add(1);
            if (i >= n) return;
            const DomainName& domain = dests[i].domain;
            try {
                out[i] = judge_destination(dests[i], gather_facts(domain, env, CheckScope::delivery));
            } catch (const std::exception& e) {
                Discovery d{domain, DiscoveryStatus::failed, "check-internal", e.what(), FailureKind::temporary,
                            TxtStep{}, std::nullopt};
                out[i] = judge_destination(dests[i], DomainFacts(domain, std::move(d)));
            }
            std::lock_guard lock(progress_mu);
            ++done;
            if (progress) progress(done, n, domain);
        }
    };

    {
        std::vector<std::jthread> threads;  // joined at the end of this block
        threads.reserve(workers);
        for (std::size_t k = 0; k < workers; ++k) {
            try {
                threads.emplace_back(work, std::ref(adapters[k]));
            } catch (const std::system_error&) {
                break;  // fewer threads: the ones we have share the work
            }
        }
        if (threads.empty()) work(adapters.front());
    }
    results.reserve(n);
    for (auto& r : out) results.push_back(std::move(*r));
    return results;
}

void sort_by_breakage(std::vector<DryRunResult>& results) {
    std::stable_sort(results.begin(), results.end(), [](const DryRunResult& a, const DryRunResult& b) {
        if (a.verdict != b.verdict) return static_cast<int>(a.verdict) < static_cast<int>(b.verdict);
        if (a.dest.count != b.dest.count) return a.dest.count > b.dest.count;
        return a.dest.domain < b.dest.domain;
    });
}

DomainStatus dry_run_status(const std::vector<DryRunResult>& results) {
    DomainStatus s = DomainStatus::ok;
    for (const auto& r : results) {
        switch (r.verdict) {
            case DryVerdict::would_fail: s = worse(s, DomainStatus::critical); break;
            case DryVerdict::unknown: s = worse(s, DomainStatus::unknown); break;
            case DryVerdict::degraded: s = worse(s, DomainStatus::warning); break;
            default: break;
        }
    }
    return s;
}

}  // namespace stsguard
