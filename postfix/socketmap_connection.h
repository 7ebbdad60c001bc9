// socketmap_connection.h - one Postfix socketmap client connection of a
// SocketmapServer: reads netstring requests, hands them to the handler,
// writes the replies back in request order, and enforces the
// per-connection limits (request length, pipelining depth, unsent bytes,
// idle timeout).
//
// Internal to postfix/socketmap_server.cc and socketmap_connection.cc: the
// class is SocketmapServer's private nested class (it updates the server's
// counters and reads its limits directly), kept in its own file only so
// that each file has one job.  The protocol decisions are documented in
// postfix/socketmap_server.h.
//
// Hot path (a cache hit, issue 7): one recv, requests decoded where they
// lie in the read buffer, the handler's answer_now(), the reply framed in
// place into the send buffer, one send.  No allocation, no reference
// count, no queue entry per request; the slower paths (a request split
// across reads, an asynchronous answer, a reply owed behind one) keep
// their own storage.
//
// Threads: loop thread only (ReplyState, in the .cc, is what crosses
// threads).  Failures: I/O errors close this connection, logged at debug;
// nothing throws after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "postfix/event_loop.h"
#include "postfix/netstring.h"
#include "postfix/socketmap_send_buffer.h"
#include "postfix/socketmap_server.h"

namespace stsguard {

// One client connection.  Lives in SocketmapServer::connections_ and, while
// it is watched, in its own I/O callback: every entry from the loop holds a
// shared_ptr (the watch's callback, which the loop keeps alive while it
// runs; timers and reply states lock a weak_ptr), so closing, which erases
// it from the map, never frees an object whose method is still running.
class SocketmapServer::Connection : public std::enable_shared_from_this<Connection> {
public:
    // Takes ownership of fd (closed by shutdown() or the destructor).
    Connection(SocketmapServer& server, std::uint64_t id, int fd);
    ~Connection() { shutdown(); }

    bool start();
    void complete(std::uint64_t seq, const SocketmapReply& reply, bool misuse);
    void note_misuse(const char* what);
    void begin_drain();
    void apply_limits();
    // Releases the fd and everything registered with the loop; idempotent.
    void shutdown();
    std::uint64_t id() const { return id_; }
    const std::string& peer() const { return peer_; }

private:
    // A request's place in line: its handler answers later, or its reply
    // waits behind one that does.
    struct Slot {
        bool ready = false;
        std::string wire;  // the framed reply, once ready
    };

    void on_io(IoEvents ev);
    void on_idle_timer();
    void arm_idle_timer(EventLoop::time_point when);
    void read_some();
    // Decodes and dispatches requests from `input` until it is used up or
    // the connection pauses (pipeline full, draining, closed); returns the
    // bytes used.  `input` must stay untouched while it runs.
    std::size_t decode_requests(std::string_view input);
    // Input kept in inbuf_ while paused: decoded once the pause ends.
    void resume_input();
    void dispatch(std::string_view data);
    // Passes the request (in req_) to handle(), for an answer later.
    void dispatch_later(SocketmapHandler& handler);
    // The reply to the request being dispatched, in its place in line; for
    // a request answered before it needed a slot.
    void reply_in_line(const SocketmapReply& reply);
    // What goes on the wire for `reply`: itself, or a TEMP in its place if
    // Postfix could not take it (too long, a NUL byte), logged and counted.
    ReplyWire checked_wire(const SocketmapReply& reply);
    // Kept out of line: the hot path never logs.
    [[gnu::cold, gnu::noinline]] ReplyWire replace_bad_reply(const ReplyWire& wire, const char* bad,
                                                             std::string_view replacement);
    // TEMP for a request whose handler threw (through its reply state, if
    // one was made, so a reply already given wins).
    void fail_request(std::uint64_t seq, const std::shared_ptr<SocketmapServer::ReplyState>& state);
    void move_ready_replies();
    void flush();
    void write_out();
    void update_interest();
    bool wants_read() const;
    // max_pipelined requests owed: stop reading.  Synchronous answers never
    // take a slot, so a cache-hit client never gets here.
    bool pipeline_full() const {
        return !pending_.empty() && pending_.size() >= server_.limits_.max_pipelined;
    }
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
    SocketmapRequest req_;  // the request being dispatched; its strings keep their storage
    SocketmapReply now_;    // its answer from the handler's fast path, likewise
    std::string inbuf_;     // read but not yet decoded (only while paused)
    std::size_t in_off_ = 0;
    // Replies owed (waiting for the handler, or ready behind one that is),
    // in arrival order, sent from the front; empty while every answer is
    // synchronous.
    std::deque<Slot> pending_;
    std::uint64_t next_seq_ = 0;  // sequence number of the next request
    SendBuffer out_;
    EventLoop::time_point last_activity_;

    bool closed_ = false;
    bool read_eof_ = false;
    bool draining_ = false;
    bool in_dispatch_ = false;
};

}  // namespace stsguard
