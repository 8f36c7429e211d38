#include "postern/imap/sequence_set.hpp"

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

using namespace postern;
using imap::seq_star;

namespace {

using spans = std::vector<std::pair<std::uint32_t, std::uint32_t>>;

} // namespace

TEST_SUITE("imap") {

TEST_CASE("sequence sets parse with * kept symbolic")
{
    auto s = imap::parse_sequence_set("1,3:5,7:*");
    REQUIRE(s);
    CHECK(s->ranges == std::vector<imap::seq_range>{{1, 1}, {3, 5}, {7, seq_star}});
    CHECK_FALSE(s->saved);

    auto star = imap::parse_sequence_set("*");
    REQUIRE(star);
    CHECK(star->ranges == std::vector<imap::seq_range>{{seq_star, seq_star}});

    auto big = imap::parse_sequence_set("4294967295:4827313");
    REQUIRE(big);
    CHECK(big->ranges.front().first == 4294967295U);
}

TEST_CASE("$ is the saved search result, alone (RFC 5182)")
{
    auto s = imap::parse_sequence_set("$");
    REQUIRE(s);
    CHECK(s->saved);
    CHECK(s->ranges.empty());
    CHECK_FALSE(imap::parse_sequence_set("$,1"));
    CHECK_FALSE(imap::parse_sequence_set("1:$"));
}

TEST_CASE("malformed sequence sets are refused")
{
    for (const char* bad : {"", "0", "1:", ":1", ",", "1,", ",1", "1,,2", "1:0", "01", "4294967296", "1:2:3", "a",
                            "1 2", "-1", "**", "1:**"}) {
        CAPTURE(bad);
        auto r = imap::parse_sequence_set(bad);
        CHECK_FALSE(r);
        CHECK(r.error() == util::errc::syntax);
    }
}

TEST_CASE("the number of ranges is bounded")
{
    std::string s = "1";
    for (int i = 2; i <= 10; ++i)
        s += "," + std::to_string(i);
    CHECK(imap::parse_sequence_set(s, 10));
    auto r = imap::parse_sequence_set(s + ",11", 10);
    REQUIRE_FALSE(r);
    CHECK(r.error() == util::errc::limit);
}

TEST_CASE("resolve replaces *, orders, sorts and merges")
{
    auto s = imap::parse_sequence_set("7:*,5:3,1,2,20");
    REQUIRE(s);
    CHECK(imap::resolve(*s, 10) == spans{{1, 5}, {7, 10}, {20, 20}});
    CHECK(imap::resolve(*s, 0) == spans{{1, 7}, {20, 20}});
    auto only_star = imap::parse_sequence_set("*");
    REQUIRE(only_star);
    CHECK(imap::resolve(*only_star, 0).empty());
    CHECK(imap::resolve(*only_star, 4) == spans{{4, 4}});
    auto top = imap::parse_sequence_set("4294967290:*,1");
    REQUIRE(top);
    CHECK(imap::resolve(*top, 4294967295U) == spans{{1, 1}, {4294967290U, 4294967295U}});
}

TEST_CASE("contains tests membership once * is known")
{
    auto s = imap::parse_sequence_set("2:4,*");
    REQUIRE(s);
    CHECK(imap::contains(*s, 3, 100));
    CHECK(imap::contains(*s, 100, 100));
    CHECK_FALSE(imap::contains(*s, 5, 100));
    CHECK_FALSE(imap::contains(*s, 0, 0));
}

} // TEST_SUITE
