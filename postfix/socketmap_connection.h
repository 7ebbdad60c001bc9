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
// Threads: loop thread only (ReplyState, in the .cc, is what crosses
// threads).  Failures: I/O errors close this connection, logged at debug;
// nothing throws after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "postfix/event_loop.h"
#include "postfix/netstring.h"
#include "postfix/socketmap_server.h"

namespace stsguard {

// One client connection.  Lives in SocketmapServer::connections_; every
// entry from the loop takes a shared_ptr first, so closing (which erases
// it from the map) never frees an object whose method is still running.
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
    // TEMP for a request whose handler threw (through its reply state, if
    // one was made, so a reply already given wins).
    void fail_request(std::uint64_t seq, const std::shared_ptr<SocketmapServer::ReplyState>& state);
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
    std::string request_;  // the request being dispatched; its storage is reused
    SocketmapRequest req_;  // the same, split for the handler
    SocketmapReply now_;    // its answer from the handler's fast path
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

}  // namespace stsguard
