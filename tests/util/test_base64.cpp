#include "postern/util/base64.hpp"

#include <string>
#include <string_view>
#include <utility>

#include <doctest/doctest.h>

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
        CAPTURE(in);
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

} // TEST_SUITE
