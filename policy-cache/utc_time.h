// utc_time.h - one text form for every time stsguard prints: RFC 3339 /
// ISO 8601 in UTC with seconds, "2024-03-01T12:00:00Z" (JSON, tables,
// findings).  Pure; no locale, no time zone, no failure: any UnixTime,
// before 1970 and after 9999 included, gives a string.
#pragma once

#include <string>

#include "policy-cache/clock.h"

namespace stsguard {

std::string utc_iso8601(UnixTime t);

}  // namespace stsguard
