// address_guard.cc - classification of policy-host addresses.
//
// Tables of special-purpose prefixes (IANA IPv4/IPv6 Special-Purpose
// Address Registries, RFC 6890) that must never be the target of a policy
// fetch.  IPv4-mapped (::ffff:0:0/96) and NAT64 (64:ff9b::/96, RFC 6052)
// addresses reach an IPv4 host, so the IPv4 rules apply to the embedded
// address: ::ffff:127.0.0.1 is loopback.
#include "policy-cache/address_guard.h"

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace stsguard {
namespace {

struct V4Range {
    std::uint32_t net;
    int bits;
    const char* name;
};

constexpr std::uint32_t v4(unsigned a, unsigned b, unsigned c, unsigned d) {
    return (a << 24) | (b << 16) | (c << 8) | d;
}

// Broadcast comes before 240/4 so the more specific name is reported.
constexpr V4Range kV4Ranges[] = {
    {v4(255, 255, 255, 255), 32, "broadcast (255.255.255.255/32)"},
    {v4(0, 0, 0, 0), 8, "this network (0.0.0.0/8)"},
    {v4(10, 0, 0, 0), 8, "private (10.0.0.0/8)"},
    {v4(100, 64, 0, 0), 10, "shared address space / CGNAT (100.64.0.0/10)"},
    {v4(127, 0, 0, 0), 8, "loopback (127.0.0.0/8)"},
    {v4(169, 254, 0, 0), 16, "link-local (169.254.0.0/16)"},
    {v4(172, 16, 0, 0), 12, "private (172.16.0.0/12)"},
    {v4(192, 0, 0, 0), 24, "IETF protocol assignments (192.0.0.0/24)"},
    {v4(192, 0, 2, 0), 24, "documentation TEST-NET-1 (192.0.2.0/24)"},
    {v4(192, 168, 0, 0), 16, "private (192.168.0.0/16)"},
    {v4(198, 18, 0, 0), 15, "benchmarking (198.18.0.0/15)"},
    {v4(198, 51, 100, 0), 24, "documentation TEST-NET-2 (198.51.100.0/24)"},
    {v4(203, 0, 113, 0), 24, "documentation TEST-NET-3 (203.0.113.0/24)"},
    {v4(224, 0, 0, 0), 4, "multicast (224.0.0.0/4)"},
    {v4(240, 0, 0, 0), 4, "reserved (240.0.0.0/4)"},
};

std::optional<std::string> classify_v4(std::uint32_t addr) {
    for (const auto& r : kV4Ranges) {
        const std::uint32_t mask = ~std::uint32_t{0} << (32 - r.bits);
        if ((addr & mask) == r.net) {
            return std::string(r.name);
        }
    }
    return std::nullopt;
}

using V6 = std::array<std::uint8_t, 16>;

struct V6Range {
    V6 net;
    int bits;
    const char* name;
};

bool in_prefix(const V6& a, const V6& net, int bits) {
    int full = bits / 8;
    if (std::memcmp(a.data(), net.data(), static_cast<std::size_t>(full)) != 0) {
        return false;
    }
    int rest = bits % 8;
    if (rest == 0) {
        return true;
    }
    const auto mask = static_cast<std::uint8_t>(0xFFu << (8 - rest));
    return (a[static_cast<std::size_t>(full)] & mask) ==
           (net[static_cast<std::size_t>(full)] & mask);
}

// Order matters: exact host routes before the ::/96 block containing them.
const V6Range kV6Ranges[] = {
    {V6{}, 128, "unspecified (::/128)"},
    {V6{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback (::1/128)"},
    {V6{}, 96, "IPv4-compatible, deprecated (::/96)"},
    {V6{0xfc}, 7, "unique local (fc00::/7)"},
    {V6{0xfe, 0x80}, 10, "link-local (fe80::/10)"},
    {V6{0xfe, 0xc0}, 10, "site-local, deprecated (fec0::/10)"},
    {V6{0xff}, 8, "multicast (ff00::/8)"},
    {V6{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation (2001:db8::/32)"},
};

const V6 kMappedPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
const V6 kNat64Prefix{0x00, 0x64, 0xff, 0x9b};

std::uint32_t embedded_v4(const V6& a) {
    return (std::uint32_t{a[12]} << 24) | (std::uint32_t{a[13]} << 16) |
           (std::uint32_t{a[14]} << 8) | std::uint32_t{a[15]};
}

std::optional<std::string> classify_v6(const V6& a) {
    // Embedded IPv4 first: ::ffff:0.0.0.0 must not fall into ::/96 rules.
    if (in_prefix(a, kMappedPrefix, 96)) {
        if (auto r = classify_v4(embedded_v4(a))) {
            return *r + " as IPv4-mapped IPv6 (::ffff:0:0/96)";
        }
        return std::nullopt;
    }
    if (in_prefix(a, kNat64Prefix, 96)) {
        if (auto r = classify_v4(embedded_v4(a))) {
            return *r + " via NAT64 (64:ff9b::/96)";
        }
        return std::nullopt;
    }
    for (const auto& r : kV6Ranges) {
        if (in_prefix(a, r.net, r.bits)) {
            return std::string(r.name);
        }
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::string> internal_address_range(std::string_view ip_text) {
    // inet_pton stops at NUL; a string with an embedded NUL must not pass
    // as its prefix.  46 = INET6_ADDRSTRLEN.
    if (ip_text.empty() || ip_text.size() >= INET6_ADDRSTRLEN ||
        ip_text.find('\0') != std::string_view::npos) {
        return "unparsable address";
    }
    const std::string text(ip_text);
    in_addr a4{};
    if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
        return classify_v4(ntohl(a4.s_addr));
    }
    V6 a6{};
    if (inet_pton(AF_INET6, text.c_str(), a6.data()) == 1) {
        return classify_v6(a6);
    }
    return "unparsable address";
}

}  // namespace stsguard
