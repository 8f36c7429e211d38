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
#include "postern/metrics/metrics.hpp"
#include "postern/smtp/received.hpp"
#include "postern/server/session_io.hpp"
#include "postern/smtp/server_session.hpp"
#include "postern/tls/stream.hpp"
#include "postern/util/cidr.hpp"
#include "postern/util/free_space.hpp"
#include "postern/util/id.hpp"
#include "postern/util/strings.hpp"

namespace postern::server {

struct smtp_server::shared {
    shared(asio::io_context& io_, const live::current& live_, queue::group_committer& committer_,
           const util::clock& clock_)
        : io(io_),
          svc(io_, metrics::protocol::smtp, {config::listener_mode::smtp, config::listener_mode::submission}, live_),
          committer(committer_), clock(clock_), limiter(0, std::chrono::seconds(0)), disks({}, 0)
    {
        adopt(*live_.get());
    }

    // A session's generation: the server-wide state (address lockouts, the
    // free space watch) takes its settings when they changed.
    void adopt(const live::generation& gen)
    {
        if (gen.number == adopted)
            return;
        adopted = gen.number;
        limiter.configure(gen.cfg.auth.ip_max_failures, gen.cfg.auth.ip_window);
        disks = util::free_space_monitor({gen.cfg.spool_dir, gen.cfg.mail_root}, gen.cfg.lim.min_free_space);
        min_free_space = gen.cfg.lim.min_free_space;
    }

    // Whether new mail must wait for disk space; logs each change.
    bool storage_low()
    {
        bool changed = false;
        bool low = disks.low(std::chrono::steady_clock::now(), &changed);
        if (changed && low)
            log::warn("storage").kv("result", "low").kv("dir", disks.low_dir())
                .kv("min_free_space", min_free_space).kv("action", "452 4.3.1 to MAIL and DATA");
        else if (changed)
            log::info("storage").kv("result", "ok");
        return low;
    }

    asio::io_context& io;
    service svc;
    queue::group_committer& committer;
    const util::clock& clock;
    std::size_t* total = nullptr;
    std::uint64_t adopted = 0; // the generation whose settings limiter and disks have
    auth::failure_limiter limiter;
    util::free_space_monitor disks;
    std::uint64_t min_free_space = 0;
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
bool sender_owned(const live::sender_table& senders, bool any_sender, std::string_view user, const mail::path& sender)
{
    if (any_sender || sender.null)
        return true;
    auto it = senders.find(user);
    return it != senders.end() && it->second.count(util::to_lower(sender.addr.str())) != 0;
}

// The session settings of listener l under generation gen.
smtp::session_config session_config_for(const live::generation& gen, const config::listener& l)
{
    smtp::session_config sc;
    sc.hostname = gen.cfg.hostname;
    sc.max_message_size = gen.cfg.lim.message_size;
    sc.max_recipients = gen.cfg.lim.recipients;
    sc.max_errors = gen.cfg.lim.errors;
    sc.starttls = l.tls == config::listener_tls::starttls;
    sc.implicit_tls = l.tls == config::listener_tls::implicit;
    sc.submission = l.mode == config::listener_mode::submission;
    sc.max_auth_failures = gen.cfg.auth.max_failures;
    sc.auth = gen.credentials && !gen.senders.empty() ? smtp::auth_offer::tls_only : smtp::auth_offer::never;
    return sc;
}

} // namespace

smtp_server::smtp_server(asio::io_context& io, const live::current& live, queue::group_committer& committer,
                         const util::clock& clock)
    : smtp_server(std::make_shared<shared>(io, live, committer, clock))
{
}

smtp_server::smtp_server(std::shared_ptr<shared> st)
    : protocol_server(std::shared_ptr<service>(st, &st->svc),
                      [st](config::listener l, net::tcp::socket sock) {
                          asio::co_spawn(st->io, session(st, std::move(l), std::move(sock)), log_spawn_failure);
                      })
{
    st->total = &total_;
}

smtp_server::~smtp_server() = default;

net::awaitable<void> smtp_server::session(std::shared_ptr<shared> st, config::listener l, net::tcp::socket sock)
{
    auto accepted = st->svc.open(std::move(sock), std::move(l));
    if (!accepted)
        co_return; // the client left before we looked
    client& cl = *accepted;
    const auto& c = cl.c;
    const std::string& ip = cl.ip;
    const std::string& sid = cl.sid;
    // The configuration at connect, for the whole session (a reload
    // meanwhile does not change the rules of a transaction under way).
    const live::generation& gen = *cl.gen;
    const auto& cfg = gen.cfg;
    const auto& lim = cfg.lim;
    st->adopt(gen);
    auto session_cfg = session_config_for(gen, cl.listener);
    // auth.plaintext_loopback: for tests on one machine, AUTH without TLS
    // from loopback only; everyone else must encrypt first (RFC 4954 4).
    if (session_cfg.auth == smtp::auth_offer::tls_only && cfg.auth.plaintext_loopback && cl.loopback)
        session_cfg.auth = smtp::auth_offer::always;
    smtp::server_session s(session_cfg);
    const bool in_relay_networks = util::in_any(gen.relay_networks, ip);
    ++*st->total;
    const bool over = !cl.admitted;

    std::string auth_user; // the login name once AUTH succeeded (lower-cased)
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
        open = co_await handshake(c, *gen.tls, sid, ip);
        s.tls_started(open, open ? c->stream.tls_description() : std::string());
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
            // Shutting down: a client with no open transaction loses
            // nothing by a 421 now; one inside a transaction may finish it.
            if (c->stopping && !s.in_transaction()) {
                s.shutting_down();
                log::info("shutdown").kv("session", sid).kv("client", ip);
                break;
            }
            c->idle = !s.in_transaction();
            auto bytes = co_await read_some(c);
            c->idle = false;
            if (!bytes.empty()) {
                restart_deadline = data_progress(last_phase, bytes);
                s.set_storage_low(st->storage_low());
                s.feed(bytes);
                break;
            }
            if (c->timed_out) {
                s.timeout();
                co_await say_last_words(c, s.output());
                log::info("timeout").kv("session", sid).kv("client", ip);
            } else if (c->stopping) {
                const bool abandoned = s.in_transaction();
                s.shutting_down(); // RFC 5321 3.8: 421, even inside a transaction past the grace time
                co_await say_last_words(c, s.output());
                log::info("shutdown").kv("session", sid).kv("client", ip)
                    .kv("transaction", abandoned ? "abandoned" : "none");
            }
            open = false; // EOF, reset, timeout or shutdown
            break;
        }
        case smtp::event::check_rcpt: {
            // RFC 5321 4.1.1.3 lets a server decline the relaying a source
            // route implies: never relay for one, authenticated or not.
            const bool may_relay = (in_relay_networks || s.authenticated()) && !s.pending_rcpt_source_routed();
            const auto verdict = verdict_for(gen.routes, s.pending_rcpt(), may_relay);
            if (verdict == smtp::rcpt_verdict::unknown_user)
                metrics::refused(metrics::refusal::unknown_user);
            else if (verdict == smtp::rcpt_verdict::relay_denied)
                metrics::refused(metrics::refusal::relay_denied);
            s.answer_rcpt(verdict);
            break;
        }
        case smtp::event::check_sender: {
            bool owned = sender_owned(gen.senders, cfg.auth.any_sender, auth_user, s.envelope().sender);
            if (!owned)
                metrics::refused(metrics::refusal::sender_refused);
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
                std::tie(aec, ok) = co_await check_password(st->pool, gen.credentials, user,
                                                            std::move(creds->password));
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
            log::warn("auth").kv("session", sid).kv("client", ip).kv("mechanism", mech).kv("user", user)
                .kv("result", "failed").kv("failures", s.auth_failures() + 1);
            co_await login_failed(st->limiter, ip, st->clock.now(), cfg.auth.failure_delay, s.auth_failures() + 1);
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
                qr.address = gen.routes.canonical(env.recipients[i]).str();
                if (i < env.rcpt_dsn.size()) {
                    qr.notify = env.rcpt_dsn[i].notify;
                    qr.orcpt = env.rcpt_dsn[i].orcpt;
                }
                m.meta.recipients.push_back(std::move(qr));
            }
            std::string for_rcpt = m.meta.recipients.size() == 1 ? m.meta.recipients[0].address : std::string();
            auto date = util::rfc5322_date(now);
            m.parts.push_back(smtp::received_header({s.helo(), ip, cfg.hostname, s.protocol(), m.meta.id,
                                                     for_rcpt, date, s.tls_description()}));
            // RFC 6409 8.2, 8.3: a submission server completes what a mail
            // client left out. Only for submission (and AUTH) clients: an MX
            // must not alter mail in transit.
            if (session_cfg.submission || s.authenticated()) {
                auto added = mail::missing_header_fields(
                    s.body(), {.from = {}, .date = date, .message_id = "<" + m.meta.id + "@" + cfg.hostname + ">"});
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
                metrics::message_received();
                s.committed(id);
                auto line = log::info("message");
                line.kv("session", sid).kv("id", id).kv("from", "<" + from + ">").kv("size", size)
                    .kv("nrcpt", nrcpt).kv("proto", proto);
                if (!auth_user.empty())
                    line.kv("user", auth_user);
            } else {
                metrics::refused(metrics::refusal::commit_failed);
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
            bool ok = co_await handshake(c, *gen.tls, sid, ip);
            s.tls_started(ok, ok ? c->stream.tls_description() : std::string());
            if (ok)
                auth_user.clear(); // RFC 3207 4.2: the session forgot the login too
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
    co_await st->svc.close(cl);
    auto line = log::info("disconnect");
    line.kv("session", sid).kv("client", ip).kv("messages", s.messages()).kv("errors", s.errors());
    if (!auth_user.empty())
        line.kv("user", auth_user);
}

} // namespace postern::server
