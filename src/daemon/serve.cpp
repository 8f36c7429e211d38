#include "postern/daemon/serve.hpp"

#include <csignal>
#include <exception>
#include <system_error>

#include "postern/delivery/direct_store.hpp"
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
#include "postern/server/smtp_server.hpp"

namespace postern::daemon {

int serve(const config::settings& s)
{
    log::set_verbose(s.log == config::log_level::info);
    ::signal(SIGPIPE, SIG_IGN);
    try {
        util::system_clock clock;
        route::table routes(s);
        queue::fs_store store(s.spool_dir);
        store.open();
        const scheduler::retry_policy retry{s.queue.retry_initial, s.queue.retry_max, s.queue.give_up};

        asio::io_context io(1);
        dns::ares_resolver resolver(io, s.dns.servers, std::chrono::seconds(5), 2, clock);
        delivery::local_agent agent(s.mail_root, s.hostname, routes, retry);
        delivery::runner* runner_ptr = nullptr;
        delivery::remote_agent remote(io, resolver, s, [&runner_ptr](delivery::remote_outcome o) {
            runner_ptr->remote_done(std::move(o));
        });
        delivery::runner_options ropt;
        ropt.retry = retry;
        ropt.delay_warning = s.queue.delay_warning;
        ropt.hostname = s.hostname;
        ropt.remote = &remote;
        delivery::runner runner(store, agent, clock, ropt);
        runner_ptr = &runner;
        // Local mail is delivered as the commit itself (delivery::direct_store);
        // the committer thread has its own agent (an agent is single-threaded).
        delivery::local_agent direct_agent(s.mail_root, s.hostname, routes, retry);
        delivery::direct_store direct(store, direct_agent, routes, clock);
        queue::group_committer committer(direct, [&runner](std::vector<std::string> ids) {
            runner.notify(std::move(ids));
        });

        server::smtp_server smtp(io, s, routes, committer, clock);
        smtp.bind();
        // `postern queue ...`: requests go to the runner, which owns the queue.
        server::control_server control(io, s.spool_dir,
            [&runner](std::string request, server::control_server::reply_fn reply) {
                runner.control(std::move(request), std::move(reply));
            });

        asio::signal_set signals(io, SIGTERM, SIGINT);
        signals.async_wait([&](std::error_code ec, int sig) {
            if (ec)
                return;
            log::info("shutdown").kv("signal", sig);
            smtp.stop();
            control.stop();
            remote.stop();
            io.stop();
        });

        // The control socket first: it refuses to start when another live
        // server owns this spool, before this one scans or delivers anything.
        control.start();
        runner.start();
        smtp.start();
        log::info("start").kv("version", POSTERN_VERSION).kv("config", s.source)
            .kv("hostname", s.hostname).kv("spool", s.spool_dir).kv("mail_root", s.mail_root);
        io.run();
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
