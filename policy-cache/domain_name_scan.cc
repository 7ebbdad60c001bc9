// domain_name_scan.cc - DomainName::is_normal_form(): an SSE2 scan of
// 16 octets at a time for names of 1-63 octets, and the octet loop it is
// checked against (see domain_name_scan.h).
#include "policy-cache/domain_name_scan.h"

#include <array>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace stsguard::detail {

namespace {

// Octet classes for the scalar is_normal_form(): one table load per octet
// instead of a chain of range tests.
enum : unsigned char { kBad = 0, kLetter = 1, kDigit = 2, kDot = 4 };

constexpr std::array<unsigned char, 256> make_octet_classes() {
    std::array<unsigned char, 256> t{};
    for (int c = 'a'; c <= 'z'; ++c) t[c] = kLetter;
    t['-'] = kLetter;  // neither can make a label numeric
    t['_'] = kLetter;
    for (int c = '0'; c <= '9'; ++c) t[c] = kDigit;
    t['.'] = kDot;
    return t;
}

constexpr std::array<unsigned char, 256> kOctetClass = make_octet_classes();

#if defined(__SSE2__)

bool is_digit(unsigned char c) { return static_cast<unsigned char>(c - '0') < 10; }

// c + k puts [lo, hi] at the top of the signed octet range (hi becomes
// 127), so one signed compare tests it.
template <char lo, char hi>
__m128i in_range(__m128i v) {
    return _mm_cmpgt_epi8(_mm_add_epi8(v, _mm_set1_epi8(static_cast<char>(0x7f - hi))),
                          _mm_set1_epi8(static_cast<char>(0x7f - (hi - lo) - 1)));
}

// Lanes holding an octet of [a-z0-9._-].
__m128i valid_octets(__m128i v, __m128i separators) {
    return _mm_or_si128(_mm_or_si128(in_range<'a', 'z'>(v), in_range<'0', '9'>(v)),
                        _mm_or_si128(separators, _mm_cmpeq_epi8(v, _mm_set1_epi8('_'))));
}

__m128i load16(const unsigned char* p) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

std::uint64_t load_u64(const unsigned char* p) {
    std::uint64_t x;
    std::memcpy(&x, p, sizeof x);
    return x;
}

std::uint32_t load_u32(const unsigned char* p) {
    std::uint32_t x;
    std::memcpy(&x, p, sizeof x);
    return x;
}

// The n (1-15) octets at p in the low lanes, zeros above: overlapping
// loads that stay inside [p, p+n), so nothing past the name is read.
__m128i load_short(const unsigned char* p, std::size_t n) {
    if (n > 8) {
        const std::uint64_t hi = load_u64(p + n - 8) >> (8 * (16 - n));
        return _mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(load_u64(p)));
    }
    std::uint64_t lo;
    if (n >= 4)
        lo = load_u32(p) | (std::uint64_t{load_u32(p + n - 4)} << (8 * (n - 4)));
    else
        lo = p[0] | (std::uint64_t{p[n / 2]} << (8 * (n / 2))) |
             (std::uint64_t{p[n - 1]} << (8 * (n - 1)));
    return _mm_cvtsi64_si128(static_cast<long long>(lo));
}

// The verdict on a name of 1-63 octets (nearly all names), all of them
// valid, given seps: bit i set where octet i is '.' or '-'.  No label
// can be over 63 octets.  Every empty label, '-' at a label's edge and
// "xn--" shows as two separators in a row, or one first or last (the
// end counts as a separator); so does a good name with "--" inside a
// label.  The scalar scan decides those, and names with a digit first
// (maybe an address) or last (maybe an all-numeric last label): all
// rare.  Every other name is in normal form.
bool short_name_ok(std::string_view t, std::uint64_t seps) {
    const auto* s = reinterpret_cast<const unsigned char*>(t.data());
    const std::size_t n = t.size();
    const std::uint64_t edges = (seps | (std::uint64_t{1} << n)) & ((seps << 1) | 1);
    if (edges != 0 || is_digit(s[0]) || is_digit(s[n - 1])) [[unlikely]]
        return is_normal_form_scalar(t);
    return true;
}

#endif  // __SSE2__

}  // namespace

bool is_normal_form_scalar(std::string_view t) {
    const std::size_t n = t.size();
    if (n == 0 || n > kMaxNameOctets) return false;
    const auto* s = reinterpret_cast<const unsigned char*>(t.data());
    if (kOctetClass[s[0]] != kLetter) return false;  // a leading digit may be an IPv4 literal
    std::size_t i = 0;
    for (;;) {  // one label per round
        const std::size_t start = i;
        unsigned seen = 0;  // the classes met in this label
        unsigned char k = kDot;
        while (i < n && ((k = kOctetClass[s[i]]) & (kLetter | kDigit)) != 0) {
            seen |= k;
            ++i;
        }
        if (i < n && k != kDot) return false;
        const std::size_t len = i - start;
        if (len == 0 || len > kMaxLabelOctets) return false;
        if (s[start] == '-' || s[i - 1] == '-') return false;
        if (len >= 4 && s[start] == 'x' && s[start + 1] == 'n' && s[start + 2] == '-' && s[start + 3] == '-')
            return false;
        if (i == n) return (seen & kLetter) != 0;  // an all-numeric last label is refused
        ++i;
    }
}

// 16 octets at a time with SSE2.  Names of 16-63 octets are read as
// whole 16-octet chunks plus the 16 octets that end the name, which may
// overlap the chunk before; shorter ones through load_short().  Nothing
// past the end of t is read.
bool is_normal_form_scan(std::string_view t) {
#if defined(__SSE2__)
    const std::size_t n = t.size();
    const auto* s = reinterpret_cast<const unsigned char*>(t.data());
    // Empty, or longer than any label can be: the octet loop, which also
    // measures labels.  Names of 64 octets and more are rare.
    if (n - 1 >= kMaxLabelOctets) return is_normal_form_scalar(t);
    std::uint64_t seps;
    if (n < 16) {
        const __m128i v = load_short(s, n);
        const __m128i sep = in_range<'-', '.'>(v);
        // The lanes past the name hold 0, which is no valid octet.
        if (static_cast<std::uint32_t>(_mm_movemask_epi8(valid_octets(v, sep))) != (1u << n) - 1)
            return false;
        seps = static_cast<std::uint32_t>(_mm_movemask_epi8(sep));
    } else {
        __m128i v = load16(s);
        __m128i sep = in_range<'-', '.'>(v);
        __m128i ok = valid_octets(v, sep);
        seps = static_cast<std::uint32_t>(_mm_movemask_epi8(sep));
        for (std::size_t i = 16; i + 16 < n; i += 16) {
            v = load16(s + i);
            sep = in_range<'-', '.'>(v);
            ok = _mm_and_si128(ok, valid_octets(v, sep));
            seps |= std::uint64_t{static_cast<std::uint32_t>(_mm_movemask_epi8(sep))} << i;
        }
        v = load16(s + n - 16);
        sep = in_range<'-', '.'>(v);
        ok = _mm_and_si128(ok, valid_octets(v, sep));
        seps |= std::uint64_t{static_cast<std::uint32_t>(_mm_movemask_epi8(sep))} << (n - 16);
        if (_mm_movemask_epi8(ok) != 0xFFFF) return false;
    }
    return short_name_ok(t, seps);
#else
    return is_normal_form_scalar(t);
#endif
}

}  // namespace stsguard::detail
