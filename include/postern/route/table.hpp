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
//  - plus-addressing (recipient_delimiter, Postfix's lookup order): the
//    full local part first (an exact user or alias alice+tag wins), then the
//    local part without its extension (alice), then the catch-all, which
//    keeps the full local part as its mailbox. An alias reached through an
//    extension expands without it (no propagate_unmatched_extensions);
//  - an alias is a recipient only when its expansion reaches a mailbox or a
//    remote address: RCPT refuses the others (550 5.1.1) rather than the
//    delivery bouncing them later; in a partly valid alias the targets that
//    reach no one are reported (expand's missing) and bounced by the
//    delivery while the others get the mail. Loops are configuration errors
//    (config::parse); expand() still cuts them, as a defence;
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

// How one address matched, before any alias expansion (route explain shows it).
enum class match_kind {
    remote,        // not a local domain, or an address literal
    routing_trick, // '%', '!' or '@' in the local part at a local domain
    alias,         // an alias (key: the alias)
    user,          // a configured user (key: the user)
    postmaster,    // postmaster@<local domain>, always there
    catch_all,     // any local part at a local domain without users
    unsafe_name,   // would be a mailbox, but the name is no safe directory name
    none,          // unknown user
};

struct match {
    match_kind how = match_kind::none;
    mail::address address; // canonical (bare postmaster completed)
    std::string key;       // alias / user / postmaster / catch_all: lower-case local@domain that matched
    bool stripped = false; // matched only without the extension
    std::string extension; // when stripped: the part after the delimiter, as written
    char delimiter = '+';  // when stripped: the delimiter
};

struct target {
    bool local = true;
    // local: lower-case local@domain as reached, extension kept
    // (Delivered-To: alice+tag@...); remote: as written
    std::string address;
    std::string domain;  // local: the mailbox's domain directory (lower-case)
    std::string mailbox; // local: the mailbox's directory name (lower-case, no extension)

    bool operator==(const target&) const = default;
};

class table {
public:
    explicit table(const config::settings& s);

    // The address a bare "postmaster" (RFC 5321 4.1.1.3) stands for.
    mail::address canonical(const mail::address& a) const;
    bool is_local_domain(std::string_view domain) const;
    // True for a local domain with users (the others are catch-all).
    bool has_users(std::string_view domain) const;
    const std::string& recipient_delimiter() const noexcept { return delimiters_; }

    // One lookup step, no alias expansion.
    match lookup(const mail::address& a) const;
    // The targets of the alias m matched (m.how == alias), as configured.
    const std::vector<std::string>& alias_targets(const match& m) const;
    // The mailbox of a user / postmaster / catch_all match.
    target mailbox_of(const match& m) const;

    // What RCPT answers depend on. An alias whose expansion is empty (every
    // target unknown) or too deep is unknown_user.
    kind classify(const mail::address& a) const;

    // The final targets of an address (aliases expanded recursively, loops
    // cut, duplicates removed: one target per mailbox, the first reaching
    // it). errc::not_found for an address with no mailbox; errc::limit when
    // expansion is deeper than max_depth. missing, when given, receives the
    // alias targets (at any depth) that reach no one, each once, canonical:
    // the delivery bounces them while the other targets get the mail.
    util::result<std::vector<target>> expand(const mail::address& a,
                                             std::vector<std::string>* missing = nullptr) const;

    static constexpr int max_depth = 20;

private:
    static std::string key(std::string_view local, std::string_view domain);
    bool expand_into(const mail::address& a, int depth, std::set<std::string>& path,
                     std::vector<target>& out, std::vector<std::string>* missing) const;

    std::string primary_domain_;
    std::string delimiters_;
    std::set<std::string, std::less<>> local_domains_;
    std::set<std::string, std::less<>> domains_with_users_;
    std::set<std::string, std::less<>> users_;                      // key()
    std::map<std::string, std::vector<std::string>, std::less<>> aliases_; // key() -> targets
};

// True when s is usable as a mailbox directory name.
bool is_safe_mailbox_name(std::string_view s) noexcept;

} // namespace postern::route
