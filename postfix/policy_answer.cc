#include "postfix/policy_answer.h"

#include "policy-cache/mx_match.h"

namespace stsguard {
namespace {

template <class Strings>
void append_joined(std::string& out, const Strings& v, const char* sep) {
    bool first = true;
    for (const auto& s : v) {
        if (!first) out += sep;
        out += s;
        first = false;
    }
}

template <class Strings>
std::string join(const Strings& v, const char* sep) {
    std::string out;
    append_joined(out, v, sep);
    return out;
}

// Postfix 3.10+ attributes (TLSRPT_README "MTA-STS Support via
// smtp_tls_policy_maps").  policy_string values are wrapped in { } because
// they contain white space.
std::string sts_attributes(const DomainName& domain, const DomainView& v, const char* policy_failure) {
    std::string a = " policy_type=sts policy_domain=" + domain.str();
    for (const auto mx : v.texts.mx) (a += " mx_host_pattern=") += mx;
    a += " policy_ttl=" + std::to_string(v.remaining.count());
    ((a += " { policy_string = version: ") += v.texts.version) += " }";
    a += std::string(" { policy_string = mode: ") + mode_name(v.mode) + " }";
    for (const auto mx : v.texts.mx) ((a += " { policy_string = mx: ") += mx) += " }";
    a += " { policy_string = max_age: " + std::to_string(v.max_age.count()) + " }";
    if (policy_failure) a += std::string(" policy_failure=") + policy_failure;
    return a;
}

std::string postfix_match_list(const NameViews& patterns) {
    std::string out;
    for (const auto pat : patterns) {
        if (!out.empty()) out += ':';
        out += postfix_match_pattern(pat);
    }
    return out;
}

Answer notfound(std::string code, std::string why) {
    return {SocketmapReply::notfound(), std::move(code), std::move(why)};
}

}  // namespace

std::string postfix_match_pattern(std::string_view p) {
    return std::string(p.starts_with("*.") ? p.substr(1) : p);
}

void decide_answer_into(const DomainName& domain, const DomainView& view, const MapSettings& map, Explain explain,
                        Answer& into) {
    const bool explained = explain == Explain::yes;
    auto give = [&into](Answer a) { into = std::move(a); };
    using State = DomainView::State;
    if (view.state == State::temp_failure) {
        std::string why = "no usable policy: " + view.failure_code + " (" + view.failure_reason + ")";
        if (map.on_temp_failure == OnTempFailure::temp)
            return give(Answer{SocketmapReply::temp("MTA-STS policy of " + domain.str() + " unavailable: " + view.failure_reason),
                    "temp-failure", why});
        return give(notfound("temp-failure-open", why));
    }
    if (view.state == State::no_policy)
        return give(notfound("no-policy", view.failure_code.empty() ? "no MTA-STS policy" : view.failure_code + ": " + view.failure_reason));

    if (view.mode == Mode::none) return give(notfound("mode-none", "policy mode none"));
    if (view.mode == Mode::testing && map.testing == TestingPolicies::report_only)
        return give(notfound("mode-testing", "policy mode testing: report only"));

    const bool attrs = map.attributes == PostfixAttributes::on;
    const std::string_view mode = mode_name(view.mode);  // static text: no string built

    if (map.mx_match == MxMatchMode::patterns) {
        std::string text = "secure match=" + postfix_match_list(view.texts.mx) + " servername=hostname";
        if (attrs) text += sts_attributes(domain, view, nullptr);
        return give(Answer{SocketmapReply::ok(std::move(text)), std::string(mode),
                explained ? "policy " + std::string(mode) + ", patterns " + join(view.texts.mx, ", ") : std::string()});
    }

    if (!view.mx_known) {
        return give(Answer{SocketmapReply::temp("MTA-STS: MX lookup for " + domain.str() + " failed: " + view.mx_failure),
                "mx-lookup-failed", "policy " + std::string(mode) + ", MX lookup failed: " + view.mx_failure});
    }
    // The reply to nearly every lookup is built in place: approved hosts
    // go straight into the text, no list of them in between.
    const UsableMxPatterns usable(view.texts.mx);  // checked once, not once per host
    constexpr std::string_view kHead = "secure match=";
    constexpr std::string_view kTail = " servername=hostname";
    std::size_t size = kHead.size() + kTail.size();
    for (const auto host : view.texts.mx_hosts) size += host.size() + 1;
    std::string& text = into.reply.text;  // keeps its storage between requests
    text.clear();
    text.reserve(size);
    text += kHead;
    for (const auto host : view.texts.mx_hosts) {
        if (!mx_allowed_checked(usable, host)) continue;
        if (text.size() > kHead.size()) text += ':';
        text += host;
    }
    if (text.size() == kHead.size()) {
        std::string why = "no MX host of " + domain.str() + " (" +
                          (view.texts.mx_hosts.empty() ? std::string("none") : join(view.texts.mx_hosts, ", ")) +
                          ") matches its MTA-STS policy (mx: " + join(view.texts.mx, ", ") + ")";
        if (attrs) {
            // Let Postfix >= 3.10 refuse each MX itself and report it via
            // TLSRPT; older Postfix versions reject these attributes.
            std::string refused = "secure match=" + postfix_match_list(view.texts.mx) + " servername=hostname" +
                                  sts_attributes(domain, view, "validation-failure");
            return give(Answer{SocketmapReply::ok(std::move(refused)), "no-mx-match", why});
        }
        return give(Answer{SocketmapReply::temp("MTA-STS: " + why), "no-mx-match", why});
    }
    std::string& why = into.why;
    why.clear();
    if (explained) {
        // Host names hold no ':', so the match list splits back cleanly.
        why = "policy " + std::string(mode) + ", approved MX ";
        const std::string_view hosts = std::string_view(text).substr(kHead.size());
        for (std::size_t pos = 0;;) {
            const std::size_t colon = hosts.find(':', pos);
            why += hosts.substr(pos, colon == std::string_view::npos ? std::string_view::npos : colon - pos);
            if (colon == std::string_view::npos) break;
            why += ", ";
            pos = colon + 1;
        }
    }
    text += kTail;
    if (attrs) text += sts_attributes(domain, view, nullptr);
    into.reply.kind = SocketmapReply::Kind::ok;
    into.why_code.assign(mode);
}

Answer decide_answer(const DomainName& domain, const DomainView& view, const MapSettings& map, Explain explain) {
    Answer a;
    decide_answer_into(domain, view, map, explain, a);
    return a;
}

}  // namespace stsguard
