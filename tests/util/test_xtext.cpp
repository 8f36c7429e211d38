#include "postern/util/xtext.hpp"

#include <string>

#include <doctest/doctest.h>

using namespace postern::util;

TEST_SUITE("util") {

TEST_CASE("xtext leaves printable ASCII alone and encodes '+', '=', space and every other octet")
{
    CHECK(xtext_encode("user@example.test") == "user@example.test");
    CHECK(xtext_encode("a+b=c d") == "a+2Bb+3Dc+20d");
    CHECK(xtext_encode(std::string("\0\x7f\xc3\xa4", 4)) == "+00+7F+C3+A4");
    CHECK(xtext_encode("") == "");
}

TEST_CASE("xtext decodes what it encodes, for every octet")
{
    std::string all;
    for (int c = 0; c < 256; ++c)
        all.push_back(static_cast<char>(c));
    auto d = xtext_decode(xtext_encode(all));
    REQUIRE(d);
    CHECK(*d == all);
}

TEST_CASE("xtext decoding refuses what RFC 3461 4 does not allow")
{
    SUBCASE("a '+' without two hex digits")
    {
        CHECK_FALSE(xtext_decode("abc+"));
        CHECK_FALSE(xtext_decode("abc+4"));
        CHECK_FALSE(xtext_decode("abc+4G"));
        CHECK_FALSE(xtext_decode("+G0"));
    }
    SUBCASE("characters outside xchar: '=', space, controls, 8-bit")
    {
        CHECK_FALSE(xtext_decode("a=b"));
        CHECK_FALSE(xtext_decode("a b"));
        CHECK_FALSE(xtext_decode("a\tb"));
        CHECK_FALSE(xtext_decode("\xc3\xa4"));
        CHECK_FALSE(xtext_decode(std::string("a\0b", 3)));
    }
    SUBCASE("lower-case hex is accepted (as Postfix does)")
    {
        auto d = xtext_decode("a+2bb");
        REQUIRE(d);
        CHECK(*d == "a+b");
    }
}

} // TEST_SUITE
