#include "postfix/socketmap_key.h"

#include <arpa/inet.h>

namespace stsguard {
namespace {

bool is_ip_literal(std::string_view s) {
    // inet_pton takes dotted decimal (a leading digit) or a form with ':'
    // only; nearly every key is neither and needs no NUL-terminated copy.
    const bool maybe = !s.empty() && ((s[0] >= '0' && s[0] <= '9') || s.find(':') != std::string_view::npos);
    if (!maybe) return false;
    std::string t(s);
    unsigned char buf[16];
    return inet_pton(AF_INET, t.c_str(), buf) == 1 || inet_pton(AF_INET6, t.c_str(), buf) == 1;
}

void set(KeyClass& out, KeyClass::Kind kind, std::string why) {
    out.kind = kind;
    out.domain.reset();
    out.why = std::move(why);
}

}  // namespace

void classify_key_into(std::string_view key, KeyClass& out) {
    using Kind = KeyClass::Kind;
    // Nearly every key is a domain in normal form, which rules out each
    // skip below (no '[', '.' first, ':', leading digit) but a single
    // label: one scan decides those.
    if (out.domain && DomainName::assign_if_normal_form(key, *out.domain)) {
        if (key.find('.') == std::string_view::npos) return set(out, Kind::skip, "single-label name");
        out.kind = Kind::domain;
        out.why.clear();
        return;
    }
    if (key.empty()) return set(out, Kind::invalid, "empty key");
    if (key.front() == '[') return set(out, Kind::skip, "explicit next hop [host]: MTA-STS applies to MX lookups only");
    if (key.front() == '.') return set(out, Kind::skip, "parent-domain key: answered by the exact domain's lookup");
    if (is_ip_literal(key)) return set(out, Kind::skip, "IP address: MTA-STS needs a domain name");
    if (key.find(':') != std::string_view::npos) return set(out, Kind::skip, "host:port next hop: not an MX lookup");
    std::string why;
    const bool ok = out.domain ? DomainName::parse_into(key, *out.domain, &why)
                               : (out.domain = DomainName::parse(key, &why)).has_value();
    if (!ok) return set(out, Kind::invalid, "invalid domain '" + std::string(key) + "': " + why);
    // A single-label name is never an MTA-STS policy domain (there is no
    // mta-sts.<tld> policy to fetch for a bare TLD in practice, and
    // Postfix asks for "localhost"-style names for local transports).
    if (out.domain->str().find('.') == std::string::npos) return set(out, Kind::skip, "single-label name");
    out.kind = Kind::domain;
    out.why.clear();
}

KeyClass classify_key(std::string_view key) {
    KeyClass k;
    classify_key_into(key, k);
    return k;
}

}  // namespace stsguard
