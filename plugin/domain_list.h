// domain_list.h - a list of domains the milter leaves alone
// (milter_exempt_domains).
//
// Entries follow Postfix's convention: "example.com" matches exactly that
// domain, ".example.com" matches every subdomain of it (not example.com
// itself; list both to cover both).  Entries are normalized like every
// other name (DomainName::parse: case, trailing dot, IDNA), so an entry
// written as a U-label matches the A-label the recipient parser produces.
//
// Failures: parse() refuses an invalid entry with a reason naming it (a
// start-up error: an exemption that silently matches nothing would hold
// mail the operator meant to let through).  Limits: none; lookups cost
// one set probe per label of the domain.
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "policy-cache/domain_name.h"

namespace stsguard {

class DomainList {
public:
    DomainList() = default;
    static std::optional<DomainList> parse(const std::vector<std::string>& entries,
                                           std::string* why = nullptr);

    bool matches(const DomainName& domain) const;
    std::size_t size() const { return exact_.size() + parents_.size(); }

private:
    std::set<std::string> exact_;    // "example.com"
    std::set<std::string> parents_;  // "example.com" from ".example.com"
};

}  // namespace stsguard
