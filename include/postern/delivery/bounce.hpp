// delivery/bounce.hpp — delivery status notifications (RFC 3464 multipart/report).
// build_dsn() turns the outcome of a queued message into a complete RFC 5322
// message (CRLF line ends, every line < 998 octets) addressed to the original
// envelope sender: (1) a text/plain explanation in ASCII, (2) the
// machine-readable message/delivery-status, (3) the original header section
// (text/rfc822-headers) or, with return_full, the whole message (message/rfc822).
// Invariants:
//  - Never a report to the null sender "" / "<>" (RFC 3461 5.2, RFC 5321 4.5.5),
//    nor a report without recipients: build_dsn() returns nullopt then.
//  - The caller queues the result with the null reverse-path (sender ""), so a
//    failing bounce is never bounced in turn, and delivers it like any message.
//  - Everything that came from peers (diagnostics, addresses, envid) is
//    sanitised: no CR, LF or other control character reaches a header or a
//    delivery-status field, so no header injection is possible.
//  - The MIME boundary provably occurs nowhere in the body it delimits.
//  - Copies are bounded: header_limit for the header section, return_limit
//    for a full message (larger → headers only). The original may be
//    malformed (no separator, bare CR/LF, NUL bytes); it is never parsed as
//    MIME, so nesting depth costs nothing, and every loop is linear in its size.
// Non-ASCII addresses (SMTPUTF8): the report keeps message/delivery-status
// (7-bit, readable by every parser) and writes such an address with the RFC
// 6533 "utf-8" address type in its utf-8-addr-xtext form ("\x{E4}"), which
// RFC 6533 prescribes for message/delivery-status; message/global-delivery-
// status is not used. Only the To: header carries the sender in raw UTF-8
// (RFC 6532); the part 3 copy keeps the original's octets (8bit if any).
// The result is 8-bit when the sender or the copied original is: queue it
// with smtputf8 / eight_bit accordingly (dsn_is_eight_bit()).
// Thread: pure functions, no I/O, no clock reads; callable from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "postern/util/clock.hpp"

namespace postern::delivery {

// RFC 3464 2.3.3.
enum class dsn_action { failed, delayed, delivered, relayed, expanded };
// Its name in an Action: field ("failed", "delayed", …).
std::string_view action_name(dsn_action a);

struct dsn_recipient {
    // The address as accepted ("user@example.net"); written as "rfc822; addr",
    // or "utf-8; addr-xtext" when non-ASCII (RFC 6533). A value that already
    // names its type ("rfc822;addr") is kept as given.
    std::string final_recipient;
    std::string original_recipient; // ORCPT if known (decoded, typed or bare); may be empty
    dsn_action action = dsn_action::failed;
    std::string status;     // "5.1.1" (RFC 3463; expiry: failed + "4.4.7"); empty or
                            // invalid → the diagnostic's enhanced code, else X.0.0 by action
    std::string remote_mta; // "dns; mx.example.net", a bare host name, or empty
    std::string diagnostic; // peer reply, "550 5.1.1 user unknown" → "Diagnostic-Code: smtp; ..."
                            // (text that is no SMTP reply → "x-postern; ...")
    std::int64_t last_attempt = 0;     // unix seconds, 0 = omit
    std::int64_t will_retry_until = 0; // unix seconds, delayed only, 0 = omit
};

struct bounce_input {
    std::string reporting_mta;    // our host name
    std::string original_sender;  // envelope sender of the message ("" = <> → no report)
    std::string original_id;      // queue id
    std::int64_t arrival_date = 0; // received_at, unix seconds (0 = omit)
    std::string original_message; // the queued message (headers + body, CRLF)
    std::vector<dsn_recipient> recipients;
    bool return_full = false; // RET=FULL: message/rfc822; default: text/rfc822-headers
    std::string envid;        // ENVID (decoded from xtext), optional
    std::size_t header_limit = 64 * 1024;        // octets of header section copied
    std::size_t return_limit = 10 * 1024 * 1024; // larger originals → headers only
};

// The report, or nullopt when none may be sent (null sender, no recipients).
// message_id_unique makes the Message-ID <unique@reporting_mta> and seeds the
// boundary (pass the bounce's new queue id).
std::optional<std::string> build_dsn(const bounce_input& in, util::time_point now,
                                     std::string_view message_id_unique);

// True when a report holds octets >= 0x80 (UTF-8 sender, 8-bit original):
// queue it with eight_bit (and smtputf8 when the sender is non-ASCII).
bool dsn_is_eight_bit(std::string_view report) noexcept;

} // namespace postern::delivery
