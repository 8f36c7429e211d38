// mime/part.hpp — a message parsed into its MIME tree (RFC 2045, RFC 2046)
// for IMAP FETCH BODY/BODYSTRUCTURE/BODY[section] and SEARCH.
// parse() never copies a body: every part holds ranges into the message
// text, which the caller keeps alive and unchanged while it uses the tree.
// The root is the message itself; a multipart's children are its body parts
// in order; a message/rfc822 (or message/global, RFC 6532) part has one
// child, the encapsulated message, whose whole range is the part's body.
//
// Choices where mail is broken or the RFCs leave room:
// - Line ends: CRLF or bare LF. Sizes are octets as stored, lines are the
//   LF count plus one for a last line without a line end.
// - RFC 2046 5.1.1: a delimiter line is "--boundary", optional white space,
//   the line end; "--boundary--" closes. The line end before a delimiter
//   belongs to it. Preamble and epilogue belong to no part. Without a
//   closing delimiter the last part runs to the end of the enclosing body.
//   A boundary of an enclosing multipart is not recognised inside a child
//   (each multipart only sees its own body).
// - A multipart without a boundary parameter, and any multipart or
//   message/rfc822 part past the depth or part-count limit, is opaque: one
//   part without children (Dovecot's parser likewise drops the multipart
//   flag of a boundary-less part), reported as text/plain; charset=us-ascii
//   rather than as a basic body typed "multipart", which clients would take
//   for a multipart. Its body can still be fetched as one part.
// - A multipart whose boundary never appears has no children (everything is
//   preamble); bodystructure() then writes Dovecot's empty text/plain part.
// - Content-Type missing or invalid: text/plain; charset=us-ascii (RFC 2045
//   5.2), message/rfc822 directly inside multipart/digest (RFC 2046 5.1.5).
//   A text/* type without charset gets charset=us-ascii appended. The MIME-
//   Version field is not required.
// - Content-Transfer-Encoding invalid or missing: "7bit". message/rfc822
//   with a transfer encoding (RFC 2046 5.2.1 forbids it) is parsed anyway.
// Bounds: at most limits.max_depth levels below the root and
// limits.max_parts parts; recursion is bounded by max_depth. parse() does
// not fail: any octets give a tree whose ranges lie inside the message.
// Pure; any thread; the tree is a plain value.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "postern/mime/content.hpp"
#include "postern/mime/range.hpp"

namespace postern::mime {

enum class part_kind { single, multipart, message };

struct part {
    range whole;  // header, blank line and body
    range header; // the fields with their line ends, not the blank line
    range body;   // after the blank line; [header.end, body.begin) is the blank line
    part_kind kind = part_kind::single;

    // RFC 2045 5: lower-case type and subtype; params with names lower-cased,
    // values decoded (RFC 2231).
    std::string type = "text";
    std::string subtype = "plain";
    std::vector<parameter> params;
    std::string encoding = "7bit";   // RFC 2045 6, lower-case
    std::string id;                  // RFC 2045 7 Content-ID, raw (unfolded); "" when absent
    std::string description;         // RFC 2045 8, raw, encoded words not decoded
    std::string md5;                 // RFC 1864 Content-MD5
    std::string location;            // RFC 2557 4.1 Content-Location
    disposition disp;                // RFC 2183; disp.type "" when absent
    std::vector<std::string> language; // RFC 3282
    std::uint64_t lines = 0;         // of the body; counted for text/* and message/rfc822 only
    bool opaque = false;             // a composite type not parsed (see above)
    std::vector<part> children;

    std::uint64_t size() const noexcept { return body.size(); }
    bool is_text() const noexcept { return type == "text"; }
    // The header with its blank line (IMAP's HEADER and MIME sections).
    range header_and_blank() const noexcept { return {header.begin, body.begin}; }
};

struct limits {
    std::size_t max_depth = 64;    // levels below the root
    std::size_t max_parts = 10000; // parts in all (Dovecot's default too)
};

part parse(std::string_view message, const limits& lim = {});

} // namespace postern::mime
