// tlsrpt_record.cc - RFC 8460 3 record parser: a scanner that names the
// column of every problem and keeps going, like sts_txt.cc.
#include "checker/tlsrpt_record.h"

#include <string_view>

namespace stsguard {
namespace {

constexpr std::string_view kVersion = "v=TLSRPTv1";

bool is_wsp(char c) { return c == ' ' || c == '\t'; }
bool is_alnum(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
// tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
bool is_ext_value_char(unsigned char c) { return c >= 0x21 && c <= 0x7e && c != ';' && c != '='; }
std::string col(std::size_t pos) { return "column " + std::to_string(pos + 1); }
std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}
std::string_view trim(std::string_view s) {
    while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
    return s;
}

// "v=TLSRPTv1" followed by the end, ';' or white space (the version token ends).
bool begins_with_version(std::string_view r) {
    if (r.substr(0, kVersion.size()) != kVersion) return false;
    return r.size() == kVersion.size() || r[kVersion.size()] == ';' || is_wsp(r[kVersion.size()]);
}

// One rua URI; true if a sender can use it (mailto: or https:).
bool check_uri(std::string_view uri, FindingSink& sink) {
    const std::string shown = "'" + printable(uri, 80) + "'";
    if (uri.empty()) {
        sink.add(Severity::error, "tlsrpt-uri-invalid", "empty URI in rua=");
        return false;
    }
    for (unsigned char c : uri) {
        if (c < 0x21 || c > 0x7e) {
            sink.add(Severity::error, "tlsrpt-uri-invalid",
                     "URI " + shown + " contains a space or a non-ASCII byte; percent-encode it (RFC 3986)");
            return false;
        }
        if (c == '!') {
            sink.add(Severity::error, "tlsrpt-uri-invalid",
                     "URI " + shown + " contains '!'; RFC 8460 3 requires it percent-encoded (%21)");
            return false;
        }
    }
    const std::size_t colon = uri.find(':');
    if (colon == std::string_view::npos || colon == 0) {
        sink.add(Severity::error, "tlsrpt-uri-invalid",
                 "URI " + shown + " has no scheme; use mailto:ADDRESS or https://HOST/PATH");
        return false;
    }
    const std::string scheme = lower(uri.substr(0, colon));
    const std::string_view rest = uri.substr(colon + 1);
    if (scheme == "mailto") {
        const std::size_t at = rest.find('@');
        if (at == std::string_view::npos || at == 0 || at + 1 >= rest.size()) {
            sink.add(Severity::error, "tlsrpt-uri-invalid",
                     "mailto URI " + shown + " needs an address local-part@domain");
            return false;
        }
        return true;
    }
    if (scheme == "https") {
        if (rest.substr(0, 2) != "//" || rest.size() == 2 || rest[2] == '/' || rest[2] == '?') {
            sink.add(Severity::error, "tlsrpt-uri-invalid", "https URI " + shown + " has no host");
            return false;
        }
        return true;
    }
    sink.add(Severity::warning, "tlsrpt-uri-scheme",
             "URI " + shown + " has scheme '" + printable(scheme, 20) +
                 "'; RFC 8460 3 defines only mailto: and https:, senders ignore it");
    return false;
}

void check_ext_name(std::string_view name, std::size_t at, FindingSink& sink) {
    bool ok = !name.empty() && name.size() <= 32 && is_alnum(static_cast<unsigned char>(name[0]));
    for (unsigned char c : name)
        if (!is_alnum(c) && c != '_' && c != '-' && c != '.') ok = false;
    if (!ok)
        sink.add(Severity::error, "tlsrpt-field-name",
                 "field name '" + printable(name, 40) + "' at " + col(at) +
                     " is invalid: 1 to 32 letters, digits, '_', '-' or '.', starting with a letter or digit");
}

void parse_one(std::string_view r, TlsrptRecord& out, FindingSink& sink) {
    const std::size_t n = r.size();
    std::size_t pos = kVersion.size();
    bool rua_seen = false;
    bool rua_case_hint = false;
    std::size_t usable = 0;
    while (true) {
        while (pos < n && is_wsp(r[pos])) ++pos;
        if (pos == n) break;
        if (r[pos] != ';') {
            sink.add(Severity::error, "tlsrpt-syntax",
                     "expected ';' at " + col(pos) + ", found '" + printable(r.substr(pos, 1)) + "'");
            pos = r.find(';', pos);
            if (pos == std::string_view::npos) break;
        }
        ++pos;  // ';'
        while (pos < n && is_wsp(r[pos])) ++pos;
        if (pos == n) break;  // [field-delim] at the end

        const std::size_t name_at = pos;
        while (pos < n && r[pos] != '=' && r[pos] != ';' && !is_wsp(r[pos])) ++pos;
        const std::string_view name = r.substr(name_at, pos - name_at);
        if (pos == n || r[pos] != '=') {
            sink.add(Severity::error, "tlsrpt-syntax",
                     "field '" + printable(name, 40) + "' at " + col(name_at) + " has no '=' (expected name=value)");
            continue;  // pos is at ';', white space or the end
        }
        ++pos;  // '='
        const std::size_t value_at = pos;
        std::size_t end = r.find(';', pos);
        if (end == std::string_view::npos) end = n;
        std::string_view value = r.substr(value_at, end - value_at);
        while (!value.empty() && is_wsp(value.back())) value.remove_suffix(1);  // part of field-delim
        pos = value_at + value.size();

        if (name == "rua") {
            if (rua_seen) {
                sink.add(Severity::error, "tlsrpt-rua-duplicate", "second rua= field at " + col(name_at));
                continue;
            }
            rua_seen = true;
            std::size_t start = 0;
            while (true) {
                const std::size_t comma = value.find(',', start);
                const std::string_view uri =
                    trim(value.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
                out.rua.emplace_back(uri);
                if (check_uri(uri, sink)) ++usable;
                if (comma == std::string_view::npos) break;
                start = comma + 1;
            }
            continue;
        }
        check_ext_name(name, name_at, sink);
        if (lower(name) == "rua") rua_case_hint = true;
        if (value.empty()) {
            sink.add(Severity::error, "tlsrpt-field-value", "field '" + printable(name, 40) + "' has an empty value");
        } else {
            for (std::size_t i = 0; i < value.size(); ++i)
                if (!is_ext_value_char(static_cast<unsigned char>(value[i]))) {
                    sink.add(Severity::error, "tlsrpt-field-value",
                             "character '" + printable(value.substr(i, 1)) + "' at " + col(value_at + i) +
                                 " is not allowed in the value of '" + printable(name, 40) + "'");
                    break;
                }
        }
        out.extensions.emplace_back(std::string(name), std::string(value));
    }
    if (!rua_seen)
        sink.add(Severity::error, "tlsrpt-no-rua",
                 std::string("no rua= field: RFC 8460 3 requires one (where reports are sent)") +
                     (rua_case_hint ? "; field names are case-sensitive, write 'rua='" : ""));
    else if (usable == 0)
        sink.add(Severity::error, "tlsrpt-uri-invalid", "rua= holds no usable mailto: or https: URI");
}

}  // namespace

const char* tlsrpt_verdict_name(TlsrptVerdict v) {
    switch (v) {
        case TlsrptVerdict::valid: return "valid";
        case TlsrptVerdict::invalid: return "invalid";
        case TlsrptVerdict::absent: return "absent";
    }
    return "invalid";
}

TlsrptRecord parse_tlsrpt(const std::vector<std::string>& records) {
    TlsrptRecord out;
    std::size_t matching = 0;
    {
        FindingSink sink(out.findings);
        std::vector<std::size_t> idx;
        for (std::size_t i = 0; i < records.size(); ++i) {
            if (begins_with_version(records[i]))
                idx.push_back(i);
            else
                sink.add(Severity::info, "tlsrpt-ignored",
                         "record '" + printable(records[i], 40) +
                             "' does not begin with 'v=TLSRPTv1' and is ignored (RFC 8460 3)");
        }
        matching = idx.size();
        if (idx.empty()) {
            sink.add(Severity::info, "tlsrpt-none", "no TXT record beginning with 'v=TLSRPTv1'");
        } else if (idx.size() > 1) {
            sink.add(Severity::error, "tlsrpt-multiple",
                     std::to_string(idx.size()) +
                         " records begin with 'v=TLSRPTv1': senders then assume no TLSRPT (RFC 8460 3)");
        } else {
            out.record = records[idx.front()];
            parse_one(out.record, out, sink);
        }
    }
    if (matching == 0)
        out.verdict = TlsrptVerdict::absent;
    else
        out.verdict = has_errors(out.findings) ? TlsrptVerdict::invalid : TlsrptVerdict::valid;
    return out;
}

}  // namespace stsguard
