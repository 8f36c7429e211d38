#include "postern/mime/header.hpp"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

using namespace postern;
using mime::range;
using mime::slice;

TEST_SUITE("mime") {

TEST_CASE("a part splits at its first blank line")
{
    SUBCASE("CRLF")
    {
        const std::string_view m = "A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore\r\n";
        const auto s = mime::split_header(m, {0, m.size()});
        CHECK(slice(m, s.header) == "A: 1\r\nB: 2\r\n");
        CHECK(slice(m, {s.header.end, s.body.begin}) == "\r\n");
        CHECK(slice(m, s.body) == "body\r\n\r\nmore\r\n");
    }
    SUBCASE("bare LF")
    {
        const std::string_view m = "A: 1\nB: 2\n\nbody\n";
        const auto s = mime::split_header(m, {0, m.size()});
        CHECK(slice(m, s.header) == "A: 1\nB: 2\n");
        CHECK(slice(m, s.body) == "body\n");
    }
    SUBCASE("no blank line: all header, empty body at the end")
    {
        const std::string_view m = "A: 1\r\nB: 2\r\n";
        const auto s = mime::split_header(m, {0, m.size()});
        CHECK(s.header == range{0, m.size()});
        CHECK(s.body == range{m.size(), m.size()});
    }
    SUBCASE("a blank first line: empty header")
    {
        const std::string_view m = "\r\nbody";
        const auto s = mime::split_header(m, {0, m.size()});
        CHECK(s.header == range{0, 0});
        CHECK(slice(m, s.body) == "body");
    }
    SUBCASE("empty")
    {
        const auto s = mime::split_header("", {0, 0});
        CHECK(s.header.empty());
        CHECK(s.body.empty());
    }
    SUBCASE("a range past the text is clamped")
    {
        const std::string_view m = "A: 1\r\n";
        const auto s = mime::split_header(m, {2, 999});
        CHECK(s.header.end <= m.size());
        CHECK(s.body.end <= m.size());
    }
}

TEST_CASE("fields keep folded lines and are found case-insensitively")
{
    const std::string_view m = "Subject: one\r\n two\r\n\tthree\r\nX-A : b\r\nnot a field\r\nSUBJECT: second\r\n\r\n";
    const auto h = mime::split_header(m, {0, m.size()}).header;
    const auto fs = mime::fields(m, h);
    REQUIRE(fs.size() == 3);
    CHECK(slice(m, fs[0].name) == "Subject");
    CHECK(slice(m, fs[0].value) == " one\r\n two\r\n\tthree");
    CHECK(slice(m, fs[0].whole) == "Subject: one\r\n two\r\n\tthree\r\n");
    CHECK(slice(m, fs[1].name) == "X-A"); // RFC 5322 4.5.3: space before the colon
    CHECK(slice(m, fs[2].value) == " second");

    const auto f = mime::find_field(m, h, "subject");
    REQUIRE(f);
    CHECK(slice(m, f->whole) == "Subject: one\r\n two\r\n\tthree\r\n");
    CHECK(mime::field_value(m, h, "SUBJECT") == "one two\tthree");
    CHECK(mime::field_value(m, h, "x-a") == "b");
    CHECK_FALSE(mime::field_value(m, h, "To"));
}

TEST_CASE("a line whose name holds white space is no field")
{
    const std::string_view m = "From alice@example.org Mon Jan 1 12:00:00 2024\r\nA: 1\r\n";
    const auto fs = mime::fields(m, {0, m.size()});
    REQUIRE(fs.size() == 1);
    CHECK(slice(m, fs[0].name) == "A");
    CHECK_FALSE(mime::find_field(m, {0, m.size()}, "From alice@example.org Mon Jan 1 12"));
}

TEST_CASE("a continuation line with nothing to continue is no field")
{
    const std::string_view m = " lead\r\nA: 1\r\n";
    const auto fs = mime::fields(m, {0, m.size()});
    REQUIRE(fs.size() == 1);
    CHECK(slice(m, fs[0].name) == "A");
}

TEST_CASE("unfolding removes the line ends and keeps the white space (RFC 5322 2.2.3)")
{
    CHECK(mime::unfold("a\r\n b") == "a b");
    CHECK(mime::unfold("a\n\tb") == "a\tb");
    CHECK(mime::unfold("plain") == "plain");
}

TEST_CASE("line_at finds CRLF, LF and a last line without line end")
{
    const std::string_view t = "ab\r\ncd\nef";
    auto l = mime::line_at(t, 0, t.size());
    CHECK(l.content_end == 2);
    CHECK(l.next == 4);
    l = mime::line_at(t, 4, t.size());
    CHECK(l.content_end == 6);
    CHECK(l.next == 7);
    l = mime::line_at(t, 7, t.size());
    CHECK(l.content_end == 9);
    CHECK(l.next == 9);
    l = mime::line_at(t, 50, 100); // clamped
    CHECK(l.begin == t.size());
    CHECK(l.next == t.size());
}

} // TEST_SUITE
