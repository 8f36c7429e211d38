#include "postern/util/strings.hpp"

#include <doctest/doctest.h>

using namespace postern::util;

TEST_SUITE("util") {

TEST_CASE("case-insensitive comparison folds ASCII only")
{
    CHECK(iequals("EHLO", "ehlo"));
    CHECK_FALSE(iequals("EHLO", "ehl"));
    CHECK_FALSE(iequals("\xc3\x84", "\xc3\xa4")); // Ä/ä are not folded
    CHECK(istarts_with("MAIL FROM:<a@b>", "mail from:"));
    CHECK_FALSE(istarts_with("MAIL", "MAIL FROM:"));
    CHECK(to_lower("Example.TEST") == "example.test");
}

TEST_CASE("parse_uint accepts digits only and refuses overflow")
{
    CHECK(parse_uint("0") == 0u);
    CHECK(parse_uint("36700160") == 36700160u);
    CHECK(parse_uint("18446744073709551615") == 18446744073709551615ull);
    CHECK_FALSE(parse_uint("18446744073709551616"));
    CHECK_FALSE(parse_uint(""));
    CHECK_FALSE(parse_uint("-1"));
    CHECK_FALSE(parse_uint("12a"));
    CHECK_FALSE(parse_uint(" 1"));
}

TEST_CASE("split keeps empty fields and trim strips blanks")
{
    auto v = split("a,,b", ',');
    REQUIRE(v.size() == 3);
    CHECK(v[1].empty());
    CHECK(trim("  x y\t") == "x y");
    CHECK(hex(255, 4) == "00ff");
}

}
