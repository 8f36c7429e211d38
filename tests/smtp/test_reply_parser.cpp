#include "postern/smtp/reply_parser.hpp"

#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

using namespace postern::smtp;

namespace {

// Feeds everything; returns the parser in its final state and what was used.
struct parsed {
    reply_parser::status status;
    reply r;
    std::size_t used;
    std::string error;
};

parsed parse(std::string_view in, reply_parser::limits l = {})
{
    reply_parser p(l);
    auto used = p.consume(in);
    parsed out{p.state(), {}, used, p.error()};
    if (p.state() == reply_parser::status::complete)
        out.r = p.take();
    return out;
}

} // namespace

TEST_SUITE("smtp") {

TEST_CASE("a single-line reply gives its code, enhanced status and text")
{
    auto p = parse("250 2.1.0 Ok\r\n");
    REQUIRE(p.status == reply_parser::status::complete);
    CHECK(p.r.code == 250);
    CHECK(p.r.enhanced == "2.1.0");
    CHECK(p.r.lines == std::vector<std::string>{"2.1.0 Ok"});
    CHECK(p.r.text() == "Ok");
    CHECK(p.r.str() == "250 2.1.0 Ok");
    CHECK(p.r.positive());
    CHECK(p.used == 14);
}

TEST_CASE("a multiline reply is complete only at the line with a space after the code")
{
    reply_parser p;
    std::string_view in = "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n";
    CHECK(p.consume(in.substr(0, 20)) == 20);
    CHECK(p.state() == reply_parser::status::incomplete);
    CHECK(p.consume(in.substr(20)) == in.size() - 20);
    REQUIRE(p.state() == reply_parser::status::complete);
    auto r = p.take();
    CHECK(r.code == 250);
    CHECK(r.enhanced.empty());
    CHECK(r.lines == std::vector<std::string>{"mx.test", "PIPELINING", "SIZE 100"});
    CHECK(r.text() == "mx.test PIPELINING SIZE 100");
    CHECK(p.state() == reply_parser::status::incomplete); // ready for the next one
}

TEST_CASE("consume stops at the end of one reply and leaves pipelined replies for later")
{
    std::string in = "250 2.1.0 Ok\r\n550-5.1.1 no\r\n550 5.1.1 such user\r\n354 go\r\n";
    reply_parser p;
    std::vector<std::string> got;
    std::size_t pos = 0;
    while (pos < in.size()) {
        pos += p.consume(std::string_view(in).substr(pos));
        REQUIRE(p.state() == reply_parser::status::complete);
        got.push_back(p.take().str());
    }
    CHECK(got == std::vector<std::string>{"250 2.1.0 Ok", "550 5.1.1 no such user", "354 go"});
    SUBCASE("nothing is consumed while a reply waits to be taken")
    {
        reply_parser q;
        q.consume(in);
        CHECK(q.consume(in) == 0);
    }
}

TEST_CASE("bare LF ends a reply line too, and a code alone is a reply")
{
    auto p = parse("250-a\n250\n");
    REQUIRE(p.status == reply_parser::status::complete);
    CHECK(p.r.lines == std::vector<std::string>{"a", ""});
    auto q = parse("221\r\n");
    REQUIRE(q.status == reply_parser::status::complete);
    CHECK(q.r.code == 221);
    CHECK(q.r.text().empty());
}

TEST_CASE("malformed reply lines are errors")
{
    for (std::string_view bad : {"hello\r\n", "99 x\r\n", "2500 x\r\n", "250x\r\n", "650 x\r\n", "150 x\r\n",
                                 "25a x\r\n", "\r\n", " 250 x\r\n", "250-a\r\nfoo\r\n"}) {
        CAPTURE(bad);
        auto p = parse(bad);
        CHECK(p.status == reply_parser::status::error);
        CHECK(p.error.find("malformed reply line") == 0);
    }
}

TEST_CASE("the code may not change between the lines of one reply")
{
    auto p = parse("250-a\r\n251 b\r\n");
    CHECK(p.status == reply_parser::status::error);
    CHECK(p.error == "reply code changed from 250 to 251 within a multiline reply");
}

TEST_CASE("a reply line is at most 512 octets with its CRLF")
{
    for (std::size_t len : {509u, 510u, 511u, 600u}) {
        CAPTURE(len);
        auto line = "250 " + std::string(len - 4, 'x'); // len octets before the line end
        auto crlf = parse(line + "\r\n");
        CHECK((crlf.status == reply_parser::status::complete) == (len <= 510));
        auto lf = parse(line + "\n");
        CHECK((lf.status == reply_parser::status::complete) == (len <= 510));
        if (len > 510)
            CHECK(crlf.error == "reply line longer than 512 octets");
    }
    SUBCASE("a line without end is refused as soon as it is too long, whatever the pieces")
    {
        reply_parser p;
        const std::string piece(100, 'x');
        p.consume("250 ");
        for (int i = 0; i < 5 && p.state() == reply_parser::status::incomplete; ++i)
            p.consume(piece);
        CHECK(p.state() == reply_parser::status::incomplete);
        p.consume(piece);
        CHECK(p.state() == reply_parser::status::error);
    }
}

TEST_CASE("a reply that never ends is an error at the line or octet bound")
{
    reply_parser p;
    std::size_t lines = 0;
    while (p.state() == reply_parser::status::incomplete && lines < 1000) {
        p.consume("250-more\r\n");
        ++lines;
    }
    CHECK(p.state() == reply_parser::status::error);
    CHECK(lines == 101);
    CHECK(p.error() == "reply longer than 100 lines");

    reply_parser::limits l;
    l.max_lines = 1000;
    reply_parser q(l);
    const std::string line = "250-" + std::string(500, 'y') + "\r\n";
    lines = 0;
    while (q.state() == reply_parser::status::incomplete && lines < 1000) {
        q.consume(line);
        ++lines;
    }
    CHECK(q.state() == reply_parser::status::error);
    CHECK(q.error() == "reply longer than 65536 octets");
    CHECK(lines == 65536 / line.size() + 1);
}

TEST_CASE("the enhanced status code is taken only when it is well formed and of the reply's class")
{
    struct row {
        std::string_view in;
        std::string_view enhanced;
        std::string_view text;
    };
    const row rows[] = {
        {"550 5.1.1 <a@x.test>: unknown\r\n", "5.1.1", "<a@x.test>: unknown"},
        {"451 4.3.0\r\n", "4.3.0", ""},
        {"550 5.123.456 x\r\n", "5.123.456", "x"},
        {"550 5.1234.1 x\r\n", "", "5.1234.1 x"},
        {"550 4.1.1 x\r\n", "", "4.1.1 x"},   // class differs from the code
        {"550 5.1 x\r\n", "", "5.1 x"},
        {"550 5.1.1x y\r\n", "", "5.1.1x y"},
        {"250 2.0.0Ok\r\n", "", "2.0.0Ok"},
        {"354 3.0.0 go\r\n", "", "3.0.0 go"}, // no class 3 in RFC 3463
        {"550-5.7.1 one\r\n550-5.7.1 two\r\n550 5.7.1 three\r\n", "5.7.1", "one two three"},
        {"550-5.7.1 one\r\n550 see https://x\r\n", "5.7.1", "one see https://x"},
    };
    for (const auto& r : rows) {
        CAPTURE(r.in);
        auto p = parse(r.in);
        REQUIRE(p.status == reply_parser::status::complete);
        CHECK(p.r.enhanced == r.enhanced);
        CHECK(p.r.text() == r.text);
    }
}

TEST_CASE("control characters in reply text are replaced")
{
    static constexpr char raw[] = "550 5.1.1 a\x1b[2Jb\0c\rd\te\xc3\xbc\r\n";
    auto p = parse(std::string_view(raw, sizeof raw - 1));
    REQUIRE(p.status == reply_parser::status::complete);
    CHECK(p.r.text() == "a?[2Jb?c?d\te\xc3\xbc");
}

TEST_CASE("reset() forgets a partial reply and an error")
{
    reply_parser p;
    p.consume("250-partial\r\n250-more");
    p.reset();
    p.consume("220 go ahead\r\n");
    REQUIRE(p.state() == reply_parser::status::complete);
    CHECK(p.take().lines == std::vector<std::string>{"go ahead"});
    p.consume("bogus\r\n");
    CHECK(p.state() == reply_parser::status::error);
    p.reset();
    CHECK(p.error().empty());
    p.consume("250 ok\r\n");
    CHECK(p.state() == reply_parser::status::complete);
}

TEST_CASE("a reply fed one octet at a time parses the same")
{
    std::string in = "250-mx.test\r\n250-8BITMIME\n250 2.0.0 done\r\n";
    reply_parser p;
    for (char c : in) {
        REQUIRE(p.state() == reply_parser::status::incomplete);
        CHECK(p.consume(std::string_view(&c, 1)) == 1);
    }
    REQUIRE(p.state() == reply_parser::status::complete);
    CHECK(p.take().lines == std::vector<std::string>{"mx.test", "8BITMIME", "2.0.0 done"});
}

} // TEST_SUITE
