#include "postern/smtp/reply_parser.hpp"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

namespace postern::smtp {

namespace {

bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

// RFC 5321 4.2: Reply-code = %x32-35 %x30-35 %x30-39. The second digit is
// taken liberally (0-9): a server that invents 26x is odd, not dangerous.
bool valid_code(std::string_view l)
{
    return l.size() >= 3 && l[0] >= '2' && l[0] <= '5' && is_digit(l[1]) && is_digit(l[2]);
}

// Control characters (CR, NUL, ESC…) become '?': reply text ends up in log
// lines and bounce messages. Tab and octets >= 0x80 (RFC 6531 UTF-8) stay.
std::string sanitise(std::string_view s)
{
    std::string out(s);
    for (auto& c : out) {
        auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && u != '\t') || u == 0x7f)
            c = '?';
    }
    return out;
}

// A short printable excerpt of an offending line, for the error text.
std::string excerpt(std::string_view l)
{
    constexpr std::size_t max = 40;
    return "\"" + sanitise(l.substr(0, max)) + (l.size() > max ? "...\"" : "\"");
}

// RFC 3463 2: status-code = class "." subject "." detail, class 2/4/5,
// subject and detail 1*3digit; RFC 2034 4: it opens the text, then SP.
std::size_t enhanced_length(std::string_view t, char reply_class)
{
    if (reply_class == '3' || t.size() < 5 || t[0] != reply_class || t[1] != '.')
        return 0;
    std::size_t i = 2;
    for (int part = 0; part < 2; ++part) {
        std::size_t digits = 0;
        while (i < t.size() && is_digit(t[i]) && digits < 4) {
            ++i;
            ++digits;
        }
        if (digits == 0 || digits > 3)
            return 0;
        if (part == 0) {
            if (i >= t.size() || t[i] != '.')
                return 0;
            ++i;
        }
    }
    if (i < t.size() && t[i] != ' ')
        return 0;
    return i;
}

} // namespace

std::string reply::text() const
{
    std::string out;
    for (const auto& l : lines) {
        std::string_view t = l;
        if (!enhanced.empty() && t.starts_with(enhanced) &&
            (t.size() == enhanced.size() || t[enhanced.size()] == ' '))
            t.remove_prefix(std::min(t.size(), enhanced.size() + 1));
        if (!out.empty())
            out.push_back(' ');
        out.append(t);
    }
    return out;
}

std::string reply::str() const
{
    std::string out = std::to_string(code);
    if (!enhanced.empty())
        out += " " + enhanced;
    auto t = text();
    if (!t.empty())
        out += " " + t;
    return out;
}

std::size_t reply_parser::consume(std::string_view in)
{
    std::size_t used = 0;
    while (status_ == status::incomplete && used < in.size()) {
        auto rest = in.substr(used);
        auto nl = rest.find('\n');
        auto take = nl == std::string_view::npos ? rest.size() : nl;
        // Room for content and its CR; the CRLF counts toward max_line.
        if (line_.size() + take + 1 > limits_.max_line) {
            used += take;
            fail("reply line longer than " + std::to_string(limits_.max_line) + " octets");
            break;
        }
        line_.append(rest.substr(0, take));
        used += take;
        if (nl == std::string_view::npos)
            break;
        ++used;
        bytes_ += line_.size() + 1;
        if (bytes_ > limits_.max_bytes) {
            fail("reply longer than " + std::to_string(limits_.max_bytes) + " octets");
            break;
        }
        end_line();
    }
    return used;
}

void reply_parser::end_line()
{
    std::string_view l = line_;
    if (!l.empty() && l.back() == '\r')
        l.remove_suffix(1);
    if (l.size() + 2 > limits_.max_line)
        return fail("reply line longer than " + std::to_string(limits_.max_line) + " octets");
    if (!valid_code(l))
        return fail("malformed reply line " + excerpt(l));
    char sep = l.size() > 3 ? l[3] : ' ';
    if (sep != ' ' && sep != '-')
        return fail("malformed reply line " + excerpt(l));
    int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
    if (!reply_.lines.empty() && code != reply_.code)
        return fail("reply code changed from " + std::to_string(reply_.code) + " to " + std::to_string(code) +
                    " within a multiline reply");
    if (reply_.lines.size() >= limits_.max_lines)
        return fail("reply longer than " + std::to_string(limits_.max_lines) + " lines");
    auto text = l.size() > 4 ? l.substr(4) : std::string_view{};
    if (reply_.lines.empty()) {
        reply_.code = code;
        if (auto n = enhanced_length(text, l[0]))
            reply_.enhanced.assign(text.substr(0, n));
    }
    reply_.lines.push_back(sanitise(text));
    line_.clear();
    if (sep == ' ')
        status_ = status::complete;
}

void reply_parser::fail(std::string why)
{
    status_ = status::error;
    error_ = std::move(why);
    line_.clear();
    line_.shrink_to_fit();
    reply_ = {};
}

reply reply_parser::take()
{
    reply r = std::move(reply_);
    reply_ = {};
    bytes_ = 0;
    if (status_ == status::complete)
        status_ = status::incomplete;
    return r;
}

void reply_parser::reset()
{
    status_ = status::incomplete;
    line_.clear();
    bytes_ = 0;
    reply_ = {};
    error_.clear();
}

} // namespace postern::smtp
