// check_tlsrpt.cc - tlsrpt: the _smtp._tls record (RFC 8460 3).  MTA-STS
// in testing mode is only useful with reports (RFC 8461 5), so a missing
// record warns there and is advice elsewhere.
#include "checker/checks.h"
#include "checker/tlsrpt_record.h"

namespace stsguard {
namespace {

using nlohmann::json;

bool testing_mode(const DomainFacts& f) {
    const Policy* p = valid_policy(f);
    return p != nullptr && p->mode == Mode::testing;
}

std::string add_fix(const DomainName& d) {
    return "publish " + d.tlsrpt_owner() + " TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@" + d.str() +
           "\" (or rua=https://...) to receive reports of failed TLS deliveries (RFC 8460 3)";
}

}  // namespace

CheckResult check_tlsrpt(const DomainFacts& f) {
    CheckResult r;
    r.id = "tlsrpt";
    const std::string owner = f.domain.tlsrpt_owner();
    r.details = {{"owner", owner}};
    if (!f.tlsrpt) {
        r.status = CheckStatus::skip;
        r.summary = "not checked";
        return r;
    }
    if (f.tlsrpt->failed()) {
        r.status = CheckStatus::unknown;
        r.details["failure"] = failure_json(f.tlsrpt->failure());
        r.summary = "the TXT lookup of " + owner + " failed: " + f.tlsrpt->failure().reason;
        r.fix = "check that the domain's name servers answer; then check again";
        return r;
    }
    const std::vector<std::string> records =
        f.tlsrpt->found() ? f.tlsrpt->value().records : std::vector<std::string>{};
    const TlsrptRecord rec = parse_tlsrpt(records);
    r.findings = rec.findings;
    json ext = json::array();
    for (const auto& [k, v] : rec.extensions) ext.push_back({{"name", k}, {"value", v}});
    r.details["records"] = records;
    r.details["verdict"] = tlsrpt_verdict_name(rec.verdict);
    r.details["rua"] = rec.rua;
    r.details["extensions"] = ext;
    if (f.tlsrpt->found()) r.details["cnames"] = f.tlsrpt->value().meta.cnames;

    switch (rec.verdict) {
        case TlsrptVerdict::absent:
            r.status = testing_mode(f) ? CheckStatus::warn : CheckStatus::info;
            r.summary = "no TLSRPT record at " + owner + ": nobody reports failed TLS deliveries to you" +
                        (testing_mode(f) ? " - and mode testing is only useful with reports (RFC 8461 5)" : "");
            r.fix = add_fix(f.domain);
            break;
        case TlsrptVerdict::invalid: {
            std::string first;
            for (const auto& x : rec.findings)
                if (x.severity == Severity::error) {
                    first = x.message;
                    break;
                }
            r.status = CheckStatus::warn;
            r.summary = "the TLSRPT record at " + owner + " is invalid: " + first +
                        "; senders send no reports (RFC 8460 3)";
            r.fix = "correct the record to \"v=TLSRPTv1; rua=mailto:ADDRESS\" (one record, URIs separated by ',')";
            break;
        }
        case TlsrptVerdict::valid:
            r.status = has_warnings(rec.findings) ? CheckStatus::warn : CheckStatus::pass;
            r.summary = "TLSRPT reports go to " + join_list(rec.rua, ", ");
            if (r.status == CheckStatus::warn) {
                for (const auto& x : rec.findings)
                    if (x.severity == Severity::warning) {
                        r.summary += "; warning: " + x.message;
                        break;
                    }
                r.fix = "use only mailto: and https: URIs in rua=";
            }
            break;
    }
    return r;
}

}  // namespace stsguard
