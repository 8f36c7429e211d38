// queue/entry.hpp — the persisted envelope of one queued message and its
// versioned JSON codec (DESIGN "Data on disk": "version": 1, per-recipient
// state, attempts, next attempt, last error).
// decode() refuses unknown versions (errc::unsupported_version) and any
// record that fails validation (errc::corrupt): the store quarantines those.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "postern/util/result.hpp"

namespace postern::queue {

enum class rcpt_state { pending, done, bounced };

struct recipient {
    std::string address; // as accepted at RCPT (or produced by alias expansion)
    rcpt_state state = rcpt_state::pending;
    std::uint32_t attempts = 0;
    std::int64_t next_attempt = 0; // unix seconds; 0 = now
    std::string last_error;
    // DSN (RFC 3461), optional in the record: NOTIFY as mail::notify bits
    // (0 = not given) and ORCPT as "addr-type;address" (xtext decoded).
    std::uint8_t notify = 0;
    std::string orcpt;

    bool operator==(const recipient&) const = default;
};

struct entry {
    std::string id;
    std::string sender;          // without brackets; empty for "<>"
    std::int64_t received_at = 0; // unix seconds
    std::uint64_t size = 0;      // octets of the message file
    std::string client_ip;
    std::string helo;
    bool smtputf8 = false;
    bool eight_bit = false;
    bool delay_warned = false; // the one "delayed" DSN was sent (optional in the record)
    bool held = false;         // `postern queue hold`: not delivered until released (optional)
    bool binary = false;       // BODY=BINARYMIME (RFC 3030): relayed only with BDAT (optional)
    // DSN (RFC 3461), optional in the record: RET (0 unspecified, 1 FULL,
    // 2 HDRS, as mail::dsn_ret) and ENVID (xtext decoded).
    std::uint8_t ret = 0;
    std::string envid;
    std::vector<recipient> recipients;

    bool operator==(const entry&) const = default;
    bool all_final() const noexcept;
};

constexpr int envelope_version = 1;

std::string encode_envelope(const entry& e);
util::result<entry> decode_envelope(std::string_view json_text);

} // namespace postern::queue
