#include "postern/delivery/remote_agent.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <random>

#include <asio/connect.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/read.hpp>

#include "postern/delivery/client_io.hpp"
#include "postern/dns/mx_plan.hpp"
#include "postern/tls/context.hpp"
#include "postern/tls/stream.hpp"
#include "postern/log/log.hpp"
#include "postern/util/atomic_write.hpp"
#include "postern/util/strings.hpp"

namespace postern::delivery {

using namespace asio::experimental::awaitable_operators;

struct remote_agent::state {
    state(asio::io_context& i, dns::resolver& r, const live::current& l, done_fn d)
        : io(i), resolver(r), live(l), done(std::move(d)) {}
    asio::io_context& io;
    dns::resolver& resolver;
    // The configuration: each worker (one delivery attempt for a domain)
    // takes the generation in force when it starts and keeps it.
    const live::current& live;
    done_fn done;
    std::map<std::string, std::deque<remote_job>> queues; // by destination domain
    std::map<std::string, std::uint32_t> active_per_domain;
    std::uint32_t active = 0;
    bool stopping = false;
    std::mt19937_64 rng{std::random_device{}()};
    // Client TLS contexts, shared by every connection (policy "verify" checks
    // the chain and the host name; "may"/"encrypt" do not, as Postfix).
    std::shared_ptr<asio::ssl::context> tls_plain = std::make_shared<asio::ssl::context>(tls::make_client_context(tls::tls_verify::none));
    std::shared_ptr<asio::ssl::context> tls_verified = std::make_shared<asio::ssl::context>(tls::make_client_context(tls::tls_verify::verify));
    std::string smarthost_password; // read once at start-up from relay.password_file
};

namespace {

using state = remote_agent::state;

// Where a failure comes from: "4.4.1 connect to mx.example[192.0.2.1]: refused"
struct failure {
    int code = 451;
    std::string enhanced = "4.4.0";
    std::string text = "no usable mail exchanger";
};

void finish(state& st, remote_job& job, std::vector<smtp::rcpt_result> results, std::string mta,
            bool peer_dsn = false)
{
    remote_outcome o;
    o.id = job.id;
    o.recipients = std::move(job.recipients);
    o.results = std::move(results);
    o.remote_mta = std::move(mta);
    o.peer_dsn = peer_dsn;
    st.done(std::move(o));
}

void fail_all(state& st, const std::string& domain, const failure& f)
{
    auto& q = st.queues[domain];
    while (!q.empty()) {
        auto job = std::move(q.front());
        q.pop_front();
        std::vector<smtp::rcpt_result> rs(job.recipients.size(), smtp::rcpt_result{f.code, f.enhanced, f.text});
        finish(st, job, std::move(rs), {});
    }
}

// The plan's error starts with its enhanced code ("5.1.10 ...").
failure from_plan(const dns::plan& p)
{
    failure f;
    auto sp = p.error.find(' ');
    f.enhanced = p.error.substr(0, sp);
    f.text = sp == std::string::npos ? p.error : p.error.substr(sp + 1);
    f.code = !f.enhanced.empty() && f.enhanced[0] == '5' ? 550 : 451;
    return f;
}

config::tls_policy policy_for(const config::settings& cfg, const std::string& domain)
{
    if (auto it = cfg.remote.tls_policies.find(domain); it != cfg.remote.tls_policies.end())
        return it->second;
    return cfg.remote.tls;
}

smtp::client_config client_config_for(const state& st, const config::settings& cfg, const std::string& domain)
{
    smtp::client_config c;
    c.helo_name = cfg.hostname;
    if (!cfg.relay.smarthost.empty()) {
        // The smarthost: TLS always (implicit, or STARTTLS required), AUTH
        // when credentials are configured (never in clear: RFC 8314).
        c.implicit_tls = cfg.relay.tls == config::smarthost_tls::implicit;
        c.offer_starttls_allowed = true;
        c.require_tls = true;
        c.auth_username = cfg.relay.username;
        c.auth_password = st.smarthost_password;
        return c;
    }
    auto policy = policy_for(cfg, domain);
    // Postfix's smtp_tls_security_level: none never, may when offered,
    // encrypt/verify or no delivery (the client defers with 4.7.4).
    c.offer_starttls_allowed = policy != config::tls_policy::none;
    c.require_tls = policy == config::tls_policy::encrypt || policy == config::tls_policy::verify;
    return c;
}

// How a connection ended, for the worker's next step.
enum class session_end {
    finished,  // the host answered for the jobs it took (more may follow on a new connection)
    next_host, // unusable before any job: try the next address / MX host
    fail_rest, // a failure no other host would cure (e.g. AUTH refused): defer the queue
};

// Drives one connected session.
asio::awaitable<session_end> run_session(std::shared_ptr<state> st, std::shared_ptr<const live::generation> gen,
                                         std::string domain, std::string host, net::tcp::socket sock, failure& last)
{
    const auto& cfg = gen->cfg;
    const auto ccfg = client_config_for(*st, cfg, domain);
    const bool verify = cfg.relay.smarthost.empty() && policy_for(cfg, domain) == config::tls_policy::verify;
    tls::stream stream(std::move(sock));
    watchdog<tls::stream> dog(stream, stream.socket().get_executor());
    if (ccfg.implicit_tls) { // RFC 8314 3.3: TLS from the first byte
        dog.arm(cfg.remote.connect_timeout);
        auto ec = co_await stream.handshake_client(st->tls_plain, host, false);
        dog.disarm();
        if (ec) {
            last = {451, "4.7.5", host + ": TLS handshake failed: " + ec.message()};
            co_return session_end::next_host;
        }
    }
    smtp::client_session cs(ccfg);
    std::vector<char> buf(16384);
    std::optional<remote_job> current;
    bool used = false;
    std::string mta = host;
    for (;;) {
        const auto ev = cs.next();
        switch (ev) {
        case smtp::client_event::send:
        case smtp::client_event::need_reply:
            co_await client_io(stream, dog, cs, ev, cfg.remote.command_timeout, buf);
            break;
        case smtp::client_event::start_tls: {
            dog.arm(std::min(cs.read_timeout(), cfg.remote.command_timeout));
            auto ec = co_await stream.handshake_client(verify ? st->tls_verified : st->tls_plain, host, verify);
            dog.disarm();
            if (ec)
                log::info("remote_tls").kv("domain", domain).kv("host", host).kv("result", "failed")
                    .kv("error", ec.message());
            else
                mta = host; // the Received/Remote-MTA name stays the host name
            cs.tls_started(!ec);
            break;
        }
        case smtp::client_event::message_done: {
            if (current) {
                used = true;
                log::info("remote_transaction").kv("id", current->id).kv("host", host)
                    .kv("tls", stream.tls_active() ? stream.tls_description() : std::string("none"))
                    .kv("body", cs.chunking_used() ? "BDAT" : "DATA");
                finish(*st, *current, cs.results(), mta, cs.peer().dsn);
                current.reset();
            }
            auto& q = st->queues[domain];
            if (!cs.failure().any && !q.empty() && !st->stopping &&
                cs.messages() < cfg.remote.messages_per_connection) {
                current = std::move(q.front());
                q.pop_front();
                smtp::envelope_out env;
                env.sender = current->sender;
                env.recipients = current->recipients;
                env.smtputf8 = current->smtputf8;
                env.eight_bit = current->eight_bit;
                env.binary = current->binary;
                env.size = current->size;
                env.mail_params = current->mail_params;
                env.rcpt_params = current->rcpt_params;
                cs.add_message(std::move(env), *current->body);
            } else {
                cs.quit();
            }
            break;
        }
        case smtp::client_event::closed: {
            co_await stream.shutdown(std::chrono::seconds(2));
            std::error_code ec;
            stream.socket().close(ec);
            const auto& f = cs.failure();
            if (f.any) {
                // A connection-level failure (greeting, TLS, AUTH, lost peer)
                // says nothing final about the recipients: defer, never bounce.
                last.code = f.code >= 400 && f.code < 500 ? f.code : 451;
                last.enhanced = f.enhanced.empty() ? "4.4.2" : f.enhanced;
                if (last.enhanced[0] == '5')
                    last.enhanced[0] = '4';
                last.text = host + ": " + f.text;
                if (current) { // should not happen: message_done precedes closed
                    std::vector<smtp::rcpt_result> rs(current->recipients.size(),
                                                      smtp::rcpt_result{451, "4.4.2", last.text});
                    finish(*st, *current, std::move(rs), mta);
                    used = true;
                }
                auto line = log::info("remote_session");
                line.kv("domain", domain).kv("host", host).kv("result", "failed").kv("detail", f.text);
                if (current)
                    line.kv("id", current->id);
                if (used)
                    co_return session_end::finished;
                co_return f.try_next_host ? session_end::next_host : session_end::fail_rest;
            }
            co_return session_end::finished;
        }
        }
    }
}

void pump(std::shared_ptr<state> st);

asio::awaitable<void> worker(std::shared_ptr<state> st, std::string domain)
{
    const auto gen = st->live.get(); // this attempt's configuration
    const auto& cfg = gen->cfg;
    // co_spawn dispatches inline on the io thread: yield first, so pump()
    // never sees its maps changed under its loop (a cached DNS answer can
    // otherwise run a worker to its end before co_spawn returns).
    co_await asio::post(st->io, asio::use_awaitable);
    failure last;
    std::vector<std::string> hosts;
    std::uint16_t port = cfg.remote.port;
    if (!cfg.relay.smarthost.empty()) {
        hosts.push_back(cfg.relay.host);
        port = cfg.relay.port;
    } else {
        auto ans = co_await st->resolver.mx(domain);
        auto p = dns::plan_mx(ans, domain, {cfg.hostname}, st->rng());
        if (p.k != dns::plan::kind::hosts) {
            last = from_plan(p);
            log::info("remote_route").kv("domain", domain).kv("result", dns::to_string(p.k))
                .kv("detail", p.error);
            fail_all(*st, domain, last);
        }
        hosts = std::move(p.hosts);
    }
    bool delivered = false, give_up = false;
    for (const auto& host : hosts) {
        if (st->queues[domain].empty() || delivered || give_up)
            break;
        std::vector<asio::ip::address> addrs;
        std::error_code aec;
        auto literal = asio::ip::make_address(host, aec);
        if (!aec) {
            addrs.push_back(literal);
        } else {
            auto a = co_await st->resolver.addresses(host);
            if (a.st != dns::status::ok) {
                last = {451, "4.4.3", host + ": address lookup failed: " + a.error};
                continue;
            }
            addrs = std::move(a.addresses);
        }
        for (std::size_t i = 0; i < addrs.size() && i < 4 && !delivered && !give_up; ++i) {
            if (st->queues[domain].empty())
                break;
            net::tcp::socket sock(st->io);
            auto ec = co_await connect_within(sock, {addrs[i], port}, cfg.remote.connect_timeout);
            if (ec) {
                last = {451, "4.4.1", "connect to " + host + "[" + addrs[i].to_string() + "]:" +
                                          std::to_string(port) + ": " + ec.message()};
                continue;
            }
            switch (co_await run_session(st, gen, domain, host, std::move(sock), last)) {
            case session_end::finished: delivered = true; break;
            case session_end::next_host: break;
            case session_end::fail_rest: give_up = true; break;
            }
        }
    }
    if (!st->queues[domain].empty() && !delivered)
        fail_all(*st, domain, last);
    --st->active;
    if (--st->active_per_domain[domain] == 0) {
        st->active_per_domain.erase(domain);
        if (st->queues[domain].empty())
            st->queues.erase(domain);
    }
    pump(st);
}

void log_worker_failure(std::exception_ptr e)
{
    log::exception("remote_worker_crash", e);
}

void pump(std::shared_ptr<state> st)
{
    if (st->stopping)
        return;
    std::vector<std::string> spawn;
    const auto gen = st->live.get();
    const auto& cfg = gen->cfg;
    for (auto& [domain, q] : st->queues) {
        auto& per = st->active_per_domain[domain];
        // One connection per ten queued jobs (each connection carries several
        // messages: reuse), within both caps; a backlog still gets parallelism.
        const std::size_t wanted = (q.size() + 9) / 10;
        while (!q.empty() && st->active < cfg.remote.concurrency &&
               per < cfg.remote.concurrency_per_domain && per < wanted) {
            ++st->active;
            ++per;
            spawn.push_back(domain);
        }
    }
    for (auto& domain : spawn)
        asio::co_spawn(st->io, worker(st, std::move(domain)), log_worker_failure);
}

void enqueue(std::shared_ptr<state> st, remote_job job)
{
    auto d = job.domain;
    st->queues[d].push_back(std::move(job));
    pump(st);
}

} // namespace

remote_agent::remote_agent(asio::io_context& io, dns::resolver& resolver, const live::current& live,
                           done_fn done)
    : st_(std::make_shared<state>(io, resolver, live, std::move(done)))
{
    const auto gen = live.get();
    const auto& cfg = gen->cfg;
    if (!cfg.relay.password_file.empty()) {
        // Start-up only: a missing or unreadable password file stops the start.
        auto text = util::read_file(cfg.relay.password_file);
        if (!text)
            throw std::system_error(text.error(), "relay.password_file " + cfg.relay.password_file);
        auto line = text->substr(0, text->find('\n'));
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        st_->smarthost_password = std::move(line);
    }
}

void remote_agent::submit(remote_job job)
{
    asio::post(st_->io, [st = st_, j = std::move(job)]() mutable { enqueue(st, std::move(j)); });
}

void remote_agent::stop()
{
    asio::post(st_->io, [st = st_] { st->stopping = true; });
}

} // namespace postern::delivery
