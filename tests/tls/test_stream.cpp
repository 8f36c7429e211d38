#include "postern/tls/stream.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <system_error>

#include <doctest/doctest.h>
#include <asio/connect.hpp>
#include <openssl/ssl.h>

#include "postern/net/asio.hpp"
#include "postern/tls/context.hpp"
#include "tls_fixture.hpp"

using namespace postern;
using namespace postern::tls;
using postern::tls::testing::shared_pair;
using postern::tls::testing::test_host;
using namespace std::chrono_literals;

namespace {

// What each side saw; the test reads it after the loop ran.
struct side {
    bool done = false;
    std::error_code plain_ec;      // first failure in the plain phase
    std::error_code handshake_ec;  // the handshake's outcome
    std::error_code after_ec;      // first failure after the handshake
    std::error_code read_after_failure; // a read on a stream whose handshake failed
    std::string received;
    std::string description;
    bool verified = false;
    bool active = false;
    std::chrono::steady_clock::duration handshake_time{};
};

struct client_setup {
    std::shared_ptr<asio::ssl::context> ctx;
    std::string sni = test_host;
    bool verify_host = false;
    std::string pre_handshake_garbage; // plain bytes written right before the handshake
};

client_setup setup_for(std::shared_ptr<asio::ssl::context> ctx, bool verify_host = false)
{
    client_setup s;
    s.ctx = std::move(ctx);
    s.verify_host = verify_host;
    return s;
}

// Reads exactly n bytes (the peer's messages are small fixed strings).
net::awaitable<std::error_code> read_exact(stream& s, std::size_t n, std::string& out)
{
    out.clear();
    char buf[256];
    while (out.size() < n) {
        auto [ec, got] = co_await s.read_some(asio::buffer(buf, std::min(sizeof buf, n - out.size())));
        if (ec)
            co_return ec;
        out.append(buf, got);
    }
    co_return std::error_code{};
}

// The server side of a STARTTLS exchange: plain "STARTTLS" / "220 go", the
// handshake, then "hello" / "world" under TLS.
net::awaitable<void> starttls_server(net::tcp::acceptor& acc, std::shared_ptr<asio::ssl::context> ctx, side* r)
{
    auto [aec, sock] = co_await acc.async_accept(net::use_nothrow);
    REQUIRE_FALSE(aec);
    stream s(std::move(sock));
    std::string got;
    if ((r->plain_ec = co_await read_exact(s, 10, got)) || got != "STARTTLS\r\n") {
        r->done = true;
        co_return;
    }
    if ((r->plain_ec = co_await s.write_all(asio::buffer(std::string_view("220 go\r\n"))))) {
        r->done = true;
        co_return;
    }
    auto t0 = std::chrono::steady_clock::now();
    r->handshake_ec = co_await s.handshake_server(ctx);
    r->handshake_time = std::chrono::steady_clock::now() - t0;
    r->active = s.tls_active();
    if (r->handshake_ec) {
        std::string ignored;
        r->read_after_failure = co_await read_exact(s, 1, ignored);
    } else {
        r->description = s.tls_description();
        if (!(r->after_ec = co_await read_exact(s, 5, r->received)))
            r->after_ec = co_await s.write_all(asio::buffer(std::string_view("world")));
    }
    co_await s.shutdown();
    r->done = true;
}

net::awaitable<void> starttls_client(net::tcp::endpoint ep, client_setup setup, side* r)
{
    auto ex = co_await asio::this_coro::executor;
    net::tcp::socket sock(ex);
    auto [cec] = co_await sock.async_connect(ep, net::use_nothrow);
    REQUIRE_FALSE(cec);
    stream s(std::move(sock));
    std::string got;
    if ((r->plain_ec = co_await s.write_all(asio::buffer(std::string_view("STARTTLS\r\n")))) ||
        (r->plain_ec = co_await read_exact(s, 8, got))) {
        r->done = true;
        co_return;
    }
    if (!setup.pre_handshake_garbage.empty())
        r->plain_ec = co_await s.write_all(asio::buffer(setup.pre_handshake_garbage));
    auto t0 = std::chrono::steady_clock::now();
    r->handshake_ec = co_await s.handshake_client(setup.ctx, setup.sni, setup.verify_host);
    r->handshake_time = std::chrono::steady_clock::now() - t0;
    r->active = s.tls_active();
    if (!r->handshake_ec) {
        r->description = s.tls_description();
        r->verified = s.peer_verified();
        if (!(r->after_ec = co_await s.write_all(asio::buffer(std::string_view("hello")))))
            r->after_ec = co_await read_exact(s, 5, r->received);
    }
    co_await s.shutdown();
    r->done = true;
}

void log_failure(std::exception_ptr e)
{
    if (e)
        std::rethrow_exception(e);
}

struct loopback {
    asio::io_context io;
    net::tcp::acceptor acc{io, net::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
    side server, client;

    void run(std::shared_ptr<asio::ssl::context> server_ctx, client_setup setup)
    {
        asio::co_spawn(io, starttls_server(acc, std::move(server_ctx), &server), log_failure);
        asio::co_spawn(io, starttls_client(acc.local_endpoint(), std::move(setup), &client), log_failure);
        io.run_for(10s);
        REQUIRE(server.done);
        REQUIRE(client.done);
    }
};

std::shared_ptr<asio::ssl::context> server_ctx()
{
    return std::make_shared<asio::ssl::context>(make_server_context(shared_pair()));
}

std::shared_ptr<asio::ssl::context> client_ctx(tls_verify v)
{
    return std::make_shared<asio::ssl::context>(make_client_context(v));
}

// Reads and drops everything until EOF (a reset would spoil the other side's error).
net::awaitable<void> drain(net::tcp::socket& sock)
{
    char buf[512];
    for (;;) {
        auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), net::use_nothrow);
        if (ec)
            co_return;
    }
}

// A peer that accepts or connects and then says nothing until the other side leaves.
net::awaitable<void> silent_server(net::tcp::acceptor& acc, bool* done)
{
    auto [aec, sock] = co_await acc.async_accept(net::use_nothrow);
    REQUIRE_FALSE(aec);
    co_await drain(sock);
    *done = true;
}

net::awaitable<void> silent_client(net::tcp::endpoint ep, bool* done)
{
    auto ex = co_await asio::this_coro::executor;
    net::tcp::socket sock(ex);
    auto [cec] = co_await sock.async_connect(ep, net::use_nothrow);
    REQUIRE_FALSE(cec);
    co_await drain(sock);
    *done = true;
}

// Handshakes against a silent peer, with a watchdog that cancels the stream.
net::awaitable<void> handshake_with_watchdog(stream* s, bool as_server, side* r)
{
    asio::steady_timer watchdog(co_await asio::this_coro::executor);
    watchdog.expires_after(200ms);
    watchdog.async_wait([s](std::error_code ec) {
        if (!ec)
            s->cancel();
    });
    auto t0 = std::chrono::steady_clock::now();
    if (as_server)
        r->handshake_ec = co_await s->handshake_server(server_ctx());
    else
        r->handshake_ec = co_await s->handshake_client(client_ctx(tls_verify::none), test_host, false);
    r->handshake_time = std::chrono::steady_clock::now() - t0;
    watchdog.cancel();
    r->active = s->tls_active();
    co_await s->shutdown();
    r->done = true;
}

net::awaitable<void> stalled_server_side(net::tcp::acceptor& acc, side* r)
{
    auto [aec, sock] = co_await acc.async_accept(net::use_nothrow);
    REQUIRE_FALSE(aec);
    auto s = std::make_unique<stream>(std::move(sock));
    co_await handshake_with_watchdog(s.get(), true, r);
}

net::awaitable<void> stalled_client_side(net::tcp::endpoint ep, side* r)
{
    net::tcp::socket sock(co_await asio::this_coro::executor);
    auto [cec] = co_await sock.async_connect(ep, net::use_nothrow);
    REQUIRE_FALSE(cec);
    auto s = std::make_unique<stream>(std::move(sock));
    co_await handshake_with_watchdog(s.get(), false, r);
}

// The server ends a TLS session whose client never answers close_notify.
net::awaitable<void> closing_server(net::tcp::acceptor& acc, std::chrono::milliseconds bound, side* r)
{
    auto [aec, sock] = co_await acc.async_accept(net::use_nothrow);
    REQUIRE_FALSE(aec);
    stream s(std::move(sock));
    r->handshake_ec = co_await s.handshake_server(server_ctx());
    auto t0 = std::chrono::steady_clock::now();
    co_await s.shutdown(bound);
    r->handshake_time = std::chrono::steady_clock::now() - t0; // here: the shutdown's duration
    r->active = s.tls_active();
    r->done = true;
}

net::awaitable<void> mute_client(net::tcp::endpoint ep, side* r)
{
    net::tcp::socket sock(co_await asio::this_coro::executor);
    auto [cec] = co_await sock.async_connect(ep, net::use_nothrow);
    REQUIRE_FALSE(cec);
    stream s(std::move(sock));
    r->handshake_ec = co_await s.handshake_client(client_ctx(tls_verify::none), test_host, false);
    char c;
    auto [ec, n] = co_await s.read_some(asio::buffer(&c, 1)); // the server's close_notify
    r->after_ec = ec;
    co_await drain(s.socket()); // no reply; wait for the TCP FIN
    r->done = true;
}

} // namespace

TEST_SUITE("tls") {

TEST_CASE("both sides switch from plain text to TLS in place and exchange bytes")
{
    loopback lo;
    lo.run(server_ctx(), setup_for(client_ctx(tls_verify::none)));
    CHECK_FALSE(lo.server.plain_ec);
    CHECK_FALSE(lo.client.plain_ec);
    REQUIRE_FALSE(lo.server.handshake_ec);
    REQUIRE_FALSE(lo.client.handshake_ec);
    CHECK(lo.server.active);
    CHECK(lo.client.active);
    CHECK_FALSE(lo.server.after_ec);
    CHECK_FALSE(lo.client.after_ec);
    CHECK(lo.server.received == "hello");
    CHECK(lo.client.received == "world");
    CAPTURE(lo.server.description);
    CHECK((lo.server.description.rfind("TLSv1.3 TLS_", 0) == 0 || lo.server.description.rfind("TLSv1.2 ECDHE-", 0) == 0));
    CHECK(lo.client.description == lo.server.description);
    CHECK_FALSE(lo.client.verified); // self-signed, nothing trusted
}

TEST_CASE("a TLS 1.2 client gets an ECDHE AEAD suite")
{
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX_set_max_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    loopback lo;
    lo.run(server_ctx(), setup_for(ctx));
    REQUIRE_FALSE(lo.server.handshake_ec);
    CAPTURE(lo.server.description);
    CHECK(lo.server.description.rfind("TLSv1.2 ECDHE-RSA-", 0) == 0);
    CHECK(lo.server.description.find("GCM") != std::string::npos);
    CHECK(lo.client.received == "world");
}

TEST_CASE("a client limited to TLS 1.1 cannot handshake with the server context")
{
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX* h = ctx->native_handle();
    // Let the client really offer TLS 1.0/1.1 (OpenSSL 3 refuses them at security level 1+),
    // so the refusal we see is the server's.
    SSL_CTX_set_min_proto_version(h, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(h, TLS1_1_VERSION);
    REQUIRE(SSL_CTX_set_cipher_list(h, "DEFAULT:@SECLEVEL=0") == 1);
    loopback lo;
    lo.run(server_ctx(), setup_for(ctx));
    CAPTURE(lo.server.handshake_ec.message());
    CAPTURE(lo.client.handshake_ec.message());
    CHECK(lo.server.handshake_ec);
    CHECK(lo.client.handshake_ec);
    CHECK(lo.server.handshake_ec.message().find("unsupported protocol") != std::string::npos);
    CHECK_FALSE(lo.server.active);
    CHECK_FALSE(lo.client.active);
    // No fallback to plain text after a failed handshake.
    CHECK(lo.server.read_after_failure == asio::error::not_connected);
}

TEST_CASE("plain bytes still unread when the handshake starts make it fail")
{
    loopback lo;
    auto setup = setup_for(client_ctx(tls_verify::none));
    setup.pre_handshake_garbage = "RSET\r\n"; // e.g. pipelined after STARTTLS by an injector
    lo.run(server_ctx(), setup);
    CHECK(lo.server.handshake_ec);
    CHECK(lo.client.handshake_ec);
    CHECK(lo.server.received.empty());
}

TEST_CASE("a verifying client refuses the self-signed certificate unless it trusts it")
{
    auto ctx = client_ctx(tls_verify::verify);
    auto setup = setup_for(ctx, true);

    SUBCASE("untrusted")
    {
        loopback lo;
        lo.run(server_ctx(), setup);
        CAPTURE(lo.client.handshake_ec.message());
        CHECK(lo.client.handshake_ec);
        CHECK(lo.client.handshake_ec.message().find("certificate verify failed") != std::string::npos);
        CHECK_FALSE(lo.client.active);
    }
    SUBCASE("trusted by the test")
    {
        REQUIRE(SSL_CTX_load_verify_locations(ctx->native_handle(), shared_pair().certificate.c_str(), nullptr) == 1);
        loopback lo;
        lo.run(server_ctx(), setup);
        CAPTURE(lo.client.handshake_ec.message());
        REQUIRE_FALSE(lo.client.handshake_ec);
        CHECK(lo.client.verified);
        CHECK(lo.client.received == "world");
    }
    SUBCASE("trusted, but for another host name")
    {
        REQUIRE(SSL_CTX_load_verify_locations(ctx->native_handle(), shared_pair().certificate.c_str(), nullptr) == 1);
        setup.sni = "other.test";
        loopback lo;
        lo.run(server_ctx(), setup);
        CAPTURE(lo.client.handshake_ec.message());
        CHECK(lo.client.handshake_ec);
    }
    SUBCASE("host verification without a name is refused before any handshake")
    {
        setup.sni.clear();
        loopback lo;
        lo.run(server_ctx(), setup);
        CHECK(lo.client.handshake_ec == std::errc::invalid_argument);
    }
}

TEST_CASE("a handshake with a peer that stalls ends when a watchdog cancels the stream")
{
    asio::io_context io;
    net::tcp::acceptor acc(io, net::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    side r;
    bool peer_done = false;
    SUBCASE("we are the server, the client says nothing")
    {
        asio::co_spawn(io, stalled_server_side(acc, &r), log_failure);
        asio::co_spawn(io, silent_client(acc.local_endpoint(), &peer_done), log_failure);
    }
    SUBCASE("we are the client, the server says nothing")
    {
        asio::co_spawn(io, silent_server(acc, &peer_done), log_failure);
        asio::co_spawn(io, stalled_client_side(acc.local_endpoint(), &r), log_failure);
    }
    io.run_for(10s);
    REQUIRE(r.done);
    CHECK(peer_done);
    CHECK(r.handshake_ec == asio::error::operation_aborted);
    CHECK_FALSE(r.active);
    CHECK(r.handshake_time < 5s);
}

TEST_CASE("shutdown stops waiting for the peer's close_notify after its bound")
{
    asio::io_context io;
    net::tcp::acceptor acc(io, net::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    side server, client;
    asio::co_spawn(io, closing_server(acc, 150ms, &server), log_failure);
    asio::co_spawn(io, mute_client(acc.local_endpoint(), &client), log_failure);
    io.run_for(10s);
    REQUIRE(server.done);
    REQUIRE(client.done);
    REQUIRE_FALSE(server.handshake_ec);
    REQUIRE_FALSE(client.handshake_ec);
    CHECK(client.after_ec == asio::error::eof); // close_notify arrived
    CHECK(server.handshake_time >= 150ms);
    CHECK(server.handshake_time < 5s);
    CHECK_FALSE(server.active);
}

}
