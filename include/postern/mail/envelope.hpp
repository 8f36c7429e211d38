// mail/envelope.hpp — what one SMTP transaction collected about a message.
// Plain data; the smtp session fills it, the queue persists it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "postern/mail/address.hpp"

namespace postern::mail {

// RFC 6152 BODY=8BITMIME, RFC 3030 BODY=BINARYMIME (only with BDAT).
enum class body_type { seven_bit, eight_bit_mime, binary_mime };

// RFC 3461 4.3 RET: what a failure report returns of the message.
enum class dsn_ret { unspecified, full, headers };

// RFC 3461 4.1 NOTIFY, as bits; 0 = not given (the default: failure and
// delay reports, RFC 3461 4.1 leaves DELAY to the MTA). never excludes the rest.
namespace notify {
constexpr std::uint8_t success = 1;
constexpr std::uint8_t failure = 2;
constexpr std::uint8_t delay = 4;
constexpr std::uint8_t never = 8;
} // namespace notify

// A recipient's DSN parameters (RFC 3461 4.1, 4.2).
struct recipient_dsn {
    std::uint8_t notify = 0;
    std::string orcpt; // ORCPT as "addr-type;address", xtext decoded; empty if not given
};

struct envelope {
    path sender;                     // null for "<>"
    std::vector<address> recipients; // in RCPT order, duplicates removed
    bool smtputf8 = false;           // RFC 6531 SMTPUTF8 on MAIL
    body_type body = body_type::seven_bit;
    dsn_ret ret = dsn_ret::unspecified; // RFC 3461 4.3
    std::string envid;                  // RFC 3461 4.4, xtext decoded; empty if not given
    // Parallel to recipients: the DSN parameters of each (same size, same order).
    std::vector<recipient_dsn> rcpt_dsn;
};

} // namespace postern::mail
