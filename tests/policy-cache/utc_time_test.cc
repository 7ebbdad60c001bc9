// Tests for policy-cache/utc_time: the one printed time format.
#include "policy-cache/utc_time.h"

#include <doctest/doctest.h>

using namespace stsguard;

TEST_CASE("utc time: RFC 3339 in UTC with seconds and a Z") {
    CHECK(utc_iso8601(from_unix(0)) == "1970-01-01T00:00:00Z");
    CHECK(utc_iso8601(from_unix(1'709'294'400)) == "2024-03-01T12:00:00Z");
    CHECK(utc_iso8601(from_unix(951'825'599)) == "2000-02-29T11:59:59Z");  // leap day
}

TEST_CASE("utc time: times before 1970 are printed, not refused") {
    CHECK(utc_iso8601(from_unix(-1)) == "1969-12-31T23:59:59Z");
}
