// util/base64.hpp — base64 encoding and strict decoding (RFC 4648 4: the
// standard alphabet, with '=' padding, no line breaks), for SASL (RFC 4954).
// Pure; binary-safe (NULs are data). Any thread.
#pragma once

#include <string>
#include <string_view>

#include "postern/util/result.hpp"

namespace postern::util {

// base64 of bytes: 4 * ceil(n / 3) characters; "" for "".
std::string base64_encode(std::string_view bytes);

// The bytes of a strict base64 text: length a multiple of 4, padding required,
// '=' only at the end, no whitespace, zero unused bits in the last quantum
// (RFC 4648 3.5); errc::syntax otherwise. "" decodes to "".
result<std::string> base64_decode(std::string_view text);

} // namespace postern::util
