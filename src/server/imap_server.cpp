#include "postern/server/imap_server.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <sys/inotify.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include <asio/posix/stream_descriptor.hpp>
#include <asio/thread_pool.hpp>

#include "postern/auth/failure_limiter.hpp"
#include "postern/imap/session.hpp"
#include "postern/imapd/executor.hpp"
#include "postern/log/log.hpp"
#include "postern/mailbox/store.hpp"
#include "postern/metrics/metrics.hpp"
#include "postern/server/session_io.hpp"
#include "postern/util/strings.hpp"

namespace postern::server {

namespace {

// One IDLE: the session's coroutine and the watcher's share it.
struct idle_watch {
    explicit idle_watch(const asio::any_io_executor& ex) : wake(ex), done(ex) {}
    asio::steady_timer wake; // cancelled: look at the folder now (or stop)
    asio::steady_timer done; // cancelled when the watcher has ended
    bool pending = false;    // a change was seen while the watcher was busy
    bool stop = false;       // input came: the watcher must end
    bool finished = false;
    bool close = false;      // the folder's UIDVALIDITY changed: "* BYE" sent
    bool failed = false;     // the watcher threw (logged): the session ends
};

// inotify for every IDLE of one server: one instance with a watch per
// folder directory and the IDLEs that wait on it. One instance per session
// would run into fs.inotify.max_user_instances (128 by default) at the
// 129th idling client; watches are far more plentiful (max_user_watches).
class folder_watcher {
public:
    explicit folder_watcher(asio::io_context& io) : sd_(io)
    {
        const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd >= 0) {
            sd_.assign(fd);
            arm();
        }
    }

    // Watches <path>/new and <path>/cur for w. The watch descriptors, for
    // unwatch(); empty when nothing could be watched (the IDLE then polls).
    std::vector<int> watch(const std::string& path, const std::shared_ptr<idle_watch>& w)
    {
        std::vector<int> wds;
        if (!sd_.is_open())
            return wds;
        // Deliveries rename into new/, flag changes rename inside cur/,
        // expunges unlink; a folder re-created is caught by UIDVALIDITY.
        constexpr std::uint32_t mask = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE;
        for (const char* sub : {"/new", "/cur"}) {
            const int wd = ::inotify_add_watch(sd_.native_handle(), (path + sub).c_str(), mask);
            if (wd < 0)
                continue;
            subscribers_[wd].push_back(w);
            wds.push_back(wd);
        }
        return wds;
    }

    void unwatch(const std::vector<int>& wds, const idle_watch* w)
    {
        for (int wd : wds) {
            auto it = subscribers_.find(wd);
            if (it == subscribers_.end())
                continue; // IN_IGNORED: the directory went away
            std::erase_if(it->second, [w](const std::weak_ptr<idle_watch>& x) {
                auto sp = x.lock();
                return !sp || sp.get() == w;
            });
            if (it->second.empty()) {
                ::inotify_rm_watch(sd_.native_handle(), wd);
                subscribers_.erase(it);
            }
        }
    }

private:
    void arm()
    {
        sd_.async_wait(asio::posix::stream_descriptor::wait_read, [this](std::error_code ec) {
            if (ec)
                return; // closed with the server: `this` may be gone, touch nothing
            drain();
            arm();
        });
    }

    void drain()
    {
        alignas(inotify_event) char buf[8192];
        for (;;) {
            const auto n = ::read(sd_.native_handle(), buf, sizeof buf);
            if (n <= 0)
                return;
            for (std::size_t off = 0; off + sizeof(inotify_event) <= static_cast<std::size_t>(n);) {
                inotify_event ev{};
                std::memcpy(&ev, buf + off, sizeof ev);
                off += sizeof(inotify_event) + ev.len;
                auto it = subscribers_.find(ev.wd);
                if (it == subscribers_.end())
                    continue;
                for (const auto& weak : it->second)
                    if (auto w = weak.lock()) {
                        w->pending = true;
                        w->wake.cancel();
                    }
                if ((ev.mask & IN_IGNORED) != 0)
                    subscribers_.erase(it);
            }
        }
    }

    asio::posix::stream_descriptor sd_;
    std::map<int, std::vector<std::weak_ptr<idle_watch>>> subscribers_;
};

} // namespace

struct imap_server::shared {
    shared(asio::io_context& io_, const live::current& live_, const util::clock& clock_)
        : io(io_), svc(io_, metrics::protocol::imap, {config::listener_mode::imap}, live_), clock(clock_),
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
    folder_watcher watcher{io};
    // Two threads: one user's long SEARCH or FETCH must not stall every
    // other session's commands. Declared last, so it is joined before
    // anything its jobs use goes away.
    asio::thread_pool pool{2};
};

namespace {

// RFC 9051 5.4: "an inactivity autologout timer of at least 30 minutes"
// once logged in (RFC 2177: clients re-issue IDLE every 29 minutes).
constexpr std::chrono::seconds autologout{30 * 60};
// IDLE without inotify events (another file system, inotify instances used
// up): how often the watcher looks anyway.
constexpr std::chrono::seconds idle_poll_with_inotify{60};
constexpr std::chrono::seconds idle_poll_without_inotify{2};

struct poll_result {
    std::string text;
    bool close = false;
};

// Reports the selected folder's changes until the session's coroutine sets
// w->stop (input came), the client is gone, or the folder was re-created.
// keep holds the server's state (and so pool) alive.
net::awaitable<void> idle_watcher(std::shared_ptr<void> keep, asio::thread_pool& pool, folder_watcher& watcher,
                                  std::shared_ptr<connection> c, std::shared_ptr<idle_watch> w,
                                  imapd::executor* exec)
{
    const auto wds = watcher.watch(exec->selected_path(), w);
    const auto interval = wds.empty() ? idle_poll_without_inotify : idle_poll_with_inotify;
    // The first look at once: what changed between the last command and
    // the IDLE, which no inotify event will announce (RFC 2177 3).
    w->pending = true;
    bool gone = false;
    while (!w->stop) {
        if (!w->pending) {
            w->wake.expires_after(interval);
            co_await w->wake.async_wait(net::use_nothrow);
            if (w->stop)
                break;
        }
        w->pending = false;
        auto job = [exec]() {
            poll_result r;
            r.text = exec->poll(r.close);
            return r;
        };
        auto looking = offload(pool, std::move(job));
        auto found = co_await std::move(looking);
        // Sent even when DONE came meanwhile: untagged data may precede the
        // tagged OK, and the session waits for us before writing it.
        if (!found.text.empty() && !co_await flush(c, found.text)) {
            gone = true;
            break;
        }
        if (found.close) {
            w->close = true;
            break;
        }
    }
    watcher.unwatch(wds, w.get());
    w->finished = true;
    w->done.cancel();
    if ((gone || w->close) && !w->stop)
        c->stream.cancel(); // wake the session's read: it ends
    (void)keep;
}

struct idle_input {
    std::string bytes; // empty: EOF, reset, timeout, shutdown, or the watcher ended the session
    const char* ended = nullptr; // why the watcher ended the session, if it did
};

// IDLE: reads the client's next bytes while a watcher reports the folder's
// changes, then waits for the watcher to end.
net::awaitable<idle_input> idle_read(std::shared_ptr<void> keep, asio::io_context& io, asio::thread_pool& pool,
                                     folder_watcher& watcher, std::shared_ptr<connection> c, imapd::executor* exec)
{
    auto w = std::make_shared<idle_watch>(c->stream.socket().get_executor());
    w->done.expires_at(steady::time_point::max());
    // A watcher that fails is logged and counts as ended (and the session
    // ends with it): the session must never wait for it forever.
    asio::co_spawn(io, idle_watcher(std::move(keep), pool, watcher, c, w, exec), [w, c](std::exception_ptr e) {
        if (!e)
            return;
        log_spawn_failure(e);
        w->finished = true;
        w->failed = true;
        w->done.cancel();
        c->stream.cancel();
    });
    auto bytes = co_await read_some(c);
    idle_input in;
    in.bytes.assign(bytes); // the loop's shared buffer: copied before the next co_await
    w->stop = true;
    w->wake.cancel();
    if (!w->finished)
        co_await w->done.async_wait(net::use_nothrow);
    in.ended = w->failed ? "watcher failed" : w->close ? "uidvalidity changed" : nullptr;
    co_return in;
}

} // namespace

imap_server::imap_server(asio::io_context& io, const live::current& live, const util::clock& clock)
    : imap_server(std::make_shared<shared>(io, live, clock))
{
}

imap_server::imap_server(std::shared_ptr<shared> st)
    : protocol_server(std::shared_ptr<service>(st, &st->svc),
                      [st](config::listener l, net::tcp::socket sock) {
                          asio::co_spawn(st->io, session(st, std::move(l), std::move(sock)), log_spawn_failure);
                      })
{
}

imap_server::~imap_server() = default;

net::awaitable<void> imap_server::session(std::shared_ptr<shared> st, config::listener l, net::tcp::socket sock)
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
    imap::session_config session_cfg;
    session_cfg.starttls = cl.listener.tls == config::listener_tls::starttls;
    session_cfg.implicit_tls = cl.listener.tls == config::listener_tls::implicit;
    session_cfg.auth = gen.credentials ? imap::auth_offer::tls_only : imap::auth_offer::never;
    session_cfg.max_errors = lim.errors;
    session_cfg.max_auth_failures = cfg.auth.max_failures;
    // APPENDLIMIT (RFC 7889) is the size SMTP accepts: a message a user may
    // receive, they may also file.
    session_cfg.limits.max_append = lim.message_size;
    // auth.plaintext_loopback: for tests on one machine, login without TLS
    // from loopback only; everyone else must encrypt first (RFC 9051 6.2.3).
    if (session_cfg.auth == imap::auth_offer::tls_only && cfg.auth.plaintext_loopback && cl.loopback)
        session_cfg.auth = imap::auth_offer::always;
    imap::session s(session_cfg);
    bool open = cl.admitted;
    if (!open) {
        if (!session_cfg.implicit_tls) { // inside implicit TLS a plain BYE would be noise
            s.refuse("Too many connections");
            write_now(c->stream.socket(), s.output());
        }
        log::warn("refuse").kv("session", sid).kv("client", ip).kv("reason", "connection limit");
    } else {
        set_deadline(c, lim.command_timeout);
        arm_watchdog(c);
    }
    // RFC 8314 3.3: on port 993 the handshake comes first, then the greeting.
    if (open && session_cfg.implicit_tls)
        open = co_await handshake(c, *gen.tls, sid, ip);
    if (open)
        s.start();

    std::string user; // lower-cased login name
    std::optional<imapd::executor> exec;
    std::uint64_t commands = 0;
    bool restart_deadline = true;
    while (open) {
        switch (s.next()) {
        case imap::event::need_input: {
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
                s.refuse("Server shutting down");
                log::info("shutdown").kv("session", sid).kv("client", ip);
                break;
            }
            std::string bytes;
            const char* ended = nullptr;
            c->idle = true;
            if (s.idling() && exec && exec->selected()) {
                auto reading = idle_read(st, st->io, st->pool, st->watcher, c, &*exec);
                auto in = co_await std::move(reading);
                bytes = std::move(in.bytes);
                ended = in.ended;
            } else {
                bytes.assign(co_await read_some(c));
            }
            c->idle = false;
            if (ended != nullptr) { // "* BYE" sent by the watcher, or it failed
                log::warn("idle").kv("session", sid).kv("user", user).kv("result", ended);
                open = false;
                break;
            }
            if (!bytes.empty()) {
                s.feed(bytes);
                break;
            }
            if (c->timed_out) {
                s.timeout();
                co_await say_last_words(c, s.output());
                log::info("timeout").kv("session", sid).kv("client", ip);
            } else if (c->stopping) {
                s.refuse("Server shutting down");
                co_await say_last_words(c, s.output());
                log::info("shutdown").kv("session", sid).kv("client", ip);
            }
            open = false; // EOF, reset, timeout or shutdown
            break;
        }
        case imap::event::check_auth: {
            user = util::to_lower(s.pending_user());
            auto verifying = verify_login(st->pool, st->limiter, st->clock, gen, c, cl, "imap", user,
                                          s.pending_password(), s.auth_failures());
            auto checked = co_await std::move(verifying);
            const std::string dir = checked == login_check::ok ? user_maildir(cfg.mail_root, user) : std::string();
            if (checked == login_check::ok && dir.empty())
                checked = login_check::invalid; // a name no Maildir path can be made of (never a configured user)
            if (checked != login_check::ok) {
                s.answer_auth(checked == login_check::locked  ? imap::auth_verdict::locked
                              : checked == login_check::error ? imap::auth_verdict::temp_fail
                                                              : imap::auth_verdict::invalid);
                break;
            }
            mailbox::store_options opts;
            opts.host = cfg.hostname;
            exec.emplace(mailbox::store(dir, st->clock, opts));
            s.answer_auth(imap::auth_verdict::ok);
            log::info("auth").kv("session", sid).kv("client", ip).kv("proto", "imap").kv("user", user)
                .kv("result", "ok");
            break;
        }
        case imap::event::execute: {
            ++commands;
            const imap::command* cmd = &s.pending_command();
            imapd::executor* e = &*exec;
            auto job = [e, cmd]() { return e->run(*cmd); };
            auto running = offload(st->pool, std::move(job));
            auto done = co_await std::move(running);
            // A large FETCH comes in pieces: each is sent before the next is
            // read from the Maildir, each write with its own deadline.
            bool sent = true;
            while (sent && e->more()) {
                set_deadline(c, lim.data_timeout);
                sent = co_await flush(c, done.text);
                if (!sent)
                    break;
                auto more = [e]() { return e->resume(); };
                auto resuming = offload(st->pool, std::move(more));
                auto piece = co_await std::move(resuming);
                done.text += piece.text;
                done.selected = piece.selected;
                done.close = piece.close;
            }
            if (!sent) {
                open = false;
                break;
            }
            restart_deadline = true;
            s.executed(std::move(done));
            break;
        }
        case imap::event::start_tls: {
            if (!co_await flush(c, s.output())) {
                open = false;
                break;
            }
            set_deadline(c, lim.command_timeout);
            s.tls_started(co_await handshake(c, *gen.tls, sid, ip));
            restart_deadline = true;
            break;
        }
        case imap::event::close:
            if (!s.output().empty()) {
                set_deadline(c, std::chrono::seconds(10));
                co_await flush(c, s.output());
            }
            open = false;
            break;
        }
    }
    co_await st->svc.close(cl);
    auto line = log::info("disconnect");
    line.kv("session", sid).kv("client", ip).kv("proto", "imap").kv("commands", commands).kv("errors", s.errors());
    if (!user.empty())
        line.kv("user", user);
}

} // namespace postern::server
