// Tests for policy-cache/address_guard.cc: which policy-host addresses
// the fetcher refuses (RFC 6890 special-purpose ranges).
#include "policy-cache/address_guard.h"

#include <doctest/doctest.h>

#include <string>

using stsguard::internal_address_range;

namespace {

// The range name reported for ip, or "" if the address is public.
std::string range_of(std::string_view ip) {
    auto r = internal_address_range(ip);
    return r ? *r : std::string();
}

}  // namespace

TEST_CASE("guard: public IPv4 and IPv6 addresses are allowed") {
    for (const char* ip : {"8.8.8.8",
                           "1.1.1.1",
                           "93.184.216.34",
                           "9.255.255.255",
                           "11.0.0.0",
                           "100.63.255.255",
                           "100.128.0.0",
                           "126.255.255.255",
                           "128.0.0.0",
                           "169.253.255.255",
                           "169.255.0.0",
                           "172.15.255.255",
                           "172.32.0.0",
                           "192.0.1.0",
                           "192.167.255.255",
                           "192.169.0.0",
                           "198.17.255.255",
                           "198.20.0.0",
                           "223.255.255.255",
                           "2001:4860:4860::8888",
                           "2606:4700:4700::1111",
                           "2a00:1450:4001:80b::200e",
                           "2001:db9::1",
                           "2001:db7:ffff::1",
                           "fbff::1",
                           "fe00::1",
                           "64:ff9b::808:808",
                           "::ffff:8.8.8.8",
                           "::ffff:93.184.216.34",
                           "2002:7f00:1::1"}) {
        CAPTURE(ip);
        CHECK_FALSE(internal_address_range(ip).has_value());
    }
}

TEST_CASE("guard: every internal IPv4 range is refused, at both ends") {
    struct Row {
        const char* ip;
        const char* range;
    };
    const Row rows[] = {
        {"0.0.0.0", "0.0.0.0/8"},
        {"0.255.255.255", "0.0.0.0/8"},
        {"10.0.0.0", "10.0.0.0/8"},
        {"10.255.255.255", "10.0.0.0/8"},
        {"100.64.0.0", "100.64.0.0/10"},
        {"100.127.255.255", "100.64.0.0/10"},
        {"127.0.0.1", "127.0.0.0/8"},
        {"127.255.255.254", "127.0.0.0/8"},
        {"169.254.169.254", "169.254.0.0/16"},
        {"172.16.0.0", "172.16.0.0/12"},
        {"172.31.255.255", "172.16.0.0/12"},
        {"192.0.0.8", "192.0.0.0/24"},
        {"192.168.0.1", "192.168.0.0/16"},
        {"192.168.255.255", "192.168.0.0/16"},
        {"198.18.0.0", "198.18.0.0/15"},
        {"198.19.255.255", "198.18.0.0/15"},
        {"224.0.0.1", "224.0.0.0/4"},
        {"239.255.255.255", "224.0.0.0/4"},
        {"240.0.0.1", "240.0.0.0/4"},
        {"254.1.2.3", "240.0.0.0/4"},
        {"255.255.255.255", "255.255.255.255/32"},
        {"192.0.2.1", "192.0.2.0/24"},
        {"198.51.100.7", "198.51.100.0/24"},
        {"203.0.113.200", "203.0.113.0/24"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.ip);
        const std::string r = range_of(row.ip);
        CHECK(r.find(row.range) != std::string::npos);
    }
    CHECK(range_of("127.0.0.1") == "loopback (127.0.0.0/8)");
    CHECK(range_of("10.1.2.3") == "private (10.0.0.0/8)");
    CHECK(range_of("169.254.169.254") == "link-local (169.254.0.0/16)");
}

TEST_CASE("guard: every internal IPv6 range is refused") {
    struct Row {
        const char* ip;
        const char* range;
    };
    const Row rows[] = {
        {"::", "::/128"},
        {"::1", "::1/128"},
        {"0:0:0:0:0:0:0:1", "::1/128"},
        {"::7f00:1", "::/96"},
        {"fc00::1", "fc00::/7"},
        {"fd12:3456:789a::1", "fc00::/7"},
        {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fc00::/7"},
        {"fe80::1", "fe80::/10"},
        {"febf:ffff::1", "fe80::/10"},
        {"fec0::1", "fec0::/10"},
        {"ff02::1", "ff00::/8"},
        {"ff05::1:3", "ff00::/8"},
        {"2001:db8::1", "2001:db8::/32"},
        {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::/32"},
        {"FE80::ABCD", "fe80::/10"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.ip);
        const std::string r = range_of(row.ip);
        CHECK(r.find(row.range) != std::string::npos);
    }
    CHECK(range_of("::1") == "loopback (::1/128)");
}

TEST_CASE("guard: IPv4-mapped IPv6 addresses follow the IPv4 rules") {
    CHECK(range_of("::ffff:127.0.0.1") ==
          "loopback (127.0.0.0/8) as IPv4-mapped IPv6 (::ffff:0:0/96)");
    CHECK(range_of("::ffff:7f00:1").find("loopback (127.0.0.0/8)") != std::string::npos);
    CHECK(range_of("::ffff:10.0.0.1").find("10.0.0.0/8") != std::string::npos);
    CHECK(range_of("::ffff:169.254.169.254").find("169.254.0.0/16") != std::string::npos);
    CHECK(range_of("::ffff:0.0.0.0").find("0.0.0.0/8") != std::string::npos);
    CHECK(range_of("0:0:0:0:0:ffff:c0a8:0101").find("192.168.0.0/16") != std::string::npos);
    CHECK_FALSE(internal_address_range("::ffff:8.8.4.4").has_value());
}

TEST_CASE("guard: NAT64 addresses follow the IPv4 rules for the embedded address") {
    CHECK(range_of("64:ff9b::127.0.0.1") == "loopback (127.0.0.0/8) via NAT64 (64:ff9b::/96)");
    CHECK(range_of("64:ff9b::a00:1").find("10.0.0.0/8") != std::string::npos);
    CHECK(range_of("64:ff9b::c0a8:1").find("192.168.0.0/16") != std::string::npos);
    CHECK_FALSE(internal_address_range("64:ff9b::1.1.1.1").has_value());
    // Outside the /96 the NAT64 rule does not apply.
    CHECK_FALSE(internal_address_range("64:ff9b:1::7f00:1").has_value());
}

TEST_CASE("guard: unparsable addresses are never allowed") {
    for (const char* ip : {"",           " ",
                           "localhost",  "example.com",
                           "127.0.0.1 ", " 127.0.0.1",
                           "127.1",      "1.2.3",
                           "1.2.3.4.5",  "256.1.1.1",
                           "01.2.3.4",   "1.2.3.4/32",
                           "[::1]",      "fe80::1%eth0",
                           ":::",        "1::2::3",
                           "gggg::1",    "8.8.8.8:53",
                           "0x7f.0.0.1", "2001:4860:4860::8888:1:2:3:4"}) {
        CAPTURE(ip);
        CHECK(range_of(ip) == "unparsable address");
    }
    const std::string with_nul("8.8.8.8\0x", 9);
    CHECK(range_of(with_nul) == "unparsable address");
    CHECK(range_of(std::string(200, '1')) == "unparsable address");
}
