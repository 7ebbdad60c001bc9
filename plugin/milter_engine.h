// milter_engine.h - what `stsguard milter` does at each step of an SMTP
// session, without libmilter (plugin/milter_runner.h turns these calls
// into libmilter callbacks), so the session logic is unit-tested.
//
// Per envelope recipient: parse the address (recipient_address.h), skip
// exempt domains (milter_exempt_domains), read the cache and start
// background discovery when the domain has no fresh state (prefetcher.h),
// waiting at most what is left of milter_wait for this message: the wait
// is a budget per message, so fifty new recipient domains cannot stall
// the session fifty times.  Then, by milter_action:
//   prefetch  accept; mail is never changed;
//   header    accept; at end of message, one X-STS-Policy header per
//             accepted recipient domain (read again from the cache then,
//             as discovery may have finished during DATA), after deleting
//             any X-STS-Policy header the message arrived with (a sender
//             must not be able to forge our verdict);
//   hold      tempfail the recipient (451 4.7.5) when hold_decision()
//             says its enforce policy cannot be satisfied by its MX set
//             (SMTP recipients only, see RecipientSource).
// A domain is judged once per message; its other recipients get the same
// answer.
//
// Threads: the engine is shared by all connections and thread-safe;
// a MilterSession belongs to one connection (libmilter calls one
// connection's callbacks one at a time).
// Failures: bad recipient addresses are logged and accepted (Postfix has
// already judged them); cache and queue failures are logged by the
// Prefetcher and the recipient is accepted.  Exceptions only for broken
// invariants (out of memory); the runner catches them all.
// Limits: kMaxHeaderDomains headers per message; milter_wait.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "plugin/milter_settings.h"
#include "plugin/milter_verdict.h"
#include "plugin/prefetcher.h"
#include "policy-cache/clock.h"
#include "policy-cache/logger.h"

namespace stsguard {

inline constexpr std::size_t kMaxHeaderDomains = 50;

// Who submitted the recipient.  Postfix's cleanup(8) simulates an SMTP
// session for non_smtpd_milters (sendmail(1), qmqpd, postsuper -r), and
// treats a recipient REJECT or TEMPFAIL there as its own configuration
// error (the message is deferred with "4.3.5 Server configuration
// error"), so `hold` never tempfails a non-SMTP recipient.  The runner
// tells them apart by the {rcpt_mailer} macro, which smtpd(8) sends with
// Postfix's default milter_rcpt_macros and cleanup(8) never defines (it
// does send {daemon_addr}, and a client port for qmqpd and re-queued
// mail).  Without the macro a recipient counts as non-SMTP: the safe
// side, nothing is held.
enum class RecipientSource { smtpd, non_smtpd };

class MilterSession {
public:
    explicit MilterSession(std::string peer) : peer_(std::move(peer)) {}
    const std::string& peer() const { return peer_; }
    // A new message (MAIL FROM), or the end of one (EOM, abort).
    void begin_message();

private:
    friend class MilterEngine;
    std::string peer_;
    std::vector<DomainName> domains_;                  // accepted recipient domains, in order
    std::map<std::string, HoldDecision> decided_;      // this message's verdicts by domain
    std::chrono::steady_clock::duration waited_{};     // spent of milter_wait
    std::size_t existing_headers_ = 0;                 // X-STS-Policy headers that came in
};

// Header edits for the end of a message.
struct EomEdits {
    std::size_t remove_existing = 0;   // delete X-STS-Policy occurrences 1..N
    std::vector<std::string> add;      // values of new X-STS-Policy headers
};

class MilterEngine {
public:
    // prefetcher, clock and log must outlive the engine.
    MilterEngine(MilterSettings settings, Prefetcher& prefetcher, const Clock& clock, const Logger& log);

    HoldDecision on_recipient(MilterSession& session, std::string_view address, RecipientSource source);
    void on_header(MilterSession& session, std::string_view name);
    // Ends the message: the edits to make (none unless action = header).
    EomEdits on_end_of_message(MilterSession& session);

    const MilterSettings& settings() const { return settings_; }
    const Logger& log() const { return log_; }

private:
    MilterSettings settings_;
    Prefetcher& prefetcher_;
    const Clock& clock_;
    const Logger& log_;
};

}  // namespace stsguard
