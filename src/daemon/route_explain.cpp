#include "postern/daemon/route_explain.hpp"

#include <chrono>
#include <exception>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "postern/dns/ares_resolver.hpp"
#include "postern/dns/mx_plan.hpp"
#include "postern/mail/address.hpp"
#include "postern/net/asio.hpp"
#include "postern/route/explain.hpp"
#include "postern/route/table.hpp"
#include "postern/util/clock.hpp"
#include "postern/util/strings.hpp"

namespace postern::daemon {

namespace {

constexpr int exit_ok = 0;
constexpr int exit_refused = 1;
constexpr int exit_ex_usage = 64; // sysexits.h EX_USAGE: the address is malformed

// Address lookups for the first hosts only: delivery rarely gets further.
constexpr std::size_t max_hosts_shown = 10;

// "alice@example.test", "<alice@example.test>" or a bare "postmaster"
// (RFC 5321 4.1.1.3, the one address without a domain).
std::optional<mail::address> parse_recipient(std::string_view text)
{
    if (text.size() >= 2 && text.front() == '<' && text.back() == '>')
        text = text.substr(1, text.size() - 2);
    if (util::iequals(text, "postmaster"))
        return mail::address{std::string(text), {}};
    auto a = mail::parse_address(text);
    if (!a)
        return std::nullopt;
    return std::move(a).value();
}

std::uint16_t preference_of(const dns::mx_answer& ans, const std::string& host)
{
    for (const auto& r : ans.records) {
        auto h = util::to_lower(r.host);
        if (!h.empty() && h.back() == '.')
            h.pop_back();
        if (h == host)
            return r.preference;
    }
    return 0; // implicit MX: "as if preference 0" (RFC 5321 5.1)
}

// The same lookups and plan delivery::remote_agent makes (dns::plan_mx with
// this host's name for the loop rule), then each planned host's addresses.
asio::awaitable<std::map<std::string, route::mx_route>> resolve_routes(dns::resolver& resolver,
                                                                      std::vector<std::string> domains,
                                                                      std::string hostname)
{
    std::map<std::string, route::mx_route> out;
    for (const auto& domain : domains) {
        auto ans = co_await resolver.mx(domain);
        // A fixed seed: equal preferences are shuffled by delivery, here
        // they are shown in one (deterministic) order.
        auto p = dns::plan_mx(ans, domain, {hostname}, 0);
        route::mx_route r;
        if (p.k != dns::plan::kind::hosts) {
            r.error = p.error;
            out[domain] = std::move(r);
            continue;
        }
        r.ok = true;
        r.implicit = ans.st == dns::status::nodata || ans.records.empty();
        for (const auto& host : p.hosts) {
            if (r.hosts.size() == max_hosts_shown)
                break;
            route::mx_host h;
            h.preference = preference_of(ans, host);
            h.host = host;
            auto addrs = co_await resolver.addresses(host);
            if (addrs.st == dns::status::ok) {
                for (const auto& a : addrs.addresses)
                    h.addresses.push_back(a.to_string());
            } else {
                h.error = std::string(dns::to_string(addrs.st)) + (addrs.error.empty() ? "" : ": " + addrs.error);
            }
            r.hosts.push_back(std::move(h));
        }
        out[domain] = std::move(r);
    }
    co_return out;
}

struct lookup_result {
    std::map<std::string, route::mx_route> routes;
    std::exception_ptr failure;
};

std::map<std::string, route::mx_route> resolve(const config::settings& s, std::vector<std::string> domains)
{
    asio::io_context io(1);
    util::system_clock clock;
    // As `serve` builds it: the configured servers (or /etc/resolv.conf),
    // 5 s per try, 2 tries per server.
    dns::ares_resolver resolver(io, s.dns.servers, std::chrono::seconds(5), 2, clock);
    lookup_result result;
    asio::co_spawn(io, resolve_routes(resolver, std::move(domains), s.hostname),
                   [&result](std::exception_ptr e, std::map<std::string, route::mx_route> routes) {
                       result.failure = e;
                       result.routes = std::move(routes);
                   });
    io.run();
    if (result.failure)
        std::rethrow_exception(result.failure);
    return std::move(result.routes);
}

} // namespace

int route_explain(const config::settings& s, std::string_view address)
{
    auto a = parse_recipient(address);
    if (!a) {
        std::cerr << "postern: route explain: not an address: '" << address
                  << "' (expected local@domain, or postmaster)\n";
        return exit_ex_usage;
    }
    const route::table table(s);
    auto e = route::explain(s, table, *a);
    if (!e.remote_domains.empty()) {
        try {
            e = route::explain(s, table, *a, resolve(s, e.remote_domains));
        } catch (const std::exception& ex) {
            // Shown as "not looked up"; the rest of the explanation stands.
            std::cerr << "postern: route explain: DNS lookup failed: " << ex.what() << "\n";
        }
    }
    std::cout << route::render(e) << std::flush;
    switch (e.v) {
    case route::verdict::accepted:
    case route::verdict::relay_only:
        return exit_ok;
    case route::verdict::refused:
        return exit_refused;
    }
    return exit_refused;
}

} // namespace postern::daemon
