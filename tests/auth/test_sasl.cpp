#include "postern/auth/sasl.hpp"

#include <ostream>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "postern/util/base64.hpp"
#include "postern/util/error.hpp"

using namespace postern;
using namespace postern::auth;
using namespace std::string_view_literals;

TEST_SUITE("auth") {

TEST_CASE("PLAIN decodes the RFC 4616 example")
{
    // RFC 4616 4: "\0tim\0tanstaaftanstaaf".
    auto r = decode_plain("AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    REQUIRE(r);
    CHECK(r->username == "tim");
    CHECK(r->password == "tanstaaftanstaaf");
}

TEST_CASE("PLAIN accepts an authzid equal to the authcid")
{
    auto r = decode_plain(util::base64_encode("Kurt\0Kurt\0xipj3plmq"sv));
    REQUIRE(r);
    CHECK(r->username == "Kurt");
    CHECK(r->password == "xipj3plmq");

    auto utf8 = decode_plain(util::base64_encode("\0j\xc3\xb6rg\0p\xc3\xa4ss word"sv));
    REQUIRE(utf8);
    CHECK(utf8->username == "j\xc3\xb6rg");
    CHECK(utf8->password == "p\xc3\xa4ss word");
}

TEST_CASE("PLAIN with an authzid other than the authcid is refused (no proxy authorization)")
{
    // RFC 4616 4's second example: Ursel authenticates as Kurt.
    auto r = decode_plain(util::base64_encode("Ursel\0Kurt\0xipj3plmq"sv));
    REQUIRE_FALSE(r);
    CHECK(r.error() == util::errc::refused);
    auto c = decode_plain(util::base64_encode("TIM\0tim\0pw"sv)); // exact match, no case folding
    REQUIRE_FALSE(c);
    CHECK(c.error() == util::errc::refused);
}

TEST_CASE("malformed PLAIN responses are a syntax error")
{
    const std::string bad[] = {
        "",                                          // empty response
        "=",                                         // not base64
        "AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n",          // line ending left on
        "AHRpbQB0YW5zdGFhZnRhbnN0YWFm ",             // trailing space
        "AHRpbQB0YW5zdGFhZnRhbnN0YWF",               // truncated, unpadded
        "*",                                         // the cancel line is the session's
        util::base64_encode("timtanstaaf"sv),        // no NUL
        util::base64_encode("tim\0tanstaaf"sv),      // one NUL
        util::base64_encode("\0\0tanstaaf"sv),       // empty authcid
        util::base64_encode("\0tim\0"sv),            // empty password
        util::base64_encode("\0tim\0tan\0staaf"sv),  // NUL in the password
        util::base64_encode("\0\0\0"sv),
    };
    for (const auto& s : bad) {
        CAPTURE(s);
        auto r = decode_plain(s);
        REQUIRE_FALSE(r);
        CHECK(r.error() == util::errc::syntax);
    }
}

TEST_CASE("SASL responses over 1 KiB decoded are too long")
{
    const std::string pw(1024 - 5, 'p');
    auto fits = decode_plain(util::base64_encode(std::string("\0tim\0"sv) + pw));
    REQUIRE(fits);
    CHECK(fits->password.size() == 1019);
    auto over = decode_plain(util::base64_encode(std::string("\0tim\0"sv) + pw + "p"));
    REQUIRE_FALSE(over);
    CHECK(over.error() == util::errc::too_long);
    auto huge = decode_plain(std::string(100000, 'A'));
    REQUIRE_FALSE(huge);
    CHECK(huge.error() == util::errc::too_long);

    CHECK(decode_login_line(util::base64_encode(std::string(1024, 'u'))));
    auto login = decode_login_line(util::base64_encode(std::string(1025, 'u')));
    REQUIRE_FALSE(login);
    CHECK(login.error() == util::errc::too_long);
}

TEST_CASE("LOGIN decodes a username line and a password line")
{
    auto user = decode_login_line("dGlt");
    REQUIRE(user);
    CHECK(*user == "tim");
    auto both = decode_login(util::base64_encode("tim@example.org"), util::base64_encode("tanstaaf"));
    REQUIRE(both);
    CHECK(both->username == "tim@example.org");
    CHECK(both->password == "tanstaaf");
}

TEST_CASE("malformed LOGIN lines are a syntax error")
{
    const std::string bad[] = {
        "",                                 // empty value
        "dGlt\r\n",                         // line ending left on
        "dGl",                              // no padding
        "*",                                // cancel belongs to the session
        util::base64_encode("ti\0m"sv),     // NUL
    };
    for (const auto& s : bad) {
        CAPTURE(s);
        auto r = decode_login_line(s);
        REQUIRE_FALSE(r);
        CHECK(r.error() == util::errc::syntax);
    }
    auto no_password = decode_login("dGlt", "");
    REQUIRE_FALSE(no_password);
    CHECK(no_password.error() == util::errc::syntax);
    auto bad_user = decode_login("!!!!", "cHc=");
    REQUIRE_FALSE(bad_user);
    CHECK(bad_user.error() == util::errc::syntax);
}

} // TEST_SUITE
