#include "postern/mailbox/maildir.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <string_view>
#include <system_error>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "postern/mailbox/line_ends.hpp"
#include "postern/util/error.hpp"
#include "postern/util/strings.hpp"

namespace postern::mailbox {

namespace {

// RFC 1939 7: "The unique-id of a message is an arbitrary server-determined
// string, consisting of one to 70 characters in the range 0x21 to 0x7E".
constexpr std::size_t max_uid = 70;

// Maildir spec: "2," then flags in ASCII order.
constexpr std::string_view info_prefix = ":2,";

// ENOENT means another process moved or removed the file since the snapshot.
std::error_code os_error()
{
    if (errno == ENOENT)
        return util::make_error_code(util::errc::not_found);
    return util::last_os_error();
}

std::uint64_t fnv1a(std::string_view s, std::uint64_t h)
{
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h;
}

// Lists one of new/ and cur/ into out.
util::result<void> list(const std::string& dir, std::string_view sub, std::vector<message>& out)
{
    const std::string path = dir + "/" + std::string(sub);
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr)
        return util::last_os_error();
    while (const dirent* e = ::readdir(d)) {
        const std::string_view name(e->d_name);
        if (name.empty() || name.front() == '.')
            continue;
        struct stat st {};
        const std::string full = path + "/" + std::string(name);
        if (::stat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
            continue; // gone since readdir, or not a message
        message m;
        m.file = std::string(sub) + "/" + std::string(name);
        const auto info = name.find(info_prefix);
        m.unique = std::string(name.substr(0, info));
        if (info != std::string_view::npos)
            m.flags = std::string(name.substr(info + info_prefix.size()));
        m.uid = pop3_uid(m.unique);
        m.file_size = static_cast<std::uint64_t>(st.st_size);
        m.size = m.file_size;
        m.delivered = static_cast<std::int64_t>(st.st_mtime);
        out.push_back(std::move(m));
    }
    ::closedir(d);
    return {};
}

util::result<std::string> read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return os_error();
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad())
        return util::make_error_code(util::errc::io);
    return s;
}

bool all_digits(std::string_view s) noexcept
{
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// delivery::maildir_name: "<received_at>.Q<16 lower-case hex>.<host>".
bool delivery_name(std::string_view unique) noexcept
{
    const auto dot = unique.find('.');
    if (dot == std::string_view::npos || !all_digits(unique.substr(0, dot)))
        return false;
    const auto rest = unique.substr(dot + 1);
    constexpr std::size_t id_len = 16;
    if (rest.size() < 1 + id_len + 2 || rest[0] != 'Q' || rest[1 + id_len] != '.')
        return false;
    return std::all_of(rest.begin() + 1, rest.begin() + 1 + id_len,
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Dovecot's ",W=<vsize>" field of a unique name.
std::optional<std::uint64_t> w_field(std::string_view unique) noexcept
{
    constexpr std::string_view key = ",W=";
    const auto at = unique.find(key);
    if (at == std::string_view::npos)
        return std::nullopt;
    auto digits = unique.substr(at + key.size());
    digits = digits.substr(0, digits.find(','));
    if (!all_digits(digits) || digits.size() > 15)
        return std::nullopt; // not Dovecot's: read the file
    return util::parse_uint(digits);
}

} // namespace

std::string pop3_uid(const std::string& unique)
{
    bool ok = !unique.empty() && unique.size() <= max_uid;
    for (unsigned char c : unique)
        ok = ok && c >= 0x21 && c <= 0x7e;
    if (ok)
        return unique;
    // Two FNV-1a passes with different offsets: 128 bits, stable across
    // sessions and builds (std::hash is neither promised).
    return util::hex(fnv1a(unique, 0xcbf29ce484222325ULL), 16) + util::hex(fnv1a(unique, 0x84222325cbf29ce4ULL), 16);
}

std::optional<std::uint64_t> size_from_name(std::string_view unique, std::uint64_t file_size) noexcept
{
    if (auto w = w_field(unique))
        return w;
    if (delivery_name(unique))
        return file_size;
    return std::nullopt;
}

util::result<std::uint64_t> rfc5322_size(const std::string& dir, const message& m)
{
    if (auto known = size_from_name(m.unique, m.file_size))
        return *known;
    const int fd = ::open((dir + "/" + m.file).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return os_error();
    std::array<char, 65536> buf{};
    std::uint64_t size = 0;
    bool after_cr = false;
    for (;;) {
        const auto n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            const auto ec = util::last_os_error();
            ::close(fd);
            return ec;
        }
        if (n == 0)
            break;
        const std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
        size += chunk.size() + bare_lf_count(chunk, after_cr);
        after_cr = chunk.back() == '\r';
    }
    ::close(fd);
    return size;
}

util::result<std::vector<message>> snapshot(const std::string& dir)
{
    auto all = listing(dir);
    if (!all)
        return all;
    std::vector<message> out;
    out.reserve(all->size());
    for (auto& m : *all) {
        auto size = rfc5322_size(dir, m);
        if (!size && size.error() == util::errc::not_found)
            continue; // moved or removed since listing()
        m.size = size ? *size : m.file_size;
        out.push_back(std::move(m));
    }
    return out;
}

util::result<std::vector<message>> listing(const std::string& dir)
{
    std::vector<message> out;
    for (std::string_view sub : {"new", "cur"})
        if (auto r = list(dir, sub, out); !r)
            return r.error();
    std::sort(out.begin(), out.end(), [](const message& a, const message& b) {
        if (a.delivered != b.delivered)
            return a.delivered < b.delivered;
        return a.unique < b.unique;
    });
    return out;
}

util::result<std::string> read(const std::string& dir, const message& m)
{
    auto bytes = read_file(dir + "/" + m.file);
    if (!bytes)
        return bytes;
    return to_crlf(std::move(*bytes));
}

util::result<std::string> read_top(const std::string& dir, const message& m, std::uint64_t body_lines)
{
    auto all = read(dir, m);
    if (!all)
        return all;
    const std::string& s = *all;
    // The header ends at the first empty line (RFC 5322 2.1).
    std::size_t pos = 0;
    if (s.compare(0, 2, "\r\n") == 0) {
        pos = 2;
    } else if (auto h = s.find("\r\n\r\n"); h != std::string::npos) {
        pos = h + 4;
    } else {
        return all; // no body: the whole message is header
    }
    for (std::uint64_t i = 0; i < body_lines && pos < s.size(); ++i) {
        const auto eol = s.find("\r\n", pos);
        pos = eol == std::string::npos ? s.size() : eol + 2;
    }
    return s.substr(0, pos);
}

util::result<void> mark_seen(const std::string& dir, message& m)
{
    if (m.flags.find('S') != std::string::npos)
        return {};
    std::string flags = m.flags + "S";
    std::sort(flags.begin(), flags.end());
    const std::string file = "cur/" + m.unique + std::string(info_prefix) + flags;
    // rename() is atomic within the Maildir; never a copy, so a message is
    // never in two places (Maildir spec: readers move, never rewrite).
    if (::rename((dir + "/" + m.file).c_str(), (dir + "/" + file).c_str()) != 0)
        return os_error();
    m.file = file;
    m.flags = std::move(flags);
    return {};
}

util::result<void> remove(const std::string& dir, const message& m)
{
    if (::unlink((dir + "/" + m.file).c_str()) != 0)
        return os_error();
    return {};
}

} // namespace postern::mailbox
