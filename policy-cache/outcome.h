// outcome.h - the result vocabulary shared by every module boundary.
//
// As in Postfix's dict lookups, a lookup has three distinct results:
// found, not found, and failed; a failure is either temporary (try again
// later: timeouts, SERVFAIL, HTTP 5xx) or permanent (retrying will not
// help until the remote side changes something).  Exceptions never cross
// module boundaries; they are reserved for broken invariants and start-up.
//
// Limits: none.  Failures: none (plain data).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace stsguard {

enum class FailureKind { temporary, permanent };

struct Failure {
    FailureKind kind = FailureKind::temporary;
    std::string code;    // stable reason code, e.g. "dns-timeout"
    std::string reason;  // human readable detail

    static Failure temp(std::string code, std::string reason) {
        return {FailureKind::temporary, std::move(code), std::move(reason)};
    }
    static Failure perm(std::string code, std::string reason) {
        return {FailureKind::permanent, std::move(code), std::move(reason)};
    }
    bool temporary() const { return kind == FailureKind::temporary; }
};

struct NotFound {
    std::string reason;  // e.g. "NXDOMAIN", "no MX records"
};

// Lookup<T>: exactly one of a value, "not found", or a failure.
template <typename T>
class Lookup {
public:
    Lookup(T value) : v_(std::move(value)) {}             // NOLINT: implicit by design
    Lookup(NotFound nf) : v_(std::move(nf)) {}            // NOLINT
    Lookup(Failure f) : v_(std::move(f)) {}               // NOLINT

    bool found() const { return std::holds_alternative<T>(v_); }
    bool not_found() const { return std::holds_alternative<NotFound>(v_); }
    bool failed() const { return std::holds_alternative<Failure>(v_); }

    const T& value() const { return std::get<T>(v_); }
    T& value() { return std::get<T>(v_); }
    const NotFound& not_found_info() const { return std::get<NotFound>(v_); }
    const Failure& failure() const { return std::get<Failure>(v_); }

private:
    std::variant<T, NotFound, Failure> v_;
};

}  // namespace stsguard
