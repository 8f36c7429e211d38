#include "postern/daemon/serve.hpp"

#include <chrono>
#include <csignal>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "postern/daemon/privileges.hpp"
#include "postern/delivery/direct_store.hpp"
#include "postern/delivery/lmtp_agent.hpp"
#include "postern/delivery/local_agent.hpp"
#include "postern/delivery/remote_agent.hpp"
#include "postern/dns/ares_resolver.hpp"
#include "postern/delivery/runner.hpp"
#include "postern/live/generation.hpp"
#include "postern/log/log.hpp"
#include "postern/net/asio.hpp"
#include "postern/queue/fs_store.hpp"
#include "postern/queue/group_committer.hpp"
#include "postern/server/control_server.hpp"
#include "postern/server/metrics_server.hpp"
#include "postern/server/pickup_service.hpp"
#include "postern/server/imap_server.hpp"
#include "postern/server/pop3_server.hpp"
#include "postern/server/session_io.hpp"
#include "postern/server/smtp_server.hpp"
#include "postern/tls/context.hpp"
#include "postern/util/strings.hpp"

namespace postern::daemon {

namespace {

bool any_tls_listener(const config::settings& s)
{
    for (const auto& l : s.listeners)
        if (l.tls != config::listener_tls::none)
            return true;
    return false;
}

// The configured certificate, or the self-signed one in spool_dir/tls/
// (made at first start so the embedded default offers STARTTLS too).
// Throws std::runtime_error naming the file.
tls::server_tls_files certificate_files(const config::settings& s)
{
    if (!s.tls.certificate.empty())
        return {s.tls.certificate, s.tls.private_key};
    bool created = false;
    auto files = tls::ensure_self_signed(s.spool_dir + "/tls", s.hostname, created);
    log::info("tls_certificate").kv("certificate", files.certificate).kv("self_signed", "yes")
        .kv("created", created ? "yes" : "no");
    if (created)
        log::warn("tls_certificate").kv("note", "self-signed certificate created; configure tls.certificate "
                                                "and tls.private_key for clients that verify");
    return files;
}

// Which server serves a listener mode: an address may change mode live
// within one server (smtp ↔ submission), not from one server to another.
enum class server_kind { smtp, pop3, imap };

server_kind server_of(config::listener_mode m)
{
    switch (m) {
    case config::listener_mode::smtp:
    case config::listener_mode::submission:
        return server_kind::smtp;
    case config::listener_mode::pop3:
        return server_kind::pop3;
    case config::listener_mode::imap:
        return server_kind::imap;
    }
    return server_kind::smtp;
}

// An address whose listener moves to another server: "" when none.
std::string moved_listener(const config::settings& was, const config::settings& now)
{
    for (const auto& n : now.listeners)
        for (const auto& w : was.listeners)
            if (n.host == w.host && n.port == w.port && server_of(n.mode) != server_of(w.mode))
                return n.spec;
    return {};
}

// The top-level keys whose values differ (listed in the file's order).
std::string changed_keys(const config::settings& was, const config::settings& now)
{
    const auto a = nlohmann::json::parse(config::to_json(was));
    const auto b = nlohmann::json::parse(config::to_json(now));
    std::string out;
    for (const auto& [key, value] : b.items())
        if (!a.contains(key) || a[key] != value)
            out += (out.empty() ? "" : ",") + key;
    return out;
}

} // namespace

void check_certificate(const config::settings& s)
{
    if (s.tls.certificate.empty())
        return;
    try {
        (void)tls::make_server_context({s.tls.certificate, s.tls.private_key});
    } catch (const std::runtime_error& e) {
        throw config::error(s.source + ": tls.certificate/tls.private_key: expected a PEM certificate chain and "
                                       "its private key: " + e.what());
    }
}

int serve(const config::settings& s)
{
    log::set_verbose(s.log == config::log_level::info);
    ::signal(SIGPIPE, SIG_IGN);
    std::optional<account> run_as;
    try {
        check_certificate(s); // a configuration error: exit 2 before any bind
        run_as = resolve_account(s);
    } catch (const config::error& e) {
        log::fatal("config").kv("error", e.what());
        return 2;
    }
    if (run_as && ::geteuid() != 0 && ::geteuid() != run_as->uid) {
        log::fatal("privileges").kv("user", run_as->user)
            .kv("error", "switching to the configured user needs root; started as uid " + std::to_string(::geteuid()));
        return 1;
    }
    if (!run_as && ::geteuid() == 0)
        log::warn("privileges").kv("user", "root")
            .kv("note", "running as root: set \"user\" to run unprivileged once the ports are bound");
    try {
        util::system_clock clock;
        queue::fs_store store(s.spool_dir);
        store.open();
        const scheduler::retry_policy retry{s.queue.retry_initial, s.queue.retry_max, s.queue.give_up};

        // The configuration in force, as one generation every part reads
        // (live/generation.hpp); a reload swaps it below, on this thread.
        std::optional<tls::server_contexts> tls_contexts;
        if (any_tls_listener(s))
            tls_contexts.emplace(certificate_files(s));
        live::current in_force(std::make_shared<const live::generation>(s, 1, tls_contexts ? &*tls_contexts : nullptr));

        asio::io_context io(1);
        dns::ares_resolver resolver(io, s.dns.servers, std::chrono::seconds(5), 2, clock);
        delivery::local_agent agent(in_force);
        delivery::runner* runner_ptr = nullptr;
        delivery::remote_agent remote(io, resolver, in_force, [&runner_ptr](delivery::remote_outcome o) {
            runner_ptr->remote_done(std::move(o));
        });
        // Local domains delivered over LMTP (RFC 2033) rather than into
        // Maildirs; its server is fixed at start (live::restart_only).
        std::optional<delivery::lmtp_agent> lmtp;
        if (!s.delivery.lmtp.empty())
            lmtp.emplace(io, in_force,
                         [&runner_ptr](delivery::remote_outcome o) { runner_ptr->remote_done(std::move(o)); });
        delivery::runner_options ropt;
        ropt.retry = retry;
        ropt.delay_warning = s.queue.delay_warning;
        ropt.hostname = s.hostname;
        ropt.remote = &remote;
        ropt.lmtp = lmtp ? &*lmtp : nullptr;
        ropt.live = &in_force;
        delivery::runner runner(store, agent, clock, ropt);
        runner_ptr = &runner;
        // Local mail is delivered as the commit itself (delivery::direct_store);
        // the committer thread has its own agent (an agent is single-threaded).
        delivery::local_agent direct_agent(in_force);
        delivery::direct_store direct(store, direct_agent, clock);
        queue::group_committer committer(direct, [&runner](std::vector<std::string> ids) {
            runner.notify(std::move(ids));
        });

        server::smtp_server smtp(io, in_force, committer, clock);
        smtp.bind();
        server::pop3_server pop3(io, in_force, clock);
        pop3.bind();
        server::imap_server imap(io, in_force, clock);
        imap.bind();
        server::metrics_server metrics_http(io, s);
        metrics_http.bind();
        // Ports bound: now give up root for good, before the control socket,
        // the delivery threads and any client's byte.
        if (run_as && ::geteuid() == 0) {
            hand_over({s.spool_dir, s.mail_root}, *run_as, {server::pickup_service::directory(s.spool_dir)});
            drop_privileges(*run_as);
            log::info("privileges").kv("user", run_as->user).kv("group", run_as->group)
                .kv("uid", static_cast<std::uint64_t>(run_as->uid)).kv("gid", static_cast<std::uint64_t>(run_as->gid));
        }
        // SIGHUP and `postern reload`: the configuration file is read and
        // checked again. Refused as a whole (the error logged and answered,
        // the running configuration kept) when it is invalid, its
        // certificate does not load, a new listener cannot be bound or one
        // moves to another protocol's server. Accepted: a new generation is
        // swapped in — sessions already open keep theirs, new ones and
        // every next delivery attempt get it; listeners are bound first,
        // then the swap, then the removed ones are closed; the certificate
        // files are read again. What cannot change while running
        // (live::restart_only) keeps its running value and is named as
        // taking effect at the next restart.
        // Every protocol server built on server::service takes part in a
        // reload's listener steps (and in server_of() above).
        auto servers_prepare = [&](const live::generation& gen) {
            smtp.listeners().prepare(gen);
            pop3.listeners().prepare(gen);
            imap.listeners().prepare(gen);
        };
        auto servers_cancel = [&] {
            smtp.listeners().cancel();
            pop3.listeners().cancel();
            imap.listeners().cancel();
        };
        auto servers_commit = [&] {
            smtp.listeners().commit();
            pop3.listeners().commit();
            imap.listeners().commit();
        };
        auto reload = [&]() -> nlohmann::json {
            const auto running = in_force.get();
            auto refuse = [&](const std::string& why) -> nlohmann::json {
                log::error("reload").kv("config", s.source).kv("result", "failed").kv("error", why);
                return {{"ok", false}, {"error", why + " (the running configuration is kept)"}};
            };
            config::settings next = running->cfg;
            if (s.source != "<embedded default>") {
                try {
                    next = config::load_file(s.source);
                    check_certificate(next);
                } catch (const config::error& e) {
                    return refuse(e.what());
                }
            }
            std::string later; // settings that changed, for the next restart
            for (const auto& k : live::restart_only(running->cfg, next))
                later += (later.empty() ? "" : ",") + k;
            if (auto spec = moved_listener(running->cfg, next); !spec.empty())
                return refuse("listener " + spec + ": moving an address to another protocol's server takes a restart");
            if (!tls_contexts && any_tls_listener(next)) {
                try {
                    tls_contexts.emplace(certificate_files(next)); // no session uses it yet
                } catch (const std::runtime_error& e) {
                    return refuse(e.what());
                }
            }
            std::shared_ptr<const live::generation> gen;
            try {
                gen = std::make_shared<const live::generation>(next, running->number + 1,
                                                               tls_contexts ? &*tls_contexts : nullptr);
                servers_prepare(*gen); // binds the new listeners
            } catch (const std::exception& e) {
                servers_cancel();
                return refuse(e.what());
            }
            if (tls_contexts) {
                auto why = tls_contexts->reload(certificate_files(gen->cfg));
                if (!why.empty()) {
                    servers_cancel();
                    log::error("reload").kv("result", "failed").kv("error", why);
                    return {{"ok", false}, {"error", why + " (the old certificate stays in use)"}};
                }
            }
            const auto applied = changed_keys(running->cfg, gen->cfg);
            in_force.set(gen);
            servers_commit(); // closes the listeners no longer configured
            log::set_verbose(gen->cfg.log == config::log_level::info);
            auto line = log::info("reload");
            line.kv("config", s.source).kv("result", "ok").kv("generation", gen->number);
            if (!applied.empty())
                line.kv("applied", applied);
            if (tls_contexts)
                line.kv("tls_certificate", tls_contexts->files().certificate);
            if (!later.empty())
                line.kv("restart_needed", later);
            return {{"ok", true}, {"tls_certificate", tls_contexts ? tls_contexts->files().certificate : ""},
                    {"applied", applied}, {"restart_needed", later}};
        };
        // `postern queue ...` goes to the runner, which owns the queue;
        // `postern reload` is answered here.
        server::control_server control(io, s.spool_dir,
            [&runner, &reload](std::string request, server::control_server::reply_fn reply) {
                const auto req = nlohmann::json::parse(request, nullptr, false);
                if (req.is_object() && req.contains("cmd") && req["cmd"] == "reload")
                    return reply(reload().dump());
                runner.control(std::move(request), std::move(reply));
            });
        asio::signal_set hup(io, SIGHUP);
        std::function<void(std::error_code, int)> on_hup = [&](std::error_code ec, int) {
            if (ec)
                return;
            (void)reload();
            hup.async_wait(on_hup);
        };
        hup.async_wait(on_hup);

        // SIGTERM/SIGINT: a graceful stop. Stop accepting; sessions with
        // nothing open get "421 4.3.2" at once, open mail transactions may
        // finish for limits.shutdown_timeout_s; then the rest get 421 too,
        // and at most 5 s later the loop ends. Whatever was acknowledged is
        // already durable (the committer drains below); deliveries under way
        // are cancelled and retried at the next start. A second signal
        // ends the wait at once.
        asio::signal_set signals(io, SIGTERM, SIGINT);
        asio::steady_timer drain(io);
        enum class stopping { no, grace, forced } phase = stopping::no;
        auto deadline = std::chrono::steady_clock::now();
        auto finish = [&] {
            drain.cancel();
            signals.cancel();
            hup.cancel();
            control.stop();
            metrics_http.stop();
            remote.stop();
            if (lmtp)
                lmtp->stop();
            io.stop();
        };
        std::function<void(std::error_code)> watch = [&](std::error_code ec) {
            if (ec)
                return;
            const auto open = smtp.sessions() + pop3.sessions() + imap.sessions();
            const auto now = std::chrono::steady_clock::now();
            if (open == 0)
                return finish();
            if (phase == stopping::grace && now >= deadline) {
                log::warn("shutdown").kv("sessions", open).kv("action", "421 4.3.2 to the rest");
                phase = stopping::forced;
                smtp.force_close();
                pop3.force_close();
                imap.force_close();
                deadline = now + std::chrono::seconds(5);
            } else if (phase == stopping::forced && now >= deadline) {
                log::warn("shutdown").kv("sessions", open).kv("action", "closing");
                return finish();
            }
            drain.expires_after(std::chrono::milliseconds(20));
            drain.async_wait(watch);
        };
        std::function<void(std::error_code, int)> on_signal = [&](std::error_code ec, int sig) {
            if (ec)
                return;
            if (phase != stopping::no) {
                log::info("shutdown").kv("signal", sig).kv("action", "now");
                return finish();
            }
            const auto grace = in_force.get()->cfg.lim.shutdown_timeout;
            log::info("shutdown").kv("signal", sig).kv("sessions", smtp.sessions() + pop3.sessions() + imap.sessions())
                .kv("timeout", static_cast<std::uint64_t>(grace.count()));
            phase = stopping::grace;
            deadline = std::chrono::steady_clock::now() + grace;
            smtp.shutdown();
            pop3.shutdown();
            imap.shutdown();
            hup.cancel();
            signals.async_wait(on_signal);
            watch({});
        };
        signals.async_wait(on_signal);

        // `postern sendmail`'s files in <spool_dir>/pickup/ (Postfix's maildrop).
        server::pickup_service pickup(in_force, committer, clock);

        // The control socket first: it refuses to start when another live
        // server owns this spool, before this one scans or delivers anything.
        control.start();
        runner.start();
        smtp.start();
        pop3.start();
        imap.start();
        metrics_http.start();
        pickup.start();
        log::info("start").kv("version", POSTERN_VERSION).kv("config", s.source)
            .kv("hostname", s.hostname).kv("spool", s.spool_dir).kv("mail_root", s.mail_root);
        io.run();
        pickup.stop(); // its file in hand is committed (or left) first
        committer.stop(); // everything acknowledged is already durable; drain the rest
        runner.stop();
        log::info("stopped");
        return 0;
    } catch (const std::exception& e) {
        log::fatal("startup").kv("error", e.what());
        return 1;
    }
}

} // namespace postern::daemon
