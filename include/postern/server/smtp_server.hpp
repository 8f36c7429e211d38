// server/smtp_server.hpp — the SMTP listeners and the per-connection
// coroutine: a thin shell that drives smtp::server_session (DESIGN "The
// protocol core is sans-I/O"): flush replies, read with a deadline, feed,
// answer RCPT and sender checks from route::table and the user table, run
// STARTTLS / implicit TLS handshakes (tls::stream), check AUTH credentials
// on a worker thread, hand messages to the group committer and wait for
// their batch to be durable before the 250.
// Security: every read and handshake has a deadline (command/data
// timeouts), every buffer a limit (inside the session), connections are
// capped overall and per client address (421 4.7.0 at connect), failed
// logins slow the client down and lock its address out for a while
// (auth::failure_limiter). Passwords are never logged; the user name is.
// Thread: everything runs on the io_context's one thread, except the KDF of
// a password check, which runs on the server's own one-thread pool.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "postern/auth/credentials.hpp"
#include "postern/config/config.hpp"
#include "postern/net/asio.hpp"
#include "postern/queue/group_committer.hpp"
#include "postern/route/table.hpp"
#include "postern/tls/context.hpp"
#include "postern/util/clock.hpp"

namespace postern::server {

class smtp_server {
public:
    // tls: the server certificate (nullptr: no listener may use TLS; STARTTLS
    // is then not offered). credentials: who may AUTH (nullptr: nobody, AUTH
    // is not offered). Both must outlive the server.
    smtp_server(asio::io_context& io, const config::settings& cfg, const route::table& routes,
                queue::group_committer& committer, const util::clock& clock, tls::server_contexts* tls,
                std::shared_ptr<auth::credentials> credentials);
    ~smtp_server();

    // Binds every listener (large backlog: BENCH-NOTES). Throws
    // std::system_error naming the address when one cannot be bound.
    void bind();
    // Starts accepting on the bound listeners.
    void start();
    // Stops accepting; sessions in progress finish on their own.
    void stop();
    // Graceful stop (SIGTERM): stops accepting, answers "421 4.3.2" to the
    // sessions without an open mail transaction at once and to the others
    // once their transaction is done.
    void shutdown();
    // The grace time is over: every remaining session gets "421 4.3.2" now,
    // its open transaction abandoned (not acknowledged, so the client keeps
    // the message and retries).
    void force_close();
    // Sessions still open.
    std::size_t sessions() const noexcept;

    std::size_t connections() const noexcept { return total_; }

private:
    struct shared;
    static net::awaitable<void> session(std::shared_ptr<shared> st, std::size_t index, net::tcp::socket sock);

    std::shared_ptr<shared> st_;
    std::size_t total_ = 0;
};

} // namespace postern::server
