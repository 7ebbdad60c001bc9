#include "postfix/metrics_endpoint.h"

#include <microhttpd.h>

#include <cstring>
#include <exception>

namespace stsguard {
namespace {

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::chrono::milliseconds kMaxTimerDelay{1000};

MHD_Result queue_text(MHD_Connection* c, unsigned status, const std::string& body, const char* type) {
    MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()),
                                                      MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, "Allow", "GET, HEAD");
    MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

// MHD's C callback: forwards to the endpoint; nothing may escape it.
MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method, const char*,
                      const char*, size_t*, void**) {
    auto* self = static_cast<MetricsEndpoint*>(cls);
    int rc = MHD_NO;
    try {
        rc = self->answer(c, url, method);
    } catch (...) {
        rc = MHD_NO;  // MHD closes the connection
    }
    return rc == MHD_YES ? MHD_YES : MHD_NO;
}

// MHD's own diagnostics go to our log, not to stderr.
void on_mhd_log(void* cls, const char* fmt, va_list ap) {
    try {
        auto* log = static_cast<LogFn*>(cls);
        char buf[512];
        vsnprintf(buf, sizeof buf, fmt, ap);
        std::size_t n = std::strlen(buf);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
        if (*log) (*log)(LogLevel::warning, std::string("metrics: ") + buf);
    } catch (...) {
    }
}

}  // namespace

MetricsEndpoint::MetricsEndpoint(EventLoop& loop, ListenSocket socket, MetricsRenderFn render, LogFn log)
    : loop_(loop), socket_(std::move(socket)), render_(std::move(render)), log_(std::move(log)) {}

Lookup<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::start(EventLoop& loop, ListenSocket socket,
                                                                MetricsLimits limits, MetricsRenderFn render,
                                                                LogFn log) {
        if (socket.address().kind != ListenAddress::Kind::inet)
        return Failure::perm("metrics-listen", "metrics_listen must be inet:HOST:PORT");
    std::unique_ptr<MetricsEndpoint> ep(new MetricsEndpoint(loop, std::move(socket), std::move(render), std::move(log)));
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (ep->socket_.address().is_ipv6()) flags |= MHD_USE_IPv6;
    ep->daemon_ = MHD_start_daemon(
        flags, 0, nullptr, nullptr, &on_request, ep.get(), MHD_OPTION_EXTERNAL_LOGGER, &on_mhd_log, &ep->log_,
        MHD_OPTION_LISTEN_SOCKET, ep->socket_.fd(), MHD_OPTION_CONNECTION_LIMIT,
        static_cast<unsigned>(limits.max_connections), MHD_OPTION_CONNECTION_TIMEOUT,
        static_cast<unsigned>(limits.timeout.count()), MHD_OPTION_END);
    if (!ep->daemon_)
        return Failure::perm("metrics-start",
                       "libmicrohttpd could not start on " + ep->socket_.address().to_string());
    const MHD_DaemonInfo* info = MHD_get_daemon_info(ep->daemon_, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info)
        return Failure::perm("metrics-start", "libmicrohttpd has no epoll descriptor");
    MetricsEndpoint* self = ep.get();
    ep->watch_ = loop.watch(info->epoll_fd, IoInterest::read, [self](IoEvents) { self->run_mhd(); });
    if (ep->watch_ == EventLoop::kNoWatch)
        return Failure::perm("metrics-start", "cannot watch the metrics socket");
    ep->watching_ = true;
    return ep;
}

MetricsEndpoint::~MetricsEndpoint() {
    if (timer_armed_) loop_.cancel(timer_);
    if (watching_) loop_.unwatch(watch_);
    if (daemon_) {
        // Take the listening socket back first: ListenSocket owns and closes it.
        MHD_quiesce_daemon(daemon_);
        MHD_stop_daemon(daemon_);
    }
}

unsigned MetricsEndpoint::connections() const {
    const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info ? info->num_connections : 0;
}

void MetricsEndpoint::run_mhd() {
    const unsigned before = connections();
    MHD_run(daemon_);
    // At metrics_max_connections MHD takes its listening socket out of its
    // epoll set, and puts it back only at the start of a later pass: when
    // this pass freed a slot, run that pass now, or the listener would wait
    // for an event that cannot come.
    if (connections() < before) MHD_run(daemon_);
    arm_timer();
}

// MHD needs MHD_run() again when a connection times out, even without I/O.
void MetricsEndpoint::arm_timer() {
    if (timer_armed_) loop_.cancel(timer_);
    timer_armed_ = false;
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (MHD_get_timeout(daemon_, &ms) != MHD_YES) return;
    auto delay = std::min(std::chrono::milliseconds(ms), kMaxTimerDelay);
    timer_ = loop_.run_after(delay, [this] {
        timer_armed_ = false;
        run_mhd();
    });
    timer_armed_ = true;
}

int MetricsEndpoint::answer(void* connection, const char* url, const char* method) {
    auto* c = static_cast<MHD_Connection*>(connection);
    bool head = std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!head && std::strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return queue_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET /metrics is served\n", "text/plain");
    if (std::strcmp(url, "/metrics") != 0 && std::strcmp(url, "/") != 0)
        return queue_text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n", "text/plain");
    std::string body;
    try {
        body = render_();
    } catch (const std::exception& e) {
        if (log_) log_(LogLevel::error, std::string("metrics: cannot render: ") + e.what());
        return queue_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n", "text/plain");
    }
    ++scrapes_;
    return queue_text(c, MHD_HTTP_OK, body, kContentType);
}

}  // namespace stsguard
