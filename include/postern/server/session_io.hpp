// server/session_io.hpp — what every protocol shell of the server module
// shares (SMTP now, POP3, IMAP): binding a listener, the accept loop, one
// connection with its watchdog, reading into the loop's shared buffer, the
// last words to a client being dropped, the TLS handshake with its log line,
// connection-count limits, and running blocking work (password KDF, Maildir
// I/O) on a worker pool without blocking the event loop.
// Security: every read and handshake of a connection is bounded by the
// deadline the shell sets (set_deadline); a stalled peer is cancelled by the
// watchdog, never waited for. Plain-text sessions hold no read buffer while
// idle (10,000 idle clients cost no 64 KiB each).
// Thread: the io_context's one thread, except the functions offload() runs.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>

#include "postern/auth/credentials.hpp"
#include "postern/auth/failure_limiter.hpp"
#include "postern/config/config.hpp"
#include "postern/live/generation.hpp"
#include "postern/metrics/metrics.hpp"
#include "postern/net/asio.hpp"
#include "postern/tls/context.hpp"
#include "postern/tls/stream.hpp"
#include "postern/util/clock.hpp"

namespace postern::server {

using steady = std::chrono::steady_clock;

// One connection: the stream, its watchdog and (once TLS is active) its own
// read buffer. Shared with the watchdog's handler (Asio's lifetime model:
// the handler may run after the session ends).
struct connection {
    explicit connection(net::tcp::socket s) : stream(std::move(s)), timer(stream.socket().get_executor()) {}
    tls::stream stream;
    asio::steady_timer timer;
    steady::time_point deadline;
    bool timed_out = false;
    bool finished = false;
    // Graceful stop: the shell sets idle while it waits for a command with no
    // work of the client's open (no mail transaction); connection_set sets
    // stopping and cancels idle reads. A shell that sees stopping says its
    // protocol's "shutting down" and closes once nothing is open.
    bool idle = false;
    bool stopping = false;
    std::unique_ptr<char[]> tls_buffer; // TLS reads need a buffer per session
};

// The live connections of one server, for a graceful stop (SIGTERM).
class connection_set {
public:
    // A connection added after stop_idle() is stopping from the start.
    void add(const std::shared_ptr<connection>& c);
    void remove(const std::shared_ptr<connection>& c);
    // Marks every connection stopping and wakes those waiting idle.
    void stop_idle();
    // Marks every connection stopping and cancels whatever each waits for
    // (a transaction still open past the grace time).
    void stop_all();
    std::size_t size() const noexcept { return live_.size(); }

private:
    std::set<std::shared_ptr<connection>> live_;
    bool stopping_ = false;
};

// Starts the watchdog at c->deadline: when it passes, timed_out is set and
// the pending read, write or handshake ends with operation_aborted.
void arm_watchdog(const std::shared_ptr<connection>& c);
// Moves the deadline to now + in (re-arming earlier when needed).
void set_deadline(const std::shared_ptr<connection>& c, std::chrono::seconds in);

// Some bytes from the client, or empty when the connection ended (EOF, reset,
// or the deadline: then c->timed_out). The view is valid until the next
// co_await: feed it to the session at once.
net::awaitable<std::string_view> read_some(std::shared_ptr<connection> c);

// Best effort, never blocking: the last words to a plain-text client we are
// dropping (timeouts, limits), whose socket may not be writable. Clears out.
void write_now(net::tcp::socket& sock, std::string& out);
// The last words after a timeout: at once in plain text; inside TLS a short,
// bounded write (a TLS record cannot be written without blocking).
net::awaitable<void> say_last_words(std::shared_ptr<connection> c, std::string& out);
// Writes out and clears it; false when the client is gone.
net::awaitable<bool> flush(std::shared_ptr<connection> c, std::string& out);

// The server side of a TLS handshake, bounded by the current deadline, logged
// as one "tls" line. True when TLS is now active.
net::awaitable<bool> handshake(std::shared_ptr<connection> c, tls::server_contexts& tls, std::string_view sid,
                               std::string_view ip);

// close_notify when TLS is up (RFC 8446 6.1, waiting only briefly for the
// client's), then the TCP close. The watchdog ends with it.
net::awaitable<void> close(std::shared_ptr<connection> c);

// Concurrent connections overall and per client address (limits.connections,
// limits.connections_per_ip), per server.
class connection_counter {
public:
    // Counts a new connection; false when it is over a limit (it is counted
    // all the same: release() it like any other).
    bool admit(const std::string& ip, const config::limits& lim);
    void release(const std::string& ip);
    std::size_t current() const noexcept { return connections_; }

private:
    std::size_t connections_ = 0;
    std::map<std::string, std::uint32_t> per_ip_;
};

// Opens, binds and listens (a large backlog: BENCH-NOTES; OpenSMTPD's 5 drops
// simultaneous connects), and logs the listener. tls_available: a
// certificate is loaded (a TLS listener without one is refused). Throws
// std::system_error naming the listener.
// mode: the log line's mode when the listener is no mail protocol's.
net::tcp::acceptor bind_listener(asio::io_context& io, const config::listener& l, bool tls_available,
                                 const char* mode = nullptr);

// Accepts until the acceptor is closed, handing each socket to spawn.
// Accept errors (EMFILE and friends) are logged and followed by a short pause,
// never a spin.
net::awaitable<void> accept_loop(net::tcp::acceptor& acc, std::function<void(net::tcp::socket)> spawn);

// One accepted client, as a session begins.
struct client {
    std::shared_ptr<connection> c;
    std::string ip;
    std::string sid;       // the session id of its log lines
    bool loopback = false;
    bool admitted = false; // within the connection limits
    // The configuration in force when the client connected: the session
    // keeps it to the end, whatever a reload does meanwhile.
    std::shared_ptr<const live::generation> gen;
    config::listener listener; // the one it connected to, as configured then
};

// The accepting side every protocol server shares: its listeners, the live
// connections with their counts and metrics, a graceful stop, the reload of
// its listeners. Owned by the server's shared state (the accept loops and
// sessions keep it alive). modes: the listener modes this server serves.
class service {
public:
    service(asio::io_context& io, metrics::protocol proto, std::vector<config::listener_mode> modes,
            const live::current& live)
        : io_(io), proto_(proto), modes_(std::move(modes)), current_(live)
    {
    }

    bool owns(config::listener_mode m) const;
    // Binds every listener of its modes in the current generation (throws
    // std::system_error naming the one that cannot be bound).
    void bind();
    std::size_t listeners() const noexcept { return slots_.size(); }

    // Accepts on every listener; spawn(client's listener, socket) starts the session.
    using spawn_fn = std::function<void(config::listener, net::tcp::socket)>;
    void start(spawn_fn spawn);
    // Stops accepting.
    void stop();
    // Stops accepting and wakes the idle sessions (connection_set::stop_idle).
    void shutdown();
    void force_close();
    std::size_t sessions() const noexcept { return live_.size(); }

    // Reload of the listeners, in steps over every server so that a bind
    // error refuses the reload before anything changed (bind new, swap,
    // close old). 1. prepare(): binds the listeners of next (its modes) at
    // addresses it has none on, and keeps them aside; throws
    // std::system_error (nothing kept) when one cannot be bound or wants TLS
    // without a certificate. 2. commit(): accepts on those, gives the
    // addresses it keeps their new settings (mode, tls: the next client
    // gets them) and closes the rest (sessions on them go on). Or cancel():
    // closes what prepare() bound. An address moving to another server's
    // mode is the caller's to refuse (it is bound here still).
    void prepare(const live::generation& next);
    void commit();
    void cancel();

    // A new connection from a listener: non-blocking, no Nagle, a session
    // id, the current generation, counted against its limits (admitted
    // false when over one) and logged ("connect"). nullopt when the client
    // left before we looked.
    std::optional<client> open(net::tcp::socket sock, config::listener l);
    // The session's end: TLS close_notify, TCP close, counts released.
    net::awaitable<void> close(client& cl);

private:
    // Shared with its accept loop, which outlives a close() of the acceptor.
    struct slot {
        config::listener listener;
        net::tcp::acceptor acceptor;
    };
    static net::awaitable<void> accept_on(std::shared_ptr<slot> s, spawn_fn spawn);
    void run(const std::shared_ptr<slot>& s);

    asio::io_context& io_;
    metrics::protocol proto_;
    std::vector<config::listener_mode> modes_;
    const live::current& current_;
    std::vector<std::shared_ptr<slot>> slots_;
    std::vector<std::shared_ptr<slot>> staged_; // prepare()d, not yet committed
    std::vector<config::listener> next_;        // prepare()d: the wanted ones
    spawn_fn spawn_;                            // once started
    bool stopped_ = false;                      // for good: a reload binds nothing
    connection_counter counter_;
    connection_set live_;
};

// The completion handler of every co_spawn'ed session: a session that throws
// is logged and contained, the server goes on.
void log_spawn_failure(std::exception_ptr e);

// Runs f() on the pool and resumes the calling coroutine on its own executor
// with f's result. For the blocking work a session needs (password KDF,
// Maildir reads and renames); f must not throw and must own what it uses.
// Call it as `auto op = offload(pool, std::move(job)); co_await std::move(op);`
// with named objects: g++ 12 destroys a lambda temporary inside a co_await
// expression twice (GCC PR 100611: a double free of its captured strings).
template <class F>
auto offload(asio::thread_pool& pool, F f)
{
    using result = std::invoke_result_t<F&>;
    return asio::async_initiate<const decltype(asio::use_awaitable)&, void(result)>(
        [&pool](auto handler, F fn) {
            auto ex = asio::get_associated_executor(handler);
            auto h = std::make_shared<decltype(handler)>(std::move(handler));
            asio::post(pool, [h, ex, fn = std::move(fn)]() mutable {
                auto r = fn();
                asio::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
            });
        },
        asio::use_awaitable, std::move(f));
}

// A failed login (SMTP AUTH, POP3; IMAP next): counted for the client's
// address (the lockout of auth.ip_max_failures) and in the metrics, then
// answered only after failure_delay × the failures on this connection so
// far, this one included — a guesser gets slower with every try. The caller
// logs it (its protocol's fields).
net::awaitable<void> login_failed(auth::failure_limiter& limiter, std::string ip, util::time_point now,
                                  std::chrono::milliseconds failure_delay, std::uint32_t failures);

// The password step of a mail-access login (POP3, IMAP): a locked-out
// address is not even checked; the KDF runs on the pool; a failure waits
// login_failed()'s delay. Logged as one "auth" line with proto and user
// (result locked, error or failed); success is left to the caller, which
// logs it with what it opened. failures: this connection's so far.
enum class login_check { ok, invalid, locked, error };
net::awaitable<login_check> verify_login(asio::thread_pool& pool, auth::failure_limiter& limiter,
                                         const util::clock& clock, const live::generation& gen,
                                         std::shared_ptr<connection> c, const client& cl, std::string proto,
                                         std::string user, std::string password, std::uint32_t failures);

// A user's Maildir (POP3's maildrop, IMAP's INBOX): the one local delivery
// writes for the address, mail_root/<domain>/<local>. Empty when the login
// name cannot name a directory safely (never the case for a configured
// user; checked all the same, as a path is built from it).
std::string user_maildir(const std::string& mail_root, const std::string& user);

// The password check (a full KDF, ~0.1 s) on the pool: (error, whether the
// password is right). The password is wiped once checked.
net::awaitable<std::tuple<std::error_code, bool>> check_password(asio::thread_pool& pool,
                                                                 std::shared_ptr<auth::credentials> creds,
                                                                 std::string user, std::string password);

} // namespace postern::server
