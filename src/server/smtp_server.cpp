#include "postern/server/smtp_server.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <set>
#include <system_error>
#include <tuple>

#include <asio/thread_pool.hpp>

#include "postern/auth/failure_limiter.hpp"
#include "postern/auth/sasl.hpp"
#include "postern/log/log.hpp"
#include "postern/mail/header.hpp"
#include "postern/smtp/received.hpp"
#include "postern/smtp/server_session.hpp"
#include "postern/tls/stream.hpp"
#include "postern/util/cidr.hpp"
#include "postern/util/free_space.hpp"
#include "postern/util/id.hpp"
#include "postern/util/strings.hpp"

namespace postern::server {

using steady = std::chrono::steady_clock;

struct smtp_server::shared {
    // One bound listener: its socket and the session settings it implies.
    struct slot {
        const config::listener* listener;
        net::tcp::acceptor acceptor;
        smtp::session_config session_cfg;
    };

    shared(asio::io_context& io_, const config::settings& cfg_, const route::table& routes_,
           queue::group_committer& committer_, const util::clock& clock_, tls::server_contexts* tls_,
           std::shared_ptr<auth::credentials> credentials_)
        : io(io_), cfg(cfg_), routes(routes_), committer(committer_), clock(clock_), tls(tls_),
          credentials(std::move(credentials_)), limiter(cfg_.auth.ip_max_failures, cfg_.auth.ip_window),
          disks({cfg_.spool_dir, cfg_.mail_root}, cfg_.lim.min_free_space)
    {
    }

    // Whether new mail must wait for disk space; logs each change.
    bool storage_low()
    {
        bool changed = false;
        bool low = disks.low(std::chrono::steady_clock::now(), &changed);
        if (changed && low)
            log::warn("storage").kv("result", "low").kv("dir", disks.low_dir())
                .kv("min_free_space", cfg.lim.min_free_space).kv("action", "452 4.3.1 to MAIL and DATA");
        else if (changed)
            log::info("storage").kv("result", "ok");
        return low;
    }

    asio::io_context& io;
    const config::settings& cfg;
    const route::table& routes;
    queue::group_committer& committer;
    const util::clock& clock;
    tls::server_contexts* tls;
    std::shared_ptr<auth::credentials> credentials;
    std::vector<slot> slots;
    std::size_t connections = 0;
    std::map<std::string, std::uint32_t> per_ip;
    std::size_t* total = nullptr;
    std::vector<util::cidr> relay_networks;
    // Lower-cased login name → the lower-cased sender addresses it may use.
    std::map<std::string, std::set<std::string>, std::less<>> senders; // = sender_table
    auth::failure_limiter limiter;
    util::free_space_monitor disks;
    // Declared last, so it is joined before anything its jobs use goes away.
    asio::thread_pool pool{1};
};

namespace {

// Inside DATA or a BDAT chunk the deadline restarts on progress: a read that
// ended a line (Postfix's per-record deadline) or brought a good part of a
// buffer (binary BDAT content has no lines). A client dribbling a byte at a
// time makes no progress and is cut off (slowloris).
bool data_progress(smtp::input_phase phase, std::string_view bytes)
{
    constexpr std::size_t progress_bytes = 4096;
    return phase == smtp::input_phase::data &&
           (bytes.size() >= progress_bytes || bytes.find('\n') != std::string_view::npos);
}

// One connection: the stream and its watchdog. Shared with the watchdog's
// handler (Asio's lifetime model: the handler may run after the session ends).
struct connection {
    explicit connection(net::tcp::socket s) : stream(std::move(s)), timer(stream.socket().get_executor()) {}
    tls::stream stream;
    asio::steady_timer timer;
    steady::time_point deadline;
    bool timed_out = false;
    bool finished = false;
};

void arm_watchdog(const std::shared_ptr<connection>& c)
{
    c->timer.expires_at(c->deadline);
    c->timer.async_wait([c](std::error_code ec) {
        if (ec || c->finished)
            return;
        if (steady::now() >= c->deadline) {
            c->timed_out = true;
            c->stream.cancel(); // the pending read, write or handshake ends with operation_aborted
            return;
        }
        arm_watchdog(c);
    });
}

void set_deadline(const std::shared_ptr<connection>& c, std::chrono::seconds in)
{
    c->deadline = steady::now() + in;
    if (c->deadline < c->timer.expiry())
        arm_watchdog(c); // re-arm earlier; the old wait is cancelled
}

// Hands a message to the group committer and completes on the session's
// executor once its batch is durable.
template <class Token>
auto async_commit(queue::group_committer& committer, queue::new_message msg, Token&& token)
{
    return asio::async_initiate<Token, void(std::error_code)>(
        [&committer](auto handler, queue::new_message m) {
            auto ex = asio::get_associated_executor(handler);
            auto h = std::make_shared<decltype(handler)>(std::move(handler));
            committer.submit(std::move(m), [h, ex](util::result<void> r) {
                asio::post(ex, [h, ec = r.error()]() mutable { (*h)(ec); });
            });
        },
        token, std::move(msg));
}

// Runs the password check (a full KDF, ~0.1 s) on the pool and completes on
// the session's executor: (error, the password is right).
template <class Token>
auto async_check_password(asio::thread_pool& pool, std::shared_ptr<auth::credentials> creds, std::string user,
                          std::string password, Token&& token)
{
    return asio::async_initiate<Token, void(std::error_code, bool)>(
        [&pool](auto handler, std::shared_ptr<auth::credentials> c, std::string u, std::string p) {
            auto ex = asio::get_associated_executor(handler);
            auto h = std::make_shared<decltype(handler)>(std::move(handler));
            asio::post(pool, [h, ex, c = std::move(c), u = std::move(u), p = std::move(p)]() mutable {
                auto r = c->check(u, p);
                std::fill(p.begin(), p.end(), '\0');
                std::error_code ec = r ? std::error_code() : r.error();
                bool ok = r && *r;
                asio::post(ex, [h, ec, ok]() mutable { (*h)(ec, ok); });
            });
        },
        token, std::move(creds), std::move(user), std::move(password));
}

// Best effort, never blocking: used for the last words to a plain-text
// client we are dropping (timeouts, limits), whose socket may not be writable.
void write_now(net::tcp::socket& sock, std::string& out)
{
    std::error_code ec;
    sock.non_blocking(true, ec);
    asio::write(sock, asio::buffer(out), ec);
    out.clear();
}

// The last words after a timeout: at once in plain text; inside TLS a short,
// bounded write (a TLS record cannot be written without blocking).
net::awaitable<void> say_last_words(std::shared_ptr<connection> c, std::string& out)
{
    if (!c->stream.tls_active()) {
        write_now(c->stream.socket(), out);
        co_return;
    }
    c->timed_out = false;
    c->deadline = steady::now() + std::chrono::seconds(5);
    arm_watchdog(c);
    co_await c->stream.write_all(asio::buffer(out));
    out.clear();
}

smtp::rcpt_verdict verdict_for(const route::table& routes, const mail::address& a, bool may_relay)
{
    switch (routes.classify(a)) {
    case route::kind::local:
    case route::kind::alias:
        return smtp::rcpt_verdict::accept;
    case route::kind::unknown_user:
        return smtp::rcpt_verdict::unknown_user;
    case route::kind::remote:
        // DESIGN promise 5: no open relay. An address literal is never relayed.
        return may_relay && !a.is_address_literal() ? smtp::rcpt_verdict::accept
                                                    : smtp::rcpt_verdict::relay_denied;
    case route::kind::routing_trick: // '%', '!', quoted '@': never relayed, not even for us
        return smtp::rcpt_verdict::relay_denied;
    }
    return smtp::rcpt_verdict::relay_denied;
}

// RFC 6409 6.1: an authenticated user may send as the addresses the
// configuration gives them (or as anyone, with auth.any_sender). The null
// sender is always allowed (notifications, RFC 8098 MDNs).
using sender_table = std::map<std::string, std::set<std::string>, std::less<>>;

bool sender_owned(const sender_table& senders, bool any_sender, std::string_view user, const mail::path& sender)
{
    if (any_sender || sender.null)
        return true;
    auto it = senders.find(user);
    return it != senders.end() && it->second.count(util::to_lower(sender.addr.str())) != 0;
}

void log_spawn_failure(std::exception_ptr e)
{
    log::exception("session_crash", e);
}

// The io thread's read buffer: reads are synchronous (non-blocking) after a
// readiness wait, so idle sessions hold no buffer of their own.
char read_buffer[65536];

} // namespace

smtp_server::smtp_server(asio::io_context& io, const config::settings& cfg, const route::table& routes,
                         queue::group_committer& committer, const util::clock& clock, tls::server_contexts* tls,
                         std::shared_ptr<auth::credentials> credentials)
    : st_(std::make_shared<shared>(io, cfg, routes, committer, clock, tls, std::move(credentials)))
{
    st_->total = &total_;
    for (const auto& n : cfg.relay_networks)
        if (auto c = util::cidr::parse(n))
            st_->relay_networks.push_back(*c); // config validated every entry
    for (const auto& u : cfg.users) {
        if (u.password.empty())
            continue;
        auto& mine = st_->senders[util::to_lower(u.address)];
        mine.insert(util::to_lower(u.address));
        for (const auto& a : u.addresses)
            mine.insert(util::to_lower(a));
    }
}

smtp_server::~smtp_server() = default;

void smtp_server::bind()
{
    for (const auto& l : st_->cfg.listeners) {
        std::error_code ec;
        auto addr = asio::ip::make_address(l.host, ec);
        if (ec)
            throw std::system_error(ec, "listener " + l.spec);
        if (l.tls != config::listener_tls::none && st_->tls == nullptr)
            throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                    "listener " + l.spec + ": TLS without a certificate");
        net::tcp::endpoint ep(addr, l.port);
        net::tcp::acceptor acc(st_->io);
        acc.open(ep.protocol(), ec);
        if (!ec)
            acc.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec && ep.address().is_v6())
            acc.set_option(asio::ip::v6_only(true), ec);
        if (!ec)
            acc.bind(ep, ec);
        // OpenSMTPD's backlog of 5 drops simultaneous connects (BENCH-NOTES).
        if (!ec)
            acc.listen(4096, ec);
        if (ec)
            throw std::system_error(ec, "listener " + l.spec);
        smtp::session_config sc;
        sc.hostname = st_->cfg.hostname;
        sc.max_message_size = st_->cfg.lim.message_size;
        sc.max_recipients = st_->cfg.lim.recipients;
        sc.max_errors = st_->cfg.lim.errors;
        sc.starttls = l.tls == config::listener_tls::starttls;
        sc.implicit_tls = l.tls == config::listener_tls::implicit;
        sc.submission = l.mode == config::listener_mode::submission;
        sc.max_auth_failures = st_->cfg.auth.max_failures;
        sc.auth = st_->credentials && !st_->senders.empty() ? smtp::auth_offer::tls_only : smtp::auth_offer::never;
        const char* mode = sc.submission ? "submission" : "smtp";
        const char* tls_mode = sc.implicit_tls ? "implicit" : sc.starttls ? "starttls" : "none";
        log::info("listen").kv("address", l.spec).kv("mode", mode).kv("tls", tls_mode);
        st_->slots.push_back({&l, std::move(acc), std::move(sc)});
    }
}

void smtp_server::start()
{
    for (std::size_t i = 0; i < st_->slots.size(); ++i)
        asio::co_spawn(st_->io, accept_loop(st_, i), log_spawn_failure);
}

void smtp_server::stop()
{
    for (auto& slot : st_->slots) {
        std::error_code ec;
        slot.acceptor.close(ec);
    }
}

net::awaitable<void> smtp_server::accept_loop(std::shared_ptr<shared> st, std::size_t index)
{
    auto& acc = st->slots[index].acceptor;
    asio::steady_timer pause(st->io);
    for (;;) {
        auto [ec, sock] = co_await acc.async_accept(net::use_nothrow);
        if (ec == asio::error::operation_aborted || !acc.is_open())
            co_return;
        if (ec) {
            // EMFILE and friends: say so, breathe, go on (never spin).
            log::warn("accept").kv("error", ec.message());
            pause.expires_after(std::chrono::milliseconds(100));
            co_await pause.async_wait(net::use_nothrow);
            continue;
        }
        asio::co_spawn(st->io, session(st, index, std::move(sock)), log_spawn_failure);
    }
}

net::awaitable<void> smtp_server::session(std::shared_ptr<shared> st, std::size_t index, net::tcp::socket sock)
{
    std::error_code ec;
    auto remote = sock.remote_endpoint(ec);
    if (ec)
        co_return; // the client left before we looked
    const std::string ip = remote.address().to_string();
    const std::string sid = util::make_session_id();
    auto c = std::make_shared<connection>(std::move(sock));
    c->stream.socket().non_blocking(true, ec);
    c->stream.socket().set_option(net::tcp::no_delay(true), ec);

    auto session_cfg = st->slots[index].session_cfg;
    // auth.plaintext_loopback: for tests on one machine, AUTH without TLS
    // from loopback only; everyone else must encrypt first (RFC 4954 4).
    if (session_cfg.auth == smtp::auth_offer::tls_only && st->cfg.auth.plaintext_loopback &&
        remote.address().is_loopback())
        session_cfg.auth = smtp::auth_offer::always;
    smtp::server_session s(session_cfg);
    const bool in_relay_networks = util::in_any(st->relay_networks, ip);
    const auto& lim = st->cfg.lim;
    ++*st->total;
    auto& per_ip = st->per_ip[ip];
    bool over = st->connections >= lim.connections || per_ip >= lim.connections_per_ip;
    ++st->connections;
    ++per_ip;
    log::info("connect").kv("session", sid).kv("client", ip).kv("port", remote.port())
        .kv("listener", st->slots[index].listener->spec);

    std::string auth_user; // the login name once AUTH succeeded (lower-cased)
    std::unique_ptr<char[]> tls_buffer; // TLS sessions read into their own buffer
    constexpr std::size_t tls_buffer_size = 16384;
    bool open = true;

    if (over) {
        // Inside implicit TLS a plain 421 would be noise: just close.
        if (!session_cfg.implicit_tls) {
            s.refuse("Error: too many connections");
            write_now(c->stream.socket(), s.output());
        }
        log::warn("refuse").kv("session", sid).kv("client", ip).kv("reason", "connection limit");
        open = false;
    } else {
        set_deadline(c, lim.command_timeout);
        arm_watchdog(c);
    }
    if (open && session_cfg.implicit_tls) {
        // RFC 8314 3.3: the handshake comes first, then the greeting.
        auto hec = co_await c->stream.handshake_server(st->tls->current());
        if (hec) {
            log::info("tls").kv("session", sid).kv("client", ip).kv("result", "failed")
                .kv("error", c->timed_out ? std::string("timeout") : hec.message());
            s.tls_started(false, {});
            open = false;
        } else {
            s.tls_started(true, c->stream.tls_description());
            tls_buffer = std::make_unique<char[]>(tls_buffer_size);
            log::info("tls").kv("session", sid).kv("client", ip).kv("result", "ok")
                .kv("tls", s.tls_description());
        }
    }
    // The read deadline runs per command, not per read: it restarts only
    // when we answered something, when DATA begins, and inside DATA when a
    // line ended (Postfix's per-record deadline). A client dribbling one
    // byte a second is cut off (slowloris) instead of holding its slot.
    bool restart_deadline = true;
    auto last_phase = smtp::input_phase::command;
    while (open) {
        switch (s.next()) {
        case smtp::event::need_input: {
            if (!s.output().empty()) {
                auto wec = co_await c->stream.write_all(asio::buffer(s.output()));
                s.output().clear();
                restart_deadline = true;
                if (wec) {
                    open = false;
                    break;
                }
            }
            if (s.phase() != last_phase) {
                last_phase = s.phase();
                restart_deadline = true;
            }
            if (restart_deadline)
                set_deadline(c, last_phase == smtp::input_phase::data ? lim.data_timeout : lim.command_timeout);
            restart_deadline = false;
            if (c->stream.tls_active()) {
                auto [rec, n] = co_await c->stream.read_some(asio::buffer(tls_buffer.get(), tls_buffer_size));
                if (!rec) {
                    restart_deadline = data_progress(last_phase, {tls_buffer.get(), n});
                    s.set_storage_low(st->storage_low());
                    s.feed({tls_buffer.get(), n});
                    break;
                }
            } else {
                // Plain text: wait for readiness, then read into the loop's
                // one buffer, so an idle session holds no buffer of its own.
                bool got = false;
                for (;;) {
                    std::size_t n = c->stream.socket().read_some(asio::buffer(read_buffer), ec);
                    if (!ec) {
                        restart_deadline = data_progress(last_phase, {read_buffer, n});
                        s.set_storage_low(st->storage_low());
                        s.feed({read_buffer, n});
                        got = true;
                        break;
                    }
                    if (ec != asio::error::would_block && ec != asio::error::try_again)
                        break;
                    auto [wec] = co_await c->stream.socket().async_wait(net::tcp::socket::wait_read,
                                                                        net::use_nothrow);
                    if (wec || c->timed_out)
                        break;
                }
                if (got)
                    break;
            }
            if (c->timed_out) {
                s.timeout();
                co_await say_last_words(c, s.output());
                log::info("timeout").kv("session", sid).kv("client", ip);
            }
            open = false; // EOF, reset or timeout
            break;
        }
        case smtp::event::check_rcpt: {
            // RFC 5321 4.1.1.3 lets a server decline the relaying a source
            // route implies: never relay for one, authenticated or not.
            const bool may_relay = (in_relay_networks || s.authenticated()) && !s.pending_rcpt_source_routed();
            s.answer_rcpt(verdict_for(st->routes, s.pending_rcpt(), may_relay));
            break;
        }
        case smtp::event::check_sender: {
            bool owned = sender_owned(st->senders, st->cfg.auth.any_sender, auth_user, s.envelope().sender);
            if (!owned)
                log::info("sender_refused").kv("session", sid).kv("client", ip).kv("user", auth_user)
                    .kv("from", s.envelope().sender.str());
            s.answer_sender(owned);
            break;
        }
        case smtp::event::check_auth: {
            const auto& req = s.pending_auth();
            const bool plain = req.mechanism == smtp::sasl_mechanism::plain;
            const char* mech = plain ? "PLAIN" : "LOGIN";
            if (st->limiter.locked(ip, st->clock.now())) {
                // Not even checked: a locked-out client learns nothing.
                s.answer_auth(smtp::auth_verdict::locked);
                log::warn("auth").kv("session", sid).kv("client", ip).kv("mechanism", mech)
                    .kv("result", "locked");
                break;
            }
            auto creds = plain ? auth::decode_plain(req.first) : auth::decode_login(req.first, req.second);
            if (!creds && creds.error() != util::errc::refused) {
                s.answer_auth(smtp::auth_verdict::malformed);
                log::info("auth").kv("session", sid).kv("client", ip).kv("mechanism", mech)
                    .kv("result", "malformed");
                break;
            }
            // Login names compare without case, as the users' addresses do.
            std::string user = creds ? util::to_lower(creds->username) : std::string();
            bool ok = false;
            std::error_code aec;
            if (creds) {
                set_deadline(c, lim.command_timeout);
                std::tie(aec, ok) = co_await async_check_password(st->pool, st->credentials, user,
                                                                  std::move(creds->password), net::use_nothrow);
            }
            if (aec) {
                s.answer_auth(smtp::auth_verdict::temp_fail);
                log::error("auth").kv("session", sid).kv("client", ip).kv("mechanism", mech).kv("user", user)
                    .kv("result", "error").kv("error", aec.message());
                break;
            }
            if (ok) {
                auth_user = user;
                s.answer_auth(smtp::auth_verdict::ok);
                log::info("auth").kv("session", sid).kv("client", ip).kv("mechanism", mech).kv("user", user)
                    .kv("result", "ok");
                break;
            }
            // A failure: counted for the address, and answered after a delay
            // that grows with each failure on this connection.
            st->limiter.failed(ip, st->clock.now());
            log::warn("auth").kv("session", sid).kv("client", ip).kv("mechanism", mech).kv("user", user)
                .kv("result", "failed").kv("failures", s.auth_failures() + 1);
            asio::steady_timer delay(st->io);
            delay.expires_after(st->cfg.auth.failure_delay * (s.auth_failures() + 1));
            co_await delay.async_wait(net::use_nothrow);
            s.answer_auth(smtp::auth_verdict::invalid);
            break;
        }
        case smtp::event::commit: {
            const auto& env = s.envelope();
            auto now = st->clock.now();
            queue::new_message m;
            m.meta.id = util::make_queue_id(now);
            m.meta.sender = env.sender.null ? std::string() : env.sender.addr.str();
            m.meta.received_at = util::unix_seconds(now);
            m.meta.client_ip = ip;
            m.meta.helo = std::string(s.helo());
            m.meta.smtputf8 = env.smtputf8;
            m.meta.eight_bit = env.body != mail::body_type::seven_bit;
            m.meta.binary = env.body == mail::body_type::binary_mime;
            m.meta.ret = static_cast<std::uint8_t>(env.ret);
            m.meta.envid = env.envid;
            for (std::size_t i = 0; i < env.recipients.size(); ++i) {
                queue::recipient qr;
                qr.address = st->routes.canonical(env.recipients[i]).str();
                if (i < env.rcpt_dsn.size()) {
                    qr.notify = env.rcpt_dsn[i].notify;
                    qr.orcpt = env.rcpt_dsn[i].orcpt;
                }
                m.meta.recipients.push_back(std::move(qr));
            }
            std::string for_rcpt = m.meta.recipients.size() == 1 ? m.meta.recipients[0].address : std::string();
            auto date = util::rfc5322_date(now);
            m.parts.push_back(smtp::received_header({s.helo(), ip, st->cfg.hostname, s.protocol(), m.meta.id,
                                                     for_rcpt, date, s.tls_description()}));
            // RFC 6409 8.2, 8.3: a submission server completes what a mail
            // client left out. Only for submission (and AUTH) clients: an MX
            // must not alter mail in transit.
            if (session_cfg.submission || s.authenticated()) {
                auto added = mail::missing_header_fields(
                    s.body(), {.from = {}, .date = date, .message_id = "<" + m.meta.id + "@" + st->cfg.hostname + ">"});
                if (!added.empty())
                    m.parts.push_back(std::move(added));
            }
            m.parts.push_back(std::move(s.body()));
            m.meta.size = 0;
            for (const auto& part : m.parts)
                m.meta.size += part.size();
            const auto id = m.meta.id;
            const auto from = m.meta.sender;
            const auto size = m.meta.size;
            const auto nrcpt = m.meta.recipients.size();
            const std::string proto(s.protocol()); // committed() resets the transaction
            // The disk may take a while under load; the client waits for
            // its 250 (RFC 5321 4.5.3.2.6 gives it 10 minutes).
            set_deadline(c, lim.data_timeout);
            auto [cec] = co_await async_commit(st->committer, std::move(m), net::use_nothrow);
            if (!cec) {
                s.committed(id);
                auto line = log::info("message");
                line.kv("session", sid).kv("id", id).kv("from", "<" + from + ">").kv("size", size)
                    .kv("nrcpt", nrcpt).kv("proto", proto);
                if (!auth_user.empty())
                    line.kv("user", auth_user);
            } else {
                s.committed(cec);
                log::error("commit").kv("session", sid).kv("id", id).kv("error", cec.message());
            }
            break;
        }
        case smtp::event::start_tls: {
            // The 220 goes out in plain text; then the handshake, bounded by
            // the command timeout (a client that stalls in it is dropped).
            auto wec = co_await c->stream.write_all(asio::buffer(s.output()));
            s.output().clear();
            if (wec) {
                open = false;
                break;
            }
            set_deadline(c, lim.command_timeout);
            auto hec = co_await c->stream.handshake_server(st->tls->current());
            if (hec) {
                log::info("tls").kv("session", sid).kv("client", ip).kv("result", "failed")
                    .kv("error", c->timed_out ? std::string("timeout") : hec.message());
                s.tls_started(false, {});
                break;
            }
            s.tls_started(true, c->stream.tls_description());
            auth_user.clear(); // RFC 3207 4.2: the session forgot the login too
            tls_buffer = std::make_unique<char[]>(tls_buffer_size);
            log::info("tls").kv("session", sid).kv("client", ip).kv("result", "ok").kv("tls", s.tls_description());
            break;
        }
        case smtp::event::close:
            if (!s.output().empty()) {
                set_deadline(c, std::chrono::seconds(10));
                co_await c->stream.write_all(asio::buffer(s.output()));
                s.output().clear();
            }
            open = false;
            break;
        }
    }
    if (c->stream.tls_active() && !c->timed_out) {
        // close_notify (RFC 8446 6.1), waiting only briefly for the client's.
        set_deadline(c, std::chrono::seconds(2));
        co_await c->stream.shutdown(std::chrono::milliseconds(500));
    }
    c->finished = true;
    c->timer.cancel();
    c->stream.socket().shutdown(net::tcp::socket::shutdown_both, ec);
    c->stream.socket().close(ec);
    --st->connections;
    if (--st->per_ip[ip] == 0)
        st->per_ip.erase(ip);
    auto line = log::info("disconnect");
    line.kv("session", sid).kv("client", ip).kv("messages", s.messages()).kv("errors", s.errors());
    if (!auth_user.empty())
        line.kv("user", auth_user);
}

} // namespace postern::server
