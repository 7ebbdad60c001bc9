// policy_host.h - which addresses of mta-sts.<domain> the fetcher may use.
//
// Pure (no I/O), shared by https_fetcher.cc and its tests.  RFC 8461 3.3
// fetches from the policy host; stsguard resolves it through its own
// DnsResolver and hands curl only the addresses that pass the
// private-address guard (address_guard.h), pinned with CURLOPT_RESOLVE so
// curl cannot resolve the name again (no DNS rebinding between check and
// connect).
//
// Failures (as in https_fetcher.h): policy-host-not-found (perm) for
// NXDOMAIN/NODATA, policy-host-dns (temp) for DNS failures,
// policy-host-private (perm) when the guard leaves nothing; the reason
// names each refused address and its range.  Unparsable addresses are
// always dropped, even with PrivateAddresses::allow.
// Limits: none.
#pragma once

#include <string>
#include <vector>

#include "policy-cache/dns_resolver.h"
#include "policy-cache/https_fetcher.h"

namespace stsguard {

Lookup<std::vector<std::string>> usable_policy_addresses(const std::string& host,
                                                         const Lookup<AddressAnswer>& dns,
                                                         PrivateAddresses policy);

// "host:port:addr1,[v6addr],..." for CURLOPT_RESOLVE.
std::string curl_resolve_entry(const std::string& host, int port,
                               const std::vector<std::string>& addresses);

}  // namespace stsguard
