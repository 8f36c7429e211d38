#include "postern/server/smtp_server.hpp"

#include <chrono>
#include <exception>
#include <system_error>

#include "postern/log/log.hpp"
#include "postern/smtp/received.hpp"
#include "postern/smtp/server_session.hpp"
#include "postern/util/cidr.hpp"
#include "postern/util/id.hpp"

namespace postern::server {

using steady = std::chrono::steady_clock;

struct smtp_server::shared {
    asio::io_context& io;
    const config::settings& cfg;
    const route::table& routes;
    queue::group_committer& committer;
    const util::clock& clock;
    smtp::session_config session_cfg;
    std::vector<net::tcp::acceptor> acceptors;
    std::size_t connections = 0;
    std::map<std::string, std::uint32_t> per_ip;
    std::size_t* total = nullptr;
    std::vector<util::cidr> relay_networks;
};

namespace {

// One connection: the socket and its watchdog. Shared with the watchdog's
// handler (Asio's lifetime model: the handler may run after the session ends).
struct connection {
    explicit connection(net::tcp::socket s)
        : sock(std::move(s)), timer(sock.get_executor()) {}
    net::tcp::socket sock;
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
            std::error_code ignored;
            c->sock.cancel(ignored); // the pending read or write ends with operation_aborted
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

// Best effort, never blocking: used for the last words to a client we are
// dropping (timeouts, limits), whose socket may not be writable.
void write_now(net::tcp::socket& sock, std::string& out)
{
    std::error_code ec;
    sock.non_blocking(true, ec);
    asio::write(sock, asio::buffer(out), ec);
    out.clear();
}

// may_relay: the client is in relay_networks (later: or authenticated).
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

void log_spawn_failure(std::exception_ptr e)
{
    log::exception("session_crash", e);
}

// The io thread's read buffer: reads are synchronous (non-blocking) after a
// readiness wait, so idle sessions hold no buffer of their own.
char read_buffer[65536];

} // namespace

smtp_server::smtp_server(asio::io_context& io, const config::settings& cfg,
                         const route::table& routes, queue::group_committer& committer,
                         const util::clock& clock)
    : st_(std::make_shared<shared>(shared{io, cfg, routes, committer, clock, {}, {}, 0, {}, nullptr, {}}))
{
    st_->session_cfg.hostname = cfg.hostname;
    st_->session_cfg.max_message_size = cfg.lim.message_size;
    st_->session_cfg.max_recipients = cfg.lim.recipients;
    st_->session_cfg.max_errors = cfg.lim.errors;
    st_->total = &total_;
    for (const auto& n : cfg.relay_networks)
        if (auto c = util::cidr::parse(n))
            st_->relay_networks.push_back(*c); // config validated every entry
}

void smtp_server::bind()
{
    for (const auto& l : st_->cfg.listeners) {
        std::error_code ec;
        auto addr = asio::ip::make_address(l.host, ec);
        if (ec)
            throw std::system_error(ec, "listener " + l.spec);
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
        log::info("listen").kv("address", l.spec).kv("mode", "smtp");
        st_->acceptors.push_back(std::move(acc));
    }
}

void smtp_server::start()
{
    for (std::size_t i = 0; i < st_->acceptors.size(); ++i)
        asio::co_spawn(st_->io, accept_loop(st_, i), log_spawn_failure);
}

void smtp_server::stop()
{
    for (auto& a : st_->acceptors) {
        std::error_code ec;
        a.close(ec);
    }
}

net::awaitable<void> smtp_server::accept_loop(std::shared_ptr<shared> st, std::size_t index)
{
    auto& acc = st->acceptors[index];
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
        asio::co_spawn(st->io, session(st, std::move(sock)), log_spawn_failure);
    }
}

net::awaitable<void> smtp_server::session(std::shared_ptr<shared> st, net::tcp::socket sock)
{
    std::error_code ec;
    auto remote = sock.remote_endpoint(ec);
    if (ec)
        co_return; // the client left before we looked
    const std::string ip = remote.address().to_string();
    const std::string sid = util::make_session_id();
    auto c = std::make_shared<connection>(std::move(sock));
    c->sock.non_blocking(true, ec);
    c->sock.set_option(net::tcp::no_delay(true), ec);

    smtp::server_session s(st->session_cfg);
    const bool may_relay = util::in_any(st->relay_networks, ip);
    const auto& lim = st->cfg.lim;
    ++*st->total;
    auto& per_ip = st->per_ip[ip];
    bool over = st->connections >= lim.connections || per_ip >= lim.connections_per_ip;
    ++st->connections;
    ++per_ip;
    log::info("connect").kv("session", sid).kv("client", ip).kv("port", remote.port());

    if (over) {
        s.refuse("Error: too many connections");
        write_now(c->sock, s.output());
        log::warn("refuse").kv("session", sid).kv("client", ip).kv("reason", "connection limit");
    } else {
        set_deadline(c, lim.command_timeout);
        arm_watchdog(c);
        bool open = true;
        while (open) {
            switch (s.next()) {
            case smtp::event::need_input: {
                if (!s.output().empty()) {
                    auto [wec, n] = co_await asio::async_write(c->sock, asio::buffer(s.output()), net::use_nothrow);
                    s.output().clear();
                    if (wec) {
                        open = false;
                        break;
                    }
                }
                set_deadline(c, s.phase() == smtp::input_phase::data ? lim.data_timeout : lim.command_timeout);
                for (;;) {
                    std::size_t n = c->sock.read_some(asio::buffer(read_buffer), ec);
                    if (!ec) {
                        s.feed({read_buffer, n});
                        break;
                    }
                    if (ec == asio::error::would_block || ec == asio::error::try_again) {
                        auto [wec] = co_await c->sock.async_wait(net::tcp::socket::wait_read, net::use_nothrow);
                        if (!wec && !c->timed_out)
                            continue;
                    }
                    if (c->timed_out) {
                        s.timeout();
                        write_now(c->sock, s.output());
                        log::info("timeout").kv("session", sid).kv("client", ip);
                    }
                    open = false; // EOF, reset or timeout
                    break;
                }
                break;
            }
            case smtp::event::check_rcpt:
                s.answer_rcpt(verdict_for(st->routes, s.pending_rcpt(), may_relay));
                break;
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
                m.meta.eight_bit = env.body == mail::body_type::eight_bit_mime;
                for (const auto& r : env.recipients) {
                    queue::recipient qr;
                    qr.address = st->routes.canonical(r).str();
                    m.meta.recipients.push_back(std::move(qr));
                }
                std::string for_rcpt = m.meta.recipients.size() == 1 ? m.meta.recipients[0].address : std::string();
                auto date = util::rfc5322_date(now);
                m.parts.push_back(smtp::received_header({s.helo(), ip, st->cfg.hostname, s.protocol(),
                                                         m.meta.id, for_rcpt, date}));
                m.parts.push_back(std::move(s.body()));
                m.meta.size = m.parts[0].size() + m.parts[1].size();
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
                    log::info("message").kv("session", sid).kv("id", id).kv("from", "<" + from + ">")
                        .kv("size", size).kv("nrcpt", nrcpt).kv("proto", proto);
                } else {
                    s.committed(cec);
                    log::error("commit").kv("session", sid).kv("id", id).kv("error", cec.message());
                }
                break;
            }
            case smtp::event::start_tls:
                // Not reachable yet: this shell configures no STARTTLS
                // (session_config::starttls stays false until issue 5 wires
                // tls::stream in). Closing is the safe answer.
                open = false;
                break;
            case smtp::event::close:
                if (!s.output().empty()) {
                    set_deadline(c, std::chrono::seconds(10));
                    co_await asio::async_write(c->sock, asio::buffer(s.output()), net::use_nothrow);
                    s.output().clear();
                }
                open = false;
                break;
            }
        }
    }
    c->finished = true;
    c->timer.cancel();
    c->sock.shutdown(net::tcp::socket::shutdown_both, ec);
    c->sock.close(ec);
    --st->connections;
    if (--st->per_ip[ip] == 0)
        st->per_ip.erase(ip);
    log::info("disconnect").kv("session", sid).kv("client", ip).kv("messages", s.messages())
        .kv("errors", s.errors());
}

} // namespace postern::server
