#include "postfix/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <system_error>

namespace stsguard {

namespace detail {

// Shared between the loop and its posters, so a poster that outlives the
// loop finds `closed` instead of a dangling pointer.  Owns the eventfd
// for the same reason: a late write never hits a reused descriptor.
struct PostQueue {
    std::mutex mu;
    std::vector<Task> tasks;
    bool closed = false;
    bool wake_pending = false;
    int efd = -1;
    std::atomic<std::thread::id> loop_thread{};

    ~PostQueue() {
        if (efd >= 0) ::close(efd);
    }

    void wake() const {
        const std::uint64_t one = 1;
        // EAGAIN only if the counter is near 2^64: the loop is awake anyway.
        while (::write(efd, &one, sizeof one) < 0 && errno == EINTR) {
        }
    }

    bool push(Task task) {
        bool need_wake = false;
        {
            std::lock_guard<std::mutex> lock(mu);
            if (closed) return false;  // task is destroyed outside the lock
            tasks.push_back(std::move(task));
            if (!wake_pending) need_wake = wake_pending = true;
        }
        if (need_wake) wake();
        return true;
    }
};

}  // namespace detail

namespace {

constexpr std::uint64_t kWakeKey = UINT64_MAX;
constexpr int kMaxEvents = 256;

std::uint32_t epoll_bits(IoInterest i) {
    std::uint32_t bits = 0;
    if ((static_cast<unsigned>(i) & static_cast<unsigned>(IoInterest::read)) != 0)
        bits |= EPOLLIN | EPOLLRDHUP;
    if ((static_cast<unsigned>(i) & static_cast<unsigned>(IoInterest::write)) != 0)
        bits |= EPOLLOUT;
    return bits;
}

}  // namespace

bool LoopPoster::post(Task task) const { return q_ && q_->push(std::move(task)); }

bool LoopPoster::in_loop_thread() const {
    return q_ && q_->loop_thread.load() == std::this_thread::get_id();
}

EventLoop::EventLoop(const MonotonicClock& clock)
    : clock_(clock), queue_(std::make_shared<detail::PostQueue>()) {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    queue_->efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (queue_->efd < 0) {
        const int e = errno;
        ::close(epfd_);
        throw std::system_error(e, std::generic_category(), "eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeKey;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, queue_->efd, &ev) < 0) {
        const int e = errno;
        ::close(epfd_);
        throw std::system_error(e, std::generic_category(), "epoll_ctl(eventfd)");
    }
}

EventLoop::~EventLoop() {
    std::vector<Task> dropped;
    {
        std::lock_guard<std::mutex> lock(queue_->mu);
        queue_->closed = true;
        dropped.swap(queue_->tasks);
    }
    // Destroyed outside the lock: a task's destructor may try to post.
    dropped.clear();
    timers_.clear();
    timer_index_.clear();
    // Moved out first: a callback may own what it serves (a connection),
    // whose destructor then calls unwatch(), which must find nothing.
    auto watches = std::move(watches_);
    watches_.clear();
    watches.clear();
    ::close(epfd_);
}

EventLoop::WatchId EventLoop::watch(int fd, IoInterest interest, IoCallback cb) {
    const WatchId id = next_watch_++;
    epoll_event ev{};
    ev.events = epoll_bits(interest);
    ev.data.u64 = id;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) return kNoWatch;
    watches_.emplace(id, std::make_shared<Watch>(Watch{fd, interest, std::move(cb)}));
    return id;
}

bool EventLoop::set_interest(WatchId id, IoInterest interest) {
    auto it = watches_.find(id);
    if (it == watches_.end()) return false;
    if (it->second->interest == interest) return true;
    epoll_event ev{};
    ev.events = epoll_bits(interest);
    ev.data.u64 = id;
    if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, it->second->fd, &ev) < 0) return false;
    it->second->interest = interest;
    return true;
}

void EventLoop::unwatch(WatchId id) {
    auto it = watches_.find(id);
    if (it == watches_.end()) return;
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, it->second->fd, nullptr);
    watches_.erase(it);
}

EventLoop::TimerId EventLoop::run_at(time_point when, Task task) {
    const TimerId id = next_timer_++;
    timers_.emplace(std::make_pair(when, id), std::move(task));
    timer_index_.emplace(id, when);
    return id;
}

bool EventLoop::cancel(TimerId id) {
    auto it = timer_index_.find(id);
    if (it == timer_index_.end()) return false;
    timers_.erase({it->second, id});
    timer_index_.erase(it);
    return true;
}

void EventLoop::post(Task task) { queue_->push(std::move(task)); }

void EventLoop::stop() {
    stop_.store(true);
    queue_->wake();
}

bool EventLoop::in_loop_thread() const {
    return queue_->loop_thread.load() == std::this_thread::get_id();
}

int EventLoop::wait_timeout_ms() const {
    if (timers_.empty()) return -1;
    const auto left = timers_.begin()->first.first - now();
    if (left <= MonotonicClock::duration::zero()) return 0;
    // Rounded up: waking a little late is harmless, early means a busy loop.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

void EventLoop::run_due_timers() {
    if (timers_.empty()) return;
    // Only timers due now; ones added by these callbacks wait for the next
    // round, so a timer re-arming itself at "now" cannot starve I/O.
    const auto t = now();
    std::vector<TimerId> due;
    for (auto it = timers_.begin(); it != timers_.end() && it->first.first <= t; ++it)
        due.push_back(it->first.second);
    for (TimerId id : due) {
        auto idx = timer_index_.find(id);
        if (idx == timer_index_.end()) continue;  // cancelled by an earlier callback
        auto node = timers_.extract({idx->second, id});
        timer_index_.erase(idx);
        node.mapped()();
    }
}

void EventLoop::run_posted() {
    std::vector<Task> tasks;
    {
        std::lock_guard<std::mutex> lock(queue_->mu);
        tasks.swap(queue_->tasks);
        queue_->wake_pending = false;
    }
    for (auto& t : tasks) {
        t();
        t = nullptr;  // release captures now, in order
    }
}

void EventLoop::run() {
    queue_->loop_thread.store(std::this_thread::get_id());
    epoll_event events[kMaxEvents];
    while (!stop_.load()) {
        const int n = ::epoll_wait(epfd_, events, kMaxEvents, wait_timeout_ms());
        if (n < 0) {
            if (errno == EINTR) continue;
            queue_->loop_thread.store(std::thread::id{});
            throw std::system_error(errno, std::generic_category(), "epoll_wait");
        }
        bool woken = false;
        for (int i = 0; i < n; ++i) {
            const std::uint64_t key = events[i].data.u64;
            if (key == kWakeKey) {
                std::uint64_t count;
                while (::read(queue_->efd, &count, sizeof count) < 0 && errno == EINTR) {
                }
                woken = true;
                continue;
            }
            auto it = watches_.find(key);
            if (it == watches_.end()) continue;  // unwatched earlier in this batch
            auto w = it->second;                 // keeps the callback alive while it runs
            const std::uint32_t e = events[i].events;
            IoEvents io;
            io.readable = (e & EPOLLIN) != 0;
            io.writable = (e & EPOLLOUT) != 0;
            io.peer_closed = (e & EPOLLRDHUP) != 0;
            io.hangup = (e & EPOLLHUP) != 0;
            io.error = (e & EPOLLERR) != 0;
            w->cb(io);
        }
        run_due_timers();
        // Posted tasks exist only if the eventfd fired: the first push
        // after run_posted() writes it, and later ones find wake_pending
        // set until run_posted() runs.  So a busy loop does not take the
        // queue's mutex on every round.
        if (woken) run_posted();
    }
    stop_.store(false);
    queue_->loop_thread.store(std::thread::id{});
}

}  // namespace stsguard
