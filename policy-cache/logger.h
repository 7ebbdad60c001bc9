// logger.h - log lines as Postfix writes them.
//
// syslog facility mail, ident "stsguard/<command>" with the PID, and
// "warning: ", "error: ", "fatal: " prefixes, exactly like Postfix daemons
// ("postfix/smtp[123]: warning: ..."), so existing mail-log tooling reads
// stsguard lines.  The stderr target writes the same text (for
// foreground runs, tests and systemd's journal).
//
// Thread-safe: one write(2)/syslog(3) call per line.  Failures: none
// (logging never fails the caller).  Limits: a line is cut at 4000 bytes.
#pragma once

#include <string>
#include <string_view>

namespace stsguard {

enum class LogTarget { syslog, stderr_stream };
enum class LogSeverity { debug, info, warning, error, fatal };

class Logger {
public:
    Logger(std::string ident, LogTarget target, LogSeverity min_level = LogSeverity::info);
    ~Logger();
    Logger(const Logger&) = delete;
    Logger& operator=(const Logger&) = delete;

    void log(LogSeverity s, std::string_view msg) const;
    void debug(std::string_view m) const { log(LogSeverity::debug, m); }
    void info(std::string_view m) const { log(LogSeverity::info, m); }
    void warning(std::string_view m) const { log(LogSeverity::warning, m); }
    void error(std::string_view m) const { log(LogSeverity::error, m); }

    const std::string& ident() const { return ident_; }

private:
    std::string ident_;
    LogTarget target_;
    LogSeverity min_;
};

// "warning: " etc.; "" for info and debug (Postfix style).
const char* log_prefix(LogSeverity s);

}  // namespace stsguard
