// socketmap_send_buffer.cc - see socketmap_send_buffer.h.
#include "postfix/socketmap_send_buffer.h"

#include <algorithm>
#include <cstring>

namespace stsguard {

void SendBuffer::consume(std::size_t n) {
    head_ += n;
    if (head_ != tail_) return;
    head_ = tail_ = 0;
    if (cap_ > kKeepBytes) clear();  // a backlog's storage is not kept for 100-byte replies
}

void SendBuffer::append(std::string_view bytes) {
    if (bytes.empty()) return;
    std::memcpy(room(bytes.size()), bytes.data(), bytes.size());
    tail_ += bytes.size();
}

void SendBuffer::clear() {
    buf_.reset();
    cap_ = head_ = tail_ = 0;
}

char* SendBuffer::make_room(std::size_t n) {
    const std::size_t used = size();
    if (head_ >= used && cap_ - used >= n) {
        // Enough space once the sent bytes are dropped from the front, and
        // no more to move than was sent: moving stays linear in the bytes
        // sent even for a client that reads a little at a time.
        std::memmove(buf_.get(), buf_.get() + head_, used);
    } else {
        const std::size_t cap = std::max({cap_ * 2, used + n, std::size_t{1024}});
        auto bigger = std::make_unique_for_overwrite<char[]>(cap);
        if (used > 0) std::memcpy(bigger.get(), buf_.get() + head_, used);
        buf_ = std::move(bigger);
        cap_ = cap;
    }
    head_ = 0;
    tail_ = used;
    return buf_.get() + tail_;
}

}  // namespace stsguard
