// Tests for policy-cache/cache_record.cc: the record's binary encoding.
#include "policy-cache/cache_record.h"

#include <doctest/doctest.h>

#include <random>
#include <string>

using namespace stsguard;

namespace {

DomainName dn(const char* s) {
    auto d = DomainName::parse(s);
    REQUIRE(d);
    return *d;
}

// A record with a distinct, non-default value in every field.
CacheRecord full_record() {
    CacheRecord r(dn("example.com"));
    Policy p;
    p.version = "STSv1";
    p.mode = Mode::testing;
    p.max_age = Seconds{604800};
    p.mx = {"mx1.example.com", "*.mail.example.com", "backup.example.net"};
    p.extensions = {{"x-note", "hello"}, {"x-empty", ""}};
    std::string body = "version: STSv1\r\nmode: testing\r\nmx: mx1.example.com\r\n";
    body += std::string("\0\xff\x80 binary", 10);
    r.set_policy(body, p, PolicyId("20240101T000000Z1"), from_unix(1'700'000'000));
    r.last_checked = from_unix(1'700'000'100);
    r.last_used = from_unix(1'700'000'200);
    r.next_refresh = from_unix(1'700'086'400);
    r.last_outcome = {OutcomeKind::temporary, "policy-fetch-timeout",
                      "timed out after 20 s \xc3\xa9"};
    r.consecutive_failures = 0x01020304;
    r.mx_hosts = {"mx1.example.com", "mx2.example.com"};
    r.mx_expires_at = from_unix(1'700'003'600);
    return r;
}

std::string encode_ok(const CacheRecord& r) {
    std::string why;
    auto b = encode_record(r, &why);
    REQUIRE_MESSAGE(b, why);
    return *b;
}

}  // namespace

TEST_CASE("cache record: every field survives encode and decode") {
    const CacheRecord r = full_record();
    const std::string bytes = encode_ok(r);
    std::string why;
    auto back = decode_record(bytes, r.domain, &why);
    REQUIRE_MESSAGE(back, why);
    CHECK(*back == r);
    CHECK(back->policy_body.size() == r.policy_body.size());
    CHECK(back->policy.mx.size() == 3);
    CHECK(back->policy.extensions[1].second.empty());
    CHECK(back->policy_id->str() == "20240101T000000Z1");
    CHECK(back->consecutive_failures == 0x01020304u);
    CHECK(back->last_outcome.kind == OutcomeKind::temporary);
}

TEST_CASE("cache record: a no-policy record with default fields round-trips") {
    CacheRecord r(dn("no-sts.example"));
    r.last_outcome = {OutcomeKind::no_policy, "no-sts-record", "no _mta-sts TXT record"};
    r.next_refresh = from_unix(-5);  // negative times are representable
    auto back = decode_record(encode_ok(r), r.domain);
    REQUIRE(back);
    CHECK(*back == r);
    CHECK_FALSE(back->policy_id.has_value());
    CHECK(back->state == PolicyState::no_policy);
}

TEST_CASE("cache record: each mode value round-trips (RFC 8461 3.2 enforce/testing/none)") {
    for (Mode m : {Mode::enforce, Mode::testing, Mode::none}) {
        CacheRecord r = full_record();
        r.policy.mode = m;
        auto back = decode_record(encode_ok(r), r.domain);
        REQUIRE(back);
        CHECK(back->policy.mode == m);
    }
}

TEST_CASE("cache record: the encoding leads with format byte 1 and is little-endian") {
    const std::string b = encode_ok(full_record());
    REQUIRE(b.size() > 8);
    CHECK(static_cast<unsigned char>(b[0]) == kRecordFormat);
    CHECK(static_cast<unsigned char>(b[1]) == 1);     // has_policy
    CHECK(static_cast<unsigned char>(b[2]) == 1);     // testing
    CHECK(static_cast<unsigned char>(b[3]) == 2);     // temporary
    CHECK(static_cast<unsigned char>(b[4]) == 0x04);  // consecutive_failures, low byte first
    CHECK(static_cast<unsigned char>(b[7]) == 0x01);
}

TEST_CASE("cache record: set_policy sets expires_at = fetched_at + max_age (RFC 8461 3.2)") {
    ManualClock clock;
    CacheRecord r(dn("example.com"));
    Policy p;
    p.mode = Mode::enforce;
    p.max_age = Seconds{86400};
    r.set_policy("body", p, PolicyId("abc"), clock.now());
    CHECK(r.expires_at == clock.now() + Seconds{86400});
    CHECK(r.policy_usable_at(clock.now()));
    clock.advance(Seconds{86399});
    CHECK(r.policy_usable_at(clock.now()));
    clock.advance(Seconds{1});
    CHECK_FALSE(r.policy_usable_at(clock.now()));
}

TEST_CASE("cache record: every truncation of a valid encoding is a clean decode error") {
    const CacheRecord r = full_record();
    const std::string b = encode_ok(r);
    for (std::size_t n = 0; n < b.size(); ++n) {
        std::string why;
        // A copy of exactly n bytes, so ASan sees any read past its end.
        const std::string prefix = b.substr(0, n);
        auto rec = decode_record(prefix, r.domain, &why);
        CHECK_MESSAGE(!rec, "prefix of ", n, " bytes decoded");
        CHECK_FALSE(why.empty());
    }
}

TEST_CASE("cache record: random bytes and random corruptions never crash the decoder") {
    std::mt19937 rng(8461);
    const DomainName key = dn("example.com");
    const std::string good = encode_ok(full_record());
    int decoded = 0, refused = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string b;
        if (i % 2 == 0) {
            b.resize(rng() % 200);
            for (auto& c : b) c = static_cast<char>(rng());
            if (!b.empty() && i % 4 == 0) b[0] = static_cast<char>(kRecordFormat);
        } else {
            b = good;
            for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n; ++k)
                b[rng() % b.size()] = static_cast<char>(rng());
        }
        std::string why;
        auto rec = decode_record(b, key, &why);
        if (rec) {
            ++decoded;
            // Whatever decodes re-encodes to the same bytes: nothing was
            // silently dropped or invented.
            auto again = encode_record(*rec);
            REQUIRE(again);
            CHECK(*again == b);
        } else {
            ++refused;
            CHECK_FALSE(why.empty());
        }
    }
    CHECK(refused > 0);
    CHECK(decoded > 0);  // corrupting a timestamp byte still decodes
}

TEST_CASE("cache record: decode errors name the problem") {
    const CacheRecord r = full_record();
    const std::string good = encode_ok(r);
    std::string why;

    CHECK_FALSE(decode_record("", r.domain, &why));
    CHECK(why.find("empty") != std::string::npos);

    std::string newer = good;
    newer[0] = 2;
    CHECK_FALSE(decode_record(newer, r.domain, &why));
    CHECK(why.find("record format 2 is newer") != std::string::npos);

    std::string old = good;
    old[0] = 0;
    CHECK_FALSE(decode_record(old, r.domain, &why));
    CHECK(why.find("not supported") != std::string::npos);

    CHECK_FALSE(decode_record(good, dn("other.example"), &why));
    CHECK(why.find("wrong key") != std::string::npos);

    CHECK_FALSE(decode_record(good + "x", r.domain, &why));
    CHECK(why.find("unexpected bytes") != std::string::npos);

    std::string bad_state = good;
    bad_state[1] = 7;
    CHECK_FALSE(decode_record(bad_state, r.domain, &why));
    CHECK(why.find("state 7") != std::string::npos);

    std::string bad_mode = good;
    bad_mode[2] = 3;
    CHECK_FALSE(decode_record(bad_mode, r.domain, &why));
    CHECK(why.find("mode 3") != std::string::npos);

    std::string bad_kind = good;
    bad_kind[3] = 4;
    CHECK_FALSE(decode_record(bad_kind, r.domain, &why));
    CHECK(why.find("outcome kind 4") != std::string::npos);
}

TEST_CASE("cache record: max_age outside 0..31557600 is refused on decode (RFC 8461 3.2)") {
    CacheRecord r = full_record();
    r.policy.max_age = Seconds{kMaxAgeLimit + 1};
    std::string why;
    CHECK_FALSE(decode_record(encode_ok(r), r.domain, &why));
    CHECK(why.find("max_age") != std::string::npos);
    r.policy.max_age = Seconds{kMaxAgeLimit};
    CHECK(decode_record(encode_ok(r), r.domain));
}

TEST_CASE("cache record: a list count larger than the bytes left is refused before allocating") {
    CacheRecord r(dn("example.com"));
    std::string b = encode_ok(r);
    // Fixed part: 4 + 4 + 7*8 = 64 bytes, then s8 domain, s8 id, s8 version,
    // then the u16 mx pattern count.
    const std::size_t count_at = 64 + 1 + r.domain.str().size() + 1 + 1;
    REQUIRE(b.size() > count_at + 1);
    b[count_at] = '\xff';
    b[count_at + 1] = '\xff';
    std::string why;
    CHECK_FALSE(decode_record(b, r.domain, &why));
    CHECK(why.find("mx patterns count 65535 cannot fit") != std::string::npos);
}

TEST_CASE(
    "cache record: encode refuses an oversized body and an invalid policy id (RFC 8461 3.1, 3.3)") {
    CacheRecord r = full_record();
    r.policy_body.assign(kMaxPolicyBytes + 1, 'a');
    std::string why;
    CHECK_FALSE(encode_record(r, &why));
    CHECK(why.find("policy body") != std::string::npos);

    r = full_record();
    r.policy_body.assign(kMaxPolicyBytes, 'a');
    CHECK(encode_record(r));

    r = full_record();
    r.policy_id = PolicyId("not-alnum!");
    CHECK_FALSE(encode_record(r, &why));
    CHECK(why.find("policy id") != std::string::npos);

    r.policy_id = PolicyId(std::string(33, 'a'));
    CHECK_FALSE(encode_record(r, &why));

    r = full_record();
    r.mx_hosts.push_back(std::string(254, 'h'));
    CHECK_FALSE(encode_record(r, &why));
    CHECK(why.find("MX host") != std::string::npos);
}

namespace {

std::vector<std::string> strings(const NameViews& v) { return {v.begin(), v.end()}; }

bool inside(std::string_view view, const std::string& bytes) {
    return view.data() >= bytes.data() && view.data() + view.size() <= bytes.data() + bytes.size();
}

// What decode_record_view() leaves in `fixed`: the owned texts empty.
CacheRecord without_texts(CacheRecord r) {
    r.policy_id.reset();
    r.policy.version.clear();
    r.policy.mx.clear();
    r.policy.extensions.clear();
    r.last_outcome.code.clear();
    r.last_outcome.text.clear();
    r.mx_hosts.clear();
    r.policy_body.clear();
    return r;
}

}  // namespace

TEST_CASE("cache record: decoding in place views every text an answer needs, in the stored bytes") {
    const CacheRecord r = full_record();
    const std::string bytes = encode_ok(r);
    CacheRecord fixed(dn("other.example"));
    RecordTexts t;
    std::string why;
    REQUIRE_MESSAGE(decode_record_view(bytes, r.domain, fixed, t, &why), why);
    CHECK(fixed == without_texts(r));
    CHECK(t.version == r.policy.version);
    CHECK(strings(t.mx) == r.policy.mx);
    CHECK(t.outcome_code == r.last_outcome.code);
    CHECK(t.outcome_text == r.last_outcome.text);
    CHECK(strings(t.mx_hosts) == r.mx_hosts);
    // Views, not copies: every one points into the value.
    CHECK(inside(t.version, bytes));
    CHECK(inside(t.outcome_text, bytes));
    for (auto v : t.mx) CHECK(inside(v, bytes));
    for (auto v : t.mx_hosts) CHECK(inside(v, bytes));
}

TEST_CASE("cache record: decoding in place checks what it does not keep, as a full decode does") {
    // The policy id, extensions and body are passed over, never skipped
    // unchecked: every truncation fails, and so does trailing garbage.
    const CacheRecord r = full_record();
    const std::string bytes = encode_ok(r);
    CacheRecord fixed(r.domain);
    RecordTexts t;
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        std::string w;
        CHECK_MESSAGE(!decode_record_view(bytes.substr(0, n), r.domain, fixed, t, &w), n, " bytes decoded");
        CHECK_FALSE(w.empty());
    }
    std::string why;
    CHECK_FALSE(decode_record_view(bytes + "x", r.domain, fixed, t, &why));
    CHECK(why.find("1 unexpected bytes") != std::string::npos);
    CHECK_FALSE(decode_record_view(bytes, dn("example.org"), fixed, t, &why));
    CHECK(why.find("wrong key") != std::string::npos);
}

TEST_CASE("cache record: decoding in place into a used record leaves nothing of the old one") {
    // The serve hot path decodes every request into the same record and
    // texts; a list past NameViews' inline room must not keep old entries.
    CacheRecord many = full_record();
    many.mx_hosts.clear();
    for (int i = 0; i < 12; ++i) many.mx_hosts.push_back("mx" + std::to_string(i) + ".example.com");
    CacheRecord sparse(dn("other.example"));
    sparse.state = PolicyState::no_policy;
    sparse.last_outcome = {OutcomeKind::permanent, "no-txt", "no _mta-sts record"};
    sparse.mx_hosts = {"mx.other.example"};
    const std::string many_bytes = encode_ok(many), sparse_bytes = encode_ok(sparse);

    CacheRecord used = full_record();  // owned texts of a full decode
    RecordTexts t;
    std::string why;
    REQUIRE_MESSAGE(decode_record_view(many_bytes, many.domain, used, t, &why), why);
    CHECK(used == without_texts(many));
    CHECK(strings(t.mx_hosts) == many.mx_hosts);
    REQUIRE_MESSAGE(decode_record_view(sparse_bytes, sparse.domain, used, t, &why), why);
    CHECK(used == without_texts(sparse));
    CHECK(t.mx.empty());
    CHECK(strings(t.mx_hosts) == sparse.mx_hosts);
    CHECK(t.outcome_code == "no-txt");
}

TEST_CASE("cache record: a value cut short in the fixed-width fields names the field it stops in") {
    const CacheRecord r = full_record();
    const std::string bytes = encode_ok(r);
    const std::pair<std::size_t, const char*> cuts[] = {
        {1, "truncated in state (at byte 1)"},
        {4, "truncated in consecutive failures (at byte 4)"},
        {7, "truncated in consecutive failures (at byte 4)"},
        {8, "truncated in max_age (at byte 8)"},
        {40, "truncated in last_used (at byte 40)"},
        {63, "truncated in mx_expires_at (at byte 56)"},
        {64, "truncated in domain (at byte 64)"},
    };
    for (const auto& [n, expect] : cuts) {
        std::string why;
        CHECK_FALSE(decode_record(bytes.substr(0, n), r.domain, &why));
        CHECK_MESSAGE(why.find(expect) != std::string::npos, n, " bytes: ", why);
    }
    std::string why;
    CHECK_FALSE(decode_record("", r.domain, &why));
    CHECK(why.find("empty value") != std::string::npos);
}

TEST_CASE("cache record: decoding into a used record leaves nothing of the old one") {
    // The serve hot path decodes every request into the same record.
    CacheRecord used = full_record();
    CacheRecord sparse(dn("other.example"));  // no id, no patterns, one MX host
    sparse.state = PolicyState::no_policy;
    sparse.last_outcome = {OutcomeKind::permanent, "no-txt", "no _mta-sts record"};
    sparse.mx_hosts = {"mx.other.example"};
    std::string why;
    REQUIRE_MESSAGE(decode_record_into(encode_ok(sparse), sparse.domain, used, &why), why);
    CHECK(used == sparse);
    // And back: a full record into the sparse one's storage.
    const CacheRecord full = full_record();
    REQUIRE_MESSAGE(decode_record_into(encode_ok(full), full.domain, used, &why), why);
    CHECK(used == full);
}
