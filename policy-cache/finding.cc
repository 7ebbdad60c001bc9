#include "policy-cache/finding.h"

#include <algorithm>

namespace stsguard {

const char* severity_name(Severity s) {
    switch (s) {
        case Severity::error: return "error";
        case Severity::warning: return "warning";
        case Severity::info: return "info";
    }
    return "error";
}

bool has_errors(const Findings& f) {
    return std::any_of(f.begin(), f.end(),
                       [](const Finding& x) { return x.severity == Severity::error; });
}

bool has_warnings(const Findings& f) {
    return std::any_of(f.begin(), f.end(),
                       [](const Finding& x) { return x.severity == Severity::warning; });
}

}  // namespace stsguard
