// net/asio.hpp — the one place that names Asio's version-specific spellings
// (DESIGN toolchain facts: Asio 1.22 keeps as_tuple and the awaitable
// operators under experimental). Include this, never <asio.hpp>.
#pragma once

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <asio/experimental/as_tuple.hpp>

namespace postern::net {

using asio::awaitable;
using asio::ip::tcp;
// Completion token that returns (error_code, values...) instead of throwing.
constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);

} // namespace postern::net
