#include "postern/server/session_io.hpp"

#include <algorithm>
#include <exception>
#include <system_error>

#include "postern/log/log.hpp"
#include "postern/metrics/metrics.hpp"
#include "postern/route/table.hpp"
#include "postern/util/id.hpp"

namespace postern::server {

namespace {

// The io thread's read buffer: plain-text reads are synchronous
// (non-blocking) after a readiness wait, so idle sessions hold no buffer.
char read_buffer[65536];
constexpr std::size_t tls_buffer_size = 16384; // one TLS record

const char* mode_name(config::listener_mode m)
{
    switch (m) {
    case config::listener_mode::smtp: return "smtp";
    case config::listener_mode::submission: return "submission";
    case config::listener_mode::pop3: return "pop3";
    case config::listener_mode::imap: return "imap";
    }
    return "?";
}

const char* tls_name(config::listener_tls t)
{
    switch (t) {
    case config::listener_tls::starttls: return "starttls";
    case config::listener_tls::implicit: return "implicit";
    case config::listener_tls::none: return "none";
    }
    return "?";
}

} // namespace

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

net::awaitable<std::string_view> read_some(std::shared_ptr<connection> c)
{
    if (c->stream.tls_active()) {
        if (!c->tls_buffer)
            c->tls_buffer = std::make_unique<char[]>(tls_buffer_size);
        auto [rec, n] = co_await c->stream.read_some(asio::buffer(c->tls_buffer.get(), tls_buffer_size));
        co_return rec ? std::string_view() : std::string_view(c->tls_buffer.get(), n);
    }
    // Plain text: wait for readiness, then read into the loop's one buffer.
    for (;;) {
        std::error_code ec;
        std::size_t n = c->stream.socket().read_some(asio::buffer(read_buffer), ec);
        if (!ec)
            co_return std::string_view(read_buffer, n);
        if (ec != asio::error::would_block && ec != asio::error::try_again)
            co_return std::string_view();
        auto [wec] = co_await c->stream.socket().async_wait(net::tcp::socket::wait_read, net::use_nothrow);
        if (wec || c->timed_out)
            co_return std::string_view();
    }
}

void write_now(net::tcp::socket& sock, std::string& out)
{
    std::error_code ec;
    sock.non_blocking(true, ec);
    asio::write(sock, asio::buffer(out), ec);
    out.clear();
}

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

net::awaitable<bool> flush(std::shared_ptr<connection> c, std::string& out)
{
    if (out.empty())
        co_return true;
    auto ec = co_await c->stream.write_all(asio::buffer(out));
    out.clear();
    co_return !ec;
}

net::awaitable<bool> handshake(std::shared_ptr<connection> c, tls::server_contexts& tls, std::string_view sid,
                               std::string_view ip)
{
    // Copies: the views must not be held across the co_await (STYLE 9).
    const std::string session(sid), client(ip);
    auto ec = co_await c->stream.handshake_server(tls.current());
    metrics::tls_handshake(!ec);
    if (ec) {
        log::info("tls").kv("session", session).kv("client", client).kv("result", "failed")
            .kv("error", c->timed_out ? std::string("timeout") : ec.message());
        co_return false;
    }
    log::info("tls").kv("session", session).kv("client", client).kv("result", "ok")
        .kv("tls", c->stream.tls_description());
    co_return true;
}

net::awaitable<void> close(std::shared_ptr<connection> c)
{
    if (c->stream.tls_active() && !c->timed_out) {
        set_deadline(c, std::chrono::seconds(2));
        co_await c->stream.shutdown(std::chrono::milliseconds(500));
    }
    c->finished = true;
    c->timer.cancel();
    std::error_code ec;
    c->stream.socket().shutdown(net::tcp::socket::shutdown_both, ec);
    c->stream.socket().close(ec);
}

void connection_set::add(const std::shared_ptr<connection>& c)
{
    c->stopping = stopping_;
    live_.insert(c);
}

void connection_set::remove(const std::shared_ptr<connection>& c)
{
    live_.erase(c);
}

void connection_set::stop_idle()
{
    stopping_ = true;
    for (const auto& c : live_) {
        c->stopping = true;
        if (c->idle)
            c->stream.cancel();
    }
}

void connection_set::stop_all()
{
    stopping_ = true;
    for (const auto& c : live_) {
        c->stopping = true;
        c->stream.cancel();
    }
}

bool connection_counter::admit(const std::string& ip, const config::limits& lim)
{
    auto& mine = per_ip_[ip];
    bool over = connections_ >= lim.connections || mine >= lim.connections_per_ip;
    ++connections_;
    ++mine;
    return !over;
}

void connection_counter::release(const std::string& ip)
{
    --connections_;
    if (auto it = per_ip_.find(ip); it != per_ip_.end() && --it->second == 0)
        per_ip_.erase(it);
}

net::tcp::acceptor bind_listener(asio::io_context& io, const config::listener& l, bool tls_available,
                                 const char* mode)
{
    std::error_code ec;
    auto addr = asio::ip::make_address(l.host, ec);
    if (ec)
        throw std::system_error(ec, "listener " + l.spec);
    if (l.tls != config::listener_tls::none && !tls_available)
        throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                "listener " + l.spec + ": TLS without a certificate");
    net::tcp::endpoint ep(addr, l.port);
    net::tcp::acceptor acc(io);
    acc.open(ep.protocol(), ec);
    if (!ec)
        acc.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && ep.address().is_v6())
        acc.set_option(asio::ip::v6_only(true), ec);
    if (!ec)
        acc.bind(ep, ec);
    if (!ec)
        acc.listen(4096, ec);
    if (ec)
        throw std::system_error(ec, "listener " + l.spec);
    log::info("listen").kv("address", l.spec).kv("mode", mode != nullptr ? mode : mode_name(l.mode)).kv("tls", tls_name(l.tls));
    return acc;
}

net::awaitable<void> accept_loop(net::tcp::acceptor& acc, std::function<void(net::tcp::socket)> spawn)
{
    asio::steady_timer pause(acc.get_executor());
    for (;;) {
        auto [ec, sock] = co_await acc.async_accept(net::use_nothrow);
        if (ec == asio::error::operation_aborted || !acc.is_open())
            co_return;
        if (ec) {
            log::warn("accept").kv("error", ec.message());
            pause.expires_after(std::chrono::milliseconds(100));
            co_await pause.async_wait(net::use_nothrow);
            continue;
        }
        spawn(std::move(sock));
    }
}

net::awaitable<void> login_failed(auth::failure_limiter& limiter, std::string ip, util::time_point now,
                                  std::chrono::milliseconds failure_delay, std::uint32_t failures)
{
    limiter.failed(ip, now);
    metrics::refused(metrics::refusal::auth_failed);
    asio::steady_timer delay(co_await asio::this_coro::executor);
    delay.expires_after(failure_delay * failures);
    co_await delay.async_wait(net::use_nothrow);
}

net::awaitable<login_check> verify_login(asio::thread_pool& pool, auth::failure_limiter& limiter,
                                         const util::clock& clock, const live::generation& gen,
                                         std::shared_ptr<connection> c, const client& cl, std::string proto,
                                         std::string user, std::string password, std::uint32_t failures)
{
    if (limiter.locked(cl.ip, clock.now())) {
        log::warn("auth").kv("session", cl.sid).kv("client", cl.ip).kv("proto", proto).kv("result", "locked");
        co_return login_check::locked;
    }
    bool ok = false;
    std::error_code ec;
    if (gen.credentials) {
        set_deadline(c, gen.cfg.lim.command_timeout);
        std::tie(ec, ok) = co_await check_password(pool, gen.credentials, user, std::move(password));
    }
    if (ec) {
        log::error("auth").kv("session", cl.sid).kv("client", cl.ip).kv("proto", proto).kv("user", user)
            .kv("result", "error").kv("error", ec.message());
        co_return login_check::error;
    }
    if (!ok) {
        log::warn("auth").kv("session", cl.sid).kv("client", cl.ip).kv("proto", proto).kv("user", user)
            .kv("result", "failed").kv("failures", failures + 1);
        co_await login_failed(limiter, cl.ip, clock.now(), gen.cfg.auth.failure_delay, failures + 1);
        co_return login_check::invalid;
    }
    co_return login_check::ok;
}

std::string user_maildir(const std::string& mail_root, const std::string& user)
{
    auto at = user.rfind('@');
    if (at == std::string::npos)
        return {};
    std::string local = user.substr(0, at), domain = user.substr(at + 1);
    if (!route::is_safe_mailbox_name(local) || !route::is_safe_mailbox_name(domain))
        return {};
    return mail_root + "/" + domain + "/" + local;
}

net::awaitable<std::tuple<std::error_code, bool>> check_password(asio::thread_pool& pool,
                                                                 std::shared_ptr<auth::credentials> creds,
                                                                 std::string user, std::string password)
{
    auto job = [creds = std::move(creds), user = std::move(user), password = std::move(password)]() mutable {
        auto checked = creds->check(user, password);
        std::fill(password.begin(), password.end(), '\0');
        return checked;
    };
    auto checking = offload(pool, std::move(job));
    auto r = co_await std::move(checking);
    if (!r)
        co_return std::tuple(r.error(), false);
    co_return std::tuple(std::error_code(), *r);
}

bool service::owns(config::listener_mode m) const
{
    return std::find(modes_.begin(), modes_.end(), m) != modes_.end();
}

void service::bind()
{
    const auto gen = current_.get();
    for (const auto& l : gen->cfg.listeners)
        if (owns(l.mode))
            slots_.push_back(std::make_shared<slot>(slot{l, bind_listener(io_, l, gen->tls != nullptr)}));
}

net::awaitable<void> service::accept_on(std::shared_ptr<slot> s, spawn_fn spawn)
{
    // Named first: g++ 12 destroys a temporary inside co_await twice (PR 100611).
    std::function<void(net::tcp::socket)> to_session = [s, spawn](net::tcp::socket sock) {
        spawn(s->listener, std::move(sock));
    };
    auto loop = accept_loop(s->acceptor, std::move(to_session));
    co_await std::move(loop);
}

void service::run(const std::shared_ptr<slot>& s)
{
    asio::co_spawn(io_, accept_on(s, spawn_), log_spawn_failure);
}

void service::start(spawn_fn spawn)
{
    spawn_ = std::move(spawn);
    for (const auto& s : slots_)
        run(s);
}

namespace {

bool same_address(const config::listener& a, const config::listener& b)
{
    return a.host == b.host && a.port == b.port;
}

} // namespace

void service::prepare(const live::generation& next)
{
    cancel();
    if (stopped_)
        return;
    std::vector<std::shared_ptr<slot>> staged;
    for (const auto& l : next.cfg.listeners) {
        if (!owns(l.mode))
            continue;
        next_.push_back(l);
        bool kept = std::any_of(slots_.begin(), slots_.end(),
                                [&l](const auto& s) { return same_address(s->listener, l); });
        if (!kept) {
            staged.push_back(std::make_shared<slot>(slot{l, bind_listener(io_, l, next.tls != nullptr)}));
        } else if (l.tls != config::listener_tls::none && next.tls == nullptr) {
            next_.clear();
            throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                    "listener " + l.spec + ": TLS without a certificate");
        }
    }
    staged_ = std::move(staged);
}

void service::commit()
{
    if (stopped_)
        return;
    std::vector<std::shared_ptr<slot>> now;
    for (auto& s : slots_) {
        auto it = std::find_if(next_.begin(), next_.end(),
                               [&s](const config::listener& l) { return same_address(s->listener, l); });
        if (it == next_.end()) {
            std::error_code ec;
            s->acceptor.close(ec); // its loop ends; sessions from it go on
            log::info("unlisten").kv("address", s->listener.spec).kv("mode", mode_name(s->listener.mode));
            continue;
        }
        if (it->mode != s->listener.mode || it->tls != s->listener.tls)
            log::info("listen").kv("address", it->spec).kv("mode", mode_name(it->mode))
                .kv("tls", tls_name(it->tls)).kv("changed", "yes");
        s->listener = *it;
        now.push_back(s);
    }
    for (auto& s : staged_) {
        now.push_back(s);
        if (spawn_)
            run(s);
    }
    slots_ = std::move(now);
    staged_.clear();
    next_.clear();
}

void service::cancel()
{
    for (auto& s : staged_) {
        std::error_code ec;
        s->acceptor.close(ec);
    }
    staged_.clear();
    next_.clear();
}

void service::stop()
{
    stopped_ = true;
    for (auto& entry : slots_) {
        std::error_code ec;
        entry->acceptor.close(ec);
    }
    // The spawner holds the server's state, which holds this service: let
    // it go, or the two keep each other alive (nothing is accepted any more;
    // the accept loops end with their own copies).
    spawn_ = nullptr;
}

void service::shutdown()
{
    stop();
    live_.stop_idle();
}

void service::force_close()
{
    live_.stop_all();
}

std::optional<client> service::open(net::tcp::socket sock, config::listener l)
{
    std::error_code ec;
    auto remote = sock.remote_endpoint(ec);
    if (ec)
        return std::nullopt;
    client cl;
    cl.ip = remote.address().to_string();
    cl.loopback = remote.address().is_loopback();
    cl.sid = util::make_session_id();
    cl.c = std::make_shared<connection>(std::move(sock));
    cl.c->stream.socket().non_blocking(true, ec);
    cl.c->stream.socket().set_option(net::tcp::no_delay(true), ec);
    cl.gen = current_.get();
    cl.listener = std::move(l);
    cl.admitted = counter_.admit(cl.ip, cl.gen->cfg.lim);
    cl.admitted ? metrics::connection_opened(proto_) : metrics::connection_rejected(proto_);
    live_.add(cl.c);
    log::info("connect").kv("session", cl.sid).kv("client", cl.ip).kv("port", remote.port())
        .kv("listener", cl.listener.spec);
    return cl;
}

net::awaitable<void> service::close(client& cl)
{
    co_await server::close(cl.c);
    live_.remove(cl.c);
    counter_.release(cl.ip);
    if (cl.admitted)
        metrics::connection_closed(proto_);
}

void log_spawn_failure(std::exception_ptr e)
{
    log::exception("session_crash", e);
}

} // namespace postern::server
