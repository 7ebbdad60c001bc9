#include "postfix/netstring.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>
#include <utility>

namespace stsguard {

const char* netstring_error_name(NetstringError e) {
    switch (e) {
        case NetstringError::none:
            return "none";
        case NetstringError::bad_length_char:
            return "bad-length-char";
        case NetstringError::missing_length:
            return "missing-length";
        case NetstringError::leading_zero:
            return "leading-zero";
        case NetstringError::length_over_limit:
            return "length-over-limit";
        case NetstringError::missing_terminator:
            return "missing-terminator";
    }
    return "unknown";
}

bool NetstringDecoder::partial() const {
    return state_ == State::length || state_ == State::data || state_ == State::terminator;
}

NetstringDecoder::Step NetstringDecoder::fail(NetstringError e, unsigned char byte,
                                              std::size_t consumed) {
    state_ = State::failed;
    error_ = e;
    bad_byte_ = byte;
    error_offset_ = offset_ + consumed - 1;
    offset_ += consumed;
    data_.clear();
    data_.shrink_to_fit();
    return {Status::error, consumed};
}

NetstringDecoder::Step NetstringDecoder::feed(std::string_view input) {
    std::size_t i = 0;
    while (i < input.size()) {
        switch (state_) {
            case State::failed:
                return {Status::error, 0};
            case State::done:
                offset_ += i;
                return {Status::complete, i};
            case State::length_first: {
                const auto c = static_cast<unsigned char>(input[i++]);
                if (c == ':') return fail(NetstringError::missing_length, c, i);
                if (c < '0' || c > '9') return fail(NetstringError::bad_length_char, c, i);
                length_ = static_cast<std::size_t>(c - '0');
                if (length_ > max_length_) return fail(NetstringError::length_over_limit, c, i);
                state_ = State::length;
                break;
            }
            case State::length: {
                const auto c = static_cast<unsigned char>(input[i++]);
                if (c == ':') {
                    data_.clear();
                    data_.reserve(length_);
                    state_ = length_ == 0 ? State::terminator : State::data;
                    break;
                }
                if (c < '0' || c > '9') return fail(NetstringError::bad_length_char, c, i);
                if (length_ == 0) return fail(NetstringError::leading_zero, c, i);
                const auto digit = static_cast<std::size_t>(c - '0');
                // Checked before adding, so the length never overflows.
                if (length_ > max_length_ / 10)
                    return fail(NetstringError::length_over_limit, c, i);
                const std::size_t next = length_ * 10;  // <= max_length_
                if (digit > max_length_ - next)
                    return fail(NetstringError::length_over_limit, c, i);
                length_ = next + digit;
                break;
            }
            case State::data: {
                const std::size_t want = length_ - data_.size();
                const std::size_t n = std::min(want, input.size() - i);
                data_.append(input.substr(i, n));
                i += n;
                if (data_.size() == length_) state_ = State::terminator;
                break;
            }
            case State::terminator: {
                const auto c = static_cast<unsigned char>(input[i++]);
                if (c != ',') return fail(NetstringError::missing_terminator, c, i);
                state_ = State::done;
                break;
            }
        }
    }
    offset_ += i;
    if (state_ == State::done) return {Status::complete, i};
    if (state_ == State::failed) return {Status::error, i};
    return {Status::need_more, i};
}

// Lengths up to this bound cannot overflow while being parsed digit by
// digit (len * 10 + 9 fits), so the fast path checks the limit only once
// per digit; a larger max_length_ leaves everything to feed().
constexpr std::size_t kFastPathMaxLength = (std::numeric_limits<std::size_t>::max() - 9) / 10;

bool NetstringDecoder::whole_at_front(std::string_view input, Frame& out) {
    if (max_length_ > kFastPathMaxLength) return false;
    const std::size_t size = input.size();
    std::size_t i = 0;
    std::size_t length = 0;
    for (; i < size; ++i) {
        const unsigned digit = static_cast<unsigned char>(input[i]) - unsigned{'0'};
        if (digit > 9) break;
        length = length * 10 + digit;
        if (length > max_length_) return false;
    }
    // No digit, a leading zero, no ':' yet, or not all of DATA and its ','
    // here: feed() decodes it incrementally or reports the error exactly.
    if (i == 0 || (i > 1 && input[0] == '0')) return false;
    if (i == size || input[i] != ':') return false;
    const std::size_t data = i + 1;
    if (size - data <= length || input[data + length] != ',') return false;
    out.status = Status::complete;
    out.consumed = data + length + 1;
    out.data = std::string_view(input.data() + data, length);
    offset_ += out.consumed;
    return true;
}

NetstringDecoder::Frame NetstringDecoder::next(std::string_view input) {
    Frame out;
    // The common case: nothing in progress and the whole netstring read at
    // once, so DATA is handed out where it lies instead of being copied.
    if (state_ == State::length_first && whole_at_front(input, out)) return out;
    const Step step = feed(input);
    out.status = step.status;
    out.consumed = step.consumed;
    if (step.status == Status::complete) {
        // Taken at once; data_ keeps the bytes (and its storage) until the
        // next netstring's ':' reuses it.
        out.data = data_;
        length_ = 0;
        state_ = State::length_first;
    }
    return out;
}

std::string NetstringDecoder::take() {
    std::string out;
    if (state_ != State::done) return out;
    out.swap(data_);
    data_.clear();
    length_ = 0;
    state_ = State::length_first;
    return out;
}

std::string NetstringDecoder::error_message() const {
    char byte[16];
    if (bad_byte_ >= 0x21 && bad_byte_ < 0x7f)
        std::snprintf(byte, sizeof byte, "'%c'", bad_byte_);
    else
        std::snprintf(byte, sizeof byte, "0x%02x", bad_byte_);
    const std::string at =
        std::string(" (byte ") + byte + " at offset " + std::to_string(error_offset_) + ")";
    switch (error_) {
        case NetstringError::none:
            return "no error";
        case NetstringError::bad_length_char:
            return "netstring length: expected a decimal digit or ':'" + at;
        case NetstringError::missing_length:
            return "netstring length: ':' without a length before it" + at;
        case NetstringError::leading_zero:
            return "netstring length: leading zero" + at;
        case NetstringError::length_over_limit:
            return "netstring length: over the limit of " + std::to_string(max_length_) + " bytes" +
                   at;
        case NetstringError::missing_terminator:
            return "netstring: expected ',' after " + std::to_string(length_) + " bytes of data" +
                   at;
    }
    return "unknown netstring error";
}

void NetstringDecoder::reset() {
    state_ = State::length_first;
    length_ = 0;
    data_.clear();
    offset_ = 0;
    error_ = NetstringError::none;
    bad_byte_ = 0;
    error_offset_ = 0;
}

void netstring_append(std::string& out, std::string_view data) { netstring_append(out, data, {}); }

void netstring_append(std::string& out, std::string_view head, std::string_view tail) {
    // to_chars into the stack: std::to_string builds a string per reply.
    char len[24];
    const auto r = std::to_chars(len, len + sizeof len - 1, head.size() + tail.size());
    *r.ptr = ':';
    out.append(len, static_cast<std::size_t>(r.ptr + 1 - len));
    out.append(head);
    out.append(tail);
    out += ',';
}

std::string netstring_encode(std::string_view data) {
    std::string out;
    out.reserve(data.size() + 24);
    netstring_append(out, data);
    return out;
}

}  // namespace stsguard
