// dns_answer.h - turn one DNS response packet into a Lookup (no I/O).
//
// The resolver (dns_resolver.cc) does the network part; everything that
// decides what an answer *means* lives here so it is tested with packets
// built in memory:
//   rcode NXDOMAIN -> NotFound("NXDOMAIN"); NOERROR without RRs of the
//   type at the end of the CNAME chain -> NotFound("NODATA") (RFC 2308);
//   SERVFAIL -> temp "dns-servfail"; REFUSED -> temp "dns-refused";
//   TC still set (after TCP fallback) -> temp "dns-truncated"; any other
//   rcode, a reply to a different question, a CNAME loop or malformed
//   rdata -> temp "dns-error".  Failure reasons name the query and server.
// CNAMEs in the answer section are followed from the query owner (at most
// kMaxCnameChain links); only RRs of the final owner count (RFC 1034
// 3.6.2).  meta.ttl is the smallest TTL along the chain and the RRset,
// meta.authenticated the AD bit (meaningful only from a validating
// resolver on a trusted path).
//
// MX (RFC 5321 5.1, RFC 7505): a single "." exchange is NotFound
// ("null MX (RFC 7505)"); "." mixed with real hosts is dropped.  NODATA
// is passed through; implicit_mx() then applies the implicit-MX rule from
// an address lookup of the domain.
#pragma once

#include <string>

#include "policy-cache/dns_resolver.h"
#include "policy-cache/ldns_handles.h"

namespace stsguard {

inline constexpr int kMaxCnameChain = 16;

// NotFound reasons, exactly these strings.
inline constexpr const char* kNxdomain = "NXDOMAIN";
inline constexpr const char* kNodata = "NODATA";
inline constexpr const char* kNullMx = "null MX (RFC 7505)";

// What was asked and of whom, for reason strings and the question check.
struct DnsQueryInfo {
    std::string owner;  // as asked, with or without the final dot
    ldns_rr_type type = LDNS_RR_TYPE_A;
    std::string server;  // "127.0.0.53" or "127.0.0.1:5353"
};

// "_mta-sts.example.com TXT from 127.0.0.53" - for reason strings.
std::string describe_query(const DnsQueryInfo& q);

Lookup<TxtAnswer> interpret_txt(const ldns_pkt* pkt, const DnsQueryInfo& q);
Lookup<MxAnswer> interpret_mx(const ldns_pkt* pkt, const DnsQueryInfo& q);
// One of A or AAAA (q.type says which).
Lookup<AddressAnswer> interpret_addresses(const ldns_pkt* pkt, const DnsQueryInfo& q);
Lookup<TlsaAnswer> interpret_tlsa(const ldns_pkt* pkt, const DnsQueryInfo& q);

// A and AAAA together: found if either has addresses (IPv4 first); else
// a failure of either wins over NotFound (we cannot say "no address");
// else NotFound (NXDOMAIN if either said so).  authenticated only if
// every found part was.
Lookup<AddressAnswer> merge_addresses(const Lookup<AddressAnswer>& v4,
                                      const Lookup<AddressAnswer>& v6);

// RFC 5321 5.1: `mx` was NotFound("NODATA") for `domain`; `addresses` is
// the A/AAAA lookup of the domain.  Addresses found -> one implicit MX
// (the domain, preference 0, implicit = true); none -> NotFound; failure
// -> that failure.  Any other `mx` result is returned unchanged.
Lookup<MxAnswer> implicit_mx(const Lookup<MxAnswer>& mx, const std::string& domain,
                             const Lookup<AddressAnswer>& addresses);

// Lower case, no trailing dot ("." itself becomes "").
std::string normalize_dname_text(std::string text);

}  // namespace stsguard
