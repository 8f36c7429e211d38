// smtp/received.hpp — the trace header added to every accepted message
// (RFC 5321 4.4; protocol words from RFC 3848 and RFC 6531 3.7.3), and the
// one for mail submitted locally (`postern sendmail`, no SMTP client). Pure.
// The TLS comment is CFWS where RFC 5321 4.4 allows it (before FOR or ';').
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace postern::smtp {

struct received_fields {
    std::string_view helo;      // as the client gave it; sanitised here
    std::string_view client_ip; // "192.0.2.1" or "2001:db8::1"
    std::string_view by;        // our hostname
    std::string_view protocol;  // "SMTP", "ESMTP", "UTF8SMTP", …
    std::string_view id;        // queue id
    std::string_view for_rcpt;  // the single recipient, or empty (never list several: privacy)
    std::string_view date;      // RFC 5322 date-time
    std::string_view tls = {};  // "TLSv1.3 TLS_AES_256_GCM_SHA384" (version, space, cipher), or empty
};

// "Received: from helo ([ip])\r\n\tby host (postern) with ESMTP id ID\r\n\tfor <r>; date\r\n"
// With tls, a comment after the id (sanitised like the HELO name):
// "... with ESMTPS id ID\r\n\t(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384)\r\n\tfor <r>; date\r\n"
std::string received_header(const received_fields& f);

// Mail from a local user through the pickup directory (as Postfix's
// pickup(8) writes "by host (Postfix, from userid N)"); RFC 5322 3.6.7
// trace syntax, the "from" clause naming the user rather than a host:
// "Received: from local user alice (uid 1000)\r\n\tby host (postern) with local id ID\r\n\tfor <r>; date\r\n"
struct local_received_fields {
    std::string_view login;    // the submitting user's login name; sanitised here
    std::uint32_t uid = 0;
    std::string_view by;       // our hostname
    std::string_view id;       // queue id
    std::string_view for_rcpt; // the single recipient, or empty
    std::string_view date;     // RFC 5322 date-time
};
std::string local_received_header(const local_received_fields& f);

} // namespace postern::smtp
