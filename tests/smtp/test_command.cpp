#include "postern/smtp/command.hpp"

#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <string_view>
#include <system_error>

#include <doctest/doctest.h>

#include "postern/util/error.hpp"

using namespace postern::smtp;
using postern::util::errc;

namespace {

struct verb_row {
    std::string_view name;
    verb v;
    arg_rule args;
};

constexpr verb_row verbs[] = {
    {"EHLO", verb::ehlo, arg_rule::required}, {"HELO", verb::helo, arg_rule::required},
    {"MAIL", verb::mail, arg_rule::required}, {"RCPT", verb::rcpt, arg_rule::required},
    {"DATA", verb::data, arg_rule::none},     {"RSET", verb::rset, arg_rule::none},
    {"NOOP", verb::noop, arg_rule::optional}, {"QUIT", verb::quit, arg_rule::none},
    {"VRFY", verb::vrfy, arg_rule::required}, {"HELP", verb::help, arg_rule::optional},
    {"STARTTLS", verb::starttls, arg_rule::none},
};

std::string lower(std::string_view s)
{
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// "mAiL": every other letter lowered.
std::string mixed(std::string_view s)
{
    std::string out(s);
    for (std::size_t i = 1; i < out.size(); i += 2)
        if (out[i] >= 'A' && out[i] <= 'Z')
            out[i] = static_cast<char>(out[i] - 'A' + 'a');
    return out;
}

std::error_code syntax()
{
    return make_error_code(errc::syntax);
}

} // namespace

TEST_SUITE("smtp") {

TEST_CASE("every verb is recognised in upper, lower and mixed case")
{
    for (const auto& row : verbs) {
        for (const auto& spelling : {std::string(row.name), lower(row.name), mixed(row.name)}) {
            CAPTURE(spelling);
            auto c = parse_command(spelling);
            REQUIRE(c);
            REQUIRE(c->spec != nullptr);
            CHECK(c->spec->v == row.v);
            CHECK(c->spec->name == row.name);
            CHECK(c->spec->args == row.args);
            CHECK(c->args.empty());
        }
    }
}

TEST_CASE("unknown verbs and verbs glued to their arguments are not commands")
{
    const std::string_view lines[] = {
        "", " ", "X", "EHL", "EHLOO", "MAILFROM:<a@x.test>", "STARTTLSX", "AUTHPLAIN",
        "BDATX 10", "TURN", " EHLO x", "EHLO\tx", "E HLO", "HELO\r", "QUIT\n",
    };
    for (auto l : lines) {
        CAPTURE(l);
        CHECK_FALSE(parse_command(l).has_value());
    }
}

TEST_CASE("the arguments are everything after the verb and one space, untrimmed")
{
    SUBCASE("a single argument")
    {
        auto c = parse_command("EHLO client.example");
        REQUIRE(c);
        CHECK(c->spec->v == verb::ehlo);
        CHECK(c->args == "client.example");
    }
    SUBCASE("MAIL keeps its FROM: prefix and parameters")
    {
        auto c = parse_command("mail FROM:<a@x.test> SIZE=10 BODY=8BITMIME");
        REQUIRE(c);
        CHECK(c->spec->v == verb::mail);
        CHECK(c->args == "FROM:<a@x.test> SIZE=10 BODY=8BITMIME");
    }
    SUBCASE("extra spaces stay in the arguments")
    {
        auto c = parse_command("RCPT  TO:<b@x.test>  ");
        REQUIRE(c);
        CHECK(c->spec->v == verb::rcpt);
        CHECK(c->args == " TO:<b@x.test>  ");
    }
    SUBCASE("a trailing space gives empty arguments")
    {
        auto c = parse_command("QUIT ");
        REQUIRE(c);
        CHECK(c->spec->v == verb::quit);
        CHECK(c->args.empty());
    }
    SUBCASE("the arguments view points into the line")
    {
        std::string line = "NOOP hello";
        auto c = parse_command(line);
        REQUIRE(c);
        CHECK(c->args.data() == line.data() + 5);
    }
}

TEST_CASE("ESMTP parameters split into keywords and values")
{
    auto r = parse_params(" SIZE=1000 BODY=8BITMIME SMTPUTF8");
    REQUIRE(r);
    REQUIRE(r->size() == 3);
    CHECK((*r)[0].keyword == "SIZE");
    CHECK((*r)[0].value == "1000");
    CHECK((*r)[0].has_value);
    CHECK((*r)[1].keyword == "BODY");
    CHECK((*r)[1].value == "8BITMIME");
    CHECK((*r)[1].has_value);
    CHECK((*r)[2].keyword == "SMTPUTF8");
    CHECK((*r)[2].value.empty());
    CHECK_FALSE((*r)[2].has_value);
}

TEST_CASE("keywords keep their case and may hold digits and inner hyphens")
{
    auto r = parse_params("x-Ext=1 A1 9=z AUTH=<>");
    REQUIRE(r);
    REQUIRE(r->size() == 4);
    CHECK((*r)[0].keyword == "x-Ext");
    CHECK((*r)[0].value == "1");
    CHECK((*r)[1].keyword == "A1");
    CHECK_FALSE((*r)[1].has_value);
    CHECK((*r)[2].keyword == "9");
    CHECK((*r)[2].value == "z");
    CHECK((*r)[3].keyword == "AUTH");
    CHECK((*r)[3].value == "<>");
}

TEST_CASE("runs of spaces between, before and after parameters are tolerated")
{
    for (std::string_view s : {"SIZE=1  BODY=7BIT", "   SIZE=1 BODY=7BIT", "SIZE=1 BODY=7BIT   ",
                               "  SIZE=1     BODY=7BIT  "}) {
        CAPTURE(s);
        auto r = parse_params(s);
        REQUIRE(r);
        REQUIRE(r->size() == 2);
        CHECK((*r)[0].keyword == "SIZE");
        CHECK((*r)[0].value == "1");
        CHECK((*r)[1].keyword == "BODY");
        CHECK((*r)[1].value == "7BIT");
    }
}

TEST_CASE("an empty parameter string yields no parameters")
{
    for (std::string_view s : {"", " ", "     "}) {
        CAPTURE(s);
        auto r = parse_params(s);
        REQUIRE(r);
        CHECK(r->empty());
    }
}

TEST_CASE("a keyword that is not ALPHA/DIGIT followed by ALPHA/DIGIT/hyphen is a syntax error")
{
    for (std::string_view s : {"-X", "A_B", "=1", "=", "SIZE=1 -X", "A.B", "A+B=1", "é=1", "A:B",
                               "SIZE=1 =2"}) {
        CAPTURE(s);
        auto r = parse_params(s);
        CHECK_FALSE(r);
        CHECK(r.error() == syntax());
    }
}

TEST_CASE("a value that is empty, holds '=' or holds control characters is a syntax error")
{
    const std::string_view values[] = {
        "SIZE=", "A=b=c", "A==", "A=x\ty", std::string_view("A=x\0y", 5), "A=x\x01", "A=\x1f",
        "A=x\x7f", "A=x\r", "A=x\n", "BODY=8BITMIME X=",
    };
    for (auto s : values) {
        CAPTURE(s);
        auto r = parse_params(s);
        CHECK_FALSE(r);
        CHECK(r.error() == syntax());
    }
}

TEST_CASE("values may hold any printable ASCII but '=', and 8-bit octets")
{
    auto r = parse_params("A=!\"#<>~ B=\xc3\xa9t\xc3\xa9");
    REQUIRE(r);
    REQUIRE(r->size() == 2);
    CHECK((*r)[0].value == "!\"#<>~");
    CHECK((*r)[1].value == "\xc3\xa9t\xc3\xa9");
}

} // TEST_SUITE
