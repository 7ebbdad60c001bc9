#include "postfix/policy_service.h"

#include <atomic>
#include <stdexcept>

#include "postfix/domain_view.h"
#include "postfix/socketmap_key.h"

namespace stsguard {
namespace {

MapSettings apply_map_setting(MapSettings m, const std::string& key, const std::string& value) {
    if (key == "mx_match") m.mx_match = value == "patterns" ? MxMatchMode::patterns : MxMatchMode::exact;
    else if (key == "enforce_testing")
        m.testing = value == "yes" || value == "true" || value == "1" ? TestingPolicies::enforce
                                                                       : TestingPolicies::report_only;
    else if (key == "on_temp_failure")
        m.on_temp_failure = value == "temp" ? OnTempFailure::temp : OnTempFailure::notfound;
    else if (key == "postfix_attributes")
        m.attributes = value == "yes" || value == "true" || value == "1" ? PostfixAttributes::on
                                                                          : PostfixAttributes::off;
    return m;
}

const char* reply_kind(const SocketmapReply& r) {
    switch (r.kind) {
        case SocketmapReply::Kind::ok: return "OK";
        case SocketmapReply::Kind::notfound: return "NOTFOUND";
        case SocketmapReply::Kind::temp: return "TEMP";
        case SocketmapReply::Kind::timeout: return "TIMEOUT";
        case SocketmapReply::Kind::perm: return "PERM";
    }
    return "TEMP";
}

}  // namespace

ServiceSettings service_settings(const Config& c) {
    ServiceSettings s;
    s.defaults = apply_map_setting(s.defaults, "mx_match", c.mx_match);
    s.defaults = apply_map_setting(s.defaults, "enforce_testing", c.enforce_testing ? "yes" : "no");
    s.defaults = apply_map_setting(s.defaults, "on_temp_failure", c.on_temp_failure);
    s.defaults = apply_map_setting(s.defaults, "postfix_attributes", c.postfix_attributes ? "yes" : "no");
    for (const auto& name : c.map_names) {
        MapSettings m = s.defaults;
        auto it = c.map_overrides.find(name);
        if (it != c.map_overrides.end())
            for (const auto& [k, v] : it->second) m = apply_map_setting(m, k, v);
        s.maps[name] = m;
    }
    s.lookup_wait = c.lookup_wait;
    s.log_decisions = c.log_decisions ? DecisionLog::on : DecisionLog::off;
    return s;
}

PolicyService::PolicyService(PolicyStore& store, DiscoveryPool& pool, const Clock& clock, EventLoop& loop,
                             ServiceSettings settings, const Logger& log, ServiceMetrics& metrics)
    : store_(store), pool_(pool), clock_(clock), loop_(loop), settings_(std::move(settings)), log_(log),
      metrics_(metrics), explain_(settings_.log_decisions == DecisionLog::on ? Explain::yes : Explain::no),
      reading_(store) {}

void PolicyService::finish(const DomainName* domain, const std::string& key, const Answer& a, const char* cache,
                           std::chrono::steady_clock::time_point t0) {
    const char* kind = reply_kind(a.reply);
    metrics_.count_lookup(kind, a.why_code, std::chrono::steady_clock::now() - t0);
    if (settings_.log_decisions == DecisionLog::on)
        log_.info((domain ? domain->str() : key) + ": answer=" + kind + " reason=" + a.why_code + " cache=" +
                  cache + " (" + a.why + ")");
}

SocketmapHandler::Answered PolicyService::answer_now(const SocketmapRequest& req, SocketmapReply& out) {
    const auto t0 = std::chrono::steady_clock::now();
    const MapSettings& map = settings_.map_for(req.map_name);
    KeyClass& k = key_;
    classify_key_into(req.key, k);
    if (k.kind != KeyClass::Kind::domain) {
        if (k.kind == KeyClass::Kind::invalid) log_.warning("request key '" + req.key + "': " + k.why);
        const Answer a{SocketmapReply::notfound(), k.kind == KeyClass::Kind::invalid ? "invalid-key" : "not-a-domain",
                       k.why};
        finish(nullptr, req.key, a, "none", t0);
        out = a.reply;
        return Answered::now;
    }
    const DomainName& d = *k.domain;
    // One record decoded per request, in place: the answer is decided on
    // views into LMDB's bytes, inside the read transaction, into storage
    // kept between requests.
    std::optional<CacheRecord>& rec = scratch_;
    if (!rec) rec.emplace(d);
    Assessment a;
    {
        // Ends the read transaction on every way out of this block.
        struct EndReading {
            PolicyStore::Reading& r;
            ~EndReading() { r.end(); }
        } end_reading{reading_};
        auto got = reading_.get(d, *rec, view_.texts);
        if (!got.found()) {
            rec.reset();
            if (got.failed() && loop_.now() - last_store_warning_ > std::chrono::seconds(10)) {
                last_store_warning_ = loop_.now();
                log_.warning("cache read for " + d.str() + ": " + got.failure().reason);
            }
        }
        const UnixTime now = clock_.now();
        a = assess(rec, now);
        // A policy whose MX set was never read cannot be answered exactly.
        const bool mx_unknown = a.use == Assessment::Use::policy && map.mx_match == MxMatchMode::exact &&
                                rec->mx_expires_at == UnixTime{} && rec->policy.mode != Mode::none;
        if (last_use_worth_recording(rec, now)) used_[d.str()] = now;
        if (a.refresh == Assessment::Refresh::now || mx_unknown) return Answered::later;
        view_of_into(*rec, a, view_);
        decide_answer_into(d, view_, map, explain_, answer_);
    }
    metrics_.count_cache(true);
    finish(&d, req.key, answer_, "hit", t0);
    // Copied, not moved: out and answer_ both keep their storage.
    out.kind = answer_.reply.kind;
    out.text.assign(answer_.reply.text);
    if (a.refresh == Assessment::Refresh::background || a.mx_stale) pool_.submit(d, nullptr);
    return Answered::now;
}

void PolicyService::handle(const SocketmapRequest& req, ReplyFn done) {
    SocketmapReply r;
    if (answer_now(req, r) == Answered::now) {
        done(std::move(r));
        return;
    }
    // answer_now() said later only for a domain it must discover first.
    const auto t0 = std::chrono::steady_clock::now();
    const KeyClass k = classify_key(req.key);
    if (!k.domain) throw std::logic_error("answer_now() deferred a key that is not a domain");
    metrics_.count_cache(false);
    discover_now(*k.domain, settings_.map_for(req.map_name), t0, std::move(done));
}

void PolicyService::discover_now(const DomainName& d, const MapSettings& map,
                                 std::chrono::steady_clock::time_point t0, ReplyFn done) {
    // Exactly one of the timer and the completion answers.
    struct Pending {
        std::atomic<bool> answered{false};
        EventLoop::TimerId timer = 0;
    };
    auto pending = std::make_shared<Pending>();
    auto self = shared_from_this();
    LoopPoster poster = loop_.poster();

    auto on_done = [self, pending, poster, d, map, t0, done](const RefreshResult& r) {
        auto record = r.record;
        std::string code = r.attempt ? (r.attempt->fetch ? r.attempt->fetch->code : r.attempt->txt.code) : "";
        poster.post([self, pending, d, map, t0, done, record = std::move(record), code] {
            if (!code.empty()) self->metrics_.count_discovery(code);
            if (pending->answered.exchange(true)) return;
            self->loop_.cancel(pending->timer);
            Assessment a = assess(record, self->clock_.now());
            Answer ans = decide_answer(d, view_of(record, a, "cache-error", "cache unavailable"), map);
            self->finish(&d, d.str(), ans, "miss", t0);
            done(std::move(ans.reply));
        });
    };
    auto sub = pool_.submit(d, on_done);
    if (sub == DiscoveryPool::Submit::queue_full) {
        pending->answered = true;
        DomainView v;
        v.state = DomainView::State::temp_failure;
        v.failure_code = "overloaded";
        v.failure_reason = "discovery queue full";
        Answer ans = decide_answer(d, v, map);
        finish(&d, d.str(), ans, "miss", t0);
        done(std::move(ans.reply));
        return;
    }
    pending->timer = loop_.run_after(settings_.lookup_wait, [self, pending, d, map, t0, done] {
        if (pending->answered.exchange(true)) return;
        DomainView v;
        v.state = DomainView::State::temp_failure;
        v.failure_code = "lookup-wait";
        v.failure_reason = "policy discovery did not finish within lookup_wait";
        Answer ans = decide_answer(d, v, map);
        self->finish(&d, d.str(), ans, "miss", t0);
        done(std::move(ans.reply));
    });
}

void PolicyService::flush_last_used() {
    if (used_.empty()) return;
    std::vector<std::pair<DomainName, UnixTime>> batch;
    for (const auto& [name, t] : used_)
        if (auto d = DomainName::parse(name)) batch.emplace_back(*d, t);
    used_.clear();
    PolicyStore* store = &store_;
    const Logger* log = &log_;
    pool_.post([store, log, batch = std::move(batch)] {
        if (auto f = store->touch_last_used(batch)) log->warning("cache: recording last use: " + f->reason);
    });
}

}  // namespace stsguard
