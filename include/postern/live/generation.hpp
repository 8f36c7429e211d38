// live/generation.hpp — the running configuration and everything built
// from it (route table, credentials, sender table, relay networks), as one
// immutable generation. A reload (SIGHUP, `postern reload`) builds a new
// generation and swaps it in; nothing ever changes inside one.
// Who reads it, and when:
//  - protocol servers (smtp, pop3, imap next): one get() when a client
//    connects; the session keeps that generation for its whole life (a
//    transaction finishes under the rules it started with);
//  - delivery (runner, local agents, remote and LMTP agents): one get() at
//    the start of each delivery attempt;
//  - the daemon's wiring: swaps with set() on the event-loop thread.
// Some settings cannot change while running (spool_dir, mail_root, the
// account after the privilege drop, the resolver, the metrics listener):
// restart_only() carries the running values over into a new generation and
// names what differed ("takes a restart").
// Not in DESIGN's table: layer 4, beside route (it builds a route::table);
// pure, no Asio. tls::server_contexts is only pointed to (owned by the daemon).
// Thread: generation is immutable, share it freely; current is safe from
// any thread (std::atomic<std::shared_ptr>).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "postern/auth/credentials.hpp"
#include "postern/config/config.hpp"
#include "postern/route/table.hpp"
#include "postern/util/cidr.hpp"

namespace postern::tls {
class server_contexts;
}

namespace postern::live {

// Lower-cased login name → the lower-cased sender addresses it may use
// (RFC 6409 6.1: the user's address and its "addresses").
using sender_table = std::map<std::string, std::set<std::string>, std::less<>>;

struct generation {
    // Builds everything from s. tls: the daemon's certificate (nullptr: no
    // TLS listener, no STARTTLS/STLS), which outlives every generation.
    // Throws std::invalid_argument on a malformed password hash (config
    // validation refuses those first).
    explicit generation(config::settings s, std::uint64_t number = 1, tls::server_contexts* tls = nullptr);

    std::uint64_t number; // 1 at start, +1 per reload
    config::settings cfg;
    route::table routes;
    // Users with a password; nullptr when there are none (AUTH and POP3
    // login are then not offered).
    std::shared_ptr<auth::credentials> credentials;
    sender_table senders;
    std::vector<util::cidr> relay_networks;
    tls::server_contexts* tls;
};

// The generation in force. get() is one atomic load: cheap enough for every
// connection and delivery attempt.
class current {
public:
    explicit current(std::shared_ptr<const generation> g) : gen_(std::move(g)) {}
    std::shared_ptr<const generation> get() const { return gen_.load(); }
    void set(std::shared_ptr<const generation> g) { gen_.store(std::move(g)); }

private:
    std::atomic<std::shared_ptr<const generation>> gen_;
};

// The settings that take a restart: copies running's values into next and
// returns the names (top-level keys, or "relay.password_file" for a sub-key)
// of those that differed, in file order.
std::vector<std::string> restart_only(const config::settings& running, config::settings& next);

} // namespace postern::live
