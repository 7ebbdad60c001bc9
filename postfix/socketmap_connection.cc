#include "postfix/socketmap_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <string_view>
#include <utility>

namespace stsguard {

namespace {

constexpr std::size_t kReadChunk = 16384;

std::string peer_name(int fd, std::uint64_t id) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    std::string s = "conn#" + std::to_string(id);
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return s;
    char host[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET) {
        const auto* sa = reinterpret_cast<const sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &sa->sin_addr, host, sizeof host);
        return s + " " + host + ":" + std::to_string(ntohs(sa->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        const auto* sa = reinterpret_cast<const sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &sa->sin6_addr, host, sizeof host);
        return s + " [" + host + "]:" + std::to_string(ntohs(sa->sin6_port));
    }
    return s + " unix";
}

}  // namespace

// Shared by every copy of one request's ReplyFn.  Enforces "exactly
// once": a second call is ignored, and if the last copy dies uncalled the
// client still gets an answer.  Holds only a weak reference to the
// connection and a poster that survives the loop, so it is safe from any
// thread at any time.
struct SocketmapServer::ReplyState {
    LoopPoster poster;
    std::weak_ptr<SocketmapServer::Connection> conn;
    std::uint64_t seq = 0;
    std::shared_ptr<SocketmapHandler> handler;  // keeps a replaced handler alive
    std::atomic<bool> called{false};

    ReplyState(LoopPoster p, std::weak_ptr<SocketmapServer::Connection> c, std::uint64_t s,
               std::shared_ptr<SocketmapHandler> h)
        : poster(std::move(p)), conn(std::move(c)), seq(s), handler(std::move(h)) {}

    ~ReplyState() {
        if (called.load()) return;
        try {
            deliver(
                SocketmapReply::temp("stsguard: internal error: lookup ended without an answer"),
                true);
        } catch (...) {
            // Out of memory in a destructor: the client times out instead.
        }
    }

    void call(SocketmapReply reply) {
        if (called.exchange(true)) {
            run_on_loop(
                [](SocketmapServer::Connection& c) { c.note_misuse("done() called twice"); });
            return;
        }
        deliver(std::move(reply), false);
    }

    void deliver(SocketmapReply reply, bool misuse) {
        const std::uint64_t s = seq;
        run_on_loop([s, r = std::move(reply), misuse](SocketmapServer::Connection& c) {
            c.complete(s, r, misuse);
        });
    }

    template <typename F>
    void run_on_loop(F&& f) {
        if (poster.in_loop_thread()) {
            if (auto c = conn.lock()) f(*c);
            return;
        }
        // Off the loop thread the weak_ptr is only locked on the loop, so the
        // connection is never destroyed on a worker thread.
        poster.post([w = conn, f = std::forward<F>(f)]() mutable {
            if (auto c = w.lock()) f(*c);
        });
    }
};

SocketmapServer::Connection::Connection(SocketmapServer& server, std::uint64_t id, int fd)
    : server_(server),
      id_(id),
      fd_(fd),
      peer_(peer_name(fd, id)),
      decoder_(server.limits_.max_request_bytes),
      last_activity_(server.loop_.now()) {}

void SocketmapServer::Connection::apply_limits() {
    decoder_.set_max_length(server_.limits_.max_request_bytes);
    flush();  // a larger max_pipelined may unblock buffered requests
}

bool SocketmapServer::Connection::start() {
    std::weak_ptr<Connection> w = weak_from_this();
    watch_ = server_.loop_.watch(fd_, IoInterest::read, [w](IoEvents ev) {
        if (auto c = w.lock()) c->on_io(ev);
    });
    if (watch_ == EventLoop::kNoWatch) return false;
    arm_idle_timer(server_.loop_.now() + server_.limits_.idle_timeout);
    return true;
}

void SocketmapServer::Connection::shutdown() {
    if (closed_) return;
    closed_ = true;
    if (watch_ != EventLoop::kNoWatch) server_.loop_.unwatch(watch_);
    if (idle_timer_ != 0) server_.loop_.cancel(idle_timer_);
    watch_ = EventLoop::kNoWatch;
    idle_timer_ = 0;
    ::close(fd_);
    fd_ = -1;
    server_.counters_.replies_dropped += pending_.size();
    pending_.clear();
    inbuf_.clear();
    outbuf_.clear();
}

void SocketmapServer::Connection::arm_idle_timer(EventLoop::time_point when) {
    std::weak_ptr<Connection> w = weak_from_this();
    idle_timer_ = server_.loop_.run_at(when, [w] {
        if (auto c = w.lock()) c->on_idle_timer();
    });
}

void SocketmapServer::Connection::on_idle_timer() {
    idle_timer_ = 0;
    if (closed_) return;
    auto self = shared_from_this();
    const auto idle = server_.limits_.idle_timeout;
    const auto now = server_.loop_.now();
    if (now < last_activity_ + idle) {
        arm_idle_timer(last_activity_ + idle);
        return;
    }
    const bool awaiting_handler = !pending_.empty() && !pending_.front().ready;
    if (awaiting_handler && unsent() == 0) {
        // We are the slow side, not the client.
        arm_idle_timer(now + idle);
        return;
    }
    ++server_.counters_.idle_closed;
    if (unsent() > 0)
        server_.log(LogLevel::info, peer_ + ": closed: client read no reply for " +
                                        std::to_string(idle.count()) + " ms");
    else if (decoder_.partial())
        server_.log(LogLevel::info, peer_ + ": closed: incomplete request idle for " +
                                        std::to_string(idle.count()) + " ms");
    else
        server_.log(LogLevel::debug, peer_ + ": closed: idle");
    close_now();
}

// Lifetime: every way into a connection holds a shared_ptr to it for the
// whole call (the watch and timer callbacks lock their weak_ptr, reply
// states lock theirs, the server walks a copied list), so close_now(),
// which drops the server's reference, cannot free *this under a running
// member function.  The hot path takes no reference of its own.
void SocketmapServer::Connection::on_io(IoEvents ev) {
    if (closed_) return;
    if (ev.error || ev.hangup) {
        // Both directions are gone: nothing we send can arrive.
        server_.log(LogLevel::debug, peer_ + ": closed by client");
        close_now();
        return;
    }
    if (ev.readable || ev.peer_closed) read_some();
    if (!closed_ && ev.writable) flush();
}

bool SocketmapServer::Connection::wants_read() const {
    return !closed_ && !read_eof_ && !draining_ && in_off_ == inbuf_.size() &&
           pending_.size() < server_.limits_.max_pipelined;
}

void SocketmapServer::Connection::update_interest() {
    if (closed_) return;
    unsigned bits = 0;
    if (wants_read()) bits |= static_cast<unsigned>(IoInterest::read);
    if (unsent() > 0) bits |= static_cast<unsigned>(IoInterest::write);
    const auto want = static_cast<IoInterest>(bits);
    if (want != interest_ && server_.loop_.set_interest(watch_, want)) interest_ = want;
}

void SocketmapServer::Connection::read_some() {
    if (!wants_read()) return;
    char buf[kReadChunk];
    ssize_t n;
    do {
        n = ::recv(fd_, buf, sizeof buf, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        server_.log(LogLevel::debug, peer_ + ": read error: " + std::strerror(errno));
        close_now();
        return;
    }
    if (n == 0) {
        read_eof_ = true;
        if (decoder_.partial())
            server_.log_rate_limited("half-request", LogLevel::info,
                                     peer_ + ": client closed in the middle of a request");
        flush();  // answers what is owed, then closes
        return;
    }
    inbuf_.append(buf, static_cast<std::size_t>(n));
    process_input();
}

void SocketmapServer::Connection::process_input() {
    in_dispatch_ = true;
    while (!closed_ && !draining_ && in_off_ < inbuf_.size()) {
        if (pending_.size() >= server_.limits_.max_pipelined) {
            // Synchronous answers free their slots at once; writing them now
            // keeps the output buffer (and its cap check) honest.
            move_ready_replies();
            write_out();
            if (closed_ || pending_.size() >= server_.limits_.max_pipelined) break;
        }
        const auto step = decoder_.feed(std::string_view(inbuf_).substr(in_off_));
        in_off_ += step.consumed;
        if (step.status == NetstringDecoder::Status::error) {
            ++server_.counters_.protocol_errors;
            server_.log_rate_limited(
                "protocol", LogLevel::warning,
                peer_ + ": closed: bad request: " + decoder_.error_message() +
                    (decoder_.error() == NetstringError::length_over_limit ? " (max_request_bytes)"
                                                                           : ""));
            in_dispatch_ = false;
            close_now();
            return;
        }
        if (step.status == NetstringDecoder::Status::complete) {
            decoder_.take_into(request_);
            dispatch(request_);
        }
    }
    in_dispatch_ = false;
    if (closed_) return;
    if (in_off_ == inbuf_.size()) {
        inbuf_.clear();
        in_off_ = 0;
    }
    flush();
}

void SocketmapServer::Connection::dispatch(const std::string& data) {
    const std::uint64_t seq = next_seq_++;
    pending_.push_back(Slot{});
    last_activity_ = server_.loop_.now();

    const auto space = data.find(' ');
    const char* invalid = nullptr;
    if (space == std::string::npos)
        invalid = "no space between map name and key";
    else if (space == 0)
        invalid = "empty map name";
    else if (data.find('\0') != std::string::npos)
        invalid = "NUL byte in request";
    if (invalid != nullptr) {
        ++server_.counters_.invalid_requests;
        server_.log_rate_limited("invalid", LogLevel::warning,
                                 peer_ + ": invalid socketmap request: " + invalid);
        complete(seq, SocketmapReply::perm(std::string("invalid request: ") + invalid), false);
        return;
    }

    auto handler = server_.handler_;
    if (!handler) {
        complete(seq, SocketmapReply::temp("stsguard: not ready: no handler"), false);
        return;
    }
    // Assigned, not built: the strings keep their storage between requests.
    SocketmapRequest& req = req_;
    req.map_name.assign(data, 0, space);
    req.key.assign(data, space + 1);
    ++server_.counters_.requests;
    std::shared_ptr<ReplyState> state;
    try {
        // A member, so that its text keeps its storage between requests.
        SocketmapReply& now = now_;
        if (handler->answer_now(req, now) == SocketmapHandler::Answered::now) {
            complete(seq, now, false);
            return;
        }
        state = std::make_shared<ReplyState>(server_.loop_.poster(), weak_from_this(), seq, handler);
        handler->handle(req, [state](SocketmapReply r) { state->call(std::move(r)); });
    } catch (const std::exception& e) {
        server_.log(LogLevel::error, peer_ + ": handler threw: " + e.what());
        fail_request(seq, state);
    } catch (...) {
        server_.log(LogLevel::error, peer_ + ": handler threw a non-standard exception");
        fail_request(seq, state);
    }
}

void SocketmapServer::Connection::fail_request(std::uint64_t seq, const std::shared_ptr<ReplyState>& state) {
    const SocketmapReply r = SocketmapReply::temp("stsguard: internal error");
    if (state)
        state->call(r);  // ignored if the handler answered before it threw
    else
        complete(seq, r, false);
}

void SocketmapServer::Connection::note_misuse(const char* what) {
    ++server_.counters_.handler_misuse;
    server_.log_rate_limited("misuse", LogLevel::error, peer_ + ": handler bug: " + what);
}

void SocketmapServer::Connection::complete(std::uint64_t seq, const SocketmapReply& reply,
                                           bool misuse) {
    if (closed_) return;  // counted in replies_dropped when it closed
    if (seq < front_seq() || seq - front_seq() >= pending_.size()) return;
    Slot& slot = pending_[seq - front_seq()];
    if (slot.ready) return;
    if (misuse) note_misuse("reply function destroyed without being called");
    // First in line (every synchronous answer): framed straight into the
    // output buffer, which keeps its storage, instead of into the slot.
    const bool first = seq == front_seq();
    std::string& wire = first ? outbuf_ : slot.wire;
    const std::size_t size = encoded_reply_size(reply);
    const char* bad = nullptr;
    if (size > server_.limits_.max_reply_bytes)
        bad = "longer than max_reply_bytes";
    else if (reply_wire_text(reply).find('\0') != std::string_view::npos)
        bad = "contains a NUL byte";
    if (bad != nullptr) {
        ++server_.counters_.bad_replies;
        server_.log_rate_limited("bad-reply", LogLevel::error,
                                 peer_ + ": handler reply of " + std::to_string(size) + " bytes " + bad +
                                     "; answering TEMP");
        append_reply_netstring(
            wire, SocketmapReply::temp(std::string("stsguard: internal error: reply ") + bad));
    } else {
        append_reply_netstring(wire, reply);
    }
    if (first) {
        pending_.pop_front();
        ++server_.counters_.replies;
        if (!in_dispatch_) last_activity_ = server_.loop_.now();  // dispatch() has just set it
    } else {
        slot.ready = true;
    }
    if (!in_dispatch_) flush();
}

void SocketmapServer::Connection::move_ready_replies() {
    while (!pending_.empty() && pending_.front().ready) {
        if (outbuf_.empty()) {
            outbuf_ = std::move(pending_.front().wire);
            out_off_ = 0;
        } else {
            outbuf_ += pending_.front().wire;
        }
        pending_.pop_front();
        ++server_.counters_.replies;
        last_activity_ = server_.loop_.now();
    }
}

void SocketmapServer::Connection::flush() {
    if (closed_) return;
    move_ready_replies();
    write_out();
    if (closed_) return;
    // Requests left in inbuf_ while the pipeline was full can go now.
    if (!draining_ && in_off_ < inbuf_.size() && pending_.size() < server_.limits_.max_pipelined)
        process_input();
}

void SocketmapServer::Connection::write_out() {
    while (out_off_ < outbuf_.size()) {
        const ssize_t n =
            ::send(fd_, outbuf_.data() + out_off_, outbuf_.size() - out_off_, MSG_NOSIGNAL);
        if (n > 0) {
            out_off_ += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        server_.log(LogLevel::debug, peer_ + ": write error: " + std::strerror(errno));
        close_now();
        return;
    }
    if (out_off_ == outbuf_.size()) {
        outbuf_.clear();
        out_off_ = 0;
    } else if (out_off_ >= 65536 && out_off_ * 2 >= outbuf_.size()) {
        outbuf_.erase(0, out_off_);
        out_off_ = 0;
    }
    if (unsent() > server_.limits_.max_unsent_bytes) {
        ++server_.counters_.write_overflow_closed;
        server_.log_rate_limited("overflow", LogLevel::warning,
                                 peer_ + ": closed: client does not read its replies (" +
                                     std::to_string(unsent()) + " bytes unsent)");
        close_now();
        return;
    }
    if ((read_eof_ || draining_) && pending_.empty() && unsent() == 0 &&
        (draining_ || in_off_ == inbuf_.size())) {
        close_now();
        return;
    }
    update_interest();
}

void SocketmapServer::Connection::begin_drain() {
    if (closed_) return;
    auto self = shared_from_this();
    draining_ = true;
    // Decoded requests are answered; a half-received one is abandoned.
    flush();
}

}  // namespace stsguard
