// check_dns.cc - dns_record (RFC 8461 3.1) and dane (RFC 7672, RFC 8461 2).
#include "checker/checks.h"

namespace stsguard {
namespace {

using nlohmann::json;

json extensions_json(const std::vector<std::pair<std::string, std::string>>& kv) {
    json a = json::array();
    for (const auto& [k, v] : kv) a.push_back({{"name", k}, {"value", v}});
    return a;
}

std::string first_message(const Findings& fs, Severity sev) {
    for (const auto& f : fs)
        if (f.severity == sev) return f.message;
    return std::string();
}

std::string publish_fix(const DomainName& d) {
    return "publish one TXT record at " + d.sts_txt_owner() +
           ": \"v=STSv1; id=<1-32 letters or digits, e.g. a timestamp>\", and serve the policy at " +
           policy_url(d, 443) + " (RFC 8461 3.1, 3.3)";
}

}  // namespace

CheckResult check_dns_record(const DomainFacts& f) {
    CheckResult r;
    r.id = "dns_record";
    const TxtStep& t = f.discovery.txt;
    const std::string owner = f.domain.sts_txt_owner();
    std::size_t sts = 0, other = 0;
    for (const auto& rec : t.records) (rec.rfind("v=STSv1", 0) == 0 ? sts : other)++;
    r.details = {{"owner", owner},
                 {"reason_code", t.code},
                 {"records", t.records},
                 {"sts_records", sts},
                 {"other_records", other},
                 {"cnames", t.meta.cnames},
                 {"authenticated", t.meta.authenticated},
                 {"ttl", t.meta.ttl},
                 {"verdict", txt_verdict_name(t.txt.verdict)},
                 {"id", t.txt.id ? json(t.txt.id->str()) : json(nullptr)},
                 {"extensions", extensions_json(t.txt.extensions)}};
    r.findings = t.txt.findings;
    const std::string via =
        t.meta.cnames.empty() ? std::string() : " (via CNAME " + owner + " -> " + join_list(t.meta.cnames, " -> ") + ")";

    if (t.status == DiscoveryStatus::failed) {
        r.status = CheckStatus::unknown;
        r.summary = "the TXT lookup of " + owner + " failed (" + t.code + "): " + t.reason;
        r.fix = "check that the domain's name servers answer, and the resolver stsguard uses (dns_servers); "
                "then check again";
        return r;
    }
    if (t.code == "no-txt") {
        r.status = CheckStatus::fail;
        r.summary = "no TXT record at " + owner + " (" + t.reason + "): the domain publishes no MTA-STS policy";
        r.fix = publish_fix(f.domain);
        return r;
    }
    if (t.code == "txt-none-sts") {
        r.status = CheckStatus::fail;
        r.summary = std::to_string(t.records.size()) + " TXT record(s) at " + owner + via +
                    ", but none begins with 'v=STSv1': no MTA-STS policy (RFC 8461 3.1)";
        r.fix = "make the MTA-STS record begin exactly with 'v=STSv1;' (case-sensitive, no leading space); " +
                publish_fix(f.domain);
        return r;
    }
    if (t.code == "txt-multiple") {
        r.status = CheckStatus::fail;
        r.summary = std::to_string(sts) + " records at " + owner + via +
                    " begin with 'v=STSv1': senders then assume no policy (RFC 8461 3.1)";
        r.fix = "keep exactly one v=STSv1 record at " + owner + " and delete the others";
        return r;
    }
    if (t.status != DiscoveryStatus::policy) {  // txt-invalid
        r.status = CheckStatus::fail;
        r.summary = "the v=STSv1 record at " + owner + via + " is invalid: " + first_message(t.txt.findings, Severity::error) +
                    "; senders assume no policy (RFC 8461 3.1)";
        r.fix = "correct the record to \"v=STSv1; id=<1-32 letters or digits>\" (fields separated by ';', "
                "no spaces around '='); see the findings";
        return r;
    }
    r.status = has_warnings(t.txt.findings) ? CheckStatus::warn : CheckStatus::pass;
    r.summary = "v=STSv1 record with id " + t.txt.id->str() + via;
    if (other > 0)
        r.summary += "; " + std::to_string(other) + " other TXT record(s) there are ignored (RFC 8461 3.1)";
    if (r.status == CheckStatus::warn) {
        r.summary += "; warning: " + first_message(t.txt.findings, Severity::warning);
        r.fix = "see the findings: some senders may ignore this record";
    }
    return r;
}

CheckResult check_dane(const DomainFacts& f) {
    CheckResult r;
    r.id = "dane";
    json hosts = json::array();
    std::vector<std::string> with_tlsa, validated, failed;
    for (const auto& h : f.hosts) {
        if (!h.tlsa) continue;
        const std::string owner = "_25._tcp." + h.mx.host;
        json hj = {{"host", h.mx.host}, {"owner", owner}};
        if (h.tlsa->found()) {
            const TlsaAnswer& a = h.tlsa->value();
            json recs = json::array();
            for (const auto& t : a.records)
                recs.push_back({{"usage", t.usage},
                                {"selector", t.selector},
                                {"matching", t.matching},
                                {"data", t.data_hex}});
            hj["lookup"] = "found";
            hj["records"] = recs;
            hj["authenticated"] = a.meta.authenticated;
            with_tlsa.push_back(h.mx.host);
            if (a.meta.authenticated) validated.push_back(h.mx.host);
        } else if (h.tlsa->not_found()) {
            hj["lookup"] = "none";
            hj["reason"] = h.tlsa->not_found_info().reason;
        } else {
            hj["lookup"] = "failed";
            hj["failure"] = failure_json(h.tlsa->failure());
            failed.push_back(h.mx.host);
        }
        hosts.push_back(hj);
    }
    r.details = {{"hosts", hosts}};
    if (hosts.empty()) {
        r.status = CheckStatus::skip;
        r.summary = f.mx && f.mx->failed() ? "MX lookup failed: no TLSA lookups" : "no MX host to look up TLSA records for";
        return r;
    }
    if (!with_tlsa.empty()) {
        r.status = CheckStatus::info;
        r.summary = "TLSA records at _25._tcp of " + join_list(with_tlsa, ", ");
        if (validated.size() == with_tlsa.size())
            r.summary += ", DNSSEC-validated (AD bit): DANE-capable senders use DANE and do not apply "
                         "MTA-STS (RFC 8461 2, RFC 7672)";
        else if (validated.empty())
            r.summary += ", not DNSSEC-validated (no AD bit from the resolver): senders ignore them "
                         "(RFC 7672 2.2); MTA-STS applies";
        else
            r.summary += "; only " + join_list(validated, ", ") + " DNSSEC-validated (AD bit)";
        if (!failed.empty()) r.summary += "; TLSA lookup failed for " + join_list(failed, ", ");
        return r;
    }
    if (!failed.empty()) {
        r.status = CheckStatus::info;
        r.summary = "TLSA lookup failed for " + join_list(failed, ", ") + " (informational)";
        return r;
    }
    r.status = CheckStatus::pass;
    r.summary = "no TLSA records at _25._tcp of the MX hosts: senders rely on MTA-STS";
    return r;
}

}  // namespace stsguard
