// domain_name.h - a validated, normalized DNS host name (strong type).
//
// Every domain that enters stsguard (a Postfix key, a CLI argument, an MX
// target from DNS) is turned into a DomainName first, so the rest of the
// code never compares raw strings.  Normal form: lower case, no trailing
// root dot, A-labels only (U-labels are converted with libidn2, IDNA2008
// with UTS#46 mapping, as Postfix's smtputf8 support does).
//
// Failures: parse() returns std::nullopt and explains why (empty label,
//   label over 63 octets, name over 253 octets, invalid character, IP
//   address literal, IDNA conversion error).
// Limits: RFC 1035 2.3.4 sizes.  Letters, digits and hyphen only (LDH,
//   RFC 5890), plus '_' which appears in _mta-sts / _smtp._tls owners.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace stsguard {

class DomainName {
public:
    // Parses text into normal form; on failure returns nullopt and, if why
    // is non-null, a reason naming the offending part.
    static std::optional<DomainName> parse(std::string_view text, std::string* why = nullptr);

    // True if text is a name that parse() returns unchanged and that needs
    // none of its slower checks: lower-case letters, digits, '-' and '_'
    // in labels of 1-63 octets, at most 253 octets, no root dot, no A-label
    // ("xn--": libidn2 must check it), not starting with a digit (inet_aton
    // must rule out an address) and no all-numeric last label.  Postfix
    // keys and cached names are nearly always like this, so parse() and
    // the MX matcher take it as a shortcut.
    static bool is_normal_form(std::string_view text);

    // parse() into an existing name, reusing its storage (the serve hot
    // path parses one key per request).  On failure `into` is unchanged.
    static bool parse_into(std::string_view text, DomainName& into, std::string* why = nullptr);
    // parse_into()'s shortcut alone: true (into = text) if text is in
    // normal form; false, into unchanged, if it is not (it may still parse).
    static bool assign_if_normal_form(std::string_view text, DomainName& into);

    // parse() without that shortcut: every name through every check.
    // parse(t) and parse_general(t) agree for every t (tested).
    static std::optional<DomainName> parse_general(std::string_view text,
                                                   std::string* why = nullptr);

    const std::string& str() const { return name_; }
    bool operator==(const DomainName& o) const { return name_ == o.name_; }
    bool operator<(const DomainName& o) const { return name_ < o.name_; }

    // "_mta-sts.<name>" (RFC 8461 3.1) and "mta-sts.<name>" (3.3).
    std::string sts_txt_owner() const { return "_mta-sts." + name_; }
    std::string policy_host() const { return "mta-sts." + name_; }
    std::string tlsrpt_owner() const { return "_smtp._tls." + name_; }

private:
    explicit DomainName(std::string n) : name_(std::move(n)) {}
    std::string name_;
};

// True if text is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).  Used before IDNA conversion and
// for policy extension values, which 3.2 allows to be UTF-8.
bool valid_utf8(std::string_view text);

// ASCII letters compared without case; every other byte exactly (DNS
// names, header names).
bool ascii_iequals(std::string_view a, std::string_view b);

}  // namespace stsguard
