// ldns_handles.h - RAII owners for the ldns objects stsguard creates.
//
// Every ldns object we own goes into one of these right after creation,
// so no early return can leak it.  Objects merely borrowed from a packet
// (ldns_pkt_answer(), ldns_rr_rdf()) stay raw pointers: the packet owns
// them.  Failures: none.  Limits: none.
//
// Include ldns through this header only: without a prior <stdbool.h>,
// ldns/common.h defines the macros `bool`, `true` and `false`, which
// break later C++ standard headers.
#pragma once

// clang-format off
#include <stdbool.h>  // must precede ldns.h, see above
#include <ldns/ldns.h>
// clang-format on

#include <cstdlib>
#include <memory>
#include <string>

namespace stsguard {

struct LdnsResolverFree {
    void operator()(ldns_resolver* r) const { ldns_resolver_deep_free(r); }
};
struct LdnsPktFree {
    void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
struct LdnsRdfFree {
    void operator()(ldns_rdf* d) const { ldns_rdf_deep_free(d); }
};
struct LdnsRrFree {
    void operator()(ldns_rr* r) const { ldns_rr_free(r); }
};
struct LdnsRrListFree {
    void operator()(ldns_rr_list* l) const { ldns_rr_list_deep_free(l); }
};
struct LdnsCharFree {
    void operator()(char* s) const { std::free(s); }
};

using LdnsResolverPtr = std::unique_ptr<ldns_resolver, LdnsResolverFree>;
using LdnsPktPtr = std::unique_ptr<ldns_pkt, LdnsPktFree>;
using LdnsRdfPtr = std::unique_ptr<ldns_rdf, LdnsRdfFree>;
using LdnsRrPtr = std::unique_ptr<ldns_rr, LdnsRrFree>;
using LdnsRrListPtr = std::unique_ptr<ldns_rr_list, LdnsRrListFree>;

// Takes ownership of a malloc'ed string returned by ldns (ldns_rdf2str,
// ldns_rr_type2str ...) and copies it; nullptr gives `fallback`.
inline std::string ldns_take_string(char* s, const char* fallback = "?") {
    std::unique_ptr<char, LdnsCharFree> owner(s);
    return owner ? std::string(owner.get()) : std::string(fallback);
}

}  // namespace stsguard
