// Tests for postfix/netstring: framing of the socketmap protocol
// (socketmap_table(5); https://cr.yp.to/proto/netstrings.txt).
#include "postfix/netstring.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

using namespace stsguard;

namespace {

struct Decoded {
    std::vector<std::string> items;
    NetstringError error = NetstringError::none;
    std::size_t error_at = 0;  // total bytes consumed when the error was reported
};

// The two ways to decode: feed() + take(), and next() (the server's
// zero-copy read loop).
enum class Api { feed, next };

// Decodes `input` read by read, as a server does: each piece of `chunk`
// bytes (0: all at once) is decoded until it is used up.
Decoded decode(const std::string& input, std::size_t max, std::size_t chunk = 0, Api api = Api::feed) {
    NetstringDecoder d(max);
    Decoded out;
    std::size_t pos = 0, total = 0;
    while (pos < input.size()) {
        const std::size_t n = chunk == 0 ? input.size() - pos : std::min(chunk, input.size() - pos);
        std::string_view piece(input.data() + pos, n);
        pos += n;
        while (!piece.empty()) {
            NetstringDecoder::Status status;
            std::size_t consumed = 0;
            std::string item;
            if (api == Api::feed) {
                const auto step = d.feed(piece);
                status = step.status;
                consumed = step.consumed;
                if (status == NetstringDecoder::Status::complete) item = d.take();
            } else {
                const auto frame = d.next(piece);
                status = frame.status;
                consumed = frame.consumed;
                item = frame.data;
            }
            piece.remove_prefix(consumed);
            total += consumed;
            if (status == NetstringDecoder::Status::complete) {
                out.items.push_back(std::move(item));
            } else if (status == NetstringDecoder::Status::error) {
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

Decoded decode_next(const std::string& input, std::size_t max, std::size_t chunk = 0) {
    return decode(input, max, chunk, Api::next);
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

TEST_CASE("netstring: take() hands over each netstring and keeps decoding") {
    NetstringDecoder d(100);
    const std::string input = "3:abc,0:,5:hello,";
    std::vector<std::string> got;
    std::size_t off = 0;
    while (off < input.size()) {
        const auto step = d.feed(std::string_view(input).substr(off));
        off += step.consumed;
        REQUIRE(step.status != NetstringDecoder::Status::error);
        if (step.status == NetstringDecoder::Status::complete) got.push_back(d.take());
    }
    CHECK(got == std::vector<std::string>{"abc", "", "hello"});
    CHECK(d.take().empty());  // nothing complete: empty, not the last one again
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

// --- next(): the zero-copy decode of the server's read loop ----------------

namespace {

bool inside(std::string_view part, std::string_view whole) {
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace

TEST_CASE("netstring: next() decodes and fails exactly like feed() and take()") {
    const std::vector<std::string> inputs = {
        "0:,", "5:hello,", "3:a,b,", "3:1:,,", std::string("3:\0\xff\n,", 6), "1:a,0:,2:bc,",
        "10:0123456789,", "11:postfix a,",  // exactly the limit; one over
        "a:", " 5:hello,", "5 :hello,", "-1:", "+1:a,", "1x:a,", ":", "05:hello,", "00:,", "0:x",
        "20:", "100:", "5:hello;", "5:hello!,", "1:a,2:bcd", "1:a,05:", "2:ab,x", "9999999999999999999999:"};
    for (const auto& in : inputs) {
        CAPTURE(in);
        for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{5}}) {
            CAPTURE(chunk);
            const auto want = decode(in, 10, chunk);
            const auto got = decode_next(in, 10, chunk);
            CHECK(got.items == want.items);
            CHECK(got.error == want.error);
            CHECK(got.error_at == want.error_at);
        }
    }
}

TEST_CASE("netstring: a netstring split across two reads at every byte offset still decodes") {
    // Pipelined requests, the second split at every offset: the first is
    // decoded in place, the rest continues in the decoder across the reads.
    const std::string input = "1:a,27:postfix d0000000.bench.test,0:,3:xyz,";
    const std::vector<std::string> want = {"a", "postfix d0000000.bench.test", "", "xyz"};
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
        CAPTURE(cut);
        NetstringDecoder d(4096);
        std::vector<std::string> got;
        for (std::string_view piece : {std::string_view(input).substr(0, cut),
                                       std::string_view(input).substr(cut)}) {
            while (!piece.empty()) {
                const auto frame = d.next(piece);
                REQUIRE(frame.status != NetstringDecoder::Status::error);
                if (frame.status == NetstringDecoder::Status::complete)
                    got.emplace_back(frame.data);
                piece.remove_prefix(frame.consumed);
            }
        }
        CHECK(got == want);
        CHECK_FALSE(d.partial());
    }
}

TEST_CASE("netstring: next() hands out a whole netstring where it lies, a split one from its buffer") {
    NetstringDecoder d(100);
    const std::string first = "5:hello,3:ab";
    auto frame = d.next(first);
    REQUIRE(frame.status == NetstringDecoder::Status::complete);
    CHECK(frame.consumed == 8);
    CHECK(frame.data == "hello");
    CHECK(inside(frame.data, first));  // no copy
    frame = d.next(std::string_view(first).substr(8));
    CHECK(frame.status == NetstringDecoder::Status::need_more);
    CHECK(frame.consumed == 4);
    CHECK(d.partial());
    const std::string second = "c,";
    frame = d.next(second);
    REQUIRE(frame.status == NetstringDecoder::Status::complete);
    CHECK(frame.data == "abc");
    CHECK_FALSE(inside(frame.data, second));  // assembled in the decoder
    CHECK_FALSE(d.partial());
    // Back to the in-place path for the next one, with offsets counted on.
    frame = d.next("2:de,x");
    CHECK(frame.data == "de");
    frame = d.next("x");
    CHECK(frame.status == NetstringDecoder::Status::error);
    CHECK(d.error_message().find("offset 19") != std::string::npos);
}

TEST_CASE("netstring: next() with a limit near SIZE_MAX decodes without overflow") {
    NetstringDecoder big(SIZE_MAX);
    auto frame = big.next("3:abc,");
    CHECK(frame.status == NetstringDecoder::Status::complete);
    CHECK(frame.data == "abc");
    frame = big.next("99999999999999999999999999:");
    CHECK(frame.status == NetstringDecoder::Status::error);
    CHECK(frame.consumed == 20);
    CHECK(big.error() == NetstringError::length_over_limit);

    NetstringDecoder zero(0);
    CHECK(zero.next("0:,").data.empty());
    CHECK(zero.next("1:a,").status == NetstringDecoder::Status::error);
}

TEST_CASE("netstring: netstring_write() writes in place what netstring_append() appends") {
    const std::vector<std::pair<std::string, std::string>> parts = {
        {"", ""}, {"OK ", ""}, {"", "tail"}, {"NOTFOUND ", ""}, {"OK ", std::string(100000, 'x')},
        {std::string("a\0", 2), std::string("\0b", 2)}};
    for (const auto& [head, tail] : parts) {
        std::string buf(head.size() + tail.size() + kNetstringMaxOverhead, '#');
        char* const end = netstring_write(buf.data(), head, tail);
        std::string want;
        netstring_append(want, head, tail);
        CHECK(std::string(buf.data(), end) == want);
        CHECK(want == netstring_encode(head + tail));
    }
    // The longest length prefix fits the stated overhead.
    CHECK(std::to_string(SIZE_MAX).size() + 2 == kNetstringMaxOverhead);
}

TEST_CASE("netstring: next() first hands out a netstring feed() completed and take() never took") {
    NetstringDecoder d(100);
    CHECK(d.feed("2:ab,1:c,").consumed == 5);
    auto frame = d.next("1:c,");
    CHECK(frame.status == NetstringDecoder::Status::complete);
    CHECK(frame.consumed == 0);
    CHECK(frame.data == "ab");
    frame = d.next("1:c,");
    CHECK(frame.consumed == 4);
    CHECK(frame.data == "c");
}
