// route/table.hpp — where a recipient goes: a local mailbox, an alias, a
// remote domain, or nowhere. Built once from the configuration; pure and
// immutable afterwards, so the event loop (RCPT checks) and the delivery
// thread share one instance without locks.
//
// Not in DESIGN's module table: recipient routing is needed by both the
// server (layer 5, RCPT) and delivery (layer 5), and is pure, so it sits at
// layer 4 between config and both of them.
//
// Rules (Postfix's local_recipient_maps, RFC 5321 4.5.1):
//  - domains compare case-insensitively; local parts too (as Postfix's
//    local delivery folds them) — mailboxes are lower-case on disk;
//  - postmaster@<local domain> and the bare "postmaster" always exist;
//  - a local domain with users accepts only them and aliases; one without
//    users accepts any local part (catch-all);
//  - a local part with routing characters ('%', '!', '@') at a local domain
//    is never routed anywhere (open-relay tricks, DESIGN promise 5);
//  - a local part that is not a safe directory name ('/', leading '.', NUL,
//    control characters) has no mailbox.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "postern/config/config.hpp"
#include "postern/mail/address.hpp"
#include "postern/util/result.hpp"

namespace postern::route {

enum class kind { local, alias, remote, unknown_user, routing_trick };

struct target {
    bool local = true;
    std::string address; // local: lower-case local@domain; remote: as written
    std::string domain;  // local: the mailbox's domain directory (lower-case)
    std::string mailbox; // local: the mailbox's directory name (lower-case local part)

    bool operator==(const target&) const = default;
};

class table {
public:
    explicit table(const config::settings& s);

    // The address a bare "postmaster" (RFC 5321 4.1.1.3) stands for.
    mail::address canonical(const mail::address& a) const;
    bool is_local_domain(std::string_view domain) const;
    kind classify(const mail::address& a) const;

    // The final targets of an address (aliases expanded recursively, loops
    // cut, duplicates removed). errc::not_found for an address with no
    // mailbox; errc::limit when expansion is deeper than max_depth.
    util::result<std::vector<target>> expand(const mail::address& a) const;

    static constexpr int max_depth = 20;

private:
    static std::string key(std::string_view local, std::string_view domain);
    bool expand_into(const mail::address& a, int depth, std::set<std::string>& path,
                     std::vector<target>& out) const;

    std::string primary_domain_;
    std::set<std::string, std::less<>> local_domains_;
    std::set<std::string, std::less<>> domains_with_users_;
    std::set<std::string, std::less<>> users_;                      // key()
    std::map<std::string, std::vector<std::string>, std::less<>> aliases_; // key() -> targets
};

// True when s is usable as a mailbox directory name.
bool is_safe_mailbox_name(std::string_view s) noexcept;

} // namespace postern::route
