// mail/header.hpp — questions about a message's header section (RFC 5322
// 2.2: field lines up to the first empty line; continuation lines start
// with a space or tab). Pure; the message is CRLF text as received.
#pragma once

#include <string_view>

namespace postern::mail {

// Whether the header section has a field called name (case-insensitive,
// RFC 5322 1.2.2; obsolete white space before the colon allowed, RFC 5322 4.5).
bool has_header_field(std::string_view message, std::string_view name);

} // namespace postern::mail
