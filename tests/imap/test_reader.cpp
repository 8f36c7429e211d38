#include "postern/imap/reader.hpp"

#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

namespace doctest {
template <>
struct StringMaker<std::vector<std::string>> {
    static String convert(const std::vector<std::string>& v)
    {
        std::string s = "[";
        for (const auto& e : v) {
            s += " <";
            for (char c : e)
                s += c == '\r' ? std::string("\\r") : c == '\n' ? std::string("\\n") : std::string(1, c);
            s += ">";
        }
        s += " ]";
        return String(s.c_str());
    }
};
} // namespace doctest

using namespace postern;
using imap::read_event;

namespace {

// Feeds bytes and drains events into a transcript:
//   "+"            continuation
//   "C:text|l1|l2" a command (the text's '\n' shown as "\n"), its literals
//   "R:line"       a refusal, without CRLF
//   "L:line"       a raw line; "T" a raw line too long
void drain(imap::reader& r, std::vector<std::string>& out)
{
    for (;;) {
        switch (r.next()) {
        case read_event::need_input:
            return;
        case read_event::continuation:
            out.emplace_back("+");
            break;
        case read_event::command: {
            auto f = r.take_command();
            std::string s = "C:";
            for (char c : f.text)
                s += c == '\n' ? std::string("\\n") : std::string(1, c);
            for (const auto& l : f.literals)
                s += "|" + l;
            out.push_back(s);
            break;
        }
        case read_event::refused: {
            auto line = r.refusal().str();
            out.push_back("R:" + line.substr(0, line.size() - 2));
            break;
        }
        case read_event::line:
            out.push_back("L:" + r.take_line());
            break;
        case read_event::line_too_long:
            out.emplace_back("T");
            break;
        }
    }
}

std::vector<std::string> run(std::string_view bytes, imap::reader_limits lim = {})
{
    imap::reader r(lim);
    std::vector<std::string> out;
    r.feed(bytes);
    drain(r, out);
    return out;
}

using lines = std::vector<std::string>;

} // namespace

TEST_SUITE("imap") {

TEST_CASE("a command line is framed without its line end")
{
    CHECK(run("a1 NOOP\r\n") == lines{"C:a1 NOOP"});
    SUBCASE("bare LF is tolerated") { CHECK(run("a1 NOOP\n") == lines{"C:a1 NOOP"}); }
    SUBCASE("nothing before the line end") { CHECK(run("a1 NOOP").empty()); }
    SUBCASE("blank lines between commands are ignored") { CHECK(run("\r\n\r\na1 NOOP\r\n\n") == lines{"C:a1 NOOP"}); }
}

TEST_CASE("pipelined commands in one feed come out one by one")
{
    CHECK(run("a1 NOOP\r\na2 CAPABILITY\r\na3 LOGOUT\r\n") == lines{"C:a1 NOOP", "C:a2 CAPABILITY", "C:a3 LOGOUT"});
}

TEST_CASE("a synchronizing literal asks for continuation before its octets")
{
    imap::reader r;
    std::vector<std::string> ev;
    r.feed("a1 LOGIN {5}\r\n");
    drain(r, ev);
    CHECK(ev == lines{"+"});
    CHECK(r.mid_command());
    r.feed("alice {6}\r\n");
    drain(r, ev);
    CHECK(ev == lines{"+", "+"});
    r.feed("secret\r\n");
    drain(r, ev);
    CHECK(ev == lines{"+", "+", "C:a1 LOGIN {5}\\n {6}\\n|alice|secret"});
    CHECK_FALSE(r.mid_command());
}

TEST_CASE("non-synchronizing literals need no continuation (RFC 7888)")
{
    CHECK(run("a1 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n") == lines{"C:a1 LOGIN {5+}\\n {6+}\\n|alice|secret"});
    SUBCASE("a literal may hold CRLF and what looks like a marker")
    {
        CHECK(run("a1 LOGIN {8+}\r\na\r\n{1}\r\n x\r\n") == lines{"C:a1 LOGIN {8+}\\n x|a\r\n{1}\r\n"});
    }
    SUBCASE("an empty literal") { CHECK(run("a1 LOGIN {0+}\r\n {0}\r\n\r\n") == lines{"+", "C:a1 LOGIN {0+}\\n {0}\\n||"}); }
}

TEST_CASE("literal8 frames like a literal (RFC 3516)")
{
    CHECK(run(std::string("a1 APPEND x ~{3+}\r\n\0\1\2\r\n", 24)) ==
          lines{std::string("C:a1 APPEND x ~{3+}\\n|\0\1\2", 25)});
    CHECK(run("a1 APPEND x ~{2}\r\nab\r\n") == lines{"+", "C:a1 APPEND x ~{2}\\n|ab"});
}

TEST_CASE("a command split at every byte position frames the same")
{
    const std::vector<std::pair<std::string, lines>> cases{
        {"a1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n", {"+", "+", "C:a1 LOGIN {5}\\n {6}\\n|alice|secret"}},
        {"a1 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n", {"C:a1 LOGIN {5+}\\n {6+}\\n|alice|secret"}},
        {"A003 APPEND saved (\\Seen) {14}\r\nHi\r\n\r\nthere.\r\n\r\nA004 NOOP\r\n",
         {"+", "C:A003 APPEND saved (\\Seen) {14}\\n|Hi\r\n\r\nthere.\r\n", "C:A004 NOOP"}},
        {"A003 APPEND saved {14+}\r\nHi\r\n\r\nthere.\r\n\r\n", {"C:A003 APPEND saved {14+}\\n|Hi\r\n\r\nthere.\r\n"}},
        {"A003 APPEND saved ~{4}\r\n\r\n\r\n\r\n", {"+", "C:A003 APPEND saved ~{4}\\n|\r\n\r\n"}},
    };
    for (const auto& one : cases) {
        const std::string& wire = one.first; // not a structured binding: CAPTURE's lambda takes it (clang 14)
        const lines& want = one.second;
        for (std::size_t i = 0; i <= wire.size(); ++i) {
            CAPTURE(wire);
            CAPTURE(i);
            imap::reader r;
            std::vector<std::string> ev;
            r.feed(std::string_view(wire).substr(0, i));
            drain(r, ev);
            r.feed(std::string_view(wire).substr(i));
            drain(r, ev);
            CHECK(ev == want);
            CHECK(r.bytes_in() == wire.size());
        }
        imap::reader r;
        std::vector<std::string> ev;
        for (char c : wire) {
            r.feed(std::string_view(&c, 1));
            drain(r, ev);
        }
        CHECK(ev == want);
    }
}

TEST_CASE("an over-long command line is dropped to its end and refused")
{
    imap::reader_limits lim;
    lim.max_line = 100;
    const std::string line = "a1 SEARCH TEXT " + std::string(200, 'x') + "\r\n";
    CHECK(run(line + "a2 NOOP\r\n", lim) == lines{"R:a1 BAD [TOOBIG] Command line too long", "C:a2 NOOP"});

    SUBCASE("the limit is inclusive")
    {
        const std::string exact = "a1 X " + std::string(95, 'y');
        CHECK(run(exact + "\r\n", lim) == lines{"C:" + exact});
        CHECK(run(exact + "y\r\n", lim) == lines{"R:a1 BAD [TOOBIG] Command line too long"});
    }
    SUBCASE("without a tag the refusal is untagged")
    {
        CHECK(run("{" + std::string(200, 'x') + "\r\n", lim) == lines{"R:* BAD [TOOBIG] Command line too long"});
    }
    SUBCASE("a tag too long to echo is not echoed")
    {
        CHECK(run(std::string(70, 't') + " NOOP " + std::string(200, 'x') + "\r\n", lim) ==
              lines{"R:* BAD [TOOBIG] Command line too long"});
        CHECK(run(std::string(300, 't') + "\r\n", lim) == lines{"R:* BAD [TOOBIG] Command line too long"});
    }
    SUBCASE("fed in pieces, the buffer stays bounded")
    {
        imap::reader r(lim);
        std::vector<std::string> ev;
        r.feed("a7 FETCH ");
        for (int i = 0; i < 1000; ++i) {
            r.feed(std::string(1000, 'z'));
            drain(r, ev);
            CHECK(r.buffered() <= 2 * lim.max_line);
        }
        CHECK(ev.empty());
        r.feed("\r\na8 NOOP\r\n");
        drain(r, ev);
        CHECK(ev == lines{"R:a7 BAD [TOOBIG] Command line too long", "C:a8 NOOP"});
    }
    SUBCASE("the limit counts every line of a command")
    {
        CHECK(run("a1 LOGIN {1+}\r\nx " + std::string(120, 'p') + "\r\na2 NOOP\r\n", lim) ==
              lines{"R:a1 BAD [TOOBIG] Command line too long", "C:a2 NOOP"});
    }
    SUBCASE("a dropped line ending in a non-synchronizing literal drops the literal too")
    {
        CHECK(run("a1 X " + std::string(200, 'p') + " {5+}\r\nhello more\r\na2 NOOP\r\n", lim) ==
              lines{"R:a1 BAD [TOOBIG] Command line too long", "C:a2 NOOP"});
    }
    SUBCASE("a marker is found the same whether the over-long line came at once or in pieces")
    {
        const std::string wire = "a1 X " + std::string(200, 'p') + " {" + std::string(20, '1') + "+}\r\nabc\r\n";
        const lines want = run(wire, lim);
        CHECK(want.empty()); // dropping a literal of 11111111111111111111 octets
        imap::reader r(lim);
        std::vector<std::string> ev;
        for (char c : wire) {
            r.feed(std::string_view(&c, 1));
            drain(r, ev);
        }
        CHECK(ev == want);
        CHECK(run("a1 X " + std::string(200, 'p') + " {" + std::string(21, '1') + "+}\r\na2 NOOP\r\n", lim) ==
              lines{"R:a1 BAD [TOOBIG] Command line too long", "C:a2 NOOP"});
    }
    SUBCASE("a dropped line ending in a synchronizing literal is refused without continuation")
    {
        CHECK(run("a1 X " + std::string(200, 'p') + " {5}\r\na2 NOOP\r\n", lim) ==
              lines{"R:a1 BAD [TOOBIG] Command line too long", "C:a2 NOOP"});
    }
}

TEST_CASE("APPEND over the APPENDLIMIT is refused (RFC 7889)")
{
    imap::reader_limits lim;
    lim.max_append = 10;
    SUBCASE("synchronizing: NO [TOOBIG] at once, no continuation")
    {
        CHECK(run("a1 APPEND INBOX {11}\r\na2 NOOP\r\n", lim) == lines{"R:a1 NO [TOOBIG] Message too large", "C:a2 NOOP"});
        CHECK(run("a1 append INBOX ~{11}\r\n", lim) == lines{"R:a1 NO [TOOBIG] Message too large"});
    }
    SUBCASE("non-synchronizing: read, dropped, then refused")
    {
        CHECK(run("a1 APPEND INBOX {11+}\r\n0123456789a\r\na2 NOOP\r\n", lim) ==
              lines{"R:a1 NO [TOOBIG] Message too large", "C:a2 NOOP"});
    }
    SUBCASE("at the limit it is accepted")
    {
        CHECK(run("a1 APPEND INBOX {10+}\r\n0123456789\r\n", lim) == lines{"C:a1 APPEND INBOX {10+}\\n|0123456789"});
    }
    SUBCASE("a count past 64 bits is too large")
    {
        CHECK(run("a1 APPEND INBOX {99999999999999999999}\r\n", lim) == lines{"R:a1 NO [TOOBIG] Message too large"});
        // More than 20 digits are no marker: the line ends the command (the parser refuses it).
        CHECK(run("a1 APPEND INBOX {099999999999999999999}\r\n", lim) == lines{"C:a1 APPEND INBOX {099999999999999999999}"});
    }
}

TEST_CASE("literals of other commands have their own limit")
{
    imap::reader_limits lim;
    lim.max_literal = 8;
    CHECK(run("a1 LOGIN {9}\r\n", lim) == lines{"R:a1 BAD [TOOBIG] Literal too large"});
    CHECK(run("a1 LOGIN {9+}\r\nabcdefghi {1+}\r\nx\r\na2 NOOP\r\n", lim) ==
          lines{"R:a1 BAD [TOOBIG] Literal too large", "C:a2 NOOP"});
    SUBCASE("the sum over one command counts")
    {
        CHECK(run("a1 LOGIN {5}\r\nabcde {4}\r\n", lim) == lines{"+", "R:a1 BAD [TOOBIG] Literal too large"});
    }
    SUBCASE("once doomed, the next synchronizing literal ends the command")
    {
        CHECK(run("a1 LOGIN {9+}\r\nabcdefghi {1}\r\na2 NOOP\r\n", lim) ==
              lines{"R:a1 BAD [TOOBIG] Literal too large", "C:a2 NOOP"});
    }
}

TEST_CASE("LITERAL- bounds non-synchronizing literals at 4096 octets (RFC 7888 4)")
{
    imap::reader_limits lim;
    lim.max_nonsync = 4096;
    const std::string big(4097, 'm');
    CHECK(run("a1 APPEND INBOX {4097+}\r\n" + big + "\r\na2 NOOP\r\n", lim) ==
          lines{"R:a1 BAD [TOOBIG] Non-synchronizing literal too large", "C:a2 NOOP"});
    CHECK(run("a1 APPEND INBOX {4097}\r\n", lim) == lines{"+"});
    CHECK(run("a1 APPEND INBOX {4096+}\r\n" + big.substr(1) + "\r\n", lim).size() == 1);
}

TEST_CASE("the number of literals in a command is bounded")
{
    imap::reader_limits lim;
    lim.max_literals = 2;
    CHECK(run("a1 X {1+}\r\na {1+}\r\nb {1+}\r\nc\r\na2 NOOP\r\n", lim) ==
          lines{"R:a1 BAD [LIMIT] Too many literals", "C:a2 NOOP"});
}

TEST_CASE("a literal on a line without a tag earns no continuation")
{
    CHECK(run("{5}\r\na1 NOOP\r\n") == lines{"R:* BAD Missing or invalid tag", "C:a1 NOOP"});
    CHECK(run("+x LOGIN {5+}\r\nabcde\r\na1 NOOP\r\n") == lines{"R:* BAD Missing or invalid tag", "C:a1 NOOP"});
}

TEST_CASE("{n-} is no literal marker")
{
    CHECK(run("a1 LOGIN {5-}\r\n") == lines{"C:a1 LOGIN {5-}"});
    CHECK(run("a1 LOGIN {}\r\n") == lines{"C:a1 LOGIN {}"});
}

TEST_CASE("raw lines are read on request: AUTHENTICATE responses and IDLE's DONE")
{
    imap::reader r;
    std::vector<std::string> ev;
    r.feed("a1 IDLE\r\ndone\r\na2 NOOP\r\n");
    REQUIRE(r.next() == read_event::command);
    CHECK(r.take_command().text == "a1 IDLE");
    r.expect_line();
    REQUIRE(r.next() == read_event::line);
    const auto line = r.take_line();
    CHECK(line == "done");
    CHECK(imap::reader::is_done(line));
    CHECK_FALSE(imap::reader::is_done("DONE "));
    CHECK(imap::reader::is_cancel("*"));
    CHECK_FALSE(imap::reader::is_cancel("* "));
    drain(r, ev);
    CHECK(ev == lines{"C:a2 NOOP"});

    SUBCASE("a raw line is not a command, whatever it holds")
    {
        r.expect_line();
        r.feed("{5}\r\n");
        drain(r, ev);
        CHECK(ev.back() == "L:{5}");
    }
    SUBCASE("an over-long raw line is dropped")
    {
        imap::reader_limits lim;
        lim.max_line = 10;
        imap::reader small(lim);
        small.expect_line();
        std::vector<std::string> ev2;
        small.feed(std::string(50, 'A'));
        drain(small, ev2);
        CHECK(small.buffered() < 50);
        small.feed("==\r\na3 NOOP\r\n");
        drain(small, ev2);
        CHECK(ev2 == lines{"T", "C:a3 NOOP"});
        small.expect_line();
        small.feed(std::string(11, 'B') + "\r\n");
        drain(small, ev2);
        CHECK(ev2.back() == "T");
    }
}

TEST_CASE("discard_input forgets buffered plain text (STARTTLS)")
{
    imap::reader r;
    std::vector<std::string> ev;
    r.feed("a1 STARTTLS\r\na2 LOGIN {5}\r\nx");
    REQUIRE(r.next() == read_event::command);
    (void)r.take_command();
    r.discard_input();
    CHECK(r.buffered() == 0);
    CHECK_FALSE(r.mid_command());
    r.feed("a3 NOOP\r\n");
    drain(r, ev);
    CHECK(ev == lines{"C:a3 NOOP"});
}

TEST_CASE("UTF-8 and other octets pass through the reader untouched")
{
    CHECK(run("a1 SELECT \"J\xc3\xb6rg\"\r\n") == lines{"C:a1 SELECT \"J\xc3\xb6rg\""});
}

} // TEST_SUITE
