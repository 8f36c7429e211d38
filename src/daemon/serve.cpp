#include "postern/daemon/serve.hpp"

#include <csignal>
#include <exception>
#include <system_error>

#include "postern/delivery/local_agent.hpp"
#include "postern/delivery/runner.hpp"
#include "postern/log/log.hpp"
#include "postern/net/asio.hpp"
#include "postern/queue/fs_store.hpp"
#include "postern/queue/group_committer.hpp"
#include "postern/route/table.hpp"
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
        delivery::local_agent agent(s.mail_root, s.hostname, routes, scheduler::retry_policy{});
        delivery::runner runner(store, agent, clock, scheduler::retry_policy{});
        queue::group_committer committer(store, [&runner](std::vector<std::string> ids) {
            runner.notify(std::move(ids));
        });

        asio::io_context io(1);
        server::smtp_server smtp(io, s, routes, committer, clock);
        smtp.bind();

        asio::signal_set signals(io, SIGTERM, SIGINT);
        signals.async_wait([&](std::error_code ec, int sig) {
            if (ec)
                return;
            log::info("shutdown").kv("signal", sig);
            smtp.stop();
            io.stop();
        });

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
