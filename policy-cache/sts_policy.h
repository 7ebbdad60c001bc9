// sts_policy.h - the MTA-STS policy body (RFC 8461 section 3.2).
//
// Parses the raw bytes fetched from https://mta-sts.<domain>/.well-known/
// mta-sts.txt into a Policy, or reports it invalid with every problem
// listed (line number, key, what is wrong).  Risky but valid values (a
// max_age under a day, ...) are warnings.  Where the RFC or its errata are
// ambiguous, the strictest reading of major implementations is taken and a
// warning says so; docs/rfc8461-conformance.md lists each choice.
//
// Pure: no I/O.  Limits: kMaxPolicyBytes (64 KiB, 3.3).  Failures: only
// through the verdict and findings; never throws on any input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy-cache/clock.h"
#include "policy-cache/finding.h"

namespace stsguard {

inline constexpr std::size_t kMaxPolicyBytes = 64 * 1024;
inline constexpr std::int64_t kMaxAgeLimit = 31'557'600;  // 3.2: max_age <= 31557600

enum class Mode { enforce, testing, none };
const char* mode_name(Mode m);                          // "enforce" | "testing" | "none"
std::optional<Mode> parse_mode(std::string_view text);  // exact, case-sensitive

struct Policy {
    std::string version;             // always "STSv1"
    Mode mode = Mode::none;
    Seconds max_age{0};
    std::vector<std::string> mx;     // patterns, as written, in file order
    std::vector<std::pair<std::string, std::string>> extensions;
};

enum class PolicyVerdict { valid, invalid };

struct PolicyParse {
    PolicyVerdict verdict = PolicyVerdict::invalid;
    std::optional<Policy> policy;    // set when valid
    // What could be read even from an invalid body (for lint / check).
    std::optional<std::string> mode_text;
    std::optional<std::int64_t> max_age;
    std::vector<std::string> mx;
    Findings findings;
};

PolicyParse parse_sts_policy(std::string_view body);

}  // namespace stsguard
