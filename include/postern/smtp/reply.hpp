// smtp/reply.hpp — SMTP replies with enhanced status codes (RFC 5321 4.2,
// RFC 2034, RFC 3463). Pure formatting; the wire form always ends in CRLF.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace postern::smtp {

// "250 2.1.0 Ok\r\n"; esc may be empty (greeting, EHLO, HELP have none).
void append_reply(std::string& out, int code, std::string_view esc, std::string_view text);
std::string format_reply(int code, std::string_view esc, std::string_view text);
// Multi-line reply (RFC 5321 4.2.1): "250-a\r\n250-b\r\n250 c\r\n".
void append_multiline(std::string& out, int code, std::span<const std::string> lines);

} // namespace postern::smtp
