#include "postern/util/id.hpp"

#include <set>

#include <doctest/doctest.h>

using namespace postern::util;

TEST_SUITE("util") {

TEST_CASE("queue ids are unique, sortable by time and safe as file names")
{
    auto t = from_unix_seconds(1795675831);
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        auto id = make_queue_id(t);
        CAPTURE(id);
        CHECK(is_queue_id(id));
        CHECK(seen.insert(id).second);
    }
    CHECK(make_queue_id(t) < make_queue_id(t + std::chrono::seconds(1)));
    CHECK_FALSE(is_queue_id("../../etc/passwd"));
    CHECK_FALSE(is_queue_id("0123456789ABCDEF"));
    CHECK(make_session_id().size() == 16);
    CHECK(make_session_id() != make_session_id());
}

}
