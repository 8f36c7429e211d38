// imap/chars.hpp (private to src/imap) — the character classes of RFC 9051
// 9 "Formal Syntax", shared by the reader (tags of refused commands) and the
// command parser. constexpr; any thread.
#pragma once

#include <string_view>

namespace postern::imap::chars {

// CTL = %x00-1F / %x7F
constexpr bool is_ctl(char c) noexcept
{
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
}

// ATOM-CHAR = <any CHAR except atom-specials>; atom-specials = "(" / ")" /
// "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials.
constexpr bool is_atom_char(char c) noexcept
{
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80 || is_ctl(c))
        return false;
    switch (c) {
    case '(':
    case ')':
    case '{':
    case ' ':
    case '%':
    case '*':
    case '"':
    case '\\':
    case ']':
        return false;
    default:
        return true;
    }
}

// ASTRING-CHAR = ATOM-CHAR / resp-specials
constexpr bool is_astring_char(char c) noexcept { return is_atom_char(c) || c == ']'; }

// tag = 1*<any ASTRING-CHAR except "+">
constexpr bool is_tag_char(char c) noexcept { return is_astring_char(c) && c != '+'; }

// list-char = ATOM-CHAR / list-wildcards / resp-specials
constexpr bool is_list_char(char c) noexcept { return is_astring_char(c) || c == '%' || c == '*'; }

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

constexpr bool is_tag(std::string_view s) noexcept
{
    if (s.empty())
        return false;
    for (char c : s)
        if (!is_tag_char(c))
            return false;
    return true;
}

// The length of the well-formed UTF-8 sequence (RFC 3629 4: no overlongs,
// no surrogates, at most U+10FFFF) starting s[i], or 0.
constexpr std::size_t utf8_length(std::string_view s, std::size_t i) noexcept
{
    const auto b0 = static_cast<unsigned char>(s[i]);
    auto cont = [&](std::size_t k, unsigned lo, unsigned hi) {
        if (i + k >= s.size())
            return false;
        const auto b = static_cast<unsigned char>(s[i + k]);
        return b >= lo && b <= hi;
    };
    if (b0 < 0x80)
        return 1;
    if (b0 >= 0xc2 && b0 <= 0xdf)
        return cont(1, 0x80, 0xbf) ? 2 : 0;
    if (b0 >= 0xe0 && b0 <= 0xef) {
        const unsigned lo = b0 == 0xe0 ? 0xa0 : 0x80;
        const unsigned hi = b0 == 0xed ? 0x9f : 0xbf;
        return cont(1, lo, hi) && cont(2, 0x80, 0xbf) ? 3 : 0;
    }
    if (b0 >= 0xf0 && b0 <= 0xf4) {
        const unsigned lo = b0 == 0xf0 ? 0x90 : 0x80;
        const unsigned hi = b0 == 0xf4 ? 0x8f : 0xbf;
        return cont(1, lo, hi) && cont(2, 0x80, 0xbf) && cont(3, 0x80, 0xbf) ? 4 : 0;
    }
    return 0;
}

} // namespace postern::imap::chars
