#include "postfix/listen_address.h"

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

namespace stsguard {

namespace {

constexpr std::size_t kMaxUnixPath = sizeof(sockaddr_un::sun_path) - 1;

Failure syntax_error(std::string_view text, const std::string& why) {
    return Failure::perm("listen-syntax", "listen address '" + std::string(text) + "': " + why);
}

Failure socket_error(const ListenAddress& a, const std::string& what, int err) {
    std::string msg = "listen on " + a.to_string() + ": " + what;
    if (err != 0) msg += ": " + std::string(std::strerror(err));
    return Failure::perm("listen-socket", msg);
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// Decimal id or a user/group name.  Returns false if unknown.
bool resolve_id(const std::string& name, bool is_user, unsigned& out) {
    if (all_digits(name)) {
        if (name.size() > 9) return false;
        out = static_cast<unsigned>(std::stoul(name));
        return true;
    }
    long size = sysconf(is_user ? _SC_GETPW_R_SIZE_MAX : _SC_GETGR_R_SIZE_MAX);
    std::vector<char> buf(size > 0 ? static_cast<std::size_t>(size) : 16384);
    for (int attempt = 0; attempt < 8; ++attempt) {
        int rc;
        if (is_user) {
            passwd pw{}, *res = nullptr;
            rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res);
            if (rc == 0) {
                if (res == nullptr) return false;
                out = res->pw_uid;
                return true;
            }
        } else {
            group gr{}, *res = nullptr;
            rc = getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &res);
            if (rc == 0) {
                if (res == nullptr) return false;
                out = res->gr_gid;
                return true;
            }
        }
        if (rc != ERANGE) return false;
        buf.resize(buf.size() * 2);
    }
    return false;
}

// Is something accepting on this unix socket?  Only ECONNREFUSED proves
// it is stale; anything else (connected, backlog full, no permission)
// means "do not touch".
int probe_unix_socket(const sockaddr_un& sa) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    int err = 0;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) < 0) err = errno;
    ::close(fd);
    return err;
}

Lookup<ListenSocket> fail_closing(int fd, Failure f) {
    if (fd >= 0) ::close(fd);
    return f;
}

}  // namespace

std::string ListenAddress::to_string() const {
    if (kind == Kind::unix_path) return "unix:" + path;
    if (is_ipv6()) return "inet:[" + host + "]:" + std::to_string(port);
    return "inet:" + host + ":" + std::to_string(port);
}

Lookup<ListenAddress> parse_listen_address(std::string_view text) {
    ListenAddress a;
    if (text.substr(0, 5) == "unix:") {
        a.kind = ListenAddress::Kind::unix_path;
        a.path = std::string(text.substr(5));
        if (a.path.empty()) return syntax_error(text, "missing socket path after 'unix:'");
        if (a.path.front() != '/') return syntax_error(text, "the socket path must be absolute");
        if (a.path.find('\0') != std::string::npos)
            return syntax_error(text, "the socket path contains a NUL byte");
        if (a.path.size() > kMaxUnixPath)
            return syntax_error(
                text, "the socket path is longer than " + std::to_string(kMaxUnixPath) + " bytes");
        return a;
    }
    if (text.substr(0, 5) != "inet:")
        return syntax_error(text, "must start with 'inet:' or 'unix:'");
    std::string_view rest = text.substr(5);
    std::string_view host, port;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos)
            return syntax_error(text, "missing ']' after IPv6 address");
        host = rest.substr(1, close - 1);
        if (close + 1 >= rest.size() || rest[close + 1] != ':')
            return syntax_error(text, "expected ':PORT' after ']'");
        port = rest.substr(close + 2);
        in6_addr v6{};
        if (::inet_pton(AF_INET6, std::string(host).c_str(), &v6) != 1)
            return syntax_error(text, "'" + std::string(host) + "' is not an IPv6 address");
        char buf[INET6_ADDRSTRLEN];
        ::inet_ntop(AF_INET6, &v6, buf, sizeof buf);
        a.host = buf;
    } else {
        const auto colon = rest.rfind(':');
        if (colon == std::string_view::npos) return syntax_error(text, "expected inet:HOST:PORT");
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
        if (host.empty()) return syntax_error(text, "missing host (use 127.0.0.1 or [::1])");
        if (host.find(':') != std::string_view::npos)
            return syntax_error(text, "an IPv6 address must be in brackets: inet:[ADDR]:PORT");
        if (host == "localhost") {
            a.host = "127.0.0.1";
        } else {
            in_addr v4{};
            if (::inet_pton(AF_INET, std::string(host).c_str(), &v4) != 1)
                return syntax_error(text, "'" + std::string(host) +
                                              "' is not an IPv4 address (host names are not "
                                              "resolved)");
            a.host = std::string(host);
        }
    }
    if (!all_digits(port) || port.size() > 5)
        return syntax_error(text, "port '" + std::string(port) + "' is not a number 0-65535");
    const unsigned long p = std::stoul(std::string(port));
    if (p > 65535) return syntax_error(text, "port " + std::string(port) + " is above 65535");
    a.port = static_cast<std::uint16_t>(p);
    return a;
}

ListenSocket::~ListenSocket() { close(); }

ListenSocket::ListenSocket(ListenSocket&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      address_(std::move(o.address_)),
      bound_port_(o.bound_port_),
      dev_(std::exchange(o.dev_, 0)),
      ino_(std::exchange(o.ino_, 0)) {}

ListenSocket& ListenSocket::operator=(ListenSocket&& o) noexcept {
    if (this != &o) {
        close();
        fd_ = std::exchange(o.fd_, -1);
        address_ = std::move(o.address_);
        bound_port_ = o.bound_port_;
        dev_ = std::exchange(o.dev_, 0);
        ino_ = std::exchange(o.ino_, 0);
    }
    return *this;
}

void ListenSocket::close() {
    if (fd_ < 0) return;
    if (address_.kind == ListenAddress::Kind::unix_path && ino_ != 0) {
        // Unlink only our own file: a newer server may have replaced it.
        struct stat st {};
        if (::lstat(address_.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == dev_ &&
            st.st_ino == ino_)
            ::unlink(address_.path.c_str());
    }
    ::close(fd_);
    fd_ = -1;
    dev_ = 0;
    ino_ = 0;
}

Lookup<ListenSocket> open_listen_socket(const ListenAddress& address,
                                        const UnixSocketOptions& unix_options) {
    ListenSocket ls;
    ls.address_ = address;

    if (address.kind == ListenAddress::Kind::inet) {
        const bool v6 = address.is_ipv6();
        sockaddr_storage ss{};
        socklen_t len;
        if (v6) {
            auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
            sa->sin6_family = AF_INET6;
            sa->sin6_port = htons(address.port);
            if (::inet_pton(AF_INET6, address.host.c_str(), &sa->sin6_addr) != 1)
                return socket_error(address, "bad IPv6 address", 0);
            len = sizeof *sa;
        } else {
            auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
            sa->sin_family = AF_INET;
            sa->sin_port = htons(address.port);
            if (::inet_pton(AF_INET, address.host.c_str(), &sa->sin_addr) != 1)
                return socket_error(address, "bad IPv4 address", 0);
            len = sizeof *sa;
        }
        const int fd =
            ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) return socket_error(address, "socket()", errno);
        const int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        // [::] means IPv6 only, so an explicit 0.0.0.0 listener can coexist.
        if (v6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0)
            return fail_closing(fd, socket_error(address, "bind()", errno));
        if (::listen(fd, SOMAXCONN) < 0)
            return fail_closing(fd, socket_error(address, "listen()", errno));
        sockaddr_storage bound{};
        socklen_t blen = sizeof bound;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
        ls.bound_port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                  : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
        ls.fd_ = fd;
        return ls;
    }

    // unix:PATH
    if ((unix_options.mode & ~07777) != 0)
        return socket_error(
            address,
            "unix socket mode " + std::to_string(unix_options.mode) + " is not a permission mode",
            0);
    unsigned uid = static_cast<unsigned>(-1), gid = static_cast<unsigned>(-1);
    if (!unix_options.owner.empty() && !resolve_id(unix_options.owner, true, uid))
        return socket_error(address, "unknown user '" + unix_options.owner + "'", 0);
    if (!unix_options.group.empty() && !resolve_id(unix_options.group, false, gid))
        return socket_error(address, "unknown group '" + unix_options.group + "'", 0);

    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (address.path.empty() || address.path.size() > kMaxUnixPath)
        return socket_error(address, "bad socket path length", 0);
    std::memcpy(sa.sun_path, address.path.data(), address.path.size());
    const char* path = address.path.c_str();

    struct stat st {};
    if (::lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return socket_error(address, "the path exists and is not a socket; not removing it", 0);
        const int probe = probe_unix_socket(sa);
        if (probe != ECONNREFUSED) {
            if (probe == 0 || probe == EAGAIN)
                return socket_error(address, "another server is accepting on this socket", 0);
            return socket_error(address, "cannot tell whether the existing socket is stale", probe);
        }
        if (::unlink(path) < 0 && errno != ENOENT)
            return socket_error(address, "removing the stale socket", errno);
    } else if (errno != ENOENT) {
        return socket_error(address, "lstat()", errno);
    }

    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return socket_error(address, "socket()", errno);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
        return fail_closing(fd, socket_error(address, "bind()", errno));
    // From here on the file is ours: remove it again on any failure.
    auto undo = [&](const std::string& what, int err) {
        ::unlink(path);
        return fail_closing(fd, socket_error(address, what, err));
    };
    if (::lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) return undo("lstat() after bind", errno);
    // Permissions before listen(): until then every connect() is refused.
    if ((uid != static_cast<unsigned>(-1) || gid != static_cast<unsigned>(-1)) &&
        ::lchown(path, uid, gid) < 0)
        return undo("setting owner/group", errno);
    if (::chmod(path, static_cast<mode_t>(unix_options.mode)) < 0)
        return undo("setting mode", errno);
    if (::listen(fd, SOMAXCONN) < 0) return undo("listen()", errno);
    ls.fd_ = fd;
    ls.dev_ = st.st_dev;
    ls.ino_ = st.st_ino;
    return ls;
}

}  // namespace stsguard
