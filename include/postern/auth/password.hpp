// auth/password.hpp — password hashing for SMTP AUTH users.
// Encoded form: $pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>
// (PBKDF2-HMAC-SHA256, 16-byte random salt, 32-byte hash, standard padded
// base64). Plain-text passwords are never accepted where a hash is expected.
// Invariant: verification compares in constant time (CRYPTO_memcmp) and costs
// the hash's own iteration count whatever the password.
// Thread: any; every call is CPU-bound (~0.1 s at the default cost), so run it
// on the worker pool, never the io thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "postern/util/result.hpp"

namespace postern::auth {

// The cost written by hash_password(pw) (OWASP 2023 for PBKDF2-HMAC-SHA256).
constexpr std::uint32_t default_iterations = 210000;
// The costs a stored hash may have (config, credentials).
constexpr std::uint32_t min_iterations = 100000;
constexpr std::uint32_t max_iterations = 10000000;
// The floor of the explicit-cost overloads, for fast tests only.
constexpr std::uint32_t floor_iterations = 1000;

constexpr std::size_t salt_bytes = 16;
constexpr std::size_t hash_bytes = 32;

// A fresh encoded hash at default_iterations.
// Throws std::runtime_error if the OpenSSL RNG or KDF fails.
std::string hash_password(std::string_view password);
// The same at an explicit cost in [floor_iterations, max_iterations]
// (std::invalid_argument otherwise). Production code uses the overload above.
std::string hash_password(std::string_view password, std::uint32_t iterations);

// Whether password matches encoded. errc::syntax if encoded is not a
// well-formed hash with iterations in [least_iterations, max_iterations].
util::result<bool> verify_password(std::string_view encoded, std::string_view password,
                                   std::uint32_t least_iterations = min_iterations);

// Whether s is a well-formed encoded hash (iterations in [least_iterations,
// max_iterations]); config validation refuses user passwords for which it is false.
bool looks_like_hash(std::string_view s, std::uint32_t least_iterations = min_iterations);

// The iteration count of a well-formed hash; errc::syntax otherwise.
util::result<std::uint32_t> hash_iterations(std::string_view encoded,
                                            std::uint32_t least_iterations = min_iterations);

} // namespace postern::auth
