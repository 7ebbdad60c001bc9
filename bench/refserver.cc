// refserver.cc - the reference socketmap server of the benchmark: the
// practical limit for one process on this box.
//
// It does the least a cache-backed socketmap service must do per request:
// frame the netstring (socketmap_table(5)), one LMDB read of the key in
// stsguard's own cache file (named DB "policies", the same data.mdb the
// benchmark fills), and a fixed reply ("OK secure match=..." when the key
// is there, "NOTFOUND " otherwise).  No policy decoding, no decision, no
// logging, no timers.  One thread, epoll, edge cases ignored: it exists
// only to be measured against.
//
// Usage: refserver --cache DIR --listen inet:127.0.0.1:PORT|unix:PATH [--listen ...]
// Stops on SIGTERM/SIGINT.  Failures: start-up errors exit 1 with a
// message; a client framing error closes that client.
// Limits: requests up to 4096 bytes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <lmdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "refserver: %s\n", msg.c_str());
    std::exit(1);
}

struct EnvCloser {
    void operator()(MDB_env* e) const { mdb_env_close(e); }
};
struct TxnAborter {
    void operator()(MDB_txn* t) const { mdb_txn_abort(t); }
};

// One read-only environment and one reset/renewed read transaction.
class Store {
public:
    explicit Store(const std::string& dir) {
        MDB_env* e = nullptr;
        if (int rc = mdb_env_create(&e)) die(std::string("mdb_env_create: ") + mdb_strerror(rc));
        env_.reset(e);
        mdb_env_set_maxdbs(e, 4);
        if (int rc = mdb_env_open(e, dir.c_str(), MDB_RDONLY | MDB_NOTLS, 0644))
            die("open " + dir + ": " + mdb_strerror(rc));
        MDB_txn* t = nullptr;
        if (int rc = mdb_txn_begin(e, nullptr, MDB_RDONLY, &t)) die(std::string("txn: ") + mdb_strerror(rc));
        txn_.reset(t);
        if (int rc = mdb_dbi_open(t, "policies", 0, &dbi_)) die(std::string("dbi policies: ") + mdb_strerror(rc));
        // A handle opened in a read transaction is private to it until commit.
        txn_.release();
        if (int rc = mdb_txn_commit(t)) die(std::string("commit: ") + mdb_strerror(rc));
        if (int rc = mdb_txn_begin(e, nullptr, MDB_RDONLY, &t)) die(std::string("txn: ") + mdb_strerror(rc));
        txn_.reset(t);
        mdb_txn_reset(t);
    }
    bool has(std::string_view key) {
        if (mdb_txn_renew(txn_.get()) != 0) return false;
        MDB_val k{key.size(), const_cast<char*>(key.data())}, v{};
        bool found = mdb_get(txn_.get(), dbi_, &k, &v) == 0 && v.mv_size > 0;
        mdb_txn_reset(txn_.get());
        return found;
    }

private:
    std::unique_ptr<MDB_env, EnvCloser> env_;
    std::unique_ptr<MDB_txn, TxnAborter> txn_;  // declared after env_: destroyed first
    MDB_dbi dbi_ = 0;
};

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    Fd& operator=(Fd&& o) noexcept {
        std::swap(fd_, o.fd_);
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }

private:
    int fd_;
};

Fd listen_on(const std::string& text) {
    if (text.rfind("unix:", 0) == 0) {
        std::string path = text.substr(5);
        sockaddr_un un{};
        if (path.empty() || path.size() >= sizeof un.sun_path) die("bad unix path " + path);
        un.sun_family = AF_UNIX;
        std::memcpy(un.sun_path, path.data(), path.size());
        ::unlink(path.c_str());
        Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&un), sizeof un) != 0) die("bind " + path + ": " + std::strerror(errno));
        ::chmod(path.c_str(), 0666);
        if (::listen(fd.get(), 1024) != 0) die("listen " + path);
        return fd;
    }
    if (text.rfind("inet:", 0) == 0) {
        std::string hp = text.substr(5);
        auto colon = hp.rfind(':');
        sockaddr_in in{};
        in.sin_family = AF_INET;
        if (colon == std::string::npos || inet_pton(AF_INET, hp.substr(0, colon).c_str(), &in.sin_addr) != 1 ||
            (ntohl(in.sin_addr.s_addr) >> 24) != 127)
            die("listen address must be inet:127.x.x.x:PORT: " + text);
        in.sin_port = htons(static_cast<std::uint16_t>(std::atoi(hp.c_str() + colon + 1)));
        Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        int one = 1;
        setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&in), sizeof in) != 0) die("bind " + text + ": " + std::strerror(errno));
        if (::listen(fd.get(), 1024) != 0) die("listen " + text);
        return fd;
    }
    die("listen address must be inet:HOST:PORT or unix:PATH: " + text);
}

struct Client {
    Fd fd;
    std::string in;
};

}  // namespace

int main(int argc, char** argv) {
    std::string cache;
    std::vector<std::string> listens;
    std::string match = "mx1.example.test";
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--cache") cache = argv[i + 1];
        else if (a == "--listen") listens.push_back(argv[i + 1]);
        else if (a == "--match") match = argv[i + 1];
        else die("unknown argument " + a);
    }
    if (cache.empty() || listens.empty()) die("usage: refserver --cache DIR --listen ADDR [--listen ADDR] [--match HOSTS]");
    Store store(cache);
    const std::string ok_reply = [&] {
        std::string d = "OK secure match=" + match;
        return std::to_string(d.size()) + ":" + d + ",";
    }();
    const std::string notfound_reply = "9:NOTFOUND ,";

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);
    Fd sfd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    Fd ep(epoll_create1(EPOLL_CLOEXEC));
    std::vector<Fd> listeners;
    auto watch = [&](int fd, std::uint64_t tag) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag;
        epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev);
    };
    // Tags: 0 = signal, 1..k = listeners, fd + 1000 = clients.
    watch(sfd.get(), 0);
    for (const auto& l : listens) {
        listeners.push_back(listen_on(l));
        watch(listeners.back().get(), listeners.size());
    }
    std::unordered_map<int, Client> clients;
    std::string out;
    epoll_event evs[128];
    for (;;) {
        int n = epoll_wait(ep.get(), evs, 128, -1);
        if (n < 0 && errno == EINTR) continue;
        for (int k = 0; k < n; ++k) {
            std::uint64_t tag = evs[k].data.u64;
            if (tag == 0) return 0;
            if (tag <= listeners.size()) {
                for (;;) {
                    int c = accept4(listeners[tag - 1].get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) break;
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly on unix sockets
                    clients.emplace(c, Client{Fd(c), {}});
                    watch(c, static_cast<std::uint64_t>(c) + 1000);
                }
                continue;
            }
            int fd = static_cast<int>(tag - 1000);
            auto it = clients.find(fd);
            if (it == clients.end()) continue;
            Client& cl = it->second;
            char buf[8192];
            ssize_t r = ::recv(fd, buf, sizeof buf, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                clients.erase(it);
                continue;
            }
            cl.in.append(buf, static_cast<std::size_t>(r));
            out.clear();
            bool bad = false;
            for (;;) {
                std::size_t colon = cl.in.find(':');
                if (colon == std::string::npos) {
                    bad = cl.in.size() > 5;
                    break;
                }
                std::size_t len = std::strtoul(cl.in.c_str(), nullptr, 10);
                if (colon == 0 || colon > 4 || len > 4096) {
                    bad = true;
                    break;
                }
                if (cl.in.size() < colon + 1 + len + 1) break;
                if (cl.in[colon + 1 + len] != ',') {
                    bad = true;
                    break;
                }
                std::string_view req(cl.in.data() + colon + 1, len);
                auto sp = req.find(' ');
                std::string_view key = sp == std::string_view::npos ? req : req.substr(sp + 1);
                out += store.has(key) ? ok_reply : notfound_reply;
                cl.in.erase(0, colon + 1 + len + 1);
            }
            if (!out.empty()) (void)::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
            if (bad) clients.erase(it);
        }
    }
}
