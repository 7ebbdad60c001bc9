// loadgen.cc - socketmap load generator for the benchmark suite (bench/).
//
// Drives a Postfix socketmap server (socketmap_table(5)) the way Postfix
// does: N persistent connections, each with exactly one request
// outstanding, keys taken in turn from a key file (each connection starts
// at its own offset).  One thread, one epoll set, so the generator itself
// costs little CPU on a small box.
//
// Reports one JSON object on stdout: requests/s, latency percentiles
// (p50/p90/p99/p99.9/max, microseconds), counts by reply type (OK,
// NOTFOUND, TEMP, TIMEOUT, PERM, other), and, given --pid, the server's
// CPU time during the measured window, read from /proc/PID (utime+stime
// from /proc/PID/stat, and the sum of the threads' schedstat run time,
// which has nanosecond resolution) and its RSS (idle before load, peak
// sampled under load).  Requests per server CPU-second is the stable
// figure on a noisy box: it does not depend on how much CPU the
// generator and the neighbours take.
//
// Startup mode (--startup -- CMD ARGS...): forks CMD, polls the address
// until a request gets an answer, prints the time from fork to that
// first answer, then stops CMD (SIGTERM, SIGKILL after 5 s).
//
// Failures: a connection error or a framing error is counted and the
// connection is re-opened; a reply later than --timeout counts as
// "timeout" and the connection is re-opened.  Exit 0 when the run
// completed (even with errors; they are in the JSON), 2 on usage errors,
// 1 when nothing could be measured.
// Limits: replies up to 100000 bytes (Postfix's own limit).
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

[[noreturn]] void usage(const char* msg) {
    if (msg) std::fprintf(stderr, "loadgen: %s\n", msg);
    std::fprintf(stderr,
                 "usage: loadgen --connect inet:HOST:PORT|unix:PATH --keys FILE [-c CONNS] [-d SECONDS]\n"
                 "               [--warmup SECONDS] [--map NAME] [--pid PID] [--timeout SECONDS] [--label TEXT]\n"
                 "       loadgen --startup --connect ADDR --key KEY [--map NAME] [--timeout SECONDS] -- CMD ARGS...\n");
    std::exit(2);
}

// ---- the address ----------------------------------------------------------

struct Address {
    bool unix_socket = false;
    sockaddr_storage sa{};
    socklen_t len = 0;
};

std::optional<Address> parse_address(const std::string& text) {
    Address a;
    if (text.rfind("unix:", 0) == 0) {
        std::string path = text.substr(5);
        sockaddr_un un{};
        if (path.empty() || path.size() >= sizeof un.sun_path) return std::nullopt;
        un.sun_family = AF_UNIX;
        std::memcpy(un.sun_path, path.data(), path.size());
        std::memcpy(&a.sa, &un, sizeof un);
        a.len = sizeof un;
        a.unix_socket = true;
        return a;
    }
    if (text.rfind("inet:", 0) == 0) {
        std::string hp = text.substr(5);
        auto colon = hp.rfind(':');
        if (colon == std::string::npos) return std::nullopt;
        sockaddr_in in{};
        in.sin_family = AF_INET;
        int port = std::atoi(hp.c_str() + colon + 1);
        if (port <= 0 || port > 65535) return std::nullopt;
        in.sin_port = htons(static_cast<std::uint16_t>(port));
        if (inet_pton(AF_INET, hp.substr(0, colon).c_str(), &in.sin_addr) != 1) return std::nullopt;
        // The benchmark never leaves the loopback network.
        if ((ntohl(in.sin_addr.s_addr) >> 24) != 127) return std::nullopt;
        std::memcpy(&a.sa, &in, sizeof in);
        a.len = sizeof in;
        return a;
    }
    return std::nullopt;
}

// Owns one file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = o.fd_;
            o.fd_ = -1;
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    int get() const { return fd_; }

private:
    int fd_ = -1;
};

// Blocking connect (loopback: immediate), then non-blocking.
Fd connect_to(const Address& a) {
    Fd fd(::socket(a.sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return fd;
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a.sa), a.len) != 0) return Fd();
    if (!a.unix_socket) {
        int one = 1;
        setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
    return fd;
}

// ---- netstrings -------------------------------------------------------------

std::string netstring(const std::string& data) { return std::to_string(data.size()) + ":" + data + ","; }

// Parses one netstring at the start of buf.  >0: bytes used (data set);
// 0: need more; <0: framing error.
long parse_netstring(std::string_view buf, std::string_view& data) {
    std::size_t i = 0, len = 0;
    while (i < buf.size() && buf[i] >= '0' && buf[i] <= '9') {
        len = len * 10 + static_cast<std::size_t>(buf[i] - '0');
        if (len > 100000) return -1;
        ++i;
    }
    if (i == buf.size()) return i > 7 ? -1 : 0;
    if (i == 0 || buf[i] != ':') return -1;
    ++i;
    if (buf.size() < i + len + 1) return 0;
    if (buf[i + len] != ',') return -1;
    data = buf.substr(i, len);
    return static_cast<long>(i + len + 1);
}

enum ReplyType { kOk, kNotfound, kTemp, kTimeout, kPerm, kOther, kReplyTypes };
const char* const kReplyNames[kReplyTypes] = {"OK", "NOTFOUND", "TEMP", "TIMEOUT", "PERM", "other"};

ReplyType classify(std::string_view data) {
    auto word = data.substr(0, data.find(' '));
    if (word == "OK") return kOk;
    if (word == "NOTFOUND") return kNotfound;
    if (word == "TEMP") return kTemp;
    if (word == "TIMEOUT") return kTimeout;
    if (word == "PERM") return kPerm;
    return kOther;
}

// ---- /proc -------------------------------------------------------------------

struct CpuSample {
    double stat_seconds = -1;      // utime + stime, clock ticks
    double schedstat_seconds = -1; // sum over threads, ns resolution
};

CpuSample read_cpu(pid_t pid) {
    CpuSample s;
    {
        std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
        std::string line;
        if (std::getline(f, line)) {
            auto rp = line.rfind(')');
            if (rp != std::string::npos) {
                // Fields after "comm)": 3=state ... 14=utime 15=stime.
                std::vector<std::string> fields;
                std::size_t pos = rp + 2;
                while (pos < line.size()) {
                    auto sp = line.find(' ', pos);
                    if (sp == std::string::npos) sp = line.size();
                    fields.push_back(line.substr(pos, sp - pos));
                    pos = sp + 1;
                }
                if (fields.size() > 13) {
                    double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
                    s.stat_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / hz;
                }
            }
        }
    }
    std::string dir = "/proc/" + std::to_string(pid) + "/task";
    if (DIR* d = opendir(dir.c_str())) {
        double total = 0;
        bool any = false;
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] == '.') continue;
            std::ifstream f(dir + "/" + e->d_name + "/schedstat");
            unsigned long long run_ns = 0;
            if (f >> run_ns) {
                total += static_cast<double>(run_ns) / 1e9;
                any = true;
            }
        }
        closedir(d);
        if (any) s.schedstat_seconds = total;
    }
    return s;
}

struct Rss {
    long rss_kb = -1, anon_kb = -1, file_kb = -1, hwm_kb = -1;
};

Rss read_rss(pid_t pid) {
    Rss r;
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    auto field = [&](const char* name, long& out) {
        std::size_t n = std::strlen(name);
        if (line.compare(0, n, name) == 0) out = std::atol(line.c_str() + n);
    };
    while (std::getline(f, line)) {
        field("VmRSS:", r.rss_kb);
        field("RssAnon:", r.anon_kb);
        field("RssFile:", r.file_kb);
        field("VmHWM:", r.hwm_kb);
    }
    return r;
}

void rss_max(Rss& acc, const Rss& s) {
    acc.rss_kb = std::max(acc.rss_kb, s.rss_kb);
    acc.anon_kb = std::max(acc.anon_kb, s.anon_kb);
    acc.file_kb = std::max(acc.file_kb, s.file_kb);
    acc.hwm_kb = std::max(acc.hwm_kb, s.hwm_kb);
}

std::string json_escape(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7f) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", c);
            out += b;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::string rss_json(const Rss& r) {
    char b[160];
    std::snprintf(b, sizeof b, "{\"rss_kb\":%ld,\"anon_kb\":%ld,\"file_kb\":%ld,\"hwm_kb\":%ld}", r.rss_kb,
                  r.anon_kb, r.file_kb, r.hwm_kb);
    return b;
}

// ---- the load run ------------------------------------------------------------------

struct Options {
    std::string connect;
    std::string keys_file;
    std::string key;
    std::string map = "postfix";
    std::string label;
    int conns = 16;
    double duration = 3;
    double warmup = 0.5;
    double timeout = 5;
    pid_t pid = 0;
    bool startup = false;
    std::vector<std::string> cmd;
};

struct Conn {
    Fd fd;
    std::size_t next_key = 0;
    std::string out;
    std::size_t out_off = 0;
    std::string in;
    std::int64_t sent_at = 0;
    bool waiting = false;
};

struct Stats {
    std::vector<std::int64_t> lat_ns;
    std::uint64_t counts[kReplyTypes] = {};
    std::uint64_t conn_errors = 0, framing_errors = 0, timeouts = 0, reconnects = 0;
    std::string sample_reply;
};

class Runner {
public:
    Runner(const Options& o, const Address& a, std::vector<std::string> reqs)
        : o_(o), addr_(a), reqs_(std::move(reqs)) {}

    int run() {
        ep_ = Fd(epoll_create1(EPOLL_CLOEXEC));
        Rss idle;
        if (o_.pid) idle = read_rss(o_.pid);
        conns_.resize(static_cast<std::size_t>(o_.conns));
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            conns_[i].next_key = i * reqs_.size() / conns_.size();
            if (!open(i)) {
                std::fprintf(stderr, "loadgen: cannot connect to %s: %s\n", o_.connect.c_str(), std::strerror(errno));
                return 1;
            }
        }
        for (std::size_t i = 0; i < conns_.size(); ++i) send_next(i);

        const std::int64_t start = now_ns();
        const std::int64_t measure_from = start + static_cast<std::int64_t>(o_.warmup * 1e9);
        const std::int64_t end = measure_from + static_cast<std::int64_t>(o_.duration * 1e9);
        bool measuring = false;
        CpuSample cpu0{}, cpu1{};
        timespec ru0{}, ru1{};
        Rss under;
        std::int64_t t_begin = 0, next_rss = 0;
        stats_.lat_ns.reserve(1 << 20);
        epoll_event evs[256];
        for (;;) {
            std::int64_t t = now_ns();
            if (!measuring && t >= measure_from) {
                measuring = true;
                stats_ = Stats{};
                stats_.lat_ns.reserve(1 << 20);
                if (o_.pid) cpu0 = read_cpu(o_.pid);
                clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ru0);
                t_begin = now_ns();
                next_rss = t_begin;
            }
            if (measuring && t >= end) break;
            if (measuring && o_.pid && t >= next_rss) {
                rss_max(under, read_rss(o_.pid));
                next_rss = t + 100'000'000;
            }
            int n = epoll_wait(ep_.get(), evs, 256, 10);
            if (n < 0 && errno != EINTR) return 1;
            for (int k = 0; k < n; ++k) on_event(static_cast<std::size_t>(evs[k].data.u64), evs[k].events);
            check_timeouts(now_ns());
        }
        const std::int64_t t_end = now_ns();
        if (o_.pid) cpu1 = read_cpu(o_.pid);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ru1);
        if (o_.pid) rss_max(under, read_rss(o_.pid));
        report(static_cast<double>(t_end - t_begin) / 1e9, cpu0, cpu1,
               (ru1.tv_sec - ru0.tv_sec) + (ru1.tv_nsec - ru0.tv_nsec) / 1e9, idle, under);
        return stats_.lat_ns.empty() ? 1 : 0;
    }

private:
    bool open(std::size_t i) {
        Conn& c = conns_[i];
        c.fd = connect_to(addr_);
        if (c.fd.get() < 0) return false;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        epoll_ctl(ep_.get(), EPOLL_CTL_ADD, c.fd.get(), &ev);
        c.in.clear();
        c.waiting = false;
        return true;
    }

    void reopen(std::size_t i) {
        Conn& c = conns_[i];
        if (c.fd.get() >= 0) epoll_ctl(ep_.get(), EPOLL_CTL_DEL, c.fd.get(), nullptr);
        c.fd.reset();
        ++stats_.reconnects;
        if (open(i)) send_next(i);
        else ++stats_.conn_errors;
    }

    void send_next(std::size_t i) {
        Conn& c = conns_[i];
        const std::string& r = reqs_[c.next_key];
        c.next_key = (c.next_key + 1) % reqs_.size();
        c.sent_at = now_ns();
        c.waiting = true;
        ssize_t w = ::send(c.fd.get(), r.data(), r.size(), MSG_NOSIGNAL);
        if (w == static_cast<ssize_t>(r.size())) return;
        if (w < 0 && errno != EAGAIN) {
            ++stats_.conn_errors;
            reopen(i);
            return;
        }
        // Short write (never seen on loopback with small requests): finish it via EPOLLOUT.
        c.out = r.substr(w < 0 ? 0 : static_cast<std::size_t>(w));
        c.out_off = 0;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u64 = i;
        epoll_ctl(ep_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
    }

    void on_event(std::size_t i, std::uint32_t events) {
        Conn& c = conns_[i];
        if ((events & EPOLLOUT) && !c.out.empty()) {
            ssize_t w = ::send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
            if (w > 0) c.out_off += static_cast<std::size_t>(w);
            if (c.out_off == c.out.size()) {
                c.out.clear();
                epoll_event ev{};
                ev.events = EPOLLIN;
                ev.data.u64 = i;
                epoll_ctl(ep_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
            }
        }
        if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
        char buf[65536];
        ssize_t r = ::recv(c.fd.get(), buf, sizeof buf, 0);
        if (r <= 0) {
            if (r < 0 && errno == EAGAIN) return;
            ++stats_.conn_errors;
            reopen(i);
            return;
        }
        c.in.append(buf, static_cast<std::size_t>(r));
        std::string_view data;
        long used = parse_netstring(c.in, data);
        if (used < 0) {
            ++stats_.framing_errors;
            reopen(i);
            return;
        }
        if (used == 0) return;
        const std::int64_t t = now_ns();
        if (c.waiting) {
            stats_.lat_ns.push_back(t - c.sent_at);
            ReplyType type = classify(data);
            ++stats_.counts[type];
            if (stats_.sample_reply.empty()) stats_.sample_reply = std::string(data);
        }
        c.in.erase(0, static_cast<std::size_t>(used));
        c.waiting = false;
        send_next(i);
    }

    void check_timeouts(std::int64_t t) {
        const std::int64_t limit = static_cast<std::int64_t>(o_.timeout * 1e9);
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            if (conns_[i].waiting && t - conns_[i].sent_at > limit) {
                ++stats_.timeouts;
                reopen(i);
            }
        }
    }

    void report(double secs, const CpuSample& c0, const CpuSample& c1, double own_cpu, const Rss& idle,
                const Rss& under) {
        auto& l = stats_.lat_ns;
        std::sort(l.begin(), l.end());
        auto pct = [&](double p) -> double {
            if (l.empty()) return 0;
            std::size_t idx = static_cast<std::size_t>(p / 100.0 * static_cast<double>(l.size() - 1) + 0.5);
            return static_cast<double>(l[std::min(idx, l.size() - 1)]) / 1000.0;
        };
        const double n = static_cast<double>(l.size());
        double cpu_stat = (c0.stat_seconds >= 0 && c1.stat_seconds >= 0) ? c1.stat_seconds - c0.stat_seconds : -1;
        double cpu_sched =
            (c0.schedstat_seconds >= 0 && c1.schedstat_seconds >= 0) ? c1.schedstat_seconds - c0.schedstat_seconds : -1;
        double cpu = cpu_sched > 0 ? cpu_sched : cpu_stat;
        std::printf("{\"label\":\"%s\",\"connect\":\"%s\",\"conns\":%d,\"seconds\":%.3f,\"requests\":%.0f,"
                    "\"rps\":%.1f,\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},"
                    "\"replies\":{",
                    json_escape(o_.label).c_str(), json_escape(o_.connect).c_str(), o_.conns, secs, n, n / secs,
                    pct(50), pct(90), pct(99), pct(99.9), pct(100));
        for (int k = 0; k < kReplyTypes; ++k)
            std::printf("%s\"%s\":%" PRIu64, k ? "," : "", kReplyNames[k], stats_.counts[k]);
        std::printf("},\"errors\":{\"connect\":%" PRIu64 ",\"framing\":%" PRIu64 ",\"timeout\":%" PRIu64
                    ",\"reconnects\":%" PRIu64 "},",
                    stats_.conn_errors, stats_.framing_errors, stats_.timeouts, stats_.reconnects);
        std::printf("\"server_pid\":%d,\"server_cpu_s\":%.4f,\"server_cpu_stat_s\":%.3f,\"server_cpu_schedstat_s\":%.4f,"
                    "\"req_per_server_cpu_s\":%.1f,\"server_cpu_us_per_req\":%.3f,\"loadgen_cpu_s\":%.3f,",
                    static_cast<int>(o_.pid), cpu, cpu_stat, cpu_sched, cpu > 0 ? n / cpu : 0.0,
                    n > 0 && cpu > 0 ? cpu * 1e6 / n : 0.0, own_cpu);
        std::printf("\"rss_idle\":%s,\"rss_load\":%s,\"sample_reply\":\"%s\"}\n", rss_json(idle).c_str(),
                    rss_json(under).c_str(), json_escape(stats_.sample_reply).c_str());
    }

    const Options& o_;
    Address addr_;
    std::vector<std::string> reqs_;
    std::vector<Conn> conns_;
    Fd ep_;
    Stats stats_;
};

// ---- start-up mode -------------------------------------------------------------

// One request on a fresh connection, blocking with a deadline; the reply
// data, or nullopt if nothing could be read.
std::optional<std::string> one_request(const Address& a, const std::string& req, std::int64_t deadline_ns) {
    Fd fd = connect_to(a);
    if (fd.get() < 0) return std::nullopt;
    if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return std::nullopt;
    std::string in;
    char buf[4096];
    while (now_ns() < deadline_ns) {
        ssize_t r = ::recv(fd.get(), buf, sizeof buf, 0);
        if (r == 0) return std::nullopt;
        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR) return std::nullopt;
            // Block until readable: a busy poll would steal the CPU the
            // starting server needs on a small box.
            pollfd p{fd.get(), POLLIN, 0};
            int ms = static_cast<int>((deadline_ns - now_ns()) / 1'000'000) + 1;
            (void)::poll(&p, 1, ms);
            continue;
        }
        in.append(buf, static_cast<std::size_t>(r));
        std::string_view data;
        long used = parse_netstring(in, data);
        if (used < 0) return std::nullopt;
        if (used > 0) return std::string(data);
    }
    return std::nullopt;
}

int run_startup(const Options& o, const Address& a) {
    if (o.cmd.empty() || o.key.empty()) usage("--startup needs --key and -- CMD");
    const std::string req = netstring(o.map + " " + o.key);
    const std::int64_t t0 = now_ns();
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
        std::vector<char*> argv;
        for (const auto& s : o.cmd) argv.push_back(const_cast<char*>(s.c_str()));
        argv.push_back(nullptr);
        execvp(argv[0], argv.data());
        _exit(127);
    }
    const std::int64_t deadline = t0 + static_cast<std::int64_t>(o.timeout * 1e9);
    std::optional<std::string> answer;
    int attempts = 0;
    while (now_ns() < deadline) {
        ++attempts;
        answer = one_request(a, req, deadline);
        if (answer) break;
        int st = 0;
        if (waitpid(child, &st, WNOHANG) == child) {
            std::fprintf(stderr, "loadgen: server exited before answering (status %d)\n", st);
            return 1;
        }
        usleep(200);
    }
    const std::int64_t t1 = now_ns();
    Rss rss = read_rss(child);
    kill(child, SIGTERM);
    int st = 0;
    for (int i = 0; i < 500 && waitpid(child, &st, WNOHANG) != child; ++i) usleep(10000);
    if (kill(child, 0) == 0) {
        kill(child, SIGKILL);
        waitpid(child, &st, 0);
    }
    if (!answer) {
        std::fprintf(stderr, "loadgen: no answer within %.1f s\n", o.timeout);
        return 1;
    }
    std::printf("{\"label\":\"%s\",\"startup_ms\":%.3f,\"attempts\":%d,\"reply\":\"%s\",\"rss_at_first_answer\":%s}\n",
                json_escape(o.label).c_str(), static_cast<double>(t1 - t0) / 1e6, attempts,
                json_escape(*answer).c_str(), rss_json(rss).c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) usage(("missing value for " + a).c_str());
            return argv[++i];
        };
        if (a == "--connect") o.connect = val();
        else if (a == "--keys") o.keys_file = val();
        else if (a == "--key") o.key = val();
        else if (a == "--map") o.map = val();
        else if (a == "--label") o.label = val();
        else if (a == "-c" || a == "--conns") o.conns = std::atoi(val().c_str());
        else if (a == "-d" || a == "--duration") o.duration = std::atof(val().c_str());
        else if (a == "--warmup") o.warmup = std::atof(val().c_str());
        else if (a == "--timeout") o.timeout = std::atof(val().c_str());
        else if (a == "--pid") o.pid = static_cast<pid_t>(std::atoi(val().c_str()));
        else if (a == "--startup") o.startup = true;
        else if (a == "--") {
            for (++i; i < argc; ++i) o.cmd.push_back(argv[i]);
        } else usage(("unknown argument " + a).c_str());
    }
    if (o.connect.empty()) usage("--connect is required");
    auto addr = parse_address(o.connect);
    if (!addr) usage("--connect must be inet:127.x.x.x:PORT or unix:PATH");
    if (o.conns < 1 || o.conns > 10000) usage("-c must be 1..10000");
    if (o.duration <= 0 || o.timeout <= 0 || o.warmup < 0) usage("durations must be positive");
    signal(SIGPIPE, SIG_IGN);
    if (o.startup) return run_startup(o, *addr);

    if (o.keys_file.empty()) usage("--keys is required");
    std::ifstream f(o.keys_file);
    if (!f) usage(("cannot read " + o.keys_file).c_str());
    std::vector<std::string> reqs;
    std::string line;
    while (std::getline(f, line)) {
        if (!line.empty()) reqs.push_back(netstring(o.map + " " + line));
    }
    if (reqs.empty()) usage("the key file is empty");
    Runner r(o, *addr, std::move(reqs));
    return r.run();
}
