#include "postern/smtp/dot_encoder.hpp"

namespace postern::smtp {

void dot_encoder::encode(std::string_view chunk, std::string& out)
{
    std::size_t i = 0;
    while (i < chunk.size()) {
        char c = chunk[i];
        if (cr_) {
            cr_ = false;
            out.append("\r\n"); // CRLF, or a bare CR sent as CRLF
            bol_ = true;
            if (c == '\n') {
                ++i;
                continue;
            }
        }
        if (c == '\r') {
            cr_ = true;
            ++i;
            continue;
        }
        if (c == '\n') { // a bare LF
            out.append("\r\n");
            bol_ = true;
            ++i;
            continue;
        }
        if (bol_ && c == '.')
            out.push_back('.');
        bol_ = false;
        // The rest of the line up to the next CR or LF goes in one append.
        auto end = chunk.find_first_of("\r\n", i);
        if (end == std::string_view::npos)
            end = chunk.size();
        out.append(chunk.substr(i, end - i));
        i = end;
    }
}

void dot_encoder::finish(std::string& out)
{
    if (cr_) {
        out.append("\r\n");
        cr_ = false;
        bol_ = true;
    }
    if (!bol_)
        out.append("\r\n");
    out.append(".\r\n");
    bol_ = true;
}

void dot_encode(std::string_view message, std::string& out)
{
    out.reserve(out.size() + message.size() + message.size() / 512 + 5);
    dot_encoder e;
    e.encode(message, out);
    e.finish(out);
}

} // namespace postern::smtp
