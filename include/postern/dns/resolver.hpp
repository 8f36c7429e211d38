// dns/resolver.hpp — the DNS seam (one of DESIGN's four virtual interfaces).
// Answers are values: a status plus records; lookups never throw for DNS
// trouble. status::temporary covers SERVFAIL, REFUSED, timeouts and network
// errors — the caller retries later; nxdomain and nodata are authoritative.
// Thread: implementations run on one io_context thread; call them from
// coroutines running there. The resolver must outlive every call in flight.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <asio/ip/address.hpp>

#include "postern/net/asio.hpp"

namespace postern::dns {

enum class status {
    ok,        // at least one record of the asked type
    nxdomain,  // the name does not exist (RCODE 3)
    nodata,    // the name exists but has no record of this type
    temporary, // SERVFAIL, timeout, refused, network: try again later
};

struct mx_record {
    std::uint16_t preference = 0;
    std::string host; // without trailing dot; "" for the root (null MX, RFC 7505)
};

struct mx_answer {
    status st = status::temporary;
    std::vector<mx_record> records; // in answer order (plan_mx sorts)
    std::string error;              // human-readable cause when st != ok
};

// A and AAAA together: IPv6 addresses first, then IPv4, each in answer order.
struct address_answer {
    status st = status::temporary;
    std::vector<asio::ip::address> addresses;
    std::string error;
};

// One string per TXT record: its character-strings concatenated (RFC 7208 3.3).
struct txt_answer {
    status st = status::temporary;
    std::vector<std::string> records;
    std::string error;
};

const char* to_string(status s) noexcept;

class resolver {
public:
    virtual ~resolver() = default;
    virtual asio::awaitable<mx_answer> mx(std::string domain) = 0;
    virtual asio::awaitable<address_answer> addresses(std::string host) = 0; // A + AAAA
    virtual asio::awaitable<txt_answer> txt(std::string name) = 0;
};

} // namespace postern::dns
