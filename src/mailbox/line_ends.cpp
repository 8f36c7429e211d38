#include "postern/mailbox/line_ends.hpp"

#include <cstring>

namespace postern::mailbox {

std::uint64_t bare_lf_count(std::string_view text, bool after_cr) noexcept
{
    std::uint64_t n = 0;
    const char* p = text.data();
    const char* const end = p + text.size();
    // memchr keeps the common case (long CRLF lines) at memory speed.
    while (p != end) {
        const auto* lf = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        if (lf == nullptr)
            break;
        const bool cr_before = lf == text.data() ? after_cr : lf[-1] == '\r';
        n += cr_before ? 0 : 1;
        p = lf + 1;
    }
    return n;
}

std::string to_crlf(std::string text)
{
    const auto extra = bare_lf_count(text);
    if (extra == 0)
        return text;
    std::string out;
    out.reserve(text.size() + extra);
    char prev = '\0';
    for (char c : text) {
        if (c == '\n' && prev != '\r')
            out.push_back('\r');
        out.push_back(c);
        prev = c;
    }
    return out;
}

} // namespace postern::mailbox
