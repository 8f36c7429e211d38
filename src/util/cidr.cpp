#include "postern/util/cidr.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <string>

#include "postern/util/strings.hpp"

namespace postern::util {

namespace {

struct ip_bytes {
    bool v6 = false;
    std::array<std::uint8_t, 16> b{};
};

std::optional<ip_bytes> parse_ip(std::string_view s)
{
    std::string z(s); // inet_pton wants a NUL-terminated string
    ip_bytes out;
    if (::inet_pton(AF_INET, z.c_str(), out.b.data()) == 1)
        return out;
    if (::inet_pton(AF_INET6, z.c_str(), out.b.data()) == 1) {
        out.v6 = true;
        // ::ffff:a.b.c.d is an IPv4 peer seen through a dual-stack socket.
        static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::memcmp(out.b.data(), mapped, 12) == 0) {
            std::memmove(out.b.data(), out.b.data() + 12, 4);
            std::memset(out.b.data() + 4, 0, 12);
            out.v6 = false;
        }
        return out;
    }
    return std::nullopt;
}

bool prefix_equal(const std::array<std::uint8_t, 16>& a, const std::array<std::uint8_t, 16>& b,
                  unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;
    if (std::memcmp(a.data(), b.data(), full) != 0)
        return false;
    if (rest == 0)
        return true;
    auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

} // namespace

std::optional<cidr> cidr::parse(std::string_view s)
{
    auto slash = s.find('/');
    auto ip = parse_ip(s.substr(0, slash));
    if (!ip)
        return std::nullopt;
    // A mapped address written as such is still an IPv4 network here.
    cidr c;
    c.v6 = ip->v6;
    c.net = ip->b;
    unsigned max = c.v6 ? 128 : 32;
    c.prefix = max;
    if (slash != std::string_view::npos) {
        auto p = parse_uint(s.substr(slash + 1));
        if (!p || *p > max)
            return std::nullopt;
        c.prefix = static_cast<unsigned>(*p);
    }
    // Host bits must be zero.
    std::array<std::uint8_t, 16> zeroed{};
    unsigned full = c.prefix / 8, rest = c.prefix % 8;
    std::memcpy(zeroed.data(), c.net.data(), full);
    if (rest)
        zeroed[full] = static_cast<std::uint8_t>(c.net[full] & (0xff << (8 - rest)));
    if (zeroed != c.net)
        return std::nullopt;
    return c;
}

bool cidr::contains(std::string_view ip) const
{
    auto a = parse_ip(ip);
    if (!a || a->v6 != v6)
        return false;
    return prefix_equal(a->b, net, prefix);
}

bool in_any(const std::vector<cidr>& nets, std::string_view ip)
{
    for (const auto& n : nets)
        if (n.contains(ip))
            return true;
    return false;
}

} // namespace postern::util
