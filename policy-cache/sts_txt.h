// sts_txt.h - the "_mta-sts" TXT record (RFC 8461 section 3.1).
//
// Input: the TXT RRs found at _mta-sts.<domain>, each with its
// character-strings already concatenated (3.1: "the strings of one TXT RR
// are concatenated").  Output: valid (policy id and extension fields),
// invalid (exactly one record starting with "v=STSv1" but breaking the
// grammar; the findings say where and why), or no policy (no record
// starting with "v=STSv1", or more than one: 3.1 says senders must then
// assume no policy).
//
// Pure: no I/O.  Limits: a record over 65535 octets is invalid (a TXT RR
// cannot be longer).  Failures: only through the verdict and findings.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy-cache/finding.h"

namespace stsguard {

// Policy id: 1*32(ALPHA / DIGIT) (3.1).  Strong type so an id is never
// confused with other strings.
class PolicyId {
public:
    explicit PolicyId(std::string v) : v_(std::move(v)) {}
    const std::string& str() const { return v_; }
    bool operator==(const PolicyId& o) const { return v_ == o.v_; }

private:
    std::string v_;
};

enum class TxtVerdict { valid, invalid, no_policy };
const char* txt_verdict_name(TxtVerdict v);  // "valid" | "invalid" | "no-policy"

struct StsTxt {
    TxtVerdict verdict = TxtVerdict::no_policy;
    std::optional<PolicyId> id;                                   // set when valid
    std::vector<std::pair<std::string, std::string>> extensions;  // in record order
    Findings findings;
};

StsTxt parse_sts_txt(const std::vector<std::string>& records);

}  // namespace stsguard
