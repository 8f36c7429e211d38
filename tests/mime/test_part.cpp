#include "postern/mime/part.hpp"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "messages.hpp"

using namespace postern;
using mime::part_kind;
using mime::slice;
using mime::testing::crlf;

TEST_SUITE("mime") {

TEST_CASE("a message without Content-Type is text/plain; charset=us-ascii (RFC 2045 5.2)")
{
    const std::string m = crlf("Subject: x\n\nline 1\nline 2\n");
    const auto p = mime::parse(m);
    CHECK(p.kind == part_kind::single);
    CHECK(p.type == "text");
    CHECK(p.subtype == "plain");
    CHECK(p.params == std::vector<mime::parameter>{{"charset", "us-ascii"}});
    CHECK(p.encoding == "7bit");
    CHECK(slice(m, p.header) == "Subject: x\r\n");
    CHECK(slice(m, p.body) == "line 1\r\nline 2\r\n");
    CHECK(p.whole == mime::range{0, m.size()});
    CHECK(p.size() == 16);
    CHECK(p.lines == 2);
}

TEST_CASE("a last line without line end counts as a line")
{
    const std::string m = "A: b\r\n\r\none\r\ntwo";
    CHECK(mime::parse(m).lines == 2);
}

TEST_CASE("the nested multipart tree has the parts in order with exact ranges")
{
    const std::string& m = mime::testing::nested_message;
    const auto root = mime::parse(m);
    REQUIRE(root.kind == part_kind::multipart);
    CHECK(root.subtype == "mixed");
    REQUIRE(root.children.size() == 3);

    const auto& alt = root.children[0];
    REQUIRE(alt.kind == part_kind::multipart);
    CHECK(alt.subtype == "alternative");
    REQUIRE(alt.children.size() == 2);
    CHECK(slice(m, alt.children[0].body) == "Hello Bob.\r\n--outer is not a boundary here: the line goes on");
    CHECK(alt.children[0].lines == 2);
    CHECK(alt.children[1].subtype == "html");
    CHECK(alt.children[1].encoding == "quoted-printable");
    CHECK(slice(m, alt.children[1].body) == "<p>Hello Bob.</p>");
    CHECK(slice(m, alt.children[1].header) ==
          "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n");

    const auto& pdf = root.children[1];
    CHECK(pdf.type == "application");
    CHECK(pdf.subtype == "pdf");
    CHECK(pdf.params == std::vector<mime::parameter>{{"name", "r.pdf"}});
    CHECK(pdf.disp.type == "attachment");
    CHECK(slice(m, pdf.body) == "JVBERi0xLjQK");
    CHECK(slice(m, pdf.whole).starts_with("Content-Type: application/pdf"));

    const auto& fwd = root.children[2];
    REQUIRE(fwd.kind == part_kind::message);
    REQUIRE(fwd.children.size() == 1);
    const auto& inner = fwd.children[0];
    CHECK(inner.whole == fwd.body);
    REQUIRE(inner.kind == part_kind::multipart);
    REQUIRE(inner.children.size() == 2);
    CHECK(inner.children[0].header.empty());
    CHECK(inner.children[0].type == "text");
    CHECK(slice(m, inner.children[0].body) == "inner text");
    CHECK(inner.children[1].type == "image");
    CHECK(slice(m, inner.children[1].body) == "R0lGODlh");
}

TEST_CASE("delimiter lines may carry trailing white space, other text after the boundary does not delimit")
{
    const std::string m = crlf("Content-Type: multipart/mixed; boundary=b\n\n"
                               "--b \t\nA: 1\n\none\n--bx\nstill one\n--b-- \nepilogue\n");
    const auto p = mime::parse(m);
    REQUIRE(p.children.size() == 1);
    CHECK(slice(m, p.children[0].body) == "one\r\n--bx\r\nstill one");
}

TEST_CASE("a missing closing delimiter ends the last part at the end of the message")
{
    const std::string m = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\n");
    const auto p = mime::parse(m);
    REQUIRE(p.children.size() == 2);
    CHECK(slice(m, p.children[0].body) == "one");
    CHECK(slice(m, p.children[1].body) == "two\r\n");
}

TEST_CASE("a multipart without boundary parameter is one opaque text part")
{
    const std::string m = crlf("Content-Type: multipart/mixed\n\n--b\n\none\n");
    const auto p = mime::parse(m);
    CHECK(p.kind == part_kind::single);
    CHECK(p.opaque);
    CHECK(p.type == "text");
    CHECK(p.subtype == "plain");
    CHECK(p.children.empty());
    CHECK(slice(m, p.body) == "--b\r\n\r\none\r\n");
}

TEST_CASE("a multipart whose boundary never appears has no parts")
{
    const std::string m = crlf("Content-Type: multipart/mixed; boundary=zz\n\n--b\n\none\n");
    const auto p = mime::parse(m);
    CHECK(p.kind == part_kind::multipart);
    CHECK(p.children.empty());
}

TEST_CASE("empty parts and a delimiter at the very start of the body")
{
    const std::string m = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\nx\n--b--\n");
    const auto p = mime::parse(m);
    REQUIRE(p.children.size() == 2);
    CHECK(p.children[0].whole.empty());
    CHECK(slice(m, p.children[1].body) == "x");
}

TEST_CASE("parts of multipart/digest default to message/rfc822 (RFC 2046 5.1.5)")
{
    const std::string m = crlf("Content-Type: multipart/digest; boundary=d\n\n"
                               "--d\n\nSubject: one\n\nbody one\n"
                               "--d\nContent-Type: text/plain\n\nnot a message\n--d--\n");
    const auto p = mime::parse(m);
    REQUIRE(p.children.size() == 2);
    CHECK(p.children[0].kind == part_kind::message);
    REQUIRE(p.children[0].children.size() == 1);
    CHECK(slice(m, p.children[0].children[0].body) == "body one");
    CHECK(p.children[1].kind == part_kind::single);
    CHECK(p.children[1].type == "text");
}

TEST_CASE("an LF-only message parses like its CRLF twin")
{
    const std::string lf = "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/html\n\n<p>\n--b--\n";
    const auto p = mime::parse(lf);
    REQUIRE(p.children.size() == 1);
    CHECK(p.children[0].subtype == "html");
    CHECK(slice(lf, p.children[0].body) == "<p>");
}

TEST_CASE("an empty message and a header-only message")
{
    const auto e = mime::parse("");
    CHECK(e.whole.empty());
    CHECK(e.type == "text");
    CHECK(e.size() == 0);
    CHECK(e.lines == 0);

    const std::string h = "Subject: only\r\nContent-Type: multipart/mixed; boundary=x\r\n";
    const auto p = mime::parse(h);
    CHECK(p.header == mime::range{0, h.size()});
    CHECK(p.body == mime::range{h.size(), h.size()});
    CHECK(p.kind == part_kind::multipart);
    CHECK(p.children.empty());
}

TEST_CASE("MIME fields of a part are parsed, the first of each counts")
{
    const std::string& m = mime::testing::dovecot_message;
    const auto root = mime::parse(m);
    REQUIRE(root.children.size() == 2);
    CHECK(*mime::find_parameter(root.params, "boundary") == "foo bar");
    const auto& p = root.children[0];
    CHECK(p.subtype == "x-myown");
    CHECK(p.id == "<foo@example.com>");
    CHECK(p.md5 == "Q2hlY2sgSW50ZWdyaXR5IQ==");
    CHECK(p.description == "hellodescription");
    CHECK(p.disp.type == "inline");
    CHECK(p.language == std::vector<std::string>{"en", "fi", "se"});
    CHECK(p.location == "http://example.com/test.txt");
    const auto& sub = root.children[1].children.at(0);
    REQUIRE(sub.children.size() == 2);
    CHECK(sub.children[1].encoding == "7bit"); // "?invalid"
}

TEST_CASE("nesting deeper than the bound leaves the deepest composite part opaque")
{
    std::string m;
    constexpr int levels = 100;
    for (int i = 0; i < levels; ++i)
        m += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\r\n\r\n--b" + std::to_string(i) + "\r\n";
    m += "Content-Type: text/plain\r\n\r\nleaf\r\n";
    const auto root = mime::parse(m);
    const mime::part* p = &root;
    std::size_t depth = 0;
    while (!p->children.empty()) {
        p = &p->children.front();
        ++depth;
    }
    CHECK(depth == 64);
    CHECK(p->opaque);
    CHECK(p->type == "text");

    SUBCASE("message/rfc822 chains too")
    {
        std::string chain;
        for (int i = 0; i < levels; ++i)
            chain += "Content-Type: message/rfc822\r\n\r\n";
        chain += "Subject: leaf\r\n\r\nleaf\r\n";
        const auto r = mime::parse(chain, {.max_depth = 10, .max_parts = 10000});
        const mime::part* q = &r;
        std::size_t d = 0;
        while (!q->children.empty()) {
            q = &q->children.front();
            ++d;
        }
        CHECK(d == 10);
        CHECK(q->opaque);
    }
}

TEST_CASE("the part count is bounded")
{
    std::string m = "Content-Type: multipart/mixed; boundary=b\r\n\r\n";
    for (int i = 0; i < 50; ++i)
        m += "--b\r\n\r\nx\r\n";
    const auto p = mime::parse(m, {.max_depth = 64, .max_parts = 10});
    CHECK(p.children.size() == 9);
}

TEST_CASE("garbage never gives a range outside the message")
{
    const std::string inputs[] = {"\r", "\n", "\r\n\r\n", "Content-Type: multipart/x; boundary=\"\"\r\n\r\n--\r\n",
                                  "Content-Type: multipart/x; boundary=a\n\n--a", "Content-Type: message/rfc822\n",
                                  std::string("A\0B: c\r\n\r\n\0", 11)};
    for (const auto& m : inputs) {
        CAPTURE(m);
        const auto p = mime::parse(m);
        CHECK(p.whole.end <= m.size());
        CHECK(p.body.end <= m.size());
        CHECK(p.header.end <= p.body.begin);
    }
}

} // TEST_SUITE
