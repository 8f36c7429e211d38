// delivery/client_io.hpp — the I/O half of driving an smtp::client_session,
// shared by remote_agent (TCP, STARTTLS) and lmtp_agent (unix socket or
// TCP): a watchdog that cancels a stream when its deadline passes, and the
// send / need_reply steps performed under that deadline, and a connect with
// a time limit (TCP or unix socket).
// Stream requirements: cancel(); write_all(asio::const_buffer) →
// awaitable<std::error_code>; read_some(asio::mutable_buffer) →
// awaitable<std::tuple<std::error_code, std::size_t>> (tls::stream has them).
// Thread: the io thread; the stream, the watchdog and the session belong to
// one coroutine frame.
#pragma once

#include <algorithm>
#include <chrono>
#include <system_error>
#include <vector>

#include <asio/buffer.hpp>
#include <asio/experimental/awaitable_operators.hpp>

#include "postern/net/asio.hpp"
#include "postern/smtp/client_session.hpp"

namespace postern::delivery {

// Connects sock to ep, or gives up after limit (errc::timed_out).
template <class Socket>
net::awaitable<std::error_code> connect_within(Socket& sock, typename Socket::endpoint_type ep,
                                               std::chrono::seconds limit)
{
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(sock.get_executor());
    timer.expires_after(limit);
    auto r = co_await (sock.async_connect(ep, net::use_nothrow) || timer.async_wait(net::use_nothrow));
    if (r.index() == 1)
        co_return std::make_error_code(std::errc::timed_out);
    co_return std::get<0>(std::get<0>(r));
}

// Cancels the stream's pending operation when its deadline passes.
template <class Stream>
class watchdog {
public:
    watchdog(Stream& s, const asio::any_io_executor& ex) : s_(s), timer_(ex) {}
    void arm(std::chrono::seconds d)
    {
        fired_ = false;
        timer_.expires_after(d);
        timer_.async_wait([this](std::error_code ec) {
            if (ec)
                return; // cancelled or destroyed: never touch *this then
            fired_ = true;
            s_.cancel();
        });
    }
    void disarm() { timer_.cancel(); }
    bool fired() const { return fired_; }

private:
    Stream& s_;
    asio::steady_timer timer_;
    bool fired_ = false;
};

// Performs what a send or need_reply event asks: writes output() (and clears
// it) or reads into buf and feeds the session, each within the session's
// read_timeout() capped at cap (STYLE 10). A deadline passing is timeout(),
// any error or EOF peer_closed(): the session turns both into 4xx results.
template <class Stream>
net::awaitable<void> client_io(Stream& stream, watchdog<Stream>& dog, smtp::client_session& cs,
                               smtp::client_event ev, std::chrono::seconds cap, std::vector<char>& buf)
{
    dog.arm(std::min(cs.read_timeout(), cap));
    std::error_code ec;
    std::size_t n = 0;
    if (ev == smtp::client_event::send) {
        ec = co_await stream.write_all(asio::buffer(cs.output()));
        cs.output().clear();
    } else {
        std::tie(ec, n) = co_await stream.read_some(asio::buffer(buf));
    }
    dog.disarm();
    if (dog.fired())
        cs.timeout();
    else if (ec)
        cs.peer_closed();
    else if (ev != smtp::client_event::send)
        cs.feed({buf.data(), n});
}

} // namespace postern::delivery
