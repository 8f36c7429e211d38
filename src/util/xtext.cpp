#include "postern/util/xtext.hpp"

namespace postern::util {

namespace {

bool is_xchar(unsigned char c) noexcept
{
    return c >= 33 && c <= 126 && c != '+' && c != '=';
}

int hex_value(char c) noexcept
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

} // namespace

std::string xtext_encode(std::string_view octets)
{
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(octets.size());
    for (unsigned char c : octets) {
        if (is_xchar(c)) {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('+');
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 15]);
        }
    }
    return out;
}

result<std::string> xtext_decode(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c == '+') {
            int hi = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
            int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return errc::syntax;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (is_xchar(c)) {
            out.push_back(static_cast<char>(c));
        } else {
            return errc::syntax;
        }
    }
    return out;
}

} // namespace postern::util
