// domain_name_scan.h - the scans behind DomainName::is_normal_form().
//
// is_normal_form() runs several times per cache-hit request (the Postfix
// key, each cached MX host, each MX pattern), so on x86-64 names of 1-63
// octets, nearly all of them, are scanned 16 octets at a time with SSE2.
// The plain octet loop declared here is the reference the scan must agree
// with (tests compare the two over edge-case inputs), and it decides the
// rare names the scan hands over: 64 octets and longer, "--" inside a
// label, a digit first or last.  It is also the whole answer where SSE2 is
// missing.  Internal to domain_name.cc and its tests; the public contract
// is in domain_name.h.
//
// Failures: none; anything not in normal form is simply false.
// Limits: RFC 1035 2.3.4 sizes (labels 1-63 octets, names up to 253);
//   reads only the octets of the view, never past its end.
#pragma once

#include <cstddef>
#include <string_view>

namespace stsguard::detail {

inline constexpr std::size_t kMaxLabelOctets = 63;  // RFC 1035 2.3.4
inline constexpr std::size_t kMaxNameOctets = 253;  // 255 on the wire, minus length octets and root

// DomainName::is_normal_form(): the SSE2 scan where there is one.
bool is_normal_form_scan(std::string_view text);

// The same, one octet at a time.
bool is_normal_form_scalar(std::string_view text);

// True if is_normal_form_scan() uses SSE2 in this build.
#if defined(__SSE2__)
inline constexpr bool kNormalFormSse2 = true;
#else
inline constexpr bool kNormalFormSse2 = false;
#endif

}  // namespace stsguard::detail
