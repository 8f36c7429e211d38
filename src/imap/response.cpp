#include "postern/imap/response.hpp"

#include <array>
#include <utility>

namespace postern::imap {

namespace {

constexpr std::array<std::pair<response_code, std::string_view>, 22> codes{{
    {response_code::none, ""},
    {response_code::alert, "ALERT"},
    {response_code::alreadyexists, "ALREADYEXISTS"},
    {response_code::authenticationfailed, "AUTHENTICATIONFAILED"},
    {response_code::authorizationfailed, "AUTHORIZATIONFAILED"},
    {response_code::badcharset, "BADCHARSET"},
    {response_code::cannot, "CANNOT"},
    {response_code::clientbug, "CLIENTBUG"},
    {response_code::contactadmin, "CONTACTADMIN"},
    {response_code::expired, "EXPIRED"},
    {response_code::expungeissued, "EXPUNGEISSUED"},
    {response_code::inuse, "INUSE"},
    {response_code::limit, "LIMIT"},
    {response_code::nonexistent, "NONEXISTENT"},
    {response_code::noperm, "NOPERM"},
    {response_code::overquota, "OVERQUOTA"},
    {response_code::parse, "PARSE"},
    {response_code::privacyrequired, "PRIVACYREQUIRED"},
    {response_code::serverbug, "SERVERBUG"},
    {response_code::toobig, "TOOBIG"},
    {response_code::trycreate, "TRYCREATE"},
    {response_code::unavailable, "UNAVAILABLE"},
}};

// RFC 9051 9 resp-text: text = 1*TEXT-CHAR, no CR / LF (and no NUL).
void append_text(std::string& out, std::string_view text)
{
    for (char c : text)
        out += (c == '\r' || c == '\n' || c == '\0') ? ' ' : c;
}

} // namespace

std::string_view code_name(response_code c) noexcept
{
    for (const auto& [code, name] : codes)
        if (code == c)
            return name;
    return "";
}

std::string_view status_name(status s) noexcept
{
    switch (s) {
    case status::ok:
        return "OK";
    case status::no:
        return "NO";
    case status::bad:
        return "BAD";
    }
    return "BAD";
}

std::string tagged(std::string_view tag, status s, response_code c, std::string_view text)
{
    std::string out;
    out.reserve(tag.size() + text.size() + 32);
    out += tag.empty() ? std::string_view("*") : tag;
    out += ' ';
    out += status_name(s);
    if (c != response_code::none) {
        out += " [";
        out += code_name(c);
        out += ']';
    }
    out += ' ';
    // RFC 9051 9 resp-text requires text after the code; never send an
    // empty one (some clients choke on "A1 OK").
    append_text(out, text.empty() ? std::string_view(status_name(s)) : text);
    out += "\r\n";
    return out;
}

std::string untagged(status s, response_code c, std::string_view text)
{
    return tagged("*", s, c, text);
}

std::string untagged_data(std::string_view data)
{
    std::string out = "* ";
    out += data;
    out += "\r\n";
    return out;
}

std::string continuation(std::string_view text)
{
    std::string out = "+ ";
    append_text(out, text);
    out += "\r\n";
    return out;
}

} // namespace postern::imap
