// mail/address.cpp — RFC 5321 4.1.2 path syntax with the RFC 6531 3.3
// SMTPUTF8 extensions. Strict recursive descent over the octets between '<'
// and '>': nothing is trimmed, guessed or repaired (Postfix's
// strict_rfc821_envelopes), because every address accepted here later meets
// the relay check and the Maildir layout.
#include "postern/mail/address.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "postern/util/error.hpp"
#include "postern/util/result.hpp"
#include "postern/util/strings.hpp"

namespace postern::mail {
namespace {

using util::errc;
using util::result;

// RFC 5321 4.5.3.1.1–4.5.3.1.3.
constexpr std::size_t max_local_part = 64; // octets of the Local-part as written
constexpr std::size_t max_domain = 255;
constexpr std::size_t max_path = 256; // including "<" and ">"
// RFC 1035 2.3.4.
constexpr std::size_t max_label = 63;

// Character classes of RFC 5321 4.1.2 (ASCII only; the UTF8-non-ascii
// additions of RFC 6531 3.3 are handled by is_8bit() where they apply).
constexpr std::uint8_t cls_atext = 1U << 0U;    // atext (RFC 5322 3.2.3)
constexpr std::uint8_t cls_qtext = 1U << 1U;    // qtextSMTP: %d32-33 / %d35-91 / %d93-126
constexpr std::uint8_t cls_qpair = 1U << 2U;    // after '\' in quoted-pairSMTP: %d32-126
constexpr std::uint8_t cls_dcontent = 1U << 3U; // dcontent: %d33-90 / %d94-126
constexpr std::uint8_t cls_let_dig = 1U << 4U;  // Let-dig: ALPHA / DIGIT
constexpr std::uint8_t cls_digit = 1U << 5U;    // DIGIT
constexpr std::uint8_t cls_hex = 1U << 6U;      // HEXDIG (case-insensitive, RFC 5234)

constexpr std::array<std::uint8_t, 256> make_classes()
{
    constexpr std::string_view atext_specials = "!#$%&'*+-/=?^_`{|}~";
    std::array<std::uint8_t, 256> t{};
    for (int c = 0; c < 128; ++c) {
        const bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        const bool digit = c >= '0' && c <= '9';
        unsigned f = 0;
        if (alpha || digit || atext_specials.find(static_cast<char>(c)) != std::string_view::npos)
            f |= cls_atext;
        if (c == 32 || c == 33 || (c >= 35 && c <= 91) || (c >= 93 && c <= 126))
            f |= cls_qtext;
        if (c >= 32 && c <= 126)
            f |= cls_qpair;
        if ((c >= 33 && c <= 90) || (c >= 94 && c <= 126))
            f |= cls_dcontent;
        if (alpha || digit)
            f |= cls_let_dig;
        if (digit)
            f |= cls_digit;
        if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
            f |= cls_hex;
        t[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(f);
    }
    return t;
}

constexpr auto classes = make_classes();

constexpr bool is(char c, std::uint8_t cls) noexcept
{
    return (classes[static_cast<unsigned char>(c)] & cls) != 0;
}

// An octet of a UTF8-non-ascii character (RFC 6531 3.3). Callers validate the
// whole input with is_valid_utf8() first, so a lone octet test is enough.
constexpr bool is_8bit(char c) noexcept
{
    return static_cast<unsigned char>(c) >= 0x80;
}

bool all_ascii(std::string_view s) noexcept
{
    for (char c : s)
        if (is_8bit(c))
            return false;
    return true;
}

// Dot-string = Atom *("." Atom); Atom = 1*atext (RFC 5321 4.1.2), atext
// extended with UTF8-non-ascii (RFC 6531 3.3). Returns the octets consumed;
// 0 when s does not start with an Atom. Stops at the first octet that cannot
// continue the Dot-string; a dot not followed by an Atom is an error (npos).
std::size_t scan_dot_string(std::string_view s) noexcept
{
    std::size_t i = 0;
    bool atom_start = true;
    for (; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '.') {
            if (atom_start)
                return std::string_view::npos; // leading or doubled dot
            atom_start = true;
        } else if (is(c, cls_atext) || is_8bit(c)) {
            atom_start = false;
        } else {
            break;
        }
    }
    if (i == 0)
        return 0;
    return atom_start ? std::string_view::npos : i; // trailing dot
}

bool is_dot_string(std::string_view s) noexcept
{
    return !s.empty() && scan_dot_string(s) == s.size();
}

struct local_part {
    std::string value;      // unquoted
    std::size_t length = 0; // octets as written
    bool quoted = false;
};

// Local-part = Dot-string / Quoted-string (RFC 5321 4.1.2) at the start of s.
result<local_part> parse_local_part(std::string_view s)
{
    local_part lp;
    if (!s.empty() && s.front() == '"') {
        // Quoted-string = DQUOTE *QcontentSMTP DQUOTE
        std::size_t i = 1;
        for (;;) {
            if (i >= s.size())
                return errc::syntax; // unterminated
            const char c = s[i];
            if (c == '"') {
                ++i;
                break;
            }
            if (c == '\\') {
                // quoted-pairSMTP = %d92 %d32-126: no controls, no 8-bit.
                if (i + 1 >= s.size() || !is(s[i + 1], cls_qpair))
                    return errc::syntax;
                lp.value += s[i + 1];
                i += 2;
                continue;
            }
            if (!is(c, cls_qtext) && !is_8bit(c))
                return errc::syntax;
            lp.value += c;
            ++i;
        }
        lp.length = i;
        lp.quoted = true;
    } else {
        const std::size_t n = scan_dot_string(s);
        if (n == 0 || n == std::string_view::npos)
            return errc::syntax;
        lp.value = s.substr(0, n);
        lp.length = n;
    }
    // RFC 5321 4.5.3.1.1 limits the Local-part, which is the written form;
    // the unquoted value is never longer, so the header's invariant holds.
    if (lp.length > max_local_part)
        return errc::too_long;
    // `""@domain` matches the grammar, but no mailbox has an empty name and
    // an empty local part would name the domain's own Maildir directory.
    if (lp.value.empty())
        return errc::syntax;
    return lp;
}

// sub-domain = Let-dig [Ldh-str] (RFC 5321 4.1.2), or a U-label made of
// UTF8-non-ascii and LDH octets (RFC 6531 3.3); 1–63 octets (RFC 1035 2.3.4).
bool is_label(std::string_view label) noexcept
{
    if (label.empty() || label.size() > max_label)
        return false;
    if (label.front() == '-' || label.back() == '-')
        return false;
    for (char c : label)
        if (!is(c, cls_let_dig) && c != '-' && !is_8bit(c))
            return false;
    return true;
}

// Domain = sub-domain *("." sub-domain); no trailing dot (RFC 5321 2.3.5).
result<void> check_domain_name(std::string_view d)
{
    if (d.size() > max_domain)
        return errc::too_long;
    for (;;) {
        const auto dot = d.find('.');
        if (!is_label(d.substr(0, dot)))
            return errc::syntax;
        if (dot == std::string_view::npos)
            return {};
        d.remove_prefix(dot + 1);
    }
}

// Snum 3("." Snum); Snum = 1*3DIGIT, value 0–255 (RFC 5321 4.1.3).
bool is_ipv4_literal(std::string_view s) noexcept
{
    for (int part = 0; part < 4; ++part) {
        if (part > 0) {
            if (s.empty() || s.front() != '.')
                return false;
            s.remove_prefix(1);
        }
        std::size_t n = 0;
        unsigned value = 0;
        while (n < s.size() && n < 4 && is(s[n], cls_digit)) {
            value = value * 10 + static_cast<unsigned>(s[n] - '0');
            ++n;
        }
        if (n == 0 || n > 3 || value > 255)
            return false;
        s.remove_prefix(n);
    }
    return s.empty();
}

// Colon-separated IPv6-hex groups (1*4HEXDIG); -1 when malformed. An empty
// string has zero groups (one side of "::").
int count_hex_groups(std::string_view s) noexcept
{
    if (s.empty())
        return 0;
    int groups = 0;
    for (;;) {
        const auto colon = s.find(':');
        const auto g = s.substr(0, colon);
        if (g.empty() || g.size() > 4)
            return -1;
        for (char c : g)
            if (!is(c, cls_hex))
                return -1;
        ++groups;
        if (colon == std::string_view::npos)
            return groups;
        s.remove_prefix(colon + 1);
    }
}

// IPv6-addr of RFC 5321 4.1.3, written out rather than left to inet_pton():
// the RFC allows leading zeros in the embedded IPv4 part (Snum) but lets
// "::" stand for at least two groups only ("1:2:3:4:5:6:7::" is refused),
// and glibc's inet_pton() disagrees on both.
bool is_ipv6_addr(std::string_view s) noexcept
{
    int max_groups = 8;
    // IPv6v4-full / IPv6v4-comp: the last group is an IPv4 address.
    if (const auto last = s.rfind(':');
        last != std::string_view::npos && s.find('.', last) != std::string_view::npos) {
        if (!is_ipv4_literal(s.substr(last + 1)))
            return false;
        s = s.substr(0, last + 1);
        // Keep a "::" whole; otherwise drop the colon that led to the IPv4 part.
        if (s.size() < 2 || s.substr(s.size() - 2) != "::")
            s.remove_suffix(1);
        max_groups = 6;
    }
    const auto gap = s.find("::");
    if (gap == std::string_view::npos)
        return count_hex_groups(s) == max_groups;
    const int left = count_hex_groups(s.substr(0, gap));
    const int right = count_hex_groups(s.substr(gap + 2));
    // IPv6-comp: "No more than 6 groups in addition to the '::'" (4 with IPv4).
    return left >= 0 && right >= 0 && left + right <= max_groups - 2;
}

// Standardized-tag = Ldh-str (RFC 5321 4.1.3).
bool is_ldh_str(std::string_view s) noexcept
{
    if (s.empty() || !is(s.back(), cls_let_dig))
        return false;
    for (char c : s)
        if (!is(c, cls_let_dig) && c != '-')
            return false;
    return true;
}

// address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
// General-address-literal ) "]" (RFC 5321 4.1.3). No 8-bit: RFC 6531 does
// not extend these productions.
result<void> check_address_literal(std::string_view d)
{
    if (d.size() > max_domain)
        return errc::too_long;
    if (d.size() < 2 || d.front() != '[' || d.back() != ']')
        return errc::syntax;
    const auto inner = d.substr(1, d.size() - 2);
    const auto colon = inner.find(':');
    if (colon == std::string_view::npos)
        return is_ipv4_literal(inner) ? result<void>{} : errc::syntax;
    const auto tag = inner.substr(0, colon);
    const auto content = inner.substr(colon + 1);
    // "IPv6" is the one registered tag; ABNF literals are case-insensitive
    // (RFC 5234 2.3), and a tag we know must carry what it names.
    if (util::iequals(tag, "IPv6"))
        return is_ipv6_addr(content) ? result<void>{} : errc::syntax;
    // General-address-literal = Standardized-tag ":" 1*dcontent
    if (!is_ldh_str(tag) || content.empty())
        return errc::syntax;
    for (char c : content)
        if (!is(c, cls_dcontent))
            return errc::syntax;
    return {};
}

result<void> check_domain(std::string_view d)
{
    if (!d.empty() && d.front() == '[')
        return check_address_literal(d);
    return check_domain_name(d);
}

// Mailbox = Local-part "@" ( Domain / address-literal ), or the bare
// "Postmaster" of Forward-path when allow_postmaster (RFC 5321 4.1.2).
result<address> parse_mailbox(std::string_view s, bool allow_postmaster)
{
    auto lp = parse_local_part(s);
    if (!lp)
        return lp.error();
    const auto rest = s.substr(lp->length);
    if (rest.empty()) {
        // The literal "<Postmaster>" (case-insensitive, RFC 5234 2.3): a
        // keyword rather than a mailbox name, so it is stored normalised.
        if (allow_postmaster && !lp->quoted && util::iequals(lp->value, "postmaster"))
            return address{"postmaster", {}};
        return errc::syntax;
    }
    if (rest.front() != '@')
        return errc::syntax;
    const auto domain = rest.substr(1);
    if (auto r = check_domain(domain); !r)
        return r.error();
    return address{std::move(lp->value), std::string(domain)};
}

// A-d-l = At-domain *( "," At-domain ); At-domain = "@" Domain.
result<void> check_source_route(std::string_view route)
{
    for (;;) {
        const auto comma = route.find(',');
        const auto at_domain = route.substr(0, comma);
        if (at_domain.empty() || at_domain.front() != '@')
            return errc::syntax;
        if (auto r = check_domain_name(at_domain.substr(1)); !r)
            return r;
        if (comma == std::string_view::npos)
            return {};
        route.remove_prefix(comma + 1);
    }
}

// Index of the '>' closing the path that opens at s[0], skipping quoted
// strings and their quoted-pairs (a quoted local part may contain '>').
std::size_t find_closing_bracket(std::string_view s) noexcept
{
    bool quoted = false;
    for (std::size_t i = 1; i < s.size(); ++i) {
        const char c = s[i];
        if (quoted) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                quoted = false;
        } else if (c == '"') {
            quoted = true;
        } else if (c == '>') {
            return i;
        }
    }
    return std::string_view::npos;
}

} // namespace

std::string address::str() const
{
    if (domain.empty())
        return local_part; // "postmaster" of "<Postmaster>"
    std::string out;
    out.reserve(local_part.size() + domain.size() + 3);
    if (is_dot_string(local_part)) {
        out += local_part;
    } else {
        // Quoted-string (RFC 5321 4.1.2): only DQUOTE and backslash need a
        // quoted-pair; everything else legal in a local part is qtextSMTP.
        out += '"';
        for (char c : local_part) {
            if (c == '"' || c == '\\')
                out += '\\';
            out += c;
        }
        out += '"';
    }
    out += '@';
    out += domain;
    return out;
}

bool address::is_ascii() const noexcept
{
    return all_ascii(local_part) && all_ascii(domain);
}

std::string path::str() const
{
    if (null)
        return "<>";
    // The source route is dropped (RFC 5321 C: relays SHOULD strip it).
    return "<" + addr.str() + ">";
}

util::result<parsed_path> parse_path(std::string_view s, path_kind kind, const parse_options& opt)
{
    if (s.empty() || s.front() != '<')
        return errc::syntax;
    const auto close = find_closing_bracket(s);
    if (close == std::string_view::npos)
        return errc::syntax;
    if (close + 1 > max_path)
        return errc::too_long;
    const auto content = s.substr(1, close - 1);

    parsed_path out;
    out.rest = s.substr(close + 1);
    if (content.empty()) {
        // Reverse-path = Path / "<>"; a Forward-path is never null.
        if (kind == path_kind::forward)
            return errc::syntax;
        out.value.null = true;
        return out;
    }
    // Invalid UTF-8 is malformed whether or not SMTPUTF8 was given.
    if (!is_valid_utf8(content))
        return errc::syntax;

    auto mailbox = content;
    if (content.front() == '@') {
        // Path = "<" [ A-d-l ":" ] Mailbox ">". The route is kept for the
        // record but ignored: the mailbox after ':' is the destination
        // (RFC 5321 C), which is what the relay check must see.
        const auto colon = content.find(':');
        if (colon == std::string_view::npos)
            return errc::syntax;
        const auto route = content.substr(0, colon);
        if (auto r = check_source_route(route); !r)
            return r.error();
        out.value.source_route = std::string(route);
        mailbox = content.substr(colon + 1);
    }
    const bool allow_postmaster = kind == path_kind::forward && out.value.source_route.empty();
    auto a = parse_mailbox(mailbox, allow_postmaster);
    if (!a)
        return a.error();
    // Checked last so a malformed path is reported as such: 8-bit octets
    // are only a policy matter once they sit where RFC 6531 3.3 allows them
    // (RFC 6531 3.5: 553 5.6.7).
    if (!opt.smtputf8 && !all_ascii(content))
        return errc::needs_smtputf8;
    out.value.addr = std::move(*a);
    return out;
}

util::result<address> parse_address(std::string_view s)
{
    // No whitespace trimming: configuration loaders trim what their format
    // allows, and anything left over is an error the user should see.
    if (!is_valid_utf8(s))
        return errc::syntax;
    return parse_mailbox(s, false);
}

bool has_routing_chars(std::string_view local_part) noexcept
{
    return local_part.find_first_of("%!@") != std::string_view::npos;
}

bool is_valid_utf8(std::string_view s) noexcept
{
    // RFC 3629 4: the UTF8-octets grammar, which excludes overlong forms,
    // surrogates and code points above U+10FFFF.
    std::size_t i = 0;
    while (i < s.size()) {
        const auto lead = static_cast<unsigned char>(s[i]);
        if (lead < 0x80) {
            ++i;
            continue;
        }
        std::size_t trail = 0;
        char32_t cp = 0;
        char32_t min = 0;
        if (lead >= 0xc2 && lead <= 0xdf) {
            trail = 1;
            cp = lead & 0x1fU;
            min = 0x80;
        } else if (lead >= 0xe0 && lead <= 0xef) {
            trail = 2;
            cp = lead & 0x0fU;
            min = 0x800;
        } else if (lead >= 0xf0 && lead <= 0xf4) {
            trail = 3;
            cp = lead & 0x07U;
            min = 0x10000;
        } else {
            return false; // continuation octet, C0/C1 overlong lead, or > U+10FFFF
        }
        if (s.size() - i - 1 < trail)
            return false; // truncated
        for (std::size_t k = 1; k <= trail; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            if ((b & 0xc0U) != 0x80U)
                return false;
            cp = (cp << 6U) | (b & 0x3fU);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += trail + 1;
    }
    return true;
}

} // namespace postern::mail
