#include "postern/mime/content.hpp"

#include <map>

#include "postern/mime/encoded_word.hpp"
#include "postern/util/strings.hpp"

namespace postern::mime {

namespace {

constexpr unsigned max_continuations = 1000; // RFC 2231 3: pieces per parameter

// RFC 2045 5.1 token: any CHAR except SPACE, CTLs and tspecials. Octets
// above 0x7F are accepted (RFC 6532 mail carries them).
bool is_token_char(char ch) noexcept
{
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f)
        return false;
    switch (c) {
    case '(': case ')': case '<': case '>': case '@': case ',': case ';': case ':':
    case '\\': case '"': case '/': case '[': case ']': case '?': case '=':
        return false;
    default:
        return true;
    }
}

// Reads a structured field value: tokens, quoted-strings, specials, with
// CFWS (RFC 5322 3.2.2) skipped between them.
class lexer {
public:
    explicit lexer(std::string_view s) noexcept : s_(s) {}

    bool done() noexcept
    {
        skip_cfws();
        return i_ >= s_.size();
    }
    bool take(char c) noexcept
    {
        skip_cfws();
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    std::optional<std::string> token()
    {
        skip_cfws();
        const std::size_t b = i_;
        while (i_ < s_.size() && is_token_char(s_[i_]))
            ++i_;
        if (i_ == b)
            return std::nullopt;
        return std::string(s_.substr(b, i_ - b));
    }
    // RFC 5322 3.2.4 quoted-string; an unterminated one runs to the end.
    std::optional<std::string> quoted()
    {
        skip_cfws();
        if (i_ >= s_.size() || s_[i_] != '"')
            return std::nullopt;
        ++i_;
        std::string out;
        while (i_ < s_.size() && s_[i_] != '"') {
            if (s_[i_] == '\\' && i_ + 1 < s_.size())
                ++i_;
            if (s_[i_] != '\r' && s_[i_] != '\n')
                out.push_back(s_[i_]);
            ++i_;
        }
        if (i_ < s_.size())
            ++i_;
        return out;
    }
    // Lenient value: everything up to the next ";", trimmed.
    std::string rest_of_value()
    {
        skip_cfws();
        const std::size_t b = i_;
        while (i_ < s_.size() && s_[i_] != ';')
            ++i_;
        return std::string(util::trim(s_.substr(b, i_ - b)));
    }
    void skip_past(char c) noexcept
    {
        while (i_ < s_.size() && s_[i_] != c)
            ++i_;
        if (i_ < s_.size())
            ++i_;
    }
    std::string_view remaining() const noexcept { return s_.substr(i_); }

private:
    // RFC 5322 3.2.2: white space, folding, nested comments with
    // quoted-pairs; an unterminated comment runs to the end.
    void skip_cfws() noexcept
    {
        while (i_ < s_.size()) {
            const char c = s_[i_];
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                ++i_;
            } else if (c == '(') {
                std::size_t depth = 0;
                while (i_ < s_.size()) {
                    const char d = s_[i_++];
                    if (d == '\\' && i_ < s_.size())
                        ++i_;
                    else if (d == '(')
                        ++depth;
                    else if (d == ')' && --depth == 0)
                        break;
                }
            } else {
                break;
            }
        }
    }

    std::string_view s_;
    std::size_t i_ = 0;
};

int hex_digit(char c) noexcept
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

// RFC 2231 4: %XX octets; a broken "%" stays as it is.
std::string percent_decode(std::string_view s)
{
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2])));
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

struct piece {
    bool extended = false;
    std::string value;
};

// One parameter name with what RFC 2231 has to say about it.
struct group {
    std::string plain;
    bool has_plain = false;
    std::map<unsigned, piece> pieces; // RFC 2231 3 "name*N" / "name*N*"
    std::optional<std::string> single_extended; // RFC 2231 4 "name*"
};

// RFC 2231 4: charset'language'octets, the octets percent-encoded.
std::string decode_extended(std::string_view v, std::string& charset, bool first)
{
    if (first) {
        const auto q1 = v.find('\'');
        const auto q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
        if (q2 != std::string_view::npos) {
            charset = std::string(v.substr(0, q1));
            v = v.substr(q2 + 1);
        }
    }
    return percent_decode(v);
}

std::string in_utf8(std::string bytes, const std::string& charset)
{
    if (charset.empty())
        return bytes;
    if (auto u = to_utf8(bytes, charset))
        return std::move(*u);
    return bytes;
}

std::string assemble(const group& g)
{
    std::string charset;
    if (g.single_extended)
        return in_utf8(decode_extended(*g.single_extended, charset, true), charset);
    std::string bytes;
    unsigned expect = 0;
    for (const auto& [index, p] : g.pieces) {
        if (index != expect)
            break; // RFC 2231 3: pieces end at the first gap
        ++expect;
        if (p.extended)
            bytes += decode_extended(p.value, charset, index == 0);
        else
            bytes += p.value;
    }
    return in_utf8(std::move(bytes), charset);
}

} // namespace

std::vector<parameter> parse_parameters(std::string_view text)
{
    lexer lx(text);
    std::vector<std::string> order;
    std::map<std::string, group> groups;
    while (!lx.done()) {
        if (lx.take(';'))
            continue;
        auto name = lx.token();
        if (!name || !lx.take('=')) {
            lx.skip_past(';');
            continue;
        }
        std::string value;
        if (auto q = lx.quoted())
            value = std::move(*q);
        else if (auto t = lx.token())
            value = std::move(*t);
        else
            value = lx.rest_of_value();

        std::string n = util::to_lower(*name);
        bool extended = false;
        if (n.size() > 1 && n.back() == '*') {
            extended = true;
            n.pop_back();
        }
        std::optional<unsigned> index;
        if (const auto star = n.rfind('*'); star != std::string::npos && star > 0) {
            const auto digits = std::string_view(n).substr(star + 1);
            if (const auto v = util::parse_uint(digits); v && digits.size() <= 4 && *v < max_continuations &&
                                                         (digits.size() == 1 || digits[0] != '0')) {
                index = static_cast<unsigned>(*v);
                n.resize(star);
            } else {
                continue; // RFC 2231 3: no leading zeros; nonsense index ignored
            }
        }
        auto [it, fresh] = groups.try_emplace(n);
        if (fresh)
            order.push_back(n);
        group& g = it->second;
        if (index) {
            g.pieces.try_emplace(*index, piece{extended, std::move(value)});
        } else if (extended) {
            if (!g.single_extended)
                g.single_extended = std::move(value);
        } else if (!g.has_plain) {
            g.plain = std::move(value);
            g.has_plain = true;
        }
    }
    std::vector<parameter> out;
    out.reserve(order.size());
    for (const auto& n : order) {
        const group& g = groups.at(n);
        if (g.single_extended || g.pieces.contains(0))
            out.push_back({n, assemble(g)});
        else if (g.has_plain)
            out.push_back({n, g.plain});
    }
    return out;
}

const std::string* find_parameter(const std::vector<parameter>& params, std::string_view name) noexcept
{
    for (const auto& p : params)
        if (util::iequals(p.name, name))
            return &p.value;
    return nullptr;
}

std::optional<content_type> parse_content_type(std::string_view value)
{
    lexer lx(value);
    auto type = lx.token();
    if (!type || !lx.take('/'))
        return std::nullopt;
    auto subtype = lx.token();
    if (!subtype)
        return std::nullopt;
    content_type ct{util::to_lower(*type), util::to_lower(*subtype), {}};
    ct.params = parse_parameters(lx.remaining());
    return ct;
}

disposition parse_disposition(std::string_view value)
{
    lexer lx(value);
    disposition d;
    if (auto t = lx.token())
        d.type = util::to_lower(*t);
    lx.skip_past(';');
    d.params = parse_parameters(lx.remaining());
    return d;
}

std::string parse_transfer_encoding(std::string_view value)
{
    lexer lx(value);
    auto t = lx.token();
    if (!t || !lx.done())
        return "7bit";
    return util::to_lower(*t);
}

std::vector<std::string> parse_language(std::string_view value)
{
    lexer lx(value);
    std::vector<std::string> out;
    while (!lx.done()) {
        if (lx.take(','))
            continue;
        if (auto t = lx.token())
            out.push_back(std::move(*t));
        else
            lx.skip_past(',');
    }
    return out;
}

} // namespace postern::mime
