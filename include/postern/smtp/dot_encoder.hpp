// smtp/dot_encoder.hpp — the client side of DATA transparency (RFC 5321
// 4.5.2): a '.' that opens a line is doubled and the message ends in
// <CRLF>.<CRLF>. The inverse of data_reader.
//
// Invariants (DESIGN promise 4, seen from the sending side):
//  - the output contains CR and LF only as CRLF (RFC 5321 2.3.8): a bare LF
//    or a bare CR in the input is sent as CRLF, so whatever the message holds
//    we never emit "<LF>.<LF>" or a lone CR that a liberal server could take
//    for an end of data (SMTP smuggling, CVE-2023-51764/5/6). Stored
//    messages already have CRLF line ends; for them the output is exactly the
//    stuffed input;
//  - the terminator is ".\r\n" after the last line's CRLF; a CRLF is added
//    first when the message does not end with one; an empty message becomes
//    ".\r\n" alone.
// Line length (1000 octets, RFC 5321 4.5.3.1.6) is not this codec's business.
// Pure; a dot_encoder object belongs to one message.
#pragma once

#include <string>
#include <string_view>

namespace postern::smtp {

// Appends the encoded message and the terminator to out.
void dot_encode(std::string_view message, std::string& out);

// The same, in pieces: encode() any split of the message, then finish() once.
// The output equals dot_encode() of the concatenated pieces.
class dot_encoder {
public:
    void encode(std::string_view chunk, std::string& out);
    void finish(std::string& out);

private:
    bool bol_ = true;   // the next octet opens a line
    bool cr_ = false;   // the last octet was a CR whose LF has not come yet
};

} // namespace postern::smtp
