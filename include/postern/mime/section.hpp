// mime/section.hpp — FETCH BODY[section] (RFC 9051 6.4.5, RFC 3501 6.4.5):
// parsing a section-spec and finding its octets in a parsed message.
// Numbering: the parts of a multipart are 1..n in order; a non-multipart
// message has only part 1, its body; the numbers after a message/rfc822
// part's own number are those of the encapsulated message (so "3.1" is the
// first part of part 3's message, or its body when that message is not
// multipart). Texts: HEADER, HEADER.FIELDS (list), HEADER.FIELDS.NOT (list)
// and TEXT apply to the message itself, or, after part numbers, to the
// message encapsulated in a message/rfc822 part (another part gives
// nothing); MIME needs part numbers and is that part's own MIME header;
// no text after part numbers is the part's body (for message/rfc822 the
// whole encapsulated message); "" is the whole message.
// Every header result includes the blank line that ends it when the message
// has one (RFC 9051 6.4.5: "except in the case of a message which has no
// body and no blank line"). HEADER.FIELDS returns the matching fields as
// stored (folded lines kept, in message order), then that blank line.
// A part that does not exist, or a text that does not apply, yields no
// ranges (the server sends ""). Partial fetches (<origin.octets>) are the
// caller's: apply them to the concatenation.
// Pure; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "postern/mime/part.hpp"
#include "postern/mime/range.hpp"

namespace postern::mime {

enum class section_text { none, header, header_fields, header_fields_not, text, mime };

struct section {
    std::vector<std::uint32_t> part; // "1.2.3" → {1, 2, 3}; empty: the message
    section_text text = section_text::none;
    std::vector<std::string> fields; // HEADER.FIELDS(.NOT) names, as given
};

// The section-spec between "[" and "]" (RFC 9051 9 "section-spec"), letters
// case-insensitive, field names as atoms or quoted strings; nullopt when it
// does not parse ("MIME" without part numbers, "0", an empty field list).
std::optional<section> parse_section(std::string_view spec);

// The part that numbers name (RFC 9051 6.4.5), or nullptr. No numbers: the
// root.
const part* find_part(const part& root, std::span<const std::uint32_t> numbers) noexcept;

// The ranges whose concatenation is the section's content, in order.
std::vector<range> section_ranges(std::string_view text, const part& root, const section& s);
// That concatenation.
std::string section_bytes(std::string_view text, const part& root, const section& s);

} // namespace postern::mime
