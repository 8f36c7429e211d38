#include "postern/smtp/reply.hpp"

#include <charconv>

namespace postern::smtp {

namespace {

void append_code(std::string& out, int code, char sep)
{
    char buf[4];
    auto [end, ec] = std::to_chars(buf, buf + 3, code);
    (void)ec;
    out.append(buf, static_cast<std::size_t>(end - buf));
    out.push_back(sep);
}

} // namespace

void append_reply(std::string& out, int code, std::string_view esc, std::string_view text)
{
    append_code(out, code, ' ');
    if (!esc.empty()) {
        out.append(esc);
        out.push_back(' ');
    }
    out.append(text);
    out.append("\r\n");
}

std::string format_reply(int code, std::string_view esc, std::string_view text)
{
    std::string out;
    append_reply(out, code, esc, text);
    return out;
}

void append_multiline(std::string& out, int code, std::span<const std::string> lines)
{
    for (std::size_t i = 0; i < lines.size(); ++i) {
        append_code(out, code, i + 1 == lines.size() ? ' ' : '-');
        out.append(lines[i]);
        out.append("\r\n");
    }
}

} // namespace postern::smtp
