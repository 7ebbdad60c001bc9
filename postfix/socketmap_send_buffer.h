// socketmap_send_buffer.h - the reply bytes one socketmap connection owes
// its client: framed in place at the back, sent from the front.
//
// Why not std::string: a reply is written into it without zero-filling
// or appending piece by piece (once per cache hit, issue 7).
// Failures: none (allocation failure throws, as for any container).
// Limits: storage over kKeepBytes (a client that fell behind) is released
// once everything has been sent; the connection caps what may be owed
// (max_unsent_bytes).  Moving unsent bytes to the front happens only when
// at least as much has been sent as is owed, so a client that reads a
// little at a time costs linear, not quadratic, copying.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "postfix/netstring.h"

namespace stsguard {

// Reply bytes owed to a client, in order: framed in place at the back,
// sent from the front.  Unlike std::string, it is written into without
// zero-filling or appending piece by piece.  Keeps its storage between
// replies, except that storage over kKeepBytes (a client that fell
// behind) is released once everything has been sent.
class SendBuffer {
public:
    static constexpr std::size_t kKeepBytes = 64 * 1024;

    bool empty() const { return head_ == tail_; }
    std::size_t size() const { return tail_ - head_; }
    const char* data() const { return buf_.get() + head_; }
    std::size_t capacity() const { return cap_; }

    // `n` bytes from the front were sent.
    void consume(std::size_t n);
    // Bytes already framed (a reply that waited in its slot).
    void append(std::string_view bytes);
    // The netstring of head + tail (a reply's status word and text).
    // Inline: once per reply on the server's hot path.
    void append_netstring(std::string_view head, std::string_view tail) {
        char* const at = room(head.size() + tail.size() + kNetstringMaxOverhead);
        tail_ += static_cast<std::size_t>(netstring_write(at, head, tail) - at);
    }
    // Drops everything and the storage.
    void clear();

private:
    // Room for `n` more bytes at the back (tail_), moving or growing the storage.
    char* room(std::size_t n) { return cap_ - tail_ >= n ? buf_.get() + tail_ : make_room(n); }
    char* make_room(std::size_t n);

    std::unique_ptr<char[]> buf_;
    std::size_t cap_ = 0;
    std::size_t head_ = 0;  // first unsent byte
    std::size_t tail_ = 0;  // end of the framed bytes
};

}  // namespace stsguard
