#include "plugin/domain_list.h"

#include <string_view>

namespace stsguard {

std::optional<DomainList> DomainList::parse(const std::vector<std::string>& entries, std::string* why) {
    DomainList list;
    for (const auto& e : entries) {
        std::string_view text = e;
        const bool parent = !text.empty() && text.front() == '.';
        if (parent) text.remove_prefix(1);
        std::string reason;
        auto d = DomainName::parse(text, &reason);
        if (!d) {
            if (why) *why = "'" + e + "': " + reason;
            return std::nullopt;
        }
        (parent ? list.parents_ : list.exact_).insert(d->str());
    }
    return list;
}

bool DomainList::matches(const DomainName& domain) const {
    const std::string& name = domain.str();
    if (exact_.count(name) != 0) return true;
    if (parents_.empty()) return false;
    // Every proper parent: "a.b.example.com" -> "b.example.com", "example.com", "com".
    for (std::size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1)) {
        if (parents_.count(name.substr(dot + 1)) != 0) return true;
    }
    return false;
}

}  // namespace stsguard
