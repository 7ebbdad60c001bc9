// mx_match.h - MX host name against policy "mx" patterns (RFC 8461 4.1).
//
// A pattern is a host name or "*." followed by a host name; the wildcard
// covers exactly one left-most label ("*.example.com" matches
// "mx.example.com", not "a.b.example.com" nor "example.com").  Comparison
// is case-insensitive; a trailing root dot on the host is ignored.  An
// invalid pattern matches nothing.
//
// Pure: no I/O.  Limits: none.  Failures: through findings only.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "policy-cache/finding.h"
#include "policy-cache/name_views.h"

namespace stsguard {

enum class MxVerdict { match, nomatch };

struct MxMatch {
    MxVerdict verdict = MxVerdict::nomatch;
    Findings findings;  // why not, and warnings about the pattern or host
};

// Checks a pattern's syntax alone (3.2 "mx" value); empty findings = valid.
Findings check_mx_pattern(std::string_view pattern);

MxMatch match_mx(std::string_view pattern, std::string_view host);

// True if host matches any of the patterns (invalid ones are skipped).
bool mx_allowed(const std::vector<std::string>& patterns, std::string_view host);

// The same decision split in two, to check a policy's patterns once and
// then match several MX hosts without copying (the serve hot path):
// usable_mx_patterns() keeps the patterns that pass check_mx_pattern (views
// into `patterns`, which must outlive them); mx_allowed_checked() matches.
//
// Up to kInline usable patterns are held without allocating: nearly every
// policy has one to four, and this runs on every cache-hit lookup.
class UsableMxPatterns {
public:
    struct Pattern {
        std::string_view domain;  // the pattern without its "*."
        bool wildcard = false;
        bool lower = false;  // in normal form: compared byte for byte
    };

    // Names: std::vector<std::string> (a parsed policy) or NameViews (a
    // record decoded in place).
    template <class Names>
    explicit UsableMxPatterns(const Names& patterns) {
        Pattern* out = room_for(patterns.size());
        for (const std::string_view pat : patterns) add(out, pat);
    }
    UsableMxPatterns(const UsableMxPatterns&) = delete;
    UsableMxPatterns& operator=(const UsableMxPatterns&) = delete;

    const Pattern* begin() const { return more_.empty() ? inline_.data() : more_.data(); }
    const Pattern* end() const { return begin() + n_; }
    std::size_t size() const { return n_; }

private:
    Pattern* room_for(std::size_t count);
    void add(Pattern* out, std::string_view pattern);

    static constexpr std::size_t kInline = 8;
    std::array<Pattern, kInline> inline_{};
    std::vector<Pattern> more_;  // used instead of inline_ past kInline patterns
    std::size_t n_ = 0;
};
UsableMxPatterns usable_mx_patterns(const std::vector<std::string>& patterns);
// !has_errors(check_mx_pattern(pattern)), without building findings for
// the common case of a lower-case pattern in normal form (tested equal).
bool mx_pattern_usable(std::string_view pattern);
bool mx_allowed_checked(const UsableMxPatterns& usable, std::string_view host);

}  // namespace stsguard
