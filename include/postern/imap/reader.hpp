// imap/reader.hpp — frames IMAP commands out of the client's byte stream
// (RFC 9051 2.2, 4.3 literals, 7.5 continuation requests; LITERAL+ /
// LITERAL- RFC 7888; literal8 RFC 3516; APPENDLIMIT RFC 7889).
//
// Sans-I/O: the shell feeds bytes and drains events, then parses each frame
// with imap::parse_command (command.hpp):
//   r.feed(bytes);
//   for (;;) switch (r.next()) {
//     case read_event::need_input:    read more (with a deadline), feed, loop
//     case read_event::continuation:  send continuation("Ready") now: the client waits for it
//     case read_event::command:       parse_command(r.take_command()) and run it
//     case read_event::refused:       send r.refusal().str(); the command is gone
//     case read_event::line:          r.take_line(): the raw line asked for with expect_line()
//     case read_event::line_too_long: that raw line exceeded max_line and was dropped
//   }
// A command is its first line and, after each literal marker that ends a
// line ("{n}", "{n+}", "~{n}", "~{n+}"), n octets and the next line. Lines
// end at LF; a CR before it is removed (bare-LF clients are tolerated, as
// Dovecot and Cyrus do). Empty lines between commands are ignored.
//
// Bounds — nothing is buffered without limit, and every byte is counted:
// - max_line bounds the command's text, all of its lines together, without
//   the literals. Past it the rest of the line is read and dropped, and the
//   command is refused with "tag BAD [TOOBIG]" once it ends.
// - A literal over its limit (max_append for APPEND, max_literal for any
//   other command, max_nonsync for a non-synchronizing one) refuses the
//   command: a synchronizing one at once and without the continuation
//   request, so the client never sends it (RFC 7889 4); a non-synchronizing
//   one is read and dropped first (the client sends it regardless, RFC 7888
//   4). APPEND over APPENDLIMIT is "NO [TOOBIG]" (RFC 7889 4); anything else
//   "BAD [TOOBIG]". Once a command is being dropped, its next
//   synchronizing literal ends it (the refusal goes out instead of "+").
// - max_literals bounds the literals of one command ("BAD [LIMIT]").
// - A first line without a valid tag that ends in a literal marker is
//   refused ("* BAD"), so garbage never earns a continuation request.
// The refusal is tagged with the command's tag when it has one (of at most
// 64 octets, followed by SP), else "*".
// "{n-}" is not a literal marker (RFC 7888 has none: LITERAL- only lowers
// the non-synchronizing limit); such a line ends the command and the parser
// refuses it.
//
// Raw lines: AUTHENTICATE responses (RFC 9051 6.2.2) and IDLE's DONE
// (RFC 2177 3) are not commands. After sending the "+" the session calls
// expect_line(); the next line is then returned whole by event line (no
// tag, no literals). is_done() recognises DONE, is_cancel() the "*" that
// cancels an AUTHENTICATE exchange.
//
// STARTTLS (RFC 9051 6.2.1): call discard_input() after the "OK", before
// the handshake, so pipelined plain text is never run (CVE-2011-0411).
// Call next() until need_input after every feed(): input is buffered until
// then. Thread: one reader belongs to one session.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "postern/imap/response.hpp"

namespace postern::imap {

struct reader_limits {
    // RFC 9051 4: no fixed line length; RFC 7162 4 asks servers to take at
    // least 8192 octets. Without literals.
    std::size_t max_line = 64 * 1024;
    // One literal of any command but APPEND (a mailbox name, a search
    // string, a password), and the sum of them in one command.
    std::uint64_t max_literal = 64 * 1024;
    // APPENDLIMIT (RFC 7889): the APPEND message literal.
    std::uint64_t max_append = 64ULL * 1024 * 1024;
    // Non-synchronizing literals: unlimited with LITERAL+ (RFC 7888 3),
    // 4096 with LITERAL- (RFC 7888 4). The other limits still apply.
    std::uint64_t max_nonsync = std::numeric_limits<std::uint64_t>::max();
    std::size_t max_literals = 256;
};

// One framed command, ready for parse_command().
struct frame {
    // The command's lines without their CRLF; each line but the last ends
    // with a literal marker and is followed by '\n' (never otherwise in
    // the text: lines cannot contain LF).
    std::string text;
    std::vector<std::string> literals; // the literals' octets, in order
};

enum class read_event { need_input, continuation, command, refused, line, line_too_long };

class reader {
public:
    explicit reader(reader_limits lim = {});

    void feed(std::string_view bytes);
    read_event next();

    // After event command.
    frame take_command();
    // After event refused: the response to send (tagged, or "*").
    const response& refusal() const noexcept { return refusal_; }

    // The next line is a raw continuation line (AUTHENTICATE, IDLE).
    void expect_line() noexcept { raw_ = true; }
    // After event line: the line without CRLF.
    std::string take_line();
    // "DONE", case-insensitive (RFC 2177 3 idle = "IDLE" CRLF "DONE").
    static bool is_done(std::string_view line) noexcept;
    // "*": the client cancels AUTHENTICATE (RFC 9051 6.2.2).
    static bool is_cancel(std::string_view line) noexcept { return line == "*"; }

    // STARTTLS: forget every buffered octet and any command in progress.
    void discard_input();

    // Octets held: unread input and the command being framed (for tests
    // and the log; bounded by the limits once next() has run).
    std::size_t buffered() const noexcept;
    // Octets fed so far.
    std::uint64_t bytes_in() const noexcept { return bytes_in_; }
    // A command has begun and not ended (for the log at close).
    bool mid_command() const noexcept;

    const reader_limits& limits() const noexcept { return lim_; }

private:
    enum class mode { line, literal, drop_line, drop_literal };

    bool end_of_line(std::string_view line, read_event& ev);
    void doom(status st, response_code code, std::string_view text, std::string_view first_line);
    void reset_command();
    void compact();

    reader_limits lim_;
    std::string in_;
    std::size_t pos_ = 0;
    std::uint64_t bytes_in_ = 0;

    mode mode_ = mode::line;
    bool raw_ = false;
    std::uint64_t left_ = 0;   // octets of the current literal still to come
    std::string tail_;         // last octets of a line being dropped (marker detection)

    frame cmd_;
    frame ready_;              // event command
    bool started_ = false;     // cmd_ holds a first line
    bool append_ = false;      // the command is APPEND (max_append applies)
    std::uint64_t literal_total_ = 0;
    bool doomed_ = false;      // being dropped; refusal_ goes out when it ends
    response refusal_;
    std::string line_;         // event line
};

} // namespace postern::imap
