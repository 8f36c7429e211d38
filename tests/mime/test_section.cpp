#include "postern/mime/section.hpp"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "messages.hpp"

using namespace postern;
using mime::section_text;
using mime::testing::crlf;

namespace {

std::string fetch(std::string_view m, const mime::part& root, std::string_view spec)
{
    const auto s = mime::parse_section(spec);
    REQUIRE_MESSAGE(s, spec);
    return mime::section_bytes(m, root, *s);
}

// RFC 3501 6.4.5's example layout:
// 1 TEXT/PLAIN, 2 APPLICATION/OCTET-STREAM, 3 MESSAGE/RFC822 (3.1 TEXT/PLAIN,
// 3.2 APPLICATION/OCTET-STREAM), 4 MULTIPART/MIXED (4.1 IMAGE/GIF,
// 4.2 MESSAGE/RFC822 (4.2.1 TEXT/PLAIN, 4.2.2 MULTIPART/ALTERNATIVE
// (4.2.2.1 TEXT/PLAIN, 4.2.2.2 TEXT/RICHTEXT))).
const std::string rfc_message = crlf(
    "Subject: top\n"
    "Content-Type: MULTIPART/MIXED; boundary=a\n"
    "\n"
    "--a\n"
    "\n"
    "part 1\n"
    "--a\n"
    "Content-Type: application/octet-stream\n"
    "\n"
    "part 2\n"
    "--a\n"
    "Content-Type: message/rfc822\n"
    "X-Part: 3\n"
    "\n"
    "Subject: three\n"
    "From: x@y.test\n"
    "Content-Type: multipart/mixed; boundary=b\n"
    "\n"
    "--b\n"
    "\n"
    "part 3.1\n"
    "--b\n"
    "Content-Type: application/octet-stream\n"
    "\n"
    "part 3.2\n"
    "--b--\n"
    "--a\n"
    "Content-Type: multipart/mixed; boundary=c\n"
    "\n"
    "--c\n"
    "Content-Type: image/gif\n"
    "\n"
    "part 4.1\n"
    "--c\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "Subject: four-two\n"
    "Content-Type: multipart/mixed; boundary=d\n"
    "\n"
    "--d\n"
    "\n"
    "part 4.2.1\n"
    "--d\n"
    "Content-Type: multipart/alternative; boundary=e\n"
    "\n"
    "--e\n"
    "\n"
    "part 4.2.2.1\n"
    "--e\n"
    "Content-Type: text/richtext\n"
    "\n"
    "part 4.2.2.2\n"
    "--e--\n"
    "--d--\n"
    "--c--\n"
    "--a--\n");

} // namespace

TEST_SUITE("mime") {

TEST_CASE("section specs parse (RFC 9051 9 section-spec)")
{
    auto s = mime::parse_section("1.2.3");
    REQUIRE(s);
    CHECK(s->part == std::vector<std::uint32_t>{1, 2, 3});
    CHECK(s->text == section_text::none);

    s = mime::parse_section("4.2.header.fields (From \"Subject\" x-a)");
    REQUIRE(s);
    CHECK(s->part == std::vector<std::uint32_t>{4, 2});
    CHECK(s->text == section_text::header_fields);
    CHECK(s->fields == std::vector<std::string>{"From", "Subject", "x-a"});

    s = mime::parse_section("HEADER.FIELDS.NOT (Received)");
    REQUIRE(s);
    CHECK(s->part.empty());
    CHECK(s->text == section_text::header_fields_not);

    CHECK(mime::parse_section("")->text == section_text::none);
    CHECK(mime::parse_section("TEXT")->text == section_text::text);
    CHECK(mime::parse_section("2.MIME")->text == section_text::mime);

    for (const char* bad : {"0", "01", "1.", "1..2", "MIME", "HEADER.FIELDS", "HEADER.FIELDS ()",
                            "HEADER.FIELDS (a", "TEXTX", "1.FOO", "99999999999", "HEADER.FIELDS ({3}"}) {
        CAPTURE(bad);
        CHECK_FALSE(mime::parse_section(bad));
    }
}

TEST_CASE("part numbers follow RFC 3501 6.4.5's example")
{
    const auto& m = rfc_message;
    const auto root = mime::parse(m);
    CHECK(fetch(m, root, "1") == "part 1");
    CHECK(fetch(m, root, "2") == "part 2");
    CHECK(fetch(m, root, "3.1") == "part 3.1");
    CHECK(fetch(m, root, "3.2") == "part 3.2");
    CHECK(fetch(m, root, "4.1") == "part 4.1");
    CHECK(fetch(m, root, "4.2.1") == "part 4.2.1");
    CHECK(fetch(m, root, "4.2.2.1") == "part 4.2.2.1");
    CHECK(fetch(m, root, "4.2.2.2") == "part 4.2.2.2");
    CHECK(fetch(m, root, "4.1.MIME") == "Content-Type: image/gif\r\n\r\n");
    CHECK(fetch(m, root, "3.HEADER") == crlf("Subject: three\nFrom: x@y.test\nContent-Type: multipart/mixed; boundary=b\n\n"));
    CHECK(fetch(m, root, "3.MIME") == crlf("Content-Type: message/rfc822\nX-Part: 3\n\n"));
    CHECK(fetch(m, root, "4.2.HEADER.FIELDS (subject)") == "Subject: four-two\r\n\r\n");
    CHECK(fetch(m, root, "4.2.TEXT").starts_with("--d\r\n\r\npart 4.2.1"));
    CHECK(fetch(m, root, "3") == slice(m, root.children[2].body));
    CHECK(fetch(m, root, "") == m);
    CHECK(fetch(m, root, "HEADER") == crlf("Subject: top\nContent-Type: MULTIPART/MIXED; boundary=a\n\n"));
    CHECK(fetch(m, root, "TEXT") == slice(m, root.body));
}

TEST_CASE("a nonexistent part or an inapplicable text yields nothing")
{
    const auto& m = rfc_message;
    const auto root = mime::parse(m);
    for (const char* spec : {"5", "1.1", "4.3", "4.1.1", "3.3", "1.HEADER", "4.TEXT", "4.1.HEADER.FIELDS (a)"}) {
        CAPTURE(spec);
        CHECK(fetch(m, root, spec).empty());
        CHECK(mime::section_ranges(m, root, *mime::parse_section(spec)).empty());
    }
}

TEST_CASE("a non-multipart message has part 1, its body")
{
    const std::string m = crlf("Subject: s\nContent-Type: text/plain\n\nbody\n");
    const auto root = mime::parse(m);
    CHECK(fetch(m, root, "1") == "body\r\n");
    CHECK(fetch(m, root, "1.MIME") == crlf("Subject: s\nContent-Type: text/plain\n\n"));
    CHECK(fetch(m, root, "2").empty());
    SUBCASE("a top-level message/rfc822: 1 is the encapsulated message, 1.1 its body")
    {
        const std::string w = crlf("Content-Type: message/rfc822\n\nSubject: in\n\ninner body\n");
        const auto r = mime::parse(w);
        CHECK(fetch(w, r, "1") == crlf("Subject: in\n\ninner body\n"));
        CHECK(fetch(w, r, "1.1") == "inner body\r\n");
        CHECK(fetch(w, r, "1.HEADER") == "Subject: in\r\n\r\n");
    }
}

TEST_CASE("HEADER.FIELDS returns matching fields as stored, folding kept, then the blank line")
{
    const std::string m = crlf("Received: a\n  continued\nSubject: one\nTo: x@y.test\nreceived: b\n\nbody\n");
    const auto root = mime::parse(m);
    CHECK(fetch(m, root, "HEADER.FIELDS (RECEIVED)") == crlf("Received: a\n  continued\nreceived: b\n\n"));
    CHECK(fetch(m, root, "HEADER.FIELDS.NOT (Received)") == crlf("Subject: one\nTo: x@y.test\n\n"));
    CHECK(fetch(m, root, "HEADER.FIELDS (X-None)") == "\r\n");
    SUBCASE("adjacent fields come back as one range")
    {
        const auto s = mime::parse_section("HEADER.FIELDS (Subject To)");
        CHECK(mime::section_ranges(m, root, *s).size() == 2); // the fields, the blank line
    }
    SUBCASE("no blank line, no blank line in the result")
    {
        const std::string h = "Subject: only\r\n";
        const auto r = mime::parse(h);
        CHECK(fetch(h, r, "HEADER.FIELDS (Subject)") == h);
        CHECK(fetch(h, r, "HEADER") == h);
        CHECK(fetch(h, r, "TEXT").empty());
    }
}

TEST_CASE("find_part walks multiparts and encapsulated messages")
{
    const auto& m = rfc_message;
    const auto root = mime::parse(m);
    const std::uint32_t n[] = {4, 2, 2, 2};
    const auto* p = mime::find_part(root, n);
    REQUIRE(p);
    CHECK(p->subtype == "richtext");
    CHECK(mime::find_part(root, {}) == &root);
    const std::uint32_t zero[] = {0};
    CHECK(mime::find_part(root, zero) == nullptr);
}

} // TEST_SUITE
