// mx_match.cc - RFC 8461 "mx" patterns: syntax (3.2) and matching (4.1).
//
// The pattern grammar is sts-policy-mx-value = ["*."] Domain, with Domain
// from RFC 5321 4.1.2 (LDH labels, no trailing dot, A-labels only).  Each
// problem class is reported once per pattern, so a pathological 64 KiB
// pattern yields a handful of findings, not thousands.
#include "policy-cache/mx_match.h"

#include <optional>
#include <set>

#include "policy-cache/domain_name.h"

namespace stsguard {
namespace {

constexpr std::size_t kMaxLabel = 63;
constexpr std::size_t kMaxName = 253;

bool is_alnum(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

class Sink {
public:
    explicit Sink(std::string_view pattern) : pattern_(pattern) {}
    void add(Severity sev, const std::string& code, const std::string& what) {
        if (!codes_.insert(code).second) return;  // once per problem class
        out_.push_back({sev, code, "mx pattern '" + printable(pattern_) + "': " + what, 0});
    }
    bool errors() const { return has_errors(out_); }
    Findings take() { return std::move(out_); }

private:
    std::string_view pattern_;
    std::set<std::string> codes_;
    Findings out_;
};

// RFC 5321 Domain: sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str].
void check_domain(std::string_view d, bool wildcard, Sink& sink) {
    if (d.empty()) {
        sink.add(Severity::error, "mx-pattern-empty", "no domain after '*.'");
        return;
    }
    if (d.back() == '.')
        sink.add(Severity::error, "mx-pattern-trailing-dot",
                 "ends with '.'; the 3.2 grammar (RFC 5321 Domain) has no root dot");
    if (d.size() > kMaxName)
        sink.add(Severity::error, "mx-pattern-too-long",
                 "domain is " + std::to_string(d.size()) + " octets, more than 253");
    std::size_t labels = 0;
    bool numeric_last = false;
    std::size_t start = 0;
    const std::size_t stop = d.back() == '.' ? d.size() - 1 : d.size();
    while (start <= stop) {
        std::size_t end = d.find('.', start);
        if (end == std::string_view::npos || end > stop) end = stop;
        const std::string_view label = d.substr(start, end - start);
        ++labels;
        if (label.empty()) {
            sink.add(Severity::error, "mx-pattern-empty-label",
                     "empty label at octet " + std::to_string(start + 1));
        } else {
            if (label.size() > kMaxLabel)
                sink.add(Severity::error, "mx-pattern-label-too-long",
                         "label '" + printable(label, 20) + "' is " + std::to_string(label.size()) +
                             " octets, more than 63");
            bool digits = true;
            for (std::size_t i = 0; i < label.size(); ++i) {
                const auto c = static_cast<unsigned char>(label[i]);
                if (c < '0' || c > '9') digits = false;
                if (c == '*')
                    sink.add(Severity::error, "mx-pattern-wildcard",
                             "'*' is only allowed as the whole left-most label, written '*.'");
                else if (!is_alnum(c) && c != '-')
                    sink.add(Severity::error, "mx-pattern-invalid-char",
                             "invalid character '" + printable(label.substr(i, 1)) +
                                 "' in label '" + printable(label, 32) +
                                 "' (letters, digits and '-' only)");
            }
            if (label.front() == '-' || label.back() == '-')
                sink.add(Severity::error, "mx-pattern-hyphen",
                         "label '" + printable(label, 32) + "' starts or ends with '-'");
            numeric_last = digits;
        }
        start = end + 1;
    }
    if (sink.errors()) return;  // the advice below is moot for an invalid pattern
    if (numeric_last)
        sink.add(Severity::warning, "mx-pattern-ip-address",
                 "looks like an IP address; MX targets are host names, so it can never match");
    else if (labels == 1 && wildcard)
        sink.add(Severity::warning, "mx-pattern-wildcard-tld",
                 "allows any host directly under a top-level domain");
    else if (labels == 1)
        sink.add(Severity::warning, "mx-pattern-single-label",
                 "has a single label; it matches only a host named like a top-level domain");
}

}  // namespace

Findings check_mx_pattern(std::string_view pattern) {
    Sink sink(pattern);
    if (pattern.empty()) {
        sink.add(Severity::error, "mx-pattern-empty", "empty pattern");
        return sink.take();
    }
    bool ascii = true;
    for (unsigned char c : pattern)
        if (c >= 0x80) ascii = false;
    if (!ascii) {
        // 3.2: IDN "mx" values MUST be A-labels; say which one was meant.
        std::string why;
        const auto as_domain =
            valid_utf8(pattern)
                ? DomainName::parse(pattern.substr(pattern.rfind("*.", 0) == 0 ? 2 : 0), &why)
                : std::nullopt;
        sink.add(Severity::error, "mx-pattern-ulabel",
                 as_domain ? "non-ASCII (U-label); 3.2 requires the A-label form '" +
                                 std::string(pattern.rfind("*.", 0) == 0 ? "*." : "") +
                                 as_domain->str() + "'"
                           : std::string("non-ASCII bytes; 3.2 requires A-labels (xn--...)"));
        return sink.take();
    }
    const bool wildcard = pattern.rfind("*.", 0) == 0;
    const std::string_view domain = wildcard ? pattern.substr(2) : pattern;
    if (!wildcard && pattern.front() == '*')
        sink.add(Severity::error, "mx-pattern-wildcard",
                 "'*' must be followed by '.': only '*.' + domain is a wildcard");
    check_domain(domain, wildcard, sink);
    return sink.take();
}

MxMatch match_mx(std::string_view pattern, std::string_view host) {
    MxMatch m;
    m.findings = check_mx_pattern(pattern);
    const bool pattern_ok = !has_errors(m.findings);
    std::string why;
    const auto h = DomainName::parse(host, &why);
    if (!h)
        m.findings.push_back({Severity::error, "mx-host-invalid",
                              "MX host '" + printable(host) + "' is not a valid host name: " + why,
                              0});
    if (!pattern_ok) {
        m.findings.push_back(
            {Severity::error, "mx-pattern-invalid", "an invalid pattern matches no host (4.1)", 0});
        return m;
    }
    if (!h) return m;

    const std::string p = lower(pattern);
    const std::string& name = h->str();
    const bool wildcard = p.rfind("*.", 0) == 0;
    if (!wildcard) {
        if (name == p)
            m.verdict = MxVerdict::match;
        else
            m.findings.push_back({Severity::error, "mx-nomatch",
                                  "'" + name + "' is not '" + p + "' (exact pattern)", 0});
        return m;
    }
    const std::string suffix = p.substr(2);
    const auto dot = name.find('.');
    if (dot != std::string::npos && name.compare(dot + 1, std::string::npos, suffix) == 0) {
        m.verdict = MxVerdict::match;
        return m;
    }
    std::string reason;
    if (name == suffix)
        reason = "'*.' needs exactly one label before '" + suffix + "'; the host has none";
    else if (name.size() > suffix.size() + 1 &&
             name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
             name[name.size() - suffix.size() - 1] == '.')
        reason = "'*.' covers exactly one label (4.1); '" + name + "' has more than one before '" +
                 suffix + "'";
    else
        reason = "'" + name + "' is not under '" + suffix + "'";
    m.findings.push_back({Severity::error, "mx-nomatch", reason, 0});
    return m;
}

namespace {

// 0 = unusable, 1 = usable, 2 = usable and already lower-case normal form.
int pattern_usability(std::string_view pattern) {
    const std::string_view domain = pattern.rfind("*.", 0) == 0 ? pattern.substr(2) : pattern;
    // Normal form rules out every error check_mx_pattern knows except '_',
    // which host names may hold but MX patterns may not.
    if (DomainName::is_normal_form(domain) && domain.find('_') == std::string_view::npos) return 2;
    return has_errors(check_mx_pattern(pattern)) ? 0 : 1;
}

}  // namespace

bool mx_pattern_usable(std::string_view pattern) { return pattern_usability(pattern) != 0; }

UsableMxPatterns::Pattern* UsableMxPatterns::room_for(std::size_t count) {
    if (count <= kInline) return inline_.data();
    more_.resize(count);
    return more_.data();
}

void UsableMxPatterns::add(Pattern* out, std::string_view pat) {
    const int u = pattern_usability(pat);
    if (u == 0) return;
    const bool wildcard = pat.size() > 2 && pat[0] == '*' && pat[1] == '.';
    out[n_++] = Pattern{wildcard ? pat.substr(2) : pat, wildcard, u == 2};
}

UsableMxPatterns usable_mx_patterns(const std::vector<std::string>& patterns) {
    return UsableMxPatterns(patterns);  // guaranteed elision: no copy of the views
}

namespace {

// A host in normal form matched byte for byte against the patterns in
// normal form, before the host's own syntax is checked: a name identical
// to a valid pattern's domain is valid itself, so an exact pattern needs
// no check of the host at all, and a wildcard one only when its suffix
// matches.  Nearly every cached MX host matches this way.
bool matches_in_normal_form(const UsableMxPatterns& usable, std::string_view host) {
    for (const auto& p : usable) {
        if (!p.lower) continue;
        if (!p.wildcard) {
            if (host == p.domain) return true;
            continue;
        }
        const std::size_t d = p.domain.size();
        if (host.size() > d + 1 && host[host.size() - d - 1] == '.' && host.ends_with(p.domain) &&
            host.find('.') == host.size() - d - 1 && DomainName::is_normal_form(host))
            return true;
    }
    return false;
}

}  // namespace

bool mx_allowed_checked(const UsableMxPatterns& usable, std::string_view host) {
    if (matches_in_normal_form(usable, host)) return true;
    // Cached MX hosts are stored in normal form: no copy for those.
    std::optional<DomainName> parsed;
    std::string_view name = host;
    if (!DomainName::is_normal_form(host)) {
        parsed = DomainName::parse(host);
        if (!parsed) return false;
        name = parsed->str();
    }
    // name is lower case now; so is a pattern in normal form, which then
    // compares byte for byte.
    const auto dot = name.find('.');
    for (const auto& p : usable) {
        std::string_view n = name;
        if (p.wildcard) {
            if (dot == std::string_view::npos) continue;
            n = name.substr(dot + 1);
        }
        if (p.lower ? n == p.domain : ascii_iequals(n, p.domain)) return true;
    }
    return false;
}

bool mx_allowed(const std::vector<std::string>& patterns, std::string_view host) {
    return mx_allowed_checked(usable_mx_patterns(patterns), host);
}

}  // namespace stsguard
