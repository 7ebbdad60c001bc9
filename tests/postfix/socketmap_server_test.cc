// Tests for postfix/socketmap_server: the Postfix socketmap protocol
// (socketmap_table(5)) over real sockets on 127.0.0.1 and unix sockets,
// with the server's loop on its own thread.  Waits are bounded; the only
// real-time waits are the short idle timeout and drain deadline tests.
#include "postfix/socketmap_server.h"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "postfix/netstring.h"
#include "tests/temp_dir.h"

using stsguard::testing::TempDir;
using namespace stsguard;
using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

namespace {

// --- handlers --------------------------------------------------------------

// Answers "OK map|key" at once.
class EchoHandler final : public SocketmapHandler {
public:
    void handle(const SocketmapRequest& req, ReplyFn done) override {
        done(SocketmapReply::ok(req.map_name + "|" + req.key));
    }
};

class FnHandler final : public SocketmapHandler {
public:
    explicit FnHandler(std::function<void(const SocketmapRequest&, ReplyFn)> f)
        : f_(std::move(f)) {}
    void handle(const SocketmapRequest& req, ReplyFn done) override { f_(req, std::move(done)); }

private:
    std::function<void(const SocketmapRequest&, ReplyFn)> f_;
};

// Answers "OK now|key" through answer_now() for keys starting with "now",
// throws from answer_now() for "boom", and leaves the rest to handle().
class FastPathHandler final : public SocketmapHandler {
public:
    Answered answer_now(const SocketmapRequest& req, SocketmapReply& out) override {
        if (req.key == "boom") throw std::runtime_error("fast path failed");
        if (req.key.rfind("now", 0) != 0) return Answered::later;
        out = SocketmapReply::ok("now|" + req.key);
        return Answered::now;
    }
    void handle(const SocketmapRequest& req, ReplyFn done) override {
        ++handled;
        done(SocketmapReply::ok("later|" + req.key));
    }
    std::atomic<int> handled{0};
};

// Keeps every request for the test to answer later, from its own thread.
class HoldingHandler final : public SocketmapHandler {
public:
    struct Held {
        SocketmapRequest req;
        ReplyFn done;
    };
    void handle(const SocketmapRequest& req, ReplyFn done) override {
        std::lock_guard<std::mutex> lock(mu_);
        held_.push_back({req, std::move(done)});
        ++total_;
        cv_.notify_all();
    }
    // Waits until `n` requests have arrived in total.
    bool wait_total(std::size_t n, Ms timeout = 2000ms) {
        std::unique_lock<std::mutex> lock(mu_);
        return cv_.wait_for(lock, timeout, [&] { return total_ >= n; });
    }
    std::vector<Held> take() {
        std::lock_guard<std::mutex> lock(mu_);
        return std::exchange(held_, {});
    }
    std::size_t total() {
        std::lock_guard<std::mutex> lock(mu_);
        return total_;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Held> held_;
    std::size_t total_ = 0;
};

// Answers keys starting with "now" through answer_now(), keys starting
// with "inline" from inside handle(), and holds the rest for the test to
// answer from its own thread: the three ways a reply can come.
class MixedHandler final : public SocketmapHandler {
public:
    Answered answer_now(const SocketmapRequest& req, SocketmapReply& out) override {
        if (req.key.rfind("now", 0) != 0) return Answered::later;
        out = SocketmapReply::ok(req.key);
        return Answered::now;
    }
    void handle(const SocketmapRequest& req, ReplyFn done) override {
        if (req.key.rfind("inline", 0) == 0) {
            done(SocketmapReply::ok(req.key));
            return;
        }
        held.handle(req, std::move(done));
    }
    HoldingHandler held;
};

// --- server fixture --------------------------------------------------------

class Fixture {
public:
    explicit Fixture(std::shared_ptr<SocketmapHandler> handler, ServerLimits limits = {},
                     const MonotonicClock* clock = nullptr)
        : loop_(clock ? *clock : steady_) {
        server_ = std::make_unique<SocketmapServer>(loop_, std::move(handler), limits,
                                                    [this](LogLevel lvl, const std::string& msg) {
                                                        std::lock_guard<std::mutex> lock(log_mu_);
                                                        logs_.push_back({lvl, msg});
                                                    });
        auto addr = parse_listen_address("inet:127.0.0.1:0");
        auto sock = open_listen_socket(addr.value());
        REQUIRE(sock.found());
        port_ = sock.value().bound_port();
        REQUIRE(server_->add_listener(std::move(sock.value())));
    }
    ~Fixture() {
        if (thread_.joinable()) {
            loop_.stop();
            thread_.join();
        }
        server_.reset();  // the loop is not running: safe from this thread
    }
    void start() {
        thread_ = std::thread([this] { loop_.run(); });
    }
    std::string add_unix_listener(const std::string& path, int mode) {
        auto addr = parse_listen_address("unix:" + path);
        REQUIRE(addr.found());
        auto sock = open_listen_socket(addr.value(), UnixSocketOptions{"", "", mode});
        REQUIRE(sock.found());
        REQUIRE(server_->add_listener(std::move(sock.value())));
        return addr.value().to_string();
    }
    // Runs f on the loop thread and waits for it (bounded).
    template <typename F>
    void on_loop(F f) {
        auto p = std::make_shared<std::promise<void>>();
        auto fut = p->get_future();
        loop_.post([p, f]() mutable {
            f();
            p->set_value();
        });
        REQUIRE(fut.wait_for(5s) == std::future_status::ready);
    }
    ServerCounters counters() {
        ServerCounters c;
        on_loop([&] { c = server_->counters(); });
        return c;
    }
    // Polls the counters until pred holds (bounded).
    template <typename P>
    bool wait_counters(P pred, Ms timeout = 2000ms) {
        const auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            if (pred(counters())) return true;
            std::this_thread::sleep_for(1ms);
        }
        return pred(counters());
    }
    std::size_t count_logs(const std::string& needle) {
        std::lock_guard<std::mutex> lock(log_mu_);
        return static_cast<std::size_t>(std::count_if(logs_.begin(), logs_.end(), [&](auto& l) {
            return l.second.find(needle) != std::string::npos;
        }));
    }
    std::string all_logs() {
        std::lock_guard<std::mutex> lock(log_mu_);
        std::string out;
        for (auto& l : logs_) out += l.second + "\n";
        return out;
    }

    EventLoop& loop() { return loop_; }
    SocketmapServer& server() { return *server_; }
    std::uint16_t port() const { return port_; }

private:
    SteadyMonotonicClock steady_;
    EventLoop loop_;
    std::unique_ptr<SocketmapServer> server_;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::mutex log_mu_;
    std::vector<std::pair<LogLevel, std::string>> logs_;
};

// --- client ----------------------------------------------------------------

class Client {
public:
    explicit Client(std::uint16_t port, int rcvbuf = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
        set_timeouts();
    }
    explicit Client(const std::string& unix_path) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::strncpy(sa.sun_path, unix_path.c_str(), sizeof sa.sun_path - 1);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
        set_timeouts();
    }
    ~Client() { close(); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    bool connected() const { return connected_; }
    int fd() const { return fd_; }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    // Closes with a TCP reset (linger 0), as a crashed client would.
    void reset() {
        linger l{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close();
    }

    bool send_raw(std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }
    bool send_request(std::string_view data) { return send_raw(netstring_encode(data)); }

    // The next reply's DATA, or nullopt on EOF, error or timeout (2 s).
    std::optional<std::string> read_reply() {
        for (;;) {
            if (!buf_.empty()) {
                const auto step = dec_.feed(buf_);
                buf_.erase(0, step.consumed);
                if (step.status == NetstringDecoder::Status::complete) return dec_.take();
                if (step.status == NetstringDecoder::Status::error) return std::nullopt;
            }
            char tmp[65536];
            const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return std::nullopt;
            buf_.append(tmp, static_cast<std::size_t>(n));
        }
    }
    std::optional<std::string> ask(std::string_view data) {
        if (!send_request(data)) return std::nullopt;
        return read_reply();
    }

    // True once the server has closed the connection (EOF or reset), within timeout.
    bool wait_closed(Ms timeout = 2000ms) {
        const auto end = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            const auto left =
                std::chrono::duration_cast<Ms>(end - std::chrono::steady_clock::now());
            if (left.count() < 0) return false;
            pollfd p{fd_, POLLIN, 0};
            const int r = ::poll(&p, 1, static_cast<int>(left.count()));
            if (r == 0) return false;
            if (r < 0) continue;
            char tmp[65536];
            const ssize_t n = ::recv(fd_, tmp, sizeof tmp, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE))) return true;
        }
    }

private:
    void set_timeouts() {
        timeval tv{2, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    int fd_ = -1;
    bool connected_ = false;
    std::string buf_;
    NetstringDecoder dec_{200000};
};


}  // namespace

// --- protocol --------------------------------------------------------------

TEST_CASE("socketmap reply: wire forms of socketmap_table(5)") {
    CHECK(encode_reply(SocketmapReply::ok("secure match=.example.com")) ==
          "OK secure match=.example.com");
    CHECK(encode_reply(SocketmapReply::ok("")) == "OK ");
    CHECK(encode_reply(SocketmapReply::notfound()) == "NOTFOUND ");
    CHECK(encode_reply({SocketmapReply::Kind::notfound, "ignored"}) == "NOTFOUND ");
    CHECK(encode_reply(SocketmapReply::temp("dns timeout")) == "TEMP dns timeout");
    CHECK(encode_reply(SocketmapReply::timeout("lookup_wait")) == "TIMEOUT lookup_wait");
    CHECK(encode_reply(SocketmapReply::perm("bad map")) == "PERM bad map");
}

TEST_CASE("socketmap reply: the wire parts framed in place are the netstring of encode_reply()") {
    const SocketmapReply replies[] = {
        SocketmapReply::ok("secure match=mx1.example.com:mx2.example.com servername=hostname"),
        SocketmapReply::ok(""), SocketmapReply::notfound(), {SocketmapReply::Kind::notfound, "ignored"},
        SocketmapReply::temp("dns timeout"), SocketmapReply::timeout("lookup_wait"),
        SocketmapReply::perm("bad map"), SocketmapReply::ok(std::string(100001, 'x'))};
    std::string all, want;
    for (const auto& r : replies) {
        const ReplyWire wire = reply_wire(r);
        CHECK(wire.size() == encode_reply(r).size());
        CHECK(std::string(wire.word) + std::string(wire.text) == encode_reply(r));
        std::string one = "prefix";
        netstring_append(one, wire.word, wire.text);
        CHECK(one == "prefix" + netstring_encode(encode_reply(r)));
        netstring_append(all, wire.word, wire.text);
        want += netstring_encode(encode_reply(r));
    }
    CHECK(all == want);  // appends, never replaces
    CHECK(reply_wire({SocketmapReply::Kind::notfound, "ignored"}).text.empty());
}

TEST_CASE("socketmap server: one request gets one reply; name and key split at the first space") {
    Fixture f(std::make_shared<EchoHandler>());
    f.start();
    Client c(f.port());
    REQUIRE(c.connected());
    CHECK(c.ask("postfix example.com") == std::optional<std::string>("OK postfix|example.com"));
    CHECK(c.ask("postfix a b  c") == std::optional<std::string>("OK postfix|a b  c"));
    CHECK(c.ask("postfix ") ==
          std::optional<std::string>("OK postfix|"));  // empty key: handler's call
    const auto k = f.counters();
    CHECK(k.requests == 3);
    CHECK(k.replies == 3);
    CHECK(k.accepted == 1);
    CHECK(k.open_connections == 1);
}

TEST_CASE("socketmap server: unix socket listener with the configured mode bits") {
    TempDir dir;
    const std::string path = dir.path() + "/socketmap";
    Fixture f(std::make_shared<EchoHandler>());
    const std::string name = f.add_unix_listener(path, 0660);
    f.start();
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 07777) == 0660);
    Client c(path);
    REQUIRE(c.connected());
    CHECK(c.ask("postfix unix.example") == std::optional<std::string>("OK postfix|unix.example"));
    bool closed = false;
    f.on_loop([&] {
        CHECK(f.server().listeners().size() == 2);
        closed = f.server().close_listener(name);
    });
    CHECK(closed);
    CHECK(::lstat(path.c_str(), &st) != 0);  // our socket file is removed
}

TEST_CASE("socketmap server: a request without 'NAME KEY' gets PERM and the connection stays") {
    Fixture f(std::make_shared<EchoHandler>());
    f.start();
    Client c(f.port());
    CHECK(c.ask("nospace") ==
          std::optional<std::string>("PERM invalid request: no space between map name and key"));
    CHECK(c.ask(" key") == std::optional<std::string>("PERM invalid request: empty map name"));
    CHECK(c.ask(std::string("postfix a\0b", 11)) ==
          std::optional<std::string>("PERM invalid request: NUL byte in request"));
    CHECK(c.ask("") ==
          std::optional<std::string>("PERM invalid request: no space between map name and key"));
    CHECK(c.ask("postfix ok.example") == std::optional<std::string>("OK postfix|ok.example"));
    const auto k = f.counters();
    CHECK(k.invalid_requests == 4);
    CHECK(k.requests == 1);
    CHECK(k.protocol_errors == 0);
}

// --- pipelining ------------------------------------------------------------

TEST_CASE(
    "socketmap server: 100 pipelined requests completed in reverse from another thread "
    "are answered in order") {
    auto h = std::make_shared<HoldingHandler>();
    ServerLimits limits;
    limits.max_pipelined = 128;
    Fixture f(h, limits);
    f.start();
    Client c(f.port());
    std::string batch;
    for (int i = 0; i < 100; ++i) netstring_append(batch, "postfix d" + std::to_string(i));
    REQUIRE(c.send_raw(batch));
    REQUIRE(h->wait_total(100));
    std::thread worker([h] {
        auto held = h->take();
        std::reverse(held.begin(), held.end());
        for (auto& x : held) x.done(SocketmapReply::ok(x.req.key));
    });
    worker.join();
    bool in_order = true;
    for (int i = 0; i < 100; ++i) {
        const auto r = c.read_reply();
        in_order = in_order && r == std::optional<std::string>("OK d" + std::to_string(i));
    }
    CHECK(in_order);
    CHECK(f.counters().replies == 100);
}

TEST_CASE(
    "socketmap server: answers given at once, from handle() and later from a thread, "
    "pipelined, come back in request order") {
    auto h = std::make_shared<MixedHandler>();
    Fixture f(h);
    f.start();
    Client c(f.port());
    const std::vector<std::string> keys = {"now0",    "later1", "now2", "inline3", "now4",
                                           "later5",  "now6",   "inline7"};
    std::string batch;
    for (const auto& k : keys) netstring_append(batch, "postfix " + k);
    REQUIRE(c.send_raw(batch));
    REQUIRE(h->held.wait_total(2));
    // The first reply needs nothing held; the rest wait behind later1.
    CHECK(c.read_reply() == std::optional<std::string>("OK now0"));
    auto held = h->held.take();
    REQUIRE(held.size() == 2);
    std::thread worker([&held] {
        held[1].done(SocketmapReply::ok(held[1].req.key));  // later5 first
        held[0].done(SocketmapReply::ok(held[0].req.key));
    });
    worker.join();
    for (std::size_t i = 1; i < keys.size(); ++i)
        CHECK(c.read_reply() == std::optional<std::string>("OK " + keys[i]));
    // Back to answers at once once nothing is owed.
    CHECK(c.ask("postfix now8") == std::optional<std::string>("OK now8"));
    const auto k = f.counters();
    CHECK(k.requests == 9);
    CHECK(k.replies == 9);
    CHECK(k.handler_misuse == 0);
}

TEST_CASE("socketmap server: a request split across two reads at every byte offset is answered") {
    // A unix socket: a send is in the server's socket when it returns, so
    // the loop round after the first part makes the server read it alone.
    TempDir dir;
    auto h = std::make_shared<FastPathHandler>();
    Fixture f(h);
    f.add_unix_listener(dir.path() + "/s", 0600);
    f.start();
    Client c(dir.path() + "/s");
    REQUIRE(c.connected());
    const std::string wire =
        netstring_encode("postfix now.example") + netstring_encode("postfix other.example");
    bool all_ok = true;
    for (std::size_t cut = 1; cut < wire.size(); ++cut) {
        CAPTURE(cut);
        REQUIRE(c.send_raw(std::string_view(wire).substr(0, cut)));
        f.on_loop([] {});
        REQUIRE(c.send_raw(std::string_view(wire).substr(cut)));
        all_ok = all_ok && c.read_reply() == std::optional<std::string>("OK now|now.example") &&
                 c.read_reply() == std::optional<std::string>("OK later|other.example");
    }
    CHECK(all_ok);
    const auto k = f.counters();
    CHECK(k.requests == 2 * (wire.size() - 1));
    CHECK(k.replies == k.requests);
    CHECK(k.protocol_errors == 0);
}

TEST_CASE("socketmap server: no more than max_pipelined requests per connection are in flight") {
    auto h = std::make_shared<HoldingHandler>();
    ServerLimits limits;
    limits.max_pipelined = 4;
    Fixture f(h, limits);
    f.start();
    Client c(f.port());
    std::string batch;
    for (int i = 0; i < 10; ++i) netstring_append(batch, "postfix p" + std::to_string(i));
    REQUIRE(c.send_raw(batch));
    REQUIRE(h->wait_total(4));
    f.on_loop([] {});  // one more loop round: still 4
    CHECK(h->total() == 4);
    std::vector<std::string> replies;
    std::size_t answered = 0;
    bool within_cap = true;
    while (answered < 10) {
        REQUIRE(h->wait_total(std::min<std::size_t>(10, answered + 4)));
        f.on_loop([] {});
        within_cap = within_cap && h->total() <= answered + 4;
        auto held = h->take();
        for (auto& x : held) x.done(SocketmapReply::ok(x.req.key));
        for (std::size_t i = 0; i < held.size(); ++i) {
            auto r = c.read_reply();
            REQUIRE(r.has_value());
            replies.push_back(*r);
        }
        answered += held.size();
    }
    CHECK(within_cap);
    for (int i = 0; i < 10; ++i) CHECK(replies[i] == "OK p" + std::to_string(i));
}

TEST_CASE("socketmap server: the client may half-close; requests already sent are answered") {
    Fixture f(std::make_shared<EchoHandler>());
    f.start();
    Client c(f.port());
    std::string batch;
    for (int i = 0; i < 3; ++i) netstring_append(batch, "postfix h" + std::to_string(i));
    REQUIRE(c.send_raw(batch));
    ::shutdown(c.fd(), SHUT_WR);
    for (int i = 0; i < 3; ++i)
        CHECK(c.read_reply() == std::optional<std::string>("OK postfix|h" + std::to_string(i)));
    CHECK(c.wait_closed());
    CHECK(f.wait_counters([](const ServerCounters& k) { return k.open_connections == 0; }));
}

// --- malformed input -------------------------------------------------------

TEST_CASE("socketmap server: a malformed netstring closes only that connection") {
    Fixture f(std::make_shared<EchoHandler>());
    f.start();
    Client good(f.port());
    REQUIRE(good.ask("postfix before.example").has_value());
    for (const std::string bad : {"abc:", "05:hello,", "5:hello;", ":", "3:a b"}) {
        CAPTURE(bad);
        Client c(f.port());
        REQUIRE(c.send_raw(bad == "3:a b" ? bad + "X" : bad));
        CHECK(c.wait_closed());
        CHECK(good.ask("postfix still.example") ==
              std::optional<std::string>("OK postfix|still.example"));
    }
    const auto k = f.counters();
    CHECK(k.protocol_errors == 5);
    CHECK(k.open_connections == 1);
    CHECK(f.count_logs("bad request: netstring") >= 1);
}

TEST_CASE("socketmap server: random bytes never crash or wedge the server") {
    Fixture f(std::make_shared<EchoHandler>());
    f.start();
    std::mt19937 rng(8461);
    const std::string alphabet = "0123456789:, abcPOK\n\r\xff";
    for (int round = 0; round < 60; ++round) {
        Client c(f.port());
        std::string junk;
        const int len = 1 + static_cast<int>(rng() % 300);
        const bool printable = round % 2 == 0;
        for (int i = 0; i < len; ++i)
            junk += printable ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng() & 0xff);
        if (round % 5 == 0) junk = netstring_encode("postfix x") + junk;
        c.send_raw(junk);
    }
    Client good(f.port());
    CHECK(good.ask("postfix after.example") ==
          std::optional<std::string>("OK postfix|after.example"));
    CHECK(f.wait_counters([](const ServerCounters& k) { return k.open_connections == 1; }));
}

TEST_CASE("socketmap server: a 1 MB netstring is refused at its length, quickly") {
    Fixture f(std::make_shared<EchoHandler>());
    f.start();
    Client good(f.port());
    Client big(f.port());
    const auto start = std::chrono::steady_clock::now();
    std::thread sender([&] {
        std::string payload = "1048576:" + std::string(1048576, 'x') + ",";
        big.send_raw(payload);  // fails part-way once the server closes
    });
    CHECK(big.wait_closed());
    const auto elapsed = std::chrono::steady_clock::now() - start;
    sender.join();
    CHECK(elapsed < 1s);
    CHECK(good.ask("postfix fine.example") ==
          std::optional<std::string>("OK postfix|fine.example"));
    const auto k = f.counters();
    CHECK(k.protocol_errors == 1);
    CHECK(k.requests == 1);
    CHECK(f.count_logs("max_request_bytes") == 1);
    CHECK(f.count_logs("over the limit of 4096") == 1);
}

// --- limits ----------------------------------------------------------------

TEST_CASE("socketmap server: 2000 idle connections do not slow down another client") {
    rlimit rl{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_cur < 4200 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
        ::getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < 4200) {
        MESSAGE("RLIMIT_NOFILE too low for 2000 connections; skipped");
        return;
    }
    Fixture f(std::make_shared<EchoHandler>());
    f.start();
    std::vector<std::unique_ptr<Client>> idle;
    for (int i = 0; i < 2000; ++i) {
        idle.push_back(std::make_unique<Client>(f.port()));
        REQUIRE(idle.back()->connected());
    }
    REQUIRE(f.wait_counters([](const ServerCounters& k) { return k.open_connections == 2000; },
                            5000ms));
    Client c(f.port());
    auto worst = std::chrono::steady_clock::duration::zero();
    bool all_ok = true;
    const auto t_start = std::chrono::steady_clock::now();
    for (int i = 0; i < 100; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        all_ok = all_ok && c.ask("postfix busy.example").has_value();
        worst = std::max(worst, std::chrono::steady_clock::now() - t0);
    }
    CHECK(all_ok);
    // Bounded generously (shared CI machines); typically ~100 us per request.
    CHECK(std::chrono::steady_clock::now() - t_start < 1s);
    MESSAGE("worst latency with 2000 idle connections: "
            << std::chrono::duration_cast<std::chrono::microseconds>(worst).count() << " us");
    idle.clear();
    CHECK(f.wait_counters([](const ServerCounters& k) { return k.open_connections == 1; }, 5000ms));
}

TEST_CASE("socketmap server: idle timeout closes silent, half-written and trickling clients") {
    ServerLimits limits;
    limits.idle_timeout = 200ms;
    Fixture f(std::make_shared<EchoHandler>(), limits);
    f.start();
    const auto start = std::chrono::steady_clock::now();
    Client silent(f.port());
    Client half(f.port());
    Client trickle(f.port());
    Client active(f.port());
    REQUIRE(half.send_raw("20:postfix half"));
    std::atomic<bool> stop{false};
    // A slowloris client: one byte every 40 ms never completes a request.
    std::thread trickler([&] {
        const std::string slow = "1000:postfix " + std::string(990, 'z');
        for (std::size_t i = 0; i < slow.size() && !stop; ++i) {
            if (!trickle.send_raw(slow.substr(i, 1))) break;
            std::this_thread::sleep_for(40ms);
        }
    });
    // An active client: a complete request every 50 ms keeps it open.
    std::atomic<bool> active_ok{true};
    std::thread asker([&] {
        while (!stop) {
            if (!active.ask("postfix active.example").has_value()) active_ok = false;
            std::this_thread::sleep_for(50ms);
        }
    });
    CHECK(silent.wait_closed(2000ms));
    const auto silent_closed = std::chrono::steady_clock::now() - start;
    CHECK(half.wait_closed(2000ms));
    CHECK(trickle.wait_closed(2000ms));
    const auto all_closed = std::chrono::steady_clock::now() - start;
    std::this_thread::sleep_for(200ms);  // the active client outlives another timeout
    stop = true;
    trickler.join();
    asker.join();
    CHECK(active_ok);
    CHECK(active.ask("postfix still.example").has_value());
    CHECK(silent_closed >= 200ms);
    CHECK(all_closed < 2000ms);
    const auto k = f.counters();
    CHECK(k.idle_closed == 3);
    CHECK(k.open_connections == 1);
    CHECK(f.count_logs("incomplete request idle") == 2);
}

TEST_CASE("socketmap server: waiting for the handler is not idle (manual clock)") {
    ManualMonotonicClock clock;
    auto h = std::make_shared<HoldingHandler>();
    ServerLimits limits;
    limits.idle_timeout = 100ms;
    Fixture f(h, limits, &clock);
    f.start();
    Client c(f.port());
    REQUIRE(c.send_request("postfix slow.example"));
    REQUIRE(h->wait_total(1));
    clock.advance(1s);  // ten idle timeouts while the handler works
    f.on_loop([] {});
    f.on_loop([] {});
    CHECK(f.counters().idle_closed == 0);
    auto held = h->take();
    held[0].done(SocketmapReply::notfound());
    CHECK(c.read_reply() == std::optional<std::string>("NOTFOUND "));
    clock.advance(99ms);
    f.on_loop([] {});
    CHECK(f.counters().open_connections == 1);
    clock.advance(2ms);  // now idle since the reply for > 100 ms
    f.on_loop([] {});
    CHECK(c.wait_closed());
    CHECK(f.counters().idle_closed == 1);
}

TEST_CASE("socketmap server: over max_connections, connections are closed at once, logged once") {
    ServerLimits limits;
    limits.max_connections = 3;
    Fixture f(std::make_shared<EchoHandler>(), limits);
    f.start();
    std::vector<std::unique_ptr<Client>> ok;
    for (int i = 0; i < 3; ++i) {
        ok.push_back(std::make_unique<Client>(f.port()));
        REQUIRE(ok.back()->ask("postfix a.example").has_value());
    }
    for (int i = 0; i < 3; ++i) {
        Client extra(f.port());
        CHECK(extra.wait_closed());
    }
    auto k = f.counters();
    CHECK(k.rejected_over_limit == 3);
    CHECK(k.accepted == 3);
    CHECK(f.count_logs("max_connections (3) reached") == 1);  // rate-limited
    ok[0]->close();
    REQUIRE(f.wait_counters([](const ServerCounters& c) { return c.open_connections == 2; }));
    Client again(f.port());
    CHECK(again.ask("postfix b.example") == std::optional<std::string>("OK postfix|b.example"));
}

TEST_CASE(
    "socketmap server: a client that never reads is closed when unsent output passes the cap") {
    ServerLimits limits;
    limits.max_unsent_bytes = std::size_t{256} * 1024;
    const std::string big(90000, 'r');
    Fixture f(std::make_shared<FnHandler>(
                  [&big](const SocketmapRequest&, ReplyFn done) { done(SocketmapReply::ok(big)); }),
              limits);
    f.start();
    Client lazy(f.port(), 4096);
    std::thread sender([&] {
        for (int i = 0; i < 2000; ++i)
            if (!lazy.send_request("postfix flood.example")) break;
    });
    CHECK(f.wait_counters([](const ServerCounters& k) { return k.write_overflow_closed == 1; },
                          5000ms));
    sender.join();
    Client good(f.port());
    const auto r = good.ask("postfix ok.example");
    REQUIRE(r.has_value());
    CHECK(r->size() == 90003);
    CHECK(f.count_logs("does not read its replies") == 1);
}

// --- handler contract ------------------------------------------------------

TEST_CASE("socketmap server: done() after the connection closed is dropped safely") {
    TempDir dir;
    auto h = std::make_shared<HoldingHandler>();
    Fixture f(h);
    f.add_unix_listener(dir.path() + "/s", 0600);
    f.start();
    {
        Client tcp(f.port());
        Client unix_client(dir.path() + "/s");
        REQUIRE(tcp.send_request("postfix gone.example"));
        REQUIRE(unix_client.send_request("postfix gone2.example"));
        REQUIRE(h->wait_total(2));
        tcp.reset();          // TCP: a reset, as from a crashed client
        unix_client.close();  // unix: a close is seen as a hangup at once
    }
    REQUIRE(f.wait_counters([](const ServerCounters& k) { return k.open_connections == 0; }));
    auto held = h->take();
    std::thread late([&] {
        for (auto& x : held) x.done(SocketmapReply::ok("too late"));
    });
    late.join();
    f.on_loop([] {});
    const auto k = f.counters();
    CHECK(k.replies_dropped == 2);
    CHECK(k.replies == 0);
    Client c2(f.port());  // still serving
    REQUIRE(c2.send_request("postfix next.example"));
    REQUIRE(h->wait_total(3));
    h->take()[0].done(SocketmapReply::ok("fresh"));
    CHECK(c2.read_reply() == std::optional<std::string>("OK fresh"));
}

TEST_CASE("socketmap server: after a plain TCP close, the owed reply is attempted then dropped") {
    // TCP cannot tell close() from shutdown(SHUT_WR): the server keeps the
    // connection until the handler answers (bounded by the handler's own
    // deadline), and the write to the vanished client fails quietly.
    auto h = std::make_shared<HoldingHandler>();
    Fixture f(h);
    f.start();
    {
        Client c(f.port());
        REQUIRE(c.send_request("postfix closing.example"));
        REQUIRE(h->wait_total(1));
    }
    f.on_loop([] {});
    std::thread late(
        [held = h->take()] { held[0].done(SocketmapReply::ok(std::string(70000, 'x'))); });
    late.join();
    CHECK(f.wait_counters([](const ServerCounters& k) { return k.open_connections == 0; }));
}

TEST_CASE("socketmap server: done() twice is ignored; done() never called answers TEMP") {
    Fixture f(std::make_shared<FnHandler>([](const SocketmapRequest& req, ReplyFn done) {
        if (req.key == "twice") {
            done(SocketmapReply::ok("first"));
            done(SocketmapReply::ok("second"));
        } else if (req.key == "never") {
            // dropped
        } else if (req.key == "throws") {
            throw std::runtime_error("boom");
        } else {
            done(SocketmapReply::ok(req.key));
        }
    }));
    f.start();
    Client c(f.port());
    CHECK(c.ask("postfix twice") == std::optional<std::string>("OK first"));
    const auto never = c.ask("postfix never");
    REQUIRE(never.has_value());
    CHECK(never->rfind("TEMP ", 0) == 0);
    const auto throws = c.ask("postfix throws");
    REQUIRE(throws.has_value());
    CHECK(*throws == "TEMP stsguard: internal error");
    CHECK(c.ask("postfix after") == std::optional<std::string>("OK after"));
    CHECK(f.counters().handler_misuse == 2);
    CHECK(f.count_logs("handler threw: boom") == 1);
}

TEST_CASE("socketmap server: answer_now() answers at once; later falls back to handle()") {
    auto h = std::make_shared<FastPathHandler>();
    Fixture f(h);
    f.start();
    Client c(f.port());
    CHECK(c.ask("postfix now1") == std::optional<std::string>("OK now|now1"));
    CHECK(c.ask("postfix other") == std::optional<std::string>("OK later|other"));
    CHECK(h->handled == 1);  // handle() only for the request answer_now() passed on
    CHECK(c.ask("postfix boom") == std::optional<std::string>("TEMP stsguard: internal error"));
    CHECK(f.count_logs("handler threw: fast path failed") == 1);
    CHECK(c.ask("postfix now2") == std::optional<std::string>("OK now|now2"));
    const auto k = f.counters();
    CHECK(k.requests == 4);
    CHECK(k.replies == 4);
    CHECK(k.handler_misuse == 0);
}

TEST_CASE("socketmap server: replies over 100000 bytes or with NUL become TEMP") {
    Fixture f(std::make_shared<FnHandler>([](const SocketmapRequest& req, ReplyFn done) {
        if (req.key == "max") done(SocketmapReply::ok(std::string(99997, 'm')));  // 100000 total
        if (req.key == "over") done(SocketmapReply::ok(std::string(99998, 'o')));
        if (req.key == "nul") done(SocketmapReply::ok(std::string("a\0b", 3)));
        // NOTFOUND sends no text, so a NUL in it never reaches the wire.
        if (req.key == "nul-notfound") done({SocketmapReply::Kind::notfound, std::string("a\0b", 3)});
    }));
    f.start();
    Client c(f.port());
    const auto max = c.ask("postfix max");
    REQUIRE(max.has_value());
    CHECK(max->size() == 100000);
    const auto over = c.ask("postfix over");
    REQUIRE(over.has_value());
    CHECK(over->rfind("TEMP ", 0) == 0);
    const auto nul = c.ask("postfix nul");
    REQUIRE(nul.has_value());
    CHECK(nul->rfind("TEMP ", 0) == 0);
    CHECK(c.ask("postfix nul-notfound") == std::optional<std::string>("NOTFOUND "));
    CHECK(f.counters().bad_replies == 2);
}

TEST_CASE("socketmap server: set_handler() routes new requests; in-flight ones finish on the old") {
    auto old_h = std::make_shared<HoldingHandler>();
    Fixture f(old_h);
    f.start();
    Client c(f.port());
    REQUIRE(c.send_request("postfix inflight"));
    REQUIRE(old_h->wait_total(1));
    f.on_loop([&] { f.server().set_handler(std::make_shared<EchoHandler>()); });
    std::weak_ptr<HoldingHandler> weak_old = old_h;
    auto held = old_h->take();
    old_h.reset();
    CHECK_FALSE(weak_old.expired());  // kept alive by the in-flight request
    held[0].done(SocketmapReply::ok("old"));
    CHECK(c.read_reply() == std::optional<std::string>("OK old"));
    CHECK(c.ask("postfix new") == std::optional<std::string>("OK postfix|new"));
    held.clear();
    f.on_loop([] {});
    CHECK(weak_old.expired());
}

// --- shutdown --------------------------------------------------------------

TEST_CASE("socketmap server: drain answers in-flight requests, then closes; no new connections") {
    auto h = std::make_shared<HoldingHandler>();
    Fixture f(h);
    f.start();
    Client busy(f.port());
    Client idle(f.port());
    REQUIRE(busy.send_request("postfix draining.example"));
    REQUIRE(h->wait_total(1));
    REQUIRE(f.wait_counters([](const ServerCounters& k) { return k.open_connections == 2; }));
    auto drained = std::make_shared<std::promise<void>>();
    f.on_loop([&] {
        f.server().stop_accepting();
        f.server().drain(5000ms, [drained] { drained->set_value(); });
    });
    CHECK(idle.wait_closed());
    Client late(f.port());
    CHECK_FALSE(late.connected());
    auto fut = drained->get_future();
    CHECK(fut.wait_for(0ms) == std::future_status::timeout);
    h->take()[0].done(SocketmapReply::ok("last answer"));
    CHECK(busy.read_reply() == std::optional<std::string>("OK last answer"));
    CHECK(busy.wait_closed());
    CHECK(fut.wait_for(2s) == std::future_status::ready);
}

TEST_CASE("socketmap server: drain deadline closes connections whose replies never come") {
    auto h = std::make_shared<HoldingHandler>();
    Fixture f(h);
    f.start();
    Client stuck(f.port());
    REQUIRE(stuck.send_request("postfix stuck.example"));
    REQUIRE(h->wait_total(1));
    auto drained = std::make_shared<std::promise<void>>();
    const auto start = std::chrono::steady_clock::now();
    f.on_loop([&] {
        f.server().stop_accepting();
        f.server().drain(100ms, [drained] { drained->set_value(); });
    });
    CHECK(drained->get_future().wait_for(2s) == std::future_status::ready);
    CHECK(std::chrono::steady_clock::now() - start >= 100ms);
    CHECK(stuck.wait_closed());
    CHECK(f.counters().replies_dropped == 1);
    h->take().clear();  // the late ReplyFn dies: nothing left to answer, no crash
    f.on_loop([] {});
    CHECK(f.count_logs("drain deadline") == 1);
}
