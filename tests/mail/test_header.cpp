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

TEST_SUITE("mail") {

TEST_CASE("header field values are unfolded, in order, without the name")
{
    const std::string_view msg = "To: a@x.test,\r\n\tb@x.test\r\nCc:c@x.test\r\nto : d@x.test\r\n\r\nTo: body@x.test\r\n";
    auto to = postern::mail::header_field_values(msg, "To");
    REQUIRE(to.size() == 2);
    CHECK(to[0] == "a@x.test,\tb@x.test");
    CHECK(to[1] == "d@x.test");
    auto cc = postern::mail::header_field_values(msg, "cc");
    REQUIRE(cc.size() == 1);
    CHECK(cc[0] == "c@x.test");
    CHECK(postern::mail::header_field_values(msg, "Bcc").empty());
}

TEST_CASE("a removed header field takes its continuation lines along, and the body stays")
{
    using postern::mail::remove_header_field;
    SUBCASE("folded field in the middle")
    {
        CHECK(remove_header_field("From: a\r\nBcc: x@y,\r\n z@y\r\nSubject: s\r\n\r\nBcc: kept\r\n", "bcc") ==
              "From: a\r\nSubject: s\r\n\r\nBcc: kept\r\n");
    }
    SUBCASE("several, first and last")
    {
        CHECK(remove_header_field("Bcc: 1\r\nTo: t\r\nBcc: 2\r\n\r\nbody", "Bcc") == "To: t\r\n\r\nbody");
    }
    SUBCASE("absent: unchanged")
    {
        CHECK(remove_header_field("To: t\r\n\r\nbody\r\n", "Bcc") == "To: t\r\n\r\nbody\r\n");
    }
    SUBCASE("a header section without a body")
    {
        CHECK(remove_header_field("To: t\r\nBcc: b\r\n", "Bcc") == "To: t\r\n");
    }
}

TEST_CASE("header completion adds only the missing fields, From then Date then Message-ID")
{
    using postern::mail::missing_header_fields;
    const postern::mail::header_completion c{"A <a@x.test>", "Thu, 1 Jan 2026 00:00:00 +0000", "<1@x.test>"};
    CHECK(missing_header_fields("Subject: s\r\n\r\nb\r\n", c) ==
          "From: A <a@x.test>\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <1@x.test>\r\n");
    CHECK(missing_header_fields("from: me\r\nMessage-Id: <m@x>\r\n\r\n", c) ==
          "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\n");
    CHECK(missing_header_fields("From: a\r\nDate: d\r\nMessage-ID: m\r\n\r\n", c).empty());
    SUBCASE("an empty member is never added (the SMTP submission path adds no From:)")
    {
        const postern::mail::header_completion no_from{"", "D", "<m@x>"};
        CHECK(missing_header_fields("\r\nbody\r\n", no_from) == "Date: D\r\nMessage-ID: <m@x>\r\n");
    }
}

}
