#include "postern/server/protocol_server.hpp"

#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <doctest/doctest.h>

#include "postern/live/generation.hpp"
#include "postern/server/session_io.hpp"

using namespace postern;

namespace {

// A free loopback port: bound at 0 by the kernel, then let go.
std::uint16_t free_port(asio::io_context& io)
{
    net::tcp::acceptor a(io, net::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

config::listener loopback(std::uint16_t port, config::listener_mode mode, config::listener_tls tls)
{
    config::listener l;
    l.host = "127.0.0.1";
    l.port = port;
    l.spec = "127.0.0.1:" + std::to_string(port);
    l.mode = mode;
    l.tls = tls;
    return l;
}

// The smallest protocol server: counts the sessions it is asked to start.
struct counting_server : server::protocol_server {
    struct state {
        state(asio::io_context& io, const live::current& live)
            : svc(io, metrics::protocol::pop3, {config::listener_mode::pop3}, live)
        {
        }
        server::service svc;
        std::vector<std::string> spawned; // the listeners' specs
    };

    counting_server(asio::io_context& io, const live::current& live)
        : counting_server(std::make_shared<state>(io, live))
    {
    }
    explicit counting_server(std::shared_ptr<state> s)
        : protocol_server(std::shared_ptr<server::service>(s, &s->svc),
                          [s](config::listener l, net::tcp::socket) { s->spawned.push_back(l.spec); }),
          st(std::move(s))
    {
    }
    std::shared_ptr<state> st;
};

} // namespace

TEST_SUITE("server")
{
    TEST_CASE("a protocol server binds its own listeners, spawns a session per client and stops accepting")
    {
        asio::io_context io;
        const auto port = free_port(io);
        config::settings s;
        s.listeners = {loopback(port, config::listener_mode::pop3, config::listener_tls::none),
                       loopback(free_port(io), config::listener_mode::smtp, config::listener_tls::none)};
        live::current in_force(std::make_shared<const live::generation>(s));
        counting_server srv(io, in_force);
        srv.bind();
        CHECK(srv.listeners().listeners() == 1); // the smtp listener is another server's
        srv.start();
        net::tcp::socket client(io);
        client.connect(net::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
        for (int i = 0; i < 1000 && srv.st->spawned.empty(); ++i)
            io.run_one_for(std::chrono::milliseconds(10));
        CHECK(srv.st->spawned == std::vector<std::string>{"127.0.0.1:" + std::to_string(port)});
        CHECK(srv.sessions() == 0); // the counting spawn opened no session
        srv.stop();
        io.poll();
        net::tcp::socket late(io);
        std::error_code ec;
        late.connect(net::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
        CHECK(ec == asio::error::connection_refused);
    }

    TEST_CASE("a protocol server refuses a TLS listener without a certificate at bind, naming it")
    {
        asio::io_context io;
        config::settings s;
        s.listeners = {loopback(free_port(io), config::listener_mode::pop3, config::listener_tls::implicit)};
        live::current in_force(std::make_shared<const live::generation>(s));
        counting_server srv(io, in_force);
        try {
            srv.bind();
            FAIL("bound a TLS listener without a certificate");
        } catch (const std::system_error& e) {
            CHECK(std::string(e.what()).find("TLS without a certificate") != std::string::npos);
        }
    }
}
