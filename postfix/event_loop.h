// event_loop.h - a small epoll event loop: fd readiness, timers, and
// thread-safe posting of work onto the loop thread.
//
// One EventLoop object, run() on one thread (the loop thread).  Every
// method except post(), stop(), poster() and in_loop_thread() must be
// called on the loop thread, or before run() / after it returned.
// Readiness is level-triggered: a callback that leaves data unread is
// called again, so readers may stop reading (back-pressure) by clearing
// their read interest (EPOLLRDHUP is only asked for with read interest,
// so a half-closed peer does not spin a paused reader).  Events are keyed
// by a registration id, not by fd, so an fd closed and reused inside one
// batch never receives the old registration's events.
// A callback may unwatch() its own registration: it stays alive (with
// whatever it captured) until it returns, so a callback may own the object
// it serves and still close it from inside.
//
// Timers are one-shot and measured on a MonotonicClock passed in: the real
// steady clock in production, ManualMonotonicClock in tests (advance it,
// then wake the loop with post()).  post() wakes the loop via an eventfd.
// A LoopPoster (from poster()) may outlive the loop: posting then fails
// and the task is destroyed, so late replies from worker threads are safe.
//
// Failures: the constructor throws std::system_error if epoll or eventfd
// cannot be created (start-up); watch() returns kNoWatch with errno set
// when epoll_ctl fails (e.g. ENOMEM); a broken epoll_wait throws.
// Limits: 256 events per epoll_wait; timer resolution 1 ms.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace stsguard {

// Monotonic time source for timers (policy-cache/clock.h is wall-clock
// seconds; timers need a clock that never jumps and has sub-second steps).
class MonotonicClock {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using duration = std::chrono::steady_clock::duration;
    virtual ~MonotonicClock() = default;
    virtual time_point now() const = 0;
};

class SteadyMonotonicClock final : public MonotonicClock {
public:
    time_point now() const override { return std::chrono::steady_clock::now(); }
};

// Thread-safe: tests advance it from their own thread.
class ManualMonotonicClock final : public MonotonicClock {
public:
    time_point now() const override { return time_point{duration{ticks_.load()}}; }
    void advance(duration d) { ticks_ += d.count(); }

private:
    std::atomic<duration::rep> ticks_{duration{std::chrono::hours{1}}.count()};
};

enum class IoInterest : unsigned { none = 0, read = 1, write = 2, read_write = 3 };

struct IoEvents {
    bool readable = false;
    bool writable = false;
    bool peer_closed = false;  // EPOLLRDHUP: peer shut down its sending side (read sees EOF)
    bool hangup = false;       // EPOLLHUP: both directions gone; reported even with no interest
    bool error = false;        // EPOLLERR; reported even with no interest
};

using IoCallback = std::function<void(IoEvents)>;
using Task = std::function<void()>;

namespace detail {
struct PostQueue;
}

// A handle for posting tasks to a loop from any thread; copyable.
class LoopPoster {
public:
    LoopPoster() = default;
    // False if the loop is gone (the task is destroyed, not run).
    bool post(Task task) const;
    bool in_loop_thread() const;

private:
    friend class EventLoop;
    explicit LoopPoster(std::shared_ptr<detail::PostQueue> q) : q_(std::move(q)) {}
    std::shared_ptr<detail::PostQueue> q_;
};

class EventLoop {
public:
    using WatchId = std::uint64_t;
    using TimerId = std::uint64_t;
    using time_point = MonotonicClock::time_point;
    static constexpr WatchId kNoWatch = 0;

    explicit EventLoop(const MonotonicClock& clock);
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // fd readiness.  The loop does not own fd; unwatch() before close().
    WatchId watch(int fd, IoInterest interest, IoCallback cb);
    bool set_interest(WatchId id, IoInterest interest);
    void unwatch(WatchId id);

    // One-shot timers.  cancel() returns false if it already ran or is unknown.
    TimerId run_at(time_point when, Task task);
    TimerId run_after(MonotonicClock::duration delay, Task task) {
        return run_at(now() + delay, std::move(task));
    }
    bool cancel(TimerId id);

    // Thread-safe.  Tasks run on the loop thread in posting order.
    void post(Task task);
    LoopPoster poster() const { return LoopPoster(queue_); }

    // Runs until stop().  stop() is thread-safe; tasks posted before it
    // still run if they were already queued when the loop wakes.
    void run();
    void stop();
    bool in_loop_thread() const;

    time_point now() const { return clock_.now(); }
    const MonotonicClock& clock() const { return clock_; }

    std::size_t watch_count() const { return watches_.size(); }
    std::size_t timer_count() const { return timer_index_.size(); }

private:
    struct Watch {
        int fd;
        IoInterest interest;
        IoCallback cb;
    };

    void run_due_timers();
    void run_posted();
    int wait_timeout_ms() const;

    const MonotonicClock& clock_;
    int epfd_ = -1;
    std::shared_ptr<detail::PostQueue> queue_;
    std::atomic<bool> stop_{false};

    WatchId next_watch_ = 1;
    std::unordered_map<WatchId, std::shared_ptr<Watch>> watches_;

    TimerId next_timer_ = 1;
    std::map<std::pair<time_point, TimerId>, Task> timers_;
    std::unordered_map<TimerId, time_point> timer_index_;
};

}  // namespace stsguard
