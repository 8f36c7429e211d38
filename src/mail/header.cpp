#include "postern/mail/header.hpp"

#include "postern/util/strings.hpp"

namespace postern::mail {

namespace {

// One physical line of the header section: its text without the line end,
// and where the next line starts.
struct header_line {
    std::string_view text;
    std::size_t next;
};

// The line at pos, or an empty text at the end of the header section (the
// empty line, or the end of the message).
header_line line_at(std::string_view message, std::size_t pos)
{
    if (pos >= message.size())
        return {{}, message.size()};
    auto eol = message.find('\n', pos);
    auto line = message.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    const std::size_t next = eol == std::string_view::npos ? message.size() : eol + 1;
    if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
    return {line, next};
}

bool is_continuation(std::string_view line)
{
    return !line.empty() && (line.front() == ' ' || line.front() == '\t');
}

// The name of the field a line starts, or nullopt-like empty when the line
// starts none (a continuation, or no colon).
std::string_view field_name(std::string_view line)
{
    if (line.empty() || is_continuation(line))
        return {};
    auto colon = line.find(':');
    if (colon == std::string_view::npos)
        return {};
    auto field = line.substr(0, colon);
    while (!field.empty() && (field.back() == ' ' || field.back() == '\t'))
        field.remove_suffix(1);
    return field;
}

// Calls f(start, end, name, first_line) for every field: [start, end) spans
// the field with its continuation lines and their line ends.
template <class F>
void for_each_field(std::string_view message, F&& f)
{
    std::size_t pos = 0;
    while (pos < message.size()) {
        auto l = line_at(message, pos);
        if (l.text.empty())
            return; // the end of the header section
        std::size_t end = l.next;
        while (end < message.size()) {
            auto c = line_at(message, end);
            if (!is_continuation(c.text))
                break;
            end = c.next;
        }
        f(pos, end, field_name(l.text));
        pos = end;
    }
}

} // namespace

bool has_header_field(std::string_view message, std::string_view name)
{
    bool found = false;
    for_each_field(message, [&](std::size_t, std::size_t, std::string_view field) {
        found = found || (!field.empty() && util::iequals(field, name));
    });
    return found;
}

std::vector<std::string> header_field_values(std::string_view message, std::string_view name)
{
    std::vector<std::string> out;
    for_each_field(message, [&](std::size_t start, std::size_t end, std::string_view field) {
        if (field.empty() || !util::iequals(field, name))
            return;
        std::string value;
        for (std::size_t pos = start; pos < end;) {
            auto l = line_at(message, pos);
            value += l.text; // unfolding: the line end goes, the white space stays
            pos = l.next;
        }
        value.erase(0, value.find(':') + 1);
        auto first = value.find_first_not_of(" \t");
        value.erase(0, first == std::string::npos ? value.size() : first);
        out.push_back(std::move(value));
    });
    return out;
}

std::string remove_header_field(std::string_view message, std::string_view name)
{
    std::string out;
    out.reserve(message.size());
    std::size_t kept = 0; // message[kept, start) is copied before each removed field
    for_each_field(message, [&](std::size_t start, std::size_t end, std::string_view field) {
        if (field.empty() || !util::iequals(field, name))
            return;
        out.append(message.substr(kept, start - kept));
        kept = end;
    });
    out.append(message.substr(kept));
    return out;
}

std::string missing_header_fields(std::string_view message, const header_completion& c)
{
    std::string added;
    if (!c.from.empty() && !has_header_field(message, "From"))
        added += "From: " + c.from + "\r\n";
    if (!c.date.empty() && !has_header_field(message, "Date"))
        added += "Date: " + c.date + "\r\n";
    if (!c.message_id.empty() && !has_header_field(message, "Message-ID"))
        added += "Message-ID: " + c.message_id + "\r\n";
    return added;
}

} // namespace postern::mail
