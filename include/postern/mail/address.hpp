// mail/address.hpp — a mailbox address and the SMTP path syntax of
// RFC 5321 4.1.2 (with the SMTPUTF8 extensions of RFC 6531 3.3).
// Pure: no I/O, no allocation beyond the returned values.
//
// Invariants of a parsed address: local_part is the *unquoted* local part
// (quoted-pairs resolved), at most 64 octets; domain is a domain name (at most
// 255 octets, labels of 1–63 LDH octets or UTF-8 U-labels with SMTPUTF8) or
// an address literal in brackets ("[192.0.2.1]", "[IPv6:2001:db8::1]"),
// stored as written (case preserved); the whole path is at most 256 octets.
#pragma once

#include <string>
#include <string_view>

#include "postern/util/result.hpp"

namespace postern::mail {

struct address {
    std::string local_part; // unquoted
    std::string domain;     // as written; compare with util::iequals

    bool empty() const noexcept { return local_part.empty() && domain.empty(); }
    // local@domain, with the local part re-quoted (RFC 5321 4.1.2) when it is
    // not a valid Dot-string.
    std::string str() const;
    // True when local part and domain are all ASCII.
    bool is_ascii() const noexcept;
    bool is_address_literal() const noexcept { return !domain.empty() && domain.front() == '['; }
};

struct path {
    bool null = false;        // "<>" (reverse-path only)
    std::string source_route; // "@a,@b" — accepted and ignored (RFC 5321 4.1.1.3, C.)
    address addr;             // empty when null

    // "<local@domain>" or "<>" — as it goes back on the wire.
    std::string str() const;
};

enum class path_kind { reverse, forward };

struct parse_options {
    bool smtputf8 = false; // the client said SMTPUTF8 on MAIL (RFC 6531 3.4)
};

struct parsed_path {
    path value;
    std::string_view rest; // what follows the closing '>' (ESMTP parameters), untrimmed
};

// Parses "<...>" at the start of s. The text must begin with '<' (RFC 5321
// requires the angle brackets; Postfix's strict_rfc821_envelopes behaviour).
// reverse: "<>" allowed. forward: "<postmaster>" (no domain) allowed,
// "<>" refused. Errors: errc::syntax, errc::too_long (64/255/256 octet
// limits of RFC 5321 4.5.3.1), errc::needs_smtputf8 (8-bit octets without
// the option, RFC 6531 3.5: 553 5.6.7). Invalid UTF-8 is errc::syntax.
util::result<parsed_path> parse_path(std::string_view s, path_kind kind, const parse_options& opt);

// Parses a bare "local@domain" (configuration files, aliases). UTF-8 allowed.
util::result<address> parse_address(std::string_view s);

// Characters that older MTAs treat as routing inside a local part:
// '%' (percent hack), '!' (UUCP bang path), '@' (only possible when quoted).
// An address at a local domain whose local part has one of these must never
// be relayed; the server refuses it (DESIGN promise 5).
bool has_routing_chars(std::string_view local_part) noexcept;

// True when s is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view s) noexcept;

} // namespace postern::mail
