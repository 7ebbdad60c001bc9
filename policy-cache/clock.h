// clock.h - the time source, passed explicitly.
//
// Nothing in stsguard reads the wall clock directly: the service passes a
// SystemClock, unit tests a ManualClock they advance by hand, so expiry,
// back-off and refresh rules are tested without sleeping.
//
// Time is whole seconds since the Unix epoch (policy max_age has second
// granularity, RFC 8461 3.2).  Limits: none.  Failures: none.
#pragma once

#include <chrono>
#include <cstdint>

namespace stsguard {

using Seconds = std::chrono::seconds;
using UnixTime = std::chrono::sys_seconds;

class Clock {
public:
    virtual ~Clock() = default;
    virtual UnixTime now() const = 0;
};

class SystemClock final : public Clock {
public:
    UnixTime now() const override {
        return std::chrono::time_point_cast<Seconds>(std::chrono::system_clock::now());
    }
};

class ManualClock final : public Clock {
public:
    explicit ManualClock(UnixTime start = UnixTime{Seconds{1'700'000'000}}) : now_(start) {}
    UnixTime now() const override { return now_; }
    void advance(Seconds d) { now_ += d; }
    void set(UnixTime t) { now_ = t; }

private:
    UnixTime now_;
};

inline std::int64_t to_unix(UnixTime t) { return t.time_since_epoch().count(); }
inline UnixTime from_unix(std::int64_t s) { return UnixTime{Seconds{s}}; }

}  // namespace stsguard
