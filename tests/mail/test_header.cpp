#include "postern/mail/header.hpp"

#include <doctest/doctest.h>

using postern::mail::has_header_field;

TEST_SUITE("mail") {

TEST_CASE("a header field is found by name, in the header section only")
{
    const std::string_view msg = "From: a@x.test\r\nmessage-id: <1@x>\r\nSubject: hi\r\n\t folded\r\n\r\n"
                                 "Date: not a header, the body\r\n";
    CHECK(has_header_field(msg, "From"));
    CHECK(has_header_field(msg, "Message-ID"));
    CHECK(has_header_field(msg, "SUBJECT"));
    CHECK_FALSE(has_header_field(msg, "Date")); // only in the body
    CHECK_FALSE(has_header_field(msg, "folded"));
    CHECK_FALSE(has_header_field(msg, "Message"));
}

TEST_CASE("header edge cases: obsolete space before the colon, continuation lines, no body, empty message")
{
    CHECK(has_header_field("Date : Thu, 1 Jan 2026 00:00:00 +0000\r\n\r\n", "Date"));
    CHECK_FALSE(has_header_field(" Date: folded into nothing\r\n\r\n", "Date"));
    CHECK(has_header_field("Subject: x\r\nDate: y", "Date")); // no final CRLF
    CHECK_FALSE(has_header_field("", "Date"));
    CHECK_FALSE(has_header_field("\r\nDate: y\r\n", "Date")); // empty header section
    CHECK_FALSE(has_header_field("Subject: x\r\n", "Subject2"));
}

}
