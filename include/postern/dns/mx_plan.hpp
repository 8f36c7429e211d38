// dns/mx_plan.hpp — RFC 5321 5.1 routing: which hosts to try, in what order.
// Pure: no I/O, no clock; the shuffle of equal preferences is deterministic
// for a given seed. The plan's error strings start with the enhanced status
// code the delivery layer reports (5.1.10, 5.1.2, 5.4.6, 4.4.3).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "postern/dns/resolver.hpp"

namespace postern::dns {

struct plan {
    enum class kind {
        hosts,     // try hosts in order (then their A/AAAA)
        null_mx,   // RFC 7505 null MX: bounce now, 5.1.10
        nxdomain,  // the domain does not exist: bounce, 5.1.2
        temporary, // DNS trouble (or no usable MX host): retry later, 4.4.3
        loop,      // the best MX is us: 5.4.6
    };
    kind k = kind::temporary;
    std::vector<std::string> hosts; // lower-case, no trailing dot, best first
    std::string error;
};

const char* to_string(plan::kind k) noexcept;

// At most this many hosts are planned (the rest are never reached in practice).
constexpr std::size_t max_plan_hosts = 32;

// our_names: this host's names (case-insensitive, trailing dot ignored).
plan plan_mx(const mx_answer& a, std::string_view domain,
             const std::vector<std::string>& our_names, std::uint64_t seed);

// True for a syntactically valid host name: LDH labels of 1..63 octets
// (underscore tolerated), 253 octets at most, not an IP literal.
bool valid_mx_host(std::string_view host) noexcept;

} // namespace postern::dns
