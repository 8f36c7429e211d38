// server/control_server.hpp — the control socket `postern queue ...` talks to.
// A Unix stream socket at <spool_dir>/control.sock, mode 0600 inside a spool
// directory made 0700 (owner only: the socket gives queue control, and the
// kernel checks the path's permissions at connect). Protocol: the client
// sends one request line (JSON, at most max_request octets, within
// read_timeout), the server answers with one reply line and closes.
// The request goes to the handler (runner::control in the daemon), whose
// reply callback may run on any thread; the reply is posted back to the io
// executor before it is written.
// start() refuses to take over a socket another live server answers on, and
// removes a stale one (left by a crash). stop() closes it and removes the file.
// Thread: the member functions and every session run on the io_context's one
// thread (start()/stop() before io.run() or from its handlers).
// control_request() is the client side, blocking, for the CLI.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <asio/local/stream_protocol.hpp>

#include "postern/net/asio.hpp"
#include "postern/util/result.hpp"

namespace postern::server {

class control_server {
public:
    using reply_fn = std::function<void(std::string reply)>;
    using handler_fn = std::function<void(std::string request, reply_fn reply)>;

    static constexpr std::size_t max_request = 64 * 1024;
    static constexpr std::chrono::seconds default_timeout{10};

    control_server(asio::io_context& io, std::string spool_dir, handler_fn handler,
                   std::chrono::seconds read_timeout = default_timeout);
    ~control_server();
    control_server(const control_server&) = delete;
    control_server& operator=(const control_server&) = delete;

    // Makes the spool directory 0700, binds the socket (0600) and starts
    // accepting. Throws std::system_error naming the path when the socket
    // cannot be created or another server already answers on it.
    void start();
    // Stops accepting and removes the socket file; requests in hand finish.
    void stop();

    const std::string& path() const noexcept { return path_; }
    // <spool_dir>/control.sock
    static std::string socket_path(const std::string& spool_dir);

private:
    struct shared;
    static net::awaitable<void> accept_loop(std::shared_ptr<shared> st);
    static net::awaitable<void> session(std::shared_ptr<shared> st, asio::local::stream_protocol::socket sock);

    std::string spool_dir_;
    std::string path_;
    std::shared_ptr<shared> st_;
    bool bound_ = false;
};

// Client side: connects to the control socket at path, sends request + "\n"
// and returns the reply line (without its "\n"). Blocks up to timeout in all.
// Errors: no_such_file_or_directory / connection_refused when no server
// listens there (the CLI's "not running"), timed_out, message_size (a reply
// over max_reply), or the system's error.
util::result<std::string> control_request(const std::string& path, const std::string& request,
                                          std::chrono::seconds timeout,
                                          std::size_t max_reply = 256 * 1024 * 1024);

} // namespace postern::server
