// policy_host.cc - address selection for the policy fetch.  See policy_host.h.
#include "policy-cache/policy_host.h"

#include <arpa/inet.h>

#include "policy-cache/address_guard.h"

namespace stsguard {
namespace {

bool numeric_address(const std::string& text) {
    unsigned char buf[sizeof(in6_addr)];
    return inet_pton(AF_INET, text.c_str(), buf) == 1 ||
           inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

}  // namespace

Lookup<std::vector<std::string>> usable_policy_addresses(const std::string& host,
                                                         const Lookup<AddressAnswer>& dns,
                                                         PrivateAddresses policy) {
    if (dns.not_found()) {
        return Failure::perm("policy-host-not-found", "no A/AAAA record for " + host + " (" +
                                                          dns.not_found_info().reason + ")");
    }
    if (dns.failed()) {
        return Failure::temp("policy-host-dns", "resolving " + host + ": " + dns.failure().code +
                                                    ": " + dns.failure().reason);
    }
    std::vector<std::string> usable;
    std::string refused;
    for (const auto& address : dns.value().addresses) {
        std::optional<std::string> range;
        if (!numeric_address(address)) {
            range = "unparsable address";
        } else if (policy == PrivateAddresses::refuse) {
            range = internal_address_range(address);
        }
        if (!range) {
            usable.push_back(address);
            continue;
        }
        if (!refused.empty()) {
            refused += ", ";
        }
        refused += address + " is " + *range;
    }
    if (usable.empty()) {
        if (refused.empty()) {
            refused = "no addresses";
        }
        if (policy == PrivateAddresses::refuse) {
            refused += " (policy_fetch_allow_private = no)";
        }
        return Failure::perm("policy-host-private",
                             host + " has no address the fetcher may use: " + refused);
    }
    return usable;
}

std::string curl_resolve_entry(const std::string& host, int port,
                               const std::vector<std::string>& addresses) {
    std::string entry = host + ":" + std::to_string(port) + ":";
    for (std::size_t i = 0; i < addresses.size(); ++i) {
        if (i > 0) {
            entry += ",";
        }
        const bool v6 = addresses[i].find(':') != std::string::npos;
        entry += v6 ? "[" + addresses[i] + "]" : addresses[i];
    }
    return entry;
}

}  // namespace stsguard
