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
// Configuration: each session takes the generation in force when its client
// connects (service::open) and keeps it to the end; a reload changes what
// the next client gets (live/generation.hpp).
// Thread: everything runs on the io_context's one thread, except the KDF of
// a password check, which runs on the server's own one-thread pool.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "postern/config/config.hpp"
#include "postern/live/generation.hpp"
#include "postern/net/asio.hpp"
#include "postern/server/protocol_server.hpp"
#include "postern/queue/group_committer.hpp"
#include "postern/util/clock.hpp"

namespace postern::server {

// bind/start/stop/sessions/listeners: protocol_server. Its graceful stop
// (SIGTERM) answers "421 4.3.2" to the sessions without an open mail
// transaction at once and to the others once their transaction is done;
// force_close() gives the rest "421 4.3.2" now, their open transaction
// abandoned (not acknowledged, so the client keeps the message and retries).
class smtp_server : public protocol_server {
public:
    // live: the configuration in force, with the certificate (generation::tls
    // nullptr: no listener may use TLS, STARTTLS is not offered) and who may
    // AUTH (generation::credentials nullptr: nobody, AUTH is not offered).
    // live must outlive the server.
    smtp_server(asio::io_context& io, const live::current& live, queue::group_committer& committer,
                const util::clock& clock);
    ~smtp_server();

    std::size_t connections() const noexcept { return total_; }

private:
    struct shared;
    explicit smtp_server(std::shared_ptr<shared> st);
    static net::awaitable<void> session(std::shared_ptr<shared> st, config::listener l, net::tcp::socket sock);

    std::size_t total_ = 0;
};

} // namespace postern::server
