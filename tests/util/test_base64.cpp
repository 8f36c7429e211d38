#include "postern/util/base64.hpp"

#include <ostream>
#include <string>
#include <string_view>
#include <utility>

#include <doctest/doctest.h>

#include "postern/util/error.hpp"

using namespace postern::util;

TEST_SUITE("util") {

TEST_CASE("base64 encodes the RFC 4648 test vectors with padding")
{
    // RFC 4648 10.
    const std::pair<std::string_view, std::string_view> vectors[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [in, out] : vectors) {
        const auto& in_case = in; // clang 14: no structured binding in a lambda (CAPTURE)
        CAPTURE(in_case);
        CHECK(base64_encode(in) == out);
    }
}

TEST_CASE("base64 encodes binary data, NULs and high octets included")
{
    using namespace std::string_view_literals;
    // RFC 4616 4's example message, as a SASL PLAIN client sends it.
    CHECK(base64_encode("\0tim\0tanstaaftanstaaf"sv) == "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    CHECK(base64_encode("\0"sv) == "AA==");
    CHECK(base64_encode("\0\0"sv) == "AAA=");
    CHECK(base64_encode("\0\0\0"sv) == "AAAA");
    CHECK(base64_encode("\xff\xff\xff"sv) == "////");
    CHECK(base64_encode("\xfb\xff\xbf"sv) == "+/+/");
    CHECK(base64_encode("\x14\xfb\x9c\x03\xd9\x7e"sv) == "FPucA9l+"); // RFC 4648 9
    std::string all;
    for (int c = 0; c < 256; ++c)
        all.push_back(static_cast<char>(c));
    auto enc = base64_encode(all);
    CHECK(enc.size() == 344);
    CHECK(enc.starts_with("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BB"));
    CHECK(enc.ends_with("8PHy8/T19vf4+fr7/P3+/w=="));
}

TEST_CASE("base64 is what SMTP AUTH LOGIN prompts decode from")
{
    CHECK(base64_encode("Username:") == "VXNlcm5hbWU6");
    CHECK(base64_encode("Password:") == "UGFzc3dvcmQ6");
}

TEST_CASE("base64 decodes the RFC 4648 test vectors")
{
    const std::pair<std::string_view, std::string_view> vectors[] = {
        {"", ""},
        {"Zg==", "f"},
        {"Zm8=", "fo"},
        {"Zm9v", "foo"},
        {"Zm9vYg==", "foob"},
        {"Zm9vYmE=", "fooba"},
        {"Zm9vYmFy", "foobar"},
        {"FPucA9l+", "\x14\xfb\x9c\x03\xd9\x7e"},
    };
    for (const auto& [in, out] : vectors) {
        const auto& in_case = in; // clang 14: no structured binding in a lambda (CAPTURE)
        CAPTURE(in_case);
        auto r = base64_decode(in);
        REQUIRE(r);
        CHECK(*r == out);
    }
}

TEST_CASE("base64 decoding round-trips binary data")
{
    using namespace std::string_view_literals;
    auto plain = base64_decode("AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    REQUIRE(plain);
    CHECK(*plain == "\0tim\0tanstaaftanstaaf"sv);
    std::string all;
    for (int c = 0; c < 256; ++c)
        all.push_back(static_cast<char>(c));
    for (std::size_t n = 0; n <= all.size(); n += 37) {
        CAPTURE(n);
        auto r = base64_decode(base64_encode(all.substr(0, n)));
        REQUIRE(r);
        CHECK(*r == all.substr(0, n));
    }
}

TEST_CASE("base64 decoding is strict: padding required, no whitespace, no stray characters")
{
    using namespace std::string_view_literals;
    const std::string_view bad[] = {
        "Zg",        // padding missing
        "Zm8",       // padding missing
        "Zg=",       // length not a multiple of 4
        "Z===",      // too much padding
        "====",      // padding only
        "Zg==Zg==",  // padding before the end
        "Zm=v",      // '=' inside a quantum
        "Zm9v\r\n",  // line break
        " Zm9v",     // leading space
        "Zm 9v",     // inner space
        "Zm9v-_==",  // base64url alphabet
        "Zh==",      // non-zero unused bits
        "Zm9=",      // non-zero unused bits
        "Zm9v\0AAA"sv, // NUL
    };
    for (auto in : bad) {
        const auto& in_case = in; // clang 14: no structured binding in a lambda (CAPTURE)
        CAPTURE(in_case);
        auto r = base64_decode(in);
        CHECK_FALSE(r);
        CHECK(r.error() == errc::syntax);
    }
}

} // TEST_SUITE
