#include "postern/util/free_space.hpp"

#include <chrono>

#include <doctest/doctest.h>

#include "../temp_dir.hpp"

using namespace postern;
using namespace std::chrono_literals;

TEST_SUITE("util") {

TEST_CASE("free_space measures an existing directory and fails for a missing one")
{
    postern::testing::temp_dir dir;
    auto f = util::free_space(dir.str());
    REQUIRE(f.has_value());
    CHECK(*f > 0);
    CHECK_FALSE(util::free_space(dir.str() + "/missing").has_value());
}

TEST_CASE("the monitor is low when a directory has less than the threshold or cannot be measured")
{
    postern::testing::temp_dir dir;
    const auto d = dir.str();
    const auto t0 = util::free_space_monitor::steady::time_point{} + 1h;
    SUBCASE("a threshold no file system meets")
    {
        util::free_space_monitor m({d}, ~std::uint64_t{0});
        bool changed = false;
        CHECK(m.low(t0, &changed));
        CHECK(changed);
        CHECK(m.low_dir() == d);
    }
    SUBCASE("a threshold of one octet")
    {
        util::free_space_monitor m({d}, 1);
        CHECK_FALSE(m.low(t0));
        CHECK(m.low_dir().empty());
    }
    SUBCASE("zero disables the check")
    {
        util::free_space_monitor m({d + "/missing"}, 0);
        CHECK_FALSE(m.low(t0));
    }
    SUBCASE("a missing directory counts as low")
    {
        util::free_space_monitor m({d, d + "/missing"}, 1);
        CHECK(m.low(t0));
        CHECK(m.low_dir() == d + "/missing");
    }
}

TEST_CASE("the monitor re-measures only after its interval")
{
    postern::testing::temp_dir dir;
    const auto d = dir.str();
    const auto t0 = util::free_space_monitor::steady::time_point{} + 1h;
    util::free_space_monitor m({d + "/later"}, 1, 1s);
    CHECK(m.low(t0)); // missing: low
    std::filesystem::create_directory(d + "/later");
    bool changed = true;
    CHECK(m.low(t0 + 500ms, &changed)); // cached
    CHECK_FALSE(changed);
    CHECK_FALSE(m.low(t0 + 1s, &changed)); // measured again
    CHECK(changed);
}

}
