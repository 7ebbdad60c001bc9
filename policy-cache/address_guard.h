// address_guard.h - refuse policy hosts on internal addresses.
//
// A hostile domain can publish mta-sts.<domain> pointing at 127.0.0.1,
// 10.0.0.0/8 or a cloud metadata address to make the service probe the
// internal network.  By default stsguard refuses to connect to loopback,
// RFC 1918 private, link-local, CGNAT (100.64/10), unspecified, multicast,
// and the IPv6 equivalents (::1, fc00::/7, fe80::/10, ::, IPv4-mapped
// forms of the IPv4 ranges).  policy_fetch_allow_private = yes lifts it.
//
// Pure: no I/O.  Failures: none; an unparsable address is "not allowed".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace stsguard {

// nullopt if the address is public; otherwise the name of the range that
// makes it internal, e.g. "loopback (127.0.0.0/8)".
std::optional<std::string> internal_address_range(std::string_view ip_text);

}  // namespace stsguard
