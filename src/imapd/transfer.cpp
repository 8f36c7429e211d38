#include "postern/imapd/transfer.hpp"

#include <array>
#include <cstdint>

#include "postern/util/strings.hpp"

namespace postern::imapd {

namespace {

constexpr std::uint8_t not_base64 = 0xff;

constexpr std::array<std::uint8_t, 256> base64_table()
{
    std::array<std::uint8_t, 256> t{};
    t.fill(not_base64);
    constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (std::size_t i = 0; i < alphabet.size(); ++i)
        t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::uint8_t>(i);
    return t;
}
constexpr auto base64_values = base64_table();

// The value of a hex digit, or -1.
int hex_value(char c) noexcept
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

// Where the line end after position i starts when only SP / HTAB stand
// between (a QP soft line break "=  \r\n"); npos otherwise. Returns the
// position after the line end.
std::size_t soft_break_end(std::string_view s, std::size_t i) noexcept
{
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
        ++i;
    if (i < s.size() && s[i] == '\n')
        return i + 1;
    if (i + 1 < s.size() && s[i] == '\r' && s[i + 1] == '\n')
        return i + 2;
    if (i == s.size())
        return i; // "=" at the very end: a soft break before nothing
    return std::string_view::npos;
}

} // namespace

std::string decode_base64(std::string_view body)
{
    std::string out;
    out.reserve(body.size() / 4 * 3);
    std::uint32_t bits = 0;
    int count = 0; // sextets held in bits
    for (const char c : body) {
        if (c == '=')
            break; // padding: the data is over (RFC 2045 6.8)
        const auto v = base64_values[static_cast<unsigned char>(c)];
        if (v == not_base64)
            continue; // RFC 2045 6.8: characters not in the alphabet are ignored
        bits = (bits << 6) | v;
        if (++count == 4) {
            out.push_back(static_cast<char>((bits >> 16) & 0xff));
            out.push_back(static_cast<char>((bits >> 8) & 0xff));
            out.push_back(static_cast<char>(bits & 0xff));
            bits = 0;
            count = 0;
        }
    }
    // An unpadded or truncated last group: keep its whole octets.
    if (count == 2) {
        out.push_back(static_cast<char>((bits >> 4) & 0xff));
    } else if (count == 3) {
        out.push_back(static_cast<char>((bits >> 10) & 0xff));
        out.push_back(static_cast<char>((bits >> 2) & 0xff));
    }
    return out;
}

std::string decode_quoted_printable(std::string_view body)
{
    std::string out;
    out.reserve(body.size());
    for (std::size_t i = 0; i < body.size(); ++i) {
        const char c = body[i];
        if (c != '=') {
            out.push_back(c);
            continue;
        }
        if (i + 2 < body.size() && hex_value(body[i + 1]) >= 0 && hex_value(body[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(body[i + 1]) * 16 + hex_value(body[i + 2])));
            i += 2;
            continue;
        }
        if (const auto end = soft_break_end(body, i + 1); end != std::string_view::npos) {
            i = end - 1;
            continue;
        }
        out.push_back(c); // a stray "=": kept (RFC 2045 6.7 note (2))
    }
    return out;
}

std::optional<std::string> decode_transfer(std::string_view body, std::string_view encoding)
{
    if (util::iequals(encoding, "base64"))
        return decode_base64(body);
    if (util::iequals(encoding, "quoted-printable"))
        return decode_quoted_printable(body);
    if (util::iequals(encoding, "7bit") || util::iequals(encoding, "8bit") || util::iequals(encoding, "binary"))
        return std::string(body);
    return std::nullopt;
}

} // namespace postern::imapd
