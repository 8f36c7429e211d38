// util/cidr.hpp — IP networks ("192.0.2.0/24", "2001:db8::/32", a bare
// address = a host route) and membership tests, for relay_networks.
// Pure (inet_pton only). An IPv4-mapped IPv6 client (::ffff:192.0.2.1, as a
// dual-stack listener reports IPv4 peers) matches IPv4 networks.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace postern::util {

struct cidr {
    bool v6 = false;
    std::array<std::uint8_t, 16> net{}; // IPv4 in the first 4 octets
    unsigned prefix = 0;

    // Refuses host bits set beyond the prefix ("10.1.0.0/8"), as a typo.
    static std::optional<cidr> parse(std::string_view s);
    bool contains(std::string_view ip) const;
};

bool in_any(const std::vector<cidr>& nets, std::string_view ip);

} // namespace postern::util
