#include "postern/route/table.hpp"

#include <algorithm>

#include "postern/mail/extension.hpp"
#include "postern/util/strings.hpp"

namespace postern::route {

namespace {

// One target per mailbox (the Maildir file name is per message, so a second
// file in the same mailbox would clash), one per remote address.
void add_target(std::vector<target>& out, target t)
{
    const bool dup = std::any_of(out.begin(), out.end(), [&](const target& o) {
        return o.local == t.local &&
               (t.local ? o.domain == t.domain && o.mailbox == t.mailbox : o.address == t.address);
    });
    if (!dup)
        out.push_back(std::move(t));
}

} // namespace

bool is_safe_mailbox_name(std::string_view s) noexcept
{
    if (s.empty() || s.size() > 64 || s.front() == '.')
        return false;
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f || c == '/')
            return false;
    return true;
}

std::string table::key(std::string_view local, std::string_view domain)
{
    return util::to_lower(local) + "@" + util::to_lower(domain);
}

table::table(const config::settings& s) : delimiters_(s.recipient_delimiter)
{
    for (const auto& d : s.local_domains)
        local_domains_.insert(util::to_lower(d));
    auto host = util::to_lower(s.hostname);
    primary_domain_ = local_domains_.count(host) || s.local_domains.empty()
                          ? host
                          : util::to_lower(s.local_domains.front());
    for (const auto& u : s.users) {
        auto a = mail::parse_address(u.address);
        if (!a)
            continue; // config validated it already
        users_.insert(key(a->local_part, a->domain));
        domains_with_users_.insert(util::to_lower(a->domain));
    }
    for (const auto& [k, targets] : s.aliases) {
        auto a = mail::parse_address(k);
        if (a)
            aliases_[key(a->local_part, a->domain)] = targets;
    }
}

mail::address table::canonical(const mail::address& a) const
{
    if (a.domain.empty())
        return {a.local_part, primary_domain_};
    return a;
}

bool table::is_local_domain(std::string_view domain) const
{
    return local_domains_.count(util::to_lower(domain)) > 0;
}

bool table::has_users(std::string_view domain) const
{
    return domains_with_users_.count(util::to_lower(domain)) > 0;
}

match table::lookup(const mail::address& raw) const
{
    match m;
    m.address = canonical(raw);
    const auto& a = m.address;
    if (a.is_address_literal() || !is_local_domain(a.domain)) {
        m.how = match_kind::remote;
        return m;
    }
    if (mail::has_routing_chars(a.local_part)) {
        m.how = match_kind::routing_trick;
        return m;
    }
    // A name that exists as written: an alias, else a user (RFC 5321 4.5.1:
    // postmaster always), with a mailbox only under a safe directory name.
    const auto exact = [&](std::string_view local) {
        auto k = key(local, a.domain);
        if (aliases_.count(k))
            return match_kind::alias;
        const bool user = users_.count(k) > 0;
        const bool postmaster = util::iequals(local, "postmaster");
        if (!user && !postmaster)
            return match_kind::none;
        if (!is_safe_mailbox_name(util::to_lower(local)))
            return match_kind::unsafe_name;
        return user ? match_kind::user : match_kind::postmaster;
    };
    // Postfix's order (local(8), virtual(5)): user+ext, then user, then the
    // domain's catch-all.
    m.how = exact(a.local_part);
    m.key = key(a.local_part, a.domain);
    if (m.how != match_kind::none)
        return m;
    if (auto split = mail::split_extension(a.local_part, delimiters_)) {
        if (auto how = exact(split->base); how != match_kind::none) {
            m.how = how;
            m.key = key(split->base, a.domain);
            m.stripped = true;
            m.extension = std::string(split->extension);
            m.delimiter = split->delimiter;
            return m;
        }
    }
    if (!has_users(a.domain))
        m.how = is_safe_mailbox_name(util::to_lower(a.local_part)) ? match_kind::catch_all
                                                                    : match_kind::unsafe_name;
    return m;
}

const std::vector<std::string>& table::alias_targets(const match& m) const
{
    static const std::vector<std::string> none;
    auto it = aliases_.find(m.key);
    return it == aliases_.end() ? none : it->second;
}

target table::mailbox_of(const match& m) const
{
    const auto at = m.key.rfind('@');
    return {true, key(m.address.local_part, m.address.domain), util::to_lower(m.address.domain),
            m.key.substr(0, at)};
}

kind table::classify(const mail::address& raw) const
{
    auto m = lookup(raw);
    switch (m.how) {
    case match_kind::remote:
        return kind::remote;
    case match_kind::routing_trick:
        return kind::routing_trick;
    case match_kind::alias:
        // Refused at RCPT when the expansion reaches no one: the same
        // expansion the delivery makes, so RCPT and delivery agree.
        return expand(m.address) ? kind::alias : kind::unknown_user;
    case match_kind::user:
    case match_kind::postmaster:
    case match_kind::catch_all:
        return kind::local;
    case match_kind::unsafe_name:
    case match_kind::none:
        return kind::unknown_user;
    }
    return kind::unknown_user;
}

bool table::expand_into(const mail::address& raw, int depth, std::set<std::string>& path,
                        std::vector<target>& out, std::vector<std::string>* missing) const
{
    if (depth > max_depth)
        return false;
    auto m = lookup(raw);
    switch (m.how) {
    case match_kind::remote:
        add_target(out, {false, m.address.str(), {}, {}});
        return true;
    case match_kind::user:
    case match_kind::postmaster:
    case match_kind::catch_all:
        add_target(out, mailbox_of(m));
        return true;
    case match_kind::alias: {
        const auto& k = m.key;
        // A loop (a → b → a) is cut where it closes; the other branches
        // still deliver, as sendmail and Postfix do. config::parse refuses
        // loops, so this is a defence for tables built otherwise.
        if (!path.insert(k).second)
            return true;
        for (const auto& t : alias_targets(m)) {
            auto ta = mail::parse_address(t);
            if (!ta)
                continue;
            // An alias that names itself means "also deliver to the mailbox".
            if (key(ta->local_part, ta->domain) == k) {
                target self{true, k, util::to_lower(ta->domain), util::to_lower(ta->local_part)};
                if (is_safe_mailbox_name(self.mailbox))
                    add_target(out, std::move(self));
                continue;
            }
            if (!expand_into(*ta, depth + 1, path, out, missing))
                return false;
        }
        path.erase(k);
        return true;
    }
    case match_kind::routing_trick:
    case match_kind::unsafe_name:
    case match_kind::none:
        // Contributes nothing; the caller sees an empty result, or, for an
        // alias target, is told which one reached no one.
        if (missing != nullptr && depth > 0) {
            auto name = m.address.str();
            if (std::find(missing->begin(), missing->end(), name) == missing->end())
                missing->push_back(std::move(name));
        }
        return true;
    }
    return true;
}

util::result<std::vector<target>> table::expand(const mail::address& a, std::vector<std::string>* missing) const
{
    std::vector<target> out;
    std::set<std::string> path;
    if (!expand_into(a, 0, path, out, missing))
        return util::errc::limit;
    if (out.empty())
        return util::errc::not_found;
    return out;
}

} // namespace postern::route
