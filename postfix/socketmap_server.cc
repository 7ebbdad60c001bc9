#include "postfix/socketmap_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "postfix/netstring.h"
#include "postfix/socketmap_connection.h"

namespace stsguard {

std::string encode_reply(const SocketmapReply& reply) {
    const ReplyWire wire = reply_wire(reply);
    std::string out;
    out.reserve(wire.size());
    out += wire.word;
    out += wire.text;
    return out;
}


namespace {

constexpr int kAcceptBatch = 64;
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

bool transient_accept_error(int e) {
    // accept(2): errors of the connection being accepted, not of the listener.
    return e == EINTR || e == ECONNABORTED || e == EPROTO || e == ENETDOWN || e == ENOPROTOOPT ||
           e == EHOSTDOWN || e == ENONET || e == EHOSTUNREACH || e == EOPNOTSUPP ||
           e == ENETUNREACH || e == EPERM;
}

// 0 outstanding requests would mean never reading at all.
ServerLimits sane(ServerLimits l) {
    if (l.max_pipelined == 0) l.max_pipelined = 1;
    return l;
}

}  // namespace

struct SocketmapServer::Listener {
    ListenSocket socket;
    std::string name;
    EventLoop::WatchId watch = EventLoop::kNoWatch;
    EventLoop::TimerId backoff_timer = 0;
};

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
