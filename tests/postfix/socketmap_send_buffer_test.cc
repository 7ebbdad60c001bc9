// Tests for postfix/socketmap_send_buffer.cc (SendBuffer): the reply bytes a
// socketmap connection owes its client, framed in place and sent in order.
#include <doctest/doctest.h>

#include <string>

#include "postfix/netstring.h"
#include "postfix/socketmap_send_buffer.h"

using namespace stsguard;

namespace {

std::string contents(const SendBuffer& b) { return std::string(b.data(), b.size()); }

}  // namespace

TEST_CASE("send buffer: replies are framed as netstrings and sent from the front, in order") {
    SendBuffer b;
    CHECK(b.empty());
    b.append_netstring("OK ", "secure match=.example.com");
    b.append_netstring("NOTFOUND ", "");
    b.append(netstring_encode("TEMP later"));
    const std::string want = netstring_encode("OK secure match=.example.com") +
                             netstring_encode("NOTFOUND ") + netstring_encode("TEMP later");
    CHECK(contents(b) == want);
    b.consume(5);  // a short send
    CHECK(contents(b) == want.substr(5));
    b.append_netstring("PERM ", "x");
    CHECK(contents(b) == want.substr(5) + "6:PERM x,");
    b.consume(b.size());
    CHECK(b.empty());
    CHECK(b.capacity() > 0);  // kept for the next reply
}

TEST_CASE("send buffer: unsent bytes survive moving to the front and growing") {
    SendBuffer b;
    std::string want;
    // Fill, send most of it, then append what fits only once the sent bytes
    // are dropped (the move), then far more than fits (the growth).
    for (int i = 0; i < 20; ++i) {
        const std::string text = "reply " + std::to_string(i);
        b.append_netstring("OK ", text);
        want += netstring_encode("OK " + text);
    }
    const std::size_t cap = b.capacity();
    const std::size_t sent = want.size() - 7;
    b.consume(sent);
    want.erase(0, sent);
    const std::string fits(cap - want.size() - kNetstringMaxOverhead - 3, 'f');
    b.append_netstring("OK ", fits);
    want += netstring_encode("OK " + fits);
    CHECK(b.capacity() == cap);  // moved, not grown
    CHECK(contents(b) == want);
    const std::string big(3 * cap, 'g');
    b.append_netstring("OK ", big);
    want += netstring_encode("OK " + big);
    CHECK(b.capacity() > cap);
    CHECK(contents(b) == want);
}

TEST_CASE("send buffer: a client reading a little at a time makes it grow, not move its bytes over and over") {
    SendBuffer b;
    std::string want;
    while (b.size() + 100 < b.capacity() || b.capacity() == 0) {
        b.append_netstring("OK ", std::string(80, 'r'));
        want += netstring_encode("OK " + std::string(80, 'r'));
    }
    const std::size_t cap = b.capacity();
    const std::size_t free_at_back = cap - b.size();
    b.consume(10);  // far less sent than still owed: not worth moving
    want.erase(0, 10);
    // Too long for the space at the back, short enough for it plus the sent bytes.
    const std::string text(free_at_back + 5 - kNetstringMaxOverhead - 3, 's');
    b.append_netstring("OK ", text);
    want += netstring_encode("OK " + text);
    CHECK(b.capacity() > cap);
    CHECK(contents(b) == want);
}

TEST_CASE("send buffer: a backlog's storage is released once sent; a small one is kept") {
    SendBuffer b;
    b.append_netstring("OK ", std::string(SendBuffer::kKeepBytes, 'b'));
    CHECK(b.capacity() > SendBuffer::kKeepBytes);
    b.consume(100);
    CHECK(b.capacity() > SendBuffer::kKeepBytes);  // not while bytes are owed
    b.consume(b.size());
    CHECK(b.empty());
    CHECK(b.capacity() == 0);
    b.append_netstring("OK ", "small");
    CHECK(contents(b) == "8:OK small,");
    b.clear();
    CHECK(b.empty());
    CHECK(b.capacity() == 0);
}
