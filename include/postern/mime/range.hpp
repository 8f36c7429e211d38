// mime/range.hpp — a half-open byte range [begin, end) into a message.
// The mime module never copies a body: parts, header fields and section
// results are ranges into the text the caller keeps alive (a Maildir file
// read into memory, or a mapping of it). Invariant of every range the module
// returns: begin <= end <= the size of the text it was computed from.
// slice() clamps, so a range applied to a shorter text never reads out of it.
// Pure value type; any thread.
#pragma once

#include <cstddef>
#include <string_view>

namespace postern::mime {

struct range {
    std::size_t begin = 0;
    std::size_t end = 0;

    constexpr std::size_t size() const noexcept { return end > begin ? end - begin : 0; }
    constexpr bool empty() const noexcept { return size() == 0; }
    friend constexpr bool operator==(const range&, const range&) = default;
};

// The bytes of r in text, clamped to the text.
constexpr std::string_view slice(std::string_view text, range r) noexcept
{
    const std::size_t b = r.begin < text.size() ? r.begin : text.size();
    const std::size_t e = r.end < text.size() ? r.end : text.size();
    return e > b ? text.substr(b, e - b) : std::string_view{};
}

} // namespace postern::mime
