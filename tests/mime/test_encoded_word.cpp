#include "postern/mime/encoded_word.hpp"

#include <string>

#include <doctest/doctest.h>

using namespace postern;

TEST_SUITE("mime") {

TEST_CASE("B and Q encoded words decode to UTF-8")
{
    CHECK(mime::decode_words("=?UTF-8?B?4oKsIDEwMA==?=") == "\xe2\x82\xac 100");
    CHECK(mime::decode_words("=?utf-8?q?caf=C3=A9_au_lait?=") == "caf\xc3\xa9 au lait");
    CHECK(mime::decode_words("=?US-ASCII?Q?Keith_Moore?=") == "Keith Moore");
    SUBCASE("B without padding")
    {
        CHECK(mime::decode_words("=?utf-8?B?4oKs?=") == "\xe2\x82\xac");
        CHECK(mime::decode_words("=?utf-8?B?YWI?=") == "ab");
    }
}

TEST_CASE("latin-1 encoded words are converted to UTF-8 by hand")
{
    CHECK(mime::decode_words("=?ISO-8859-1?Q?Andr=E9?= Pirard") == "Andr\xc3\xa9 Pirard");
    CHECK(mime::decode_words("=?iso-8859-1?b?SvZyZw==?=") == "J\xc3\xb6rg");
    CHECK(mime::to_utf8("\xff", "latin1") == "\xc3\xbf");
}

TEST_CASE("white space between adjacent encoded words is dropped (RFC 2047 6.2)")
{
    // RFC 2047 8 examples.
    CHECK(mime::decode_words("(=?ISO-8859-1?Q?a?=)") == "(a)");
    CHECK(mime::decode_words("(=?ISO-8859-1?Q?a?= b)") == "(a b)");
    CHECK(mime::decode_words("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)") == "(ab)");
    CHECK(mime::decode_words("(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)") == "(ab)");
    CHECK(mime::decode_words("(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)") == "(ab)");
    CHECK(mime::decode_words("(=?ISO-8859-1?Q?a_b?=)") == "(a b)");
    CHECK(mime::decode_words("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)") == "(a =?ISO-8859-2?Q?_b?=)");
    SUBCASE("a multi-octet character split across two words joins up")
    {
        CHECK(mime::decode_words("=?utf-8?B?4oI=?= =?utf-8?B?rA==?=") == "\xe2\x82\xac");
    }
    SUBCASE("space between a word and plain text stays")
    {
        CHECK(mime::decode_words("Re: =?utf-8?Q?hi?= there") == "Re: hi there");
    }
}

TEST_CASE("what does not decode is left as it stands")
{
    CHECK(mime::decode_words("=?koi8-r?B?8NLJ18XU?=") == "=?koi8-r?B?8NLJ18XU?=");
    CHECK(mime::decode_words("=?utf-8?X?abc?=") == "=?utf-8?X?abc?=");
    CHECK(mime::decode_words("=?utf-8?B?#$%?=") == "=?utf-8?B?#$%?=");
    CHECK(mime::decode_words("=?utf-8?Q?a b?=") == "=?utf-8?Q?a b?=");
    CHECK(mime::decode_words("=?utf-8?Q?unterminated") == "=?utf-8?Q?unterminated");
    CHECK(mime::decode_words("=?") == "=?");
    CHECK(mime::decode_words("=??Q?\?=") == "=??Q?\?=");
    CHECK(mime::decode_words("=?utf-8?Q?\?=") == "");
    CHECK(mime::decode_words("a  b ") == "a  b ");
    SUBCASE("an encoded word longer than 1024 octets is not one")
    {
        const std::string long_word = "=?utf-8?Q?" + std::string(1100, 'a') + "?=";
        CHECK(mime::decode_words(long_word) == long_word);
        const std::string ok_word = "=?utf-8?Q?" + std::string(900, 'a') + "?=";
        CHECK(mime::decode_words(ok_word) == std::string(900, 'a'));
    }
    SUBCASE("many unterminated starts are no quadratic scan")
    {
        std::string many;
        for (int i = 0; i < 20000; ++i)
            many += "=?a?Q?";
        CHECK(mime::decode_words(many) == many);
    }
    CHECK(mime::decode_words("") == "");
}

TEST_CASE("an RFC 2231 language suffix in the charset is ignored")
{
    CHECK(mime::decode_words("=?US-ASCII*EN?Q?Keith_Moore?=") == "Keith Moore");
}

TEST_CASE("to_utf8 knows utf-8, us-ascii and latin-1 only")
{
    CHECK(mime::to_utf8("abc", "UTF-8") == "abc");
    CHECK(mime::to_utf8("abc", "us-ascii") == "abc");
    CHECK(mime::to_utf8("\xe9", "ISO-8859-1") == "\xc3\xa9");
    CHECK_FALSE(mime::to_utf8("abc", "windows-1251"));
}

} // TEST_SUITE
