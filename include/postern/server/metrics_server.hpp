// server/metrics_server.hpp — Prometheus metrics over HTTP (config
// "metrics": {"address": "127.0.0.1:9025"}): GET /metrics answers the text
// exposition format (metrics::render) plus the queue's size and oldest
// entry's age, counted from spool_dir/queue on a worker thread.
// Deliberately minimal HTTP/1.x: one request per connection, a request
// head of at most 8 KiB within 5 s, "Connection: close". Anything but
// GET/HEAD /metrics gets 404 or 405. No authentication: bind it to
// loopback or a management network (the README says so).
// Thread: the io_context's; the queue scan on the server's one-thread pool.
#pragma once

#include <memory>

#include "postern/config/config.hpp"
#include "postern/net/asio.hpp"

namespace postern::server {

class metrics_server {
public:
    metrics_server(asio::io_context& io, const config::settings& cfg);
    ~metrics_server();

    // Binds metrics.address (nothing when unset); throws std::system_error
    // naming it when it cannot be bound.
    void bind();
    void start();
    void stop();

private:
    struct shared;
    static net::awaitable<void> session(std::shared_ptr<shared> st, net::tcp::socket sock);
    std::shared_ptr<shared> st_;
};

} // namespace postern::server
