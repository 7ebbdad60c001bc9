#include "policy-cache/logger.h"

#include <syslog.h>
#include <unistd.h>

#include <string>

namespace stsguard {

constexpr std::size_t kMaxLine = 4000;

const char* log_prefix(LogSeverity s) {
    switch (s) {
        case LogSeverity::warning: return "warning: ";
        case LogSeverity::error: return "error: ";
        case LogSeverity::fatal: return "fatal: ";
        default: return "";
    }
}

Logger::Logger(std::string ident, LogTarget target, LogSeverity min_level)
    : ident_(std::move(ident)), target_(target), min_(min_level) {
    // openlog() keeps the pointer: ident_ lives as long as this Logger.
    if (target_ == LogTarget::syslog) openlog(ident_.c_str(), LOG_PID | LOG_NDELAY, LOG_MAIL);
}

Logger::~Logger() {
    if (target_ == LogTarget::syslog) closelog();
}

void Logger::log(LogSeverity s, std::string_view msg) const {
    if (s < min_) return;
    std::string line = log_prefix(s);
    line.append(msg.substr(0, kMaxLine));
    for (char& c : line)
        if (c == '\n' || c == '\r') c = ' ';  // one event, one line
    if (target_ == LogTarget::syslog) {
        int pri = s == LogSeverity::debug     ? LOG_DEBUG
                  : s == LogSeverity::info    ? LOG_INFO
                  : s == LogSeverity::warning ? LOG_WARNING
                  : s == LogSeverity::error   ? LOG_ERR
                                              : LOG_CRIT;
        syslog(pri, "%s", line.c_str());
        return;
    }
    std::string out = ident_ + "[" + std::to_string(getpid()) + "]: " + line + "\n";
    ssize_t rc = write(STDERR_FILENO, out.data(), out.size());
    (void)rc;  // nowhere to report a failing stderr
}

}  // namespace stsguard
