// milter_settings.h - the milter's settings, taken from the one Config
// (keys milter_listen, milter_wait, milter_action, milter_exempt_domains,
// milter_timeout; see docs/milter.md) and checked before libmilter sees
// them, so a typo is a clear start-up error rather than a milter that
// listens somewhere unexpected.
//
// milter_listen uses libmilter's socket syntax (smfi_setconn(3)):
//   inet:PORT@HOST   inet6:PORT@HOST   unix:/abs/path   local:/abs/path
// HOST is required: libmilter's "inet:PORT" alone listens on every
// address, which would expose the milter protocol (which has no
// authentication) to the network.
//
// Pure: no I/O.  Failures: nullopt plus a reason naming the key.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "plugin/domain_list.h"
#include "policy-cache/clock.h"
#include "policy-cache/config.h"

namespace stsguard {

enum class MilterAction {
    prefetch,  // warm the cache; never changes mail
    header,    // also add X-STS-Policy headers at end of message
    hold,      // also tempfail recipients of unsatisfiable enforce domains
};
const char* milter_action_name(MilterAction a);  // "prefetch" | "header" | "hold"

struct MilterSettings {
    std::string listen = "inet:8462@127.0.0.1";
    std::chrono::milliseconds wait{0};  // per message, over all its recipients
    MilterAction action = MilterAction::prefetch;
    DomainList exempt;
    Seconds timeout{30};
};

std::optional<MilterSettings> milter_settings(const Config& c, std::string* why);

// Checks a libmilter connection spec as described above.
bool check_milter_socket(std::string_view spec, std::string* why);

}  // namespace stsguard
