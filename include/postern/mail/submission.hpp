// mail/submission.hpp — the pure parts of local submission (`postern
// sendmail`): turning what a local program writes on standard input into
// a CRLF message, reading recipients out of its header fields (-t), and the
// From: field a submission server adds (RFC 6409 8.1).
// Pure: no I/O; the caller reads stdin in chunks and feeds them.
//
// Line ends: local programs end lines with a bare LF (the Unix convention),
// and sendmail(8) has always accepted them; the queue holds RFC 5322 text
// only (CRLF line ends, DESIGN promise 4), so every LF becomes CRLF, an
// existing CRLF stays, and a bare CR (old Mac text, or an attempt to smuggle
// one past SMTP's end of data) also becomes a line end: nothing we queue
// holds a bare CR or LF.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "postern/mail/address.hpp"

namespace postern::mail {

// RFC 5322 2.1.1: a line is at most 998 characters without its CRLF.
constexpr std::size_t max_line_length = 998;

enum class input_problem { none, too_big, line_too_long };

class local_input {
public:
    // dot_ends: a line holding a single "." ends the input (sendmail's
    // default; -i / -oi turn it off). max_size: the message limit in octets
    // (limits.message_size), counted after CRLF conversion.
    local_input(bool dot_ends, std::uint64_t max_size);

    // Feeds bytes as read; returns false once no more input is wanted: the
    // "." line was seen, or a limit was exceeded (problem()). Bytes after
    // the "." line are ignored, as sendmail does.
    bool feed(std::string_view bytes);
    // The end of the input: a last line without a line end is kept.
    void finish();

    input_problem problem() const noexcept { return problem_; }
    bool ended_by_dot() const noexcept { return ended_by_dot_; }
    // The message so far, CRLF line ends, not dot-stuffed.
    std::string& message() noexcept { return message_; }

private:
    void end_line();

    bool dot_ends_;
    std::uint64_t max_size_;
    std::string line_; // the current line, without its end
    bool pending_cr_ = false; // the last byte fed was a CR (a CRLF may be split across feeds)
    std::string message_;
    input_problem problem_ = input_problem::none;
    bool ended_by_dot_ = false;
    bool done_ = false;
};

// RFC 5322 2.1: a message is a header section, an empty line, a body. Text
// from a local program may start with the body (`echo hi | sendmail bob`)
// or leave the header section without its empty line: the first line that
// is neither a header field (RFC 5322 2.2 field name, colon) nor a
// continuation starts the body, and an empty line is put before it.
std::string separate_body(std::string message);

// An address-list (RFC 5322 3.4: mailboxes and groups, display names,
// comments, angle addresses) as addresses. An address without '@' (an
// unqualified local name, as sendmail accepts) gets "@" + default_domain.
// Empty groups ("undisclosed-recipients:;") give nothing.
struct address_list {
    std::vector<address> addresses;
    std::string bad; // the first item that is no address; empty when all parsed
};
address_list parse_address_list(std::string_view text, std::string_view default_domain);

// The body of the From: field added to a message that has none: the
// address, with full_name as its display name (RFC 5322 3.4: a quoted
// string, or RFC 2047 encoded words for non-ASCII UTF-8). Control
// characters in full_name are dropped (no header injection).
std::string from_field(std::string_view full_name, const address& a);

} // namespace postern::mail
