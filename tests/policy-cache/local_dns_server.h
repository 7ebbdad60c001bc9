// local_dns_server.h - test helper: a UDP DNS responder on 127.0.0.1.
//
// Binds an ephemeral port on 127.0.0.1.  With a handler, a thread answers
// each query with handler(query) (nullptr: drop it); without, the socket
// never answers (a cheap, exact timeout).  Bounded: the thread stops when
// destroyed or 5 s after start.  Records the RD/AD bits and EDNS size of
// the last query.
#pragma once

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "policy-cache/ldns_handles.h"

namespace stsguard_test {

using stsguard::LdnsPktPtr;

// A UDP socket on 127.0.0.1 (ephemeral port).  With a handler, a thread
// answers each query with handler(query); without, it never answers.
class LocalDns {
public:
    using Handler = std::function<LdnsPktPtr(const ldns_pkt* query)>;

    explicit LocalDns(Handler handler = nullptr) : handler_(std::move(handler)) {
        fd_ = socket(AF_INET, SOCK_DGRAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
        if (handler_) thread_ = std::thread([this] { serve(); });
    }
    ~LocalDns() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        close(fd_);
    }
    std::uint16_t port() const { return port_; }
    std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
    int queries() const { return queries_; }
    // Flags of the last query seen: RD, AD, EDNS UDP size.
    bool last_rd() const {
        std::lock_guard l(m_);
        return last_rd_;
    }
    bool last_ad() const {
        std::lock_guard l(m_);
        return last_ad_;
    }
    std::uint16_t last_edns() const {
        std::lock_guard l(m_);
        return last_edns_;
    }

private:
    void serve() {
        // Bounded: polls in 50 ms steps, gives up after 5 s without queries.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!stop_ && std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, 50) <= 0) continue;
            std::uint8_t buf[4096];
            sockaddr_in from{};
            socklen_t flen = sizeof from;
            const ssize_t n =
                recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
            if (n <= 0) continue;
            ldns_pkt* q = nullptr;
            if (ldns_wire2pkt(&q, buf, static_cast<std::size_t>(n)) != LDNS_STATUS_OK) continue;
            LdnsPktPtr query(q);
            {
                std::lock_guard l(m_);
                last_rd_ = ldns_pkt_rd(q);
                last_ad_ = ldns_pkt_ad(q);
                last_edns_ = ldns_pkt_edns_udp_size(q);
            }
            ++queries_;
            LdnsPktPtr reply = handler_(q);
            if (!reply) continue;
            std::uint8_t* wire = nullptr;
            std::size_t size = 0;
            if (ldns_pkt2wire(&wire, reply.get(), &size) != LDNS_STATUS_OK) continue;
            sendto(fd_, wire, size, 0, reinterpret_cast<sockaddr*>(&from), flen);
            std::free(wire);
        }
    }

    Handler handler_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> queries_{0};
    mutable std::mutex m_;
    bool last_rd_ = false;
    bool last_ad_ = false;
    std::uint16_t last_edns_ = 0;
    std::thread thread_;
};

}  // namespace stsguard_test
