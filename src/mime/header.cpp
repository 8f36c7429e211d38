#include "postern/mime/header.hpp"

#include "postern/util/strings.hpp"

namespace postern::mime {

namespace {

bool is_wsp(char c) noexcept
{
    return c == ' ' || c == '\t';
}

// The field that line l starts (RFC 5322 2.2: name, optional WSP per 4.5.3,
// colon), or nullopt: a name holds no WSP or control octets.
std::optional<field> field_at(std::string_view text, const line& l) noexcept
{
    const auto content = text.substr(l.begin, l.content_end - l.begin);
    const auto colon = content.find(':');
    if (colon == std::string_view::npos)
        return std::nullopt;
    std::size_t name_end = l.begin + colon;
    while (name_end > l.begin && is_wsp(text[name_end - 1]))
        --name_end;
    if (name_end == l.begin)
        return std::nullopt;
    for (std::size_t i = l.begin; i < name_end; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c <= 0x20 || c == 0x7f)
            return std::nullopt;
    }
    return field{{l.begin, name_end}, {l.begin + colon + 1, l.content_end}, {l.begin, l.next}};
}

} // namespace

line line_at(std::string_view text, std::size_t pos, std::size_t end) noexcept
{
    if (end > text.size())
        end = text.size();
    if (pos > end)
        pos = end;
    const auto nl = text.substr(0, end).find('\n', pos);
    if (nl == std::string_view::npos)
        return {pos, end, end};
    std::size_t content_end = nl;
    if (content_end > pos && text[content_end - 1] == '\r')
        --content_end;
    return {pos, content_end, nl + 1};
}

header_split split_header(std::string_view text, range part) noexcept
{
    const std::size_t end = part.end < text.size() ? part.end : text.size();
    std::size_t pos = part.begin < end ? part.begin : end;
    const std::size_t begin = pos;
    while (pos < end) {
        const line l = line_at(text, pos, end);
        if (l.content_end == l.begin && l.next > l.begin) // RFC 5322 2.1: the empty line
            return {{begin, l.begin}, {l.next, end}};
        pos = l.next;
    }
    return {{begin, end}, {end, end}};
}

std::vector<field> fields(std::string_view text, range header)
{
    std::vector<field> out;
    const std::size_t end = header.end < text.size() ? header.end : text.size();
    std::size_t pos = header.begin < end ? header.begin : end;
    bool open = false; // the last element of out may take continuation lines
    while (pos < end) {
        const line l = line_at(text, pos, end);
        pos = l.next;
        if (l.content_end > l.begin && is_wsp(text[l.begin])) {
            if (open) { // RFC 5322 2.2.3 folding
                out.back().value.end = l.content_end;
                out.back().whole.end = l.next;
            }
            continue;
        }
        auto f = field_at(text, l);
        open = f.has_value();
        if (f)
            out.push_back(*f);
    }
    return out;
}

std::optional<field> find_field(std::string_view text, range header, std::string_view name)
{
    // Scans like fields() without collecting: a header may hold thousands.
    const std::size_t end = header.end < text.size() ? header.end : text.size();
    std::size_t pos = header.begin < end ? header.begin : end;
    std::optional<field> found;
    while (pos < end) {
        const line l = line_at(text, pos, end);
        pos = l.next;
        if (l.content_end > l.begin && is_wsp(text[l.begin])) {
            if (found) {
                found->value.end = l.content_end;
                found->whole.end = l.next;
            }
            continue;
        }
        if (found)
            return found;
        if (auto f = field_at(text, l); f && util::iequals(slice(text, f->name), name))
            found = f;
    }
    return found;
}

std::string unfold(std::string_view value)
{
    std::string out;
    out.reserve(value.size());
    for (const char c : value)
        if (c != '\r' && c != '\n')
            out.push_back(c);
    return out;
}

std::optional<std::string> field_value(std::string_view text, range header, std::string_view name)
{
    const auto f = find_field(text, header, name);
    if (!f)
        return std::nullopt;
    return std::string(util::trim(unfold(slice(text, f->value))));
}

} // namespace postern::mime
