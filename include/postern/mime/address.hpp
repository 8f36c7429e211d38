// mime/address.hpp — RFC 5322 3.4 address lists (From, To, Cc, ...) as the
// IMAP ENVELOPE wants them (RFC 3501 7.4.2, RFC 9051 7.5.2): each mailbox
// as (name, route, mailbox, host), groups as a start entry carrying the group
// name and an end entry.
// Accepted: display names as quoted-strings or words (obs-phrase dots too),
// kept raw — encoded words are not decoded here (ENVELOPE sends them as they
// stand; decode_words() is for SEARCH); angle addresses; the obsolete route
// "<@a,@b:user@host>" (RFC 5322 4.4) as route "@a,@b"; groups, empty or not,
// their ";" optional at the end; comments and folding anywhere (ignored);
// empty list elements (RFC 5322 4.4 obs-addr-list). Quoted local parts are
// unquoted. Malformed input is kept as best it can be: a word without "@"
// is a mailbox with host "MISSING_DOMAIN", an address without local part
// gets "MISSING_MAILBOX" (Dovecot's placeholders: a NIL host would read as
// a group marker), stray specials are skipped. Never fails.
// Pure; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace postern::mime {

struct address {
    enum class kind { mailbox, group_start, group_end };
    kind what = kind::mailbox;
    std::string name;    // display name ("" for none); group_start: the group's name
    std::string route;   // obsolete source route "@a,@b", or ""
    std::string mailbox; // local part
    std::string host;    // domain
    friend bool operator==(const address&, const address&) = default;
};

// The entries of an address-list field value (folded or not).
std::vector<address> parse_address_list(std::string_view value);

} // namespace postern::mime
