#include "postern/server/pop3_server.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>
#include <sys/stat.h>
#include <utility>
#include <vector>

#include <asio/thread_pool.hpp>

#include "postern/auth/failure_limiter.hpp"
#include "postern/log/log.hpp"
#include "postern/mailbox/lock.hpp"
#include "postern/mailbox/maildir.hpp"
#include "postern/metrics/metrics.hpp"
#include "postern/pop3/session.hpp"
#include "postern/server/session_io.hpp"
#include "postern/util/error.hpp"
#include "postern/util/id.hpp"
#include "postern/util/strings.hpp"

namespace postern::server {

struct pop3_server::shared {
    shared(asio::io_context& io_, const live::current& live_, const util::clock& clock_)
        : io(io_), svc(io_, metrics::protocol::pop3, {config::listener_mode::pop3}, live_), clock(clock_),
          limiter(0, std::chrono::seconds(0))
    {
        adopt(*live_.get());
    }

    // A session's generation: the address lockouts take its settings when
    // they changed.
    void adopt(const live::generation& gen)
    {
        if (gen.number == adopted)
            return;
        adopted = gen.number;
        limiter.configure(gen.cfg.auth.ip_max_failures, gen.cfg.auth.ip_window);
    }

    asio::io_context& io;
    service svc;
    const util::clock& clock;
    std::uint64_t adopted = 0; // the generation whose settings limiter has
    auth::failure_limiter limiter;
    // Declared last, so it is joined before anything its jobs use goes away.
    asio::thread_pool pool{1};
};

namespace {

// RFC 1939 3: "an autologout timer ... of at least 10 minutes" once a user
// is logged in. Before that the shorter command timeout applies: an
// anonymous client has no claim on a slot for long.
constexpr std::chrono::seconds autologout{600};
// Messages go out in pieces of this size, each write with its own deadline.
constexpr std::size_t piece_size = 65536;

// The maildrop opened for one session: its lock, and the messages as they
// were at login (RFC 1939 numbering is fixed for the session).
struct maildrop {
    mailbox::lock lock;
    std::vector<mailbox::message> messages;
};

// Blocking: the pool. errc::refused when another session holds the lock.
util::result<maildrop> open_maildrop(const std::string& dir)
{
    maildrop m;
    struct stat st{};
    if (::stat(dir.c_str(), &st) != 0) {
        if (errno == ENOENT)
            return m; // nothing delivered yet: an empty maildrop
        return util::last_os_error();
    }
    auto held = mailbox::lock::acquire(dir);
    if (!held)
        return held.error();
    m.lock = std::move(*held);
    auto listed = mailbox::snapshot(dir);
    if (!listed)
        return listed.error();
    m.messages = std::move(*listed);
    return m;
}

struct seen_result {
    util::result<void> result;
    mailbox::message message; // with its new file name
};

} // namespace

pop3_server::pop3_server(asio::io_context& io, const live::current& live, const util::clock& clock)
    : pop3_server(std::make_shared<shared>(io, live, clock))
{
}

pop3_server::pop3_server(std::shared_ptr<shared> st)
    : protocol_server(std::shared_ptr<service>(st, &st->svc),
                      [st](config::listener l, net::tcp::socket sock) {
                          asio::co_spawn(st->io, session(st, std::move(l), std::move(sock)), log_spawn_failure);
                      })
{
}

pop3_server::~pop3_server() = default;

net::awaitable<void> pop3_server::session(std::shared_ptr<shared> st, config::listener l, net::tcp::socket sock)
{
    auto accepted = st->svc.open(std::move(sock), std::move(l));
    if (!accepted)
        co_return; // the client left before we looked
    client& cl = *accepted;
    const auto& c = cl.c;
    const std::string& ip = cl.ip;
    const std::string& sid = cl.sid;
    // The configuration at connect, for the whole session.
    const live::generation& gen = *cl.gen;
    const auto& cfg = gen.cfg;
    const auto& lim = cfg.lim;
    st->adopt(gen);
    pop3::session_config session_cfg;
    session_cfg.stls = cl.listener.tls == config::listener_tls::starttls;
    session_cfg.implicit_tls = cl.listener.tls == config::listener_tls::implicit;
    session_cfg.auth = gen.credentials ? pop3::auth_offer::tls_only : pop3::auth_offer::never;
    session_cfg.max_errors = lim.errors;
    session_cfg.max_auth_failures = cfg.auth.max_failures;
    // auth.plaintext_loopback: for tests on one machine, login without TLS
    // from loopback only; everyone else must encrypt first (RFC 2595 2.3).
    if (session_cfg.auth == pop3::auth_offer::tls_only && cfg.auth.plaintext_loopback && cl.loopback)
        session_cfg.auth = pop3::auth_offer::always;
    pop3::session s(session_cfg);
    bool open = cl.admitted;
    if (!open) {
        // Inside implicit TLS a plain -ERR would be noise: just close.
        if (!session_cfg.implicit_tls) {
            s.refuse("too many connections");
            write_now(c->stream.socket(), s.output());
        }
        log::warn("refuse").kv("session", sid).kv("client", ip).kv("reason", "connection limit");
    } else {
        set_deadline(c, lim.command_timeout);
        arm_watchdog(c);
    }
    // RFC 8314 3.3: on port 995 the handshake comes first, then the greeting.
    if (open && session_cfg.implicit_tls)
        open = co_await handshake(c, *gen.tls, sid, ip);
    if (open)
        s.start();

    std::string user; // lower-cased login name
    std::string dir;  // the maildrop, once logged in
    maildrop drop;
    std::uint64_t retrieved = 0, deleted = 0;
    bool restart_deadline = true;
    while (open) {
        switch (s.next()) {
        case pop3::event::need_input: {
            // The deadline runs per command: it restarts when we answered,
            // not on every read (a client dribbling bytes is cut off).
            if (!s.output().empty())
                restart_deadline = true;
            if (!co_await flush(c, s.output())) {
                open = false;
                break;
            }
            if (restart_deadline)
                set_deadline(c, s.authenticated() ? std::max(autologout, lim.command_timeout) : lim.command_timeout);
            restart_deadline = false;
            if (c->stopping) { // between commands: nothing of the client's is open
                s.refuse("server shutting down");
                log::info("shutdown").kv("session", sid).kv("client", ip);
                break;
            }
            c->idle = true;
            auto bytes = co_await read_some(c);
            c->idle = false;
            if (!bytes.empty()) {
                s.feed(bytes);
                break;
            }
            if (c->timed_out) {
                s.timeout();
                co_await say_last_words(c, s.output());
                log::info("timeout").kv("session", sid).kv("client", ip);
            } else if (c->stopping) {
                s.refuse("server shutting down");
                co_await say_last_words(c, s.output());
                log::info("shutdown").kv("session", sid).kv("client", ip);
            }
            open = false; // EOF, reset, timeout or shutdown
            break;
        }
        case pop3::event::check_auth: {
            user = util::to_lower(s.pending_user());
            auto verifying = verify_login(st->pool, st->limiter, st->clock, gen, c, cl, "pop3", user,
                                          s.pending_password(), s.auth_failures());
            const auto checked = co_await std::move(verifying);
            if (checked != login_check::ok) {
                s.answer_auth(checked == login_check::locked  ? pop3::auth_verdict::locked
                              : checked == login_check::error ? pop3::auth_verdict::temp_fail
                                                              : pop3::auth_verdict::invalid);
                break;
            }
            dir = user_maildir(cfg.mail_root, user);
            util::result<maildrop> opened = util::make_error_code(util::errc::not_found);
            if (!dir.empty()) {
                auto job = [d = dir]() { return open_maildrop(d); };
                auto opening = offload(st->pool, std::move(job));
                opened = co_await std::move(opening);
            }
            if (!opened) {
                const bool busy = opened.error() == util::make_error_code(util::errc::refused);
                s.answer_auth(busy ? pop3::auth_verdict::in_use : pop3::auth_verdict::temp_fail);
                log::line line(busy ? log::severity::info : log::severity::error, "auth");
                line.kv("session", sid).kv("client", ip).kv("proto", "pop3").kv("user", user)
                    .kv("result", busy ? "in_use" : "error");
                if (!busy)
                    line.kv("dir", dir).kv("error", opened.error().message());
                break;
            }
            drop = std::move(*opened);
            s.answer_auth(pop3::auth_verdict::ok);
            log::info("auth").kv("session", sid).kv("client", ip).kv("proto", "pop3").kv("user", user)
                .kv("result", "ok").kv("messages", drop.messages.size());
            break;
        }
        case pop3::event::need_listing: {
            std::vector<pop3::listing_entry> entries;
            entries.reserve(drop.messages.size());
            for (const auto& m : drop.messages)
                entries.push_back({m.size, m.uid});
            s.listing(std::move(entries));
            break;
        }
        case pop3::event::retrieve: {
            const std::size_t i = s.pending_message();
            const bool top = s.pending_top();
            const std::uint64_t lines = s.pending_top_lines();
            auto job = [d = dir, m = drop.messages[i], top, lines]() {
                return top ? mailbox::read_top(d, m, lines) : mailbox::read(d, m);
            };
            auto reading = offload(st->pool, std::move(job));
            auto text = co_await std::move(reading);
            if (!text) {
                s.message_failed();
                log::warn("retrieve").kv("session", sid).kv("user", user).kv("file", drop.messages[i].file)
                    .kv("error", text.error().message());
                break;
            }
            // Piece by piece, each write with its own deadline: a large
            // message to a slow client makes progress, a stalled one is cut.
            std::string_view rest(*text);
            bool sent = true;
            do {
                auto piece = rest.substr(0, piece_size);
                rest.remove_prefix(piece.size());
                s.message_chunk(piece);
                if (s.output().size() >= piece_size) {
                    set_deadline(c, lim.data_timeout);
                    sent = co_await flush(c, s.output());
                }
            } while (sent && !rest.empty());
            if (!sent) {
                open = false;
                break;
            }
            s.message_end();
            if (top)
                break;
            ++retrieved;
            // RETR marks the message seen (new/ → cur/ with S), so IMAP
            // clients later show it as read.
            auto mark = [d = dir, m = drop.messages[i]]() mutable {
                auto r = mailbox::mark_seen(d, m);
                return seen_result{std::move(r), std::move(m)};
            };
            auto marking = offload(st->pool, std::move(mark));
            auto seen = co_await std::move(marking);
            if (seen.result)
                drop.messages[i] = std::move(seen.message);
            else
                log::warn("mark_seen").kv("session", sid).kv("user", user).kv("file", drop.messages[i].file)
                    .kv("error", seen.result.error().message());
            break;
        }
        case pop3::event::update: {
            // RFC 1939 6: only now, after QUIT, are DELE'd messages removed.
            std::vector<mailbox::message> doomed;
            for (auto i : s.deletions())
                doomed.push_back(drop.messages[i]);
            auto remove = [d = dir, doomed]() {
                std::size_t n = 0;
                for (const auto& m : doomed)
                    if (auto r = mailbox::remove(d, m); !r && r.error() != util::make_error_code(util::errc::not_found))
                        ++n; // gone already (another client) counts as removed
                return n;
            };
            auto removing = offload(st->pool, std::move(remove));
            auto failed = co_await std::move(removing);
            deleted = doomed.size() - failed;
            s.updated(failed == 0);
            log::line line(failed == 0 ? log::severity::info : log::severity::error, "update");
            line.kv("session", sid).kv("user", user).kv("deleted", deleted).kv("failed", failed);
            break;
        }
        case pop3::event::start_tls: {
            if (!co_await flush(c, s.output())) {
                open = false;
                break;
            }
            set_deadline(c, lim.command_timeout);
            s.tls_started(co_await handshake(c, *gen.tls, sid, ip));
            restart_deadline = true;
            break;
        }
        case pop3::event::close:
            if (!s.output().empty()) {
                set_deadline(c, std::chrono::seconds(10));
                co_await flush(c, s.output());
            }
            open = false;
            break;
        }
    }
    co_await st->svc.close(cl);
    drop.lock.release();
    auto line = log::info("disconnect");
    line.kv("session", sid).kv("client", ip).kv("proto", "pop3").kv("retrieved", retrieved).kv("deleted", deleted)
        .kv("errors", s.errors());
    if (!user.empty())
        line.kv("user", user);
}

} // namespace postern::server
