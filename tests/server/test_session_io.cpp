#include "postern/server/session_io.hpp"

#include <chrono>
#include <string>
#include <system_error>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/write.hpp>
#include <doctest/doctest.h>

#include "postern/util/error.hpp"
#include "postern/util/result.hpp"

using namespace postern;

TEST_SUITE("server")
{
    TEST_CASE("the connection counter refuses over the total and the per-address limit and releases")
    {
        config::limits lim;
        lim.connections = 3;
        lim.connections_per_ip = 2;
        server::connection_counter n;
        CHECK(n.admit("192.0.2.1", lim));
        CHECK(n.admit("192.0.2.1", lim));
        CHECK_FALSE(n.admit("192.0.2.1", lim)); // the third from one address
        CHECK(n.current() == 3);
        CHECK_FALSE(n.admit("192.0.2.2", lim)); // over the total (counted all the same)
        n.release("192.0.2.2");
        n.release("192.0.2.1");
        CHECK(n.current() == 2);
        CHECK(n.admit("192.0.2.3", lim));
        n.release("192.0.2.3");
        n.release("192.0.2.1");
        CHECK(n.admit("192.0.2.1", lim)); // room again for that address
    }

    TEST_CASE("a TLS listener without a certificate and a bad address are refused at bind, naming the listener")
    {
        asio::io_context io;
        config::listener l;
        l.spec = "127.0.0.1:0";
        l.host = "127.0.0.1";
        l.tls = config::listener_tls::implicit;
        try {
            (void)server::bind_listener(io, l, false);
            FAIL("bound a TLS listener without a certificate");
        } catch (const std::system_error& e) {
            CHECK(std::string(e.what()).find("listener 127.0.0.1:0: TLS without a certificate") != std::string::npos);
        }
        l.tls = config::listener_tls::none;
        auto acc = server::bind_listener(io, l, false);
        CHECK(acc.is_open());
        CHECK(acc.local_endpoint().port() != 0);
        l.host = "not-an-address";
        l.spec = "not-an-address:25";
        CHECK_THROWS_AS((void)server::bind_listener(io, l, false), std::system_error);
    }

    TEST_CASE("offload runs the job on the pool and resumes the coroutine on the event loop with its result")
    {
        asio::io_context io(1);
        asio::thread_pool pool(1);
        const auto loop_thread = std::this_thread::get_id();
        std::thread::id job_thread, resumed_thread;
        util::result<std::string> got = util::make_error_code(util::errc::not_found);
        struct state {
            std::thread::id* job;
            std::thread::id* resumed;
            util::result<std::string>* got;
            asio::thread_pool* pool;
        } st{&job_thread, &resumed_thread, &got, &pool};
        auto body = [](state s) -> net::awaitable<void> {
            auto job = [t = s.job, text = std::string(40, 'x')]() -> util::result<std::string> {
                *t = std::this_thread::get_id();
                return text + "!";
            };
            auto op = server::offload(*s.pool, std::move(job));
            *s.got = co_await std::move(op);
            *s.resumed = std::this_thread::get_id();
        };
        asio::co_spawn(io, body(st), asio::detached);
        io.run();
        REQUIRE(got);
        CHECK(*got == std::string(40, 'x') + "!");
        CHECK(job_thread != loop_thread);
        CHECK(resumed_thread == loop_thread);
    }

    TEST_CASE("read_some gives the client's bytes, then an empty view at EOF")
    {
        asio::io_context io(1);
        net::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
        net::tcp::socket client(io);
        client.connect(acc.local_endpoint());
        auto c = std::make_shared<server::connection>(acc.accept());
        c->stream.socket().non_blocking(true);
        asio::write(client, asio::buffer(std::string("NOOP\r\n")));
        client.shutdown(net::tcp::socket::shutdown_send);
        std::string first;
        bool ended = false;
        auto body = [](std::shared_ptr<server::connection> conn, std::string* out, bool* eof) -> net::awaitable<void> {
            for (;;) {
                auto bytes = co_await server::read_some(conn);
                if (bytes.empty()) {
                    *eof = true;
                    co_return;
                }
                out->append(bytes);
            }
        };
        server::set_deadline(c, std::chrono::seconds(10));
        server::arm_watchdog(c);
        asio::co_spawn(io, body(c, &first, &ended), [c](std::exception_ptr) {
            c->finished = true;
            c->timer.cancel();
        });
        io.run();
        CHECK(first == "NOOP\r\n");
        CHECK(ended);
        CHECK_FALSE(c->timed_out);
    }

    TEST_CASE("a silent client is cut off at the deadline")
    {
        asio::io_context io(1);
        net::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
        net::tcp::socket client(io);
        client.connect(acc.local_endpoint());
        auto c = std::make_shared<server::connection>(acc.accept());
        c->stream.socket().non_blocking(true);
        c->deadline = server::steady::now() + std::chrono::milliseconds(50);
        server::arm_watchdog(c);
        bool empty = false;
        auto body = [](std::shared_ptr<server::connection> conn, bool* out) -> net::awaitable<void> {
            auto bytes = co_await server::read_some(conn);
            *out = bytes.empty();
        };
        asio::co_spawn(io, body(c, &empty), [c](std::exception_ptr) {
            c->finished = true;
            c->timer.cancel();
        });
        io.run();
        CHECK(empty);
        CHECK(c->timed_out);
    }
}
