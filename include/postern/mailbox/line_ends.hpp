// mailbox/line_ends.hpp — messages in RFC 5322 form for the mail access
// protocols: every line ends in CRLF (RFC 5322 2.1; RFC 9051 2.3.4
// RFC822.SIZE counts "the octets in the message, as expressed in RFC 5322
// format"; RFC 1939 11: "the message is transmitted with CRLF line ends").
// postern's delivery writes CRLF, but other Maildir writers (procmail,
// maildrop, Dovecot's LDA, a migrated mailbox) write bare LF: IMAP and POP3
// turn each bare LF into CRLF as they read, and count sizes the same way.
// The one rule, here only: an LF not preceded by CR becomes CRLF; CRLF
// stays; a lone CR stays (it is no line end to add anything to).
// Pure: no I/O, any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace postern::mailbox {

// The number of bare LFs in text, i.e. the octets to_crlf() adds.
// after_cr: the octet before text (a previous chunk's last) was CR.
std::uint64_t bare_lf_count(std::string_view text, bool after_cr = false) noexcept;

// text with every bare LF turned into CRLF; returned as it came (no copy)
// when it has none, as postern's own files never do.
std::string to_crlf(std::string text);

} // namespace postern::mailbox
