// server/pop3_server.hpp — the POP3 listeners ("mode": "pop3") and the
// per-connection coroutine: a thin shell that drives pop3::session (RFC 1939,
// 2449, 2595, 5034) over the users' Maildirs (mailbox module).
// The maildrop of user local@domain is mail_root/<domain>/<local>, the
// Maildir local delivery writes (lower-case on disk). A user without one yet
// has an empty maildrop; nothing is created for them.
// Security: the same deadlines, connection limits, STLS injection defence
// (inside the session), failed-login delays and address lockout
// (auth::failure_limiter, its own per server) as SMTP AUTH. The maildrop is
// locked (mailbox::lock, flock) from login to the end of the session:
// a second session gets "-ERR [IN-USE]". Files are removed only in the
// UPDATE state after QUIT (RFC 1939 6): a cut connection deletes nothing.
// Passwords are never logged; the user name is.
// Configuration: each session keeps the generation in force when its client
// connected (service::open), as SMTP sessions do.
// Thread: the io_context's thread; every Maildir access and the password
// KDF run on the server's one-thread pool, never the event loop.
#pragma once

#include <memory>

#include "postern/config/config.hpp"
#include "postern/live/generation.hpp"
#include "postern/net/asio.hpp"
#include "postern/server/protocol_server.hpp"
#include "postern/util/clock.hpp"

namespace postern::server {

// bind/start/stop/sessions/listeners: protocol_server. Its graceful stop:
// every session gets "-ERR [SYS/TEMP]" and is closed between commands (a
// RETR under way is sent first); nothing marked deleted is removed, only
// QUIT does that.
class pop3_server : public protocol_server {
public:
    // live: the configuration in force, with the certificate (generation::tls
    // nullptr: no TLS listener, no STLS) and who may log in
    // (generation::credentials nullptr: nobody). live outlives the server.
    pop3_server(asio::io_context& io, const live::current& live, const util::clock& clock);
    ~pop3_server();

private:
    struct shared;
    explicit pop3_server(std::shared_ptr<shared> st);
    static net::awaitable<void> session(std::shared_ptr<shared> st, config::listener l, net::tcp::socket sock);
};

} // namespace postern::server
