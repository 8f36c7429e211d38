// imapd/search.hpp — SEARCH evaluation and its responses (RFC 9051 6.4.4,
// 7.3.4; IMAP4rev1 SEARCH RFC 3501 7.2.5; ESEARCH RFC 4731; SEARCHRES
// RFC 5182).
// Matching: string keys are case-insensitive substrings (ASCII letters
// folded; RFC 9051 6.4.4 leaves the method to the server) after decoding:
// header keys compare against the field values with RFC 2047 encoded words
// decoded (mime::decode_words); BODY and TEXT against the text parts'
// bodies with their Content-Transfer-Encoding (base64, quoted-printable)
// undone and converted to UTF-8 where mime::to_utf8 knows the charset.
// FROM/TO/CC/BCC/SUBJECT match when any field of that name does; HEADER
// with an empty value matches every message that has the field. Header
// keys look at the top-level header only. BODY searches the text/* parts
// anywhere in the tree (inside encapsulated messages too), not other
// types (attachments), preambles or epilogues; TEXT also every field
// ("Name: value", decoded) of the top-level header and of encapsulated
// messages' headers. A transfer encoding not known and a charset
// mime::to_utf8 does not convert leave the octets as stored (transfer.hpp).
// Dates: BEFORE/ON/SINCE use the internal date's day in UTC;
// SENTBEFORE/SENTON/SENTSINCE the Date: field's day as written (its own
// zone ignored, RFC 9051 6.4.4), a message without a parseable Date: never
// matches them. The first Date: field counts. Parsing is lenient (RFC 5322
// 3.3 and 4.3): optional day-of-week and comma, comments, any case, full
// month names, "17-Jul-1996", 2-digit years (00-49 → 20xx, 50-99 → 19xx)
// and 3-digit ones (+1900); only day, month and year must be there, so
// obsolete or missing zones and times do not matter.
// \Recent is message_info::recent; NEW is RECENT UNSEEN, OLD NOT RECENT.
// KEYWORD compares case-insensitively. "*" in a set is the largest
// sequence number or UID in the mailbox; "$" is the saved result (UIDs; a
// sequence key "$" matches the messages with those UIDs), empty when
// nothing is saved. MODSEQ keys never match (no CONDSTORE).
// Pure; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "postern/imap/command.hpp"
#include "postern/mailbox/store.hpp"

namespace postern::imapd {

struct search_context {
    std::uint32_t max_seq = 0; // messages in the view
    std::uint32_t max_uid = 0; // the largest UID in the view (0 when empty)
    const std::vector<std::uint32_t>* saved = nullptr; // "$" (RFC 5182), ascending UIDs; nullptr: none saved
};

struct search_message {
    std::size_t seq = 0;
    const mailbox::message_info* info = nullptr;
    std::string_view text; // the message as stored; only read when search_needs_text(program)
};

// Whether any key needs the message's octets (header, body or sent-date keys).
bool search_needs_text(const imap::search_key& program) noexcept;

bool search_matches(const imap::search_key& program, const search_message& m, const search_context& ctx);

// CHARSET values handled (RFC 9051 6.4.4 requires UTF-8; US-ASCII too):
// "" (none given), "UTF-8", "US-ASCII", case-insensitive. Anything else is
// answered "NO [BADCHARSET (UTF-8 US-ASCII)]" by the session.
bool search_charset_supported(std::string_view charset) noexcept;

// The untagged answer for the matching numbers (sequence numbers, or UIDs
// for UID SEARCH), ascending:
// - without RETURN: "* SEARCH 2 5 7\r\n" ("* SEARCH\r\n" when none);
// - with RETURN (RFC 4731 3.1): "* ESEARCH (TAG \"tag\") [UID] [MIN n] [MAX n]
//   [COUNT n] [ALL set]\r\n" in that order, the options asked for (an empty
//   RETURN () means ALL); MIN/MAX/ALL left out when nothing matched, COUNT 0
//   kept; SAVE alone sends no ESEARCH (RFC 5182 2.4: unless other options
//   were given with it) and returns "".
std::string search_response(std::string_view tag, const imap::search_args& args, bool uid,
                            std::span<const std::uint32_t> numbers);

// What SEARCH RETURN (... SAVE ...) keeps as "$" (RFC 5182 2.4), from the
// matching UIDs, ascending: with MIN and/or MAX alone, just those; with
// ALL or COUNT (or SAVE alone), all of them. Empty when SAVE was not asked:
// the session checks that itself, as a search without SAVE leaves "$" as
// it was, while one with SAVE and no match empties it.
std::vector<std::uint32_t> saved_result(const imap::search_args& args, std::span<const std::uint32_t> uids);

// An ascending list as a compact sequence set: {2, 5, 6, 7} → "2,5:7".
std::string compact_set(std::span<const std::uint32_t> ascending);

} // namespace postern::imapd
