// mail/envelope.hpp — what one SMTP transaction collected about a message.
// Plain data; the smtp session fills it, the queue persists it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "postern/mail/address.hpp"

namespace postern::mail {

enum class body_type { seven_bit, eight_bit_mime }; // RFC 6152 BODY=

struct envelope {
    path sender;                     // null for "<>"
    std::vector<address> recipients; // in RCPT order, duplicates removed
    bool smtputf8 = false;           // RFC 6531 SMTPUTF8 on MAIL
    body_type body = body_type::seven_bit;
};

} // namespace postern::mail
