// mime/header.hpp — the header of a message or MIME part (RFC 5322 2.2,
// 3.6; RFC 2045 3): splitting a part into header and body at the first
// blank line, listing its fields, unfolding.
// Line ends: CRLF or a bare LF (Maildir files are CRLF; LF-only files are
// tolerated). A bare CR is data. Every range returned lies inside the range
// given (never beyond the text).
// A header line that is neither a field ("name:") nor a continuation (it
// opens with SP or HTAB) belongs to the header but is no field; a leading
// continuation line (nothing to continue) likewise. Field names are matched
// ASCII case-insensitively; whitespace before the colon (RFC 5322 4.5.3
// obs-optional) is not part of the name, any other white space or control
// octet makes the line no field (an mbox "From " line, say).
// Pure; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "postern/mime/range.hpp"

namespace postern::mime {

// One line of text starting at some offset: its content [begin, content_end)
// without the line end, and where the next line starts (== content_end at
// the end of a range without a final line end).
struct line {
    std::size_t begin = 0;
    std::size_t content_end = 0;
    std::size_t next = 0;
};
// The line starting at pos, looking no further than end (pos <= end <=
// text.size(), clamped otherwise).
line line_at(std::string_view text, std::size_t pos, std::size_t end) noexcept;

// A part split at its first blank line: header holds the fields with their
// line ends (not the blank line), body starts after the blank line. Without
// a blank line the whole range is header and the body is empty at its end.
// The blank line, when present, is [header.end, body.begin).
struct header_split {
    range header;
    range body;
};
header_split split_header(std::string_view text, range part) noexcept;

// A field as stored: name without trailing whitespace, value from after the
// colon to the end of its last line (folded lines included, line end not),
// whole from the name to after the last line end.
struct field {
    range name;
    range value;
    range whole;
};

// The fields of header, in order.
std::vector<field> fields(std::string_view text, range header);
// The first field called name (case-insensitive).
std::optional<field> find_field(std::string_view text, range header, std::string_view name);

// RFC 5322 2.2.3: removes the line ends of folding (CRLF or LF followed by
// WSP), keeping the WSP. Every other CR and LF goes too: none can be part
// of an unfolded value.
std::string unfold(std::string_view value);
// The first field called name, unfolded, leading and trailing WSP removed;
// nullopt when there is no such field.
std::optional<std::string> field_value(std::string_view text, range header, std::string_view name);

} // namespace postern::mime
