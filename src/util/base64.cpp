#include "postern/util/base64.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace postern::util {

namespace {

constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::uint32_t octet(std::string_view s, std::size_t i) noexcept
{
    return static_cast<unsigned char>(s[i]);
}

// The 6-bit value of a base64 character, or -1 for anything else ('=' too).
int sextet(char c) noexcept
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

} // namespace

std::string base64_encode(std::string_view bytes)
{
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t v = octet(bytes, i) << 16 | octet(bytes, i + 1) << 8 | octet(bytes, i + 2);
        out.push_back(alphabet[v >> 18 & 0x3f]);
        out.push_back(alphabet[v >> 12 & 0x3f]);
        out.push_back(alphabet[v >> 6 & 0x3f]);
        out.push_back(alphabet[v & 0x3f]);
    }
    // RFC 4648 4: a final quantum of 8 or 16 bits is padded with "==" / "=".
    const std::size_t rest = bytes.size() - i;
    if (rest == 0)
        return out;
    std::uint32_t v = octet(bytes, i) << 16;
    if (rest == 2)
        v |= octet(bytes, i + 1) << 8;
    out.push_back(alphabet[v >> 18 & 0x3f]);
    out.push_back(alphabet[v >> 12 & 0x3f]);
    out.push_back(rest == 2 ? alphabet[v >> 6 & 0x3f] : '=');
    out.push_back('=');
    return out;
}

result<std::string> base64_decode(std::string_view text)
{
    if (text.size() % 4 != 0)
        return errc::syntax;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        // Padding only in the last quantum: "xx==" or "xxx=".
        std::size_t pad = 0;
        if (last && text[i + 3] == '=')
            pad = text[i + 2] == '=' ? 2 : 1;
        std::uint32_t v = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            if (k >= 4 - pad) {
                v <<= 6;
                continue;
            }
            const int s = sextet(text[i + k]);
            if (s < 0)
                return errc::syntax;
            v = v << 6 | static_cast<std::uint32_t>(s);
        }
        out.push_back(static_cast<char>(v >> 16 & 0xff));
        if (pad == 2) {
            if ((v & 0xffff) != 0) // RFC 4648 3.5: unused bits must be zero
                return errc::syntax;
            break;
        }
        out.push_back(static_cast<char>(v >> 8 & 0xff));
        if (pad == 1) {
            if ((v & 0xff) != 0)
                return errc::syntax;
            break;
        }
        out.push_back(static_cast<char>(v & 0xff));
    }
    return out;
}

} // namespace postern::util
