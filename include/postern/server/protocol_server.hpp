// server/protocol_server.hpp — what every protocol server (SMTP, POP3, IMAP)
// offers the daemon, written once: bind, start, the graceful and the forced
// stop, the open sessions, and its listeners for a reload. A server derives
// from it, handing over its server::service and the function that starts a
// session for an accepted client; the protocol's own behaviour (what a
// shutdown says, which deadlines apply) lives in its session coroutine.
// Ownership: shares the service with the server's state (the accept loops
// and sessions keep both alive). Thread: the io_context's.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "postern/config/config.hpp"
#include "postern/net/asio.hpp"

namespace postern::server {

class service;

class protocol_server {
public:
    using spawn_fn = std::function<void(config::listener, net::tcp::socket)>;

    // Binds every listener of the server's modes; throws std::system_error
    // naming one that cannot be bound.
    void bind();
    // Accepts on the bound listeners; each client's session is spawned.
    void start();
    // Stops accepting; sessions in progress finish on their own.
    void stop();
    // Graceful stop (SIGTERM): stops accepting and wakes the idle sessions,
    // which say their protocol's goodbye between commands.
    void shutdown();
    // The grace time is over: every remaining session is cut now.
    void force_close();
    // Sessions still open.
    std::size_t sessions() const noexcept;
    // Its listeners, for a reload (service::prepare/commit/cancel).
    service& listeners() noexcept;

protected:
    protocol_server(std::shared_ptr<service> svc, spawn_fn spawn);
    ~protocol_server();
    protocol_server(const protocol_server&) = delete;
    protocol_server& operator=(const protocol_server&) = delete;

private:
    std::shared_ptr<service> svc_;
    spawn_fn spawn_;
};

} // namespace postern::server
