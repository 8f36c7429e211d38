#include "postern/server/control_server.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/read_until.hpp>
#include <nlohmann/json.hpp>

#include "postern/log/log.hpp"

namespace postern::server {

using stream = asio::local::stream_protocol;
using steady = std::chrono::steady_clock;

struct control_server::shared {
    asio::io_context& io;
    handler_fn handler;
    std::chrono::seconds read_timeout;
    stream::acceptor acceptor;
};

namespace {

// One connection and its deadline timer, shared with the timer's handler
// (Asio's lifetime model: the handler may run after the session ends).
struct connection {
    explicit connection(stream::socket s) : sock(std::move(s)), timer(sock.get_executor()) {}
    stream::socket sock;
    asio::steady_timer timer;
    bool timed_out = false;
};

// Closes the socket's pending operation when the deadline passes.
void arm_deadline(const std::shared_ptr<connection>& c, std::chrono::seconds in)
{
    c->timer.expires_after(in);
    c->timer.async_wait([c](std::error_code ec) {
        if (ec)
            return; // cancelled: the read or write finished in time
        c->timed_out = true;
        std::error_code ignored;
        c->sock.cancel(ignored);
    });
}

// Hands the request to the handler and completes on the session's executor
// with the reply; the handler's reply callback may run on any thread. A
// second call of the callback is ignored.
template <class Token>
auto async_ask(const control_server::handler_fn& handler, std::string request, Token&& token)
{
    return asio::async_initiate<Token, void(std::string)>(
        [&handler](auto h, std::string req) {
            auto ex = asio::get_associated_executor(h);
            auto hp = std::make_shared<std::optional<decltype(h)>>(std::move(h));
            handler(std::move(req), [hp, ex](std::string reply) {
                asio::post(ex, [hp, r = std::move(reply)]() mutable {
                    if (!*hp)
                        return;
                    auto once = std::move(**hp);
                    hp->reset();
                    once(std::move(r));
                });
            });
        },
        token, std::move(request));
}

// The request's verb and id for the log line (bounded: the request is the
// client's text, not ours).
std::pair<std::string, std::string> describe_request(const std::string& request)
{
    auto j = nlohmann::json::parse(request, nullptr, false);
    auto field = [&j](const char* key) {
        if (!j.is_object() || !j.contains(key) || !j[key].is_string())
            return std::string();
        auto v = j[key].get<std::string>();
        return v.size() > 32 ? v.substr(0, 32) + "..." : v;
    };
    return {field("cmd"), field("id")};
}

// "" when the reply says ok, else its error text.
std::string reply_error(const std::string& reply)
{
    auto j = nlohmann::json::parse(reply, nullptr, false);
    if (!j.is_object())
        return "malformed reply";
    if (j.contains("ok") && j["ok"].is_boolean() && j["ok"].get<bool>())
        return {};
    if (j.contains("error") && j["error"].is_string())
        return j["error"].get<std::string>();
    return "failed";
}

void log_spawn_failure(std::exception_ptr e)
{
    log::exception("control_crash", e);
}

std::system_error path_error(std::error_code ec, const std::string& path, const std::string& what)
{
    return std::system_error(ec, "control socket " + path + (what.empty() ? "" : ": " + what));
}

std::error_code last_error()
{
    return {errno, std::system_category()};
}

} // namespace

control_server::control_server(asio::io_context& io, std::string spool_dir, handler_fn handler,
                               std::chrono::seconds read_timeout)
    : spool_dir_(std::move(spool_dir)),
      path_(socket_path(spool_dir_)),
      st_(std::make_shared<shared>(shared{io, std::move(handler), read_timeout, stream::acceptor(io)}))
{
}

control_server::~control_server()
{
    stop();
}

std::string control_server::socket_path(const std::string& spool_dir)
{
    if (!spool_dir.empty() && spool_dir.back() == '/')
        return spool_dir + "control.sock";
    return spool_dir + "/control.sock";
}

void control_server::start()
{
    if (path_.size() >= sizeof(sockaddr_un{}.sun_path))
        throw path_error(std::make_error_code(std::errc::filename_too_long), path_,
                         "path longer than " + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " octets");
    // 0711: local users may pass through to pickup/ (`postern sendmail`,
    // server/pickup_service.hpp) but not list the spool; everything else in
    // it is the server's own (0700 directories, 0600 files).
    std::error_code ec;
    std::filesystem::create_directories(spool_dir_, ec);
    if (::chmod(spool_dir_.c_str(), 0711) != 0)
        throw std::system_error(last_error(), "spool directory " + spool_dir_);

    const stream::endpoint ep(path_);
    struct stat sb {};
    if (::lstat(path_.c_str(), &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode))
            throw path_error(std::make_error_code(std::errc::file_exists), path_, "exists and is not a socket");
        stream::socket probe(st_->io);
        probe.connect(ep, ec);
        if (!ec)
            throw path_error(std::make_error_code(std::errc::address_in_use), path_,
                             "another server is running on this spool");
        log::warn("control_stale").kv("path", path_).kv("probe", ec.message());
        if (::unlink(path_.c_str()) != 0 && errno != ENOENT)
            throw path_error(last_error(), path_, "removing the stale socket");
    }

    auto& acc = st_->acceptor;
    acc.open(ep.protocol(), ec);
    // The socket is born owner-only (umask), not just chmod-ed after bind:
    // the spool is passable by others, so no moment of a wider mode.
    const mode_t old_mask = ::umask(0177);
    if (!ec)
        acc.bind(ep, ec);
    ::umask(old_mask);
    if (ec)
        throw path_error(ec, path_, "");
    bound_ = true;
    if (::chmod(path_.c_str(), 0600) != 0) {
        auto err = last_error();
        stop();
        throw path_error(err, path_, "chmod 0600");
    }
    acc.listen(64, ec);
    if (ec) {
        stop();
        throw path_error(ec, path_, "listen");
    }
    log::info("listen").kv("address", path_).kv("mode", "control");
    asio::co_spawn(st_->io, accept_loop(st_), log_spawn_failure);
}

void control_server::stop()
{
    std::error_code ec;
    st_->acceptor.close(ec);
    if (bound_) {
        bound_ = false;
        ::unlink(path_.c_str());
    }
}

net::awaitable<void> control_server::accept_loop(std::shared_ptr<shared> st)
{
    asio::steady_timer pause(st->io);
    for (;;) {
        auto [ec, sock] = co_await st->acceptor.async_accept(net::use_nothrow);
        if (ec == asio::error::operation_aborted || !st->acceptor.is_open())
            co_return;
        if (ec) {
            log::warn("accept").kv("mode", "control").kv("error", ec.message());
            pause.expires_after(std::chrono::milliseconds(100));
            co_await pause.async_wait(net::use_nothrow);
            continue;
        }
        asio::co_spawn(st->io, session(st, std::move(sock)), log_spawn_failure);
    }
}

net::awaitable<void> control_server::session(std::shared_ptr<shared> st, stream::socket sock)
{
    auto c = std::make_shared<connection>(std::move(sock));
    const auto started = steady::now();
    std::string line;
    arm_deadline(c, st->read_timeout);
    auto [rec, n] = co_await asio::async_read_until(c->sock, asio::dynamic_buffer(line, max_request), '\n',
                                                    net::use_nothrow);
    c->timer.cancel();
    if (rec) {
        const char* why = c->timed_out                    ? "read timeout"
                          : rec == asio::error::not_found ? "request too long"
                          : rec == asio::error::eof       ? "no request"
                                                          : "read error";
        log::warn("control").kv("result", "error").kv("error", why);
        std::error_code ec;
        c->sock.close(ec);
        co_return;
    }
    line.resize(n - 1); // drop the '\n' and anything after it
    if (!line.empty() && line.back() == '\r')
        line.pop_back();
    auto [cmd, id] = describe_request(line);

    std::string reply = co_await async_ask(st->handler, std::move(line), asio::use_awaitable);
    const auto error = reply_error(reply);
    reply += '\n';
    arm_deadline(c, st->read_timeout);
    auto [wec, written] = co_await asio::async_write(c->sock, asio::buffer(reply), net::use_nothrow);
    (void)written;
    c->timer.cancel();
    std::error_code ec;
    c->sock.shutdown(stream::socket::shutdown_both, ec);
    c->sock.close(ec);

    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - started).count();
    auto l = error.empty() ? log::info("control") : log::warn("control");
    l.kv("cmd", cmd.empty() ? std::string("-") : cmd).kv("id", id.empty() ? std::string("-") : id)
        .kv("result", error.empty() ? "ok" : "error");
    if (!error.empty())
        l.kv("error", error);
    if (wec)
        l.kv("write_error", wec.message());
    l.kv("ms", static_cast<std::int64_t>(ms));
}

util::result<std::string> control_request(const std::string& path, const std::string& request,
                                          std::chrono::seconds timeout, std::size_t max_reply)
{
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path)
        return std::errc::filename_too_long;
    std::memcpy(sa.sun_path, path.data(), path.size());

    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return last_error();
    struct closer {
        int fd;
        ~closer() { ::close(fd); }
    } guard{fd};
    const auto deadline = steady::now() + timeout;
    // connect() and send() of a Unix socket honour SO_SNDTIMEO (a full backlog).
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count());
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
        return errno == EAGAIN || errno == EINPROGRESS ? std::make_error_code(std::errc::timed_out) : last_error();

    const std::string out = request + "\n";
    for (std::size_t sent = 0; sent < out.size();) {
        auto k = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? std::make_error_code(std::errc::timed_out) : last_error();
        }
        sent += static_cast<std::size_t>(k);
    }

    std::string in;
    char buf[65536];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
        if (left.count() <= 0)
            return std::errc::timed_out;
        pollfd p{fd, POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return last_error();
        }
        if (r == 0)
            continue; // the deadline check above ends it
        const auto k = ::recv(fd, buf, sizeof buf, 0);
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return last_error();
        }
        if (k == 0)
            return std::errc::connection_reset; // closed without a whole reply line
        in.append(buf, static_cast<std::size_t>(k));
        if (auto nl = in.find('\n'); nl != std::string::npos) {
            in.resize(nl);
            return in;
        }
        if (in.size() > max_reply)
            return std::errc::message_size;
    }
}

} // namespace postern::server
