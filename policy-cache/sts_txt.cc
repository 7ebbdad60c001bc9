// sts_txt.cc - the "_mta-sts" TXT record set (RFC 8461 3.1).
//
// A hand-written scanner for the 3.1 ABNF rather than split(';'): it has
// to say at which column a record breaks the grammar, and to keep going
// after the first problem so lint shows all of them.  One pass, linear in
// the record length; findings are bounded per code (FindingSink).
#include "policy-cache/sts_txt.h"

#include "policy-cache/domain_name.h"

#include <algorithm>
#include <set>

namespace stsguard {
namespace {

constexpr std::size_t kMaxTxtBytes = 65535;  // RDLENGTH is 16 bits
constexpr std::string_view kVersion = "v=STSv1";

bool is_wsp(char c) { return c == ' ' || c == '\t'; }
bool is_alnum(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_name_char(unsigned char c) { return is_alnum(c) || c == '_' || c == '-' || c == '.'; }
// sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E): visible ASCII except '=' and ';'.
bool is_value_char(unsigned char c) { return (c >= 0x21 && c <= 0x7e) && c != '=' && c != ';'; }
std::string col(std::size_t pos) { return "column " + std::to_string(pos + 1); }

// Prefixes "record N: " when the set has several records.
class Sink {
public:
    Sink(FindingSink& out, std::string prefix) : out_(out), prefix_(std::move(prefix)) {}
    void add(Severity sev, const char* code, const std::string& msg) {
        out_.add(sev, code, prefix_ + msg);
    }

private:
    FindingSink& out_;
    std::string prefix_;
};

// Parses one record that begins with "v=STSv1" (followed by end, WSP or
// ';').  Fills id and extensions; all problems go to sink.
void parse_record(std::string_view r, StsTxt& out, Sink& sink) {
    if (r.size() > kMaxTxtBytes)
        sink.add(Severity::error, "txt-too-long",
                 "record is " + std::to_string(r.size()) + " octets; a TXT record holds at most " +
                     std::to_string(kMaxTxtBytes));
    const std::size_t n = r.size();
    std::size_t pos = kVersion.size();
    bool first_delim = true;
    bool id_seen = false;
    std::optional<std::string> id;
    std::set<std::string, std::less<>> ext_seen;

    while (true) {
        const std::size_t ws = pos;
        while (pos < n && is_wsp(r[pos])) ++pos;
        if (pos == n) {
            if (pos > ws)
                sink.add(Severity::error, "txt-trailing-whitespace",
                         "whitespace at " + col(ws) +
                             " ends the record; 3.1 allows whitespace only around ';'");
            break;
        }
        if (r[pos] != ';') {
            sink.add(Severity::error, "txt-syntax",
                     "expected ';' at " + col(pos) + ", found '" + printable(r.substr(pos, 1)) +
                         "'" + (pos > ws ? " (a value cannot contain whitespace)" : ""));
            pos = r.find(';', pos);  // resynchronise on the next delimiter
            if (pos == std::string_view::npos) break;
        } else if (first_delim && pos > ws) {
            sink.add(
                Severity::warning, "txt-space-before-semicolon",
                "whitespace between 'v=STSv1' and ';': the 3.1 grammar allows it, but 3.1 also "
                "says records not beginning with 'v=STSv1;' are discarded (erratum 6285); "
                "some senders ignore this record");
        }
        first_delim = false;
        ++pos;  // ';'
        while (pos < n && is_wsp(r[pos])) ++pos;
        if (pos == n) break;  // [sts-field-delim] at the end

        // sts-field = name "=" value
        const std::size_t name_at = pos;
        while (pos < n && r[pos] != '=' && r[pos] != ';' && !is_wsp(r[pos])) ++pos;
        const std::string_view name = r.substr(name_at, pos - name_at);
        if (name.empty()) {
            if (r[pos] == ';') {
                sink.add(Severity::error, "txt-empty-field",
                         "empty field at " + col(pos) + " (';' after ';')");
                continue;
            }
        }
        bool name_ok = !name.empty();
        if (name.empty()) {
            sink.add(Severity::error, "txt-field-name",
                     "field at " + col(name_at) + " has no name");
        } else if (!is_alnum(static_cast<unsigned char>(name[0]))) {
            name_ok = false;
            sink.add(Severity::error, "txt-field-name",
                     "field name '" + printable(name) + "' at " + col(name_at) +
                         " must start with a letter or digit");
        } else if (name.size() > 32) {
            name_ok = false;
            sink.add(Severity::error, "txt-field-name",
                     "field name '" + printable(name, 40) + "' at " + col(name_at) + " is " +
                         std::to_string(name.size()) + " characters; at most 32");
        } else {
            for (std::size_t i = 0; i < name.size(); ++i)
                if (!is_name_char(static_cast<unsigned char>(name[i]))) {
                    name_ok = false;
                    sink.add(Severity::error, "txt-field-name",
                             "invalid character '" + printable(name.substr(i, 1)) + "' at " +
                                 col(name_at + i) + " in field name '" + printable(name) + "'");
                    break;
                }
        }

        const std::size_t after_name = pos;
        while (pos < n && is_wsp(r[pos])) ++pos;
        if (pos == n || r[pos] != '=') {
            sink.add(Severity::error, "txt-field-syntax",
                     "field '" + printable(name) + "' at " + col(name_at) +
                         " has no '=' (expected name=value)");
            pos = after_name;
            if (pos < n && r[pos] != ';') {
                pos = r.find(';', pos);
                if (pos == std::string_view::npos) break;
            }
            continue;
        }
        if (pos > after_name)
            sink.add(Severity::error, "txt-space-around-equals",
                     "whitespace before '=' at " + col(after_name) + " in field '" +
                         printable(name) + "'");
        ++pos;  // '='
        if (pos < n && is_wsp(r[pos])) {
            sink.add(Severity::error, "txt-space-around-equals",
                     "whitespace after '=' at " + col(pos) + " in field '" + printable(name) + "'");
            while (pos < n && is_wsp(r[pos])) ++pos;
        }
        const std::size_t value_at = pos;
        while (pos < n && r[pos] != ';' && !is_wsp(r[pos])) ++pos;
        const std::string_view value = r.substr(value_at, pos - value_at);
        bool value_ok = !value.empty();
        if (value.empty())
            sink.add(Severity::error, "txt-empty-value",
                     "field '" + printable(name) + "' at " + col(name_at) + " has an empty value");
        for (std::size_t i = 0; i < value.size(); ++i) {
            const auto c = static_cast<unsigned char>(value[i]);
            if (!is_value_char(c)) {
                value_ok = false;
                sink.add(Severity::error, "txt-field-value",
                         "character '" + printable(value.substr(i, 1)) + "' at " +
                             col(value_at + i) +
                             " is not allowed in a value (visible ASCII except '=' and ';')");
                break;
            }
        }

        if (name == "id") {
            if (id_seen) {
                sink.add(Severity::error, "txt-duplicate-id",
                         "second id= at " + col(name_at) +
                             "; a record must have exactly one id (stsguard is stricter than "
                             "the 3.2 'first one wins' rule here)");
                continue;
            }
            id_seen = true;
            bool id_ok = value_ok;
            if (value.size() > 32) {
                id_ok = false;
                sink.add(Severity::error, "txt-id-too-long",
                         "id '" + printable(value, 40) + "' is " + std::to_string(value.size()) +
                             " characters; at most 32");
            }
            for (std::size_t i = 0; id_ok && i < value.size(); ++i)
                if (!is_alnum(static_cast<unsigned char>(value[i]))) {
                    id_ok = false;
                    sink.add(Severity::error, "txt-id-invalid",
                             "id '" + printable(value) + "' has '" + printable(value.substr(i, 1)) +
                                 "' at " + col(value_at + i) +
                                 "; an id is 1 to 32 letters and digits");
                }
            if (id_ok) id = std::string(value);
            continue;
        }
        if (name == "v") {
            sink.add(Severity::error, "txt-duplicate-version",
                     "second v= at " + col(name_at) + "; 'v=STSv1' must appear once, first");
            continue;
        }
        if (ascii_iequals(name, "id") || ascii_iequals(name, "v"))
            sink.add(Severity::warning, "txt-field-case",
                     "field '" + printable(name) + "' is not '" +
                         (ascii_iequals(name, "id") ? std::string("id") : std::string("v")) +
                         "': field names are case-sensitive (3.1), so it is an unknown extension");
        if (!name_ok || !value_ok) continue;
        if (!ext_seen.insert(std::string(name)).second) {
            sink.add(Severity::warning, "txt-duplicate-extension",
                     "field '" + printable(name) + "' appears again at " + col(name_at) +
                         "; the first value is used");
            continue;
        }
        out.extensions.emplace_back(std::string(name), std::string(value));
    }

    if (!id_seen) sink.add(Severity::error, "txt-missing-id", "no id= field; 3.1 requires one");
    if (id) out.id = PolicyId(*id);
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// 3.1: a record is an MTA-STS record if it begins with "v=STSv1"; the next
// character must end the version token, or "v=STSv10" would count.
bool is_sts_record(std::string_view r) {
    return starts_with(r, kVersion) &&
           (r.size() == kVersion.size() || r[kVersion.size()] == ';' || is_wsp(r[kVersion.size()]));
}

// Why a discarded record is worth a word: it looks as if it was meant to
// be the MTA-STS record.
void explain_discarded(std::string_view r, Sink& sink) {
    std::size_t lead = 0;
    while (lead < r.size() && is_wsp(r[lead])) ++lead;
    if (starts_with(r, kVersion)) {
        sink.add(Severity::warning, "txt-version-unknown",
                 "'" + printable(r, 24) +
                     "' does not begin with the version 'v=STSv1' followed by "
                     "';' or whitespace; it is ignored");
    } else if (lead > 0 && starts_with(r.substr(lead), kVersion)) {
        sink.add(Severity::warning, "txt-leading-whitespace",
                 "'" + printable(r, 24) +
                     "' begins with whitespace, so it does not begin with "
                     "'v=STSv1' and is ignored");
    } else if (r.size() >= kVersion.size() && ascii_iequals(r.substr(0, kVersion.size()), kVersion)) {
        sink.add(Severity::warning, "txt-version-case",
                 "'" + printable(r, 24) +
                     "' is ignored: the version tag 'v=STSv1' is "
                     "case-sensitive (3.1)");
    } else {
        sink.add(Severity::info, "txt-record-ignored",
                 "'" + printable(r, 24) + "' does not begin with 'v=STSv1' and is ignored (3.1)");
    }
}

}  // namespace

const char* txt_verdict_name(TxtVerdict v) {
    switch (v) {
        case TxtVerdict::valid:
            return "valid";
        case TxtVerdict::invalid:
            return "invalid";
        case TxtVerdict::no_policy:
            return "no-policy";
    }
    return "invalid";
}

StsTxt parse_sts_txt(const std::vector<std::string>& records) {
    StsTxt out;
    FindingSink all(out.findings);
    std::vector<std::size_t> sts;
    const bool several = records.size() > 1;
    auto prefix = [several](std::size_t i) {
        return several ? "record " + std::to_string(i + 1) + ": " : std::string();
    };
    for (std::size_t i = 0; i < records.size(); ++i) {
        if (is_sts_record(records[i])) {
            sts.push_back(i);
        } else {
            Sink sink(all, prefix(i));
            explain_discarded(records[i], sink);
        }
    }

    if (sts.empty()) {
        out.verdict = TxtVerdict::no_policy;
        out.findings.insert(
            out.findings.begin(),
            {Severity::error, "txt-no-sts-record",
             records.empty()       ? std::string("no TXT record; the domain has no MTA-STS policy")
             : records.size() == 1 ? std::string("the TXT record does not begin with 'v=STSv1'; "
                                                 "no MTA-STS policy")
                                   : "none of the " + std::to_string(records.size()) +
                                         " TXT records begins with 'v=STSv1'; no MTA-STS policy",
             0});
    } else if (sts.size() > 1) {
        out.verdict = TxtVerdict::no_policy;
        std::string which;
        for (std::size_t i : sts) which += (which.empty() ? "" : ", ") + std::to_string(i + 1);
        out.findings.insert(
            out.findings.begin(),
            {Severity::error, "txt-multiple-records",
             std::to_string(sts.size()) + " records begin with 'v=STSv1' (records " + which +
                 "); 3.1: senders must then assume no policy",
             0});
    } else {
        Sink sink(all, prefix(sts.front()));
        parse_record(records[sts.front()], out, sink);
        all.flush();
        out.verdict = has_errors(out.findings) ? TxtVerdict::invalid : TxtVerdict::valid;
        if (out.verdict != TxtVerdict::valid) out.id.reset();
    }
    all.flush();
    // Most severe first: callers that show one finding show the reason.
    std::stable_sort(out.findings.begin(), out.findings.end(),
                     [](const Finding& a, const Finding& b) {
                         return static_cast<int>(a.severity) < static_cast<int>(b.severity);
                     });
    return out;
}

}  // namespace stsguard
