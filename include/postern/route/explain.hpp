// route/explain.hpp — `postern route explain ADDRESS`: how postern would
// handle one recipient, step by step, without sending anything: canonical
// form, local domain or not, routing-trick refusal, plus-address extension,
// alias expansion (recursive, loops noted), and per final target its Maildir,
// or the remote MX list / smarthost, or why RCPT refuses it.
// Pure: settings + route::table + the DNS answers the caller looked up (the
// CLI owns the only I/O: it resolves remote_domains, then explains again with
// them). The verdict is table::classify(), the very check RCPT makes.
// Thread: any.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "postern/config/config.hpp"
#include "postern/mail/address.hpp"
#include "postern/route/table.hpp"

namespace postern::route {

struct mx_host {
    std::uint16_t preference = 0;
    std::string host;                   // lower-case, no trailing dot
    std::vector<std::string> addresses; // as text, in the order delivery tries them
    std::string error;                  // when the address lookup failed: why
};

// One remote domain's route as resolved now (dns::plan_mx and addresses).
struct mx_route {
    bool ok = false;            // hosts to try
    bool implicit = false;      // no MX records: the domain itself (RFC 5321 5.1)
    std::vector<mx_host> hosts; // in the order delivery tries them
    std::string error;          // when !ok: what delivery would report ("5.1.2 ...")
};

enum class verdict {
    accepted,        // RCPT 250
    relay_only,      // remote: 250 for relay_networks and authenticated clients, else 554 5.7.1
    refused,         // RCPT 550 5.1.1 / 554 5.7.1
};

struct step {
    int depth = 0;    // nesting: alias targets are one deeper than their alias
    std::string text; // one line, no newline
};

struct explanation {
    verdict v = verdict::refused;
    std::vector<step> steps;
    // Remote domains among the final targets that delivery would look up by
    // MX (none with a smarthost): lower-case, each once, in target order.
    std::vector<std::string> remote_domains;
};

// resolved: remote domain (lower-case) → its route; a domain missing from it
// is shown as "not looked up".
explanation explain(const config::settings& s, const table& t, const mail::address& a,
                    const std::map<std::string, mx_route>& resolved = {});

// The steps as text: two spaces of indent per depth, one line each.
std::string render(const explanation& e);

} // namespace postern::route
