// metrics_endpoint.h - the Prometheus scrape endpoint of `stsguard serve`
// (config metrics_listen): `GET /metrics` answers the text exposition
// format 0.0.4 that ServiceMetrics renders.
//
// HTTP comes from GNU libmicrohttpd: we never hand-write an HTTP stack
// (docs/architecture.md says why this library).  It runs in MHD's
// "external epoll" mode: MHD's own epoll descriptor is one read watch on
// our EventLoop, and MHD's connection timeouts are driven by a loop
// timer.  So the endpoint adds no thread, and rendering happens on the
// loop thread like every other answer of the service.
//
// Failures: start() returns a Failure naming the cause (the address is
// not inet:HOST:PORT, the socket cannot be watched, MHD refuses to start).
// Requests: another path -> 404, another method -> 405, a render that
// throws -> 500 (logged); none of them affects socketmap clients.
// Limits (config): metrics_max_connections concurrent scrape connections
// (further ones are refused by MHD), metrics_timeout per idle connection.
// Request bodies are never read.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "policy-cache/outcome.h"
#include "postfix/event_loop.h"
#include "postfix/listen_address.h"
#include "postfix/socketmap_server.h"

struct MHD_Daemon;

namespace stsguard {

struct MetricsLimits {
    unsigned max_connections = 16;        // Config metrics_max_connections
    std::chrono::seconds timeout{10};     // Config metrics_timeout
};

// Produces the body of one scrape.  Called on the loop thread.
using MetricsRenderFn = std::function<std::string()>;

class MetricsEndpoint {
public:
    // Serves on `socket` (an inet listener; unix sockets are refused: a
    // Prometheus scraper connects over TCP).  The endpoint must be
    // destroyed on the loop thread or while the loop is not running.
    static Lookup<std::unique_ptr<MetricsEndpoint>> start(EventLoop& loop, ListenSocket socket,
                                                          MetricsLimits limits, MetricsRenderFn render,
                                                          LogFn log);
    ~MetricsEndpoint();
    MetricsEndpoint(const MetricsEndpoint&) = delete;
    MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

    std::uint16_t port() const { return socket_.bound_port(); }
    std::uint64_t scrapes() const { return scrapes_; }

    // Entry point for MHD's request callback (a C callback: never throws).
    int answer(void* connection, const char* url, const char* method);

private:
    MetricsEndpoint(EventLoop& loop, ListenSocket socket, MetricsRenderFn render, LogFn log);
    void run_mhd();
    unsigned connections() const;
    void arm_timer();

    EventLoop& loop_;
    ListenSocket socket_;
    MetricsRenderFn render_;
    LogFn log_;
    MHD_Daemon* daemon_ = nullptr;
    EventLoop::WatchId watch_{};
    bool watching_ = false;
    EventLoop::TimerId timer_{};
    bool timer_armed_ = false;
    std::uint64_t scrapes_ = 0;
};

}  // namespace stsguard
