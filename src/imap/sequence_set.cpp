#include "postern/imap/sequence_set.hpp"

#include <algorithm>
#include <optional>

namespace postern::imap {

namespace {

// RFC 9051 9: seq-number = nz-number / "*"; nz-number = digit-nz *DIGIT,
// 0 < n < 4,294,967,296.
std::optional<std::uint32_t> seq_number(std::string_view s)
{
    if (s == "*")
        return seq_star;
    if (s.empty() || s.size() > 10 || s.front() == '0')
        return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (v > 0xffffffffULL)
        return std::nullopt;
    return static_cast<std::uint32_t>(v);
}

std::uint32_t value_of(std::uint32_t n, std::uint32_t star) noexcept
{
    return n == seq_star ? star : n;
}

} // namespace

util::result<sequence_set> parse_sequence_set(std::string_view s, std::size_t max_ranges)
{
    sequence_set out;
    if (s == "$") {
        out.saved = true; // RFC 5182 2.1
        return out;
    }
    if (s.empty())
        return util::errc::syntax;
    std::size_t i = 0;
    while (true) {
        auto comma = s.find(',', i);
        auto item = s.substr(i, comma == std::string_view::npos ? std::string_view::npos : comma - i);
        const auto colon = item.find(':');
        std::optional<std::uint32_t> first;
        std::optional<std::uint32_t> last;
        if (colon == std::string_view::npos) {
            first = last = seq_number(item);
        } else {
            first = seq_number(item.substr(0, colon));
            last = seq_number(item.substr(colon + 1));
        }
        if (!first || !last)
            return util::errc::syntax;
        if (out.ranges.size() >= max_ranges)
            return util::errc::limit;
        out.ranges.push_back({*first, *last});
        if (comma == std::string_view::npos)
            break;
        i = comma + 1;
    }
    return out;
}

std::vector<std::pair<std::uint32_t, std::uint32_t>> resolve(const sequence_set& s, std::uint32_t star)
{
    std::vector<std::pair<std::uint32_t, std::uint32_t>> out;
    out.reserve(s.ranges.size());
    for (const auto& r : s.ranges) {
        auto a = value_of(r.first, star);
        auto b = value_of(r.last, star);
        if (a > b)
            std::swap(a, b);
        if (b == 0)
            continue; // "*" in an empty mailbox
        out.emplace_back(std::max<std::uint32_t>(a, 1), b);
    }
    std::sort(out.begin(), out.end());
    std::vector<std::pair<std::uint32_t, std::uint32_t>> merged;
    for (const auto& r : out) {
        if (!merged.empty() && (merged.back().second == 0xffffffffU || r.first <= merged.back().second + 1))
            merged.back().second = std::max(merged.back().second, r.second);
        else
            merged.push_back(r);
    }
    return merged;
}

bool contains(const sequence_set& s, std::uint32_t n, std::uint32_t star) noexcept
{
    for (const auto& r : s.ranges) {
        auto a = value_of(r.first, star);
        auto b = value_of(r.last, star);
        if (a > b)
            std::swap(a, b);
        if (n >= a && n <= b && n != 0)
            return true;
    }
    return false;
}

} // namespace postern::imap
