// mail/extension.hpp — address extensions ("plus-addressing"): the local part
// alice+tag split into its base (alice) and extension (tag) at the first of a
// set of delimiter characters (Postfix's recipient_delimiter, split_addr()).
// Pure: no I/O; the views returned point into the argument.
// Shared by config (alias loops through extensions, found at load) and route
// (recipient lookup), so both split an address the same way.
#pragma once

#include <optional>
#include <string_view>

namespace postern::mail {

struct extension_split {
    std::string_view base;      // before the delimiter, never empty
    std::string_view extension; // after it (may be empty: "alice+")
    char delimiter = '+';       // the delimiter found
};

// The local part split at its first delimiter character, or nullopt when it
// has none, starts with one, or delimiters is empty (extensions off).
// As Postfix's split_addr(): when '-' is a delimiter, "owner-x" and
// "x-request" (mailing-list conventions) are never split.
std::optional<extension_split> split_extension(std::string_view local_part,
                                               std::string_view delimiters) noexcept;

} // namespace postern::mail
