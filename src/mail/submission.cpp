#include "postern/mail/submission.hpp"

#include "postern/util/base64.hpp"
#include "postern/util/strings.hpp"

namespace postern::mail {

local_input::local_input(bool dot_ends, std::uint64_t max_size) : dot_ends_(dot_ends), max_size_(max_size) {}

bool local_input::feed(std::string_view bytes)
{
    for (char c : bytes) {
        if (done_)
            return false;
        if (pending_cr_) {
            pending_cr_ = false;
            end_line(); // CRLF, or a bare CR: a line end either way
            if (c == '\n')
                continue;
            if (done_)
                return false;
        }
        if (c == '\r') {
            pending_cr_ = true;
        } else if (c == '\n') {
            end_line();
        } else {
            line_ += c;
            if (line_.size() > max_line_length) {
                problem_ = input_problem::line_too_long;
                done_ = true;
            }
        }
    }
    return !done_;
}

void local_input::finish()
{
    if (done_)
        return;
    if (pending_cr_ || !line_.empty())
        end_line();
    pending_cr_ = false;
    done_ = true;
}

void local_input::end_line()
{
    if (dot_ends_ && line_ == ".") {
        ended_by_dot_ = true;
        done_ = true;
        return;
    }
    message_ += line_;
    message_ += "\r\n";
    line_.clear();
    if (message_.size() > max_size_) {
        problem_ = input_problem::too_big;
        done_ = true;
    }
}

namespace {

// RFC 5322 2.2 (and 4.5: white space before the colon): "name:" with
// printable ASCII but the colon in the name.
bool is_field_line(std::string_view line)
{
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
        return false;
    auto name = line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t'))
        name.remove_suffix(1);
    if (name.empty())
        return false;
    for (char c : name)
        if (c < 33 || c > 126)
            return false;
    return true;
}

} // namespace

std::string separate_body(std::string message)
{
    // An mbox "From " envelope line is no header field; sendmail and
    // Postfix drop it rather than send it as text.
    if (message.starts_with("From ")) {
        auto eol = message.find("\r\n");
        if (!is_field_line(std::string_view(message).substr(0, eol)))
            message.erase(0, eol == std::string::npos ? message.size() : eol + 2);
    }
    std::size_t pos = 0;
    while (pos < message.size()) {
        auto eol = message.find("\r\n", pos);
        if (eol == std::string::npos)
            eol = message.size();
        std::string_view line(message.data() + pos, eol - pos);
        if (line.empty())
            return message; // the empty line is there
        const bool continuation = pos > 0 && (line.front() == ' ' || line.front() == '\t');
        if (!continuation && !is_field_line(line)) {
            message.insert(pos, "\r\n");
            return message;
        }
        pos = eol + 2;
    }
    return message;
}

namespace {

// Splits an address-list into its items: comments dropped (nested, with
// quoted-pairs, RFC 5322 3.2.2), group names dropped (3.4: "name:" ...
// ";"), commas and semicolons outside quotes and angle brackets end items.
// False when a quote, comment or angle bracket is left open.
bool split_items(std::string_view text, std::vector<std::string>& items)
{
    std::string cur;
    bool quoted = false;
    bool angle = false;
    int comment = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (comment > 0) {
            if (c == '\\')
                ++i;
            else if (c == '(')
                ++comment;
            else if (c == ')' && --comment == 0)
                cur += ' ';
            continue;
        }
        if (quoted) {
            cur += c;
            if (c == '\\' && i + 1 < text.size())
                cur += text[++i];
            else if (c == '"')
                quoted = false;
            continue;
        }
        switch (c) {
        case '"':
            quoted = true;
            cur += c;
            break;
        case '(':
            comment = 1;
            break;
        case '<':
            angle = true;
            cur += c;
            break;
        case '>':
            angle = false;
            cur += c;
            break;
        case ':':
            if (angle)
                cur += c;
            else
                cur.clear(); // a group's display name
            break;
        case ',':
        case ';':
            if (angle) {
                cur += c;
            } else {
                items.push_back(std::move(cur));
                cur.clear();
            }
            break;
        default:
            cur += c;
        }
    }
    items.push_back(std::move(cur));
    return !quoted && !angle && comment == 0;
}

// The addr-spec of one item: inside its angle brackets when it has them
// (a source route "@a,@b:" dropped, RFC 5322 4.4), else the item itself.
std::string_view addr_spec_of(std::string_view item)
{
    bool quoted = false;
    for (std::size_t i = 0; i < item.size(); ++i) {
        if (item[i] == '\\' && quoted) {
            ++i;
        } else if (item[i] == '"') {
            quoted = !quoted;
        } else if (item[i] == '<' && !quoted) {
            auto close = item.find('>', i);
            auto spec = util::trim(item.substr(i + 1, close - i - 1));
            if (!spec.empty() && spec.front() == '@') {
                auto colon = spec.find(':');
                spec = colon == std::string_view::npos ? std::string_view{} : spec.substr(colon + 1);
            }
            return spec;
        }
    }
    return item;
}

bool has_unquoted_at(std::string_view spec)
{
    bool quoted = false;
    for (std::size_t i = 0; i < spec.size(); ++i) {
        if (spec[i] == '\\' && quoted)
            ++i;
        else if (spec[i] == '"')
            quoted = !quoted;
        else if (spec[i] == '@' && !quoted)
            return true;
    }
    return false;
}

} // namespace

address_list parse_address_list(std::string_view text, std::string_view default_domain)
{
    address_list out;
    std::vector<std::string> items;
    if (!split_items(text, items)) {
        out.bad = std::string(util::trim(text));
        return out;
    }
    for (const auto& raw : items) {
        auto item = util::trim(raw);
        if (item.empty())
            continue;
        std::string spec(addr_spec_of(item));
        if (!spec.empty() && !has_unquoted_at(spec))
            spec += "@" + std::string(default_domain);
        auto a = parse_address(spec);
        if (spec.empty() || !a) {
            out.bad = std::string(item);
            return out;
        }
        out.addresses.push_back(std::move(*a));
    }
    return out;
}

namespace {

constexpr std::size_t max_full_name = 256;   // octets kept of -F
constexpr std::size_t encoded_word_chunk = 45; // octets per RFC 2047 word: 60 base64 + 12 <= 75

bool is_continuation_byte(char c)
{
    return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

} // namespace

std::string from_field(std::string_view full_name, const address& a)
{
    std::string name;
    for (char c : full_name) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u != 0x7f)
            name += c;
    }
    if (!is_valid_utf8(name)) {
        std::string ascii;
        for (char c : name)
            if (static_cast<unsigned char>(c) < 0x80)
                ascii += c;
        name = std::move(ascii);
    }
    if (name.size() > max_full_name) {
        std::size_t cut = max_full_name;
        while (cut > 0 && is_continuation_byte(name[cut]))
            --cut;
        name.resize(cut);
    }
    name = std::string(util::trim(name));
    if (name.empty())
        return a.str();
    bool ascii = true;
    for (char c : name)
        ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    std::string display;
    if (ascii) {
        // RFC 5322 3.2.4 quoted-string: backslash and quote escaped.
        display = "\"";
        for (char c : name) {
            if (c == '"' || c == '\\')
                display += '\\';
            display += c;
        }
        display += '"';
    } else {
        // RFC 2047 2, 5(3): encoded words of whole characters, each at most
        // 75 octets, separated by white space.
        for (std::size_t pos = 0; pos < name.size();) {
            std::size_t end = std::min(name.size(), pos + encoded_word_chunk);
            while (end < name.size() && end > pos && is_continuation_byte(name[end]))
                --end;
            if (!display.empty())
                display += ' ';
            display += "=?UTF-8?B?" + util::base64_encode(std::string_view(name).substr(pos, end - pos)) + "?=";
            pos = end;
        }
    }
    return display + " <" + a.str() + ">";
}

} // namespace postern::mail
