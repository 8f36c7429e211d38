// mail/header.hpp — questions about a message's header section (RFC 5322
// 2.2: field lines up to the first empty line; continuation lines start
// with a space or tab), and the few edits a submission server makes to it.
// Pure; the message is CRLF text as received (bare LF is tolerated when
// reading, never produced).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace postern::mail {

// Whether the header section has a field called name (case-insensitive,
// RFC 5322 1.2.2; obsolete white space before the colon allowed, RFC 5322 4.5).
bool has_header_field(std::string_view message, std::string_view name);

// The bodies of every field called name, in order, unfolded (RFC 5322
// 2.2.3: the CRLF before each continuation line removed), without the
// field name and colon and without leading white space.
std::vector<std::string> header_field_values(std::string_view message, std::string_view name);

// The message without any field called name (its continuation lines
// included); the body is untouched.
std::string remove_header_field(std::string_view message, std::string_view name);

// What a submission server adds when the client left it out (RFC 6409
// 8.1 From:, 8.2 Date:, 8.3 Message-ID:). An empty member is never added.
struct header_completion {
    std::string from;       // the whole field body, e.g. "Alice <alice@x.test>"
    std::string date;       // RFC 5322 3.3 date-time
    std::string message_id; // with its angle brackets, "<id@host>"
};

// The field lines ("Name: value\r\n" each) to put before the message for
// the fields of c it lacks, in the order From, Date, Message-ID.
std::string missing_header_fields(std::string_view message, const header_completion& c);

} // namespace postern::mail
