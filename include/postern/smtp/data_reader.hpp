// smtp/data_reader.hpp — the DATA codec (RFC 5321 4.5.2 transparency, 4.1.1.4).
// Consumes the bytes after "354" and yields the unstuffed message. The same
// reader takes the chunks of BDAT (RFC 3030), where the session counts the
// octets: framing::chunks applies the line rules below without dot
// unstuffing or an end marker; framing::binary (BODY=BINARYMIME) takes any
// octets and checks only the size.
//
// Invariants (DESIGN promise 4):
//  - the end of data is <CRLF>.<CRLF> and nothing else; bare LF and bare CR
//    never end a line, so "<LF>.<LF>", "<CR>.<CR>", "<LF>.<CRLF>" and
//    "<CR><LF>.<LF>" are message content, not an end (SMTP smuggling,
//    CVE-2023-51764/5/6). The reader keeps going to the real end, so the
//    session never desynchronises, and flags the message so it is refused;
//  - a line longer than 1000 octets with its CRLF (RFC 5321 4.5.3.1.6) is flagged;
//  - past the size limit nothing more is stored (memory stays bounded) but
//    the input is still consumed to the end.
// Pure; one reader per transaction.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace postern::smtp {

// How the message arrives: DATA (dot-stuffed, ends at CRLF.CRLF) or BDAT
// chunks of text (7BIT / 8BITMIME) or of binary content.
enum class framing { dot_stuffed, chunks, binary };

class data_reader {
public:
    explicit data_reader(std::uint64_t max_size, framing f = framing::dot_stuffed)
        : max_size_(max_size), framing_(f) {}

    // Consumes from in; returns the number of bytes used. When done() turns
    // true the final "." CRLF has been consumed and bytes after it were not.
    // With chunks and binary framing every byte is used and done() stays false.
    std::size_t consume(std::string_view in);

    // BDAT LAST (RFC 3030): the chunks are over. Text chunks: a CR still
    // waiting for its LF is a bare CR, and a last line without CRLF is ended
    // with one (as Postfix, which stores lines, ends it), so a text message
    // always ends in CRLF. Binary content is kept as it came. done() after.
    void end_chunks();

    bool done() const noexcept { return state_ == state::done; }
    bool bare_cr() const noexcept { return bare_cr_; }
    bool bare_lf() const noexcept { return bare_lf_; }
    bool line_too_long() const noexcept { return long_line_; }
    bool too_big() const noexcept { return too_big_; }
    bool ok() const noexcept { return !bare_cr_ && !bare_lf_ && !long_line_ && !too_big_; }
    // Octets of message content seen (after unstuffing), also past the limit.
    std::uint64_t size() const noexcept { return size_; }

    // The unstuffed message with its CRLF line ends. Meaningful when ok().
    std::string& body() noexcept { return body_; }

private:
    enum class state { bol, mid, cr, dot, dot_cr, done };
    void emit(std::string_view s);
    void count_line(std::size_t n);

    std::uint64_t max_size_;
    framing framing_;
    std::uint64_t size_ = 0;
    std::size_t line_len_ = 0;
    state state_ = state::bol;
    bool bare_cr_ = false, bare_lf_ = false, long_line_ = false, too_big_ = false;
    std::string body_;
};

} // namespace postern::smtp
