#include "plugin/recipient_address.h"

namespace stsguard {
namespace {

RecipientDomain invalid(std::string why) {
    return {RecipientDomain::Kind::invalid, std::nullopt, std::move(why)};
}

RecipientDomain no_domain(std::string why) {
    return {RecipientDomain::Kind::no_domain, std::nullopt, std::move(why)};
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace

RecipientDomain recipient_domain(std::string_view address) {
    if (address.size() > kMaxAddressBytes)
        return invalid("address of " + std::to_string(address.size()) + " bytes is longer than " +
                       std::to_string(kMaxAddressBytes));
    for (unsigned char c : address) {
        if ((c < 0x20 && c != '\t') || c == 0x7f) return invalid("control character in address");
    }

    std::string_view a = trim(address);
    if (a.empty()) return invalid("empty address");
    if (a.front() == '<' || a.back() == '>') {
        if (a.size() < 2 || a.front() != '<' || a.back() != '>')
            return invalid("unbalanced angle brackets in '" + std::string(a) + "'");
        a = trim(a.substr(1, a.size() - 2));
        if (a.empty()) return invalid("null path <> is not a recipient");
    }

    // Source route (RFC 5321 4.1.2 A-d-l, obsolete, C.  "MUST be ignored").
    if (a.front() == '@') {
        const auto colon = a.find(':');
        if (colon == std::string_view::npos)
            return invalid("source route without ':' in '" + std::string(a) + "'");
        a = a.substr(colon + 1);
        if (a.empty()) return invalid("source route without a mailbox");
    }

    // The last '@' outside a quoted string separates the domain.
    bool quoted = false;
    std::size_t at = std::string_view::npos;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const char c = a[i];
        if (c == '\\') {
            if (i + 1 == a.size()) return invalid("address ends in a lone backslash");
            ++i;  // quoted-pair: the next character is literal
        } else if (c == '"') {
            quoted = !quoted;
        } else if (c == '@' && !quoted) {
            at = i;
        }
    }
    if (quoted) return invalid("unterminated quoted local part in '" + std::string(a) + "'");
    if (at == std::string_view::npos) return no_domain("no domain part (local recipient)");
    if (at == 0) return invalid("empty local part in '" + std::string(a) + "'");

    const std::string_view dom = a.substr(at + 1);
    if (dom.empty()) return invalid("empty domain after '@'");
    if (dom.front() == '[') {
        if (dom.back() != ']') return invalid("unterminated address literal '" + std::string(dom) + "'");
        return no_domain("address literal " + std::string(dom) + " (MTA-STS applies to domain names)");
    }
    std::string why;
    auto d = DomainName::parse(dom, &why);
    if (!d) return invalid("invalid domain '" + std::string(dom) + "': " + why);
    return {RecipientDomain::Kind::domain, std::move(d), {}};
}

}  // namespace stsguard
