// fakes.h - fakes behind the engine's interfaces, for unit tests.
//
// FakeResolver and FakeFetcher answer from tables the test fills, and
// count calls, so tests can assert how often DNS and HTTPS were asked.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>

#include "policy-cache/dns_resolver.h"
#include "policy-cache/https_fetcher.h"

namespace stsguard::testing {

class FakeResolver final : public DnsResolver {
public:
    std::map<std::string, Lookup<TxtAnswer>> txt_answers;
    std::map<std::string, Lookup<MxAnswer>> mx_answers;
    std::map<std::string, Lookup<AddressAnswer>> addr_answers;
    int txt_calls = 0, mx_calls = 0, addr_calls = 0;

    void set_txt(const std::string& owner, std::vector<std::string> records) {
        TxtAnswer a;
        a.records = std::move(records);
        a.meta.ttl = 300;
        txt_answers.insert_or_assign(owner, Lookup<TxtAnswer>(std::move(a)));
    }
    void set_mx(const std::string& domain, std::vector<MxHost> hosts) {
        MxAnswer a;
        a.hosts = std::move(hosts);
        a.meta.ttl = 300;
        mx_answers.insert_or_assign(domain, Lookup<MxAnswer>(std::move(a)));
    }

    Lookup<TxtAnswer> txt(const std::string& owner) override {
        ++txt_calls;
        auto it = txt_answers.find(owner);
        if (it == txt_answers.end()) return NotFound{"NXDOMAIN"};
        return it->second;
    }
    Lookup<MxAnswer> mx(const DomainName& d) override {
        ++mx_calls;
        auto it = mx_answers.find(d.str());
        if (it == mx_answers.end()) return NotFound{"NXDOMAIN"};
        return it->second;
    }
    Lookup<AddressAnswer> addresses(const std::string& host) override {
        ++addr_calls;
        auto it = addr_answers.find(host);
        if (it == addr_answers.end()) return NotFound{"NXDOMAIN"};
        return it->second;
    }
    Lookup<TlsaAnswer> tlsa(const std::string&) override { return NotFound{"NXDOMAIN"}; }
};

class FakeFetcher final : public PolicyFetcher {
public:
    std::map<std::string, Lookup<FetchedPolicy>> answers;  // by domain
    int calls = 0;

    void set_body(const std::string& domain, std::string body) {
        FetchedPolicy p;
        p.url = "https://mta-sts." + domain + "/.well-known/mta-sts.txt";
        p.body = std::move(body);
        p.content_type = "text/plain";
        p.http_status = 200;
        answers.insert_or_assign(domain, Lookup<FetchedPolicy>(std::move(p)));
    }
    Lookup<FetchedPolicy> fetch(const DomainName& d) override {
        ++calls;
        auto it = answers.find(d.str());
        if (it == answers.end()) return Failure::perm("policy-host-not-found", "no A/AAAA");
        return it->second;
    }
};

enum class GateState { open, closed };

// Fetches wait at the gate while it is closed, so a test controls when
// discovery ends.  Counts fetches and how many wait at once.
class Gate {
public:
    explicit Gate(GateState s) : open_(s == GateState::open) {}
    std::atomic<int> fetches{0};

    void pass() {
        ++fetches;
        std::unique_lock<std::mutex> l(mu_);
        max_inside_ = std::max(max_inside_, ++inside_);
        cv_.notify_all();
        cv_.wait(l, [&] { return open_; });
        --inside_;
    }
    void set(GateState s) {
        {
            std::lock_guard<std::mutex> l(mu_);
            open_ = s == GateState::open;
        }
        cv_.notify_all();
    }
    // Waits (at most 5 s) until n fetches wait at the gate.
    bool wait_inside(int n) {
        std::unique_lock<std::mutex> l(mu_);
        return cv_.wait_for(l, std::chrono::seconds(5), [&] { return inside_ >= n; });
    }
    int inside() {
        std::lock_guard<std::mutex> l(mu_);
        return inside_;
    }
    int max_inside() {
        std::lock_guard<std::mutex> l(mu_);
        return max_inside_;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool open_;
    int inside_ = 0;
    int max_inside_ = 0;
};

// A FakeFetcher whose fetches pass a Gate first.
class GatedFetcher final : public PolicyFetcher {
public:
    GatedFetcher(Gate& g, FakeFetcher inner) : g_(g), inner_(std::move(inner)) {}
    Lookup<FetchedPolicy> fetch(const DomainName& d) override {
        g_.pass();
        return inner_.fetch(d);
    }

private:
    Gate& g_;
    FakeFetcher inner_;
};

}  // namespace stsguard::testing
