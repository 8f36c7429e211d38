#include "postern/live/generation.hpp"

#include <utility>

#include "postern/util/strings.hpp"

namespace postern::live {

namespace {

std::shared_ptr<auth::credentials> make_credentials(const config::settings& s)
{
    std::map<std::string, std::string, std::less<>> users;
    for (const auto& u : s.users)
        if (!u.password.empty())
            users.emplace(util::to_lower(u.address), u.password);
    if (users.empty())
        return nullptr;
    return std::make_shared<auth::static_credentials>(std::move(users));
}

sender_table make_senders(const config::settings& s)
{
    sender_table senders;
    for (const auto& u : s.users) {
        if (u.password.empty())
            continue;
        auto& mine = senders[util::to_lower(u.address)];
        mine.insert(util::to_lower(u.address));
        for (const auto& a : u.addresses)
            mine.insert(util::to_lower(a));
    }
    return senders;
}

// Assigns from to into when they differ, naming it in changed.
template <class T>
void keep(const T& from, T& into, const char* name, std::vector<std::string>& changed)
{
    if (from == into)
        return;
    into = from;
    changed.emplace_back(name);
}

} // namespace

generation::generation(config::settings s, std::uint64_t n, tls::server_contexts* t)
    : number(n), cfg(std::move(s)), routes(cfg), credentials(make_credentials(cfg)), senders(make_senders(cfg)),
      tls(t)
{
    for (const auto& net : cfg.relay_networks)
        if (auto c = util::cidr::parse(net))
            relay_networks.push_back(*c); // config validated every entry
}

std::vector<std::string> restart_only(const config::settings& running, config::settings& next)
{
    std::vector<std::string> changed;
    keep(running.spool_dir, next.spool_dir, "spool_dir", changed); // the queue, the control socket
    keep(running.mail_root, next.mail_root, "mail_root", changed);
    keep(running.dns.servers, next.dns.servers, "dns", changed); // the resolver is made once
    keep(running.relay.password_file, next.relay.password_file, "relay.password_file", changed); // read as root
    // The LMTP agent is made at start: its domains may change, its server
    // not — and with another server (or none) the domains go with it.
    if (running.delivery.lmtp != next.delivery.lmtp) {
        next.delivery = running.delivery;
        changed.emplace_back("delivery.lmtp");
    }
    keep(running.run_as_user, next.run_as_user, "user", changed); // privileges are dropped for good
    keep(running.run_as_group, next.run_as_group, "group", changed);
    const bool metrics_changed = running.metrics.spec != next.metrics.spec;
    if (metrics_changed) {
        next.metrics = running.metrics;
        changed.emplace_back("metrics");
    }
    return changed;
}

} // namespace postern::live
