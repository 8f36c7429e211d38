#include "postern/scheduler/retry.hpp"

#include <chrono>
#include <cstdint>
#include <limits>
#include <vector>

#include <doctest/doctest.h>

using namespace postern::scheduler;
using namespace std::chrono_literals;
using postern::util::from_unix_seconds;

TEST_SUITE("scheduler") {

TEST_CASE("backoff doubles from 300 s and stays at the 3600 s maximum")
{
    const retry_policy p;
    const std::vector<std::chrono::seconds> expected = {300s, 600s, 1200s, 2400s, 3600s, 3600s, 3600s};
    for (std::uint32_t attempts = 1; attempts <= expected.size(); ++attempts) {
        CAPTURE(attempts);
        CHECK(backoff(p, attempts) == expected[attempts - 1]);
    }
    SUBCASE("however many attempts there were")
    {
        for (std::uint32_t attempts : {20u, 64u, 1000u, std::numeric_limits<std::uint32_t>::max()}) {
            CAPTURE(attempts);
            CHECK(backoff(p, attempts) == 3600s);
        }
    }
}

TEST_CASE("backoff follows a configured initial delay and maximum")
{
    retry_policy p;
    p.initial = 60s;
    p.max = 1000s;
    const std::vector<std::chrono::seconds> expected = {60s, 120s, 240s, 480s, 960s, 1000s, 1000s};
    for (std::uint32_t attempts = 1; attempts <= expected.size(); ++attempts) {
        CAPTURE(attempts);
        CHECK(backoff(p, attempts) == expected[attempts - 1]);
    }
}

TEST_CASE("next_attempt is now plus the backoff")
{
    const retry_policy p;
    const auto now = from_unix_seconds(1700000000);
    CHECK(next_attempt(p, 1, now) == from_unix_seconds(1700000300));
    CHECK(next_attempt(p, 2, now) == from_unix_seconds(1700000600));
    CHECK(next_attempt(p, 5, now) == from_unix_seconds(1700003600));
    CHECK(next_attempt(p, 9, now) == from_unix_seconds(1700003600));
}

TEST_CASE("an entry expires exactly give_up after it was received")
{
    const retry_policy p;
    REQUIRE(p.give_up == 432000s);
    const auto received = from_unix_seconds(1700000000);
    CHECK_FALSE(expired(p, received, received));
    CHECK_FALSE(expired(p, received, received + 432000s - 1s));
    CHECK(expired(p, received, received + 432000s));
    CHECK(expired(p, received, received + 432000s + 1s));
    CHECK(expired(p, received, received + 30 * 24h));
    SUBCASE("a clock behind the arrival time is not expiry")
    {
        CHECK_FALSE(expired(p, received, received - 1h));
    }
    SUBCASE("with a configured give_up")
    {
        retry_policy q;
        q.give_up = 3600s;
        CHECK_FALSE(expired(q, received, received + 3599s));
        CHECK(expired(q, received, received + 3600s));
    }
}

}
