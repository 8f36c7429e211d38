#include "postern/auth/failure_limiter.hpp"

#include <chrono>
#include <string>

#include <doctest/doctest.h>

using namespace postern;
using namespace std::chrono_literals;

namespace {
const util::time_point t0 = util::from_unix_seconds(1'800'000'000);
}

TEST_SUITE("auth") {

TEST_CASE("an address is locked after max_failures within the window, and free again after it")
{
    auth::failure_limiter lim(3, 600s);
    CHECK_FALSE(lim.locked("192.0.2.1", t0));
    lim.failed("192.0.2.1", t0);
    lim.failed("192.0.2.1", t0 + 10s);
    CHECK_FALSE(lim.locked("192.0.2.1", t0 + 10s));
    lim.failed("192.0.2.1", t0 + 20s);
    CHECK(lim.locked("192.0.2.1", t0 + 20s));
    CHECK(lim.locked("192.0.2.1", t0 + 599s));
    CHECK_FALSE(lim.locked("192.0.2.2", t0 + 20s)); // other addresses are not affected
    CHECK_FALSE(lim.locked("192.0.2.1", t0 + 600s));
    // A new window starts with the next failure.
    lim.failed("192.0.2.1", t0 + 700s);
    CHECK_FALSE(lim.locked("192.0.2.1", t0 + 700s));
}

TEST_CASE("failures spread over more than a window do not lock")
{
    auth::failure_limiter lim(2, 60s);
    lim.failed("::1", t0);
    lim.failed("::1", t0 + 61s); // the first has expired: this one starts over
    CHECK_FALSE(lim.locked("::1", t0 + 61s));
    lim.failed("::1", t0 + 62s);
    CHECK(lim.locked("::1", t0 + 62s));
}

TEST_CASE("the table stays bounded, dropping expired entries first, then the oldest")
{
    auth::failure_limiter lim(1, 60s, 3);
    lim.failed("a", t0);
    lim.failed("b", t0 + 30s);
    lim.failed("c", t0 + 40s);
    CHECK(lim.tracked() == 3);
    // "a" expired at t0 + 60s and makes room.
    lim.failed("d", t0 + 65s);
    CHECK(lim.tracked() == 3);
    CHECK_FALSE(lim.locked("a", t0 + 65s));
    CHECK(lim.locked("b", t0 + 65s));
    // Nothing expired: the oldest ("b") goes.
    lim.failed("e", t0 + 66s);
    CHECK(lim.tracked() == 3);
    CHECK_FALSE(lim.locked("b", t0 + 66s));
    CHECK(lim.locked("c", t0 + 66s));
    CHECK(lim.locked("d", t0 + 66s));
    CHECK(lim.locked("e", t0 + 66s));
    for (int i = 0; i < 1000; ++i) {
        CAPTURE(i);
        lim.failed("x" + std::to_string(i), t0 + 70s);
        CHECK(lim.tracked() <= 3);
    }
}

}
