// recipient_address.h - the destination domain of an envelope recipient,
// as the milter gets it from Postfix (xxfi_envrcpt argv[0]).
//
// RFC 5321 4.1.2: Path = "<" [ A-d-l ":" ] Mailbox ">", Mailbox =
// Local-part "@" ( Domain / address-literal ), where Local-part may be a
// quoted string holding '@', '<', '>' or backslash-escaped characters.
// So: strip the angle brackets, drop a source route ("@a,@b:"), and take
// the part after the last '@' that is outside quotes (what Postfix routes
// on).  The domain is normalized by DomainName::parse (case, trailing dot,
// U-labels to A-labels via IDNA, so an SMTPUTF8 recipient maps to the
// same cache key as the socketmap service's lookup).
//
// Outcomes: a domain; no domain (a bare local part such as "postmaster",
// or an address literal "[192.0.2.1]": MTA-STS is about domain names,
// RFC 8461 4.1); or invalid, with a reason naming what is wrong (the
// milter logs it and lets Postfix judge the address).
//
// Pure: no I/O.  Failures: none thrown.  Limits: kMaxAddressBytes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "policy-cache/domain_name.h"

namespace stsguard {

// RFC 5321 4.5.3.1.3 caps a path at 256 octets; SMTPUTF8 and sloppy
// clients get some room, but nothing unbounded is parsed.
inline constexpr std::size_t kMaxAddressBytes = 1024;

struct RecipientDomain {
    enum class Kind { domain, no_domain, invalid } kind = Kind::invalid;
    std::optional<DomainName> domain;  // set for Kind::domain
    std::string why;                   // for no_domain and invalid
};

RecipientDomain recipient_domain(std::string_view address);

}  // namespace stsguard
