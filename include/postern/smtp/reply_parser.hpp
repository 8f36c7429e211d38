// smtp/reply_parser.hpp — incremental parser of SMTP server replies, for the
// client side (RFC 5321 4.2, 4.2.1; enhanced status codes RFC 2034 / 3463).
//
//   reply_parser p;
//   in_pos += p.consume(in.substr(in_pos));
//   switch (p.state()) { incomplete: read more; complete: use p.take(); error: p.error() }
//
// Invariants:
//  - bounded: a line is at most limits.max_line octets with its CRLF (RFC 5321
//    4.5.3.1.5: 512), a reply at most max_lines lines and max_bytes octets;
//    past any bound the parser stops in state error and holds no more input,
//    so a peer whose multiline reply never ends costs a fixed amount of memory;
//  - consume() never reads past the end of one reply: bytes of the next reply
//    (pipelined replies, RFC 2920) stay with the caller;
//  - lines end in CRLF or, liberally, a bare LF;
//  - every line of one reply carries the same three-digit code, and the
//    fourth octet is "-" (more lines follow), " " or the line end ("250");
//    anything else ("hello", "99 x", "2500 x") is an error;
//  - reply text is sanitised: control characters become '?', so a reply can
//    go into a log line or a bounce as it is.
// Pure; one parser per connection, reused reply after reply.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace postern::smtp {

struct reply {
    int code = 0;
    // "x.y.z" when the first line's text starts with a status code whose class
    // matches the reply code's first digit (RFC 2034 4); otherwise empty.
    std::string enhanced;
    // The text after "code-" / "code " of each line, as sent (sanitised).
    std::vector<std::string> lines;

    // All lines joined with single spaces, the enhanced code removed from
    // the start of every line that repeats it: "Recipient address rejected".
    std::string text() const;
    // "550 5.1.1 text" (enhanced omitted when absent), for logs and bounces.
    std::string str() const;
    bool positive() const noexcept { return code >= 200 && code < 300; }
    bool transient() const noexcept { return code >= 400 && code < 500; }
    bool permanent() const noexcept { return code >= 500 && code < 600; }
};

class reply_parser {
public:
    struct limits {
        std::size_t max_line = 512;    // octets per line with its CRLF
        std::size_t max_lines = 100;   // lines per reply
        std::size_t max_bytes = 65536; // octets per reply
    };
    enum class status { incomplete, complete, error };

    reply_parser() = default;
    explicit reply_parser(limits l) : limits_(l) {}

    // Consumes bytes up to and including the end of one reply; returns the
    // number used. Uses nothing while state() is complete (take() first) or
    // error (reset() first).
    std::size_t consume(std::string_view in);

    status state() const noexcept { return status_; }
    // After complete: the reply; the parser is then ready for the next one.
    reply take();
    // After error: what was wrong, for the log ("reply line too long").
    const std::string& error() const noexcept { return error_; }
    // Forgets everything (a new TLS layer, RFC 3207 4.2).
    void reset();

private:
    void end_line();
    void fail(std::string why);

    limits limits_{};
    status status_ = status::incomplete;
    std::string line_;  // the partial line, without its LF
    std::size_t bytes_ = 0;
    reply reply_;
    std::string error_;
};

} // namespace postern::smtp
