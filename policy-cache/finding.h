// finding.h - one diagnostic about a record, a policy or a match.
//
// Every parser in the RFC 8461 model explains itself with a list of
// findings instead of a single error string, so operators see every
// problem at once (lint, check) and the service can log the first one.
// Codes are stable identifiers (documented in docs/rfc8461-conformance.md);
// messages are for humans and may change.
//
// Limits: none.  Failures: none (plain data).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace stsguard {

enum class Severity { error, warning, info };

const char* severity_name(Severity s);

struct Finding {
    Severity severity = Severity::error;
    std::string code;     // stable, kebab-case, e.g. "max-age-out-of-range"
    std::string message;  // human readable, names the offending value
    int line = 0;         // 1-based line of a policy body; 0 when n/a
};

using Findings = std::vector<Finding>;

bool has_errors(const Findings& f);
bool has_warnings(const Findings& f);

// Renders untrusted bytes (a TXT record, a policy line) for a message:
// printable ASCII as is, everything else as \t \r \n \\ or \xNN, cut to
// max_chars with "...".  Messages built with it are always ASCII, so they
// are safe on a terminal and in JSON whatever the input held.
inline std::string printable(std::string_view text, std::size_t max_chars = 64) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (out.size() >= max_chars) {
            out += "...";
            break;
        }
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '\\')
            out += "\\\\";
        else if (c == '\t')
            out += "\\t";
        else if (c == '\r')
            out += "\\r";
        else if (c == '\n')
            out += "\\n";
        else if (c >= 0x20 && c < 0x7f)
            out += static_cast<char>(c);
        else {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
        }
    }
    return out;
}

// Collects findings with a bound per code: hostile input (64 KiB of ";;;"
// or blank lines) gives at most `per_code` findings of each kind plus one
// "... N more" finding of the same code and severity, so output stays
// small and has_errors() on the result is still exact.
class FindingSink {
public:
    explicit FindingSink(Findings& out, std::size_t per_code = 20) : out_(out), cap_(per_code) {}
    FindingSink(const FindingSink&) = delete;
    FindingSink& operator=(const FindingSink&) = delete;
    ~FindingSink() { flush(); }

    void add(Severity sev, const std::string& code, std::string message, int line = 0) {
        Count& c = counts_[code];
        if (c.shown < cap_) {
            ++c.shown;
            out_.push_back({sev, code, std::move(message), line});
        } else {
            ++c.hidden;
            if (static_cast<int>(sev) < static_cast<int>(c.worst)) c.worst = sev;
        }
    }
    // Appends the "N more" findings; called by the destructor at the latest.
    void flush() {
        for (auto& [code, c] : counts_) {
            if (c.hidden == 0) continue;
            out_.push_back({c.worst, code,
                            std::to_string(c.hidden) + " more '" + code + "' findings not shown",
                            0});
            c.hidden = 0;
        }
    }

private:
    struct Count {
        std::size_t shown = 0, hidden = 0;
        Severity worst = Severity::info;
    };
    Findings& out_;
    std::size_t cap_;
    std::map<std::string, Count> counts_;
};

}  // namespace stsguard
