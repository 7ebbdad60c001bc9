#include "plugin/milter_runner.h"

#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>

namespace stsguard {
namespace {

// The one process-wide state, forced by libmilter's callback API (see
// the header).  Callbacks hold `active` while they use the engine.
struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    MilterEngine* engine = nullptr;
    int active = 0;
};

Gate& gate() {
    static Gate g;
    return g;
}

class Entry {
public:
    Entry() {
        Gate& g = gate();
        std::lock_guard<std::mutex> l(g.mu);
        if (g.engine) {
            engine_ = g.engine;
            ++g.active;
        }
    }
    ~Entry() {
        if (!engine_) return;
        Gate& g = gate();
        std::lock_guard<std::mutex> l(g.mu);
        if (--g.active == 0) g.cv.notify_all();
    }
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    MilterEngine* engine() const { return engine_; }

private:
    MilterEngine* engine_ = nullptr;
};

std::string peer_text(const char* host, const sockaddr* addr) {
    std::string s = host ? host : "unknown";
    if (!addr) return s;
    char buf[INET6_ADDRSTRLEN] = "";
    if (addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, buf, sizeof buf);
    else if (addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, buf, sizeof buf);
    if (buf[0] != '\0') s += std::string("[") + buf + "]";
    return s;
}

// The connection's session; created here if xxfi_connect did not run
// (or could not store it).  nullptr only if libmilter refuses the priv.
MilterSession* session_of(SMFICTX* ctx) {
    if (auto* s = static_cast<MilterSession*>(smfi_getpriv(ctx))) return s;
    auto* s = new MilterSession("unknown");
    if (smfi_setpriv(ctx, s) != MI_SUCCESS) {
        delete s;
        return nullptr;
    }
    return s;
}

// Runs f(engine, session) with every exception caught: an internal
// failure is logged and the session continues.
template <typename F>
sfsistat guarded(SMFICTX* ctx, const char* step, F&& f) noexcept {
    try {
        Entry entry;
        MilterEngine* engine = entry.engine();
        if (!engine) return SMFIS_CONTINUE;  // starting or stopping
        try {
            MilterSession* s = session_of(ctx);
            if (!s) {
                engine->log().error(std::string("milter ") + step + ": cannot keep per-connection state; continuing");
                return SMFIS_CONTINUE;
            }
            return f(*engine, *s);
        } catch (const std::exception& e) {
            engine->log().error(std::string("milter ") + step + ": internal error: " + e.what() + "; continuing");
        } catch (...) {
            engine->log().error(std::string("milter ") + step + ": internal error; continuing");
        }
    } catch (...) {
        // logging itself failed (out of memory): still never throw into C
    }
    return SMFIS_CONTINUE;
}

extern "C" {

static sfsistat cb_connect(SMFICTX* ctx, char* host, _SOCK_ADDR* addr) {
    try {
        auto* old = static_cast<MilterSession*>(smfi_getpriv(ctx));
        delete old;
        auto* s = new MilterSession(peer_text(host, addr));
        if (smfi_setpriv(ctx, s) != MI_SUCCESS) delete s;
    } catch (...) {
        // no session yet: session_of() makes one later
    }
    return SMFIS_CONTINUE;
}

static sfsistat cb_envfrom(SMFICTX* ctx, char** /*argv*/) {
    return guarded(ctx, "MAIL FROM", [](MilterEngine&, MilterSession& s) {
        s.begin_message();
        return SMFIS_CONTINUE;
    });
}

static sfsistat cb_envrcpt(SMFICTX* ctx, char** argv) {
    return guarded(ctx, "RCPT TO", [ctx, argv](MilterEngine& e, MilterSession& s) {
        if (!argv || !argv[0]) return SMFIS_CONTINUE;
        // smtpd(8) defines {rcpt_mailer}; cleanup(8)'s simulated RCPT does not.
        const RecipientSource source = smfi_getsymval(ctx, const_cast<char*>("{rcpt_mailer}")) != nullptr
                                           ? RecipientSource::smtpd
                                           : RecipientSource::non_smtpd;
        HoldDecision d = e.on_recipient(s, argv[0], source);
        if (d.action != RcptAction::tempfail) return SMFIS_CONTINUE;
        std::string code = kHoldReplyCode, xcode = kHoldStatusCode;
        if (smfi_setreply(ctx, code.data(), xcode.data(), d.reply_text.data()) != MI_SUCCESS)
            e.log().warning("milter: smfi_setreply failed; the MTA uses its default 4xx text");
        return SMFIS_TEMPFAIL;
    });
}

static sfsistat cb_header(SMFICTX* ctx, char* name, char* /*value*/) {
    return guarded(ctx, "header", [name](MilterEngine& e, MilterSession& s) {
        if (name) e.on_header(s, name);
        return SMFIS_CONTINUE;
    });
}

static sfsistat cb_eom(SMFICTX* ctx) {
    return guarded(ctx, "end of message", [ctx](MilterEngine& e, MilterSession& s) {
        const EomEdits edits = e.on_end_of_message(s);
        std::string name = kPolicyHeaderName;
        // Delete from the last occurrence down, so the indexes stay valid.
        for (std::size_t i = edits.remove_existing; i >= 1; --i) {
            if (smfi_chgheader(ctx, name.data(), static_cast<int>(i), nullptr) != MI_SUCCESS)
                e.log().warning(s.peer() + ": cannot delete an incoming " + name + " header");
        }
        for (const auto& v : edits.add) {
            std::string value = v;
            if (smfi_addheader(ctx, name.data(), value.data()) != MI_SUCCESS)
                e.log().warning(s.peer() + ": cannot add header " + name + ": " + value);
        }
        return SMFIS_CONTINUE;
    });
}

static sfsistat cb_abort(SMFICTX* ctx) {
    return guarded(ctx, "abort", [](MilterEngine&, MilterSession& s) {
        s.begin_message();
        return SMFIS_CONTINUE;
    });
}

static sfsistat cb_close(SMFICTX* ctx) {
    // Frees the session even while stopping: it never touches the engine.
    delete static_cast<MilterSession*>(smfi_getpriv(ctx));
    smfi_setpriv(ctx, nullptr);
    return SMFIS_CONTINUE;
}

}  // extern "C"

}  // namespace

bool milter_open(const MilterSettings& settings, std::string* why) {
    auto fail = [why](std::string msg) {
        if (why) *why = std::move(msg);
        return false;
    };
    static char name[] = "stsguard";
    smfiDesc desc{};
    desc.xxfi_name = name;
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = settings.action == MilterAction::header ? (SMFIF_ADDHDRS | SMFIF_CHGHDRS) : SMFIF_NONE;
    desc.xxfi_connect = cb_connect;
    desc.xxfi_envfrom = cb_envfrom;
    desc.xxfi_envrcpt = cb_envrcpt;
    // Headers are only looked at (and so only sent to us) for `header`.
    desc.xxfi_header = settings.action == MilterAction::header ? cb_header : nullptr;
    desc.xxfi_eom = cb_eom;
    desc.xxfi_abort = cb_abort;
    desc.xxfi_close = cb_close;
    if (smfi_register(desc) != MI_SUCCESS) return fail("smfi_register failed (libmilter version mismatch?)");
    std::string conn = settings.listen;
    if (smfi_setconn(conn.data()) != MI_SUCCESS) return fail("smfi_setconn " + settings.listen + " failed");
    if (smfi_settimeout(static_cast<int>(settings.timeout.count())) != MI_SUCCESS)
        return fail("smfi_settimeout failed");
    errno = 0;
    if (smfi_opensocket(true) != MI_SUCCESS) {
        const int e = errno;
        return fail("cannot listen on " + settings.listen +
                    (e != 0 ? std::string(": ") + std::strerror(e) : std::string(" (address in use or not permitted)")));
    }
    return true;
}

int milter_run(MilterEngine& engine, Prefetcher& prefetcher, std::chrono::milliseconds drain_timeout) {
    Gate& g = gate();
    {
        std::lock_guard<std::mutex> l(g.mu);
        g.engine = &engine;
    }
    const int rc = smfi_main();
    prefetcher.stop();  // waiters return at once
    bool drained = false;
    {
        std::unique_lock<std::mutex> l(g.mu);
        g.engine = nullptr;
        drained = g.cv.wait_for(l, drain_timeout, [&g] { return g.active == 0; });
    }
    if (!drained) {
        engine.log().error("milter: callbacks still running after shutdown; exiting at once");
        std::_Exit(1);
    }
    return rc == MI_SUCCESS ? 0 : 1;
}

}  // namespace stsguard
