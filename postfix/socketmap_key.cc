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

KeyClass skip(std::string why) { return {KeyClass::Kind::skip, std::nullopt, std::move(why)}; }

}  // namespace

KeyClass classify_key(std::string_view key) {
    if (key.empty()) return {KeyClass::Kind::invalid, std::nullopt, "empty key"};
    if (key.front() == '[') return skip("explicit next hop [host]: MTA-STS applies to MX lookups only");
    if (key.front() == '.') return skip("parent-domain key: answered by the exact domain's lookup");
    if (is_ip_literal(key)) return skip("IP address: MTA-STS needs a domain name");
    if (key.find(':') != std::string_view::npos) return skip("host:port next hop: not an MX lookup");
    std::string why;
    auto d = DomainName::parse(key, &why);
    if (!d) return {KeyClass::Kind::invalid, std::nullopt, "invalid domain '" + std::string(key) + "': " + why};
    // A single-label name is never an MTA-STS policy domain (there is no
    // mta-sts.<tld> policy to fetch for a bare TLD in practice, and
    // Postfix asks for "localhost"-style names for local transports).
    if (d->str().find('.') == std::string::npos) return skip("single-label name");
    return {KeyClass::Kind::domain, std::move(d), {}};
}

}  // namespace stsguard
