// Tests for postfix/event_loop: epoll readiness, timers, cross-thread posts.
#include "postfix/event_loop.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <vector>

using namespace stsguard;
using namespace std::chrono_literals;

namespace {

// Runs a loop on its own thread for the life of the object.
class LoopThread {
public:
    explicit LoopThread(EventLoop& loop) : loop_(loop), t_([this] { loop_.run(); }) {}
    ~LoopThread() {
        loop_.stop();
        t_.join();
    }
    // Runs f on the loop thread and waits (bounded) for it.
    template <typename F>
    bool sync(F f) {
        auto p = std::make_shared<std::promise<void>>();
        auto fut = p->get_future();
        loop_.post([p, f]() mutable {
            f();
            p->set_value();
        });
        return fut.wait_for(2s) == std::future_status::ready;
    }

private:
    EventLoop& loop_;
    std::thread t_;
};

struct Pipe {
    int r = -1, w = -1;
    Pipe() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
        r = fds[0];
        w = fds[1];
    }
    ~Pipe() {
        if (r >= 0) ::close(r);
        if (w >= 0) ::close(w);
    }
};

}  // namespace

TEST_CASE("event loop: posts from other threads run on the loop thread, in order per thread") {
    SteadyMonotonicClock clock;
    EventLoop loop(clock);
    std::vector<std::pair<int, int>> seen;  // touched on the loop thread only
    bool all_on_loop = true;
    {
        LoopThread lt(loop);
        std::vector<std::thread> producers;
        for (int t = 0; t < 4; ++t)
            producers.emplace_back([&, t] {
                for (int i = 0; i < 1000; ++i)
                    loop.post([&, t, i] {
                        all_on_loop = all_on_loop && loop.in_loop_thread();
                        seen.emplace_back(t, i);
                    });
            });
        for (auto& p : producers) p.join();
        REQUIRE(lt.sync([] {}));
    }
    CHECK(all_on_loop);
    REQUIRE(seen.size() == 4000);
    std::vector<int> next(4, 0);
    bool ordered = true;
    for (auto [t, i] : seen) {
        ordered = ordered && next[t] == i;
        next[t] = i + 1;
    }
    CHECK(ordered);
    CHECK_FALSE(loop.in_loop_thread());
}

TEST_CASE("event loop: stop() from another thread makes run() return; the loop can run again") {
    SteadyMonotonicClock clock;
    EventLoop loop(clock);
    for (int round = 0; round < 2; ++round) {
        auto done = std::async(std::launch::async, [&] { loop.run(); });
        loop.stop();  // before or after run() started: either way it returns
        CHECK(done.wait_for(2s) == std::future_status::ready);
    }
}

TEST_CASE("event loop: timers fire in deadline order on a manual clock, only once it advances") {
    ManualMonotonicClock clock;
    EventLoop loop(clock);
    std::vector<int> fired;
    EventLoop::TimerId cancelled = 0;
    // Armed before run(): the loop thread does not exist yet.
    loop.run_after(30ms, [&] { fired.push_back(30); });
    loop.run_after(10ms, [&] { fired.push_back(10); });
    cancelled = loop.run_after(20ms, [&] { fired.push_back(20); });
    loop.run_after(20ms, [&] { fired.push_back(21); });
    LoopThread lt(loop);

    std::vector<int> snapshot;
    REQUIRE(lt.sync([&] { snapshot = fired; }));
    CHECK(snapshot.empty());

    clock.advance(15ms);
    REQUIRE(lt.sync([&] {
        snapshot = fired;
        CHECK(loop.cancel(cancelled));
        CHECK_FALSE(loop.cancel(cancelled));
    }));
    CHECK(snapshot == std::vector<int>{10});

    clock.advance(1h);
    REQUIRE(lt.sync([&] { snapshot = fired; }));
    CHECK(snapshot == std::vector<int>{10, 21, 30});
    REQUIRE(lt.sync([&] { CHECK(loop.timer_count() == 0); }));
}

TEST_CASE("event loop: a timer on the steady clock fires after its delay, not long after") {
    SteadyMonotonicClock clock;
    EventLoop loop(clock);
    auto fired = std::make_shared<std::promise<std::chrono::steady_clock::time_point>>();
    auto fut = fired->get_future();
    const auto start = std::chrono::steady_clock::now();
    loop.run_after(20ms, [fired] { fired->set_value(std::chrono::steady_clock::now()); });
    LoopThread lt(loop);
    REQUIRE(fut.wait_for(2s) == std::future_status::ready);
    const auto elapsed = fut.get() - start;
    CHECK(elapsed >= 20ms);
    CHECK(elapsed < 1s);
}

TEST_CASE("event loop: a timer re-arming itself at 'now' does not starve posted work") {
    ManualMonotonicClock clock;  // never advances: every re-arm is due at once
    EventLoop loop(clock);
    int ticks = 0;
    std::function<void()> tick = [&] {
        ++ticks;
        loop.run_after(0ms, tick);
    };
    loop.run_after(0ms, tick);
    LoopThread lt(loop);
    int seen = 0;
    REQUIRE(lt.sync([&] { seen = ticks; }));
    CHECK(seen >= 1);
    REQUIRE(lt.sync([&] { loop.stop(); }));
}

TEST_CASE("event loop: read readiness is level-triggered and can be paused and removed") {
    SteadyMonotonicClock clock;
    EventLoop loop(clock);
    Pipe p;
    auto got = std::make_shared<std::promise<void>>();
    int calls = 0;
    EventLoop::WatchId id = loop.watch(p.r, IoInterest::read, [&](IoEvents ev) {
        CHECK(ev.readable);
        if (++calls == 3) {  // not read: level-triggered, so it repeats
            char c;
            CHECK(::read(p.r, &c, 1) == 1);
            loop.set_interest(id, IoInterest::none);
            got->set_value();
        }
    });
    REQUIRE(id != EventLoop::kNoWatch);
    LoopThread lt(loop);
    REQUIRE(::write(p.w, "x", 1) == 1);
    REQUIRE(got->get_future().wait_for(2s) == std::future_status::ready);
    REQUIRE(::write(p.w, "y", 1) == 1);  // interest none: no more calls
    int calls_after = -1;
    REQUIRE(lt.sync([&] { calls_after = calls; }));
    CHECK(calls_after == 3);
    REQUIRE(lt.sync([&] {
        CHECK(loop.set_interest(id, IoInterest::read));
        loop.unwatch(id);
        CHECK(loop.watch_count() == 0);
        CHECK_FALSE(loop.set_interest(id, IoInterest::read));
    }));
}

TEST_CASE("event loop: write interest reports a writable socket") {
    SteadyMonotonicClock clock;
    EventLoop loop(clock);
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    auto got = std::make_shared<std::promise<IoEvents>>();
    bool once = false;
    EventLoop::WatchId id = 0;
    id = loop.watch(sv[0], IoInterest::write, [&](IoEvents ev) {
        if (once) return;
        once = true;
        loop.unwatch(id);
        got->set_value(ev);
    });
    LoopThread lt(loop);
    auto fut = got->get_future();
    REQUIRE(fut.wait_for(2s) == std::future_status::ready);
    const IoEvents ev = fut.get();
    CHECK(ev.writable);
    CHECK_FALSE(ev.readable);
    ::close(sv[0]);
    ::close(sv[1]);
}

TEST_CASE("event loop: a registration removed earlier in the same batch gets no stale event") {
    SteadyMonotonicClock clock;
    EventLoop loop(clock);
    Pipe a, b;
    REQUIRE(::write(a.w, "x", 1) == 1);  // both ready before the first epoll_wait
    REQUIRE(::write(b.w, "x", 1) == 1);
    int calls = 0;
    EventLoop::WatchId ida = 0, idb = 0;
    ida = loop.watch(a.r, IoInterest::read, [&](IoEvents) {
        ++calls;
        loop.unwatch(ida);
        loop.unwatch(idb);
        loop.stop();
    });
    idb = loop.watch(b.r, IoInterest::read, [&](IoEvents) {
        ++calls;
        loop.unwatch(ida);
        loop.unwatch(idb);
        loop.stop();
    });
    auto done = std::async(std::launch::async, [&] { loop.run(); });
    REQUIRE(done.wait_for(2s) == std::future_status::ready);
    CHECK(calls == 1);
}

TEST_CASE("event loop: a poster outliving its loop fails cleanly; queued tasks are destroyed") {
    auto token = std::make_shared<int>(1);
    LoopPoster poster;
    bool ran = false;
    {
        SteadyMonotonicClock clock;
        EventLoop loop(clock);
        poster = loop.poster();
        CHECK(poster.post([token, &ran] { ran = true; }));  // queued, never run
        CHECK(token.use_count() == 2);
        loop.run_after(1s, [token] {});
        CHECK(token.use_count() == 3);
    }
    CHECK_FALSE(ran);
    CHECK(token.use_count() == 1);
    CHECK_FALSE(poster.post([token] {}));
    CHECK(token.use_count() == 1);
    CHECK_FALSE(poster.in_loop_thread());
    CHECK_FALSE(LoopPoster{}.post([] {}));
}

TEST_CASE("event loop: watch() of a bad descriptor fails with kNoWatch") {
    SteadyMonotonicClock clock;
    EventLoop loop(clock);
    CHECK(loop.watch(-1, IoInterest::read, [](IoEvents) {}) == EventLoop::kNoWatch);
    CHECK(loop.watch_count() == 0);
}

namespace {

// Served by a watch whose callback owns it (as a socketmap connection is):
// it unwatches itself from inside the callback, and again when destroyed.
struct SelfOwned {
    EventLoop& loop;
    int fd;
    EventLoop::WatchId id = EventLoop::kNoWatch;
    int events = 0;
    std::vector<char> state = std::vector<char>(64, 'x');  // heap: ASan sees a use after free

    SelfOwned(EventLoop& l, int f) : loop(l), fd(f) {}
    ~SelfOwned() { close(); }
    void close() {
        if (id == EventLoop::kNoWatch) return;
        const auto old = id;
        id = EventLoop::kNoWatch;
        loop.unwatch(old);  // may drop the last reference to *this's callback
    }
    void on_event() {
        ++events;
        close();
        state.assign(64, 'y');  // still alive: the loop holds the callback until it returns
    }
};

}  // namespace

TEST_CASE("event loop: a callback that owns its object may unwatch it from inside") {
    SteadyMonotonicClock clock;
    EventLoop loop(clock);
    Pipe p;
    auto obj = std::make_shared<SelfOwned>(loop, p.r);
    obj->id = loop.watch(p.r, IoInterest::read, [o = obj](IoEvents) { o->on_event(); });
    REQUIRE(obj->id != EventLoop::kNoWatch);
    std::weak_ptr<SelfOwned> weak = obj;
    obj.reset();  // only the callback owns it now
    REQUIRE(::write(p.w, "x", 1) == 1);
    LoopThread lt(loop);
    bool gone = false;
    for (int i = 0; i < 200 && !gone; ++i) REQUIRE(lt.sync([&] { gone = weak.expired(); }));
    CHECK(gone);  // freed once its callback returned, never before
    REQUIRE(lt.sync([&] { CHECK(loop.watch_count() == 0); }));
}

TEST_CASE("event loop: destroyed with a watch whose owned object unwatches on its way out") {
    std::weak_ptr<SelfOwned> weak;
    Pipe p;
    {
        SteadyMonotonicClock clock;
        EventLoop loop(clock);
        auto obj = std::make_shared<SelfOwned>(loop, p.r);
        obj->id = loop.watch(p.r, IoInterest::read, [o = obj](IoEvents) { o->on_event(); });
        weak = obj;
    }  // ~SelfOwned calls unwatch() while the loop clears its watches: no crash, no leak
    CHECK(weak.expired());
}
