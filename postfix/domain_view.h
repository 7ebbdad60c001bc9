// domain_view.h - the engine's state of one domain, as the answer logic
// sees it.  Built from a cache record and its assessment (refresh_rules.h)
// so `serve`, `query` and `dry-run` derive answers the same way.
//
// Pure: no I/O.  Failures: none.  The returned view points into `rec`
// (and `texts`' storage), which must outlive it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy-cache/cache_record.h"
#include "policy-cache/refresh_rules.h"
#include "postfix/policy_answer.h"

namespace stsguard {

// For Assessment::Use::unknown (nothing usable and no answer in time),
// the view is a temporary failure with `pending_code`/`pending_reason`.
// (Views, not strings: a std::string default argument would be built on
// the heap for every call, and serve calls this once per request.)
inline constexpr std::string_view kPendingCode = "lookup-pending";
inline constexpr std::string_view kPendingReason = "policy discovery did not finish in time";
DomainView view_of(const std::optional<CacheRecord>& rec, const Assessment& a,
                   std::string_view pending_code = kPendingCode, std::string_view pending_reason = kPendingReason);

// The same for a record decoded in place straight into into.texts
// (decode_record_view(bytes, key, fixed, into.texts)): the rest of `into`
// from `fixed`'s fixed-width fields, nothing copied.  view_of() fills
// texts from an owned record and comes here too.
void view_of_into(const CacheRecord& fixed, const Assessment& a, DomainView& into,
                  std::string_view pending_code = kPendingCode, std::string_view pending_reason = kPendingReason);

// The whole decision for a domain whose record was just read.
Answer answer_for(const DomainName& domain, const std::optional<CacheRecord>& rec, UnixTime now,
                  const MapSettings& map);

}  // namespace stsguard
