#include "postern/auth/credentials.hpp"

#include <map>
#include <ostream>
#include <stdexcept>
#include <string>

#include <doctest/doctest.h>

#include "postern/auth/password.hpp"
#include "postern/util/error.hpp"

using namespace postern;
using namespace postern::auth;

namespace {

using user_table = std::map<std::string, std::string, std::less<>>;

} // namespace

TEST_SUITE("auth") {

TEST_CASE("static credentials accept the right password and refuse a wrong one")
{
    static_credentials c(user_table{{"tim", hash_password("tanstaaf", floor_iterations)},
                                    {"kurt", hash_password("xipj3plmq", floor_iterations)}},
                         floor_iterations);
    auto ok = c.check("tim", "tanstaaf");
    REQUIRE(ok);
    CHECK(*ok);
    CHECK(*c.check("kurt", "xipj3plmq"));
    CHECK_FALSE(*c.check("tim", "xipj3plmq")); // someone else's password
    CHECK_FALSE(*c.check("tim", ""));
    CHECK_FALSE(*c.check("TIM", "tanstaaf")); // usernames are exact
}

TEST_CASE("static credentials say false for an unknown user, whatever the password")
{
    static_credentials c(user_table{{"tim", hash_password("tanstaaf", floor_iterations)}}, floor_iterations);
    for (const char* pw : {"tanstaaf", "", "anything"}) {
        CAPTURE(pw);
        auto r = c.check("nobody", pw);
        REQUIRE(r);
        CHECK_FALSE(*r);
    }
    static_credentials empty(user_table{}, floor_iterations);
    auto r = empty.check("tim", "tanstaaf");
    REQUIRE(r);
    CHECK_FALSE(*r);
}

TEST_CASE("static credentials refuse a user table holding a plain-text or cheap password")
{
    CHECK_THROWS_AS(static_credentials(user_table{{"tim", "tanstaaf"}}, floor_iterations), std::invalid_argument);
    // At the production floor, a test-cost hash is refused too.
    CHECK_THROWS_AS(static_credentials(user_table{{"tim", hash_password("pw", floor_iterations)}}),
                    std::invalid_argument);
}

} // TEST_SUITE
