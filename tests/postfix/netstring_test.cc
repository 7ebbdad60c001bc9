// Tests for postfix/netstring: framing of the socketmap protocol
// (socketmap_table(5); https://cr.yp.to/proto/netstrings.txt).
#include "postfix/netstring.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace stsguard;

namespace {

struct Decoded {
    std::vector<std::string> items;
    NetstringError error = NetstringError::none;
    std::size_t error_at = 0;  // total bytes consumed when the error was reported
};

// Feeds `input` in pieces of `chunk` bytes (0: all at once).
Decoded decode(const std::string& input, std::size_t max, std::size_t chunk = 0) {
    NetstringDecoder d(max);
    Decoded out;
    std::size_t pos = 0, total = 0;
    while (pos < input.size()) {
        const std::size_t n = chunk == 0 ? input.size() - pos : std::min(chunk, input.size() - pos);
        std::string_view piece(input.data() + pos, n);
        pos += n;
        while (!piece.empty()) {
            const auto step = d.feed(piece);
            piece.remove_prefix(step.consumed);
            total += step.consumed;
            if (step.status == NetstringDecoder::Status::complete) {
                out.items.push_back(d.take());
            } else if (step.status == NetstringDecoder::Status::error) {
                out.error = d.error();
                out.error_at = total;
                return out;
            } else {
                REQUIRE(piece.empty());
            }
        }
    }
    return out;
}

}  // namespace

TEST_CASE("netstring: encoding is LEN:DATA, with the byte length") {
    CHECK(netstring_encode("") == "0:,");
    CHECK(netstring_encode("hello") == "5:hello,");
    CHECK(netstring_encode("OK a,b:c") == "8:OK a,b:c,");
    CHECK(netstring_encode(std::string("a\0b", 3)) == std::string("3:a\0b,", 6));
    CHECK(netstring_encode(std::string(1000, 'x')).substr(0, 5) == "1000:");
    std::string out = "x";
    netstring_append(out, "ab");
    CHECK(out == "x2:ab,");
}

TEST_CASE("netstring: valid input decodes whole, in pieces, and byte by byte") {
    struct Case {
        std::string wire;
        std::vector<std::string> items;
    };
    const std::vector<Case> cases = {
        {"0:,", {""}},
        {"5:hello,", {"hello"}},
        {"11:postfix a.b,", {"postfix a.b"}},
        {"3:a,b,", {"a,b"}},  // ',' inside DATA is data
        {"3:1:,,", {"1:,"}},
        {std::string("3:\0\xff\n,", 6), {std::string("\0\xff\n", 3)}},
        {"1:a,0:,2:bc,", {"a", "", "bc"}},               // pipelined
        {"16:0123456789abcdef,", {"0123456789abcdef"}},  // exactly the limit
    };
    for (const auto& c : cases) {
        CAPTURE(c.wire);
        for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{5}}) {
            CAPTURE(chunk);
            const auto d = decode(c.wire, 16, chunk);
            CHECK(d.error == NetstringError::none);
            CHECK(d.items == c.items);
        }
    }
}

TEST_CASE("netstring: take_into() hands over each netstring and keeps decoding") {
    NetstringDecoder d(100);
    std::string out = "stale";
    const std::string input = "3:abc,0:,5:hello,";
    std::vector<std::string> got;
    std::size_t off = 0;
    while (off < input.size()) {
        const auto step = d.feed(std::string_view(input).substr(off));
        off += step.consumed;
        REQUIRE(step.status != NetstringDecoder::Status::error);
        if (step.status == NetstringDecoder::Status::complete) {
            d.take_into(out);
            got.push_back(out);
        }
    }
    CHECK(got == std::vector<std::string>{"abc", "", "hello"});
    d.take_into(out);  // nothing complete: empty, not the last one again
    CHECK(out.empty());
}

TEST_CASE("netstring: framing errors are precise and reported at the offending byte") {
    struct Case {
        std::string wire;
        NetstringError error;
        std::size_t at;  // bytes consumed including the offending one
    };
    const std::vector<Case> cases = {
        {"a:", NetstringError::bad_length_char, 1},
        {" 5:hello,", NetstringError::bad_length_char, 1},
        {"5 :hello,", NetstringError::bad_length_char, 2},
        {"-1:", NetstringError::bad_length_char, 1},
        {"+1:a,", NetstringError::bad_length_char, 1},
        {"1x:a,", NetstringError::bad_length_char, 2},
        {":", NetstringError::missing_length, 1},
        {"05:hello,", NetstringError::leading_zero, 2},
        {"00:,", NetstringError::leading_zero, 2},
        {"11:", NetstringError::length_over_limit, 2},  // 11 > 10 at its 2nd digit
        {"20:", NetstringError::length_over_limit, 2},
        {"100:", NetstringError::length_over_limit, 3},  // 10 fits, 100 does not
        {"5:hello;", NetstringError::missing_terminator, 8},
        {"5:hello!,", NetstringError::missing_terminator, 8},
        {"0:x", NetstringError::missing_terminator, 3},
        {"1:a,2:bcd", NetstringError::missing_terminator, 9},
    };
    for (const auto& c : cases) {
        CAPTURE(c.wire);
        for (std::size_t chunk : {std::size_t{0}, std::size_t{1}}) {
            CAPTURE(chunk);
            const auto d = decode(c.wire, 10, chunk);
            CHECK(d.error == c.error);
            CHECK(d.error_at == c.at);
        }
    }
}

TEST_CASE("netstring: a huge length fails on its digits, before any data, without overflow") {
    NetstringDecoder d(4096);
    const auto step = d.feed("1000000:");
    CHECK(step.status == NetstringDecoder::Status::error);
    CHECK(step.consumed == 5);  // the 5th digit makes it 10000 > 4096
    CHECK(d.error() == NetstringError::length_over_limit);
    CHECK(d.error_message().find("4096") != std::string::npos);

    NetstringDecoder big(SIZE_MAX);
    const auto s2 = big.feed("99999999999999999999999999:");
    CHECK(s2.status == NetstringDecoder::Status::error);
    CHECK(big.error() == NetstringError::length_over_limit);
    CHECK(s2.consumed == 20);  // SIZE_MAX has 20 digits: the 20th 9 exceeds it

    NetstringDecoder zero(0);
    CHECK(zero.feed("0:,").status == NetstringDecoder::Status::complete);
    CHECK(zero.take().empty());
    CHECK(zero.feed("1").status == NetstringDecoder::Status::error);
}

TEST_CASE("netstring: errors are sticky until reset and name the byte") {
    NetstringDecoder d(100);
    CHECK(d.feed("1:a,").status == NetstringDecoder::Status::complete);
    CHECK(d.take() == "a");
    const auto s = d.feed("x");
    CHECK(s.status == NetstringDecoder::Status::error);
    CHECK(d.error_message().find("'x'") != std::string::npos);
    CHECK(d.error_message().find("offset 4") != std::string::npos);
    CHECK(d.feed("1:a,").status == NetstringDecoder::Status::error);
    CHECK(d.feed("1:a,").consumed == 0);
    d.reset();
    CHECK(d.feed("1:a,").status == NetstringDecoder::Status::complete);

    NetstringDecoder n(100);
    n.feed(std::string("\x01", 1));
    CHECK(n.error_message().find("0x01") != std::string::npos);
    CHECK(std::string(netstring_error_name(NetstringError::leading_zero)) == "leading-zero");
}

TEST_CASE("netstring: partial() tracks a netstring in progress; complete waits for take()") {
    NetstringDecoder d(100);
    CHECK_FALSE(d.partial());
    CHECK(d.feed("3").status == NetstringDecoder::Status::need_more);
    CHECK(d.partial());
    CHECK(d.feed(":ab").status == NetstringDecoder::Status::need_more);
    CHECK(d.partial());
    auto s = d.feed("c,2:de,");
    CHECK(s.status == NetstringDecoder::Status::complete);
    CHECK(s.consumed == 2);  // stops after the first netstring
    CHECK_FALSE(d.partial());
    CHECK(d.feed("2:de,").consumed == 0);  // not taken yet
    CHECK(d.take() == "abc");
    s = d.feed("2:de,");
    CHECK(s.status == NetstringDecoder::Status::complete);
    CHECK(d.take() == "de");
    CHECK(d.take().empty());  // nothing complete
}
