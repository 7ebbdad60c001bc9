// Tests for postfix/metrics_endpoint: the Prometheus scrape endpoint,
// served by libmicrohttpd on our event loop (no thread of its own).
#include "postfix/metrics_endpoint.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <chrono>
#include <string>
#include <thread>

using namespace stsguard;

namespace {

// One HTTP/1.0 exchange with a plain socket (a test client, not a stack):
// the whole response text, or "" when the connection failed.
std::string http_exchange(std::uint16_t port, const std::string& request, int timeout_s = 3) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return "";
    timeval tv{timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string out;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

// The status code of a response ("HTTP/1.1 200 OK" -> 200), or 0.
int status_of(const std::string& response) {
    if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return 0;
    return std::atoi(response.substr(9, 3).c_str());
}

struct Fixture {
    SteadyMonotonicClock clock;
    EventLoop loop{clock};
    std::atomic<int> renders{0};
    std::unique_ptr<MetricsEndpoint> ep;
    std::thread t;

    explicit Fixture(MetricsRenderFn render = {}, MetricsLimits limits = {}) {
        auto addr = parse_listen_address("inet:127.0.0.1:0");
        REQUIRE(addr.found());
        auto sock = open_listen_socket(addr.value());
        REQUIRE(sock.found());
        if (!render) render = [this] {
            ++renders;
            return std::string("stsguard_open_connections 3\n");
        };
        auto started = MetricsEndpoint::start(loop, std::move(sock.value()), limits, render, {});
        REQUIRE(started.found());
        ep = std::move(started.value());
        t = std::thread([this] { loop.run(); });
    }
    ~Fixture() {
        loop.stop();
        t.join();
        ep.reset();
    }
};

}  // namespace

TEST_CASE("metrics: GET /metrics answers 200 with the rendered text exposition format") {
    Fixture f;
    std::string r = http_exchange(f.ep->port(), "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
    CHECK(status_of(r) == 200);
    CHECK(r.find("text/plain; version=0.0.4") != std::string::npos);
    CHECK(r.find("\r\n\r\nstsguard_open_connections 3\n") != std::string::npos);
    CHECK(f.renders.load() == 1);
}

TEST_CASE("metrics: each scrape renders anew") {
    Fixture f;
    http_exchange(f.ep->port(), "GET /metrics HTTP/1.0\r\n\r\n");
    http_exchange(f.ep->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(f.renders.load() == 2);
}

TEST_CASE("metrics: another path is 404 and another method is 405, without rendering") {
    Fixture f;
    CHECK(status_of(http_exchange(f.ep->port(), "GET /secret HTTP/1.0\r\n\r\n")) == 404);
    std::string r = http_exchange(f.ep->port(), "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    CHECK(status_of(r) == 405);
    CHECK(f.renders.load() == 0);
}

TEST_CASE("metrics: a render that throws is a 500, and the endpoint keeps serving") {
    std::atomic<int> calls{0};
    Fixture f([&calls]() -> std::string {
        if (calls++ == 0) throw std::runtime_error("boom");
        return "ok 1\n";
    });
    CHECK(status_of(http_exchange(f.ep->port(), "GET /metrics HTTP/1.0\r\n\r\n")) == 500);
    CHECK(status_of(http_exchange(f.ep->port(), "GET /metrics HTTP/1.0\r\n\r\n")) == 200);
}

TEST_CASE("metrics: garbage on the socket gets an HTTP error, not a crash") {
    Fixture f;
    std::string r = http_exchange(f.ep->port(), std::string("\x00\x01\xff garbage\r\n\r\n", 15), 1);
    CHECK(status_of(r) != 200);
    CHECK(status_of(http_exchange(f.ep->port(), "GET /metrics HTTP/1.0\r\n\r\n")) == 200);
}

TEST_CASE("metrics: a unix-socket address is refused with a clear failure") {
    SteadyMonotonicClock clock;
    EventLoop loop{clock};
    auto addr = parse_listen_address("unix:/tmp/stsguard-metrics-test-" + std::to_string(::getpid()));
    REQUIRE(addr.found());
    auto sock = open_listen_socket(addr.value());
    REQUIRE(sock.found());
    auto started = MetricsEndpoint::start(loop, std::move(sock.value()), MetricsLimits{}, [] { return ""; }, {});
    REQUIRE(started.failed());
    CHECK(started.failure().reason.find("inet:HOST:PORT") != std::string::npos);
}

TEST_CASE("metrics: the port is closed once the endpoint is gone") {
    std::uint16_t port = 0;
    {
        Fixture f;
        port = f.ep->port();
    }
    CHECK(http_exchange(port, "GET /metrics HTTP/1.0\r\n\r\n").empty());
}

namespace {

// A connected TCP socket to the endpoint that sends nothing, or -1.
int idle_connection(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        fd = -1;
    }
    return fd;
}

}  // namespace

TEST_CASE("metrics: metrics_timeout closes an idle scrape connection") {
    MetricsLimits limits;
    limits.timeout = std::chrono::seconds(1);
    Fixture f({}, limits);
    int fd = idle_connection(f.ep->port());
    REQUIRE(fd >= 0);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const auto t0 = std::chrono::steady_clock::now();
    char c;
    const ssize_t n = ::recv(fd, &c, 1, 0);  // 0: closed by the server
    const auto waited = std::chrono::steady_clock::now() - t0;
    ::close(fd);
    CHECK(n == 0);
    CHECK(waited >= std::chrono::milliseconds(800));
    CHECK(waited < std::chrono::seconds(4));
}

TEST_CASE("metrics: metrics_max_connections refuses scrapes beyond the limit until one ends") {
    MetricsLimits limits;
    limits.max_connections = 1;
    Fixture f({}, limits);
    int held = idle_connection(f.ep->port());
    REQUIRE(held >= 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the endpoint accepts it
    CHECK(status_of(http_exchange(f.ep->port(), "GET /metrics HTTP/1.0\r\n\r\n", 1)) != 200);
    ::close(held);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(status_of(http_exchange(f.ep->port(), "GET /metrics HTTP/1.0\r\n\r\n")) == 200);
}
