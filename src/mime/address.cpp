#include "postern/mime/address.hpp"

#include <cstddef>

namespace postern::mime {

namespace {

constexpr std::string_view missing_mailbox = "MISSING_MAILBOX";
constexpr std::string_view missing_domain = "MISSING_DOMAIN";

enum class tok_kind { word, quoted, literal, special };

struct token {
    tok_kind kind;
    std::string text; // word, unquoted string, "[literal]"; the character for a special
    char special = 0;
};

bool is_special(char c) noexcept
{
    switch (c) {
    case '(': case ')': case '<': case '>': case '[': case ']': case ':': case ';':
    case '@': case '\\': case ',': case '.': case '"':
        return true;
    default:
        return false;
    }
}

bool is_space(char c) noexcept
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// RFC 5322 3.2: atoms (octets above 0x7F included, RFC 6532 3.2),
// quoted-strings, domain literals, specials; CFWS dropped.
std::vector<token> tokenize(std::string_view s)
{
    std::vector<token> out;
    std::size_t i = 0;
    while (i < s.size()) {
        const char c = s[i];
        if (is_space(c) || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            ++i;
        } else if (c == '(') { // RFC 5322 3.2.2 comment, nested
            std::size_t depth = 0;
            while (i < s.size()) {
                const char d = s[i++];
                if (d == '\\' && i < s.size())
                    ++i;
                else if (d == '(')
                    ++depth;
                else if (d == ')' && --depth == 0)
                    break;
            }
        } else if (c == '"') { // RFC 5322 3.2.4
            std::string v;
            ++i;
            while (i < s.size() && s[i] != '"') {
                if (s[i] == '\\' && i + 1 < s.size())
                    ++i;
                if (s[i] != '\r' && s[i] != '\n')
                    v.push_back(s[i]);
                ++i;
            }
            if (i < s.size())
                ++i;
            out.push_back({tok_kind::quoted, std::move(v)});
        } else if (c == '[') { // RFC 5322 3.4.1 domain-literal
            std::string v(1, '[');
            ++i;
            while (i < s.size() && s[i] != ']') {
                if (s[i] == '\\' && i + 1 < s.size())
                    ++i;
                if (!is_space(s[i]))
                    v.push_back(s[i]);
                ++i;
            }
            if (i < s.size())
                ++i;
            v.push_back(']');
            out.push_back({tok_kind::literal, std::move(v)});
        } else if (is_special(c)) {
            out.push_back({tok_kind::special, std::string(1, c), c});
            ++i;
        } else {
            const std::size_t b = i;
            while (i < s.size() && !is_space(s[i]) && !is_special(s[i]) &&
                   static_cast<unsigned char>(s[i]) >= 0x20 && s[i] != 0x7f)
                ++i;
            out.push_back({tok_kind::word, std::string(s.substr(b, i - b))});
        }
    }
    return out;
}

class parser {
public:
    explicit parser(std::vector<token> t) : t_(std::move(t)) {}

    std::vector<address> run()
    {
        while (i_ < t_.size()) {
            if (is(',')) {
                ++i_;
            } else if (is(';')) {
                ++i_;
                end_group();
            } else {
                element();
            }
        }
        end_group();
        return std::move(out_);
    }

private:
    bool is(char c) const noexcept
    {
        return i_ < t_.size() && t_[i_].kind == tok_kind::special && t_[i_].special == c;
    }
    bool is_wordish() const noexcept
    {
        return i_ < t_.size() && (t_[i_].kind == tok_kind::word || t_[i_].kind == tok_kind::quoted || is('.'));
    }

    // RFC 5322 3.2.5 phrase (obs-phrase: dots allowed), words joined by one space.
    std::string phrase()
    {
        std::string out;
        for (; is_wordish(); ++i_) {
            if (is('.')) {
                out.push_back('.');
                continue;
            }
            if (!out.empty())
                out.push_back(' ');
            out += t_[i_].text;
        }
        return out;
    }
    // RFC 5322 3.4.1 local-part / domain: the pieces joined as they stand.
    std::string joined(bool domain)
    {
        std::string out;
        for (; i_ < t_.size(); ++i_) {
            const auto& t = t_[i_];
            const bool ok = t.kind == tok_kind::word || is('.') || (domain ? t.kind == tok_kind::literal
                                                                               : t.kind == tok_kind::quoted);
            if (!ok)
                break;
            out += t.text;
        }
        return out;
    }

    void emit(std::string name, std::string route, std::string mailbox, std::string host)
    {
        if (mailbox.empty())
            mailbox = missing_mailbox;
        if (host.empty())
            host = missing_domain;
        out_.push_back({address::kind::mailbox, std::move(name), std::move(route), std::move(mailbox),
                        std::move(host)});
    }
    void end_group()
    {
        if (in_group_)
            out_.push_back({address::kind::group_end, {}, {}, {}, {}});
        in_group_ = false;
    }
    // Skips what is left of a malformed element, up to "," or ";".
    void skip_junk()
    {
        while (i_ < t_.size() && !is(',') && !is(';'))
            ++i_;
    }

    // RFC 5322 3.4.1 angle-addr with RFC 5322 4.4 obs-route; i_ is past "<".
    void angle(std::string name)
    {
        std::string route;
        if (is('@')) {
            const std::size_t start = i_;
            while (i_ < t_.size() && !is(':') && !is('>'))
                route += t_[i_++].text;
            if (is(':'))
                ++i_;
            else {
                i_ = start; // "<@host>": no route after all
                route.clear();
            }
        }
        std::string local = joined(false);
        std::string host;
        if (is('@')) {
            ++i_;
            host = joined(true);
        }
        while (i_ < t_.size() && !is('>') && !is(',') && !is(';'))
            ++i_;
        if (is('>'))
            ++i_;
        emit(std::move(name), std::move(route), std::move(local), std::move(host));
        skip_junk();
    }

    void element()
    {
        const std::size_t start = i_;
        std::string words = phrase();
        if (is(':') && !in_group_ && i_ > start) { // RFC 5322 3.4 group
            ++i_;
            out_.push_back({address::kind::group_start, std::move(words), {}, {}, {}});
            in_group_ = true;
            return;
        }
        if (is('<')) {
            ++i_;
            angle(std::move(words));
            return;
        }
        if (is('@')) { // addr-spec: what we took as a phrase was the local part
            i_ = start;
            std::string local = joined(false);
            std::string host;
            if (is('@')) {
                ++i_;
                host = joined(true);
            }
            emit({}, {}, std::move(local), std::move(host));
            skip_junk();
            return;
        }
        if (i_ > start) { // a word alone: a mailbox without domain
            i_ = start;
            std::string local = joined(false); // the same tokens phrase() took
            emit({}, {}, std::move(local), {});
            skip_junk();
            return;
        }
        ++i_; // a stray special ("<" unmatched, ">", ":" in a group, ...)
    }

    std::vector<token> t_;
    std::size_t i_ = 0;
    std::vector<address> out_;
    bool in_group_ = false;
};

} // namespace

std::vector<address> parse_address_list(std::string_view value)
{
    return parser(tokenize(value)).run();
}

} // namespace postern::mime
