// imapd/fetch.hpp — the data of one FETCH response (RFC 9051 6.4.5, 7.5.2;
// RFC 3501 6.4.5 for the RFC822* items IMAP4rev2 dropped; BINARY RFC 3516).
// Given what the store knows of a message (mailbox::message_info) and, when
// an item needs it, the message's octets, builds
//   "* <seq> FETCH (<item> <value> ...)\r\n"
// with the items in the order the client asked for them. Strings and
// literals come from mime::imap_string; ENVELOPE / BODY / BODYSTRUCTURE /
// BODY[section] from the mime module (one parse of the text per call, only
// when an item needs the tree). A partial "<origin.count>" is applied to the
// section's octets and answered as "BODY[...]<origin>" (RFC 9051 7.5.2). A
// section that does not exist is "" (RFC 9051 6.4.5).
// The session decides \Seen (fetch_sets_seen) and stores it before calling
// fetch_response with the updated message_info; options.add_flags then adds
// FLAGS when the client did not ask for it (RFC 9051 6.4.5: "the \Seen flag
// is implicitly set; if this causes the flags to change, they SHOULD be
// included as part of the FETCH responses").
// Choices where the RFCs leave room:
// - Items come in the order asked, duplicates too. Names are
//   fetch_item::name as the parser built it, "<origin>" added after a
//   partial; RFC822, RFC822.HEADER, RFC822.TEXT answer under those names.
// - A partial whose origin is at or past the end gives "" (RFC 9051 6.4.5);
//   a count past the end gives what is there.
// - INTERNALDATE's day is two digits ("01-Jan-1970", RFC 9051 9
//   date-day-fixed allows that or SP DIGIT); the zone is always +0000.
// - BINARY[part] (RFC 3516 4.2) undoes base64 and quoted-printable
//   (imapd/transfer.hpp, leniently) and goes out as a literal, literal8
//   "~{n}" only when the octets hold a NUL. BINARY[] is the whole message
//   as stored. A part that does not exist is empty ({0}, BINARY.SIZE 0). An
//   unknown encoding sends the octets as stored: RFC 3516 4.3's
//   NO [UNKNOWN-CTE] cannot be said in one FETCH response; the executor
//   asks fetch_unknown_cte() first and answers NO itself.
// - MODSEQ is never answered (no CONDSTORE, not announced); a FETCH of
//   MODSEQ alone answers "UID n" so the response is still well-formed.
// Pure; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "postern/imap/command.hpp"
#include "postern/mailbox/store.hpp"

namespace postern::imapd {

struct fetch_options {
    bool add_uid = false;   // UID FETCH / UID STORE: UID first unless asked for (RFC 9051 6.4.9)
    bool add_flags = false; // \Seen was just set: FLAGS too unless asked for
};

// Whether an item needs the message's octets (anything but FLAGS, UID,
// INTERNALDATE, RFC822.SIZE).
bool fetch_needs_text(std::span<const imap::fetch_item> items) noexcept;

// Whether the items set \Seen: BODY[...] and BINARY[...] without .PEEK,
// RFC822, RFC822.TEXT (RFC 3501 6.4.5; RFC822.HEADER is BODY.PEEK[HEADER]).
bool fetch_sets_seen(std::span<const imap::fetch_item> items) noexcept;

// Whether a BINARY[part] or BINARY.SIZE[part] item names a part whose
// Content-Transfer-Encoding is not one decode_transfer() knows: RFC 3516
// 4.3 then wants "NO [UNKNOWN-CTE]" for the whole command (the executor's
// to send). Parses text only when such an item is there.
bool fetch_unknown_cte(std::string_view text, std::span<const imap::fetch_item> items);

// "(\Seen \Flagged $Forwarded \Recent)": system flags, keywords, then
// \Recent when m.recent (RFC 9051 2.3.2 flag list).
std::string flag_list(const mailbox::message_info& m);

// RFC 9051 9 date-time, quoted: "\"17-Jul-1996 02:44:25 +0000\"" (UTC).
std::string internal_date(std::int64_t seconds_since_epoch);

// One FETCH response. text: the message as stored; ignored (may be empty)
// when !fetch_needs_text(items).
std::string fetch_response(std::size_t seq, const mailbox::message_info& m, std::string_view text,
                           std::span<const imap::fetch_item> items, fetch_options options = {});

} // namespace postern::imapd
