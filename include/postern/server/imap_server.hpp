// server/imap_server.hpp — the IMAP listeners ("mode": "imap") and the
// per-connection coroutine: a thin shell that drives imap::session (RFC
// 9051, RFC 3501) and runs the mail commands it hands over on an
// imapd::executor over the user's Maildir++ store (mailbox::store).
// The user local@domain's INBOX is mail_root/<domain>/<local>, the Maildir
// local delivery writes; other folders are its Maildir++ subfolders.
// IDLE (RFC 2177): while the client idles, a watcher coroutine reports
// changes of the selected folder as they happen — inotify on its new/ and
// cur/ (delivery, POP3, other sessions and other Maildir tools all show up
// there), with a slow poll as a fallback — writing untagged responses while
// the session's own coroutine waits for DONE. Both never write at once: the
// session waits for the watcher to end before it answers.
// Security: the same deadlines, connection limits, STARTTLS injection
// defence (inside the session), failed-login delays and address lockout
// (auth::failure_limiter, its own per server) as SMTP AUTH and POP3.
// Before login the command timeout applies; after it RFC 9051 5.4's
// 30-minute autologout minimum. Passwords are never logged; the user is.
// Thread: the io_context's thread; every Maildir access and the password
// KDF run on the server's pool, never the event loop.
#pragma once

#include <memory>

#include "postern/config/config.hpp"
#include "postern/live/generation.hpp"
#include "postern/net/asio.hpp"
#include "postern/server/protocol_server.hpp"
#include "postern/util/clock.hpp"

namespace postern::server {

// bind/start/stop/sessions/listeners: protocol_server. Its graceful stop:
// every session gets "* BYE" between commands (or in IDLE) and is closed.
class imap_server : public protocol_server {
public:
    // live: the configuration in force, with the certificate (generation::tls
    // nullptr: no TLS listener, no STARTTLS) and who may log in
    // (generation::credentials nullptr: nobody). A session keeps the
    // generation it connected under. live outlives the server.
    imap_server(asio::io_context& io, const live::current& live, const util::clock& clock);
    ~imap_server();

private:
    struct shared;
    explicit imap_server(std::shared_ptr<shared> st);
    static net::awaitable<void> session(std::shared_ptr<shared> st, config::listener l, net::tcp::socket sock);
};

} // namespace postern::server
