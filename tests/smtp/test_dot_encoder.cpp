#include "postern/smtp/dot_encoder.hpp"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "postern/smtp/data_reader.hpp"

using namespace postern::smtp;

namespace {

std::string encode(std::string_view m)
{
    std::string out;
    dot_encode(m, out);
    return out;
}

} // namespace

TEST_SUITE("smtp") {

TEST_CASE("a dot that opens a line is doubled and the message ends in CRLF.CRLF")
{
    CHECK(encode("Subject: x\r\n\r\nhi\r\n") == "Subject: x\r\n\r\nhi\r\n.\r\n");
    CHECK(encode(".leading\r\nmid.dle\r\n.\r\n..two\r\n") == "..leading\r\nmid.dle\r\n..\r\n...two\r\n.\r\n");
    CHECK(encode("a\r\n.") == "a\r\n..\r\n.\r\n");
}

TEST_CASE("a message without a final CRLF gets one before the terminator")
{
    CHECK(encode("no newline") == "no newline\r\n.\r\n");
    CHECK(encode("x\r\ny") == "x\r\ny\r\n.\r\n");
}

TEST_CASE("an empty message is the terminator alone")
{
    CHECK(encode("") == ".\r\n");
    CHECK(encode("\r\n") == "\r\n.\r\n");
}

TEST_CASE("bare LF and bare CR go out as CRLF, so no smuggling sequence leaves us")
{
    CHECK(encode("a\n.\nb") == "a\r\n..\r\nb\r\n.\r\n");
    CHECK(encode("a\r.\rb\r") == "a\r\n..\r\nb\r\n.\r\n");
    CHECK(encode("a\r\r\nb\n\r\n") == "a\r\n\r\nb\r\n\r\n.\r\n");
}

TEST_CASE("dot_encode appends to what out holds")
{
    std::string out = "DATA\r\n";
    dot_encode("x\r\n", out);
    CHECK(out == "DATA\r\nx\r\n.\r\n");
}

TEST_CASE("the streaming encoder gives the same output for every split of the input")
{
    const std::string msgs[] = {".a\r\n.\r\nb\r\n", "x\r\n.", "a\r\n\r\n..\r\n", "a\r", "\r\n.\r\n", "a\n.b\r.c"};
    for (const auto& m : msgs) {
        const auto whole = encode(m);
        for (std::size_t cut1 = 0; cut1 <= m.size(); ++cut1) {
            for (std::size_t cut2 = cut1; cut2 <= m.size(); ++cut2) {
                CAPTURE(m);
                CAPTURE(cut1);
                CAPTURE(cut2);
                dot_encoder e;
                std::string out;
                e.encode(std::string_view(m).substr(0, cut1), out);
                e.encode(std::string_view(m).substr(cut1, cut2 - cut1), out);
                e.encode(std::string_view(m).substr(cut2), out);
                e.finish(out);
                CHECK(out == whole);
            }
        }
    }
}

TEST_CASE("data_reader undoes dot_encode for messages with CRLF line ends")
{
    const std::string msgs[] = {"", "x\r\n", ".\r\n", "..\r\n.x\r\n\r\n", "Subject: s\r\n\r\n. \r\n.\r\n..\r\nend\r\n"};
    for (const auto& m : msgs) {
        CAPTURE(m);
        auto wire = encode(m);
        data_reader r(1 << 20);
        CHECK(r.consume(wire) == wire.size());
        REQUIRE(r.done());
        CHECK(r.ok());
        CHECK(r.body() == m);
    }
}

} // TEST_SUITE
