// record_json.h - a cache record as JSON: `cache show/list --json`,
// `cache export` (one object per line) and `cache import`.
//
// Import re-parses the raw policy body with the RFC 8461 parser, so an
// imported record can never carry a policy the parser would refuse.
// Failures: record_from_json() returns nullopt and says why.  Limits:
// those of CacheRecord (cache_record.h).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "policy-cache/cache_record.h"

namespace stsguard {

std::string iso_time(UnixTime t);  // "2024-01-01T00:00:00Z", or "never" for the epoch

nlohmann::json record_json(const CacheRecord& r);
std::optional<CacheRecord> record_from_json(const nlohmann::json& j, std::string* why);

}  // namespace stsguard
