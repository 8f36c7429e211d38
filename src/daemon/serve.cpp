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
#include "postern/log/log.hpp"
#include "postern/net/asio.hpp"
#include "postern/queue/fs_store.hpp"
#include "postern/queue/group_committer.hpp"
#include "postern/route/table.hpp"
#include "postern/server/control_server.hpp"
#include "postern/server/metrics_server.hpp"
#include "postern/server/pickup_service.hpp"
#include "postern/server/imap_server.hpp"
#include "postern/server/pop3_server.hpp"
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

// Users with a password, by lower-cased address; nullptr when there are none
// (AUTH is then not offered at all).
std::shared_ptr<auth::credentials> make_credentials(const config::settings& s)
{
    std::map<std::string, std::string, std::less<>> users;
    for (const auto& u : s.users)
        if (!u.password.empty())
            users.emplace(util::to_lower(u.address), u.password);
    if (users.empty())
        return nullptr;
    return std::make_shared<auth::static_credentials>(std::move(users));
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
        route::table routes(s);
        queue::fs_store store(s.spool_dir);
        store.open();
        const scheduler::retry_policy retry{s.queue.retry_initial, s.queue.retry_max, s.queue.give_up};

        asio::io_context io(1);
        dns::ares_resolver resolver(io, s.dns.servers, std::chrono::seconds(5), 2, clock);
        // Local domains delivered over LMTP (RFC 2033) rather than into Maildirs.
        const std::set<std::string> lmtp_domains(s.delivery.domains.begin(), s.delivery.domains.end());
        delivery::local_agent agent(s.mail_root, s.hostname, routes, retry, lmtp_domains);
        delivery::runner* runner_ptr = nullptr;
        delivery::remote_agent remote(io, resolver, s, [&runner_ptr](delivery::remote_outcome o) {
            runner_ptr->remote_done(std::move(o));
        });
        std::optional<delivery::lmtp_agent> lmtp;
        if (!s.delivery.lmtp.empty())
            lmtp.emplace(io, s, [&runner_ptr](delivery::remote_outcome o) { runner_ptr->remote_done(std::move(o)); });
        delivery::runner_options ropt;
        ropt.retry = retry;
        ropt.delay_warning = s.queue.delay_warning;
        ropt.hostname = s.hostname;
        ropt.remote = &remote;
        ropt.lmtp = lmtp ? &*lmtp : nullptr;
        delivery::runner runner(store, agent, clock, ropt);
        runner_ptr = &runner;
        // Local mail is delivered as the commit itself (delivery::direct_store);
        // the committer thread has its own agent (an agent is single-threaded).
        delivery::local_agent direct_agent(s.mail_root, s.hostname, routes, retry, lmtp_domains);
        delivery::direct_store direct(store, direct_agent, routes, clock);
        queue::group_committer committer(direct, [&runner](std::vector<std::string> ids) {
            runner.notify(std::move(ids));
        });

        std::optional<tls::server_contexts> tls_contexts;
        if (any_tls_listener(s))
            tls_contexts.emplace(certificate_files(s));
        auto credentials = make_credentials(s);
        server::smtp_server smtp(io, s, routes, committer, clock, tls_contexts ? &*tls_contexts : nullptr,
                                 credentials);
        smtp.bind();
        server::pop3_server pop3(io, s, clock, tls_contexts ? &*tls_contexts : nullptr, credentials);
        pop3.bind();
        server::imap_server imap(io, s, clock, tls_contexts ? &*tls_contexts : nullptr, credentials);
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
        // checked again. Refused (the error logged and answered, the running
        // configuration kept) when it is invalid or its certificate does not
        // load. Accepted: the certificate files are read again (renewed
        // certificates; sessions keep the context they started with); other
        // changed settings are named as taking effect at the next restart.
        auto reload = [&]() -> nlohmann::json {
            std::optional<config::settings> next;
            if (s.source != "<embedded default>") {
                try {
                    next.emplace(config::load_file(s.source));
                    check_certificate(*next);
                } catch (const config::error& e) {
                    log::error("reload").kv("config", s.source).kv("result", "failed").kv("error", e.what());
                    return {{"ok", false}, {"error", std::string(e.what()) + " (the running configuration is kept)"}};
                }
            }
            const auto& wanted = next ? *next : s;
            if (tls_contexts) {
                auto why = tls_contexts->reload(certificate_files(wanted));
                if (!why.empty()) {
                    log::error("reload").kv("result", "failed").kv("error", why);
                    return {{"ok", false}, {"error", why + " (the old certificate stays in use)"}};
                }
            }
            std::string later; // top-level keys that changed, for the next restart
            if (next) {
                const auto was = nlohmann::json::parse(config::to_json(s));
                const auto now = nlohmann::json::parse(config::to_json(*next));
                for (const auto& [key, value] : now.items())
                    if (key != "tls" && (!was.contains(key) || was[key] != value))
                        later += (later.empty() ? "" : ",") + key;
            }
            auto line = log::info("reload");
            line.kv("config", s.source).kv("result", "ok");
            if (tls_contexts)
                line.kv("tls_certificate", tls_contexts->files().certificate);
            if (!later.empty())
                line.kv("restart_needed", later);
            return {{"ok", true}, {"tls_certificate", tls_contexts ? tls_contexts->files().certificate : ""},
                    {"restart_needed", later}};
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
            log::info("shutdown").kv("signal", sig).kv("sessions", smtp.sessions() + pop3.sessions() + imap.sessions())
                .kv("timeout", static_cast<std::uint64_t>(s.lim.shutdown_timeout.count()));
            phase = stopping::grace;
            deadline = std::chrono::steady_clock::now() + s.lim.shutdown_timeout;
            smtp.shutdown();
            pop3.shutdown();
            imap.shutdown();
            hup.cancel();
            signals.async_wait(on_signal);
            watch({});
        };
        signals.async_wait(on_signal);

        // `postern sendmail`'s files in <spool_dir>/pickup/ (Postfix's maildrop).
        server::pickup_service pickup(s, routes, committer, clock);

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
