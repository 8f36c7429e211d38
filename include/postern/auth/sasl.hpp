// auth/sasl.hpp — decoding of SASL PLAIN (RFC 4616) and LOGIN responses as
// SMTP AUTH (RFC 4954) carries them: one base64 line each.
// Pure, no I/O, any thread. The "*" cancel line and the 334 prompts belong to
// the SMTP session; these functions only see a response line's base64 text.
// Never log what they return.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "postern/util/result.hpp"

namespace postern::auth {

struct sasl_credentials {
    std::string username;
    std::string password;
};

// The most decoded octets a single response may carry (errc::too_long beyond).
constexpr std::size_t sasl_max_decoded = 1024;

// PLAIN: base64 of authzid NUL authcid NUL passwd.
//   errc::too_long — over sasl_max_decoded octets;
//   errc::syntax   — bad base64, not exactly two NULs, empty authcid or passwd;
//   errc::refused  — an authzid other than the authcid (no proxy authorization).
util::result<sasl_credentials> decode_plain(std::string_view response);

// LOGIN: one base64 line (the username, then the password, each after its
// 334 prompt). errc::too_long / errc::syntax as above; empty or NUL-bearing
// values are errc::syntax.
util::result<std::string> decode_login_line(std::string_view response);
// LOGIN: both lines at once.
util::result<sasl_credentials> decode_login(std::string_view username_line, std::string_view password_line);

} // namespace postern::auth
