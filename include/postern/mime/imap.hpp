// mime/imap.hpp — the IMAP text of FETCH ENVELOPE, BODY and BODYSTRUCTURE
// (RFC 3501 7.4.2, RFC 9051 7.5.2; grammar RFC 9051 9 "envelope", "body"),
// and IMAP strings.
// Strings: a quoted string (RFC 9051 4.3, "\" and DQUOTE escaped) when the
// value has at most 1024 octets, all 7-bit, none CR, LF or NUL; otherwise a
// literal "{n}\r\n" followed by the octets — 8-bit header octets (RFC 6532
// UTF-8, or raw latin-1) and decoded RFC 2231 values therefore go out as
// literals. NUL cannot be sent in a literal (RFC 9051 4.3 CHAR8): it is
// replaced by 0x80, as Dovecot does. NIL stands for an empty nstring.
// ENVELOPE: date, subject, in-reply-to and message-id are the raw field
// values (unfolded, outer white space removed; encoded words not decoded),
// NIL when the field is absent, "" when present but empty; address lists
// are NIL when absent or empty; sender and reply-to are from's when absent
// or empty (RFC 3501 7.4.2). An address is (name route mailbox host); a
// group is (NIL NIL "name" NIL), its members, then (NIL NIL NIL NIL).
// BODYSTRUCTURE follows Dovecot's layout: parameter names lower-case, a
// text part always carries its charset, "7bit" when no encoding, NIL for
// empty body-fld-param / disposition / language / location, the language
// always as a list, no SP between the bodies of a multipart, a multipart
// without children written with one empty text/plain body. Sizes are
// octets as stored: with postern's CRLF Maildir files, what BODY[section]
// sends; an LF-only file counts one octet per line end (Dovecot would count
// the CRLF it converts to).
// Pure; any thread. text is the message the tree was parsed from.
#pragma once

#include <string>
#include <string_view>

#include "postern/mime/part.hpp"

namespace postern::mime {

// An IMAP string (quoted or literal) holding s.
std::string imap_string(std::string_view s);
// NIL for "", else imap_string(s).
std::string imap_nstring(std::string_view s);

// The ENVELOPE of a message: the root, or the child of a message/rfc822 part.
std::string envelope(std::string_view text, const part& message);

// BODY (extended = false) or BODYSTRUCTURE (extended = true) of a message
// or part: for the message, pass the root.
std::string bodystructure(std::string_view text, const part& p, bool extended);

} // namespace postern::mime
