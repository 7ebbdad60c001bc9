#include "postfix/socketmap_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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
    // The callback owns a reference (released by unwatch() in shutdown()),
    // and the loop keeps the callback alive while it runs: so on_io() needs
    // no weak_ptr lock, an atomic round trip, per event.
    watch_ = server_.loop_.watch(fd_, IoInterest::read,
                                 [self = shared_from_this()](IoEvents ev) { self->on_io(ev); });
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
    out_.clear();
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
    if (awaiting_handler && out_.empty()) {
        // We are the slow side, not the client.
        arm_idle_timer(now + idle);
        return;
    }
    ++server_.counters_.idle_closed;
    if (!out_.empty())
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
// whole call (the watch callback owns one, timer callbacks and reply
// states lock their weak_ptr, the server walks a copied list), so
// close_now(), which drops the server's reference, cannot free *this under
// a running member function.  The hot path takes no reference of its own.
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
    return !closed_ && !read_eof_ && !draining_ && in_off_ == inbuf_.size() && !pipeline_full();
}

void SocketmapServer::Connection::update_interest() {
    if (closed_) return;
    unsigned bits = 0;
    if (wants_read()) bits |= static_cast<unsigned>(IoInterest::read);
    if (!out_.empty()) bits |= static_cast<unsigned>(IoInterest::write);
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
    // Decoded where it lies: a whole request is never copied before the
    // handler sees it.  inbuf_ is empty here (wants_read() said so).
    const std::string_view input(buf, static_cast<std::size_t>(n));
    const std::size_t used = decode_requests(input);
    if (closed_) return;
    if (used < input.size()) {
        // Paused: the rest waits in inbuf_ until replies free the pipeline.
        inbuf_.assign(input.substr(used));
        in_off_ = 0;
    }
    flush();
}

void SocketmapServer::Connection::resume_input() {
    in_off_ += decode_requests(std::string_view(inbuf_).substr(in_off_));
    if (closed_) return;
    if (in_off_ == inbuf_.size()) {
        inbuf_.clear();
        in_off_ = 0;
    }
    flush();
}

std::size_t SocketmapServer::Connection::decode_requests(std::string_view input) {
    std::size_t used = 0;
    in_dispatch_ = true;
    while (!closed_ && !draining_ && used < input.size()) {
        if (pipeline_full()) {
            // Replies ready behind the front are written now: that keeps the
            // output buffer (and its cap check) honest, and may free slots.
            move_ready_replies();
            write_out();
            if (closed_ || pipeline_full()) break;
        }
        const auto frame = decoder_.next(input.substr(used));
        used += frame.consumed;
        if (frame.status == NetstringDecoder::Status::error) {
            ++server_.counters_.protocol_errors;
            server_.log_rate_limited(
                "protocol", LogLevel::warning,
                peer_ + ": closed: bad request: " + decoder_.error_message() +
                    (decoder_.error() == NetstringError::length_over_limit ? " (max_request_bytes)"
                                                                           : ""));
            in_dispatch_ = false;
            close_now();
            return used;
        }
        if (frame.status == NetstringDecoder::Status::complete) dispatch(frame.data);
    }
    in_dispatch_ = false;
    return used;
}

void SocketmapServer::Connection::dispatch(std::string_view data) {
    last_activity_ = server_.loop_.now();

    const auto space = data.find(' ');
    const char* invalid = nullptr;
    if (space == std::string_view::npos)
        invalid = "no space between map name and key";
    else if (space == 0)
        invalid = "empty map name";
    else if (data.find('\0') != std::string_view::npos)
        invalid = "NUL byte in request";
    if (invalid != nullptr) {
        ++server_.counters_.invalid_requests;
        server_.log_rate_limited("invalid", LogLevel::warning,
                                 peer_ + ": invalid socketmap request: " + invalid);
        reply_in_line(SocketmapReply::perm(std::string("invalid request: ") + invalid));
        return;
    }

    // No reference taken: the server's keeps the handler alive for the
    // call (set_handler() is never called from inside one).
    SocketmapHandler* const handler = server_.handler_.get();
    if (handler == nullptr) {
        reply_in_line(SocketmapReply::temp("stsguard: not ready: no handler"));
        return;
    }
    // Assigned, not built: the strings keep their storage between requests.
    // A connection's map name rarely changes (Postfix shares one per
    // socketmap endpoint among few maps): comparing is cheaper than copying.
    const std::string_view map_name = data.substr(0, space);
    if (req_.map_name != map_name) req_.map_name.assign(map_name);
    req_.key.assign(data.data() + space + 1, data.size() - space - 1);
    ++server_.counters_.requests;

    // The fast path answers into now_, which keeps its text's storage too.
    auto answered = SocketmapHandler::Answered::later;
    try {
        answered = handler->answer_now(req_, now_);
    } catch (const std::exception& e) {
        server_.log(LogLevel::error, peer_ + ": handler threw: " + e.what());
        reply_in_line(SocketmapReply::temp("stsguard: internal error"));
        return;
    } catch (...) {
        server_.log(LogLevel::error, peer_ + ": handler threw a non-standard exception");
        reply_in_line(SocketmapReply::temp("stsguard: internal error"));
        return;
    }
    if (answered == SocketmapHandler::Answered::now)
        reply_in_line(now_);
    else
        dispatch_later(*handler);
}

void SocketmapServer::Connection::dispatch_later(SocketmapHandler& handler) {
    // The request takes its place in line before handle() runs: done() may
    // be called from inside it, or from another thread at any time.
    const std::uint64_t seq = next_seq_++;
    pending_.emplace_back();
    std::shared_ptr<ReplyState> state;
    try {
        state = std::make_shared<ReplyState>(server_.loop_.poster(), weak_from_this(), seq,
                                             server_.handler_);
        handler.handle(req_, [state](SocketmapReply r) { state->call(std::move(r)); });
    } catch (const std::exception& e) {
        server_.log(LogLevel::error, peer_ + ": handler threw: " + e.what());
        fail_request(seq, state);
    } catch (...) {
        server_.log(LogLevel::error, peer_ + ": handler threw a non-standard exception");
        fail_request(seq, state);
    }
}

void SocketmapServer::Connection::reply_in_line(const SocketmapReply& reply) {
    const ReplyWire wire = checked_wire(reply);
    ++next_seq_;  // the request's place in line, taken and filled at once
    if (pending_.empty()) {
        // Nothing owed ahead (every cache hit): framed straight into the
        // send buffer, no slot.
        out_.append_netstring(wire.word, wire.text);
        ++server_.counters_.replies;
        return;
    }
    Slot& slot = pending_.emplace_back();
    netstring_append(slot.wire, wire.word, wire.text);
    slot.ready = true;
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

ReplyWire SocketmapServer::Connection::checked_wire(const SocketmapReply& reply) {
    const ReplyWire wire = reply_wire(reply);
    // The replacements are string literals: the views outlive this call.
    if (wire.size() > server_.limits_.max_reply_bytes) [[unlikely]]
        return replace_bad_reply(wire, "longer than max_reply_bytes",
                                 "stsguard: internal error: reply longer than max_reply_bytes");
    if (wire.text.find('\0') != std::string_view::npos) [[unlikely]]
        return replace_bad_reply(wire, "contains a NUL byte",
                                 "stsguard: internal error: reply contains a NUL byte");
    return wire;
}

ReplyWire SocketmapServer::Connection::replace_bad_reply(const ReplyWire& wire, const char* bad,
                                                         std::string_view replacement) {
    ++server_.counters_.bad_replies;
    server_.log_rate_limited("bad-reply", LogLevel::error,
                             peer_ + ": handler reply of " + std::to_string(wire.size()) + " bytes " +
                                 bad + "; answering TEMP");
    return {"TEMP ", replacement};
}

void SocketmapServer::Connection::complete(std::uint64_t seq, const SocketmapReply& reply,
                                           bool misuse) {
    if (closed_) return;  // counted in replies_dropped when it closed
    if (seq < front_seq() || seq - front_seq() >= pending_.size()) return;
    Slot& slot = pending_[seq - front_seq()];
    if (slot.ready) return;
    if (misuse) note_misuse("reply function destroyed without being called");
    const ReplyWire wire = checked_wire(reply);
    if (seq == front_seq()) {
        // First in line: straight into the send buffer.
        out_.append_netstring(wire.word, wire.text);
        pending_.pop_front();
        ++server_.counters_.replies;
        if (!in_dispatch_) last_activity_ = server_.loop_.now();  // dispatch() has just set it
    } else {
        netstring_append(slot.wire, wire.word, wire.text);
        slot.ready = true;
    }
    if (!in_dispatch_) flush();
}

void SocketmapServer::Connection::move_ready_replies() {
    while (!pending_.empty() && pending_.front().ready) {
        out_.append(pending_.front().wire);
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
    if (!draining_ && in_off_ < inbuf_.size() && !pipeline_full()) resume_input();
}

void SocketmapServer::Connection::write_out() {
    while (!out_.empty()) {
        const ssize_t n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
        if (n > 0) {
            out_.consume(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        server_.log(LogLevel::debug, peer_ + ": write error: " + std::strerror(errno));
        close_now();
        return;
    }
    if (out_.size() > server_.limits_.max_unsent_bytes) {
        ++server_.counters_.write_overflow_closed;
        server_.log_rate_limited("overflow", LogLevel::warning,
                                 peer_ + ": closed: client does not read its replies (" +
                                     std::to_string(out_.size()) + " bytes unsent)");
        close_now();
        return;
    }
    if ((read_eof_ || draining_) && pending_.empty() && out_.empty() &&
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
