// socketmap_server.h - the Postfix socketmap server: listeners,
// connections, framing, limits.  No policy logic: each request goes to a
// SocketmapHandler, which answers now or later, from any thread.
//
// Protocol (Postfix socketmap_table(5), src/global/dict_sockmap.c): one
// netstring request "NAME KEY", one netstring reply "OK DATA",
// "NOTFOUND ", "TEMP REASON", "TIMEOUT REASON" or "PERM REASON".  Postfix
// sends one request at a time per connection, keeps connections open (it
// closes them after 10 s idle or 100 s of age) and retries once on a
// connection closed by the server, so closing a misbehaving connection
// costs a well-behaved Postfix at most a reconnect.  Pipelined requests
// are answered in order even when the handler completes them out of order.
//
// Decisions:
// - A request with no space, an empty map name or a NUL byte gets
//   "PERM invalid request: ..." and the connection stays open (framing is
//   intact).  Postfix never sends one; PERM makes Postfix log a
//   configuration error instead of retrying forever.  Unknown map names
//   are the handler's business.
// - A framing error, or a length over max_request_bytes, closes the
//   connection at once (a stream cannot be resynchronised); logged as a
//   warning and counted in protocol_errors.  Replies still owed on that
//   connection are dropped.
// - A reply over max_reply_bytes (Postfix refuses > 100000) or holding a
//   NUL byte (Postfix reads replies as C strings) is replaced by
//   "TEMP ..." and logged as an error.
// - Idle: a connection with no complete request for idle_timeout is
//   closed, even with half a request buffered (slowloris); a connection
//   waiting for the handler is not idle, one whose client does not read
//   its replies is.
// - End of input from the client: requests already received are still
//   answered, then the connection is closed.
// - done() called twice: the second call is ignored.  done() destroyed
//   without being called: the client gets "TEMP ..." (never a hang).
//
// Threads: everything runs on the EventLoop thread, except ReplyFn, which
// is safe from any thread and after the connection or server is gone.
// Failures: accept errors are logged (rate-limited) and retried; nothing
// here throws after construction except broken invariants.
// Limits: see ServerLimits.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "postfix/event_loop.h"
#include "postfix/listen_address.h"

namespace stsguard {

struct SocketmapRequest {
    std::string map_name;
    std::string key;
};

struct SocketmapReply {
    enum class Kind { ok, notfound, temp, timeout, perm } kind = Kind::notfound;
    std::string text;

    static SocketmapReply ok(std::string t) { return {Kind::ok, std::move(t)}; }
    static SocketmapReply notfound() { return {Kind::notfound, {}}; }
    static SocketmapReply temp(std::string t) { return {Kind::temp, std::move(t)}; }
    static SocketmapReply timeout(std::string t) { return {Kind::timeout, std::move(t)}; }
    static SocketmapReply perm(std::string t) { return {Kind::perm, std::move(t)}; }
};

// The DATA part of the reply netstring: "OK text", "NOTFOUND " (text
// ignored), "TEMP text", "TIMEOUT text", "PERM text".
std::string encode_reply(const SocketmapReply& reply);
// The reply's DATA in its two parts, without building it: the status
// word with its space ("OK ") and the text (none for NOTFOUND, which
// carries none).  What the server frames onto the wire.
struct ReplyWire {
    std::string_view word;
    std::string_view text;
    std::size_t size() const { return word.size() + text.size(); }
};
// Inline: called once per reply on the server's hot path.
inline ReplyWire reply_wire(const SocketmapReply& reply) {
    switch (reply.kind) {
        case SocketmapReply::Kind::ok: return {"OK ", reply.text};
        case SocketmapReply::Kind::notfound: return {"NOTFOUND ", {}};
        case SocketmapReply::Kind::temp: return {"TEMP ", reply.text};
        case SocketmapReply::Kind::timeout: return {"TIMEOUT ", reply.text};
        case SocketmapReply::Kind::perm: return {"PERM ", reply.text};
    }
    return {"TEMP unknown reply kind", {}};
}

// May be called from ANY thread, exactly once.
using ReplyFn = std::function<void(SocketmapReply)>;

class SocketmapHandler {
public:
    virtual ~SocketmapHandler() = default;
    // Called on the loop thread.  Must not block.  Calls done() now or later.
    virtual void handle(const SocketmapRequest& req, ReplyFn done) = 0;

    // The synchronous fast path, tried first: a handler that knows the
    // answer at once (a cache hit) fills `out` and returns now, and the
    // server answers without building a reply function; later means
    // "call handle()".  The default always says later.
    enum class Answered { now, later };
    virtual Answered answer_now(const SocketmapRequest& /*req*/, SocketmapReply& /*out*/) {
        return Answered::later;
    }
};

enum class LogLevel { debug, info, warning, error };
using LogFn = std::function<void(LogLevel, const std::string&)>;

struct ServerLimits {
    std::size_t max_request_bytes = 4096;             // Config max_request_bytes
    std::size_t max_connections = 4096;               // Config max_connections
    std::chrono::milliseconds idle_timeout{300'000};  // Config idle_timeout
    std::size_t max_pipelined = 64;                   // outstanding requests per connection (0 = 1)
    std::size_t max_unsent_bytes = 1 << 20;           // reply bytes the client has not read
    std::size_t max_reply_bytes = 100000;             // Postfix socketmap_max_reply_size
    std::chrono::milliseconds log_interval{10'000};   // rate limit for repeated warnings
};

// Plain counters, read on the loop thread.
struct ServerCounters {
    std::uint64_t open_connections = 0;
    std::uint64_t accepted = 0;
    std::uint64_t rejected_over_limit = 0;  // accepted and closed: max_connections
    std::uint64_t protocol_errors = 0;      // framing errors and oversized requests
    std::uint64_t invalid_requests = 0;     // framed, but not "NAME KEY" (answered PERM)
    std::uint64_t requests = 0;             // requests passed to the handler
    std::uint64_t replies = 0;              // replies queued for sending
    std::uint64_t replies_dropped = 0;      // owed to a connection that closed first
    std::uint64_t bad_replies = 0;          // too long / NUL byte: replaced by TEMP
    std::uint64_t handler_misuse = 0;       // done() twice, or never (answered TEMP)
    std::uint64_t idle_closed = 0;
    std::uint64_t write_overflow_closed = 0;
    std::uint64_t accept_errors = 0;
};

class SocketmapServer {
public:
    SocketmapServer(EventLoop& loop, std::shared_ptr<SocketmapHandler> handler, ServerLimits limits,
                    LogFn log);
    // Closes everything; call on the loop thread or while the loop is not running.
    ~SocketmapServer();
    SocketmapServer(const SocketmapServer&) = delete;
    SocketmapServer& operator=(const SocketmapServer&) = delete;

    // Takes ownership and starts accepting.  False (and logged) if the
    // socket cannot be watched.
    bool add_listener(ListenSocket socket);
    // Closes the listener with this canonical address text; false if none.
    bool close_listener(const std::string& address);
    std::vector<ListenAddress> listeners() const;

    // Reload: new requests go to the new handler; requests in flight finish
    // on the old one (their ReplyFn keeps it alive).  Call it between
    // events (a posted task, a signal handler on the loop), not from inside
    // a handler call: the fast path calls answer_now() without taking a
    // reference of its own (one per request is measurable).
    void set_handler(std::shared_ptr<SocketmapHandler> handler);
    // Reload: applies to existing connections from their next event on
    // (an armed idle timer fires at its old deadline, then uses the new one).
    void set_limits(const ServerLimits& limits);
    const ServerLimits& limits() const { return limits_; }

    // Shutdown, step 1: close all listeners (unix socket files removed).
    void stop_accepting();
    // Step 2: stop reading requests; answer the ones in flight; close each
    // connection once its replies are written; at `timeout` close the rest.
    // on_drained runs (on the loop thread) when no connection is left.
    void drain(std::chrono::milliseconds timeout, std::function<void()> on_drained);

    const ServerCounters& counters() const { return counters_; }

private:
    class Connection;   // postfix/socketmap_connection.h
    friend class Connection;
    struct Listener;
    struct ReplyState;  // postfix/socketmap_connection.cc: one request's ReplyFn

    void on_accept(Listener& l);
    void close_connection(Connection& c);
    void log(LogLevel level, const std::string& msg) const;
    void log_rate_limited(const char* what, LogLevel level, const std::string& msg);
    void check_drained();

    EventLoop& loop_;
    std::shared_ptr<SocketmapHandler> handler_;
    ServerLimits limits_;
    LogFn log_;
    ServerCounters counters_;

    std::vector<std::unique_ptr<Listener>> listeners_;
    std::uint64_t next_conn_id_ = 1;
    std::unordered_map<std::uint64_t, std::shared_ptr<Connection>> connections_;

    struct RateLimit {
        EventLoop::time_point last{};
        std::uint64_t suppressed = 0;
        bool ever = false;
    };
    std::unordered_map<std::string, RateLimit> rate_limits_;

    bool draining_ = false;
    EventLoop::TimerId drain_timer_ = 0;
    std::function<void()> on_drained_;
};

}  // namespace stsguard
