#include "postern/mime/content.hpp"

#include <string>
#include <vector>

#include <doctest/doctest.h>

using namespace postern;
using mime::parameter;
using params = std::vector<parameter>;

TEST_SUITE("mime") {

TEST_CASE("Content-Type is type/subtype lower-cased with its parameters")
{
    const auto ct = mime::parse_content_type("Text/HTML; Charset=\"UTF-8\"; format=flowed");
    REQUIRE(ct);
    CHECK(ct->type == "text");
    CHECK(ct->subtype == "html");
    CHECK(ct->params == params{{"charset", "UTF-8"}, {"format", "flowed"}});
}

TEST_CASE("comments and folding may sit between the tokens (RFC 2045 5.1)")
{
    // RFC 2045 5.1: these are equivalent.
    for (const char* v : {"text/plain; charset=us-ascii (Plain text)", "text/plain; charset=\"us-ascii\"",
                          "text (a) / (b) plain ;\r\n charset (c) = (d) us-ascii"}) {
        CAPTURE(v);
        const auto ct = mime::parse_content_type(v);
        REQUIRE(ct);
        CHECK(ct->type == "text");
        CHECK(ct->subtype == "plain");
        CHECK(ct->params == params{{"charset", "us-ascii"}});
    }
}

TEST_CASE("an invalid Content-Type gives nothing, so the default applies")
{
    CHECK_FALSE(mime::parse_content_type(""));
    CHECK_FALSE(mime::parse_content_type("text"));
    CHECK_FALSE(mime::parse_content_type("text/"));
    CHECK_FALSE(mime::parse_content_type("/plain"));
    CHECK_FALSE(mime::parse_content_type("(only a comment"));
}

TEST_CASE("quoted strings keep their specials and lose their quoted-pairs")
{
    const auto p = mime::parse_parameters("; boundary=\"=_a;b (c)\"; name=\"x\\\"y\\\\z\"");
    CHECK(p == params{{"boundary", "=_a;b (c)"}, {"name", "x\"y\\z"}});
}

TEST_CASE("RFC 2231 continuations are joined in order")
{
    // RFC 2231 3 example.
    const auto ct = mime::parse_content_type("message/external-body; access-type=URL;\r\n"
                                             " URL*0=\"ftp://\";\r\n"
                                             " URL*1=\"cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar\"");
    REQUIRE(ct);
    CHECK(ct->params == params{{"access-type", "URL"},
                               {"url", "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"}});
    SUBCASE("out of order and with a gap")
    {
        CHECK(mime::parse_parameters("; a*1=b; a*0=a; a*3=x") == params{{"a", "ab"}});
    }
    SUBCASE("a leading zero or a huge index is no continuation")
    {
        CHECK(mime::parse_parameters("; a*0=x; a*01=y; a*99999=z") == params{{"a", "x"}});
    }
}

TEST_CASE("RFC 2231 charset and language values are decoded to UTF-8")
{
    SUBCASE("RFC 2231 4 example")
    {
        CHECK(mime::parse_parameters("; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A") ==
              params{{"title", "This is ***fun***"}});
    }
    SUBCASE("utf-8")
    {
        CHECK(mime::parse_parameters("; filename*=utf-8''%E2%82%AC%20rates.pdf") ==
              params{{"filename", "\xe2\x82\xac rates.pdf"}});
    }
    SUBCASE("latin-1")
    {
        CHECK(mime::parse_parameters("; filename*=iso-8859-1'de'M%FCller.txt") ==
              params{{"filename", "M\xc3\xbcller.txt"}});
    }
    SUBCASE("RFC 2231 4.1: continuations mixing encoded and plain pieces")
    {
        CHECK(mime::parse_parameters("; title*0*=us-ascii'en'This%20is%20even%20more%20;\r\n"
                                     " title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"") ==
              params{{"title", "This is even more ***fun*** isn't it!"}});
    }
    SUBCASE("a charset we do not know keeps the decoded octets")
    {
        CHECK(mime::parse_parameters("; n*=koi8-r''%F0") == params{{"n", "\xf0"}});
    }
    SUBCASE("the RFC 2231 form wins over a plain one, in the plain one's place")
    {
        CHECK(mime::parse_parameters("; name=\"fallback.pdf\"; x=1; name*=utf-8''%C3%A9.pdf") ==
              params{{"name", "\xc3\xa9.pdf"}, {"x", "1"}});
    }
}

TEST_CASE("broken parameters are skipped or taken leniently")
{
    CHECK(mime::parse_parameters("; ; novalue; =x; a=b c; d=/e/f; g") ==
          params{{"a", "b"}, {"d", "/e/f"}});
    CHECK(mime::parse_parameters("; a=\"unterminated") == params{{"a", "unterminated"}});
    CHECK(mime::parse_parameters("; a=1; A=2") == params{{"a", "1"}});
    CHECK(mime::find_parameter(params{{"charset", "x"}}, "CHARSET") != nullptr);
    CHECK(mime::find_parameter(params{}, "charset") == nullptr);
}

TEST_CASE("Content-Disposition is a lower-case type with parameters (RFC 2183)")
{
    const auto d = mime::parse_disposition("Attachment; filename=\"a b.txt\"; size=12");
    CHECK(d.type == "attachment");
    CHECK(d.params == params{{"filename", "a b.txt"}, {"size", "12"}});
    CHECK(mime::parse_disposition("").type.empty());
}

TEST_CASE("Content-Transfer-Encoding is one token, else 7bit")
{
    CHECK(mime::parse_transfer_encoding("BASE64") == "base64");
    CHECK(mime::parse_transfer_encoding(" quoted-printable (qp)") == "quoted-printable");
    CHECK(mime::parse_transfer_encoding("x-uuencode") == "x-uuencode");
    CHECK(mime::parse_transfer_encoding("") == "7bit");
    CHECK(mime::parse_transfer_encoding("?invalid") == "7bit");
    CHECK(mime::parse_transfer_encoding("8bit binary") == "7bit");
}

TEST_CASE("Content-Language is a comma-separated list (RFC 3282)")
{
    CHECK(mime::parse_language("en, fi,se") == std::vector<std::string>{"en", "fi", "se"});
    CHECK(mime::parse_language("i-klingon (a comment)") == std::vector<std::string>{"i-klingon"});
    CHECK(mime::parse_language("").empty());
}

} // TEST_SUITE
