#include "postern/mail/submission.hpp"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

using namespace postern::mail;

namespace {

// Feeds the text in chunks of n octets (a CRLF may be split between two).
std::string collect(std::string_view text, bool dot_ends, std::size_t n = 4096, std::uint64_t max = 1 << 20)
{
    local_input in(dot_ends, max);
    for (std::size_t pos = 0; pos < text.size(); pos += n)
        if (!in.feed(text.substr(pos, n)))
            break;
    in.finish();
    return in.message();
}

std::string strs(const address_list& l)
{
    std::string out;
    for (const auto& a : l.addresses)
        out += (out.empty() ? "" : " ") + a.str();
    return out;
}

} // namespace

TEST_SUITE("mail") {

TEST_CASE("local input: bare LF and bare CR become CRLF, CRLF stays, a last line without an end is kept")
{
    for (std::size_t n : {1, 2, 3, 4096}) {
        CAPTURE(n);
        CHECK(collect("a\nb\r\nc\rd\n", false, n) == "a\r\nb\r\nc\r\nd\r\n");
        CHECK(collect("no end", false, n) == "no end\r\n");
        CHECK(collect("x\r", false, n) == "x\r\n");
        CHECK(collect("\n\n", false, n) == "\r\n\r\n");
        CHECK(collect("", false, n).empty());
    }
}

TEST_CASE("a line of a single dot ends the input unless -i, and is never unstuffed")
{
    SUBCASE("default: the dot line ends it, what follows is ignored")
    {
        local_input in(true, 1 << 20);
        CHECK_FALSE(in.feed("Subject: s\n\nbody\n.\nafter\n"));
        in.finish();
        CHECK(in.ended_by_dot());
        CHECK(in.message() == "Subject: s\r\n\r\nbody\r\n");
    }
    SUBCASE("default: a dot with CRLF, and a dot at the end of the input without a line end")
    {
        CHECK(collect("a\r\n.\r\nb\r\n", true) == "a\r\n");
        CHECK(collect("a\n.", true) == "a\r\n");
    }
    SUBCASE("default: other lines starting with a dot are text as they are")
    {
        CHECK(collect("..\n. x\n.x\n", true) == "..\r\n. x\r\n.x\r\n");
    }
    SUBCASE("-i: the dot line is text")
    {
        local_input in(false, 1 << 20);
        CHECK(in.feed("a\n.\nb\n"));
        in.finish();
        CHECK_FALSE(in.ended_by_dot());
        CHECK(in.message() == "a\r\n.\r\nb\r\n");
    }
}

TEST_CASE("local input limits: the message size after conversion, and 998 characters per line")
{
    SUBCASE("too big")
    {
        local_input in(false, 10);
        CHECK_FALSE(in.feed("12345\n12345\n"));
        CHECK(in.problem() == input_problem::too_big);
    }
    SUBCASE("exactly the limit is fine")
    {
        local_input in(false, 7);
        CHECK(in.feed("12345\n"));
        in.finish();
        CHECK(in.problem() == input_problem::none);
    }
    SUBCASE("line length")
    {
        local_input ok(false, 1 << 20);
        ok.feed(std::string(998, 'x') + "\n");
        ok.finish();
        CHECK(ok.problem() == input_problem::none);
        local_input bad(false, 1 << 20);
        CHECK_FALSE(bad.feed(std::string(999, 'x')));
        CHECK(bad.problem() == input_problem::line_too_long);
    }
}

TEST_CASE("text that starts with its body gets the empty line that separates it from the header")
{
    CHECK(separate_body("hello\r\n") == "\r\nhello\r\n");
    CHECK(separate_body("Subject: s\r\nhello there\r\n") == "Subject: s\r\n\r\nhello there\r\n");
    CHECK(separate_body("Subject: s\r\n folded\r\n\r\nbody\r\n") == "Subject: s\r\n folded\r\n\r\nbody\r\n");
    CHECK(separate_body("Subject: s\r\n") == "Subject: s\r\n");
    CHECK(separate_body(" leading space\r\n") == "\r\n leading space\r\n");
    CHECK(separate_body("").empty());
    SUBCASE("an mbox From_ line is dropped, a From: field is not")
    {
        CHECK(separate_body("From alice Thu Nov 26 15:52:09 2026\r\nSubject: s\r\n\r\nb\r\n") ==
              "Subject: s\r\n\r\nb\r\n");
        CHECK(separate_body("From : a@x.test\r\n\r\nb\r\n") == "From : a@x.test\r\n\r\nb\r\n");
    }
}

TEST_CASE("address lists: display names, comments, angle addresses, groups, unqualified names")
{
    CHECK(strs(parse_address_list("a@x.test, b@y.test", "h.test")) == "a@x.test b@y.test");
    CHECK(strs(parse_address_list("\"Doe, John\" <john@x.test>, Ann <ann@y.test>", "h.test")) ==
          "john@x.test ann@y.test");
    CHECK(strs(parse_address_list("c@x.test (a comment, with comma (nested))", "h.test")) == "c@x.test");
    CHECK(strs(parse_address_list("friends: a@x.test, B <b@x.test>; c@x.test", "h.test")) ==
          "a@x.test b@x.test c@x.test");
    CHECK(strs(parse_address_list("undisclosed-recipients:;", "h.test")).empty());
    CHECK(strs(parse_address_list("alice", "h.test")) == "alice@h.test");
    CHECK(strs(parse_address_list("<@relay.test:d@x.test>", "h.test")) == "d@x.test");
    CHECK(strs(parse_address_list("\"odd,local\"@x.test", "h.test")) == "\"odd,local\"@x.test");
    CHECK(parse_address_list("", "h.test").addresses.empty());
    SUBCASE("malformed items are named")
    {
        CHECK(parse_address_list("a@x.test, not an address", "h.test").bad == "not an address");
        CHECK(parse_address_list("<a@x.test", "h.test").bad == "<a@x.test");
        CHECK(parse_address_list("\"open@x.test", "h.test").bad == "\"open@x.test");
        CHECK(parse_address_list("<>", "h.test").bad == "<>");
        CHECK(parse_address_list("a@@x", "h.test").bad == "a@@x");
    }
}

TEST_CASE("the added From: quotes the full name, encodes non-ASCII (RFC 2047), drops control characters")
{
    const address a{"alice", "h.test"};
    CHECK(from_field("", a) == "alice@h.test");
    CHECK(from_field("Alice Liddell", a) == "\"Alice Liddell\" <alice@h.test>");
    CHECK(from_field("Al \"the\" \\ice", a) == "\"Al \\\"the\\\" \\\\ice\" <alice@h.test>");
    CHECK(from_field("Evil\r\nBcc: x@y", a) == "\"EvilBcc: x@y\" <alice@h.test>");
    CHECK(from_field("J\xc3\xbcrgen", a) == "=?UTF-8?B?SsO8cmdlbg==?= <alice@h.test>");
    CHECK(from_field("  \t ", a) == "alice@h.test");
    SUBCASE("long non-ASCII names make several encoded words of whole characters")
    {
        std::string name;
        for (int i = 0; i < 40; ++i)
            name += "\xc3\xbc"; // 80 octets
        auto f = from_field(name, a);
        CHECK(f.find("?= =?UTF-8?B?") != std::string::npos);
        CHECK(f.size() < 200);
    }
}

}
