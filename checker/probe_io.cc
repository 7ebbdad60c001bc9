#include "checker/probe_io.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "policy-cache/finding.h"

namespace stsguard {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kMaxTranscript = 200;
constexpr std::size_t kChunk = 4096;

std::string errno_text(int err) {
    char buf[256];
    return ::strerror_r(err, buf, sizeof buf);  // GNU variant: may not use buf
}

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return ascii_lower(x) == ascii_lower(y);
           });
}

}  // namespace

std::string openssl_error_text(const char* fallback) {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return fallback;
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

std::string reply_text(const Reply& r) {
    std::string t = std::to_string(r.code);
    if (!r.lines.empty() && !r.lines.front().empty()) t += " " + r.lines.front();
    return printable(t, 200);
}

bool advertises_starttls(const Reply& ehlo) {
    for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
        const std::string_view l = ehlo.lines[i];
        if (iequals(l.substr(0, l.find(' ')), "STARTTLS")) return true;
    }
    return false;
}

std::optional<Endpoint> parse_endpoint(const std::string& ip, int port) {
    Endpoint ep;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.addr);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.addr);
    const auto p = htons(static_cast<std::uint16_t>(port));
    if (::inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = p;
        ep.len = sizeof(sockaddr_in);
        ep.family = AF_INET;
        ep.text = ip + ":" + std::to_string(port);
        return ep;
    }
    if (::inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = p;
        ep.len = sizeof(sockaddr_in6);
        ep.family = AF_INET6;
        ep.text = "[" + ip + "]:" + std::to_string(port);
        return ep;
    }
    return std::nullopt;
}

// ---- SmtpConnection -------------------------------------------------------

SmtpConnection::SmtpConnection(Deadline deadline, std::size_t max_line_bytes,
                               std::size_t max_reply_bytes, std::vector<std::string>& transcript)
    : deadline_(deadline),
      max_line_(max_line_bytes),
      max_reply_(max_reply_bytes),
      transcript_(transcript),
      start_(SteadyClock::now()) {}

SmtpConnection::~SmtpConnection() {
    if (fd_ >= 0) ::close(fd_);
}

std::chrono::milliseconds SmtpConnection::elapsed() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start_);
}

void SmtpConnection::note(const std::string& line) {
    if (transcript_.size() < kMaxTranscript) transcript_.push_back(printable(line, 512));
}

IoResult SmtpConnection::wait(short events) {
    for (;;) {
        const auto left = deadline_ - SteadyClock::now();
        if (left <= SteadyClock::duration::zero()) return IoError{Io::timeout, ""};
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
        pollfd p{fd_, events, 0};
        const int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(ms, INT_MAX)));
        if (rc < 0 && errno != EINTR) return IoError{Io::error, "poll: " + errno_text(errno)};
        // Ready, or an error / hang-up that the next send or recv reports.
        if (rc > 0) return std::nullopt;
    }
}

IoResult SmtpConnection::connect(const Endpoint& ep) {
    fd_ = ::socket(ep.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return IoError{Io::error, "socket: " + errno_text(errno)};
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) == 0)
        return std::nullopt;
    if (errno != EINPROGRESS && errno != EINTR) return IoError{Io::error, errno_text(errno)};
    if (auto e = wait(POLLOUT)) return e;
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) return IoError{Io::error, errno_text(err)};
    return std::nullopt;
}

IoResult SmtpConnection::send_all(std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (auto e = wait(POLLOUT)) return e;
        } else {
            return IoError{Io::error, "send: " + errno_text(errno)};
        }
    }
    return std::nullopt;
}

IoResult SmtpConnection::command(const std::string& line) {
    note("C: " + line);
    return send_all(line + "\r\n");
}

IoResult SmtpConnection::recv_some(std::string& out, std::size_t limit) {
    char buf[kChunk];
    limit = std::clamp<std::size_t>(limit, 1, sizeof buf);
    for (;;) {
        const ssize_t n = ::recv(fd_, buf, limit, 0);
        if (n > 0) {
            out.append(buf, static_cast<std::size_t>(n));
            return std::nullopt;
        }
        if (n == 0) return IoError{Io::closed, "connection closed by the server"};
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return IoError{Io::error, "recv: " + errno_text(errno)};
        if (auto e = wait(POLLIN)) return e;
    }
}

IoResult SmtpConnection::read_line(std::string& line) {
    const IoError too_long{Io::too_long,
                           "reply line too long (over " + std::to_string(max_line_) + " bytes)"};
    for (;;) {
        const auto nl = inbuf_.find('\n');
        if (nl != std::string::npos) {
            if (nl > max_line_) return too_long;
            line.assign(inbuf_, 0, nl);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            inbuf_.erase(0, nl + 1);
            return std::nullopt;
        }
        if (inbuf_.size() > max_line_) return too_long;
        if (read_total_ >= max_reply_)
            return IoError{Io::too_large, "the server sent more than " +
                                              std::to_string(max_reply_) +
                                              " bytes of SMTP replies"};
        const std::size_t before = inbuf_.size();
        if (auto e = recv_some(inbuf_, max_reply_ - read_total_)) return e;
        read_total_ += inbuf_.size() - before;
    }
}

IoResult SmtpConnection::read_reply(Reply& reply) {
    reply = Reply{};
    std::string line;
    for (;;) {
        if (auto e = read_line(line)) return e;
        note("S: " + line);
        auto digit = [&](std::size_t i, char lo) { return line[i] >= lo && line[i] <= '9'; };
        const bool ok = line.size() >= 3 && digit(0, '2') && line[0] <= '5' && digit(1, '0') &&
                        digit(2, '0') && (line.size() == 3 || line[3] == ' ' || line[3] == '-');
        if (!ok) return IoError{Io::malformed, "malformed reply line \"" + printable(line) + "\""};
        const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (!reply.lines.empty() && code != reply.code)
            return IoError{Io::malformed, "reply code changes from " + std::to_string(reply.code) +
                                              " to " + std::to_string(code) + " within one reply"};
        reply.code = code;
        reply.lines.push_back(line.size() > 4 ? line.substr(4) : std::string());
        if (line.size() == 3 || line[3] == ' ') return std::nullopt;
    }
}

void SmtpConnection::quit_plain() {
    note("C: QUIT");
    if (fd_ >= 0) (void)::send(fd_, "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT);
}

// ---- TLS over memory BIOs -------------------------------------------------

namespace {

// Sends whatever OpenSSL queued in its write BIO.
IoResult flush_wbio(SmtpConnection& conn, SSL* ssl) {
    BIO* wbio = SSL_get_wbio(ssl);
    char buf[kChunk];
    while (BIO_ctrl_pending(wbio) > 0) {
        const int n = BIO_read(wbio, buf, sizeof buf);
        if (n <= 0) break;
        if (auto e = conn.send_all(std::string_view(buf, static_cast<std::size_t>(n)))) return e;
    }
    return std::nullopt;
}

}  // namespace

IoResult tls_handshake(SmtpConnection& conn, SSL* ssl) {
    BIO* rbio = BIO_new(BIO_s_mem());
    BIO* wbio = BIO_new(BIO_s_mem());
    if (rbio == nullptr || wbio == nullptr) {
        BIO_free(rbio);
        BIO_free(wbio);
        return IoError{Io::error, "TLS handshake: out of memory"};
    }
    BIO_set_mem_eof_return(rbio, -1);  // empty means "wait for more", not EOF
    SSL_set_bio(ssl, rbio, wbio);      // ssl owns both now

    std::string net;
    for (;;) {
        ERR_clear_error();
        const int rc = SSL_do_handshake(ssl);
        const int err = SSL_get_error(ssl, rc);
        const std::string why = rc == 1 ? "" : openssl_error_text("protocol error");
        // Whatever OpenSSL wrote (an alert too) goes out before we decide.
        if (auto e = flush_wbio(conn, ssl)) {
            if (e->kind != Io::timeout) e->detail = "TLS handshake: " + e->detail;
            return e;
        }
        if (rc == 1) return std::nullopt;
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
            return IoError{Io::error, "TLS handshake failed: " + why};
        if (err == SSL_ERROR_WANT_READ) {
            net.clear();
            if (auto e = conn.recv_some(net)) {
                if (e->kind == Io::closed)
                    e->detail = "connection closed during the TLS handshake";
                else if (e->kind != Io::timeout)
                    e->detail = "TLS handshake: " + e->detail;
                return e;
            }
            BIO_write(rbio, net.data(), static_cast<int>(net.size()));
        }
    }
}

void tls_quit(SmtpConnection& conn, SSL* ssl) {
    conn.note("C: QUIT");
    ERR_clear_error();
    SSL_write(ssl, "QUIT\r\n", 6);
    SSL_shutdown(ssl);
    ERR_clear_error();
    BIO* wbio = SSL_get_wbio(ssl);
    std::string out(static_cast<std::size_t>(BIO_ctrl_pending(wbio)), '\0');
    if (!out.empty() && BIO_read(wbio, out.data(), static_cast<int>(out.size())) > 0)
        (void)::send(conn.fd(), out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace stsguard
