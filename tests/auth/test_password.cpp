#include "postern/auth/password.hpp"

#include <cstdint>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "postern/util/base64.hpp"
#include "postern/util/error.hpp"

using namespace postern;
using namespace postern::auth;

namespace {

// Tests hash at the floor cost and verify with the floor as the least cost.
constexpr std::uint32_t fast = floor_iterations;

std::string field(std::string_view encoded, int index)
{
    std::size_t start = 0;
    for (int i = 0; i < index; ++i)
        start = encoded.find('$', start) + 1;
    return std::string(encoded.substr(start, encoded.find('$', start) - start));
}

// A well-formed hash at the given cost with a fixed salt and digest.
std::string made(std::string_view iterations, const std::string& salt = std::string(16, 's'),
                 const std::string& hash = std::string(32, 'h'))
{
    return "$pbkdf2-sha256$" + std::string(iterations) + "$" + util::base64_encode(salt) + "$" +
           util::base64_encode(hash);
}

} // namespace

TEST_SUITE("auth") {

TEST_CASE("a hashed password verifies, and a wrong one does not")
{
    const auto h = hash_password("correct horse", fast);
    auto ok = verify_password(h, "correct horse", fast);
    REQUIRE(ok);
    CHECK(*ok);
    for (std::string_view wrong : {"correct hors", "correct horse ", "Correct horse", ""}) {
        CAPTURE(wrong);
        auto r = verify_password(h, wrong, fast);
        REQUIRE(r);
        CHECK_FALSE(*r);
    }
}

TEST_CASE("the encoded hash has the documented format")
{
    const auto h = hash_password("pw", fast);
    CHECK(h.starts_with("$pbkdf2-sha256$1000$"));
    CHECK(field(h, 1) == "pbkdf2-sha256");
    CHECK(field(h, 2) == "1000");
    auto salt = util::base64_decode(field(h, 3));
    auto hash = util::base64_decode(field(h, 4));
    REQUIRE(salt);
    REQUIRE(hash);
    CHECK(salt->size() == 16);
    CHECK(hash->size() == 32);
}

TEST_CASE("the default cost is 210000 iterations and its hash verifies")
{
    const auto h = hash_password("slow but right");
    CHECK(h.starts_with("$pbkdf2-sha256$210000$"));
    CHECK(looks_like_hash(h));
    auto r = verify_password(h, "slow but right");
    REQUIRE(r);
    CHECK(*r);
}

TEST_CASE("two hashes of the same password differ by their salt")
{
    const auto a = hash_password("same", fast);
    const auto b = hash_password("same", fast);
    CHECK(a != b);
    CHECK(field(a, 3) != field(b, 3));
    CHECK(*verify_password(a, "same", fast));
    CHECK(*verify_password(b, "same", fast));
}

TEST_CASE("passwords are binary-safe: NULs and high octets count")
{
    using namespace std::string_view_literals;
    const auto h = hash_password("a\0b\xff"sv, fast);
    CHECK(*verify_password(h, "a\0b\xff"sv, fast));
    CHECK_FALSE(*verify_password(h, "a"sv, fast));
    CHECK_FALSE(*verify_password(h, "a\0b"sv, fast));
}

TEST_CASE("a hash computed elsewhere verifies (PBKDF2-HMAC-SHA256 golden values)")
{
    // Python's hashlib.pbkdf2_hmac("sha256", b"password", b"saltSALTsaltSALT", n).
    const std::string_view at_1000 =
        "$pbkdf2-sha256$1000$c2FsdFNBTFRzYWx0U0FMVA==$RviVuqoYXwJlwdpwjXmZU95ZL1dsRTi366mc7XAO51s=";
    const std::string_view at_100000 =
        "$pbkdf2-sha256$100000$c2FsdFNBTFRzYWx0U0FMVA==$p+O0ZX1+xe7iVdhxV7c/KQfrIVdsOSZkT57XZk3Mbl0=";
    CHECK(*verify_password(at_1000, "password", fast));
    CHECK_FALSE(*verify_password(at_1000, "passwore", fast));
    CHECK(looks_like_hash(at_100000));
    CHECK(*verify_password(at_100000, "password"));
    // The same digest under another cost is a different hash.
    std::string wrong_cost(at_1000);
    wrong_cost.replace(15, 4, "1001");
    CHECK_FALSE(*verify_password(wrong_cost, "password", fast));
}

TEST_CASE("malformed encodings are a syntax error, field by field")
{
    const auto good = made("1000");
    REQUIRE(looks_like_hash(good, fast));
    const std::string bad[] = {
        "",
        "correct horse",                                       // plain text
        good.substr(1),                                        // no leading '$'
        "$pbkdf2-sha1$" + good.substr(15),                     // other scheme
        "$PBKDF2-SHA256$" + good.substr(15),                   // scheme is case-sensitive
        "$pbkdf2-sha256$",                                     // nothing after the scheme
        made(""),                                              // iterations empty
        made("01000"),                                         // leading zero
        made("+1000"),                                         // sign
        made("1e3"),                                           // not decimal
        made("99999999999999999999999"),                       // overflow
        made("1000", std::string(15, 's')),                    // salt too short
        made("1000", std::string(17, 's')),                    // salt too long
        made("1000", std::string(16, 's'), std::string(31, 'h')), // digest too short
        made("1000", std::string(16, 's'), std::string(33, 'h')), // digest too long
        "$pbkdf2-sha256$1000$c3Nzc3Nzc3Nzc3Nzc3Nzcw$" + field(good, 4),   // salt unpadded
        "$pbkdf2-sha256$1000$" + field(good, 3) + "$" + field(good, 4).substr(0, 43), // digest unpadded
        "$pbkdf2-sha256$1000$c3Nz c3Nzc3Nzc3Nzc3Nzcw==$" + field(good, 4), // whitespace
        "$pbkdf2-sha256$1000$" + field(good, 3),               // digest missing
        good + "$",                                            // extra field
        good + "$extra",                                       // extra field
        "$pbkdf2-sha256$1000$$" + field(good, 4),              // empty salt
        good + "\n",                                           // trailing newline
    };
    for (const auto& s : bad) {
        CAPTURE(s);
        CHECK_FALSE(looks_like_hash(s, fast));
        auto r = verify_password(s, "pw", fast);
        REQUIRE_FALSE(r);
        CHECK(r.error() == util::errc::syntax);
    }
}

TEST_CASE("stored hashes must cost 100000 to 10000000 iterations")
{
    CHECK_FALSE(looks_like_hash(made("1000")));
    CHECK_FALSE(looks_like_hash(made("99999")));
    CHECK(looks_like_hash(made("100000")));
    CHECK(looks_like_hash(made("210000")));
    CHECK(looks_like_hash(made("10000000")));
    CHECK_FALSE(looks_like_hash(made("10000001")));
    CHECK_FALSE(looks_like_hash(made("0"), fast));
    CHECK_FALSE(looks_like_hash(made("999"), fast));
    // A cheap hash is refused by the config-facing verifier before any KDF work.
    auto r = verify_password(hash_password("pw", fast), "pw");
    REQUIRE_FALSE(r);
    CHECK(r.error() == util::errc::syntax);
    CHECK(*hash_iterations(made("123456")) == 123456);
}

TEST_CASE("hashing at an explicit cost refuses costs below 1000 or above the maximum")
{
    CHECK_THROWS_AS(static_cast<void>(hash_password("pw", 999)), std::invalid_argument);
    CHECK_THROWS_AS(static_cast<void>(hash_password("pw", 0)), std::invalid_argument);
    CHECK_THROWS_AS(static_cast<void>(hash_password("pw", max_iterations + 1)), std::invalid_argument);
    CHECK_NOTHROW(static_cast<void>(hash_password("pw", 1000)));
}

} // TEST_SUITE
