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

} // namespace postern::util
