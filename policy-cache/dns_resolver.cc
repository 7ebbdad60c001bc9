// dns_resolver.cc - the ldns-backed DnsResolver (network part only).
//
// Each query: RD and AD set (RFC 6840 5.7: AD in a query asks the
// resolver to report validation without the RRSIG weight of DO), EDNS0
// with a 1232-octet UDP buffer (the DNS flag day 2020 value, avoids
// fragmentation), over UDP; a truncated reply is asked again over TCP.
// The answer is then interpreted by dns_answer.cc.
//
// ldns quirks handled here:
//  - ldns marks a server that failed once as unreachable for the life of
//    the resolver; a long-running service must not lose its servers after
//    one timeout, so every query starts with all servers reachable again.
//  - ldns_resolver_retry() is the number of attempts, not of retries.
//  - ldns does not compare the reply's ID with the query's; we do.
//  - ldns has one port for all servers: dns_servers entries with
//    different ports are refused at start-up ("dns-setup").
#include "policy-cache/dns_resolver.h"

#include <arpa/inet.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>

#include "policy-cache/dns_answer.h"
#include "policy-cache/ldns_handles.h"

namespace stsguard {
namespace {

constexpr std::uint16_t kEdnsUdpSize = 1232;

bool is_ipv4(const std::string& s) {
    in_addr a{};
    return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& s) {
    in6_addr a{};
    return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

std::string with_port(const std::string& address, std::uint16_t port) {
    if (port == 53) {
        return address;
    }
    const bool v6 = address.find(':') != std::string::npos;
    return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

class LdnsResolver final : public DnsResolver {
public:
    LdnsResolver(LdnsResolverPtr res, std::string servers, const DnsSettings& settings)
        : res_(std::move(res)), servers_(std::move(servers)), settings_(settings) {}

    Lookup<TxtAnswer> txt(const std::string& owner) override {
        return run(owner, LDNS_RR_TYPE_TXT, interpret_txt);
    }

    Lookup<MxAnswer> mx(const DomainName& domain) override {
        auto mx = run(domain.str(), LDNS_RR_TYPE_MX, interpret_mx);
        if (mx.not_found() && mx.not_found_info().reason == kNodata) {
            return implicit_mx(mx, domain.str(), addresses(domain.str()));
        }
        return mx;
    }

    Lookup<AddressAnswer> addresses(const std::string& host) override {
        auto v4 = run(host, LDNS_RR_TYPE_A, interpret_addresses);
        auto v6 = run(host, LDNS_RR_TYPE_AAAA, interpret_addresses);
        return merge_addresses(v4, v6);
    }

    Lookup<TlsaAnswer> tlsa(const std::string& owner) override {
        return run(owner, LDNS_RR_TYPE_TLSA, interpret_tlsa);
    }

private:
    // Sends one query; on success *answer owns the reply.
    ldns_status send(ldns_pkt* query, LdnsPktPtr* answer) {
        // Forget ldns's "unreachable" marks from earlier queries.
        for (std::size_t i = 0; i < ldns_resolver_nameserver_count(res_.get()); ++i) {
            ldns_resolver_set_nameserver_rtt(res_.get(), i, LDNS_RESOLV_RTT_MIN);
        }
        ldns_pkt* raw = nullptr;
        const ldns_status st = ldns_resolver_send_pkt(&raw, res_.get(), query);
        answer->reset(raw);
        return st;
    }

    std::string server_of(const ldns_pkt* answer) const {
        const ldns_rdf* from = ldns_pkt_answerfrom(answer);
        if (from == nullptr) {
            return servers_;
        }
        return with_port(ldns_take_string(ldns_rdf2str(from)), ldns_resolver_port(res_.get()));
    }

    static std::optional<Failure> check_id(const ldns_pkt* query, const ldns_pkt* answer,
                                           const DnsQueryInfo& q) {
        if (ldns_pkt_id(answer) == ldns_pkt_id(query)) {
            return std::nullopt;
        }
        return Failure::temp(
            "dns-error", "reply to " + describe_query(q) + " has the wrong ID (spoofed or stray)");
    }

    Failure send_failure(ldns_status st, const DnsQueryInfo& q) const {
        const std::string err = ldns_get_errorstr_by_id(st) ? ldns_get_errorstr_by_id(st) : "?";
        switch (st) {
            case LDNS_STATUS_NETWORK_ERR:
            case LDNS_STATUS_SOCKET_ERROR:
            case LDNS_STATUS_ERR:  // ldns's TCP connect failure
                return Failure::temp(
                    "dns-timeout", "no answer to " + describe_query(q) + " within " +
                                       std::to_string(settings_.timeout.count()) + "s x " +
                                       std::to_string(settings_.retries + 1) + " attempts (" + err +
                                       ")");
            case LDNS_STATUS_RES_NO_NS:
                return Failure::temp("dns-setup", "no usable DNS server for " + describe_query(q));
            default:
                return Failure::temp("dns-error", "bad reply to " + describe_query(q) + ": " + err);
        }
    }

    template <typename T>
    Lookup<T> run(const std::string& owner, ldns_rr_type type,
                  Lookup<T> (*interpret)(const ldns_pkt*, const DnsQueryInfo&)) {
        DnsQueryInfo q{owner, type, servers_};
        // A name ldns would accept but that is not a host/owner name (empty,
        // root, blanks) is a caller error, not a DNS answer.
        if (owner.empty() || owner == "." || owner.find_first_of(" \t\r\n") != std::string::npos) {
            return Failure::perm("dns-error", "invalid DNS name \"" + owner + "\"");
        }
        LdnsRdfPtr name(ldns_dname_new_frm_str(owner.c_str()));
        if (!name) {
            return Failure::perm("dns-error", "invalid DNS name \"" + owner + "\"");
        }
        ldns_pkt* raw_query = nullptr;
        ldns_status st = ldns_resolver_prepare_query_pkt(&raw_query, res_.get(), name.get(), type,
                                                         LDNS_RR_CLASS_IN, LDNS_RD | LDNS_AD);
        LdnsPktPtr query(raw_query);
        if (st != LDNS_STATUS_OK || !query) {
            return Failure::temp("dns-error", "cannot build query " + describe_query(q));
        }

        LdnsPktPtr answer;
        st = send(query.get(), &answer);
        if (st != LDNS_STATUS_OK || !answer) {
            return send_failure(st, q);
        }
        q.server = server_of(answer.get());
        if (auto f = check_id(query.get(), answer.get(), q)) {
            return *f;
        }
        if (ldns_pkt_tc(answer.get())) {
            // Truncated over UDP: the full answer only comes over TCP.
            ldns_resolver_set_usevc(res_.get(), true);
            st = send(query.get(), &answer);
            ldns_resolver_set_usevc(res_.get(), false);
            if (st != LDNS_STATUS_OK || !answer) {
                const char* err = ldns_get_errorstr_by_id(st);
                return Failure::temp("dns-truncated", "answer to " + describe_query(q) +
                                                          " truncated over UDP and TCP failed (" +
                                                          (err ? err : "?") + ")");
            }
            q.server = server_of(answer.get());
            if (auto f = check_id(query.get(), answer.get(), q)) {
                return *f;
            }
        }
        return interpret(answer.get(), q);
    }

    LdnsResolverPtr res_;
    std::string servers_;  // for reasons when no server answered
    DnsSettings settings_;
};

}  // namespace

std::optional<DnsServerAddress> parse_dns_server(std::string_view text, std::string* error) {
    auto fail = [&](const std::string& why) -> std::optional<DnsServerAddress> {
        if (error) {
            *error = "DNS server \"" + std::string(text) + "\": " + why;
        }
        return std::nullopt;
    };
    DnsServerAddress out;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) {
            return fail("missing ']'");
        }
        out.address = std::string(text.substr(1, close - 1));
        const auto rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':' || rest.size() == 1) {
                return fail("expected :PORT after ']'");
            }
            port_text = rest.substr(1);
        }
        if (!is_ipv6(out.address)) {
            return fail("not an IPv6 address");
        }
    } else if (std::count(text.begin(), text.end(), ':') == 1) {
        const auto colon = text.find(':');
        out.address = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
        if (port_text.empty()) {
            return fail("empty port");
        }
        if (!is_ipv4(out.address)) {
            return fail("not an IPv4 address");
        }
    } else {
        out.address = std::string(text);
        if (!is_ipv4(out.address) && !is_ipv6(out.address)) {
            return fail("not a numeric IPv4 or IPv6 address");
        }
    }
    if (!port_text.empty()) {
        unsigned value = 0;
        const auto [end, ec] =
            std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
        if (ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 ||
            value > 65535) {
            return fail("port must be 1-65535");
        }
        out.port = static_cast<std::uint16_t>(value);
    }
    return out;
}

std::unique_ptr<DnsResolver> make_ldns_resolver(const DnsSettings& settings, std::string* error) {
    auto fail = [&](const std::string& why) -> std::unique_ptr<DnsResolver> {
        if (error) {
            *error = why;
        }
        return nullptr;
    };
    if (settings.timeout.count() < 1 || settings.timeout.count() > 3600) {
        return fail("dns_timeout must be between 1s and 1h");
    }
    if (settings.retries < 0 || settings.retries > 10) {
        return fail("dns_retries must be 0-10");
    }

    LdnsResolverPtr res;
    std::string servers;
    if (settings.servers.empty()) {
        ldns_resolver* raw = nullptr;
        const ldns_status st = ldns_resolver_new_frm_file(&raw, nullptr);
        res.reset(raw);
        if (st != LDNS_STATUS_OK || !res) {
            const char* err = ldns_get_errorstr_by_id(st);
            return fail(std::string("cannot use /etc/resolv.conf: ") + (err ? err : "?"));
        }
        if (ldns_resolver_nameserver_count(res.get()) == 0) {
            return fail("no nameserver in /etc/resolv.conf");
        }
        for (std::size_t i = 0; i < ldns_resolver_nameserver_count(res.get()); ++i) {
            if (!servers.empty()) {
                servers += ",";
            }
            servers += ldns_take_string(ldns_rdf2str(ldns_resolver_nameservers(res.get())[i]));
        }
    } else {
        res.reset(ldns_resolver_new());
        if (!res) {
            return fail("cannot create ldns resolver (out of memory)");
        }
        std::optional<std::uint16_t> port;
        for (const auto& entry : settings.servers) {
            std::string why;
            auto server = parse_dns_server(entry, &why);
            if (!server) {
                return fail(why);
            }
            if (port && *port != server->port) {
                return fail("all dns_servers must use the same port (ldns limitation): \"" + entry +
                            "\"");
            }
            port = server->port;
            const bool v6 = server->address.find(':') != std::string::npos;
            LdnsRdfPtr rdf(ldns_rdf_new_frm_str(v6 ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A,
                                                server->address.c_str()));
            if (!rdf || ldns_resolver_push_nameserver(res.get(), rdf.get()) != LDNS_STATUS_OK) {
                return fail("DNS server \"" + entry + "\": not accepted by ldns");
            }
            if (!servers.empty()) {
                servers += ",";
            }
            servers += with_port(server->address, server->port);
        }
        ldns_resolver_set_port(res.get(), *port);
    }

    ldns_resolver* r = res.get();
    ldns_resolver_set_recursive(r, true);
    ldns_resolver_set_dnsrch(r, false);
    ldns_resolver_set_defnames(r, false);
    ldns_resolver_set_random(r, false);  // servers in configured order
    ldns_resolver_set_fail(r, false);    // a dead server: try the next one
    ldns_resolver_set_retrans(r, 0);
    ldns_resolver_set_retry(r, static_cast<std::uint8_t>(settings.retries + 1));
    ldns_resolver_set_timeout(r, timeval{static_cast<time_t>(settings.timeout.count()), 0});
    ldns_resolver_set_usevc(r, false);
    ldns_resolver_set_fallback(r, false);  // TCP retry on TC is done by run()
    ldns_resolver_set_igntc(r, false);
    ldns_resolver_set_edns_udp_size(r, kEdnsUdpSize);
    ldns_resolver_set_dnssec(r, false);
    ldns_resolver_set_ip6(r, LDNS_RESOLV_INETANY);
    return std::make_unique<LdnsResolver>(std::move(res), servers, settings);
}

}  // namespace stsguard
