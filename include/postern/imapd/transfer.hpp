// imapd/transfer.hpp — undoing a part's Content-Transfer-Encoding (RFC 2045
// 6) for FETCH BINARY (RFC 3516 4.2) and SEARCH BODY/TEXT (RFC 9051 6.4.4).
// Lenient, as bodies in the wild are sloppy, and never throws:
// - base64 (RFC 2045 6.8): characters outside the alphabet (line ends,
//   spaces, stray punctuation) are skipped, decoding stops at the first "=",
//   a last group of 2 or 3 characters gives its 1 or 2 octets, a lone
//   trailing character is dropped;
// - quoted-printable (RFC 2045 6.7): "=XX" (either case of hex) is the octet,
//   "=" then optional white space then a line end is a soft line break, any
//   other "=" is kept as it stands (rule 1's "robust implementation" advice);
//   transport padding (white space before a line end) is kept;
// - 7bit, 8bit, binary: the octets as they are.
// Any other mechanism ("x-uuencode", a typo): nullopt, the caller decides
// (RFC 3516 4.3 would answer NO [UNKNOWN-CTE]).
// Pure; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace postern::imapd {

std::string decode_base64(std::string_view body);
std::string decode_quoted_printable(std::string_view body);

// body decoded per encoding (a lower-case token, as mime::part::encoding
// holds it); nullopt for a mechanism not known.
std::optional<std::string> decode_transfer(std::string_view body, std::string_view encoding);

} // namespace postern::imapd
