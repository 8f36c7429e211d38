#include "postern/smtp/command.hpp"

#include <array>

#include "postern/util/strings.hpp"

namespace postern::smtp {

namespace {

constexpr std::array<command_spec, 13> commands{{
    {verb::ehlo, "EHLO", arg_rule::required},
    {verb::helo, "HELO", arg_rule::required},
    {verb::mail, "MAIL", arg_rule::required},
    {verb::rcpt, "RCPT", arg_rule::required},
    {verb::data, "DATA", arg_rule::none},
    {verb::bdat, "BDAT", arg_rule::required},     // RFC 3030 2: chunk-size [LAST]
    {verb::rset, "RSET", arg_rule::none},
    {verb::noop, "NOOP", arg_rule::optional}, // RFC 5321 4.1.1.9: a parameter may be given
    {verb::quit, "QUIT", arg_rule::none},
    {verb::vrfy, "VRFY", arg_rule::required},
    {verb::help, "HELP", arg_rule::optional},
    {verb::starttls, "STARTTLS", arg_rule::none}, // RFC 3207 4: no parameters
    {verb::auth, "AUTH", arg_rule::required},     // RFC 4954 4: mechanism [initial-response]
}};

bool is_keyword(std::string_view k)
{
    if (k.empty())
        return false;
    for (std::size_t i = 0; i < k.size(); ++i) {
        char c = k[i];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(i > 0 && c == '-'))
            return false;
    }
    return true;
}

bool is_value(std::string_view v)
{
    // esmtp-value = 1*(%d33-60 / %d62-126): no '=', no SP, no controls.
    // RFC 6531 3.3 widens it to UTF-8 for SMTPUTF8; 8-bit octets pass here
    // and each parameter's own parser decides.
    if (v.empty())
        return false;
    for (unsigned char c : v)
        if (c < 33 || c == '=' || c == 127)
            return false;
    return true;
}

} // namespace

std::optional<command> parse_command(std::string_view line)
{
    auto sp = line.find(' ');
    std::string_view name = line.substr(0, sp);
    std::string_view args = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
    for (const auto& spec : commands)
        if (util::iequals(name, spec.name))
            return command{&spec, args};
    return std::nullopt;
}

util::result<std::vector<esmtp_param>> parse_params(std::string_view s)
{
    std::vector<esmtp_param> out;
    for (auto word : util::split(s, ' ')) {
        if (word.empty())
            continue; // tolerate runs of spaces, as Postfix does
        esmtp_param p;
        auto eq = word.find('=');
        p.keyword = word.substr(0, eq);
        if (eq != std::string_view::npos) {
            p.value = word.substr(eq + 1);
            p.has_value = true;
            if (!is_value(p.value))
                return util::errc::syntax;
        }
        if (!is_keyword(p.keyword))
            return util::errc::syntax;
        out.push_back(p);
    }
    return out;
}

} // namespace postern::smtp
