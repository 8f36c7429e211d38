#include "postern/mime/encoded_word.hpp"

#include <array>
#include <cstdint>

#include "postern/mime/header.hpp"
#include "postern/util/strings.hpp"

namespace postern::mime {

namespace {

// RFC 2047 2 allows 75 octets; mailers write longer ones, not this long.
constexpr std::size_t max_word = 1024;

enum class charset_kind { utf8, latin1, unknown };

charset_kind classify(std::string_view charset)
{
    constexpr std::array<std::string_view, 4> utf8{"utf-8", "utf8", "us-ascii", "ascii"};
    constexpr std::array<std::string_view, 8> latin1{"iso-8859-1", "iso8859-1", "latin1", "latin-1",
                                                     "iso_8859-1", "l1", "cp819", "ibm819"};
    for (const auto n : utf8)
        if (util::iequals(charset, n))
            return charset_kind::utf8;
    for (const auto n : latin1)
        if (util::iequals(charset, n))
            return charset_kind::latin1;
    return charset_kind::unknown;
}

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

int base64_value(char c) noexcept
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

// RFC 2047 4.1 (RFC 4648 4 alphabet); padding optional, nothing after it.
std::optional<std::string> decode_b(std::string_view text)
{
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    std::size_t i = 0;
    for (; i < text.size() && text[i] != '='; ++i) {
        const int v = base64_value(text[i]);
        if (v < 0)
            return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xffU));
        }
    }
    for (; i < text.size(); ++i)
        if (text[i] != '=')
            return std::nullopt;
    return out;
}

// RFC 2047 4.2: "_" is a space, "=XX" an octet; a broken "=" stays.
std::string decode_q(std::string_view text)
{
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '_') {
            out.push_back(' ');
        } else if (c == '=' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

struct word {
    std::size_t length = 0; // octets of "=?...?=" in the input
    std::string decoded;    // UTF-8
};

// An encoded word at the start of s, decoded; nullopt when s does not start
// with one we can decode.
std::optional<word> encoded_word_at(std::string_view s)
{
    s = s.substr(0, max_word); // bounded look-ahead: no quadratic scan of "=?=?=?..."
    if (!s.starts_with("=?"))
        return std::nullopt;
    const auto q1 = s.find('?', 2);
    if (q1 == std::string_view::npos || q1 + 2 >= s.size() || s[q1 + 2] != '?')
        return std::nullopt;
    const auto end = s.find("?=", q1 + 2); // empty text: "?=" right after "?Q?"
    if (end == std::string_view::npos)
        return std::nullopt;
    auto charset = s.substr(2, q1 - 2);
    if (const auto star = charset.find('*'); star != std::string_view::npos) // RFC 2231 5 language
        charset = charset.substr(0, star);
    const auto text = end > q1 + 3 ? s.substr(q1 + 3, end - (q1 + 3)) : std::string_view{};
    for (const char c : text)
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            return std::nullopt; // RFC 2047 2: no white space inside
    std::optional<std::string> bytes;
    switch (util::ascii_lower(s[q1 + 1])) {
    case 'b':
        bytes = decode_b(text);
        break;
    case 'q':
        bytes = decode_q(text);
        break;
    default:
        return std::nullopt;
    }
    if (!bytes)
        return std::nullopt;
    auto utf8 = to_utf8(*bytes, charset);
    if (!utf8)
        return std::nullopt;
    return word{end + 2, std::move(*utf8)};
}

} // namespace

std::optional<std::string> to_utf8(std::string_view bytes, std::string_view charset)
{
    switch (classify(charset)) {
    case charset_kind::utf8:
        return std::string(bytes);
    case charset_kind::latin1: {
        std::string out;
        out.reserve(bytes.size() * 2);
        for (const char ch : bytes) {
            const auto c = static_cast<unsigned char>(ch);
            if (c < 0x80) {
                out.push_back(ch);
            } else { // U+0080..U+00FF: two octets (RFC 3629 3)
                out.push_back(static_cast<char>(0xc0U | (c >> 6U)));
                out.push_back(static_cast<char>(0x80U | (c & 0x3fU)));
            }
        }
        return out;
    }
    case charset_kind::unknown:
        return std::nullopt;
    }
    return std::nullopt;
}

std::string decode_words(std::string_view value)
{
    const std::string v = unfold(value);
    const std::string_view s = v;
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    bool after_word = false;        // the last thing emitted was an encoded word
    std::size_t pending_space = 0;  // whitespace after it, not yet emitted
    while (i < s.size()) {
        if (s[i] == '=' && i + 1 < s.size() && s[i + 1] == '?') {
            if (auto w = encoded_word_at(s.substr(i))) {
                if (!after_word) // RFC 2047 6.2: space between two words is dropped
                    out.append(s.substr(i - pending_space, pending_space));
                pending_space = 0;
                out += w->decoded;
                i += w->length;
                after_word = true;
                continue;
            }
        }
        if (s[i] == ' ' || s[i] == '\t') {
            ++pending_space;
            ++i;
            continue;
        }
        out.append(s.substr(i - pending_space, pending_space));
        pending_space = 0;
        after_word = false;
        out.push_back(s[i]);
        ++i;
    }
    out.append(s.substr(s.size() - pending_space, pending_space));
    return out;
}

} // namespace postern::mime
