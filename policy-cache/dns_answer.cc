// dns_answer.cc - meaning of a DNS response packet.  See dns_answer.h.
#include "policy-cache/dns_answer.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "policy-cache/ldns_handles.h"

namespace stsguard {
namespace {

// RRs of the asked type at the end of the CNAME chain (borrowed from the
// packet) and the metadata of the path to them.
struct Rrset {
    std::vector<const ldns_rr*> rrs;
    DnsMeta meta;
};

std::string rdf_text(const ldns_rdf* rdf) { return ldns_take_string(ldns_rdf2str(rdf)); }

std::string type_text(ldns_rr_type t) { return ldns_take_string(ldns_rr_type2str(t)); }

Failure malformed(const DnsQueryInfo& q, const std::string& what) {
    return Failure::temp("dns-error", "malformed answer to " + describe_query(q) + ": " + what);
}

bool same_name(const ldns_rdf* a, const ldns_rdf* b) { return ldns_dname_compare(a, b) == 0; }

// The checks every response gets before its answer section is read.
std::optional<Failure> check_header(const ldns_pkt* pkt, const DnsQueryInfo& q,
                                    const ldns_rdf* owner) {
    if (!ldns_pkt_qr(pkt)) {
        return malformed(q, "QR bit not set");
    }
    const ldns_rr_list* question = ldns_pkt_question(pkt);
    const std::size_t qcount = question ? ldns_rr_list_rr_count(question) : 0;
    if (qcount != 1) {
        return malformed(q, std::to_string(qcount) + " questions instead of 1");
    }
    const ldns_rr* q0 = ldns_rr_list_rr(question, 0);
    if (!same_name(ldns_rr_owner(q0), owner) || ldns_rr_get_type(q0) != q.type) {
        return malformed(q, "reply is for " + rdf_text(ldns_rr_owner(q0)) + " " +
                                type_text(ldns_rr_get_type(q0)));
    }
    return std::nullopt;
}

Lookup<Rrset> answer_rrset(const ldns_pkt* pkt, const DnsQueryInfo& q) {
    if (pkt == nullptr) {
        return Failure::temp("dns-error", "no reply to " + describe_query(q));
    }
    LdnsRdfPtr owner(ldns_dname_new_frm_str(q.owner.c_str()));
    if (!owner) {
        return Failure::perm("dns-error", "invalid DNS name \"" + q.owner + "\"");
    }
    if (auto f = check_header(pkt, q, owner.get())) {
        return *f;
    }
    if (ldns_pkt_tc(pkt)) {
        return Failure::temp("dns-truncated",
                             "answer to " + describe_query(q) + " truncated even over TCP");
    }
    switch (ldns_pkt_get_rcode(pkt)) {
        case LDNS_RCODE_NOERROR:
            break;
        case LDNS_RCODE_NXDOMAIN:
            return NotFound{kNxdomain};
        case LDNS_RCODE_SERVFAIL:
            return Failure::temp("dns-servfail", "SERVFAIL for " + describe_query(q));
        case LDNS_RCODE_REFUSED:
            return Failure::temp("dns-refused", "REFUSED for " + describe_query(q));
        default:
            return Failure::temp("dns-error",
                                 "rcode " +
                                     ldns_take_string(ldns_pkt_rcode2str(ldns_pkt_get_rcode(pkt))) +
                                     " for " + describe_query(q));
    }

    Rrset out;
    out.meta.authenticated = ldns_pkt_ad(pkt);
    std::uint32_t ttl = std::numeric_limits<std::uint32_t>::max();
    const ldns_rr_list* answer = ldns_pkt_answer(pkt);
    const std::size_t count = answer ? ldns_rr_list_rr_count(answer) : 0;
    const ldns_rdf* current = owner.get();
    for (int hop = 0; hop <= kMaxCnameChain; ++hop) {
        const ldns_rr* cname = nullptr;
        for (std::size_t i = 0; i < count; ++i) {
            const ldns_rr* rr = ldns_rr_list_rr(answer, i);
            if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) {
                continue;
            }
            if (!same_name(ldns_rr_owner(rr), current)) {
                continue;
            }
            if (ldns_rr_get_type(rr) == q.type) {
                out.rrs.push_back(rr);
                ttl = std::min(ttl, ldns_rr_ttl(rr));
            } else if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME && cname == nullptr) {
                cname = rr;
            }
        }
        if (!out.rrs.empty()) {
            out.meta.ttl = ttl;
            return out;
        }
        if (cname == nullptr) {
            return NotFound{kNodata};
        }
        const ldns_rdf* target = ldns_rr_rdf(cname, 0);
        if (target == nullptr || ldns_rdf_get_type(target) != LDNS_RDF_TYPE_DNAME) {
            return malformed(q, "CNAME without a target");
        }
        out.meta.cnames.push_back(normalize_dname_text(rdf_text(target)));
        ttl = std::min(ttl, ldns_rr_ttl(cname));
        current = target;
    }
    return malformed(q, "CNAME chain longer than " + std::to_string(kMaxCnameChain) + " (loop?)");
}

// Single octet of a TLSA rdf (usage, selector, matching type).
std::optional<std::uint8_t> octet(const ldns_rdf* rdf) {
    if (rdf == nullptr || ldns_rdf_size(rdf) != 1) {
        return std::nullopt;
    }
    return ldns_rdf_data(rdf)[0];
}

}  // namespace

std::string normalize_dname_text(std::string text) {
    for (char& c : text) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    if (!text.empty() && text.back() == '.') {
        text.pop_back();
    }
    return text;
}

std::string describe_query(const DnsQueryInfo& q) {
    std::string owner = q.owner;
    if (owner.size() > 1 && owner.back() == '.') {
        owner.pop_back();
    }
    return owner + " " + type_text(q.type) + " from " + q.server;
}

Lookup<TxtAnswer> interpret_txt(const ldns_pkt* pkt, const DnsQueryInfo& q) {
    auto set = answer_rrset(pkt, q);
    if (set.not_found()) {
        return set.not_found_info();
    }
    if (set.failed()) {
        return set.failure();
    }
    TxtAnswer out;
    out.meta = set.value().meta;
    for (const ldns_rr* rr : set.value().rrs) {
        std::string joined;
        for (std::size_t i = 0; i < ldns_rr_rd_count(rr); ++i) {
            const ldns_rdf* rdf = ldns_rr_rdf(rr, i);
            const std::size_t size = ldns_rdf_size(rdf);
            const std::uint8_t* data = ldns_rdf_data(rdf);
            // A character-string is a length octet and that many octets.
            if (ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_STR || size < 1 || data[0] != size - 1) {
                return malformed(q, "TXT character-string");
            }
            joined.append(reinterpret_cast<const char*>(data + 1), size - 1);
        }
        out.records.push_back(std::move(joined));
    }
    return out;
}

Lookup<MxAnswer> interpret_mx(const ldns_pkt* pkt, const DnsQueryInfo& q) {
    auto set = answer_rrset(pkt, q);
    if (set.not_found()) {
        return set.not_found_info();
    }
    if (set.failed()) {
        return set.failure();
    }
    MxAnswer out;
    out.meta = set.value().meta;
    std::size_t null_count = 0;
    for (const ldns_rr* rr : set.value().rrs) {
        const ldns_rdf* pref = ldns_rr_rdf(rr, 0);
        const ldns_rdf* exchange = ldns_rr_rdf(rr, 1);
        if (ldns_rr_rd_count(rr) != 2 || ldns_rdf_get_type(pref) != LDNS_RDF_TYPE_INT16 ||
            ldns_rdf_get_type(exchange) != LDNS_RDF_TYPE_DNAME) {
            return malformed(q, "MX rdata");
        }
        MxHost host{ldns_rdf2native_int16(pref), normalize_dname_text(rdf_text(exchange))};
        if (host.host.empty()) {
            ++null_count;  // "." - RFC 7505
            continue;
        }
        out.hosts.push_back(std::move(host));
    }
    // RFC 7505 3: a null MX must be the only MX; "." beside real hosts is
    // a publishing error and those hosts are still usable.
    if (out.hosts.empty() && null_count > 0) {
        return NotFound{kNullMx};
    }
    std::sort(out.hosts.begin(), out.hosts.end(), [](const MxHost& a, const MxHost& b) {
        return a.preference != b.preference ? a.preference < b.preference : a.host < b.host;
    });
    out.hosts.erase(std::unique(out.hosts.begin(), out.hosts.end(),
                                [](const MxHost& a, const MxHost& b) {
                                    return a.preference == b.preference && a.host == b.host;
                                }),
                    out.hosts.end());
    return out;
}

Lookup<AddressAnswer> interpret_addresses(const ldns_pkt* pkt, const DnsQueryInfo& q) {
    auto set = answer_rrset(pkt, q);
    if (set.not_found()) {
        return set.not_found_info();
    }
    if (set.failed()) {
        return set.failure();
    }
    AddressAnswer out;
    out.meta = set.value().meta;
    const bool v6 = q.type == LDNS_RR_TYPE_AAAA;
    const std::size_t want = v6 ? 16 : 4;
    for (const ldns_rr* rr : set.value().rrs) {
        const ldns_rdf* rdf = ldns_rr_rdf(rr, 0);
        if (rdf == nullptr || ldns_rdf_size(rdf) != want) {
            return malformed(q, "address rdata");
        }
        char text[INET6_ADDRSTRLEN] = {};
        if (inet_ntop(v6 ? AF_INET6 : AF_INET, ldns_rdf_data(rdf), text, sizeof text) == nullptr) {
            return malformed(q, "address rdata");
        }
        out.addresses.emplace_back(text);
    }
    return out;
}

Lookup<TlsaAnswer> interpret_tlsa(const ldns_pkt* pkt, const DnsQueryInfo& q) {
    auto set = answer_rrset(pkt, q);
    if (set.not_found()) {
        return set.not_found_info();
    }
    if (set.failed()) {
        return set.failure();
    }
    TlsaAnswer out;
    out.meta = set.value().meta;
    static constexpr char kHex[] = "0123456789abcdef";
    for (const ldns_rr* rr : set.value().rrs) {
        if (ldns_rr_rd_count(rr) != 4) {
            return malformed(q, "TLSA rdata");
        }
        auto usage = octet(ldns_rr_rdf(rr, 0));
        auto selector = octet(ldns_rr_rdf(rr, 1));
        auto matching = octet(ldns_rr_rdf(rr, 2));
        const ldns_rdf* data = ldns_rr_rdf(rr, 3);
        if (!usage || !selector || !matching || data == nullptr) {
            return malformed(q, "TLSA rdata");
        }
        TlsaRecord rec{*usage, *selector, *matching, {}};
        const std::uint8_t* bytes = ldns_rdf_data(data);
        for (std::size_t i = 0; i < ldns_rdf_size(data); ++i) {
            rec.data_hex.push_back(kHex[bytes[i] >> 4]);
            rec.data_hex.push_back(kHex[bytes[i] & 0x0f]);
        }
        out.records.push_back(std::move(rec));
    }
    return out;
}

Lookup<AddressAnswer> merge_addresses(const Lookup<AddressAnswer>& v4,
                                      const Lookup<AddressAnswer>& v6) {
    if (v4.found() || v6.found()) {
        AddressAnswer out;
        out.meta.authenticated = true;
        out.meta.ttl = std::numeric_limits<std::uint32_t>::max();
        for (const auto* part : {&v4, &v6}) {
            if (!part->found()) {
                continue;
            }
            const AddressAnswer& a = part->value();
            out.addresses.insert(out.addresses.end(), a.addresses.begin(), a.addresses.end());
            out.meta.authenticated = out.meta.authenticated && a.meta.authenticated;
            out.meta.ttl = std::min(out.meta.ttl, a.meta.ttl);
            if (out.meta.cnames.empty()) {
                out.meta.cnames = a.meta.cnames;
            }
        }
        return out;
    }
    if (v4.failed()) {
        return v4.failure();
    }
    if (v6.failed()) {
        return v6.failure();
    }
    if (v6.not_found_info().reason == kNxdomain) {
        return v6.not_found_info();
    }
    return v4.not_found_info();
}

Lookup<MxAnswer> implicit_mx(const Lookup<MxAnswer>& mx, const std::string& domain,
                             const Lookup<AddressAnswer>& addresses) {
    if (!mx.not_found() || mx.not_found_info().reason != kNodata) {
        return mx;
    }
    if (addresses.failed()) {
        return addresses.failure();
    }
    if (addresses.not_found()) {
        return NotFound{kNodata};
    }
    MxAnswer out;
    out.hosts.push_back(MxHost{0, normalize_dname_text(domain)});
    out.implicit = true;
    out.meta = addresses.value().meta;
    return out;
}

}  // namespace stsguard
