// tlsrpt_record.h - the "_smtp._tls" TXT record of SMTP TLS Reporting
// (RFC 8460 section 3).
//
// Input: every TXT RR at _smtp._tls.<domain>, strings already joined.
// Records that do not begin with "v=TLSRPTv1" are discarded (3); if not
// exactly one remains, or it breaks the grammar, senders assume the domain
// does not implement TLSRPT.  Grammar (3):
//   tlsrpt-record = "v=TLSRPTv1" 1*(field-delim tlsrpt-field) [field-delim]
//   field-delim   = *WSP ";" *WSP
//   tlsrpt-rua    = "rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)   (required)
//   tlsrpt-ext-name  = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//   tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
// rua URIs: "mailto:" (an address with '@') or "https:" ("https://host...");
// other schemes are not defined by RFC 8460 and are warned about; commas and
// '!' must be percent-encoded inside a URI (3).
//
// Finding codes: tlsrpt-none, tlsrpt-ignored (info), tlsrpt-multiple,
// tlsrpt-syntax, tlsrpt-no-rua, tlsrpt-rua-duplicate, tlsrpt-uri-invalid,
// tlsrpt-uri-scheme, tlsrpt-field-name, tlsrpt-field-value.
// Pure: no I/O.  Failures: only findings; never throws.  Limits: at most
// 20 findings per code (FindingSink); messages use printable().
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "policy-cache/finding.h"

namespace stsguard {

enum class TlsrptVerdict { valid, invalid, absent };
const char* tlsrpt_verdict_name(TlsrptVerdict v);  // "valid" | "invalid" | "absent"

struct TlsrptRecord {
    TlsrptVerdict verdict = TlsrptVerdict::absent;
    std::string record;                                           // the v=TLSRPTv1 record
    std::vector<std::string> rua;                                 // every URI, in order
    std::vector<std::pair<std::string, std::string>> extensions;
    Findings findings;
};

TlsrptRecord parse_tlsrpt(const std::vector<std::string>& records);

}  // namespace stsguard
