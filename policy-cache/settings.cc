#include "policy-cache/settings.h"

namespace stsguard {

DnsSettings dns_settings(const Config& c) {
    DnsSettings s;
    s.servers = c.dns_servers;
    s.timeout = c.dns_timeout;
    s.retries = c.dns_retries;
    return s;
}

FetchSettings fetch_settings(const Config& c) {
    FetchSettings s;
    s.ca_file = c.tls_ca_file;
    s.ca_dir = c.tls_ca_dir;
    s.connect_timeout = c.policy_fetch_connect_timeout;
    s.total_timeout = c.policy_fetch_timeout;
    s.max_bytes = static_cast<std::size_t>(c.policy_max_bytes);
    s.private_addresses =
        c.policy_fetch_allow_private ? PrivateAddresses::allow : PrivateAddresses::refuse;
    s.proxy = c.policy_fetch_proxy;
    return s;
}

}  // namespace stsguard
