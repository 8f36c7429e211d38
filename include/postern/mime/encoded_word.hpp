// mime/encoded_word.hpp — RFC 2047 encoded-words ("=?charset?B?...?=",
// "=?charset?Q?...?=") decoded to UTF-8, for IMAP SEARCH (RFC 9051 6.4.4:
// header and body text are compared after decoding), and the small charset
// conversion both RFC 2047 and RFC 2231 need.
// Charsets converted: utf-8, us-ascii (bytes kept), iso-8859-1 / latin1 and
// its aliases (by hand, each octet to its code point). An encoded word in any
// other charset, or one that does not decode, is left as it stands. Decoding
// is lenient where mail is: encoded words are recognised inside words too
// (as Dovecot does, though RFC 2047 5 wants them delimited), the 75-octet
// limit is not enforced (1024 is), B text may lack its padding.
// RFC 2047 6.2: whitespace (folding included) that separates two encoded
// words is dropped, so a word split across encoded words joins up.
// Pure; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace postern::mime {

// A header value (folded or not) with every encoded word it holds decoded;
// line breaks of folding removed (RFC 5322 2.2.3), other text unchanged.
std::string decode_words(std::string_view value);

// bytes in charset (name case-insensitive, RFC 2231 language suffix
// "charset*lang" not included) as UTF-8; nullopt for a charset not handled.
// utf-8 and us-ascii bytes are passed through unchanged.
std::optional<std::string> to_utf8(std::string_view bytes, std::string_view charset);

} // namespace postern::mime
