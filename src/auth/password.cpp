#include "postern/auth/password.hpp"

#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "postern/util/base64.hpp"
#include "postern/util/error.hpp"
#include "postern/util/strings.hpp"

namespace postern::auth {

namespace {

constexpr std::string_view scheme = "$pbkdf2-sha256$";

struct parsed_hash {
    std::uint32_t iterations = 0;
    std::string salt;
    std::string hash;
};

using digest = std::array<unsigned char, hash_bytes>;

// PBKDF2-HMAC-SHA256; false if OpenSSL fails (or the input is absurdly long).
bool derive(std::string_view password, std::string_view salt, std::uint32_t iterations, digest& out)
{
    if (password.size() > INT_MAX || salt.size() > INT_MAX || iterations > INT_MAX)
        return false;
    return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                             reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                             static_cast<int>(iterations), EVP_sha256(), static_cast<int>(out.size()),
                             out.data()) == 1;
}

// $pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>, every field canonical.
util::result<parsed_hash> parse(std::string_view encoded, std::uint32_t least_iterations)
{
    if (!encoded.starts_with(scheme))
        return util::errc::syntax;
    const auto fields = util::split(encoded.substr(scheme.size()), '$');
    if (fields.size() != 3)
        return util::errc::syntax;
    // Decimal, no sign, no leading zero.
    const auto n = util::parse_uint(fields[0]);
    if (!n || fields[0][0] == '0' || *n < least_iterations || *n > max_iterations)
        return util::errc::syntax;
    auto salt = util::base64_decode(fields[1]);
    auto hash = util::base64_decode(fields[2]);
    if (!salt || salt->size() != salt_bytes || !hash || hash->size() != hash_bytes)
        return util::errc::syntax;
    return parsed_hash{static_cast<std::uint32_t>(*n), std::move(*salt), std::move(*hash)};
}

} // namespace

std::string hash_password(std::string_view password)
{
    return hash_password(password, default_iterations);
}

std::string hash_password(std::string_view password, std::uint32_t iterations)
{
    if (iterations < floor_iterations || iterations > max_iterations)
        throw std::invalid_argument("hash_password: iterations out of range");
    std::array<unsigned char, salt_bytes> salt{};
    if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1)
        throw std::runtime_error("hash_password: RAND_bytes failed");
    const std::string_view salt_view(reinterpret_cast<const char*>(salt.data()), salt.size());
    digest out{};
    if (!derive(password, salt_view, iterations, out))
        throw std::runtime_error("hash_password: PBKDF2 failed");
    std::string encoded(scheme);
    encoded += std::to_string(iterations);
    encoded += '$';
    encoded += util::base64_encode(salt_view);
    encoded += '$';
    encoded += util::base64_encode(std::string_view(reinterpret_cast<const char*>(out.data()), out.size()));
    OPENSSL_cleanse(out.data(), out.size());
    return encoded;
}

util::result<bool> verify_password(std::string_view encoded, std::string_view password,
                                   std::uint32_t least_iterations)
{
    auto p = parse(encoded, least_iterations);
    if (!p)
        return p.error();
    digest out{};
    if (!derive(password, p->salt, p->iterations, out))
        return util::errc::io;
    const bool same = CRYPTO_memcmp(out.data(), p->hash.data(), out.size()) == 0;
    OPENSSL_cleanse(out.data(), out.size());
    return same;
}

bool looks_like_hash(std::string_view s, std::uint32_t least_iterations)
{
    return parse(s, least_iterations).has_value();
}

util::result<std::uint32_t> hash_iterations(std::string_view encoded, std::uint32_t least_iterations)
{
    auto p = parse(encoded, least_iterations);
    if (!p)
        return p.error();
    return p->iterations;
}

} // namespace postern::auth
