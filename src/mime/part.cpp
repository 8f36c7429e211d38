#include "postern/mime/part.hpp"

#include <algorithm>

#include "postern/mime/header.hpp"
#include "postern/util/strings.hpp"

namespace postern::mime {

namespace {

bool only_wsp(std::string_view s) noexcept
{
    return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t'; });
}

std::uint64_t count_lines(std::string_view body) noexcept
{
    if (body.empty())
        return 0;
    const auto n = static_cast<std::uint64_t>(std::count(body.begin(), body.end(), '\n'));
    return body.back() == '\n' ? n : n + 1;
}

void make_opaque(part& p)
{
    p.kind = part_kind::single;
    p.type = "text";
    p.subtype = "plain";
    p.params = {{"charset", "us-ascii"}};
    p.opaque = true;
}

enum class mime_field { content_type, encoding, id, description, disposition, language, location, md5 };

struct field_spec {
    std::string_view name;
    mime_field which;
};

constexpr field_spec mime_fields[] = {
    {"content-type", mime_field::content_type},
    {"content-transfer-encoding", mime_field::encoding},
    {"content-id", mime_field::id},
    {"content-description", mime_field::description},
    {"content-disposition", mime_field::disposition},
    {"content-language", mime_field::language},
    {"content-location", mime_field::location},
    {"content-md5", mime_field::md5},
};
constexpr std::size_t mime_field_count = std::size(mime_fields);

class builder {
public:
    builder(std::string_view text, const limits& lim) noexcept : text_(text), lim_(lim) {}

    void fill(part& p, range whole, bool in_digest, std::size_t depth)
    {
        ++count_;
        p.whole = whole;
        const header_split sp = split_header(text_, whole);
        p.header = sp.header;
        p.body = sp.body;
        read_fields(p, in_digest);

        const bool room = depth < lim_.max_depth && count_ < lim_.max_parts;
        if (p.type == "multipart") {
            const std::string* boundary = find_parameter(p.params, "boundary");
            if (!boundary || boundary->empty() || !room) {
                make_opaque(p);
                p.lines = count_lines(slice(text_, p.body));
                return;
            }
            p.kind = part_kind::multipart;
            split_multipart(p, *boundary, depth);
        } else if (p.type == "message" && (p.subtype == "rfc822" || p.subtype == "global")) {
            p.lines = count_lines(slice(text_, p.body));
            if (!room) {
                make_opaque(p);
                return;
            }
            p.kind = part_kind::message;
            p.children.resize(1);
            fill(p.children.front(), p.body, false, depth + 1);
        } else if (p.is_text()) {
            p.lines = count_lines(slice(text_, p.body));
        }
    }

private:
    void read_fields(part& p, bool in_digest)
    {
        bool seen[mime_field_count] = {};
        bool have_type = false;
        for (const field& f : fields(text_, p.header)) {
            const auto name = slice(text_, f.name);
            if (!util::istarts_with(name, "content-"))
                continue;
            for (std::size_t i = 0; i < mime_field_count; ++i) {
                if (seen[i] || !util::iequals(name, mime_fields[i].name))
                    continue;
                seen[i] = true;
                const std::string value(util::trim(unfold(slice(text_, f.value))));
                switch (mime_fields[i].which) {
                case mime_field::content_type:
                    if (auto ct = parse_content_type(value)) {
                        p.type = std::move(ct->type);
                        p.subtype = std::move(ct->subtype);
                        p.params = std::move(ct->params);
                        have_type = true;
                    }
                    break;
                case mime_field::encoding:
                    p.encoding = parse_transfer_encoding(value);
                    break;
                case mime_field::id:
                    p.id = value;
                    break;
                case mime_field::description:
                    p.description = value;
                    break;
                case mime_field::disposition:
                    p.disp = parse_disposition(value);
                    break;
                case mime_field::language:
                    p.language = parse_language(value);
                    break;
                case mime_field::location:
                    p.location = value;
                    break;
                case mime_field::md5:
                    p.md5 = value;
                    break;
                }
            }
        }
        if (!have_type && in_digest) { // RFC 2046 5.1.5
            p.type = "message";
            p.subtype = "rfc822";
        } else if (p.is_text() && !find_parameter(p.params, "charset")) {
            p.params.push_back({"charset", "us-ascii"}); // RFC 2045 5.2
        }
    }

    // RFC 2046 5.1.1.
    void split_multipart(part& p, const std::string& boundary, std::size_t depth)
    {
        const std::string delimiter = "--" + boundary;
        const bool digest = p.subtype == "digest";
        const std::size_t end = p.body.end;
        std::size_t pos = p.body.begin;
        std::size_t start = 0;
        bool open = false; // a part began at start
        const std::string_view within = text_.substr(0, end);
        while (pos < end) {
            // Only lines that open with the delimiter matter: jump to them.
            const auto hit = within.find(delimiter, pos);
            if (hit == std::string_view::npos)
                break;
            if (hit != p.body.begin && text_[hit - 1] != '\n') {
                pos = hit + 1;
                continue;
            }
            const line l = line_at(text_, hit, end);
            pos = l.next;
            const auto content = text_.substr(l.begin, l.content_end - l.begin);
            if (content.size() < delimiter.size())
                continue; // a line end inside the delimiter: no delimiter line
            auto rest = content.substr(delimiter.size());
            const bool closing = rest.starts_with("--");
            if (closing)
                rest.remove_prefix(2);
            if (!only_wsp(rest))
                continue;
            if (open) {
                std::size_t part_end = l.begin; // the line end before belongs to the delimiter
                if (part_end > start && text_[part_end - 1] == '\n')
                    --part_end;
                if (part_end > start && text_[part_end - 1] == '\r')
                    --part_end;
                if (!add_child(p, {start, part_end}, digest, depth))
                    return;
            }
            if (closing)
                return; // the epilogue is no part
            open = true;
            start = l.next;
        }
        if (open) // no closing delimiter: the last part runs to the end
            add_child(p, {start, end}, digest, depth);
    }

    bool add_child(part& p, range r, bool digest, std::size_t depth)
    {
        if (count_ >= lim_.max_parts)
            return false;
        p.children.emplace_back();
        fill(p.children.back(), r, digest, depth + 1);
        return true;
    }

    std::string_view text_;
    const limits& lim_;
    std::size_t count_ = 0;
};

} // namespace

part parse(std::string_view message, const limits& lim)
{
    part root;
    builder(message, lim).fill(root, {0, message.size()}, false, 0);
    return root;
}

} // namespace postern::mime
