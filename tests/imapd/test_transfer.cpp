#include "postern/imapd/transfer.hpp"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

using namespace postern;

TEST_SUITE("imapd") {

TEST_CASE("base64 bodies decode leniently")
{
    struct sample {
        std::string_view in;
        std::string out;
    };
    const sample samples[] = {
        {"", ""},
        {"aGVsbG8=", "hello"},
        {"aGVs\r\nbG8=\r\n", "hello"},     // line breaks
        {"aGVs bG8=", "hello"},            // stray white space
        {"aGVsbG8", "hello"},              // padding missing
        {"aGVsbA", "hell"},                // two characters of a group
        {"aGVsb", "hel"},                  // a lone last character is dropped
        {"aGVs*bG8=", "hello"},            // a character not in the alphabet
        {"aGVsbG8=AAAA", "hello"},         // nothing after the padding
        {"AGE=", std::string("\0a", 2)},   // NUL is data
        {"Y2Fmw6k=", "caf\xc3\xa9"},
    };
    for (const auto& s : samples) {
        CAPTURE(s.in);
        CHECK(imapd::decode_base64(s.in) == s.out);
    }
}

TEST_CASE("quoted-printable bodies decode leniently")
{
    struct sample {
        std::string_view in;
        std::string_view out;
    };
    const sample samples[] = {
        {"", ""},
        {"caf=C3=A9", "caf\xc3\xa9"},
        {"caf=c3=a9", "caf\xc3\xa9"},          // lower-case hex
        {"hel=\r\nlo", "hello"},               // soft line break
        {"hel=\nlo", "hello"},                 // with a bare LF
        {"hel=  \r\nlo", "hello"},             // white space after the "="
        {"a=\r\n", "a"},
        {"end=", "end"},                       // "=" at the very end
        {"1+1=2", "1+1=2"},                    // a stray "=" is kept
        {"=ZZ", "=ZZ"},
        {"=4", "=4"},                          // too short for a hex pair
        {"a \r\nb", "a \r\nb"},                // hard line breaks stay
    };
    for (const auto& s : samples) {
        CAPTURE(s.in);
        CHECK(imapd::decode_quoted_printable(s.in) == s.out);
    }
}

TEST_CASE("The transfer encoding picks the decoder; an unknown one gives nothing")
{
    CHECK(imapd::decode_transfer("aGk=", "base64") == "hi");
    CHECK(imapd::decode_transfer("aGk=", "BASE64") == "hi");
    CHECK(imapd::decode_transfer("h=69", "quoted-printable") == "hi");
    for (const std::string_view identity : {"7bit", "8bit", "binary"}) {
        CAPTURE(identity);
        CHECK(imapd::decode_transfer("h=69", identity) == "h=69");
    }
    CHECK_FALSE(imapd::decode_transfer("begin 644", "x-uuencode"));
    CHECK_FALSE(imapd::decode_transfer("x", ""));
}

} // TEST_SUITE
