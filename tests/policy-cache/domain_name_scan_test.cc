// Tests for policy-cache/domain_name_scan.cc: the SSE2 normal-form scan
// against the octet loop it must agree with, over inputs built around its
// 16-octet chunks, and that it reads only the octets of its view.
#include "policy-cache/domain_name_scan.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "policy-cache/domain_name.h"
#include "policy-cache/finding.h"
#include "tests/test_random.h"

using namespace stsguard;

namespace {

// DomainName::is_normal_form() on a copy of s in a heap block of exactly
// its size, so that ASan reports any read past either end of the name.
bool fast_exact(std::string_view s) {
    const auto block = std::make_unique<char[]>(s.size());
    if (!s.empty()) std::memcpy(block.get(), s.data(), s.size());
    return DomainName::is_normal_form(std::string_view(block.get(), s.size()));
}

// Names accepted and refused, by the path the scan takes: under 16
// octets (one partial chunk), 16-63 (whole chunks), 64 and over (the
// octet loop).
struct Tally {
    int yes[3] = {};
    int no[3] = {};
    void count(std::size_t size, bool normal) {
        const int path = size < 16 ? 0 : size < 64 ? 1 : 2;
        ++(normal ? yes : no)[path];
    }
};

// The fast scan and the scalar reference must give the same answer.
void require_agree(std::string_view s, Tally& tally) {
    const bool reference = detail::is_normal_form_scalar(s);
    REQUIRE_MESSAGE(fast_exact(s) == reference, "'" << printable(s, 300) << "' (" << s.size()
                                                    << " octets): the reference says "
                                                    << reference);
    tally.count(s.size(), reference);
}

// The first len octets of a name made of copies of unit, with a letter
// for a dot or '-' in the last place (so that a substitution there is
// what decides).
std::string base_name(std::string_view unit, std::size_t len) {
    std::string s;
    while (s.size() < len) s += unit;
    s.resize(len);
    if (s.back() == '.' || s.back() == '-') s.back() = 'z';
    return s;
}

// Places where one octet decides across the 16-octet chunks and 64-octet
// mask words of the fast scan.
bool near_an_edge(std::size_t i, std::size_t len) {
    if (i < 4 || i + 4 >= len) return true;
    const std::size_t in_chunk = i % 16;
    return in_chunk <= 2 || in_chunk >= 13;
}

}  // namespace

TEST_CASE("DomainName: is_normal_form takes the SSE2 scan on x86-64") {
#if defined(__x86_64__)
    CHECK(detail::kNormalFormSse2);  // otherwise the tests below compare the scalar with itself
#endif
    CHECK(detail::is_normal_form_scalar("mx1.d0000123.bench.test"));
    CHECK_FALSE(detail::is_normal_form_scalar("mx1.d0000123.bench.123"));
}

TEST_CASE("DomainName: fast and scalar normal-form scans agree for every octet at every place") {
    // Every octet value 0-255 at every place of names of 1-40 octets, and
    // near the chunk edges, the ends and the 63/64, 253/254 limits of
    // longer ones.  Two shapes: short labels with digits, '-' and '_', and
    // 63-octet labels (a dot or '-' put in one makes a label edge fall
    // anywhere).
    const std::string long_label = std::string(63, 'k') + ".";
    Tally tally;
    std::size_t names = 0;
    const std::string_view short_labels = "mx1.d0000123.bench-test.a_b.example.org.";
    for (const std::string_view unit : {short_labels, std::string_view(long_label)}) {
        for (std::size_t len = 1; len <= 254; ++len) {
            const bool whole = len <= 40;
            if (!whole && !(len <= 50 || (len >= 60 && len <= 68) || (len >= 126 && len <= 130) ||
                            len >= 250))
                continue;
            const std::string base = base_name(unit, len);
            for (std::size_t i = 0; i < len; ++i) {
                if (!whole && !near_an_edge(i, len) && i != 62 && i != 63 && i != 64) continue;
                std::string s = base;
                for (int octet = 0; octet < 256; ++octet) {
                    s[i] = static_cast<char>(octet);
                    require_agree(s, tally);
                    ++names;
                }
            }
        }
    }
    MESSAGE(names << " names");
    for (int path = 0; path < 3; ++path) {
        CHECK(tally.yes[path] > 1000);  // each path both accepts ...
        CHECK(tally.no[path] > 1000);   // ... and refuses
    }
}

TEST_CASE("DomainName: fast and scalar normal-form scans agree on names built around chunk edges") {
    // Names of 1-260 octets, most near 16, 32, 48, 64, 128, 253; labels
    // of lengths near the same edges; then a dot, '-', "--", "xn--" or a
    // ".xn--" put across a chunk edge, an all-digit last label, or a
    // leading digit.  Fixed seed.
    stsguard_test::TestRandom random(20240611);
    const std::size_t edge_lengths[] = {1,   2,   3,   4,   5,   14,  15,  16, 17, 18,
                                        31,  32,  33,  47,  48,  49,  62,  63, 64, 65,
                                        127, 128, 129, 252, 253, 254, 255, 260};
    const std::size_t label_lengths[] = {1,  2,  3,  4,  5,  6,  13, 14, 15,
                                         16, 17, 30, 31, 32, 33, 62, 63, 64};
    const std::string_view octets[] = {"a", "b", "m", "x", "n", "z", "a", "e",
                                       "0", "1", "9", "-", "_", "-", "x", "n"};
    const std::string_view rare[] = {
        "A", "Z", " ", "/", "`", ":", "@", "[", "{", ",", "+", "*", std::string_view("\0", 1),
        "\x80", "\xc3\xa9", "\xff", ".", "."};
    const std::string_view inserts[] = {".",  "-",  "--", "xn--",  ".xn--",
                                        "-.", ".-", "..", "xn--a", "0"};
    Tally tally;
    const int rounds = 300000;
    for (int round = 0; round < rounds; ++round) {
        const std::size_t target = random.below(4) != 0
                                       ? edge_lengths[random.below(std::size(edge_lengths))] +
                                             random.below(3) - 1  // 0 is lifted to 1 below
                                       : 1 + random.below(260);
        std::string s;
        while (s.size() < target) {
            if (!s.empty()) s += '.';
            std::size_t len = random.below(3) != 0
                                  ? label_lengths[random.below(std::size(label_lengths))]
                                  : 1 + random.below(70);
            const unsigned shape = random.below(12);
            if (shape == 0) s += "xn--", len -= len > 4 ? 4 : len;
            if (shape == 1) s += '-';
            for (std::size_t k = 0; k < len; ++k)
                s += shape == 2 ? std::string_view("7") : octets[random.below(std::size(octets))];
            if (shape == 3) s += '-';
            if (random.below(40) == 0) s += rare[random.below(std::size(rare))];
        }
        s.resize(target == 0 ? 1 : target);
        if (random.below(3) == 0) {  // across a chunk edge
            const std::string_view piece = inserts[random.below(std::size(inserts))];
            const std::size_t edge = 16 * (1 + random.below(16));
            const auto before = static_cast<std::uint32_t>(piece.size()) + 2;
            const std::size_t at = edge - random.below(before);
            if (at < s.size()) s.replace(at, std::min(piece.size(), s.size() - at), piece);
        }
        if (random.below(8) == 0) {  // an all-digit last label
            const std::size_t dot = s.rfind('.');
            const std::size_t last = dot == std::string::npos ? 0 : dot + 1;
            for (std::size_t k = last; k < s.size(); ++k) s[k] = '4';
        }
        if (random.below(16) == 0) s[0] = '3';
        require_agree(s, tally);
        if (DomainName::is_normal_form(s)) {
            const auto full = DomainName::parse_general(s);
            REQUIRE_MESSAGE((full && full->str() == s), printable(s, 300));
        }
    }
    MESSAGE(rounds << " names; accepted by path: " << tally.yes[0] << " / " << tally.yes[1] << " / "
                   << tally.yes[2]);
    for (int path = 0; path < 3; ++path) {
        CHECK(tally.yes[path] > 1000);
        CHECK(tally.no[path] > 1000);
    }
}

TEST_CASE("DomainName: the fast normal-form scan reads only the octets of the view") {
    // A name inside a larger buffer: what lies before or after it (a dot,
    // '-', a digit, NUL, upper case) must not change the answer.
    const std::string name = "mx1.d0000123.bench-test.example.org.a_b.example";
    Tally tally;
    for (std::size_t start = 0; start < 8; ++start) {
        for (std::size_t len = 1; start + len <= name.size(); ++len) {
            const std::string_view part(name.data() + start, len);
            require_agree(part, tally);
            const bool reference = detail::is_normal_form_scalar(part);
            for (const char around : {'.', '-', '7', '\0', 'Z', 'a'}) {
                const std::string buffer =
                    std::string(16, around) + std::string(part) + std::string(16, around);
                const std::string_view view = std::string_view(buffer).substr(16, len);
                REQUIRE_MESSAGE(DomainName::is_normal_form(view) == reference,
                                printable(part) << " amid '" << printable(std::string(1, around))
                                                << "'");
            }
        }
    }
    CHECK(tally.yes[0] > 0);
    CHECK(tally.yes[1] > 0);
    CHECK(tally.no[0] > 0);
    CHECK(tally.no[1] > 0);
}
