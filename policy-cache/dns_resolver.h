// dns_resolver.h - DNS lookups stsguard needs, behind one interface.
//
// DnsResolver is the seam: LdnsResolver (ldns_resolver, blocking, one per
// worker thread; ldns resolvers are not thread-safe) does real queries,
// tests use a fake.  Results keep the three outcomes apart, as RFC 8461
// needs: found; NotFound for NXDOMAIN and NODATA (the name or type does
// not exist: "no policy"); Failure::temporary for SERVFAIL, REFUSED,
// timeouts, truncation that TCP could not fix, and malformed answers.
//
// TXT: every RR, its character-strings concatenated (RFC 8461 3.1).
// CNAMEs are followed (the resolver does that; the chain is reported).
// MX: RFC 5321 5.1 implicit MX: no MX RRset but A/AAAA at the name gives
// one implicit MX, the name itself, preference 0.  A null MX ("." RFC
// 7505) is reported as NotFound("null MX").  The AD bit is reported so
// DANE can trust only validated answers.
//
// Limits: dns_timeout per attempt, dns_retries extra attempts, answers as
// large as TCP allows.  Failure codes: "dns-timeout", "dns-servfail",
// "dns-refused", "dns-truncated", "dns-error" (other rcode / malformed),
// "dns-setup" (no usable server).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy-cache/clock.h"
#include "policy-cache/domain_name.h"
#include "policy-cache/outcome.h"

namespace stsguard {

struct DnsMeta {
    bool authenticated = false;       // AD bit set on the answer
    std::uint32_t ttl = 0;            // smallest TTL of the answer RRset
    std::vector<std::string> cnames;  // CNAME chain followed, in order
};

struct TxtAnswer {
    std::vector<std::string> records;  // one string per RR, strings joined
    DnsMeta meta;
};

struct MxHost {
    std::uint16_t preference = 0;
    std::string host;  // lower case, no trailing dot
};

struct MxAnswer {
    std::vector<MxHost> hosts;  // sorted by preference, then name
    bool implicit = false;      // RFC 5321 implicit MX (no MX RRset)
    DnsMeta meta;
};

struct AddressAnswer {
    std::vector<std::string> addresses;  // IPv4 then IPv6, text form
    DnsMeta meta;
};

struct TlsaRecord {
    std::uint8_t usage = 0;
    std::uint8_t selector = 0;
    std::uint8_t matching = 0;
    std::string data_hex;  // lower-case hex of the association data
};

struct TlsaAnswer {
    std::vector<TlsaRecord> records;
    DnsMeta meta;
};

class DnsResolver {
public:
    virtual ~DnsResolver() = default;
    virtual Lookup<TxtAnswer> txt(const std::string& owner) = 0;
    virtual Lookup<MxAnswer> mx(const DomainName& domain) = 0;
    // A and AAAA together: found if either has records; a temporary
    // failure of one with records in the other still counts as found.
    virtual Lookup<AddressAnswer> addresses(const std::string& host) = 0;
    virtual Lookup<TlsaAnswer> tlsa(const std::string& owner) = 0;
};

struct DnsSettings {
    std::vector<std::string> servers;  // "ADDR" or "ADDR:PORT" / "[v6]:PORT"; empty: resolv.conf
    Seconds timeout{5};
    int retries = 2;
};

// One dns_servers entry: "ADDR", "ADDR:PORT", "[V6ADDR]:PORT" or a bare
// IPv6 address.  nullopt and *error naming the entry if unusable.
// (Added by the DNS adapter; config validation may use it.)
struct DnsServerAddress {
    std::string address;  // numeric, as inet_pton accepts it
    std::uint16_t port = 53;
};
std::optional<DnsServerAddress> parse_dns_server(std::string_view text, std::string* error);

// Builds an ldns-backed resolver.  Returns nullptr and sets *error when
// the settings are unusable (bad address, unreadable resolv.conf).
std::unique_ptr<DnsResolver> make_ldns_resolver(const DnsSettings& settings, std::string* error);

}  // namespace stsguard
