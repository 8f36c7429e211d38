#include "postern/util/clock.hpp"

#include <doctest/doctest.h>

using namespace postern::util;

TEST_SUITE("util") {

TEST_CASE("rfc5322_date renders English names in UTC")
{
    // 2026-11-26 06:50:31 UTC is a Thursday.
    CHECK(rfc5322_date(from_unix_seconds(1795675831)) == "Thu, 26 Nov 2026 06:50:31 +0000");
    CHECK(unix_seconds(from_unix_seconds(42)) == 42);
}

TEST_CASE("manual_clock moves only when told")
{
    manual_clock c(from_unix_seconds(100));
    CHECK(unix_seconds(c.now()) == 100);
    c.advance(std::chrono::seconds(5));
    CHECK(unix_seconds(c.now()) == 105);
}

}
