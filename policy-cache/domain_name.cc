// domain_name.cc - parsing DNS host names into their normal form.
//
// Non-ASCII input goes through libidn2 (IDNA2008 + UTS#46 non-transitional
// mapping, NFC) so "MX.Bücher.example" and "mx.xn--bcher-kva.example" are
// the same DomainName.  Everything is then checked octet by octet, because
// libidn2 without STD3 rules lets through characters a host name cannot
// hold.
#include "policy-cache/domain_name.h"

#include <arpa/inet.h>
#include <idn2.h>

#include <cstdlib>
#include <memory>

#include "policy-cache/domain_name_scan.h"
#include "policy-cache/finding.h"

namespace stsguard {
namespace {

constexpr std::size_t kMaxLabel = detail::kMaxLabelOctets;
constexpr std::size_t kMaxName = detail::kMaxNameOctets;

struct Idn2Free {
    void operator()(char* p) const { idn2_free(p); }
};
using Idn2String = std::unique_ptr<char, Idn2Free>;

bool fail(std::string* why, std::string reason) {
    if (why) *why = std::move(reason);
    return false;
}

bool is_alnum(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// An IPv4 or IPv6 literal, bracketed or not, in any form inet_aton takes
// ("127.1", "0x7f.0.0.1"): an MX target or policy domain is never one.  An
// all-numeric last label is refused too (RFC 3696 2: no TLD is numeric),
// so no resolver can take the name for an address.  Returns "" if not.
std::string ip_literal_reason(const std::string& s) {
    if (!s.empty() && s.front() == '[') return "is an address literal, not a host name";
    if (s.find(':') != std::string::npos) return "is an IPv6 address, not a host name";
    in_addr a4{};
    if (inet_aton(s.c_str(), &a4) != 0) return "is an IPv4 address, not a host name";
    const auto dot = s.rfind('.');
    if (all_digits(dot == std::string::npos ? std::string_view(s)
                                            : std::string_view(s).substr(dot + 1)))
        return "has an all-numeric last label, which resolvers may take for an IPv4 address";
    return "";
}

bool check_labels(std::string_view name, std::string* why) {
    if (name.size() > kMaxName)
        return fail(why, "name is " + std::to_string(name.size()) + " octets, more than " +
                             std::to_string(kMaxName));
    std::size_t start = 0;
    while (start <= name.size()) {
        std::size_t end = name.find('.', start);
        if (end == std::string_view::npos) end = name.size();
        const std::string_view label = name.substr(start, end - start);
        if (label.empty()) return fail(why, "empty label at octet " + std::to_string(start + 1));
        if (label.size() > kMaxLabel)
            return fail(why, "label '" + printable(label, 20) + "' is " +
                                 std::to_string(label.size()) + " octets, more than 63");
        for (std::size_t i = 0; i < label.size(); ++i) {
            const auto c = static_cast<unsigned char>(label[i]);
            if (!is_alnum(c) && c != '-' && c != '_')
                return fail(why, "invalid character '" + printable(label.substr(i, 1)) +
                                     "' in label '" + printable(label) +
                                     "' (letters, digits, '-' and '_' only)");
        }
        if (label.front() == '-' || label.back() == '-')
            return fail(why, "label '" + printable(label) + "' starts or ends with '-'");
        start = end + 1;
    }
    return true;
}

// An A-label must decode to Unicode and encode back to itself; otherwise
// "xn--" is a fake prefix that no IDNA implementation would produce.
bool check_a_labels(std::string_view name, std::string* why) {
    std::size_t start = 0;
    while (start < name.size()) {
        std::size_t end = name.find('.', start);
        if (end == std::string_view::npos) end = name.size();
        const std::string_view view = name.substr(start, end - start);
        if (view.size() > 4 && view.compare(0, 4, "xn--") == 0) {
            const std::string label(view);  // NUL-terminated for libidn2
            char* u = nullptr;
            int rc = idn2_to_unicode_8z8z(label.c_str(), &u, 0);
            Idn2String unicode(u);
            char* a = nullptr;
            if (rc == IDN2_OK)
                rc = idn2_to_ascii_8z(unicode.get(), &a, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
            Idn2String back(a);
            if (rc != IDN2_OK || label != back.get())
                return fail(why, "'" + printable(label) + "' is not a valid A-label" +
                                     (rc != IDN2_OK ? std::string(": ") + idn2_strerror(rc)
                                                    : std::string()));
        }
        start = end + 1;
    }
    return true;
}

}  // namespace

bool ascii_iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

bool valid_utf8(std::string_view text) {
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned char c = s[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = 0;
        unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c == 0xE0)
            len = 3, lo = 0xA0;
        else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
            len = 3;
        else if (c == 0xED)
            len = 3, hi = 0x9F;  // no UTF-16 surrogates
        else if (c == 0xF0)
            len = 4, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3)
            len = 4;
        else if (c == 0xF4)
            len = 4, hi = 0x8F;  // nothing above U+10FFFF
        else
            return false;
        if (n - i < len) return false;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (std::size_t k = 2; k < len; ++k)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return false;
        i += len;
    }
    return true;
}

// The scans live in domain_name_scan.cc: a 16-octet SSE2 scan with the
// octet loop as its reference.
bool DomainName::is_normal_form(std::string_view t) { return detail::is_normal_form_scan(t); }

std::optional<DomainName> DomainName::parse(std::string_view text, std::string* why) {
    if (is_normal_form(text)) return DomainName(std::string(text));
    return parse_general(text, why);
}

bool DomainName::assign_if_normal_form(std::string_view text, DomainName& into) {
    if (!is_normal_form(text)) return false;
    into.name_.assign(text);  // no allocation once into has held a name this long
    return true;
}

bool DomainName::parse_into(std::string_view text, DomainName& into, std::string* why) {
    if (assign_if_normal_form(text, into)) return true;
    auto d = parse_general(text, why);
    if (!d) return false;
    into = std::move(*d);
    return true;
}

std::optional<DomainName> DomainName::parse_general(std::string_view text, std::string* why) {
    if (text.empty()) {
        fail(why, "empty name");
        return std::nullopt;
    }
    bool ascii = true;
    for (unsigned char c : text) {
        if (c < 0x20 || c == 0x7f) {
            fail(why, "control character in '" + printable(text) + "'");
            return std::nullopt;
        }
        if (c >= 0x80) ascii = false;
    }

    std::string name;
    if (ascii) {
        name.assign(text);
        for (char& c : name)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    } else {
        if (!valid_utf8(text)) {
            fail(why, "'" + printable(text) + "' is neither ASCII nor valid UTF-8");
            return std::nullopt;
        }
        const std::string input(text);
        char* out = nullptr;
        const int rc = idn2_to_ascii_8z(input.c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
        Idn2String owned(out);
        if (rc != IDN2_OK) {
            fail(why, "IDNA conversion of '" + printable(text) + "' failed: " + idn2_strerror(rc));
            return std::nullopt;
        }
        name = owned.get();
        for (char& c : name)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }

    // One trailing dot is the DNS root: "example.com." is "example.com".
    if (name.size() > 1 && name.back() == '.' && name[name.size() - 2] != '.') name.pop_back();
    if (name == ".") {
        fail(why, "the root '.' is not a host name");
        return std::nullopt;
    }
    if (const std::string ip = ip_literal_reason(name); !ip.empty()) {
        fail(why, "'" + printable(name) + "' " + ip);
        return std::nullopt;
    }
    if (!check_labels(name, why) || !check_a_labels(name, why)) return std::nullopt;
    return DomainName(std::move(name));
}

}  // namespace stsguard
