#include "postern/imap/response.hpp"

#include <doctest/doctest.h>

using namespace postern;
using imap::response_code;
using imap::status;

TEST_SUITE("imap") {

TEST_CASE("tagged responses carry status, code and text")
{
    CHECK(imap::tagged("a1", status::ok, "LOGIN completed") == "a1 OK LOGIN completed\r\n");
    CHECK(imap::tagged("a2", status::no, response_code::trycreate, "No such mailbox") ==
          "a2 NO [TRYCREATE] No such mailbox\r\n");
    CHECK(imap::tagged("a3", status::bad, response_code::clientbug, "x") == "a3 BAD [CLIENTBUG] x\r\n");
    CHECK(imap::tagged("", status::bad, "Missing tag") == "* BAD Missing tag\r\n");
    CHECK(imap::tagged("a4", status::ok, "") == "a4 OK OK\r\n");
}

TEST_CASE("every response code has its RFC 5530 name")
{
    CHECK(imap::code_name(response_code::authenticationfailed) == "AUTHENTICATIONFAILED");
    CHECK(imap::code_name(response_code::alreadyexists) == "ALREADYEXISTS");
    CHECK(imap::code_name(response_code::nonexistent) == "NONEXISTENT");
    CHECK(imap::code_name(response_code::limit) == "LIMIT");
    CHECK(imap::code_name(response_code::toobig) == "TOOBIG");
    CHECK(imap::code_name(response_code::cannot) == "CANNOT");
    CHECK(imap::code_name(response_code::serverbug) == "SERVERBUG");
    CHECK(imap::code_name(response_code::unavailable) == "UNAVAILABLE");
    CHECK(imap::code_name(response_code::none).empty());
}

TEST_CASE("untagged and continuation lines")
{
    CHECK(imap::untagged(status::ok, response_code::alert, "going down") == "* OK [ALERT] going down\r\n");
    CHECK(imap::untagged_data("CAPABILITY IMAP4rev2 IMAP4rev1") == "* CAPABILITY IMAP4rev2 IMAP4rev1\r\n");
    CHECK(imap::continuation("Ready") == "+ Ready\r\n");
    CHECK(imap::continuation("") == "+ \r\n");
}

TEST_CASE("text with line breaks cannot split a response")
{
    CHECK(imap::tagged("a1", status::bad, "x\r\n* OK y") == "a1 BAD x  * OK y\r\n");
    imap::response r{"a5", status::no, response_code::overquota, std::string("full\0", 5)};
    CHECK(r.str() == "a5 NO [OVERQUOTA] full \r\n");
}

} // TEST_SUITE
