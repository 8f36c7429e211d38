#include "postern/tls/stream.hpp"

#include <utility>

#include <asio/ip/address.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "postern/tls/context.hpp"

namespace postern::tls {

namespace {

// SSL_set_tlsext_host_name() is a macro with an old-style cast; this is its
// function form. OpenSSL copies the name.
bool set_sni(SSL* ssl, const std::string& name)
{
    return SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                    const_cast<char*>(name.c_str())) == 1;
}

bool is_ip_literal(const std::string& s)
{
    std::error_code ec;
    (void)asio::ip::make_address(s, ec);
    return !ec;
}

// The bounded wait of shutdown(): a plain (non-coroutine) handler that may run
// after the coroutine moved on, so it only touches this shared state.
struct shutdown_guard {
    net::tcp::socket* sock;
    bool pending = true;
};

} // namespace

stream::stream(net::tcp::socket sock) : sock_(std::move(sock)) {}

stream::~stream() = default;

net::awaitable<std::tuple<std::error_code, std::size_t>> stream::read_some(asio::mutable_buffer b)
{
    switch (state_) {
    case mode::plain: {
        auto [ec, n] = co_await sock_.async_read_some(b, net::use_nothrow);
        co_return std::tuple{ec, n};
    }
    case mode::tls: {
        auto [ec, n] = co_await tls_->async_read_some(b, net::use_nothrow);
        co_return std::tuple{ec, n};
    }
    case mode::handshaking:
    case mode::broken:
        break;
    }
    co_return std::tuple{std::error_code(asio::error::not_connected), std::size_t{0}};
}

net::awaitable<std::error_code> stream::write_all(asio::const_buffer b)
{
    switch (state_) {
    case mode::plain: {
        auto [ec, n] = co_await asio::async_write(sock_, b, net::use_nothrow);
        co_return ec;
    }
    case mode::tls: {
        auto [ec, n] = co_await asio::async_write(*tls_, b, net::use_nothrow);
        co_return ec;
    }
    case mode::handshaking:
    case mode::broken:
        break;
    }
    co_return std::error_code(asio::error::not_connected);
}

net::awaitable<std::error_code> stream::handshake_server(std::shared_ptr<asio::ssl::context> ctx)
{
    if (!ctx)
        co_return std::make_error_code(std::errc::invalid_argument);
    if (state_ != mode::plain)
        co_return std::error_code(asio::error::already_connected);
    ctx_ = std::move(ctx);
    tls_ = std::make_unique<asio::ssl::stream<net::tcp::socket&>>(sock_, *ctx_);
    co_return co_await handshake(asio::ssl::stream_base::server);
}

net::awaitable<std::error_code> stream::handshake_client(std::shared_ptr<asio::ssl::context> ctx, std::string sni,
                                                         bool verify_host)
{
    if (!ctx)
        co_return std::make_error_code(std::errc::invalid_argument);
    if (state_ != mode::plain)
        co_return std::error_code(asio::error::already_connected);
    if (verify_host && sni.empty())
        co_return std::make_error_code(std::errc::invalid_argument);
    ctx_ = std::move(ctx);
    tls_ = std::make_unique<asio::ssl::stream<net::tcp::socket&>>(sock_, *ctx_);
    SSL* ssl = tls_->native_handle();
    // RFC 6066 3: no IP literals in server_name.
    if (!sni.empty() && !is_ip_literal(sni) && !set_sni(ssl, sni)) {
        state_ = mode::broken;
        co_return std::make_error_code(std::errc::invalid_argument);
    }
    if (verify_host) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(ssl, sni.c_str()) != 1) {
            state_ = mode::broken;
            co_return std::make_error_code(std::errc::invalid_argument);
        }
    }
    co_return co_await handshake(asio::ssl::stream_base::client);
}

net::awaitable<std::error_code> stream::handshake(asio::ssl::stream_base::handshake_type type)
{
    state_ = mode::handshaking;
    auto [ec] = co_await tls_->async_handshake(type, net::use_nothrow);
    state_ = ec ? mode::broken : mode::tls;
    co_return ec;
}

net::awaitable<void> stream::shutdown(std::chrono::milliseconds bound)
{
    if (state_ == mode::tls) {
        auto guard = std::make_shared<shutdown_guard>(shutdown_guard{&sock_});
        asio::steady_timer timer(sock_.get_executor());
        timer.expires_after(bound);
        timer.async_wait([guard](std::error_code ec) {
            if (!ec && guard->pending) {
                std::error_code ignored;
                guard->sock->cancel(ignored); // the pending read of close_notify ends
            }
        });
        co_await tls_->async_shutdown(net::use_nothrow);
        guard->pending = false;
        timer.cancel();
        state_ = mode::broken; // no more application data either way
    }
    std::error_code ignored;
    sock_.shutdown(net::tcp::socket::shutdown_both, ignored);
}

std::string stream::tls_description() const
{
    return tls_active() ? describe(tls_->native_handle()) : std::string();
}

bool stream::peer_verified() const
{
    if (!tls_active())
        return false;
    SSL* ssl = tls_->native_handle();
    X509* peer = SSL_get0_peer_certificate(ssl);
    return peer && SSL_get_verify_result(ssl) == X509_V_OK;
}

void stream::cancel()
{
    std::error_code ignored;
    sock_.cancel(ignored);
}

} // namespace postern::tls
