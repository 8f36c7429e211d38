#include "postern/route/table.hpp"

#include <algorithm>

#include "postern/util/strings.hpp"

namespace postern::route {

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

table::table(const config::settings& s)
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

kind table::classify(const mail::address& raw) const
{
    auto a = canonical(raw);
    if (a.is_address_literal() || !is_local_domain(a.domain))
        return kind::remote;
    if (mail::has_routing_chars(a.local_part))
        return kind::routing_trick;
    auto k = key(a.local_part, a.domain);
    if (aliases_.count(k))
        return kind::alias;
    if (!is_safe_mailbox_name(util::to_lower(a.local_part)))
        return kind::unknown_user;
    if (users_.count(k) || util::iequals(a.local_part, "postmaster"))
        return kind::local;
    if (!domains_with_users_.count(util::to_lower(a.domain)))
        return kind::local; // catch-all domain
    return kind::unknown_user;
}

bool table::expand_into(const mail::address& raw, int depth, std::set<std::string>& path,
                        std::vector<target>& out) const
{
    if (depth > max_depth)
        return false;
    auto a = canonical(raw);
    switch (classify(a)) {
    case kind::remote: {
        target t{false, a.str(), {}, {}};
        if (std::find(out.begin(), out.end(), t) == out.end())
            out.push_back(std::move(t));
        return true;
    }
    case kind::local: {
        target t{true, key(a.local_part, a.domain), util::to_lower(a.domain),
                 util::to_lower(a.local_part)};
        if (std::find(out.begin(), out.end(), t) == out.end())
            out.push_back(std::move(t));
        return true;
    }
    case kind::alias: {
        auto k = key(a.local_part, a.domain);
        // A loop (a → b → a) is cut where it closes; the other branches
        // still deliver, as sendmail and Postfix do.
        if (!path.insert(k).second)
            return true;
        for (const auto& t : aliases_.find(k)->second) {
            auto ta = mail::parse_address(t);
            if (!ta)
                continue;
            // An alias that names itself means "also deliver to the mailbox".
            if (key(ta->local_part, ta->domain) == k) {
                target self{true, k, util::to_lower(ta->domain), util::to_lower(ta->local_part)};
                if (is_safe_mailbox_name(self.mailbox) &&
                    std::find(out.begin(), out.end(), self) == out.end())
                    out.push_back(std::move(self));
                continue;
            }
            if (!expand_into(*ta, depth + 1, path, out))
                return false;
        }
        path.erase(k);
        return true;
    }
    case kind::unknown_user:
    case kind::routing_trick:
        return true; // contributes nothing; the caller sees an empty result
    }
    return true;
}

util::result<std::vector<target>> table::expand(const mail::address& a) const
{
    std::vector<target> out;
    std::set<std::string> path;
    if (!expand_into(a, 0, path, out))
        return util::errc::limit;
    if (out.empty())
        return util::errc::not_found;
    return out;
}

} // namespace postern::route
