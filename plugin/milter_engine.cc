#include "plugin/milter_engine.h"

#include "plugin/recipient_address.h"
#include "policy-cache/domain_name.h"
#include "policy-cache/finding.h"

namespace stsguard {
void MilterSession::begin_message() {
    domains_.clear();
    decided_.clear();
    waited_ = {};
    existing_headers_ = 0;
}

MilterEngine::MilterEngine(MilterSettings settings, Prefetcher& prefetcher, const Clock& clock, const Logger& log)
    : settings_(std::move(settings)), prefetcher_(prefetcher), clock_(clock), log_(log) {}

HoldDecision MilterEngine::on_recipient(MilterSession& session, std::string_view address,
                                        RecipientSource source) {
    const RecipientDomain rd = recipient_domain(address);
    if (rd.kind == RecipientDomain::Kind::invalid) {
        // Log lines quote what the client sent: printable() keeps them ASCII.
        log_.info(session.peer_ + ": recipient '" + printable(address, 300) + "' ignored: " + printable(rd.why, 400));
        return {};
    }
    if (rd.kind == RecipientDomain::Kind::no_domain) return {};
    const DomainName& d = *rd.domain;
    if (settings_.exempt.matches(d)) return {};

    if (auto it = session.decided_.find(d.str()); it != session.decided_.end()) return it->second;

    const auto budget = std::chrono::duration_cast<std::chrono::steady_clock::duration>(settings_.wait);
    const auto left = budget > session.waited_ ? budget - session.waited_ : std::chrono::steady_clock::duration{};
    const auto t0 = std::chrono::steady_clock::now();
    const Prefetcher::Seen seen =
        prefetcher_.observe(d, std::chrono::duration_cast<std::chrono::milliseconds>(left));
    session.waited_ += std::chrono::steady_clock::now() - t0;

    HoldDecision decision;
    if (settings_.action == MilterAction::hold && source == RecipientSource::smtpd) {
        const DomainStatus status = domain_status(d, seen.record, clock_.now());
        decision = hold_decision(d, status);
        if (decision.action == RcptAction::tempfail)
            log_.info(session.peer_ + ": recipient '" + printable(address, 300) + "' held: " + kHoldReplyCode + " " +
                      kHoldStatusCode + " " + status.why);
    }
    if (decision.action == RcptAction::accept) session.domains_.push_back(d);
    session.decided_.emplace(d.str(), decision);
    return decision;
}

void MilterEngine::on_header(MilterSession& session, std::string_view name) {
    if (settings_.action == MilterAction::header && ascii_iequals(name, kPolicyHeaderName)) ++session.existing_headers_;
}

EomEdits MilterEngine::on_end_of_message(MilterSession& session) {
    EomEdits edits;
    if (settings_.action == MilterAction::header) {
        edits.remove_existing = session.existing_headers_;
        const UnixTime now = clock_.now();
        for (const auto& d : session.domains_) {
            if (edits.add.size() == kMaxHeaderDomains) {
                edits.add.push_back("(" + std::to_string(session.domains_.size() - kMaxHeaderDomains) +
                                    " more recipient domains not listed)");
                break;
            }
            edits.add.push_back(policy_header_value(d, domain_status(d, prefetcher_.read(d), now)));
        }
    }
    session.begin_message();
    return edits;
}

}  // namespace stsguard
