// Tests for postfix/listen_address: Postfix-style endpoint syntax and the
// listening sockets (unix socket files: stale removal, owner, mode).
#include "postfix/listen_address.h"
#include "tests/temp_dir.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

using stsguard::testing::TempDir;
using namespace stsguard;

namespace {


int connect_unix(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

ListenSocket open_ok(const std::string& text, const UnixSocketOptions& o = {}) {
    auto a = parse_listen_address(text);
    REQUIRE(a.found());
    auto s = open_listen_socket(a.value(), o);
    if (s.failed()) FAIL(s.failure().reason);
    return std::move(s.value());
}

}  // namespace

TEST_CASE("listen address: inet and unix forms parse to canonical text") {
    struct Case {
        const char* text;
        const char* canonical;
        ListenAddress::Kind kind;
    };
    const std::vector<Case> cases = {
        {"inet:127.0.0.1:8461", "inet:127.0.0.1:8461", ListenAddress::Kind::inet},
        {"inet:[::1]:8461", "inet:[::1]:8461", ListenAddress::Kind::inet},
        {"inet:[0:0::1]:25", "inet:[::1]:25", ListenAddress::Kind::inet},
        {"inet:localhost:8461", "inet:127.0.0.1:8461", ListenAddress::Kind::inet},
        {"inet:0.0.0.0:1", "inet:0.0.0.0:1", ListenAddress::Kind::inet},
        {"inet:127.0.0.1:65535", "inet:127.0.0.1:65535", ListenAddress::Kind::inet},
        {"inet:127.0.0.1:0", "inet:127.0.0.1:0", ListenAddress::Kind::inet},
        {"unix:/run/stsguard/socketmap", "unix:/run/stsguard/socketmap",
         ListenAddress::Kind::unix_path},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        auto a = parse_listen_address(c.text);
        REQUIRE(a.found());
        CHECK(a.value().kind == c.kind);
        CHECK(a.value().to_string() == c.canonical);
    }
    auto v6 = parse_listen_address("inet:[::1]:8461");
    CHECK(v6.value().host == "::1");
    CHECK(v6.value().port == 8461);
    CHECK(v6.value().is_ipv6());
    CHECK(parse_listen_address("unix:/x").value().path == "/x");
}

TEST_CASE("listen address: malformed addresses are refused with a reason") {
    struct Case {
        std::string text;
        const char* why;  // a substring of the message
    };
    const std::vector<Case> cases = {
        {"tcp:127.0.0.1:1", "must start with"},
        {"", "must start with"},
        {"inet:127.0.0.1", "expected inet:HOST:PORT"},
        {"inet:127.0.0.1:", "not a number"},
        {"inet:127.0.0.1:65536", "above 65535"},
        {"inet:127.0.0.1:99999", "above 65535"},
        {"inet:127.0.0.1:123456", "not a number"},
        {"inet:127.0.0.1:+1", "not a number"},
        {"inet:127.0.0.1: 1", "not a number"},
        {"inet:127.0.0.1:0x10", "not a number"},
        {"inet::8461", "missing host"},
        {"inet:8461", "expected inet:HOST:PORT"},
        {"inet:::1:8461", "must be in brackets"},
        {"inet:[::1]8461", "expected ':PORT'"},
        {"inet:[::1:8461", "missing ']'"},
        {"inet:[127.0.0.1]:1", "not an IPv6 address"},
        {"inet:[fe80::1%eth0]:1", "not an IPv6 address"},
        {"inet:256.1.1.1:1", "not an IPv4 address"},
        {"inet:mail.example.com:1", "host names are not resolved"},
        {"unix:", "missing socket path"},
        {"unix:relative/path", "must be absolute"},
        {"unix:/" + std::string(200, 'a'), "longer than 107"},
        {std::string("unix:/a\0b", 9), "NUL"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        auto a = parse_listen_address(c.text);
        REQUIRE(a.failed());
        CHECK(a.failure().code == "listen-syntax");
        CHECK(a.failure().reason.find(c.why) != std::string::npos);
        CAPTURE(a.failure().reason);
    }
}

TEST_CASE("listen socket: inet on an ephemeral port is listening and non-blocking") {
    auto s = open_ok("inet:127.0.0.1:0");
    CHECK(s.fd() >= 0);
    CHECK(s.bound_port() != 0);
    CHECK((::fcntl(s.fd(), F_GETFL) & O_NONBLOCK) != 0);
    CHECK((::fcntl(s.fd(), F_GETFD) & FD_CLOEXEC) != 0);
    const int c = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(s.bound_port());
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    ::close(c);

    // The same port twice: a clear error, not a silent second listener.
    auto again = parse_listen_address("inet:127.0.0.1:" + std::to_string(s.bound_port()));
    auto s2 = open_listen_socket(again.value());
    REQUIRE(s2.failed());
    CHECK(s2.failure().code == "listen-socket");
    CHECK(s2.failure().reason.find("bind()") != std::string::npos);
}

TEST_CASE("listen socket: IPv6 loopback") {
    auto a = parse_listen_address("inet:[::1]:0");
    auto s = open_listen_socket(a.value());
    if (s.failed()) {
        // Kernels without IPv6 on lo: nothing to test here.
        CHECK(s.failure().reason.find("inet:[::1]:0") != std::string::npos);
        return;
    }
    CHECK(s.value().bound_port() != 0);
}

TEST_CASE("listen socket: unix socket gets the configured mode, owner and group") {
    TempDir dir;
    const std::string path = dir.path() + "/smap.sock";
    const std::string owner = std::to_string(::geteuid());
    const std::string group = std::to_string(::getegid());
    for (int mode : {0600, 0660, 0666, 0640}) {
        CAPTURE(mode);
        auto s = open_ok("unix:" + path, UnixSocketOptions{owner, group, mode});
        struct stat st {};
        REQUIRE(::lstat(path.c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
        CHECK((st.st_mode & 07777) == static_cast<mode_t>(mode));
        CHECK(st.st_uid == ::geteuid());
        CHECK(st.st_gid == ::getegid());
        const int c = connect_unix(path);
        CHECK(c >= 0);
        if (c >= 0) ::close(c);
    }
    // Closing our socket removes its file.
    struct stat st {};
    CHECK(::lstat(path.c_str(), &st) != 0);
}

TEST_CASE("listen socket: owner and group by name; unknown names are errors") {
    TempDir dir;
    const std::string path = dir.path() + "/named.sock";
    if (::geteuid() == 0) {
        auto s = open_ok("unix:" + path, UnixSocketOptions{"nobody", "", 0660});
        struct stat st {};
        REQUIRE(::lstat(path.c_str(), &st) == 0);
        CHECK(st.st_uid != 0);  // nobody
    }
    auto a = parse_listen_address("unix:" + path);
    auto bad_user = open_listen_socket(a.value(), UnixSocketOptions{"no-such-user-xyz", "", 0660});
    REQUIRE(bad_user.failed());
    CHECK(bad_user.failure().reason.find("unknown user 'no-such-user-xyz'") != std::string::npos);
    auto bad_group =
        open_listen_socket(a.value(), UnixSocketOptions{"", "no-such-group-xyz", 0660});
    REQUIRE(bad_group.failed());
    CHECK(bad_group.failure().reason.find("unknown group") != std::string::npos);
    auto bad_mode = open_listen_socket(a.value(), UnixSocketOptions{"", "", 010000});
    REQUIRE(bad_mode.failed());
    CHECK(bad_mode.failure().reason.find("mode") != std::string::npos);
}

TEST_CASE("listen socket: a stale unix socket file is replaced") {
    TempDir dir;
    const std::string path = dir.path() + "/stale.sock";
    {
        // Leave a socket file behind with nobody listening on it.
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
        ::close(fd);
    }
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    auto s = open_ok("unix:" + path);
    const int c = connect_unix(path);
    CHECK(c >= 0);
    if (c >= 0) ::close(c);
}

TEST_CASE("listen socket: a live server's unix socket is never taken over") {
    TempDir dir;
    const std::string path = dir.path() + "/live.sock";
    auto first = open_ok("unix:" + path);
    auto a = parse_listen_address("unix:" + path);
    auto second = open_listen_socket(a.value());
    REQUIRE(second.failed());
    CHECK(second.failure().reason.find("another server") != std::string::npos);
    const int c = connect_unix(path);  // the first still works
    CHECK(c >= 0);
    if (c >= 0) ::close(c);
}

TEST_CASE("listen socket: a regular file, directory or symlink at the path is left alone") {
    TempDir dir;
    const std::string file = dir.path() + "/file";
    const std::string sub = dir.path() + "/dir";
    const std::string link = dir.path() + "/link";
    {
        const int fd = ::open(file.c_str(), O_CREAT | O_WRONLY, 0600);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, "keep", 4) == 4);
        ::close(fd);
    }
    REQUIRE(::mkdir(sub.c_str(), 0700) == 0);
    REQUIRE(::symlink(file.c_str(), link.c_str()) == 0);
    for (const std::string& p : {file, sub, link}) {
        CAPTURE(p);
        auto a = parse_listen_address("unix:" + p);
        auto s = open_listen_socket(a.value());
        REQUIRE(s.failed());
        CHECK(s.failure().reason.find("not a socket") != std::string::npos);
    }
    struct stat st {};
    REQUIRE(::stat(file.c_str(), &st) == 0);
    CHECK(st.st_size == 4);
    REQUIRE(::lstat(link.c_str(), &st) == 0);
    CHECK(S_ISLNK(st.st_mode));
}

TEST_CASE("listen socket: close() does not remove a socket file that is no longer ours") {
    TempDir dir;
    const std::string path = dir.path() + "/replaced.sock";
    auto s = open_ok("unix:" + path);
    // Someone else replaced the file (e.g. a newer server after unlink).
    REQUIRE(::unlink(path.c_str()) == 0);
    auto other = open_ok("unix:" + path);
    s.close();
    const int c = connect_unix(path);
    CHECK(c >= 0);
    if (c >= 0) ::close(c);

    // Moving keeps ownership: only the destination removes the file.
    ListenSocket moved = std::move(other);
    CHECK(other.fd() == -1);
    struct stat st {};
    CHECK(::lstat(path.c_str(), &st) == 0);
    moved.close();
    CHECK(::lstat(path.c_str(), &st) != 0);
}
