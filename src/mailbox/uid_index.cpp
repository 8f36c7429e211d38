#include "postern/mailbox/uid_index.hpp"

#include <algorithm>
#include <limits>
#include <optional>
#include <unordered_set>

#include "postern/mailbox/lock.hpp"
#include "postern/util/atomic_write.hpp"
#include "postern/util/error.hpp"
#include "postern/util/strings.hpp"

namespace postern::mailbox {

namespace {

constexpr std::string_view version_line = "postern-uidlist 2";
constexpr std::string_view version1_line = "postern-uidlist 1"; // no size field
constexpr std::string_view magic = "postern-uidlist ";
constexpr std::string_view unknown_size = "-";

// A decimal uid or UIDVALIDITY: 1..2^32-1 (RFC 9051 9 nz-number).
std::optional<std::uint32_t> parse_nz32(std::string_view s) noexcept
{
    const auto v = util::parse_uint(s);
    if (!v || *v == 0 || *v > std::numeric_limits<std::uint32_t>::max())
        return std::nullopt;
    return static_cast<std::uint32_t>(*v);
}

// "<key> <number>" → the number.
std::optional<std::uint32_t> keyed_number(std::string_view line, std::string_view key) noexcept
{
    if (line.size() <= key.size() + 1 || line.substr(0, key.size()) != key || line[key.size()] != ' ')
        return std::nullopt;
    return parse_nz32(line.substr(key.size() + 1));
}

// Splits text into lines; false when the text does not end in '\n' or a
// line is too long.
bool lines_of(std::string_view text, std::vector<std::string_view>& out)
{
    while (!text.empty()) {
        const auto eol = text.find('\n');
        if (eol == std::string_view::npos || eol > max_index_line)
            return false;
        out.push_back(text.substr(0, eol));
        text.remove_prefix(eol + 1);
    }
    return true;
}

util::result<index_entry> decode_entry(std::string_view line, std::uint32_t after, std::uint32_t uidnext,
                                       bool has_size)
{
    auto fields = util::split(line, ' ');
    const std::size_t fixed = has_size ? 3 : 2;
    if (fields.size() < fixed || fields.size() > fixed + max_keywords)
        return util::errc::corrupt;
    index_entry e;
    const auto uid = parse_nz32(fields[0]);
    if (!uid || *uid <= after || *uid >= uidnext || !valid_unique(fields[1]))
        return util::errc::corrupt;
    e.uid = *uid;
    e.unique = std::string(fields[1]);
    if (has_size && fields[2] != unknown_size) {
        e.size = util::parse_uint(fields[2]);
        if (!e.size)
            return util::errc::corrupt;
    }
    for (std::size_t i = fixed; i < fields.size(); ++i) {
        if (!valid_keyword(fields[i]))
            return util::errc::corrupt;
        e.keywords.emplace_back(fields[i]);
    }
    return e;
}

} // namespace

bool valid_unique(std::string_view unique) noexcept
{
    if (unique.empty() || unique.size() > max_unique || unique.front() == '.')
        return false;
    return std::none_of(unique.begin(), unique.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f || c == '/' || c == ':';
    });
}

bool valid_keyword(std::string_view keyword) noexcept
{
    // RFC 9051 9: atom = 1*ATOM-CHAR; ATOM-CHAR excludes atom-specials
    // "(" ")" "{" SP CTL list-wildcards quoted-specials resp-specials;
    // a flag-keyword is an atom, so never "\"-prefixed.
    constexpr std::string_view specials = "(){%*\"\\]";
    if (keyword.empty() || keyword.size() > max_keyword)
        return false;
    return std::none_of(keyword.begin(), keyword.end(), [&](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u >= 0x7f || specials.find(c) != std::string_view::npos;
    });
}

std::string encode_index(const uid_index& index)
{
    std::string out;
    out.reserve(64 + index.entries.size() * 48);
    out += version_line;
    out += "\nuidvalidity " + std::to_string(index.uidvalidity);
    out += "\nuidnext " + std::to_string(index.uidnext) + "\n";
    for (const auto& e : index.entries) {
        out += std::to_string(e.uid);
        out += ' ';
        out += e.unique;
        out += ' ';
        out += e.size ? std::to_string(*e.size) : std::string(unknown_size);
        for (const auto& k : e.keywords) {
            out += ' ';
            out += k;
        }
        out += '\n';
    }
    return out;
}

util::result<uid_index> decode_index(std::string_view text)
{
    std::vector<std::string_view> lines;
    if (!lines_of(text, lines) || lines.size() < 3)
        return util::errc::corrupt;
    const bool has_size = lines[0] == version_line;
    if (!has_size && lines[0] != version1_line)
        return lines[0].substr(0, magic.size()) == magic ? util::errc::unsupported_version : util::errc::corrupt;
    uid_index index;
    const auto validity = keyed_number(lines[1], "uidvalidity");
    const auto next = keyed_number(lines[2], "uidnext");
    if (!validity || !next || lines.size() - 3 > max_messages)
        return util::errc::corrupt;
    index.uidvalidity = *validity;
    index.uidnext = *next;
    std::unordered_set<std::string_view> seen;
    std::uint32_t last = 0;
    for (std::size_t i = 3; i < lines.size(); ++i) {
        auto e = decode_entry(lines[i], last, index.uidnext, has_size);
        if (!e)
            return e.error();
        if (!seen.insert(util::split(lines[i], ' ')[1]).second)
            return util::errc::corrupt; // one unique name, two UIDs
        last = e->uid;
        index.entries.push_back(std::move(*e));
    }
    return index;
}

util::result<index_read> read_index(const std::string& folder)
{
    index_read out;
    auto text = util::read_file(folder + "/" + std::string(index_file));
    if (!text) {
        if (text.error() == std::errc::no_such_file_or_directory)
            return out; // missing
        return text.error();
    }
    auto index = decode_index(*text);
    if (!index) {
        out.state = index_state::corrupt;
        // The old UIDVALIDITY, if its line survived, so the next one is above it.
        const auto first = util::split(*text, '\n');
        if (first.size() > 1)
            out.old_uidvalidity = keyed_number(first[1], "uidvalidity").value_or(0);
        return out;
    }
    out.index = std::move(*index);
    out.state = index_state::loaded;
    return out;
}

util::result<void> write_index(const std::string& folder, const uid_index& index)
{
    return util::atomic_write(folder, index_file, encode_index(index));
}

util::result<std::uint32_t> allocate_uidvalidity(const std::string& root, std::int64_t now, std::uint32_t above)
{
    auto held = lock::wait(root + "/" + std::string(uidvalidity_lock_file));
    if (!held)
        return held.error();
    std::uint32_t last = 0;
    if (auto text = util::read_file(root + "/" + std::string(uidvalidity_file))) {
        std::string_view line = *text;
        if (line.ends_with('\n'))
            line.remove_suffix(1);
        last = parse_nz32(line).value_or(0); // damaged: the clock and `above` still rule
    }
    constexpr auto top = std::numeric_limits<std::uint32_t>::max();
    std::uint64_t v = static_cast<std::uint64_t>(std::clamp<std::int64_t>(now, 1, top));
    v = std::max<std::uint64_t>({v, std::uint64_t{last} + 1, std::uint64_t{above} + 1});
    if (v > top)
        return util::errc::limit; // 2^32 - 1 values used up
    const auto value = static_cast<std::uint32_t>(v);
    if (auto w = util::atomic_write(root, uidvalidity_file, std::to_string(value) + "\n"); !w)
        return w.error();
    return value;
}

} // namespace postern::mailbox
