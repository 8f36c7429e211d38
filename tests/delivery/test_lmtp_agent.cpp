#include "postern/delivery/lmtp_agent.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <asio/local/stream_protocol.hpp>
#include <doctest/doctest.h>

#include "../temp_dir.hpp"
#include <nlohmann/json.hpp>

#include "postern/config/config.hpp"
#include "postern/log/log.hpp"

using namespace postern;
using namespace std::chrono_literals;

namespace {

using postern::testing::temp_dir;

config::settings settings_with(const std::string& lmtp)
{
    auto doc = nlohmann::json::parse(R"({"hostname": "mx.example.test", "local_domains": ["lmtp.test", "other.test"],
                                         "remote": {"connect_timeout_s": 5, "command_timeout_s": 10}})");
    doc["delivery"] = {{"lmtp", lmtp}, {"domains", {"lmtp.test"}}};
    return config::parse(doc.dump(), "test.json");
}

// A scripted LMTP server: after the client's bytes contain each trigger,
// it writes the matching answer; it records everything it was sent.
struct script_step {
    std::string_view trigger; // "" for the greeting
    std::string_view answer;
};

struct fake_server {
    std::vector<script_step> steps;
    std::string received;
};

template <class Socket>
net::awaitable<void> serve_script(Socket sock, std::shared_ptr<fake_server> fs)
{
    std::vector<char> buf(65536);
    std::size_t seen = 0;
    for (const auto& step : fs->steps) {
        while (!step.trigger.empty() && fs->received.find(step.trigger, seen) == std::string::npos) {
            auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), net::use_nothrow);
            if (ec)
                co_return;
            fs->received.append(buf.data(), n);
        }
        if (!step.trigger.empty())
            seen = fs->received.find(step.trigger, seen) + step.trigger.size();
        auto [ec, n] = co_await asio::async_write(sock, asio::buffer(step.answer), net::use_nothrow);
        (void)n;
        if (ec)
            co_return;
    }
}

template <class Acceptor>
net::awaitable<void> accept_one(Acceptor& acceptor, std::shared_ptr<fake_server> fs)
{
    auto [ec, sock] = co_await acceptor.async_accept(net::use_nothrow);
    if (!ec)
        co_await serve_script(std::move(sock), fs);
}

void log_crash(std::exception_ptr e)
{
    log::exception("test_server_crash", e);
}

// Submits one job and runs the loop until its outcome (bounded).
delivery::remote_outcome deliver(asio::io_context& io, const config::settings& cfg, delivery::remote_job job)
{
    std::vector<delivery::remote_outcome> outcomes;
    delivery::lmtp_agent agent(io, cfg, [&](delivery::remote_outcome o) {
        outcomes.push_back(std::move(o));
        io.stop();
    });
    agent.submit(std::move(job));
    io.run_for(20s);
    REQUIRE(outcomes.size() == 1);
    return outcomes[0];
}

delivery::remote_job job_for(std::vector<std::string> rcpts, std::string message)
{
    delivery::remote_job j;
    j.id = "0123456789abcdef";
    j.sender = "sender@remote.test";
    j.recipients = std::move(rcpts);
    j.size = message.size();
    j.body = std::make_shared<const std::string>(std::move(message));
    return j;
}

std::string format(const smtp::rcpt_result& r)
{
    return std::to_string(r.code) + " " + r.enhanced + " " + r.text;
}

const std::vector<script_step> per_recipient_script{
    {"", "220 lmtp.test LMTP ready\r\n"},
    {"\r\n", "250-lmtp.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 CHUNKING\r\n"},
    {"DATA\r\n", "250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 <b@lmtp.test> unknown\r\n250 2.1.5 OK\r\n354 OK\r\n"},
    {"\r\n.\r\n", "250 2.0.0 <a@lmtp.test> Saved\r\n452 4.2.2 <c@lmtp.test> Mailbox is full\r\n"},
    {"QUIT\r\n", "221 2.0.0 Bye\r\n"},
};

} // namespace

TEST_SUITE("delivery") {

TEST_CASE("over a unix socket each recipient gets the LMTP server's own reply")
{
    temp_dir dir;
    const auto path = (dir.path / "lmtp").string();
    const auto cfg = settings_with("unix:" + path);
    asio::io_context io;
    asio::local::stream_protocol::acceptor acceptor(io, asio::local::stream_protocol::endpoint(path));
    auto fs = std::make_shared<fake_server>();
    fs->steps = per_recipient_script;
    asio::co_spawn(io, accept_one(acceptor, fs), log_crash);

    auto o = deliver(io, cfg, job_for({"a@lmtp.test", "b@lmtp.test", "c@lmtp.test"}, ".dot\r\nline\r\n"));
    CHECK(o.id == "0123456789abcdef");
    CHECK(o.relay == "lmtp:unix:" + path);
    CHECK(o.remote_mta.empty()); // no DNS name for a DSN's Remote-MTA
    CHECK(o.final_delivery);     // a success is "delivered" (RFC 3461 5.2.3)
    REQUIRE(o.results.size() == 3);
    CHECK(format(o.results[0]) == "250 2.0.0 <a@lmtp.test> Saved");
    CHECK(format(o.results[1]) == "550 5.1.1 <b@lmtp.test> unknown");
    CHECK(format(o.results[2]) == "452 4.2.2 <c@lmtp.test> Mailbox is full");
    // LHLO, no STARTTLS although offered, DATA (not BDAT) dot-stuffed, no
    // header added by us (the LMTP server writes Return-Path:).
    CHECK(fs->received.starts_with("LHLO mx.example.test\r\nMAIL FROM:<sender@remote.test>\r\n"
                                   "RCPT TO:<a@lmtp.test>\r\nRCPT TO:<b@lmtp.test>\r\nRCPT TO:<c@lmtp.test>\r\n"
                                   "DATA\r\n..dot\r\nline\r\n.\r\n"));
}

TEST_CASE("over TCP host:port the same")
{
    asio::io_context io;
    net::tcp::acceptor acceptor(io, net::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto cfg = settings_with("127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()));
    auto fs = std::make_shared<fake_server>();
    fs->steps = per_recipient_script;
    asio::co_spawn(io, accept_one(acceptor, fs), log_crash);
    auto o = deliver(io, cfg, job_for({"a@lmtp.test", "b@lmtp.test", "c@lmtp.test"}, "x\r\n"));
    REQUIRE(o.results.size() == 3);
    CHECK(o.results[0].code == 250);
    CHECK(o.results[1].code == 550);
    CHECK(o.results[2].code == 452);
}

TEST_CASE("an LMTP server that cannot be reached defers every recipient, 4.4.1")
{
    temp_dir dir;
    SUBCASE("no socket")
    {
        const auto cfg = settings_with("unix:" + (dir.path / "missing").string());
        asio::io_context io;
        auto o = deliver(io, cfg, job_for({"a@lmtp.test", "b@lmtp.test"}, "x\r\n"));
        REQUIRE(o.results.size() == 2);
        for (const auto& r : o.results) {
            CHECK(r.code == 451);
            CHECK(r.enhanced == "4.4.1");
            CHECK(r.text.find("No such file or directory") != std::string::npos);
        }
    }
    SUBCASE("connection refused")
    {
        std::uint16_t port = 0;
        {
            asio::io_context probe;
            net::tcp::acceptor a(probe, net::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
            port = a.local_endpoint().port();
        } // closed: nothing listens there now
        const auto cfg = settings_with("127.0.0.1:" + std::to_string(port));
        asio::io_context io;
        auto o = deliver(io, cfg, job_for({"a@lmtp.test"}, "x\r\n"));
        REQUIRE(o.results.size() == 1);
        CHECK(o.results[0].code == 451);
        CHECK(o.results[0].enhanced == "4.4.1");
    }
}

TEST_CASE("an LMTP server that closes after the first reply: the rest deferred, never lost")
{
    temp_dir dir;
    const auto path = (dir.path / "lmtp").string();
    const auto cfg = settings_with("unix:" + path);
    asio::io_context io;
    asio::local::stream_protocol::acceptor acceptor(io, asio::local::stream_protocol::endpoint(path));
    auto fs = std::make_shared<fake_server>();
    fs->steps = {
        {"", "220 lmtp.test\r\n"},
        {"\r\n", "250 lmtp.test\r\n"},
        {"MAIL", "250 OK\r\n"},
        {"a@lmtp.test>\r\n", "250 OK\r\n"},
        {"c@lmtp.test>\r\n", "250 OK\r\n"},
        {"DATA\r\n", "354 OK\r\n"},
        {"\r\n.\r\n", "250 2.0.0 <a@lmtp.test> Saved\r\n"},
    };
    asio::co_spawn(io, accept_one(acceptor, fs), log_crash);
    auto o = deliver(io, cfg, job_for({"a@lmtp.test", "c@lmtp.test"}, "x\r\n"));
    REQUIRE(o.results.size() == 2);
    CHECK(o.results[0].code == 250);
    CHECK(o.results[1].code == 421);
    CHECK(o.results[1].enhanced == "4.4.2");
}

TEST_CASE("handles() names the LMTP domains only")
{
    asio::io_context io;
    const auto cfg = settings_with("unix:/run/dovecot/lmtp");
    delivery::lmtp_agent agent(io, cfg, [](delivery::remote_outcome) {});
    CHECK(agent.handles("lmtp.test"));
    CHECK_FALSE(agent.handles("other.test"));
    CHECK_FALSE(agent.handles("remote.test"));
    CHECK(agent.relay() == "lmtp:unix:/run/dovecot/lmtp");
}

} // TEST_SUITE
