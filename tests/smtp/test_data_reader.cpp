#include "postern/smtp/data_reader.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

using namespace postern::smtp;
using namespace std::string_literals;

namespace {

constexpr std::uint64_t big = 1 << 20;

// Everything observable about a reader after a run.
struct outcome {
    bool done = false;
    std::size_t used = 0;
    std::string body;
    std::uint64_t size = 0;
    bool bare_cr = false, bare_lf = false, long_line = false, too_big = false, ok = false;

    bool operator==(const outcome&) const = default;
};

outcome finish(data_reader& r, std::size_t used)
{
    outcome o;
    o.done = r.done();
    o.used = used;
    o.body = r.body();
    o.size = r.size();
    o.bare_cr = r.bare_cr();
    o.bare_lf = r.bare_lf();
    o.long_line = r.line_too_long();
    o.too_big = r.too_big();
    o.ok = r.ok();
    return o;
}

// Feeds in as the pieces cut at the given offsets, the way a session would:
// whatever the reader did not use is offered again with the next piece.
outcome read_pieces(std::string_view in, const std::vector<std::size_t>& cuts, std::uint64_t max = big)
{
    data_reader r(max);
    std::size_t used = 0;
    std::vector<std::size_t> ends = cuts;
    ends.push_back(in.size());
    for (auto to : ends) {
        auto piece = in.substr(used, to - used);
        auto n = r.consume(piece);
        CHECK(n <= piece.size());
        if (!r.done())
            CHECK(n == piece.size()); // no lookahead is held back before the end
        used += n;
        if (r.done())
            break;
    }
    CHECK(r.consume(in.substr(used)) == 0); // nothing more once done
    return finish(r, used);
}

outcome read_whole(std::string_view in, std::uint64_t max = big)
{
    return read_pieces(in, {}, max);
}

outcome read_bytewise(std::string_view in, std::uint64_t max = big)
{
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < in.size(); ++i)
        cuts.push_back(i);
    return read_pieces(in, cuts, max);
}

// Chunking must never change the result: every two-piece split and the
// byte-at-a-time feed agree with the one-chunk read.
void check_split_invariant(std::string_view in, std::uint64_t max = big)
{
    const auto whole = read_whole(in, max);
    for (std::size_t at = 0; at <= in.size(); ++at) {
        CAPTURE(at);
        CHECK(read_pieces(in, {at}, max) == whole);
    }
    CHECK(read_bytewise(in, max) == whole);
}

} // namespace

TEST_SUITE("smtp") {

TEST_CASE("a plain message is returned with its CRLF line ends and the end marker removed")
{
    const auto in = "Subject: hi\r\n\r\nbody line\r\n.\r\n"s;
    auto o = read_whole(in);
    CHECK(o.done);
    CHECK(o.ok);
    CHECK(o.used == in.size());
    CHECK(o.body == "Subject: hi\r\n\r\nbody line\r\n");
    CHECK(o.size == o.body.size());
}

TEST_CASE("a leading dot is removed from each line and other dots are kept")
{
    auto o = read_whole("..x\r\n.x\r\n...\r\na.b.\r\n..\r\n.\r\n");
    CHECK(o.done);
    CHECK(o.ok);
    CHECK(o.body == ".x\r\nx\r\n..\r\na.b.\r\n.\r\n");
    CHECK(o.size == o.body.size());
}

TEST_CASE("an immediate dot line is an empty message")
{
    auto o = read_whole(".\r\nQUIT\r\n");
    CHECK(o.done);
    CHECK(o.ok);
    CHECK(o.used == 3);
    CHECK(o.body.empty());
    CHECK(o.size == 0);
}

TEST_CASE("the data ends only at CRLF.CRLF")
{
    SUBCASE("lines that merely contain or start with a dot go on")
    {
        for (std::string_view in : {"x.\r\n", ". \r\n", ".x\r\n", "a\r\n. \r\n", "a\r\n.. \r\n",
                                    "a\r\n.\r", "a\r\n.", "a\r\n", "a"}) {
            CAPTURE(in);
            data_reader r(big);
            CHECK(r.consume(in) == in.size());
            CHECK_FALSE(r.done());
        }
    }
    SUBCASE("the end is found after such lines")
    {
        auto o = read_whole("x.\r\n. \r\n.\r\n");
        CHECK(o.done);
        CHECK(o.ok);
        CHECK(o.body == "x.\r\n \r\n");
    }
}

TEST_CASE("consume returns exactly the bytes used and leaves what follows the end")
{
    const auto msg = "hello\r\n..dot\r\n.\r\n"s;
    const auto after = "MAIL FROM:<a@x.test>\r\nQUIT\r\n"s;
    data_reader r(big);
    auto in = msg + after;
    auto n = r.consume(in);
    CHECK(n == msg.size());
    CHECK(r.done());
    CHECK(std::string_view(in).substr(n) == after);
    CHECK(r.consume(std::string_view(in).substr(n)) == 0);
    CHECK(r.body() == "hello\r\n.dot\r\n");
}

TEST_CASE("feeding in any pieces, or a byte at a time, gives the same result as one chunk")
{
    const std::string inputs[] = {
        "Subject: x\r\n\r\nhello\r\n.\r\nNEXT\r\n",
        "..a\r\n.b\r\n..\r\n.\r\n",
        ".\r\n",
        "a\r\n.\rx\r\n.\r\n",
        "a\n.\nb\r\n.\r\nQUIT\r\n",
        "a\r.\rb\r\n.\r\n",
        "a\r\r\n.\r\n",
        "x\r\n.\r\r\n.\r\n",
        std::string(10, 'y') + "\r\n..\r\n.\r\nMAIL\r\n",
    };
    for (const auto& in : inputs) {
        CAPTURE(in);
        check_split_invariant(in);
        check_split_invariant(in, 4); // past the size limit too
    }
}

TEST_CASE("smuggled end-of-data variants are content, not an end, and flag the message")
{
    struct row {
        std::string_view name;
        std::string_view sep;
        bool bare_lf;
        bool bare_cr;
    };
    const row rows[] = {
        {"<LF>.<LF>", "\n.\n", true, false},
        {"<CR>.<CR>", "\r.\r", false, true},
        {"<LF>.<CRLF>", "\n.\r\n", true, false},
        {"<CR><LF>.<LF>", "\r\n.\n", true, false},
        {"<CR>.<CRLF>", "\r.\r\n", false, true},
        {"<CRLF>.<CR>x", "\r\n.\rx", false, true},
        {"<CRLF>.<CR><CR><LF>", "\r\n.\r\r\n", false, true},
    };
    for (const auto& [name, sep, lf, cr] : rows) {
        const auto& name_case = name; // clang 14: no structured binding in a lambda (CAPTURE)
        CAPTURE(name_case);
        const auto in = "hello" + std::string(sep) + "MAIL FROM:<evil@x.test>\r\n.\r\n";
        auto o = read_whole(in + "QUIT\r\n");
        CHECK(o.done);
        CHECK(o.used == in.size()); // the real end, not the smuggled one
        CHECK_FALSE(o.ok);
        CHECK(o.bare_lf == lf);
        CHECK(o.bare_cr == cr);
        CHECK_FALSE(o.long_line);
        CHECK_FALSE(o.too_big);
        check_split_invariant(in);
    }
}

TEST_CASE("a bare CR or LF alone in the message flags it")
{
    SUBCASE("bare LF")
    {
        auto o = read_whole("a\nb\r\n.\r\n");
        CHECK(o.done);
        CHECK(o.bare_lf);
        CHECK_FALSE(o.bare_cr);
        CHECK_FALSE(o.ok);
    }
    SUBCASE("bare CR")
    {
        auto o = read_whole("a\rb\r\n.\r\n");
        CHECK(o.done);
        CHECK(o.bare_cr);
        CHECK_FALSE(o.bare_lf);
        CHECK_FALSE(o.ok);
    }
    SUBCASE("CR CR LF: the first CR is bare, the CRLF still ends the line")
    {
        auto o = read_whole("a\r\r\n.\r\n");
        CHECK(o.done);
        CHECK(o.bare_cr);
        CHECK(o.used == 7);
    }
}

TEST_CASE("a line of 998 octets is accepted and one of 999 is flagged (RFC 5321 4.5.3.1.6)")
{
    SUBCASE("998")
    {
        const auto line = std::string(998, 'a');
        auto o = read_whole(line + "\r\n" + line + "\r\n.\r\n");
        CHECK(o.done);
        CHECK(o.ok);
        CHECK_FALSE(o.long_line);
        CHECK(o.body == line + "\r\n" + line + "\r\n");
    }
    SUBCASE("999")
    {
        auto o = read_whole("short\r\n" + std::string(999, 'a') + "\r\nshort\r\n.\r\n");
        CHECK(o.done);
        CHECK(o.long_line);
        CHECK_FALSE(o.ok);
        CHECK_FALSE(o.bare_cr);
        CHECK_FALSE(o.bare_lf);
        CHECK_FALSE(o.too_big);
    }
    SUBCASE("999 on the last line, fed a byte at a time")
    {
        auto o = read_bytewise(std::string(999, 'a') + "\r\n.\r\n");
        CHECK(o.done);
        CHECK(o.long_line);
    }
    SUBCASE("the line length starts again after each CRLF")
    {
        std::string in;
        for (int i = 0; i < 5; ++i)
            in += std::string(998, 'a') + "\r\n";
        auto o = read_whole(in + ".\r\n");
        CHECK(o.done);
        CHECK(o.ok);
    }
}

// A 998-octet line that begins with '.' is sent as 999 octets ("..xxx").
// RFC 5321 4.5.3.1.6: the 1000-octet limit is "not counting the leading dot
// duplicated for transparency".
TEST_CASE("the duplicated leading dot does not count towards the line limit")
{
    const auto line = "." + std::string(997, 'a'); // 998 octets of content
    auto o = read_whole("." + line + "\r\n.\r\n");
    CHECK(o.done);
    CHECK_FALSE(o.long_line);
    CHECK(o.ok);
    CHECK(o.body == line + "\r\n");
}

TEST_CASE("a message of exactly the size limit is kept and one octet more is too big")
{
    const auto body = "Subject: x\r\n\r\n..dotted\r\n"s; // unstuffed: 24 octets
    const auto in = body + ".\r\nQUIT\r\n";
    const std::uint64_t exact = body.size() - 1; // one dot is removed
    SUBCASE("exactly the limit")
    {
        auto o = read_whole(in, exact);
        CHECK(o.done);
        CHECK(o.ok);
        CHECK_FALSE(o.too_big);
        CHECK(o.size == exact);
        CHECK(o.body == "Subject: x\r\n\r\n.dotted\r\n");
    }
    SUBCASE("one octet over: flagged, the body is dropped, the end is still found")
    {
        auto o = read_whole(in, exact - 1);
        CHECK(o.done);
        CHECK(o.used == body.size() + 3);
        CHECK(o.too_big);
        CHECK_FALSE(o.ok);
        CHECK(o.body.empty());
        CHECK(o.size == exact); // counted on past the limit
    }
    SUBCASE("far over the limit, fed in pieces")
    {
        std::string huge;
        for (int i = 0; i < 2000; ++i)
            huge += std::string(100, 'z') + "\r\n";
        data_reader r(1000);
        const auto all = huge + ".\r\nQUIT\r\n";
        std::size_t used = 0;
        while (!r.done() && used < all.size()) {
            used += r.consume(std::string_view(all).substr(used, 4096));
            CHECK(r.body().size() <= 1000);
        }
        CHECK(r.done());
        CHECK(used == huge.size() + 3);
        CHECK(r.too_big());
        CHECK(r.body().empty());
        CHECK(r.size() == huge.size());
    }
}

TEST_CASE("BDAT text chunks keep dots and CRLF.CRLF as content but still flag bare CR, bare LF and long lines")
{
    auto read = [](std::string_view in, std::vector<std::size_t> cuts, framing f) {
        data_reader r(1 << 20, f);
        std::size_t prev = 0;
        cuts.push_back(in.size());
        for (auto c : cuts) {
            CHECK(r.consume(in.substr(prev, c - prev)) == c - prev); // every byte is used
            prev = c;
        }
        CHECK_FALSE(r.done());
        return r;
    };
    SUBCASE("no unstuffing and no end marker")
    {
        auto r = read("Subject: x\r\n\r\n..two\r\n.\r\nafter\r\n", {}, framing::chunks);
        CHECK(r.ok());
        CHECK(r.body() == "Subject: x\r\n\r\n..two\r\n.\r\nafter\r\n");
    }
    SUBCASE("a CRLF split across two chunks is one line end")
    {
        auto r = read("line one\r\nline two\r\n", {9}, framing::chunks);
        CHECK(r.ok());
        CHECK_FALSE(r.bare_cr());
    }
    SUBCASE("bare LF and bare CR are flagged, as in DATA")
    {
        CHECK(read("a\nb\r\n", {}, framing::chunks).bare_lf());
        CHECK(read("a\rb\r\n", {}, framing::chunks).bare_cr());
        CHECK(read("a\r\n.\n", {}, framing::chunks).bare_lf());
    }
    SUBCASE("a line over 998 octets is flagged")
    {
        CHECK(read(std::string(998, 'x') + "\r\n", {500}, framing::chunks).ok());
        CHECK(read(std::string(999, 'x') + "\r\n", {500}, framing::chunks).line_too_long());
    }
    SUBCASE("binary content: any octets, no line rules")
    {
        std::string bin("\0\r\n\n\r.\r\n.\r\n", 11);
        bin += std::string(5000, '\xff');
        auto r = read(bin, {1, 6, 3000}, framing::binary);
        CHECK(r.ok());
        CHECK(r.body() == bin);
        CHECK(r.size() == bin.size());
    }
}

TEST_CASE("BDAT chunks past the size limit are counted but not kept")
{
    for (auto f : {framing::chunks, framing::binary}) {
        data_reader r(10, f);
        CHECK(r.consume("0123456789") == 10);
        CHECK(r.ok());
        CHECK(r.consume("a") == 1);
        CHECK(r.too_big());
        CHECK(r.body().empty());
        CHECK(r.consume(std::string(100000, 'b')) == 100000);
        CHECK(r.body().empty());
        CHECK(r.size() == 100011);
    }
}

} // TEST_SUITE
