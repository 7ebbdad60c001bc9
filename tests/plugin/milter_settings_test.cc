// Tests plugin/milter_settings.cc: the milter_* configuration keys, and
// the libmilter socket syntax checked before libmilter sees it.
#include <doctest/doctest.h>

#include "plugin/milter_settings.h"

using namespace stsguard;

namespace {

Config parsed(const std::string& text) {
    Config c;
    const auto errs = parse_config(text, "test.cf", c);
    REQUIRE_MESSAGE(errs.empty(), (errs.empty() ? "" : errs.front().message));
    return c;
}

}  // namespace

TEST_CASE("milter settings: defaults are prefetch on inet:8462@127.0.0.1, no wait, 30 s timeout") {
    std::string why;
    const auto s = milter_settings(Config{}, &why);
    REQUIRE_MESSAGE(s.has_value(), why);
    CHECK(s->listen == "inet:8462@127.0.0.1");
    CHECK(s->action == MilterAction::prefetch);
    CHECK(s->wait == std::chrono::milliseconds(0));
    CHECK(s->timeout == Seconds{30});
    CHECK(s->exempt.size() == 0);
}

TEST_CASE("milter settings: every key is read from the config file") {
    const Config c = parsed(
        "milter_listen = unix:/run/stsguard/milter.sock\n"
        "milter_wait = 2s\n"
        "milter_action = hold\n"
        "milter_exempt_domains = example.com, .internal.test\n"
        "milter_timeout = 1m\n");
    std::string why;
    const auto s = milter_settings(c, &why);
    REQUIRE_MESSAGE(s.has_value(), why);
    CHECK(s->listen == "unix:/run/stsguard/milter.sock");
    CHECK(s->wait == std::chrono::milliseconds(2000));
    CHECK(s->action == MilterAction::hold);
    CHECK(s->exempt.matches(*DomainName::parse("example.com")));
    CHECK(s->exempt.matches(*DomainName::parse("a.internal.test")));
    CHECK(s->timeout == Seconds{60});
    CHECK(std::string(milter_action_name(s->action)) == "hold");
}

TEST_CASE("milter settings: config errors name the key") {
    Config c;
    CHECK(parse_config("milter_action = reject\n", "f", c).size() == 1);
    CHECK(parse_config("milter_wait = 2m\n", "f", c).size() == 1);  // over 60 s
    CHECK(parse_config("milter_timeout = 0\n", "f", c).size() == 1);

    c = Config{};
    c.milter_exempt_domains = {"ok.test", "bad domain"};
    std::string why;
    CHECK_FALSE(milter_settings(c, &why).has_value());
    CHECK(why.find("milter_exempt_domains") != std::string::npos);
    CHECK(why.find("'bad domain'") != std::string::npos);

    c = Config{};
    c.milter_listen = "inet:8462";
    CHECK_FALSE(milter_settings(c, &why).has_value());
    CHECK(why.find("milter_listen") != std::string::npos);
}

TEST_CASE("milter socket: libmilter's inet, inet6, unix and local forms") {
    std::string why;
    for (const char* ok : {"inet:8462@127.0.0.1", "inet:1@localhost", "inet:65535@[::1]", "inet6:8462@::1",
                           "unix:/run/milter.sock", "local:/var/spool/postfix/stsguard/milter"}) {
        CHECK_MESSAGE(check_milter_socket(ok, &why), ok << ": " << why);
    }
}

TEST_CASE("milter socket: bad specs are refused with the reason") {
    struct Case {
        const char* spec;
        const char* reason_part;
    };
    const Case cases[] = {
        {"inet:8462", "name the address"},
        {"inet:8462@", "name the address"},
        {"inet:0@127.0.0.1", "invalid port"},
        {"inet:65536@127.0.0.1", "invalid port"},
        {"inet:x@127.0.0.1", "invalid port"},
        {"inet:@127.0.0.1", "invalid port"},
        {"unix:relative.sock", "absolute"},
        {"unix:", "absolute"},
        {"tcp:127.0.0.1:8462", "expected inet"},
        {"/run/milter.sock", "expected inet"},
        {"inet:8462@127.0.0.1 ", "white space"},
        {"", "expected inet"},
    };
    for (const auto& c : cases) {
        std::string why;
        CHECK_FALSE_MESSAGE(check_milter_socket(c.spec, &why), c.spec);
        CHECK_MESSAGE(why.find(c.reason_part) != std::string::npos, c.spec << ": " << why);
    }
    std::string why;
    CHECK_FALSE(check_milter_socket("unix:/" + std::string(200, 'a'), &why));
    CHECK(why.find("longer than") != std::string::npos);
}
