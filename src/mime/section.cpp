#include "postern/mime/section.hpp"

#include "postern/mime/header.hpp"
#include "postern/util/strings.hpp"

namespace postern::mime {

namespace {

// RFC 9051 6.4.5: part n inside message m (the root or an encapsulated one).
const part* in_message(const part& m, std::uint32_t n) noexcept
{
    if (m.kind == part_kind::multipart)
        return n >= 1 && n <= m.children.size() ? &m.children[n - 1] : nullptr;
    return n == 1 ? &m : nullptr;
}

// Part n inside part p.
const part* in_part(const part& p, std::uint32_t n) noexcept
{
    switch (p.kind) {
    case part_kind::multipart:
        return n >= 1 && n <= p.children.size() ? &p.children[n - 1] : nullptr;
    case part_kind::message:
        return p.children.empty() ? nullptr : in_message(p.children.front(), n);
    case part_kind::single:
        return nullptr;
    }
    return nullptr;
}

struct text_spec {
    std::string_view word;
    section_text text;
};

// Longest first: "HEADER" is a prefix of the others.
constexpr text_spec texts[] = {
    {"HEADER.FIELDS.NOT", section_text::header_fields_not},
    {"HEADER.FIELDS", section_text::header_fields},
    {"HEADER", section_text::header},
    {"TEXT", section_text::text},
    {"MIME", section_text::mime},
};

// RFC 9051 9 header-list: "(" header-fld-name *(SP header-fld-name) ")",
// names as astrings (atoms or quoted strings here; no literals).
bool parse_field_list(std::string_view s, std::vector<std::string>& out)
{
    if (s.empty() || s.front() != '(' || s.back() != ')')
        return false;
    s = s.substr(1, s.size() - 2);
    std::size_t i = 0;
    while (i < s.size()) {
        if (s[i] == ' ') {
            ++i;
            continue;
        }
        std::string name;
        if (s[i] == '"') {
            ++i;
            while (i < s.size() && s[i] != '"') {
                if (s[i] == '\\' && i + 1 < s.size())
                    ++i;
                name.push_back(s[i++]);
            }
            if (i >= s.size())
                return false;
            ++i;
        } else {
            while (i < s.size() && s[i] != ' ') {
                const char c = s[i];
                if (c == '(' || c == ')' || c == '"' || c == '{' || static_cast<unsigned char>(c) < 0x21 ||
                    static_cast<unsigned char>(c) > 0x7e)
                    return false;
                name.push_back(s[i++]);
            }
        }
        if (name.empty())
            return false;
        out.push_back(std::move(name));
    }
    return !out.empty();
}

bool listed(std::string_view name, const std::vector<std::string>& names) noexcept
{
    for (const auto& n : names)
        if (util::iequals(name, n))
            return true;
    return false;
}

void header_fields(std::string_view text, const part& m, const section& s, std::vector<range>& out)
{
    const bool want = s.text == section_text::header_fields;
    for (const field& f : fields(text, m.header))
        if (listed(slice(text, f.name), s.fields) == want) {
            if (!out.empty() && out.back().end == f.whole.begin)
                out.back().end = f.whole.end; // neighbours: one range
            else
                out.push_back(f.whole);
        }
    if (m.body.begin > m.header.end)
        out.push_back({m.header.end, m.body.begin}); // the blank line
}

} // namespace

std::optional<section> parse_section(std::string_view spec)
{
    section s;
    while (!spec.empty() && spec.front() >= '0' && spec.front() <= '9') {
        const auto dot = spec.find('.');
        const auto digits = spec.substr(0, dot);
        const auto n = util::parse_uint(digits);
        if (!n || *n == 0 || *n > 0xffffffffU || digits.front() == '0')
            return std::nullopt; // RFC 9051 9 nz-number
        s.part.push_back(static_cast<std::uint32_t>(*n));
        if (dot == std::string_view::npos)
            return s;
        spec.remove_prefix(dot + 1);
        if (spec.empty())
            return std::nullopt;
    }
    if (spec.empty())
        return s;
    for (const auto& t : texts) {
        if (!util::istarts_with(spec, t.word))
            continue;
        auto rest = spec.substr(t.word.size());
        s.text = t.text;
        switch (t.text) {
        case section_text::header_fields:
        case section_text::header_fields_not:
            if (rest.empty() || rest.front() != ' ' || !parse_field_list(rest.substr(1), s.fields))
                return std::nullopt;
            return s;
        case section_text::mime:
            if (s.part.empty())
                return std::nullopt; // RFC 9051 9 section-text: MIME only after numbers
            return rest.empty() ? std::optional<section>(s) : std::nullopt;
        case section_text::header:
        case section_text::text:
        case section_text::none:
            return rest.empty() ? std::optional<section>(s) : std::nullopt;
        }
    }
    return std::nullopt;
}

const part* find_part(const part& root, std::span<const std::uint32_t> numbers) noexcept
{
    if (numbers.empty())
        return &root;
    const part* p = in_message(root, numbers.front());
    for (std::size_t i = 1; p && i < numbers.size(); ++i)
        p = in_part(*p, numbers[i]);
    return p;
}

std::vector<range> section_ranges(std::string_view text, const part& root, const section& s)
{
    const part* p = find_part(root, s.part);
    if (!p)
        return {};
    // The message that HEADER/TEXT refer to.
    const part* m = s.part.empty() ? &root
                  : (p->kind == part_kind::message && !p->children.empty()) ? &p->children.front()
                                                                              : nullptr;
    std::vector<range> out;
    switch (s.text) {
    case section_text::none:
        out.push_back(s.part.empty() ? root.whole : p->body);
        break;
    case section_text::mime:
        out.push_back(p->header_and_blank());
        break;
    case section_text::header:
        if (m)
            out.push_back(m->header_and_blank());
        break;
    case section_text::text:
        if (m)
            out.push_back(m->body);
        break;
    case section_text::header_fields:
    case section_text::header_fields_not:
        if (m)
            header_fields(text, *m, s, out);
        break;
    }
    std::erase_if(out, [](const range& r) { return r.empty(); });
    return out;
}

std::string section_bytes(std::string_view text, const part& root, const section& s)
{
    std::string out;
    for (const range& r : section_ranges(text, root, s))
        out += slice(text, r);
    return out;
}

} // namespace postern::mime
