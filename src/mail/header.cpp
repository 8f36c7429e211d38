#include "postern/mail/header.hpp"

#include "postern/util/strings.hpp"

namespace postern::mail {

bool has_header_field(std::string_view message, std::string_view name)
{
    std::size_t pos = 0;
    while (pos < message.size()) {
        auto eol = message.find('\n', pos);
        auto line = message.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        if (line.empty())
            return false; // the end of the header section
        if (line.front() != ' ' && line.front() != '\t') {
            auto colon = line.find(':');
            if (colon != std::string_view::npos) {
                auto field = line.substr(0, colon);
                while (!field.empty() && (field.back() == ' ' || field.back() == '\t'))
                    field.remove_suffix(1);
                if (util::iequals(field, name))
                    return true;
            }
        }
        if (eol == std::string_view::npos)
            break;
        pos = eol + 1;
    }
    return false;
}

} // namespace postern::mail
