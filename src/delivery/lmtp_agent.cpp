#include "postern/delivery/lmtp_agent.hpp"

#include <deque>
#include <optional>
#include <tuple>
#include <vector>

#include <asio/local/stream_protocol.hpp>

#include "postern/delivery/client_io.hpp"
#include "postern/log/log.hpp"

namespace postern::delivery {

struct lmtp_agent::state {
    state(asio::io_context& i, const config::settings* c, const live::current* l, done_fn d, std::string r)
        : io(i), fixed(c), live(l), done(std::move(d)), relay(std::move(r)) {}
    asio::io_context& io;
    // The settings: fixed, or (live) the generation in force when a
    // connection — one delivery attempt — begins.
    const config::settings* fixed;
    const live::current* live;
    done_fn done;
    std::string relay;
    std::deque<remote_job> queue;
    std::uint32_t active = 0;
    bool stopping = false;
};

namespace {

using state = lmtp_agent::state;
using unix_socket = asio::local::stream_protocol::socket;

struct failure {
    int code = 451;
    std::string enhanced = "4.4.1";
    std::string text = "LMTP server not reached";
};

void finish(state& st, remote_job& job, std::vector<smtp::rcpt_result> results)
{
    remote_outcome o;
    o.id = job.id;
    o.recipients = std::move(job.recipients);
    o.results = std::move(results);
    o.relay = st.relay;
    o.final_delivery = true; // RFC 3461 5.2.3: the LMTP server delivers ("delivered", not "relayed")
    st.done(std::move(o));
}

// Every job waiting: deferred with f (never lost: the runner retries).
void fail_all(state& st, const failure& f)
{
    while (!st.queue.empty()) {
        auto job = std::move(st.queue.front());
        st.queue.pop_front();
        std::vector<smtp::rcpt_result> rs(job.recipients.size(), smtp::rcpt_result{f.code, f.enhanced, f.text});
        finish(st, job, std::move(rs));
    }
}

// A plain socket with the stream interface client_io() drives.
template <class Socket>
class plain_stream {
public:
    explicit plain_stream(Socket s) : sock_(std::move(s)) {}
    Socket& socket() noexcept { return sock_; }
    void cancel()
    {
        std::error_code ec;
        sock_.cancel(ec);
    }
    net::awaitable<std::error_code> write_all(asio::const_buffer b)
    {
        auto [ec, n] = co_await asio::async_write(sock_, b, net::use_nothrow);
        (void)n;
        co_return ec;
    }
    net::awaitable<std::tuple<std::error_code, std::size_t>> read_some(asio::mutable_buffer b)
    {
        co_return co_await sock_.async_read_some(b, net::use_nothrow);
    }

private:
    Socket sock_;
};

smtp::client_config lmtp_client_config(const config::settings& cfg)
{
    smtp::client_config c;
    c.helo_name = cfg.hostname;
    c.lmtp = true;
    c.offer_starttls_allowed = false; // RFC 2033 is local delivery: no TLS, no AUTH
    c.require_tls = false;
    return c;
}

smtp::envelope_out envelope_of(const remote_job& j)
{
    smtp::envelope_out env;
    env.sender = j.sender;
    env.recipients = j.recipients;
    env.smtputf8 = j.smtputf8;
    env.eight_bit = j.eight_bit;
    env.binary = j.binary;
    env.size = j.size;
    return env;
}

// Drives one connected session; returns whether any job was answered on it.
// A failure before that is left in last for the caller to defer the queue.
template <class Socket>
asio::awaitable<bool> run_session(std::shared_ptr<state> st, const config::settings& cfg, Socket sock,
                                  failure& last)
{
    plain_stream<Socket> stream(std::move(sock));
    watchdog<plain_stream<Socket>> dog(stream, stream.socket().get_executor());
    smtp::client_session cs(lmtp_client_config(cfg));
    std::vector<char> buf(16384);
    std::optional<remote_job> current;
    std::uint32_t taken = 0;
    bool used = false;
    for (;;) {
        const auto ev = cs.next();
        switch (ev) {
        case smtp::client_event::send:
        case smtp::client_event::need_reply:
            co_await client_io(stream, dog, cs, ev, cfg.remote.command_timeout, buf);
            break;
        case smtp::client_event::start_tls:
            cs.tls_started(false); // never asked in LMTP mode
            break;
        case smtp::client_event::message_done:
            if (current) {
                used = true;
                finish(*st, *current, cs.results());
                current.reset();
            }
            if (!cs.failure().any && !st->queue.empty() && !st->stopping &&
                taken < cfg.remote.messages_per_connection) {
                current = std::move(st->queue.front());
                st->queue.pop_front();
                ++taken;
                cs.add_message(envelope_of(*current), *current->body);
            } else {
                cs.quit();
            }
            break;
        case smtp::client_event::closed: {
            std::error_code ec;
            stream.socket().shutdown(Socket::shutdown_both, ec);
            stream.socket().close(ec);
            const auto& f = cs.failure();
            if (f.any) {
                last.code = f.code / 100 == 4 ? f.code : 451;
                last.enhanced = f.enhanced.empty() ? "4.4.2" : f.enhanced;
                last.enhanced[0] = '4'; // the connection failed, not the recipients
                last.text = st->relay + ": " + f.text;
                log::info("lmtp_session").kv("relay", st->relay).kv("result", "failed").kv("detail", f.text);
            }
            if (current) { // should not happen: message_done precedes closed
                std::vector<smtp::rcpt_result> rs(current->recipients.size(),
                                                  smtp::rcpt_result{451, "4.4.2", last.text});
                finish(*st, *current, std::move(rs));
                used = true;
            }
            co_return used || !f.any;
        }
        }
    }
}

// One connection to the configured server: the unix socket, or each address
// of host:port in turn. false when none could be reached (last says why).
asio::awaitable<bool> connect_and_run(std::shared_ptr<state> st, failure& last)
{
    const auto gen = st->live != nullptr ? st->live->get() : nullptr; // kept for the attempt
    const auto& cfg = gen ? gen->cfg : *st->fixed;
    const auto& d = cfg.delivery;
    const auto limit = cfg.remote.connect_timeout;
    if (!d.lmtp_socket.empty()) {
        unix_socket sock(st->io);
        auto ec = co_await connect_within(sock, asio::local::stream_protocol::endpoint(d.lmtp_socket), limit);
        if (ec) {
            last = {451, "4.4.1", "connect to " + st->relay + ": " + ec.message()};
            co_return false;
        }
        co_return co_await run_session(st, cfg, std::move(sock), last);
    }
    net::tcp::resolver resolver(st->io);
    auto [rec, endpoints] = co_await resolver.async_resolve(d.lmtp_host, std::to_string(d.lmtp_port),
                                                            net::use_nothrow);
    if (rec) {
        last = {451, "4.4.3", st->relay + ": address lookup failed: " + rec.message()};
        co_return false;
    }
    for (const auto& entry : endpoints) {
        net::tcp::socket sock(st->io);
        auto ec = co_await connect_within(sock, entry.endpoint(), limit);
        if (ec) {
            last = {451, "4.4.1", "connect to " + st->relay + " [" + entry.endpoint().address().to_string() +
                                      "]: " + ec.message()};
            continue;
        }
        co_return co_await run_session(st, cfg, std::move(sock), last);
    }
    co_return false;
}

void pump(std::shared_ptr<state> st);

asio::awaitable<void> worker(std::shared_ptr<state> st)
{
    // Yield first: pump() must not see the queue change under its loop.
    co_await asio::post(st->io, asio::use_awaitable);
    while (!st->queue.empty() && !st->stopping) {
        failure last;
        if (!co_await connect_and_run(st, last)) {
            // Unreachable, or failed before it answered for any job: every
            // waiting job is deferred (the other workers find the queue empty).
            log::info("lmtp_connect").kv("relay", st->relay).kv("result", "failed").kv("detail", last.text);
            fail_all(*st, last);
        }
    }
    --st->active;
    pump(st);
}

void log_worker_failure(std::exception_ptr e)
{
    log::exception("lmtp_worker_crash", e);
}

void pump(std::shared_ptr<state> st)
{
    if (st->stopping)
        return;
    // One connection per ten waiting jobs (each carries several messages),
    // at most max_connections.
    const std::size_t wanted = (st->queue.size() + 9) / 10;
    while (st->active < lmtp_agent::max_connections && st->active < wanted) {
        ++st->active;
        asio::co_spawn(st->io, worker(st), log_worker_failure);
    }
}

void enqueue(std::shared_ptr<state> st, remote_job job)
{
    st->queue.push_back(std::move(job));
    pump(st);
}

} // namespace

lmtp_agent::lmtp_agent(asio::io_context& io, const config::settings& cfg, done_fn done)
    : domains_(cfg.delivery.domains.begin(), cfg.delivery.domains.end()), relay_("lmtp:" + cfg.delivery.lmtp)
{
    st_ = std::make_shared<state>(io, &cfg, nullptr, std::move(done), relay_);
}

lmtp_agent::lmtp_agent(asio::io_context& io, const live::current& live, done_fn done)
    : lmtp_agent(io, live.get()->cfg, std::move(done))
{
    st_->fixed = nullptr;
    st_->live = &live;
}

bool lmtp_agent::handles(std::string_view domain) const
{
    return domains_.find(domain) != domains_.end();
}

void lmtp_agent::submit(remote_job job)
{
    asio::post(st_->io, [st = st_, j = std::move(job)]() mutable { enqueue(st, std::move(j)); });
}

void lmtp_agent::stop()
{
    asio::post(st_->io, [st = st_] { st->stopping = true; });
}

} // namespace postern::delivery
