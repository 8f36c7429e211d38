// tls/stream.hpp — a TCP byte stream that starts in plain text and can switch
// to TLS in place (STARTTLS, RFC 3207, on both the server and the client side).
//
// Invariants:
//  - The stream keeps no plaintext read buffer: read_some() fills only the
//    caller's buffer. Plain bytes the caller read before the handshake are the
//    protocol layer's to discard (RFC 3207 4.2, CVE-2011-0411); plain bytes
//    still in the socket become the handshake's input and make it fail.
//  - One handshake per stream. After a failed handshake the stream is broken:
//    reads and writes fail (asio::error::not_connected) and it never falls back
//    to plain text; the caller closes the connection.
//  - Not movable: the TLS layer refers to the socket member. Keep it in a
//    coroutine frame or behind a unique_ptr/shared_ptr.
// Ownership: owns the socket; shares the SSL context with whoever supplied it.
// Thread: the event loop only; at most one read and one write pending at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <system_error>
#include <tuple>

#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>

#include "postern/net/asio.hpp"

namespace postern::tls {

class stream {
public:
    explicit stream(net::tcp::socket sock);
    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;
    ~stream();

    net::tcp::socket& socket() noexcept { return sock_; } // the lowest layer
    bool tls_active() const noexcept { return state_ == mode::tls; }

    // Reads some bytes (plain or TLS). EOF is asio::error::eof; a TLS peer that
    // closes without close_notify reports asio::ssl::error::stream_truncated.
    net::awaitable<std::tuple<std::error_code, std::size_t>> read_some(asio::mutable_buffer b);
    // Writes every byte of b, or fails.
    net::awaitable<std::error_code> write_all(asio::const_buffer b);

    // Switches to TLS as the server. ctx is kept for the stream's lifetime.
    net::awaitable<std::error_code> handshake_server(std::shared_ptr<asio::ssl::context> ctx);
    // Switches to TLS as the client. sni is the server's host name (sent as SNI
    // unless empty or an IP literal). With verify_host the certificate must name
    // sni (the context decides whether the chain is verified at all:
    // make_client_context(tls_verify::verify)); an empty sni then fails.
    net::awaitable<std::error_code> handshake_client(std::shared_ptr<asio::ssl::context> ctx, std::string sni,
                                                     bool verify_host);

    // Sends close_notify if TLS is active and waits up to bound for the peer's
    // (errors ignored), then shuts the TCP connection down. Does not close the socket.
    net::awaitable<void> shutdown(std::chrono::milliseconds bound = std::chrono::seconds(2));

    // describe() of the connection; empty while plain.
    std::string tls_description() const;
    // True when TLS is active and the peer's certificate verified (chain and,
    // if asked, host name). False under tls_verify::none unless it happened to verify.
    bool peer_verified() const;

    // Cancels pending operations: they complete with operation_aborted.
    // Watchdogs call it; the stream is then only good for closing.
    void cancel();

private:
    enum class mode { plain, handshaking, tls, broken };
    net::awaitable<std::error_code> handshake(asio::ssl::stream_base::handshake_type type);

    net::tcp::socket sock_;
    std::shared_ptr<asio::ssl::context> ctx_;
    std::unique_ptr<asio::ssl::stream<net::tcp::socket&>> tls_;
    mode state_ = mode::plain;
};

} // namespace postern::tls
