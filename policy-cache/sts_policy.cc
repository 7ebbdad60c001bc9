// sts_policy.cc - the MTA-STS policy body (RFC 8461 3.2).
//
// Lines are split on LF; a CR directly before the LF belongs to the line
// ending (CRLF), any other CR is a "bare CR" error.  Each field is checked
// on its own and the whole body once more for required fields, so every
// problem is listed.  One pass over the bytes plus hash look-ups: linear
// in the body size, bounded output (FindingSink).
#include "policy-cache/sts_policy.h"

#include <unordered_map>
#include <unordered_set>

#include "policy-cache/domain_name.h"
#include "policy-cache/mx_match.h"

namespace stsguard {
namespace {

constexpr std::int64_t kDay = 86'400;
constexpr std::int64_t kWeek = 7 * kDay;
constexpr std::size_t kMaxKey = 32;  // sts-policy-ext-name: 1 + *31
constexpr std::string_view kBom = "\xEF\xBB\xBF";

bool is_wsp(char c) { return c == ' ' || c == '\t'; }
bool is_alnum(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}
std::string q(std::string_view s) { return "'" + printable(s) + "'"; }

class Parser {
public:
    explicit Parser(PolicyParse& out) : out_(out), sink_(out.findings) {}

    void line(std::string_view content, int no) {
        const auto cr = content.find('\r');
        if (cr != std::string_view::npos) {
            sink_.add(Severity::error, "policy-bare-cr",
                      "carriage return at column " + std::to_string(cr + 1) +
                          " is not followed by a line feed; only LF and CRLF end a line "
                          "(3.2 sts-policy-term), the rest of the line is read as a new field",
                      no);
            std::size_t start = 0;
            while (start <= content.size()) {
                std::size_t end = content.find('\r', start);
                if (end == std::string_view::npos) end = content.size();
                if (end > start) field(content.substr(start, end - start), no);
                start = end + 1;
            }
            return;
        }
        std::size_t lead = 0;
        while (lead < content.size() && is_wsp(content[lead])) ++lead;
        if (lead == content.size()) {
            sink_.add(Severity::error, "policy-blank-line",
                      content.empty()
                          ? "empty line; the 3.2 grammar allows no blank lines, not even at the end"
                          : "line holds only whitespace; the 3.2 grammar allows no blank lines",
                      no);
            return;
        }
        field(content, no);
    }

    void finish(std::size_t lf_lines, std::size_t crlf_lines) {
        if (!version_line_)
            sink_.add(Severity::error, "missing-version",
                      "no 'version' field; 3.2 requires 'version: STSv1'");
        if (!mode_line_)
            sink_.add(Severity::error, "missing-mode",
                      "no 'mode' field; 3.2 requires one of enforce, testing, none");
        if (!max_age_line_)
            sink_.add(Severity::error, "missing-max-age", "no 'max_age' field; 3.2 requires one");
        if (mode_ && *mode_ != Mode::none && out_.mx.empty())
            sink_.add(
                Severity::error, "missing-mx",
                std::string("mode ") + mode_name(*mode_) +
                    " needs at least one 'mx' field (3.2: required except when mode is none)");
        if (mode_ == Mode::testing)
            sink_.add(
                Severity::info, "mode-testing",
                "mode testing: senders deliver even when MX or TLS validation fails, and only "
                "report it (RFC 8460)",
                mode_line_);
        if (mode_ == Mode::none)
            sink_.add(Severity::info, "mode-none",
                      "mode none: senders treat the domain as having no MTA-STS policy",
                      mode_line_);
        if (lf_lines && crlf_lines)
            sink_.add(Severity::info, "policy-mixed-line-endings",
                      std::to_string(crlf_lines) + " lines end in CRLF and " +
                          std::to_string(lf_lines) +
                          " in LF; both are allowed (3.2, erratum 6253)");
        for (const auto& [name, no] : exact_mx_) {
            const auto dot = name.find('.');
            if (dot != std::string::npos && wildcard_mx_.count(name.substr(dot + 1)))
                sink_.add(
                    Severity::info, "mx-pattern-redundant",
                    "mx " + q(name) + " is already covered by '*." + name.substr(dot + 1) + "'",
                    no);
        }
        sink_.flush();
        out_.verdict = has_errors(out_.findings) ? PolicyVerdict::invalid : PolicyVerdict::valid;
        if (out_.verdict == PolicyVerdict::valid) {
            Policy p;
            p.version = "STSv1";
            p.mode = *mode_;
            p.max_age = Seconds{*out_.max_age};
            p.mx = out_.mx;
            p.extensions = extensions_;
            out_.policy = std::move(p);
        }
    }

private:
    void field(std::string_view f, int no) {
        std::size_t lead = 0;
        while (lead < f.size() && is_wsp(f[lead])) ++lead;
        if (lead) {
            sink_.add(Severity::error, "policy-leading-whitespace",
                      "line starts with whitespace; a 3.2 field begins at the start of the line",
                      no);
            f.remove_prefix(lead);
            if (f.empty()) return;
        }
        const auto colon = f.find(':');
        if (colon == std::string_view::npos) {
            sink_.add(Severity::error, "policy-field-syntax",
                      q(f) + " is not a 'key: value' field (no ':')", no);
            return;
        }
        std::string_view key = f.substr(0, colon);
        if (!key.empty() && is_wsp(key.back())) {
            while (!key.empty() && is_wsp(key.back())) key.remove_suffix(1);
            sink_.add(Severity::error, "policy-space-before-colon",
                      "whitespace between key " + q(key) + " and ':'", no);
        }
        if (!key_ok(key, no)) return;
        std::string_view value = f.substr(colon + 1);
        while (!value.empty() && is_wsp(value.front())) value.remove_prefix(1);
        while (!value.empty() && is_wsp(value.back())) value.remove_suffix(1);
        ++fields_;
        if (key == "version")
            version(value, no);
        else if (key == "mode")
            mode(value, no);
        else if (key == "max_age")
            max_age(value, no);
        else if (key == "mx")
            mx(value, no);
        else
            extension(key, value, no);
    }

    bool key_ok(std::string_view key, int no) {
        std::string why;
        if (key.empty())
            why = "no key before ':'";
        else if (!is_alnum(static_cast<unsigned char>(key[0])))
            why = "key " + q(key) + " must start with a letter or digit";
        else if (key.size() > kMaxKey)
            why = "key " + q(key) + " is " + std::to_string(key.size()) + " characters; at most 32";
        else
            for (std::size_t i = 0; i < key.size() && why.empty(); ++i) {
                const auto c = static_cast<unsigned char>(key[i]);
                if (!is_alnum(c) && c != '_' && c != '-' && c != '.')
                    why = "key " + q(key) + " has " + q(key.substr(i, 1)) +
                          " (letters, digits, '_', '-', '.' only)";
            }
        if (why.empty()) return true;
        sink_.add(Severity::error, "policy-key-syntax", why, no);
        return false;
    }

    // 3.2 says later copies of a non-repeated field are ignored; stsguard
    // rejects them, since two different modes or ages mean a broken file.
    bool duplicate(const char* key, int first, int no) {
        if (!first) return false;
        sink_.add(Severity::error, "policy-duplicate-field",
                  std::string("second '") + key + "' field (first on line " +
                      std::to_string(first) +
                      "); stsguard rejects repeated fields (stricter than 3.2, which ignores them)",
                  no);
        return true;
    }

    void version(std::string_view v, int no) {
        if (duplicate("version", version_line_, no)) return;
        version_line_ = no;
        if (fields_ > 1)
            sink_.add(
                Severity::warning, "version-not-first",
                "'version' is not the first field; 3.2 does not require it, but every example "
                "has it first and some parsers expect it",
                no);
        if (v == "STSv1") return;
        if (v.empty())
            sink_.add(Severity::error, "version-invalid", "empty version; must be 'STSv1'", no);
        else if (lower(v) == "stsv1")
            sink_.add(Severity::error, "version-invalid",
                      "version " + q(v) + " is not 'STSv1': the value is case-sensitive", no);
        else
            sink_.add(Severity::error, "version-invalid",
                      "unsupported version " + q(v) + "; only 'STSv1' is defined", no);
    }

    void mode(std::string_view v, int no) {
        if (duplicate("mode", mode_line_, no)) return;
        mode_line_ = no;
        out_.mode_text = std::string(v);
        mode_ = parse_mode(v);
        if (mode_) return;
        const auto m = parse_mode(lower(v));
        sink_.add(
            Severity::error, "mode-invalid",
            v.empty() ? std::string("empty mode; must be enforce, testing or none")
            : m ? "mode " + q(v) + " is not '" + mode_name(*m) + "': the value is case-sensitive"
                : "mode " + q(v) + " is not one of enforce, testing, none",
            no);
    }

    void max_age(std::string_view v, int no) {
        if (duplicate("max_age", max_age_line_, no)) return;
        max_age_line_ = no;
        std::size_t digits = 0;
        while (digits < v.size() && is_digit(v[digits])) ++digits;
        if (v.empty() || digits != v.size()) {
            const bool negative = v.size() > 1 && v[0] == '-' && is_digit(v[1]);
            sink_.add(Severity::error, "max-age-syntax",
                      v.empty() ? std::string("empty max_age")
                      : negative
                          ? "max_age " + q(v) + " is negative; it is a number of seconds, 0 or more"
                          : "max_age " + q(v) + " is not a number of seconds (digits only)",
                      no);
            return;
        }
        if (digits > 10) {
            sink_.add(Severity::error, "max-age-syntax",
                      "max_age " + q(v) + " has " + std::to_string(digits) +
                          " digits; 3.2 allows at most 10 (1*10DIGIT)",
                      no);
            return;
        }
        std::int64_t n = 0;
        for (char c : v) n = n * 10 + (c - '0');  // at most 10 digits: fits
        out_.max_age = n;
        if (v.size() > 1 && v[0] == '0')
            sink_.add(Severity::warning, "max-age-leading-zeros",
                      "max_age " + q(v) + " has leading zeros; read as " + std::to_string(n) +
                          (v.size() > 8 ? " (erratum 7282 proposes at most 8 digits)" : ""),
                      no);
        if (n > kMaxAgeLimit)
            sink_.add(Severity::error, "max-age-out-of-range",
                      "max_age " + std::to_string(n) + " is above the maximum " +
                          std::to_string(kMaxAgeLimit) + " (about a year, 3.2)",
                      no);
        else if (n == 0)
            sink_.add(
                Severity::warning, "max-age-zero",
                "max_age 0: senders may not cache the policy at all, which gives no protection "
                "against a downgrade at the next fetch",
                no);
        else if (n < kDay)
            sink_.add(Severity::warning, "max-age-short",
                      "max_age " + std::to_string(n) + " is under a day; 3.2 expects weeks or more",
                      no);
        else if (n < kWeek)
            sink_.add(
                Severity::info, "max-age-under-week",
                "max_age " + std::to_string(n) + " is under a week; 3.2 expects weeks or more", no);
    }

    void mx(std::string_view v, int no) {
        out_.mx.emplace_back(v);
        Findings f = check_mx_pattern(v);
        const bool ok = !has_errors(f);
        for (auto& x : f) sink_.add(x.severity, x.code, std::move(x.message), no);
        if (!ok) return;
        std::string norm = lower(v);
        const auto [it, fresh] = mx_lines_.emplace(norm, no);
        if (!fresh) {
            sink_.add(Severity::warning, "mx-pattern-duplicate",
                      "mx " + q(v) + " repeats line " + std::to_string(it->second), no);
            return;
        }
        if (norm.rfind("*.", 0) == 0)
            wildcard_mx_.insert(norm.substr(2));
        else
            exact_mx_.emplace_back(std::move(norm), no);
    }

    void extension(std::string_view key, std::string_view v, int no) {
        static constexpr std::string_view kKnown[] = {"version", "mode", "max_age", "mx"};
        const std::string lk = lower(key);
        for (std::string_view k : kKnown)
            if (lk == k || (k == "max_age" && (lk == "max-age" || lk == "maxage")))
                sink_.add(Severity::warning, "policy-key-case",
                          "key " + q(key) + " is not '" + std::string(k) +
                              "': keys are exact and case-sensitive (3.2), so it is an unknown "
                              "extension",
                          no);
        if (v.empty()) {
            sink_.add(Severity::error, "extension-value-syntax",
                      "extension " + q(key) + " has an empty value", no);
            return;
        }
        // sts-policy-ext-value: visible ASCII or UTF-8, inner spaces only.
        for (std::size_t i = 0; i < v.size(); ++i) {
            const auto c = static_cast<unsigned char>(v[i]);
            if (c < 0x20 || c == 0x7f || c == '\t') {
                sink_.add(Severity::error, "extension-value-syntax",
                          "extension " + q(key) + " has control character " + q(v.substr(i, 1)) +
                              " in its value",
                          no);
                return;
            }
        }
        if (!valid_utf8(v)) {
            sink_.add(Severity::error, "extension-value-utf8",
                      "extension " + q(key) + " value " + q(v) + " is not valid UTF-8", no);
            return;
        }
        if (!ext_lines_.emplace(std::string(key), no).second) {
            sink_.add(Severity::warning, "extension-duplicate",
                      "extension " + q(key) + " repeats line " +
                          std::to_string(ext_lines_[std::string(key)]) +
                          "; the first value is kept",
                      no);
            return;
        }
        extensions_.emplace_back(std::string(key), std::string(v));
        sink_.add(
            Severity::info, "extension-unknown",
            "unknown field " + q(key) + " is kept as an extension and ignored by senders (3.2)",
            no);
    }

    PolicyParse& out_;
    FindingSink sink_;
    int fields_ = 0;
    int version_line_ = 0, mode_line_ = 0, max_age_line_ = 0;
    std::optional<Mode> mode_;
    std::unordered_map<std::string, int> mx_lines_;
    std::unordered_set<std::string> wildcard_mx_;
    std::vector<std::pair<std::string, int>> exact_mx_;
    std::unordered_map<std::string, int> ext_lines_;
    std::vector<std::pair<std::string, std::string>> extensions_;
};

}  // namespace

const char* mode_name(Mode m) {
    switch (m) {
        case Mode::enforce:
            return "enforce";
        case Mode::testing:
            return "testing";
        case Mode::none:
            return "none";
    }
    return "none";
}

std::optional<Mode> parse_mode(std::string_view text) {
    if (text == "enforce") return Mode::enforce;
    if (text == "testing") return Mode::testing;
    if (text == "none") return Mode::none;
    return std::nullopt;
}

PolicyParse parse_sts_policy(std::string_view body) {
    PolicyParse out;
    if (body.size() > kMaxPolicyBytes) {
        out.findings.push_back({Severity::error, "policy-too-large",
                                "policy is " + std::to_string(body.size()) +
                                    " bytes; the limit is " + std::to_string(kMaxPolicyBytes) +
                                    " (64 KiB, the size 3.3 suggests senders accept)",
                                0});
        return out;
    }
    if (body.empty()) {
        out.findings.push_back({Severity::error, "policy-empty", "the policy is empty", 0});
        return out;
    }
    std::size_t pos = 0;
    if (body.substr(0, kBom.size()) == kBom) {
        out.findings.push_back({Severity::error, "policy-utf8-bom",
                                "the body starts with a UTF-8 byte order mark (EF BB BF); 3.2 has "
                                "no room for it and many senders will not find the first key",
                                1});
        pos = kBom.size();
    }
    Parser p(out);
    std::size_t lf_lines = 0, crlf_lines = 0;
    int no = 1;
    while (pos < body.size()) {
        const std::size_t nl = body.find('\n', pos);
        const std::size_t end = nl == std::string_view::npos ? body.size() : nl;
        std::string_view content = body.substr(pos, end - pos);
        if (nl != std::string_view::npos) {
            if (!content.empty() && content.back() == '\r') {
                content.remove_suffix(1);
                ++crlf_lines;
            } else {
                ++lf_lines;
            }
        }
        p.line(content, no);
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
        ++no;
    }
    p.finish(lf_lines, crlf_lines);
    return out;
}

}  // namespace stsguard
