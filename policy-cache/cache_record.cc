// cache_record.cc - see cache_record.h for the layout.
#include "policy-cache/cache_record.h"

#include <bit>
#include <cstring>
#include <limits>
#include <utility>

namespace stsguard {

const char* outcome_kind_name(OutcomeKind k) {
    switch (k) {
        case OutcomeKind::ok:
            return "ok";
        case OutcomeKind::no_policy:
            return "no-policy";
        case OutcomeKind::temporary:
            return "temporary";
        case OutcomeKind::permanent:
            return "permanent";
    }
    return "?";
}

void CacheRecord::set_policy(std::string body, Policy parsed, PolicyId id, UnixTime fetched) {
    state = PolicyState::has_policy;
    policy_body = std::move(body);
    policy = std::move(parsed);
    policy_id = std::move(id);
    fetched_at = fetched;
    expires_at = fetched + policy.max_age;
}

bool operator==(const CacheRecord& a, const CacheRecord& b) {
    auto same_id = [](const std::optional<PolicyId>& x, const std::optional<PolicyId>& y) {
        return x.has_value() == y.has_value() && (!x || *x == *y);
    };
    return a.domain == b.domain && a.state == b.state && a.policy_body == b.policy_body &&
           a.policy.version == b.policy.version && a.policy.mode == b.policy.mode &&
           a.policy.max_age == b.policy.max_age && a.policy.mx == b.policy.mx &&
           a.policy.extensions == b.policy.extensions && same_id(a.policy_id, b.policy_id) &&
           a.fetched_at == b.fetched_at && a.expires_at == b.expires_at &&
           a.last_checked == b.last_checked && a.last_used == b.last_used &&
           a.next_refresh == b.next_refresh && a.last_outcome.kind == b.last_outcome.kind &&
           a.last_outcome.code == b.last_outcome.code &&
           a.last_outcome.text == b.last_outcome.text &&
           a.consecutive_failures == b.consecutive_failures && a.mx_hosts == b.mx_hosts &&
           a.mx_expires_at == b.mx_expires_at;
}

namespace {

constexpr std::size_t kMaxHostName = 253;
constexpr std::size_t kMaxIdLength = 32;

bool valid_policy_id(std::string_view id) {
    if (id.empty() || id.size() > kMaxIdLength) return false;
    for (char c : id) {
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum) return false;
    }
    return true;
}

// ---- writing -----------------------------------------------------------

class Writer {
public:
    void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
    void u16(std::uint16_t v) { le(v, 2); }
    void u32(std::uint32_t v) { le(v, 4); }
    void i64(std::int64_t v) { le(static_cast<std::uint64_t>(v), 8); }
    // Length prefix of `width` bytes, then the bytes; false if too long.
    bool str(std::string_view s, int width, std::size_t limit, const char* field) {
        if (s.size() > limit) {
            if (why_.empty())
                why_ = std::string(field) + " is " + std::to_string(s.size()) +
                       " bytes, over the limit of " + std::to_string(limit);
            return false;
        }
        le(s.size(), width);
        out_.append(s);
        return true;
    }
    bool count(std::size_t n, const char* field) {
        if (n > std::numeric_limits<std::uint16_t>::max()) {
            if (why_.empty())
                why_ = std::string(field) + " has " + std::to_string(n) + " entries, over 65535";
            return false;
        }
        u16(static_cast<std::uint16_t>(n));
        return true;
    }
    std::string& out() { return out_; }
    const std::string& why() const { return why_; }

private:
    void le(std::uint64_t v, int bytes) {
        for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
    std::string out_;
    std::string why_;
};

// ---- reading -----------------------------------------------------------

// Every read checks the remaining length first; after the first failure
// all reads fail, so the decoder can check once per group of fields.
class Reader {
public:
    // Reads b from byte `start` on (the fixed-width prefix before it was
    // read by offset); failure messages count from the start of b.
    Reader(std::string_view b, std::size_t start)
        : p_(b.data() + start), left_(b.size() - start), total_(b.size()) {}

    bool u16(std::uint16_t& v, const char* f) {
        std::uint64_t x = 0;
        if (!le<2>(x, f)) return false;
        v = static_cast<std::uint16_t>(x);
        return true;
    }
    // A length-prefixed byte string, checked against its limit and the
    // bytes left; v views the input.
    bool take(std::string_view& v, int width, std::size_t limit, const char* f) {
        std::uint64_t n = 0;
        const bool got = width == 1 ? le<1>(n, f) : width == 2 ? le<2>(n, f) : le<4>(n, f);
        if (!got) return false;
        if (n > limit || n > left_) return fail_length(f, n, limit);
        v = std::string_view(p_, static_cast<std::size_t>(n));
        p_ += n;
        left_ -= n;
        return true;
    }
    // A list count, checked against the bytes left: each element needs at
    // least min_each bytes, so a corrupt count cannot cause a huge reserve.
    bool count(std::size_t& n, std::size_t min_each, const char* f) {
        std::uint16_t c = 0;
        if (!u16(c, f)) return false;
        if (static_cast<std::size_t>(c) * min_each > left_) return fail_count(f, c);
        n = c;
        return true;
    }
    // The failure paths build their messages out of line, so the reads
    // above stay small enough to inline into the decoder (the serve hot
    // path decodes one record per request).
    [[gnu::cold]] [[gnu::noinline]] bool fail_length(const char* f, std::uint64_t n, std::size_t limit) {
        if (n > limit)
            return fail(std::string(f) + " length " + std::to_string(n) + " over its limit " +
                        std::to_string(limit));
        return fail(std::string(f) + " length " + std::to_string(n) + " runs past the end (" +
                    std::to_string(left_) + " bytes left)");
    }
    [[gnu::cold]] [[gnu::noinline]] bool fail_count(const char* f, std::uint16_t c) {
        return fail(std::string(f) + " count " + std::to_string(c) + " cannot fit in the " +
                    std::to_string(left_) + " bytes left");
    }
    [[gnu::cold]] [[gnu::noinline]] bool fail_truncated(const char* f) {
        return fail(std::string("truncated in ") + f);
    }
    bool fail(std::string why) {
        if (ok_) why_ = std::move(why) + " (at byte " + std::to_string(total_ - left_) + ")";
        ok_ = false;
        left_ = 0;
        return false;
    }
    bool ok() const { return ok_; }
    std::size_t left() const { return left_; }
    std::string& why() { return why_; }

private:
    // A fixed width (1, 2, 4 or 8), so a read is one load on this host.
    template <int Bytes>
    bool le(std::uint64_t& v, const char* f) {
        if (!ok_) return false;
        if (left_ < static_cast<std::size_t>(Bytes)) return fail_truncated(f);
        if constexpr (std::endian::native == std::endian::little) {
            std::uint64_t x = 0;
            std::memcpy(&x, p_, Bytes);  // one load; x's low bytes are the field
            v = x;
        } else {
            v = 0;
            for (int i = 0; i < Bytes; ++i)
                v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p_[i])) << (8 * i);
        }
        p_ += Bytes;
        left_ -= Bytes;
        return true;
    }
    const char* p_;
    std::size_t left_;
    std::size_t total_;
    bool ok_ = true;
    std::string why_;
};

// A little-endian integer at p, in one load on this host.
template <typename T>
T load_le(const char* p) {
    if constexpr (std::endian::native == std::endian::little) {
        T v;
        std::memcpy(&v, p, sizeof v);
        return v;
    } else {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i)
            v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
        return static_cast<T>(v);
    }
}

// The fixed-width prefix of format 1 (see cache_record.h): checked for
// length once and read by offset, since the serve hot path decodes one
// record per request.  `end` is the offset just past each field, to name
// the field a short value stops in.
struct FixedField {
    std::size_t end;
    const char* name;
};
constexpr FixedField kFixedFields[] = {
    {1, "format"},      {2, "state"},          {3, "mode"},          {4, "outcome kind"},
    {8, "consecutive failures"}, {16, "max_age"}, {24, "fetched_at"}, {32, "expires_at"},
    {40, "last_checked"}, {48, "last_used"},   {56, "next_refresh"},  {64, "mx_expires_at"},
};
constexpr std::size_t kFixedPrefix = 64;
static_assert(kFixedFields[std::size(kFixedFields) - 1].end == kFixedPrefix);

[[gnu::cold]] std::string truncated_prefix(std::size_t size) {
    std::size_t start = 0;
    for (const auto& f : kFixedFields) {
        if (size < f.end) return std::string("truncated in ") + f.name + " (at byte " + std::to_string(start) + ")";
        start = f.end;
    }
    return "truncated";  // not reached: size < kFixedPrefix
}

std::uint8_t mode_code(Mode m) {
    switch (m) {
        case Mode::enforce:
            return 0;
        case Mode::testing:
            return 1;
        case Mode::none:
            return 2;
    }
    return 2;
}

}  // namespace

std::optional<std::string> encode_record(const CacheRecord& r, std::string* why) {
    constexpr std::size_t k16 = std::numeric_limits<std::uint16_t>::max();
    Writer w;
    w.out().reserve(96 + r.domain.str().size() + r.policy_body.size() + r.last_outcome.text.size());
    w.u8(kRecordFormat);
    w.u8(static_cast<std::uint8_t>(r.state));
    w.u8(mode_code(r.policy.mode));
    w.u8(static_cast<std::uint8_t>(r.last_outcome.kind));
    w.u32(r.consecutive_failures);
    w.i64(r.policy.max_age.count());
    w.i64(to_unix(r.fetched_at));
    w.i64(to_unix(r.expires_at));
    w.i64(to_unix(r.last_checked));
    w.i64(to_unix(r.last_used));
    w.i64(to_unix(r.next_refresh));
    w.i64(to_unix(r.mx_expires_at));
    bool ok = w.str(r.domain.str(), 1, kMaxHostName, "domain");
    const std::string id = r.policy_id ? r.policy_id->str() : std::string();
    if (r.policy_id && !valid_policy_id(id)) {
        if (why) *why = "policy id \"" + id + "\" is not 1-32 letters and digits";
        return std::nullopt;
    }
    ok = ok && w.str(id, 1, kMaxIdLength, "policy id");
    ok = ok && w.str(r.policy.version, 1, 255, "policy version");
    ok = ok && w.count(r.policy.mx.size(), "mx patterns");
    for (const auto& p : r.policy.mx) ok = ok && w.str(p, 2, k16, "mx pattern");
    ok = ok && w.count(r.policy.extensions.size(), "policy extensions");
    for (const auto& [k, v] : r.policy.extensions)
        ok = ok && w.str(k, 2, k16, "extension key") && w.str(v, 2, k16, "extension value");
    ok = ok && w.str(r.last_outcome.code, 2, k16, "outcome code");
    ok = ok && w.str(r.last_outcome.text, 2, k16, "outcome text");
    ok = ok && w.count(r.mx_hosts.size(), "MX hosts");
    for (const auto& h : r.mx_hosts) ok = ok && w.str(h, 1, kMaxHostName, "MX host");
    ok = ok && w.str(r.policy_body, 4, kMaxPolicyBytes, "policy body");
    if (!ok) {
        if (why) *why = "cannot encode the record of " + r.domain.str() + ": " + w.why();
        return std::nullopt;
    }
    return std::move(w.out());
}

namespace {

// What only a full decode keeps: views, like RecordTexts.
struct RecordExtras {
    std::string_view id;
    std::vector<std::pair<std::string_view, std::string_view>> extensions;
    std::string_view body;
};

// The one decoder: the fixed-width fields into rec, the texts as views into
// bytes.  With extras null (the answer path) the policy id, extensions and
// body are length-checked and passed over, and the id's characters are
// not checked, since no answer uses them.  rec's other strings and lists
// are left alone.
bool parse_record(std::string_view bytes, const DomainName& key, CacheRecord& rec, RecordTexts& t,
                  RecordExtras* extras, std::string* why) {
    constexpr std::size_t k16 = std::numeric_limits<std::uint16_t>::max();
    auto bad = [&](std::string reason) {
        if (why) *why = "record of " + key.str() + ": " + std::move(reason);
        return false;
    };
    if (bytes.empty()) return bad("empty value");
    const auto format = static_cast<std::uint8_t>(bytes[0]);
    if (format != kRecordFormat)
        return bad("record format " + std::to_string(format) +
                   (format > kRecordFormat ? " is newer than this stsguard understands ("
                                           : " is not supported (expected ") +
                   std::to_string(kRecordFormat) + ")");
    if (bytes.size() < kFixedPrefix) return bad(truncated_prefix(bytes.size()));

    const char* const p = bytes.data();
    const auto state = static_cast<std::uint8_t>(p[1]);
    const auto mode = static_cast<std::uint8_t>(p[2]);
    const auto kind = static_cast<std::uint8_t>(p[3]);
    rec.consecutive_failures = load_le<std::uint32_t>(p + 4);
    const auto max_age = load_le<std::int64_t>(p + 8);
    rec.fetched_at = from_unix(load_le<std::int64_t>(p + 16));
    rec.expires_at = from_unix(load_le<std::int64_t>(p + 24));
    rec.last_checked = from_unix(load_le<std::int64_t>(p + 32));
    rec.last_used = from_unix(load_le<std::int64_t>(p + 40));
    rec.next_refresh = from_unix(load_le<std::int64_t>(p + 48));
    rec.mx_expires_at = from_unix(load_le<std::int64_t>(p + 56));
    Reader r(bytes, kFixedPrefix);
    if (state > 1) return bad("state " + std::to_string(state) + " is not 0 or 1");
    if (mode > 2) return bad("mode " + std::to_string(mode) + " is not 0, 1 or 2");
    if (kind > 3) return bad("outcome kind " + std::to_string(kind) + " is not 0-3");
    if (max_age < 0 || max_age > kMaxAgeLimit)
        return bad("max_age " + std::to_string(max_age) + " is outside 0.." +
                   std::to_string(kMaxAgeLimit));
    rec.state = static_cast<PolicyState>(state);
    rec.policy.mode = mode == 0 ? Mode::enforce : mode == 1 ? Mode::testing : Mode::none;
    rec.last_outcome.kind = static_cast<OutcomeKind>(kind);
    rec.policy.max_age = Seconds{max_age};

    std::string_view domain, id;
    if (!r.take(domain, 1, kMaxHostName, "domain")) return bad(r.why());
    if (domain != key.str())
        return bad("stored under the wrong key (it names \"" + std::string(domain) + "\")");
    if (!r.take(id, 1, kMaxIdLength, "policy id")) return bad(r.why());
    if (extras) {
        if (!id.empty() && !valid_policy_id(id)) return bad("policy id is not 1-32 letters and digits");
        extras->id = id;
    }
    r.take(t.version, 1, 255, "policy version");

    std::size_t n = 0;
    t.mx.clear();
    if (r.count(n, 2, "mx patterns")) {
        std::string_view v;
        for (std::size_t i = 0; i < n && r.take(v, 2, k16, "mx pattern"); ++i) t.mx.push_back(v);
    }
    if (r.count(n, 4, "policy extensions")) {
        std::string_view k, v;
        if (extras) extras->extensions.clear();
        for (std::size_t i = 0; i < n; ++i) {
            if (!r.take(k, 2, k16, "extension key") || !r.take(v, 2, k16, "extension value")) break;
            if (extras) extras->extensions.emplace_back(k, v);
        }
    }
    r.take(t.outcome_code, 2, k16, "outcome code");
    r.take(t.outcome_text, 2, k16, "outcome text");
    t.mx_hosts.clear();
    if (r.count(n, 1, "MX hosts")) {
        std::string_view v;
        for (std::size_t i = 0; i < n && r.take(v, 1, kMaxHostName, "MX host"); ++i) t.mx_hosts.push_back(v);
    }
    std::string_view body;
    r.take(body, 4, kMaxPolicyBytes, "policy body");
    if (extras) extras->body = body;
    if (!r.ok()) return bad(r.why());
    if (r.left() != 0)
        return bad(std::to_string(r.left()) + " unexpected bytes after the last field");
    return true;
}

// s = v, keeping s's storage: resize() is free when the size is the same
// as in the last record decoded into s; assign() is not.
void copy_into(std::string& s, std::string_view v) {
    s.resize(v.size());
    if (!v.empty()) std::memcpy(s.data(), v.data(), v.size());
}

void copy_into(std::vector<std::string>& out, const NameViews& v) {
    out.resize(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) copy_into(out[i], v[i]);
}

}  // namespace

bool decode_record_into(std::string_view bytes, const DomainName& key, CacheRecord& rec, std::string* why) {
    RecordTexts t;
    RecordExtras x;
    if (!parse_record(bytes, key, rec, t, &x, why)) return false;
    rec.domain = key;
    rec.policy_id.reset();
    if (!x.id.empty()) rec.policy_id = PolicyId(std::string(x.id));
    copy_into(rec.policy.version, t.version);
    copy_into(rec.policy.mx, t.mx);
    rec.policy.extensions.resize(x.extensions.size());
    for (std::size_t i = 0; i < x.extensions.size(); ++i) {
        copy_into(rec.policy.extensions[i].first, x.extensions[i].first);
        copy_into(rec.policy.extensions[i].second, x.extensions[i].second);
    }
    copy_into(rec.last_outcome.code, t.outcome_code);
    copy_into(rec.last_outcome.text, t.outcome_text);
    copy_into(rec.mx_hosts, t.mx_hosts);
    copy_into(rec.policy_body, x.body);
    return true;
}

bool decode_record_view(std::string_view bytes, const DomainName& key, CacheRecord& fixed, RecordTexts& texts,
                        std::string* why) {
    if (!parse_record(bytes, key, fixed, texts, nullptr, why)) return false;
    if (fixed.domain != key) fixed.domain = key;
    // Nothing of an earlier record may linger in the owned fields the
    // views stand in for (cheap: they stay empty on the serve path).
    fixed.policy_id.reset();
    fixed.policy.version.clear();
    fixed.policy.mx.clear();
    fixed.policy.extensions.clear();
    fixed.last_outcome.code.clear();
    fixed.last_outcome.text.clear();
    fixed.mx_hosts.clear();
    fixed.policy_body.clear();
    return true;
}

std::optional<CacheRecord> decode_record(std::string_view bytes, const DomainName& key, std::string* why) {
    CacheRecord rec(key);
    if (!decode_record_into(bytes, key, rec, why)) return std::nullopt;
    return rec;
}

}  // namespace stsguard
