// util/strings.hpp — small ASCII string helpers shared by every parser.
// All functions are pure; none allocate unless they return a std::string.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::util {

constexpr char ascii_lower(char c) noexcept
{
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
std::string to_lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b) noexcept;
bool istarts_with(std::string_view s, std::string_view prefix) noexcept;
std::string_view trim(std::string_view s) noexcept;
std::vector<std::string_view> split(std::string_view s, char sep);
// Decimal digits only, no sign, no overflow; nullopt otherwise.
std::optional<std::uint64_t> parse_uint(std::string_view s) noexcept;
// Lower-case hex of v, zero-padded to width digits.
std::string hex(std::uint64_t v, int width);

} // namespace postern::util
