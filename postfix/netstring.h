// netstring.h - netstring framing (https://cr.yp.to/proto/netstrings.txt),
// the transport of the Postfix socketmap protocol (socketmap_table(5)).
//
// A netstring is LEN ":" DATA ",": LEN is the decimal byte count of DATA,
// with no sign, no white space and no leading zero ("0" alone is the
// empty netstring).  NetstringDecoder is incremental: feed it bytes as
// they arrive, in pieces of any size (one byte at a time works), and it
// hands out one complete DATA at a time, so a caller can stop decoding
// (back-pressure) with the rest of its input still unconsumed.  next()
// is the zero-copy form for a server's read loop: a netstring that lies
// whole in the input is handed out as a view into it, and only one split
// across reads is assembled in the decoder's own buffer.
//
// Failures: the first framing error is reported precisely (the byte and
// its offset in the stream) and is sticky until reset(): after a framing
// error the stream cannot be resynchronised, the connection must go.
// Limits: max_length bounds DATA; it is enforced while the length digits
// arrive, so "99999999999:" fails on the digit that crosses the limit,
// before any DATA is buffered; the length never overflows.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace stsguard {

enum class NetstringError {
    none,
    bad_length_char,     // a byte other than a digit (or ':' after a digit) in LEN
    missing_length,      // ':' with no digit before it
    leading_zero,        // "05:" (only "0:" may start with 0)
    length_over_limit,   // LEN exceeds max_length
    missing_terminator,  // the byte after DATA is not ','
};

// Stable short name, e.g. "leading-zero".
const char* netstring_error_name(NetstringError e);

class NetstringDecoder {
public:
    enum class Status { need_more, complete, error };

    struct Step {
        Status status = Status::need_more;
        std::size_t consumed = 0;  // bytes of the input used; the rest is untouched
    };

    explicit NetstringDecoder(std::size_t max_length) : max_length_(max_length) {}

    // Consumes input up to the end of the first netstring that completes
    // (status complete: take() returns it), or all of it (need_more), or
    // up to and including the offending byte (error).
    Step feed(std::string_view input);

    // The DATA of the netstring that just completed; the decoder is then
    // ready for the next one.  Until take() is called, feed() consumes
    // nothing and keeps returning complete.
    std::string take();

    // One decoded netstring, without copying it where possible.
    struct Frame {
        Status status = Status::need_more;
        std::size_t consumed = 0;  // bytes of the input used; the rest is untouched
        // When complete: the DATA.  A view into `input` when the whole
        // netstring was there, else into the decoder's buffer; valid until
        // the next call on this decoder (and while `input` lives).
        std::string_view data;
    };
    // feed() and take() in one: the first netstring that completes is
    // handed out at once (no take() needed).  Consumes the same bytes and
    // reports the same errors at the same offsets as feed(); a feed()
    // result still waiting for take() is handed out first.
    Frame next(std::string_view input);

    // True between the first byte of a netstring and its ','.
    bool partial() const;
    bool failed() const { return state_ == State::failed; }

    NetstringError error() const { return error_; }
    // Human-readable description of the error: what, which byte, where.
    std::string error_message() const;

    std::size_t max_length() const { return max_length_; }
    void set_max_length(std::size_t n) { max_length_ = n; }

    // Forgets everything, including a sticky error.
    void reset();

private:
    enum class State { length_first, length, data, terminator, done, failed };

    Step fail(NetstringError e, unsigned char byte, std::size_t consumed);
    // The netstring at the front of `input` if it is there whole and well
    // formed; otherwise nothing (not even an error), and feed() takes over.
    bool whole_at_front(std::string_view input, Frame& out);

    std::size_t max_length_;
    State state_ = State::length_first;
    std::size_t length_ = 0;
    std::string data_;
    std::uint64_t offset_ = 0;  // bytes consumed since construction/reset, for messages
    NetstringError error_ = NetstringError::none;
    unsigned char bad_byte_ = 0;
    std::uint64_t error_offset_ = 0;
};

// LEN ":" DATA ",".
std::string netstring_encode(std::string_view data);
void netstring_append(std::string& out, std::string_view data);
// The same with DATA = head + tail, framed without joining them first
// (a socketmap reply's status word and text).
void netstring_append(std::string& out, std::string_view head, std::string_view tail);

// The most a netstring adds to its DATA: 20 digits (SIZE_MAX), ':' and ','.
inline constexpr std::size_t kNetstringMaxOverhead = 22;
// Writes the netstring of head + tail at dst, which must have room for
// head.size() + tail.size() + kNetstringMaxOverhead bytes; returns the end
// of what it wrote.  For buffers written in place (no zero-filling, one
// size update).  Inline: once per reply on the server's hot path.
inline char* netstring_write(char* dst, std::string_view head, std::string_view tail) {
    char* p = std::to_chars(dst, dst + kNetstringMaxOverhead, head.size() + tail.size()).ptr;
    *p++ = ':';
    // Guarded: an empty view may have a null data(), which memcpy must not get.
    if (!head.empty()) std::memcpy(p, head.data(), head.size());
    p += head.size();
    if (!tail.empty()) std::memcpy(p, tail.data(), tail.size());
    p += tail.size();
    *p++ = ',';
    return p;
}

}  // namespace stsguard
