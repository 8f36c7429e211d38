#include "postern/server/metrics_server.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <asio/thread_pool.hpp>

#include "postern/log/log.hpp"
#include "postern/metrics/metrics.hpp"
#include "postern/server/session_io.hpp"

namespace postern::server {

namespace fs = std::filesystem;

struct metrics_server::shared {
    shared(asio::io_context& io_, const config::settings& cfg_) : io(io_), cfg(cfg_) {}
    asio::io_context& io;
    const config::settings& cfg;
    std::optional<net::tcp::acceptor> acceptor;
    asio::thread_pool pool{1}; // last: joined before the rest goes
};

namespace {

constexpr std::size_t max_head = 8192;
constexpr std::chrono::seconds request_timeout{5};

// Blocking: the pool. Committed entries are queue/<xx>/<id> (fs_store); the
// ".env" files beside them are later versions of the same entries.
metrics::queue_state scan_queue(const std::string& spool_dir)
{
    metrics::queue_state q;
    const auto now = fs::file_time_type::clock::now();
    std::optional<fs::file_time_type> oldest;
    std::error_code ec;
    for (fs::directory_iterator shard(fs::path(spool_dir) / "queue", ec), end; !ec && shard != end;
         shard.increment(ec)) {
        std::error_code ec2;
        for (fs::directory_iterator e(shard->path(), ec2); !ec2 && e != end; e.increment(ec2)) {
            const auto name = e->path().filename().string();
            if (name.empty() || name[0] == '.' || name.find('.') != std::string::npos)
                continue;
            ++q.messages;
            std::error_code ec3;
            auto t = fs::last_write_time(e->path(), ec3);
            if (!ec3 && (!oldest || t < *oldest))
                oldest = t;
        }
    }
    if (oldest)
        q.oldest_age_s = std::chrono::duration<double>(now - *oldest).count();
    return q;
}

std::string response(std::string_view status, std::string_view type, std::string_view body, bool head_only)
{
    std::string out = "HTTP/1.1 ";
    out.append(status).append("\r\nContent-Type: ").append(type);
    out.append("\r\nContent-Length: ").append(std::to_string(body.size()));
    out.append("\r\nConnection: close\r\n\r\n");
    if (!head_only)
        out.append(body);
    return out;
}

} // namespace

metrics_server::metrics_server(asio::io_context& io, const config::settings& cfg)
    : st_(std::make_shared<shared>(io, cfg))
{
}

metrics_server::~metrics_server() = default;

void metrics_server::bind()
{
    if (st_->cfg.metrics.spec.empty())
        return;
    st_->acceptor.emplace(bind_listener(st_->io, st_->cfg.metrics, false, "metrics"));
}

void metrics_server::start()
{
    if (!st_->acceptor)
        return;
    auto st = st_;
    asio::co_spawn(st_->io,
                   accept_loop(*st_->acceptor,
                               [st](net::tcp::socket sock) {
                                   asio::co_spawn(st->io, session(st, std::move(sock)), log_spawn_failure);
                               }),
                   log_spawn_failure);
}

void metrics_server::stop()
{
    if (st_->acceptor) {
        std::error_code ec;
        st_->acceptor->close(ec);
    }
}

net::awaitable<void> metrics_server::session(std::shared_ptr<shared> st, net::tcp::socket sock)
{
    std::error_code ec;
    auto c = std::make_shared<connection>(std::move(sock));
    c->stream.socket().non_blocking(true, ec);
    set_deadline(c, request_timeout);
    arm_watchdog(c);
    std::string head;
    while (head.find("\r\n\r\n") == std::string::npos && head.find("\n\n") == std::string::npos) {
        auto bytes = co_await read_some(c);
        if (bytes.empty() || head.size() + bytes.size() > max_head) {
            co_await close(c);
            co_return; // gone, too slow or too long: no answer owed
        }
        head.append(bytes);
    }
    const auto line = std::string_view(head).substr(0, head.find_first_of("\r\n"));
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    const auto method = line.substr(0, sp1);
    const auto target = sp2 == std::string_view::npos ? std::string_view() : line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string out;
    const bool head_only = method == "HEAD";
    if (target != "/metrics") {
        out = response("404 Not Found", "text/plain; charset=utf-8", "not found; try /metrics\n", head_only);
    } else if (method != "GET" && !head_only) {
        out = response("405 Method Not Allowed", "text/plain; charset=utf-8", "GET or HEAD\n", false);
    } else {
        auto job = [spool = st->cfg.spool_dir]() { return scan_queue(spool); };
        auto scanning = offload(st->pool, std::move(job));
        auto q = co_await std::move(scanning);
        out = response("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics::render(q), head_only);
    }
    co_await flush(c, out);
    co_await close(c);
}

} // namespace postern::server
