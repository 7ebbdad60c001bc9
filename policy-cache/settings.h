// settings.h - derive each adapter's settings from the one Config.
//
// The adapters take small settings structs rather than the whole Config
// so they stay testable on their own; these functions are the only place
// that maps config keys onto them.  Failures: none.  Limits: none.
#pragma once

#include "policy-cache/config.h"
#include "policy-cache/dns_resolver.h"
#include "policy-cache/https_fetcher.h"

namespace stsguard {

DnsSettings dns_settings(const Config& c);
FetchSettings fetch_settings(const Config& c);

}  // namespace stsguard
