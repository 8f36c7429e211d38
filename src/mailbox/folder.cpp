#include "postern/mailbox/folder.hpp"

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "postern/util/error.hpp"
#include "postern/util/strings.hpp"

namespace postern::mailbox {

namespace {

constexpr std::string_view inbox = "INBOX";

struct special_spec {
    special_use use;
    std::string_view name;
    std::string_view attribute;
};
// RFC 6154 2: the attributes; the names are the ones clients look for.
constexpr std::array<special_spec, 4> specials{{
    {special_use::sent, "Sent", "\\Sent"},
    {special_use::drafts, "Drafts", "\\Drafts"},
    {special_use::trash, "Trash", "\\Trash"},
    {special_use::junk, "Junk", "\\Junk"},
}};

const special_spec* find_special(special_use u) noexcept
{
    for (const auto& s : specials)
        if (s.use == u)
            return &s;
    return nullptr;
}

// RFC 3501 5.1.3: base64 with ',' for '/'.
constexpr std::string_view b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

int b64_value(char c) noexcept
{
    const auto p = b64.find(c);
    return p == std::string_view::npos ? -1 : static_cast<int>(p);
}

// One code point of UTF-8 at s[i] (advancing i); nullopt when the
// sequence is malformed, overlong, a surrogate or above U+10FFFF.
std::optional<char32_t> next_code_point(std::string_view s, std::size_t& i) noexcept
{
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
        ++i;
        return b0;
    }
    std::size_t n = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if ((b0 & 0xe0) == 0xc0) {
        n = 1, cp = b0 & 0x1f, min = 0x80;
    } else if ((b0 & 0xf0) == 0xe0) {
        n = 2, cp = b0 & 0x0f, min = 0x800;
    } else if ((b0 & 0xf8) == 0xf0) {
        n = 3, cp = b0 & 0x07, min = 0x10000;
    } else {
        return std::nullopt;
    }
    if (i + n >= s.size())
        return std::nullopt;
    for (std::size_t k = 1; k <= n; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xc0) != 0x80)
            return std::nullopt;
        cp = (cp << 6) | (b & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return std::nullopt;
    i += n + 1;
    return cp;
}

void append_utf8(std::string& out, char32_t cp)
{
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
        out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
}

constexpr bool is_printable_ascii(char32_t c) noexcept
{
    return c >= 0x20 && c <= 0x7e;
}

// Encodes UTF-16 units as one "&...-" run.
void flush_run(std::string& out, std::u16string& run)
{
    if (run.empty())
        return;
    out.push_back('&');
    std::uint32_t bits = 0;
    int nbits = 0;
    for (char16_t u : run)
        for (int shift : {8, 0}) {
            bits = (bits << 8) | ((static_cast<std::uint32_t>(u) >> shift) & 0xff);
            nbits += 8;
            while (nbits >= 6) {
                nbits -= 6;
                out.push_back(b64[(bits >> nbits) & 0x3f]);
            }
        }
    if (nbits > 0)
        out.push_back(b64[(bits << (6 - nbits)) & 0x3f]);
    out.push_back('-');
    run.clear();
}

// Decodes the base64 of one run (between '&' and '-') into UTF-8.
util::result<void> decode_run(std::string_view run, std::string& out)
{
    std::uint32_t bits = 0;
    int nbits = 0;
    std::u16string units;
    for (char c : run) {
        const int v = b64_value(c);
        if (v < 0)
            return util::errc::syntax;
        bits = (bits << 6) | static_cast<std::uint32_t>(v);
        nbits += 6;
        if (nbits >= 16) {
            nbits -= 16;
            units.push_back(static_cast<char16_t>((bits >> nbits) & 0xffff));
        }
    }
    // Left-over bits are padding: fewer than 6 (no half octet pairs) and zero.
    if (nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0 || units.empty())
        return util::errc::syntax;
    for (std::size_t i = 0; i < units.size(); ++i) {
        char32_t cp = units[i];
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (i + 1 == units.size() || units[i + 1] < 0xdc00 || units[i + 1] > 0xdfff)
                return util::errc::syntax;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (units[i + 1] - 0xdc00);
            ++i;
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            return util::errc::syntax;
        }
        if (is_printable_ascii(cp))
            return util::errc::syntax; // RFC 3501 5.1.3: must represent itself
        append_utf8(out, cp);
    }
    return {};
}

// The name's characters are allowed: valid UTF-8, no C0/C1 controls or DEL,
// no '/' (a path), no LIST wildcards.
bool allowed_characters(std::string_view name) noexcept
{
    for (std::size_t i = 0; i < name.size();) {
        const auto cp = next_code_point(name, i);
        if (!cp || *cp < 0x20 || (*cp >= 0x7f && *cp <= 0x9f) || *cp == '/' || *cp == '*' || *cp == '%')
            return false;
    }
    return true;
}

// "inbox" or "inbox.<rest>" (any case) has its first component spelt "INBOX".
std::string with_inbox_spelt(std::string_view name)
{
    if (util::istarts_with(name, inbox) && (name.size() == inbox.size() || name[inbox.size()] == separator))
        return std::string(inbox) + std::string(name.substr(inbox.size()));
    return std::string(name);
}

// Glob match of p against n: '*' anything, '%' anything but the separator.
// Dynamic programming over suffixes (a greedy matcher that backtracks only to
// the last wildcard is wrong once '%' may not cross a separator: "*.%"
// against "a.b.c"). Names are at most max_dir_name octets.
bool glob(std::string_view p, std::string_view n)
{
    // row[j]: p[i..] matches n[j..], computed from the last pattern char back.
    std::vector<char> row(n.size() + 1, 0), next(n.size() + 1, 0);
    next[n.size()] = 1; // empty pattern matches empty name
    for (std::size_t i = p.size(); i-- > 0;) {
        const char c = p[i];
        row[n.size()] = (c == '*' || c == '%') ? next[n.size()] : 0;
        for (std::size_t j = n.size(); j-- > 0;) {
            if (c == '*')
                row[j] = next[j] || row[j + 1];
            else if (c == '%')
                row[j] = next[j] || (n[j] != separator && row[j + 1]);
            else
                row[j] = c == n[j] && next[j + 1];
        }
        std::swap(row, next);
    }
    return next[0] != 0;
}

} // namespace

std::string_view special_use_attribute(special_use u) noexcept
{
    switch (u) {
    case special_use::none: return {};
    case special_use::sent:
    case special_use::drafts:
    case special_use::trash:
    case special_use::junk: return find_special(u)->attribute;
    }
    return {};
}

std::string_view special_use_name(special_use u) noexcept
{
    switch (u) {
    case special_use::none: return {};
    case special_use::sent:
    case special_use::drafts:
    case special_use::trash:
    case special_use::junk: return find_special(u)->name;
    }
    return {};
}

special_use special_use_of(std::string_view name) noexcept
{
    for (const auto& s : specials)
        if (s.name == name)
            return s.use;
    return special_use::none;
}

bool is_inbox(std::string_view name) noexcept
{
    return util::iequals(name, inbox);
}

util::result<std::string> canonical_folder_name(std::string_view utf8)
{
    if (utf8.empty())
        return util::errc::syntax;
    if (utf8.size() >= max_dir_name)
        return util::errc::too_long;
    if (!allowed_characters(utf8))
        return util::errc::syntax;
    const auto parts = util::split(utf8, separator);
    if (parts.size() > max_depth)
        return util::errc::limit;
    for (auto part : parts)
        if (part.empty())
            return util::errc::syntax; // leading, trailing or doubled '.'
    std::string name = with_inbox_spelt(utf8);
    // POP3's lock file (mailbox/lock.hpp) sits where this folder would.
    if (name == "postern-lock")
        return util::errc::refused;
    return name;
}

util::result<std::string> folder_dir(std::string_view utf8)
{
    auto name = canonical_folder_name(utf8);
    if (!name)
        return name;
    if (*name == inbox)
        return std::string();
    auto encoded = mutf7_encode(*name);
    if (!encoded)
        return encoded;
    if (encoded->size() + 1 > max_dir_name)
        return util::errc::too_long;
    return "." + *encoded;
}

std::optional<std::string> folder_name_of_dir(std::string_view entry)
{
    if (entry.size() < 2 || entry.front() != '.')
        return std::nullopt;
    auto name = mutf7_decode(entry.substr(1));
    if (!name)
        return std::nullopt;
    auto dir = folder_dir(*name);
    if (!dir || *dir != entry) // not canonical, or INBOX (dir "")
        return std::nullopt;
    return std::move(*name);
}

util::result<std::string> mutf7_encode(std::string_view utf8)
{
    std::string out;
    std::u16string run;
    for (std::size_t i = 0; i < utf8.size();) {
        const auto cp = next_code_point(utf8, i);
        if (!cp)
            return util::errc::syntax;
        if (is_printable_ascii(*cp)) {
            flush_run(out, run);
            out += *cp == '&' ? "&-" : std::string(1, static_cast<char>(*cp));
        } else if (*cp >= 0x10000) {
            const char32_t v = *cp - 0x10000;
            run.push_back(static_cast<char16_t>(0xd800 + (v >> 10)));
            run.push_back(static_cast<char16_t>(0xdc00 + (v & 0x3ff)));
        } else {
            run.push_back(static_cast<char16_t>(*cp));
        }
    }
    flush_run(out, run);
    return out;
}

util::result<std::string> mutf7_decode(std::string_view mutf7)
{
    std::string out;
    for (std::size_t i = 0; i < mutf7.size();) {
        const char c = mutf7[i];
        if (!is_printable_ascii(static_cast<unsigned char>(c)))
            return util::errc::syntax;
        if (c != '&') {
            out.push_back(c);
            ++i;
            continue;
        }
        const auto end = mutf7.find('-', i + 1);
        if (end == std::string_view::npos)
            return util::errc::syntax;
        if (end == i + 1) {
            out.push_back('&'); // "&-"
        } else if (auto r = decode_run(mutf7.substr(i + 1, end - i - 1), out); !r) {
            return r.error();
        }
        i = end + 1;
    }
    return out;
}

bool pattern_matches(std::string_view pattern, std::string_view name)
{
    if (glob(pattern, name))
        return true;
    // RFC 9051 5.1: INBOX is case-insensitive, so is the pattern's spelling of it.
    const bool inbox_family = name == inbox || (name.starts_with(inbox) && name[inbox.size()] == separator);
    return inbox_family && util::istarts_with(pattern, inbox) &&
           glob(pattern.substr(inbox.size()), name.substr(inbox.size()));
}

} // namespace postern::mailbox
