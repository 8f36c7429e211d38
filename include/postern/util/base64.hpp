// util/base64.hpp — base64 encoding (RFC 4648 4: the standard alphabet,
// with '=' padding, no line breaks), for SASL (RFC 4954) responses.
// Pure; binary-safe (NULs are data). Any thread.
#pragma once

#include <string>
#include <string_view>

namespace postern::util {

// base64 of bytes: 4 * ceil(n / 3) characters; "" for "".
std::string base64_encode(std::string_view bytes);

} // namespace postern::util
