#include "postern/util/free_space.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>

#include "../temp_dir.hpp"

using namespace postern;
using namespace std::chrono_literals;

TEST_SUITE("util") {

TEST_CASE("free_space measures a directory, or the nearest existing ancestor of one not made yet")
{
    postern::testing::temp_dir dir;
    auto f = util::free_space(dir.str());
    REQUIRE(f.has_value());
    CHECK(*f > 0);
    CHECK(util::free_space(dir.str() + "/missing/deeper").has_value());
    // A path through a regular file is an error (ENOTDIR), not an ancestor.
    std::ofstream(dir.str("file")) << "x";
    CHECK_FALSE(util::free_space(dir.str("file") + "/below").has_value());
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
    SUBCASE("a directory that cannot be measured counts as low")
    {
        std::ofstream(dir.str("file")) << "x";
        util::free_space_monitor m({d, dir.str("file") + "/below"}, 1);
        CHECK(m.low(t0));
        CHECK(m.low_dir() == dir.str("file") + "/below");
    }
}

TEST_CASE("the monitor re-measures only after its interval")
{
    postern::testing::temp_dir dir;
    const auto d = dir.str();
    const auto t0 = util::free_space_monitor::steady::time_point{} + 1h;
    std::ofstream(dir.str("later")) << "x"; // a file where a directory should be: unmeasurable
    util::free_space_monitor m({d + "/later/x"}, 1, 1s);
    CHECK(m.low(t0));
    std::filesystem::remove(dir.str("later"));
    bool changed = true;
    CHECK(m.low(t0 + 500ms, &changed)); // cached
    CHECK_FALSE(changed);
    CHECK_FALSE(m.low(t0 + 1s, &changed)); // measured again: the ancestor d now counts
    CHECK(changed);
}

}
