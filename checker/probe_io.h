// probe_io.h - deadline-bounded SMTP and TLS I/O for the STARTTLS probe.
//
// SmtpConnection owns one non-blocking TCP socket and one deadline: the
// connect, every send and every receive wait with poll() for what is left
// of it, so a silent or slow server costs at most the deadline.  It reads
// SMTP replies (RFC 5321 4.2.1: "NNN-" continuation lines, one code per
// reply) with a per-line and a total byte limit, and records every line
// sent and received in a transcript (rendered with printable()).
//
// tls_handshake() runs an SSL client over memory BIOs and moves the bytes
// itself with send(MSG_NOSIGNAL)/recv under the same deadline: OpenSSL
// never blocks and never raises SIGPIPE.
//
// Failures: IoError{timeout | closed | error | too_long | too_large |
// malformed, detail}; the caller maps them to probe failure codes.
// Limits: max_line_bytes per line before CRLF (a bare LF is accepted),
// max_reply_bytes of SMTP text per connection, 200 transcript lines.
#pragma once

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stsguard {

using Deadline = std::chrono::steady_clock::time_point;

enum class Io { timeout, closed, error, too_long, too_large, malformed };

struct IoError {
    Io kind;
    std::string detail;  // human readable; empty for timeouts
};
using IoResult = std::optional<IoError>;  // nullopt: success

struct Reply {
    int code = 0;
    std::vector<std::string> lines;  // text after "NNN-" / "NNN "
};

// "NNN first line text", printable, for messages.
std::string reply_text(const Reply& r);

// RFC 3207 / RFC 5321 4.1.1.1: an EHLO reply's first line is the
// greeting; STARTTLS counts only as the keyword of a later line (any case).
bool advertises_starttls(const Reply& ehlo);

// An IPv4 or IPv6 address and port, ready for connect().
struct Endpoint {
    sockaddr_storage addr{};
    socklen_t len = 0;
    int family = AF_UNSPEC;
    std::string text;  // "192.0.2.1:25" or "[2001:db8::1]:25"
};
std::optional<Endpoint> parse_endpoint(const std::string& ip, int port);

class SmtpConnection {
public:
    SmtpConnection(Deadline deadline, std::size_t max_line_bytes, std::size_t max_reply_bytes,
                   std::vector<std::string>& transcript);
    ~SmtpConnection();
    SmtpConnection(const SmtpConnection&) = delete;
    SmtpConnection& operator=(const SmtpConnection&) = delete;

    IoResult connect(const Endpoint& ep);
    IoResult send_all(std::string_view data);
    IoResult command(const std::string& line);  // sends line + CRLF, records "C: line"
    IoResult recv_some(std::string& out, std::size_t limit = 4096);  // >= 1 byte appended
    IoResult read_line(std::string& line);
    IoResult read_reply(Reply& reply);  // records each "S: line"
    void quit_plain();                  // best effort, never waits

    std::size_t buffered() const { return inbuf_.size(); }  // read but not consumed
    int fd() const { return fd_; }
    std::chrono::milliseconds elapsed() const;  // since construction
    void note(const std::string& line);

private:
    IoResult wait(short events);

    int fd_ = -1;
    Deadline deadline_;
    std::size_t max_line_;
    std::size_t max_reply_;
    std::vector<std::string>& transcript_;
    std::string inbuf_;
    std::size_t read_total_ = 0;
    std::chrono::steady_clock::time_point start_;
};

// Client handshake on ssl (fresh, connect state, SNI already set) over
// conn's socket.  On failure the detail names OpenSSL's error or the
// socket problem.  Installs its own memory BIOs on ssl.
IoResult tls_handshake(SmtpConnection& conn, SSL* ssl);

// Best effort: "QUIT" and close_notify under TLS, without waiting.
void tls_quit(SmtpConnection& conn, SSL* ssl);

// The first queued OpenSSL error as text (queue cleared), or fallback.
std::string openssl_error_text(const char* fallback);

}  // namespace stsguard
