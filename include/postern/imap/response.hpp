// imap/response.hpp — building IMAP status responses (RFC 9051 7.1) and
// their response codes (RFC 9051 7.1, RFC 5530, RFC 4469 / RFC 7889 TOOBIG).
// A response is "tag SP (OK / NO / BAD) [SP "[" code "]"] SP text CRLF";
// tag "*" makes it untagged, "+" a continuation request (RFC 9051 7.5).
// Texts are sanitised: CR, LF and NUL become spaces, so a reason built from
// client input can never split the line. Strings in response data use
// mime::imap_string (quoted or literal), not these helpers.
// Pure; any thread.
#pragma once

#include <string>
#include <string_view>

namespace postern::imap {

enum class status { ok, no, bad };

enum class response_code {
    none,
    alert,                // RFC 9051 7.1
    alreadyexists,        // RFC 5530 3
    authenticationfailed, // RFC 5530 3
    authorizationfailed,  // RFC 5530 3
    badcharset,           // RFC 9051 7.1 (sent bare; the shell may list charsets in the text)
    cannot,               // RFC 5530 3
    clientbug,            // RFC 5530 3
    contactadmin,         // RFC 5530 3
    expired,              // RFC 5530 3
    expungeissued,        // RFC 5530 3
    inuse,                // RFC 5530 3
    limit,                // RFC 5530 3
    nonexistent,          // RFC 5530 3
    noperm,               // RFC 5530 3
    overquota,            // RFC 5530 3
    parse,                // RFC 9051 7.1
    privacyrequired,      // RFC 5530 3
    serverbug,            // RFC 5530 3
    toobig,               // RFC 7889 4 / RFC 9051 7.1
    trycreate,            // RFC 9051 7.1
    unavailable,          // RFC 5530 3
};

// "TRYCREATE", "AUTHENTICATIONFAILED", ...; "" for none.
std::string_view code_name(response_code c) noexcept;
std::string_view status_name(status s) noexcept;

// "tag OK [CODE] text\r\n" (no brackets for response_code::none). An empty
// tag is sent as "*" (an untagged response).
std::string tagged(std::string_view tag, status s, response_code c, std::string_view text);
inline std::string tagged(std::string_view tag, status s, std::string_view text)
{
    return tagged(tag, s, response_code::none, text);
}
// "* OK [CODE] text\r\n" and friends.
std::string untagged(status s, response_code c, std::string_view text);
// "* " data "\r\n" (e.g. "CAPABILITY IMAP4rev2 ..."); data is sent as given.
std::string untagged_data(std::string_view data);
// "+ text\r\n" (RFC 9051 7.5): literal continuation, IDLE, AUTHENTICATE
// challenges (base64, or "" for an empty challenge: "+ \r\n").
std::string continuation(std::string_view text);

// A status response as a value: the reader's and parser's refusals.
struct response {
    std::string tag; // "*" untagged
    status st = status::bad;
    response_code code = response_code::none;
    std::string text;

    std::string str() const { return tagged(tag, st, code, text); }
};

} // namespace postern::imap
