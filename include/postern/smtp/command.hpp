// smtp/command.hpp — the command table (RFC 5321 4.1.1) and ESMTP parameter
// parsing (RFC 5321 4.1.2 esmtp-param). Pure.
// Dispatch is table-driven (STYLE 7, as OpenSMTPD's commands[]): one
// constexpr row per verb says its name and whether it takes arguments.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "postern/util/result.hpp"

namespace postern::smtp {

enum class verb { ehlo, helo, mail, rcpt, data, bdat, rset, noop, quit, vrfy, help, starttls, auth };

enum class arg_rule { none, optional, required };

struct command_spec {
    verb v;
    std::string_view name;
    arg_rule args;
};

struct command {
    const command_spec* spec;
    std::string_view args; // after the verb and one space; untrimmed
};

// nullopt: not a verb we know (500 5.5.1). The line excludes CRLF.
std::optional<command> parse_command(std::string_view line);

struct esmtp_param {
    std::string_view keyword; // as sent; compare with util::iequals
    std::string_view value;   // empty when the keyword has no "=value"
    bool has_value = false;
};

// Space-separated esmtp-keyword["=" esmtp-value] (RFC 5321 4.1.2). Leading
// spaces are skipped. errc::syntax for an empty keyword, a keyword that is
// not (ALPHA/DIGIT) *(ALPHA/DIGIT/"-"), or a value with '=' / control chars.
util::result<std::vector<esmtp_param>> parse_params(std::string_view s);

} // namespace postern::smtp
