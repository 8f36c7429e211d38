#include "postern/util/cidr.hpp"

#include <doctest/doctest.h>

using postern::util::cidr;

TEST_SUITE("util") {

TEST_CASE("a network contains exactly the addresses under its prefix")
{
    auto n = cidr::parse("192.0.2.0/24");
    REQUIRE(n);
    CHECK(n->contains("192.0.2.0"));
    CHECK(n->contains("192.0.2.255"));
    CHECK_FALSE(n->contains("192.0.3.1"));
    CHECK_FALSE(n->contains("2001:db8::1"));
    CHECK_FALSE(n->contains("not an ip"));
    auto odd = cidr::parse("10.128.0.0/9");
    REQUIRE(odd);
    CHECK(odd->contains("10.200.1.1"));
    CHECK_FALSE(odd->contains("10.100.1.1"));
}

TEST_CASE("loopback networks match IPv4, IPv6 and IPv4-mapped clients")
{
    auto v4 = cidr::parse("127.0.0.0/8");
    auto v6 = cidr::parse("::1/128");
    REQUIRE(v4);
    REQUIRE(v6);
    CHECK(v4->contains("127.0.0.1"));
    CHECK(v4->contains("127.1.2.3"));
    CHECK(v4->contains("::ffff:127.0.0.1"));
    CHECK(v6->contains("::1"));
    CHECK_FALSE(v6->contains("::2"));
    CHECK(postern::util::in_any({*v4, *v6}, "::1"));
    CHECK_FALSE(postern::util::in_any({*v4, *v6}, "192.0.2.1"));
}

TEST_CASE("a bare address is a host route and bad networks are refused")
{
    auto h = cidr::parse("192.0.2.7");
    REQUIRE(h);
    CHECK(h->prefix == 32);
    CHECK(h->contains("192.0.2.7"));
    CHECK_FALSE(h->contains("192.0.2.8"));
    CHECK(cidr::parse("0.0.0.0/0"));
    CHECK(cidr::parse("fe80::/10"));
    for (auto bad : {"10.0.0.1/33", "10.0.0.0/8x", "::1/129", "10.1.0.0/8", "not-an-ip", "", "/8",
                     "10.0.0.0/", "10.0.0.0/-1"}) {
        CAPTURE(bad);
        CHECK_FALSE(cidr::parse(bad));
    }
}

}
