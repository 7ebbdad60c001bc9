#include "postfix/socketmap_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <exception>
#include <string_view>
#include <utility>

#include "postfix/netstring.h"

namespace stsguard {

std::string encode_reply(const SocketmapReply& reply) {
    switch (reply.kind) {
        case SocketmapReply::Kind::ok:
            return "OK " + reply.text;
        case SocketmapReply::Kind::notfound:
            return "NOTFOUND ";
        case SocketmapReply::Kind::temp:
            return "TEMP " + reply.text;
        case SocketmapReply::Kind::timeout:
            return "TIMEOUT " + reply.text;
        case SocketmapReply::Kind::perm:
            return "PERM " + reply.text;
    }
    return "TEMP unknown reply kind";
}

namespace {

constexpr std::size_t kReadChunk = 16384;
constexpr int kAcceptBatch = 64;
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

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

bool transient_accept_error(int e) {
    // accept(2): errors of the connection being accepted, not of the listener.
    return e == EINTR || e == ECONNABORTED || e == EPROTO || e == ENETDOWN || e == ENOPROTOOPT ||
           e == EHOSTDOWN || e == ENONET || e == EHOSTUNREACH || e == EOPNOTSUPP ||
           e == ENETUNREACH || e == EPERM;
}

}  // namespace

struct SocketmapServer::Listener {
    ListenSocket socket;
    std::string name;
    EventLoop::WatchId watch = EventLoop::kNoWatch;
    EventLoop::TimerId backoff_timer = 0;
};

// One client connection.  Lives in SocketmapServer::connections_; every
// entry from the loop takes a shared_ptr first, so closing (which erases
// it from the map) never frees an object whose method is still running.
class SocketmapServer::Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(SocketmapServer& server, std::uint64_t id, int fd)
        : server_(server),
          id_(id),
          fd_(fd),
          peer_(peer_name(fd, id)),
          decoder_(server.limits_.max_request_bytes),
          last_activity_(server.loop_.now()) {}
    ~Connection() { shutdown(); }

    bool start();
    void complete(std::uint64_t seq, const SocketmapReply& reply, bool misuse);
    void note_misuse(const char* what);
    void begin_drain();
    void apply_limits() {
        decoder_.set_max_length(server_.limits_.max_request_bytes);
        flush();  // a larger max_pipelined may unblock buffered requests
    }
    // Releases the fd and everything registered with the loop; idempotent.
    void shutdown();
    std::uint64_t id() const { return id_; }
    const std::string& peer() const { return peer_; }

private:
    struct Slot {
        bool ready = false;
        std::string wire;  // the framed reply, once ready
    };

    void on_io(IoEvents ev);
    void on_idle_timer();
    void arm_idle_timer(EventLoop::time_point when);
    void read_some();
    void process_input();
    void dispatch(const std::string& data);
    void move_ready_replies();
    void flush();
    void write_out();
    void update_interest();
    bool wants_read() const;
    std::size_t unsent() const { return outbuf_.size() - out_off_; }
    std::uint64_t front_seq() const { return next_seq_ - pending_.size(); }
    void close_now() { server_.close_connection(*this); }

    SocketmapServer& server_;
    const std::uint64_t id_;
    int fd_;
    const std::string peer_;
    EventLoop::WatchId watch_ = EventLoop::kNoWatch;
    EventLoop::TimerId idle_timer_ = 0;
    IoInterest interest_ = IoInterest::read;

    NetstringDecoder decoder_;
    std::string inbuf_;  // read but not yet decoded (only while paused)
    std::size_t in_off_ = 0;
    std::deque<Slot> pending_;  // requests in arrival order, answered from the front
    std::uint64_t next_seq_ = 0;
    std::string outbuf_;
    std::size_t out_off_ = 0;
    EventLoop::time_point last_activity_;

    bool closed_ = false;
    bool read_eof_ = false;
    bool draining_ = false;
    bool in_dispatch_ = false;
};

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

void SocketmapServer::Connection::on_io(IoEvents ev) {
    if (closed_) return;
    auto self = shared_from_this();
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
            server_.log(LogLevel::info, peer_ + ": client closed in the middle of a request");
        flush();  // answers what is owed, then closes
        return;
    }
    inbuf_.append(buf, static_cast<std::size_t>(n));
    process_input();
}

void SocketmapServer::Connection::process_input() {
    auto self = shared_from_this();
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
        if (step.status == NetstringDecoder::Status::complete) dispatch(decoder_.take());
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
    SocketmapRequest req;
    req.map_name = data.substr(0, space);
    req.key = data.substr(space + 1);
    ++server_.counters_.requests;
    auto state =
        std::make_shared<ReplyState>(server_.loop_.poster(), weak_from_this(), seq, handler);
    ReplyFn done = [state](SocketmapReply r) { state->call(std::move(r)); };
    try {
        handler->handle(req, std::move(done));
    } catch (const std::exception& e) {
        server_.log(LogLevel::error, peer_ + ": handler threw: " + e.what());
        state->call(SocketmapReply::temp("stsguard: internal error"));
    } catch (...) {
        server_.log(LogLevel::error, peer_ + ": handler threw a non-standard exception");
        state->call(SocketmapReply::temp("stsguard: internal error"));
    }
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
    std::string data = encode_reply(reply);
    const char* bad = nullptr;
    if (data.size() > server_.limits_.max_reply_bytes)
        bad = "longer than max_reply_bytes";
    else if (data.find('\0') != std::string::npos)
        bad = "contains a NUL byte";
    if (bad != nullptr) {
        ++server_.counters_.bad_replies;
        server_.log_rate_limited("bad-reply", LogLevel::error,
                                 peer_ + ": handler reply of " + std::to_string(data.size()) +
                                     " bytes " + bad + "; answering TEMP");
        data = encode_reply(
            SocketmapReply::temp(std::string("stsguard: internal error: reply ") + bad));
    }
    netstring_append(slot.wire, data);
    slot.ready = true;
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
    auto self = shared_from_this();
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

// ---------------------------------------------------------------------------

namespace {
// 0 outstanding requests would mean never reading at all.
ServerLimits sane(ServerLimits l) {
    if (l.max_pipelined == 0) l.max_pipelined = 1;
    return l;
}
}  // namespace

SocketmapServer::SocketmapServer(EventLoop& loop, std::shared_ptr<SocketmapHandler> handler,
                                 ServerLimits limits, LogFn log)
    : loop_(loop), handler_(std::move(handler)), limits_(sane(limits)), log_(std::move(log)) {}

SocketmapServer::~SocketmapServer() {
    if (drain_timer_ != 0) loop_.cancel(drain_timer_);
    for (auto& [id, c] : connections_) c->shutdown();
    connections_.clear();
    for (auto& l : listeners_) {
        if (l->watch != EventLoop::kNoWatch) loop_.unwatch(l->watch);
        if (l->backoff_timer != 0) loop_.cancel(l->backoff_timer);
    }
    listeners_.clear();
}

void SocketmapServer::log(LogLevel level, const std::string& msg) const {
    if (log_) log_(level, msg);
}

void SocketmapServer::log_rate_limited(const char* what, LogLevel level, const std::string& msg) {
    RateLimit& rl = rate_limits_[what];
    const auto now = loop_.now();
    if (rl.ever && now - rl.last < limits_.log_interval) {
        ++rl.suppressed;
        return;
    }
    std::string line = msg;
    if (rl.suppressed > 0)
        line += " (" + std::to_string(rl.suppressed) + " similar messages suppressed)";
    rl.ever = true;
    rl.last = now;
    rl.suppressed = 0;
    log(level, line);
}

bool SocketmapServer::add_listener(ListenSocket socket) {
    auto l = std::make_unique<Listener>();
    l->name = socket.address().to_string();
    l->socket = std::move(socket);
    Listener* raw = l.get();
    l->watch =
        loop_.watch(raw->socket.fd(), IoInterest::read, [this, raw](IoEvents) { on_accept(*raw); });
    if (l->watch == EventLoop::kNoWatch) {
        log(LogLevel::error, "cannot watch listener " + l->name + ": " + std::strerror(errno));
        return false;
    }
    listeners_.push_back(std::move(l));
    return true;
}

bool SocketmapServer::close_listener(const std::string& address) {
    for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
        if ((*it)->name != address) continue;
        if ((*it)->watch != EventLoop::kNoWatch) loop_.unwatch((*it)->watch);
        if ((*it)->backoff_timer != 0) loop_.cancel((*it)->backoff_timer);
        listeners_.erase(it);
        return true;
    }
    return false;
}

std::vector<ListenAddress> SocketmapServer::listeners() const {
    std::vector<ListenAddress> out;
    for (const auto& l : listeners_) out.push_back(l->socket.address());
    return out;
}

void SocketmapServer::set_handler(std::shared_ptr<SocketmapHandler> handler) {
    handler_ = std::move(handler);
}

void SocketmapServer::set_limits(const ServerLimits& limits) {
    limits_ = sane(limits);
    std::vector<std::shared_ptr<Connection>> conns;
    for (auto& [id, c] : connections_) conns.push_back(c);
    for (auto& c : conns) c->apply_limits();
}

void SocketmapServer::on_accept(Listener& l) {
    for (int i = 0; i < kAcceptBatch; ++i) {
        const int fd = ::accept4(l.socket.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            const int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK) return;
            if (transient_accept_error(e)) continue;
            // EMFILE, ENFILE, ENOBUFS, ENOMEM: the pending connection stays
            // queued and level-triggered epoll would spin; pause this listener.
            ++counters_.accept_errors;
            log_rate_limited("accept", LogLevel::error,
                             "accept on " + l.name + ": " + std::strerror(e) + "; pausing " +
                                 std::to_string(kAcceptBackoff.count()) + " ms");
            loop_.set_interest(l.watch, IoInterest::none);
            Listener* raw = &l;
            l.backoff_timer = loop_.run_after(kAcceptBackoff, [this, raw] {
                raw->backoff_timer = 0;
                loop_.set_interest(raw->watch, IoInterest::read);
            });
            return;
        }
        if (draining_) {
            ::close(fd);
            continue;
        }
        if (connections_.size() >= limits_.max_connections) {
            ::close(fd);
            ++counters_.rejected_over_limit;
            log_rate_limited("max-connections", LogLevel::warning,
                             "connection on " + l.name + " refused: max_connections (" +
                                 std::to_string(limits_.max_connections) + ") reached");
            continue;
        }
        if (l.socket.address().kind == ListenAddress::Kind::inet) {
            // Replies are written whole; Nagle would only delay pipelined ones.
            const int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        const std::uint64_t id = next_conn_id_++;
        auto c = std::make_shared<Connection>(*this, id, fd);
        if (!c->start()) {
            ++counters_.accept_errors;
            log_rate_limited("accept", LogLevel::error,
                             "cannot watch new connection: " + std::string(std::strerror(errno)));
            continue;  // ~Connection closes fd
        }
        connections_.emplace(id, std::move(c));
        ++counters_.accepted;
        ++counters_.open_connections;
    }
}

void SocketmapServer::close_connection(Connection& c) {
    c.shutdown();
    auto it = connections_.find(c.id());
    if (it == connections_.end()) return;
    connections_.erase(it);  // callers hold a shared_ptr: c stays valid until they return
    --counters_.open_connections;
    check_drained();
}

void SocketmapServer::stop_accepting() {
    for (auto& l : listeners_) {
        if (l->watch != EventLoop::kNoWatch) loop_.unwatch(l->watch);
        if (l->backoff_timer != 0) loop_.cancel(l->backoff_timer);
    }
    listeners_.clear();
}

void SocketmapServer::drain(std::chrono::milliseconds timeout, std::function<void()> on_drained) {
    draining_ = true;
    on_drained_ = std::move(on_drained);
    if (drain_timer_ != 0) loop_.cancel(drain_timer_);
    drain_timer_ = loop_.run_after(timeout, [this] {
        drain_timer_ = 0;
        std::vector<std::shared_ptr<Connection>> left;
        for (auto& [id, c] : connections_) left.push_back(c);
        if (!left.empty())
            log(LogLevel::warning, "drain deadline: closing " + std::to_string(left.size()) +
                                       " connection(s) with replies still owed");
        for (auto& c : left) close_connection(*c);
        check_drained();
    });
    std::vector<std::shared_ptr<Connection>> conns;
    for (auto& [id, c] : connections_) conns.push_back(c);
    for (auto& c : conns) c->begin_drain();
    check_drained();
}

void SocketmapServer::check_drained() {
    if (!draining_ || !connections_.empty() || !on_drained_) return;
    if (drain_timer_ != 0) {
        loop_.cancel(drain_timer_);
        drain_timer_ = 0;
    }
    auto cb = std::move(on_drained_);
    on_drained_ = nullptr;
    cb();
}

}  // namespace stsguard
