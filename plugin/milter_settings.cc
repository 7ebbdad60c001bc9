#include "plugin/milter_settings.h"

#include <sys/un.h>

#include <charconv>

namespace stsguard {
namespace {

bool fail(std::string* why, std::string msg) {
    if (why) *why = std::move(msg);
    return false;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

const char* milter_action_name(MilterAction a) {
    switch (a) {
        case MilterAction::prefetch: return "prefetch";
        case MilterAction::header: return "header";
        case MilterAction::hold: return "hold";
    }
    return "prefetch";
}

bool check_milter_socket(std::string_view spec, std::string* why) {
    const std::string quoted = "'" + std::string(spec) + "'";
    for (unsigned char c : spec)
        if (c <= 0x20 || c >= 0x7f) return fail(why, quoted + ": white space or control character");
    if (starts_with(spec, "unix:") || starts_with(spec, "local:")) {
        const std::string_view path = spec.substr(spec.find(':') + 1);
        if (path.empty() || path.front() != '/') return fail(why, quoted + ": the socket path must be absolute");
        if (path.size() >= sizeof(sockaddr_un::sun_path))
            return fail(why, quoted + ": socket path longer than " +
                                 std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
        return true;
    }
    if (starts_with(spec, "inet:") || starts_with(spec, "inet6:")) {
        const std::string_view rest = spec.substr(spec.find(':') + 1);
        const auto at = rest.find('@');
        if (at == std::string_view::npos || at + 1 == rest.size())
            return fail(why, quoted + ": name the address to listen on, e.g. inet:8462@127.0.0.1 "
                                      "(PORT alone would listen on every address)");
        const std::string_view port = rest.substr(0, at);
        int n = 0;
        auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
        if (port.empty() || ec != std::errc{} || p != port.data() + port.size() || n < 1 || n > 65535)
            return fail(why, quoted + ": invalid port '" + std::string(port) + "' (1..65535)");
        return true;
    }
    return fail(why, quoted + ": expected inet:PORT@HOST, inet6:PORT@HOST or unix:/PATH");
}

std::optional<MilterSettings> milter_settings(const Config& c, std::string* why) {
    MilterSettings s;
    std::string reason;
    if (!check_milter_socket(c.milter_listen, &reason)) {
        if (why) *why = "milter_listen: " + reason;
        return std::nullopt;
    }
    s.listen = c.milter_listen;
    s.wait = std::chrono::duration_cast<std::chrono::milliseconds>(c.milter_wait);
    if (c.milter_action == "prefetch") s.action = MilterAction::prefetch;
    else if (c.milter_action == "header") s.action = MilterAction::header;
    else if (c.milter_action == "hold") s.action = MilterAction::hold;
    else {
        if (why) *why = "milter_action: invalid value '" + c.milter_action + "' (expected prefetch, header or hold)";
        return std::nullopt;
    }
    auto exempt = DomainList::parse(c.milter_exempt_domains, &reason);
    if (!exempt) {
        if (why) *why = "milter_exempt_domains: " + reason;
        return std::nullopt;
    }
    s.exempt = std::move(*exempt);
    s.timeout = c.milter_timeout;
    return s;
}

}  // namespace stsguard
