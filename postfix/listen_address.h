// listen_address.h - where `stsguard serve` listens: parse the endpoint
// syntax Postfix uses for socketmap tables and create the listening socket.
//
//   inet:HOST:PORT   HOST is an IPv4 literal, a bracketed IPv6 literal
//                    ("inet:[::1]:8461") or "localhost" (= 127.0.0.1);
//                    no DNS lookup is done.  PORT 1..65535, or 0 for an
//                    ephemeral port (tests; bound_port() tells which).
//   unix:PATH        an absolute path that fits in sockaddr_un.
//
// A stale unix socket file (nobody accepting on it) is removed before
// bind; anything else at PATH (regular file, directory, symlink, a socket
// a live server accepts on) is an error, never removed.  Owner, group and
// mode are applied after bind() and before listen(), so no client can
// connect while the file still has umask-derived permissions.  The
// directory holding PATH must not be writable by untrusted users (the
// path is re-resolved by chown/chmod).  On destruction the socket file is
// unlinked only if it is still the one this object created.
//
// Failures: outcomes (Failure::perm with code "listen-syntax" or
// "listen-socket" and a message naming the address and the cause); never
// NotFound.  Limits: unix paths up to 107 bytes; backlog SOMAXCONN.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "policy-cache/outcome.h"

namespace stsguard {

struct ListenAddress {
    enum class Kind { inet, unix_path };
    Kind kind = Kind::inet;
    std::string host;        // inet: the IP literal, without brackets
    std::uint16_t port = 0;  // inet
    std::string path;        // unix

    bool is_ipv6() const { return kind == Kind::inet && host.find(':') != std::string::npos; }
    // Canonical text: "inet:127.0.0.1:8461", "inet:[::1]:8461", "unix:/run/x".
    std::string to_string() const;
    bool operator==(const ListenAddress&) const = default;
};

Lookup<ListenAddress> parse_listen_address(std::string_view text);

// Applied to unix sockets only.  Empty owner/group: leave as created.
// owner/group are names or decimal ids.
struct UnixSocketOptions {
    std::string owner;
    std::string group;
    int mode = 0666;
};

// A bound, listening, non-blocking, close-on-exec socket.  Move-only.
class ListenSocket {
public:
    ListenSocket() = default;
    ~ListenSocket();
    ListenSocket(ListenSocket&& o) noexcept;
    ListenSocket& operator=(ListenSocket&& o) noexcept;
    ListenSocket(const ListenSocket&) = delete;
    ListenSocket& operator=(const ListenSocket&) = delete;

    int fd() const { return fd_; }
    const ListenAddress& address() const { return address_; }
    // The port actually bound (differs from address().port when that is 0).
    std::uint16_t bound_port() const { return bound_port_; }
    // Closes the socket now (and unlinks a unix socket file we created).
    void close();

private:
    friend Lookup<ListenSocket> open_listen_socket(const ListenAddress&, const UnixSocketOptions&);
    int fd_ = -1;
    ListenAddress address_;
    std::uint16_t bound_port_ = 0;
    dev_t dev_ = 0;  // identity of the unix socket file we created
    ino_t ino_ = 0;
};

Lookup<ListenSocket> open_listen_socket(const ListenAddress& address,
                                        const UnixSocketOptions& unix_options = {});

}  // namespace stsguard
