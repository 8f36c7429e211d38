#include "postern/smtp/reply.hpp"

#include <string>
#include <vector>

#include <doctest/doctest.h>

using namespace postern::smtp;

TEST_SUITE("smtp") {

TEST_CASE("a single-line reply is code, enhanced status, text and CRLF")
{
    CHECK(format_reply(250, "2.1.0", "Ok") == "250 2.1.0 Ok\r\n");
    CHECK(format_reply(550, "5.1.1", "<a@x.test>: User unknown") ==
          "550 5.1.1 <a@x.test>: User unknown\r\n");
    CHECK(format_reply(421, "4.4.2", "mx.test Error: timeout exceeded") ==
          "421 4.4.2 mx.test Error: timeout exceeded\r\n");
}

TEST_CASE("a reply without an enhanced status code has a single space after the code")
{
    CHECK(format_reply(220, {}, "mx.test ESMTP postern") == "220 mx.test ESMTP postern\r\n");
    CHECK(format_reply(354, "", "End data with <CR><LF>.<CR><LF>") ==
          "354 End data with <CR><LF>.<CR><LF>\r\n");
}

TEST_CASE("a reply with empty text still ends in CRLF")
{
    CHECK(format_reply(250, "2.0.0", "") == "250 2.0.0 \r\n");
    CHECK(format_reply(250, {}, "") == "250 \r\n");
}

TEST_CASE("append_reply adds to what is already in the buffer")
{
    std::string out = "250 2.1.0 Ok\r\n";
    append_reply(out, 250, "2.1.5", "Ok");
    append_reply(out, 354, {}, "Go ahead");
    CHECK(out == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 Go ahead\r\n");
}

TEST_CASE("a multi-line reply uses code-hyphen on every line but the last")
{
    SUBCASE("several lines")
    {
        const std::vector<std::string> lines = {"mx.test", "PIPELINING", "SIZE 1000", "SMTPUTF8"};
        std::string out;
        append_multiline(out, 250, lines);
        CHECK(out == "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 SMTPUTF8\r\n");
    }
    SUBCASE("one line is a plain reply")
    {
        const std::vector<std::string> lines = {"mx.test"};
        std::string out;
        append_multiline(out, 250, lines);
        CHECK(out == "250 mx.test\r\n");
    }
    SUBCASE("two lines, appended after earlier output")
    {
        const std::vector<std::string> lines = {"first", "second"};
        std::string out = "221 2.0.0 Bye\r\n";
        append_multiline(out, 214, lines);
        CHECK(out == "221 2.0.0 Bye\r\n214-first\r\n214 second\r\n");
    }
    SUBCASE("no lines add nothing")
    {
        const std::vector<std::string> lines;
        std::string out = "x";
        append_multiline(out, 250, lines);
        CHECK(out == "x");
    }
}

} // TEST_SUITE
