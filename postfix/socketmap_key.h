// socketmap_key.h - which Postfix TLS policy keys stsguard looks up.
//
// Postfix asks smtp_tls_policy_maps for the next-hop destination: a
// domain, "[host]" or "[host]:port" for explicit relays, an IP literal,
// and after a NOTFOUND also ".parent" domains (parent_domain_matches_
// subdomains).  MTA-STS (RFC 8461 4) applies to a recipient domain whose
// MX hosts are looked up, so only plain domain names are looked up; every
// other form gets NOTFOUND without any DNS query.  Internationalized
// names are converted to A-labels (DomainName, IDNA2008); a key that is
// not a valid host name is NOTFOUND and logged.
//
// Pure: no I/O.  Failures: through KeyClass only.  Limits: DomainName's.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy-cache/domain_name.h"

namespace stsguard {

struct KeyClass {
    enum class Kind {
        domain,       // look it up
        skip,         // a form MTA-STS does not apply to: NOTFOUND, no log
        invalid,      // not a host name: NOTFOUND and a log line
    } kind = Kind::invalid;
    std::optional<DomainName> domain;  // set for Kind::domain
    std::string why;                   // for skip and invalid
};

KeyClass classify_key(std::string_view key);

// classify_key() into `out`, whatever it held before.  A domain key
// reuses the storage of the domain out held (the serve hot path
// classifies one key per request into the same KeyClass).
void classify_key_into(std::string_view key, KeyClass& out);

}  // namespace stsguard
