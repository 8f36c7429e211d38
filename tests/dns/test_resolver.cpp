#include "postern/dns/resolver.hpp"

#include <string>

#include <doctest/doctest.h>

using namespace postern::dns;

TEST_SUITE("dns") {

TEST_CASE("statuses have names and answers start out temporary")
{
    CHECK(std::string(to_string(status::ok)) == "ok");
    CHECK(std::string(to_string(status::nxdomain)) == "nxdomain");
    CHECK(std::string(to_string(status::nodata)) == "nodata");
    CHECK(std::string(to_string(status::temporary)) == "temporary");
    CHECK(mx_answer{}.st == status::temporary); // never "ok" by accident
}

}
