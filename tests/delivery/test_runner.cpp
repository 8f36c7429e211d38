#include "postern/delivery/runner.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "../temp_dir.hpp"
#include <nlohmann/json.hpp>

#include "postern/config/config.hpp"
#include "postern/delivery/local_agent.hpp"
#include "postern/delivery/maildir.hpp"
#include "postern/mail/envelope.hpp"
#include "postern/queue/fs_store.hpp"
#include "postern/route/table.hpp"
#include "postern/util/clock.hpp"
#include "postern/util/id.hpp"

using namespace postern;
using namespace std::chrono_literals;
using queue::rcpt_state;
namespace fs = std::filesystem;

namespace {

using postern::testing::files_under;
using postern::testing::temp_dir;

constexpr std::string_view hostname = "mx.example.test";
constexpr std::int64_t t0 = 1700000000;
constexpr std::string_view message = "Subject: hi\r\n\r\nbody\r\n";

config::settings settings_for(const fs::path& root)
{
    auto doc = nlohmann::json::parse(R"({
      "hostname": "mx.example.test",
      "local_domains": ["example.test"],
      "users": [ {"address": "alice@example.test"}, {"address": "bob@example.test"} ],
      "aliases": { "team@example.test": ["alice@example.test", "bob@example.test"] }
    })");
    doc["spool_dir"] = (root / "spool").string();
    doc["mail_root"] = (root / "mail").string();
    return config::parse(doc.dump(), "test.json");
}

// Polls cond until it holds or 5 s have passed (a wait-for, never an
// assertion on timing).
bool eventually(const std::function<bool()>& cond)
{
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    for (;;) {
        if (cond())
            return true;
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(10ms);
    }
}

struct fixture {
    temp_dir dir;
    config::settings settings = settings_for(dir.path);
    route::table routes{settings};
    util::manual_clock clock{util::from_unix_seconds(t0)};
    queue::fs_store store{settings.spool_dir};
    delivery::local_agent agent{settings.mail_root, std::string(hostname), routes, scheduler::retry_policy{}};
    delivery::runner run{store, agent, clock, scheduler::retry_policy{}};

    fixture() { store.open(); }

    std::string commit(std::string id, std::vector<std::string> rcpts,
                       rcpt_state state = rcpt_state::pending)
    {
        queue::new_message m;
        m.meta.id = id;
        m.meta.sender = "sender@remote.test";
        m.meta.received_at = t0 - 10;
        m.meta.size = message.size();
        for (auto& r : rcpts)
            m.meta.recipients.push_back({std::move(r), state, 0, 0, "", 0, ""});
        m.parts = {std::string(message)};
        std::vector<queue::new_message> batch{std::move(m)};
        auto r = store.commit(batch);
        REQUIRE(r.size() == 1);
        REQUIRE(r[0]);
        return id;
    }

    // An entry whose recipients carry DSN parameters (RFC 3461).
    std::string commit_dsn(std::string id, std::vector<queue::recipient> rcpts, std::uint8_t ret = 0,
                           std::string envid = {})
    {
        queue::new_message m;
        m.meta.id = id;
        m.meta.sender = "sender@remote.test";
        m.meta.received_at = t0 - 10;
        m.meta.size = message.size();
        m.meta.ret = ret;
        m.meta.envid = std::move(envid);
        m.meta.recipients = std::move(rcpts);
        m.parts = {std::string(message)};
        std::vector<queue::new_message> batch{std::move(m)};
        auto r = store.commit(batch);
        REQUIRE(r.size() == 1);
        REQUIRE(r[0]);
        return id;
    }

    // The reports queued to the sender (entries from <>), as message texts.
    std::vector<std::string> reports()
    {
        std::vector<std::string> out;
        auto ids = store.list();
        REQUIRE(ids);
        for (const auto& i : *ids) {
            auto e = store.load_full(i);
            if (!e)
                continue; // removed by the runner since list()
            if (e->meta.sender.empty())
                out.push_back(e->message);
        }
        return out;
    }

    fs::path delivered_file(std::string_view mailbox, std::string_view id) const
    {
        return fs::path(settings.mail_root) / "example.test" / mailbox / "new" /
               delivery::maildir_name(t0 - 10, id, hostname);
    }

    bool queue_empty()
    {
        auto ids = store.list();
        return ids && ids->empty();
    }

    // stop() must return; bounded so a hang fails the test instead of the run.
    void stop_within_bound()
    {
        auto done = std::async(std::launch::async, [this] { run.stop(); });
        CHECK(done.wait_for(5s) == std::future_status::ready);
    }
};

std::string contents(const fs::path& p)
{
    std::ifstream f(p, std::ios::binary);
    REQUIRE_MESSAGE(f, "cannot open " << p.string());
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

} // namespace

TEST_SUITE("delivery") {

TEST_CASE("entries queued before start() are delivered and removed from the store")
{
    fixture f;
    auto a = f.commit("0000000000000a01", {"alice@example.test"});
    auto b = f.commit("0000000000000b02", {"team@example.test", "bob@example.test"});
    auto finished = f.commit("0000000000000c03", {"alice@example.test"}, rcpt_state::done);
    f.run.start();
    REQUIRE(eventually([&] { return f.queue_empty(); }));
    f.stop_within_bound();
    CHECK(contents(f.delivered_file("alice", a)) ==
          "Return-Path: <sender@remote.test>\r\nDelivered-To: alice@example.test\r\n" + std::string(message));
    CHECK(fs::exists(f.delivered_file("alice", b)));
    CHECK(fs::exists(f.delivered_file("bob", b)));
    // An entry already final (its removal was cut off) is removed, not delivered again.
    CHECK_FALSE(fs::exists(f.delivered_file("alice", finished)));
    CHECK(files_under(f.settings.mail_root) == 3);
}

TEST_CASE("an entry recovered at start-up whose file is already in cur/ is not delivered twice")
{
    fixture f;
    auto id = f.commit("0000000000000a01", {"alice@example.test"});
    const auto box = fs::path(f.settings.mail_root) / "example.test" / "alice";
    for (const char* sub : {"tmp", "new", "cur"})
        fs::create_directories(box / sub);
    const auto seen = box / "cur" / (delivery::maildir_name(t0 - 10, id, hostname) + ":2,S");
    {
        std::ofstream out(seen, std::ios::binary);
        out << "read already";
    }
    f.run.start();
    REQUIRE(eventually([&] { return f.queue_empty(); }));
    f.stop_within_bound();
    CHECK(files_under(f.settings.mail_root) == 1);
    CHECK(contents(seen) == "read already");
}

TEST_CASE("notify() of newly committed ids delivers them")
{
    fixture f;
    f.run.start();
    auto a = f.commit("0000000000000a01", {"alice@example.test"});
    auto b = f.commit("0000000000000b02", {"bob@example.test"});
    f.run.notify({a, b});
    REQUIRE(eventually([&] { return f.queue_empty(); }));
    CHECK(fs::exists(f.delivered_file("alice", a)));
    CHECK(fs::exists(f.delivered_file("bob", b)));
    SUBCASE("and later notifications too")
    {
        auto c = f.commit("0000000000000c03", {"alice@example.test"});
        f.run.notify({c});
        REQUIRE(eventually([&] { return f.queue_empty(); }));
        CHECK(fs::exists(f.delivered_file("alice", c)));
    }
    f.stop_within_bound();
}

TEST_CASE("an entry with a remote recipient stays queued with its attempts counted")
{
    fixture f;
    const std::string id = "0000000000000a01";
    SUBCASE("found at start-up")
    {
        f.commit(id, {"alice@example.test", "someone@remote.test"});
        f.run.start();
    }
    SUBCASE("committed later and notified")
    {
        f.run.start();
        f.commit(id, {"alice@example.test", "someone@remote.test"});
        f.run.notify({id});
    }
    auto attempted = [&] {
        auto e = f.store.load(id);
        return e && e->recipients.size() == 2 && e->recipients[1].attempts > 0;
    };
    REQUIRE(eventually(attempted));
    f.stop_within_bound();
    auto e = f.store.load(id);
    REQUIRE(e);
    CHECK(e->recipients[0].state == rcpt_state::done);
    CHECK(e->recipients[1].state == rcpt_state::pending);
    CHECK(e->recipients[1].attempts == 1);
    CHECK(e->recipients[1].next_attempt == t0 + 300);
    CHECK(e->recipients[1].last_error.find("4.4.0") != std::string::npos);
    auto ids = f.store.list();
    REQUIRE(ids);
    CHECK(*ids == std::vector<std::string>{id});
    CHECK(fs::exists(f.delivered_file("alice", id)));
    CHECK(files_under(f.settings.mail_root) == 1);
}

TEST_CASE("after a restart past its next attempt, a deferred remote recipient is counted again")
{
    fixture f;
    auto id = f.commit("0000000000000a01", {"alice@example.test", "someone@remote.test"});
    f.run.start();
    REQUIRE(eventually([&] {
        auto e = f.store.load(id);
        return e && e->recipients[1].attempts == 1;
    }));
    f.stop_within_bound();
    // The runner thread has been joined: the clock is the test's again.
    f.clock.advance(300s);
    delivery::runner restarted(f.store, f.agent, f.clock, scheduler::retry_policy{});
    restarted.start();
    REQUIRE(eventually([&] {
        auto e = f.store.load(id);
        return e && e->recipients[1].attempts == 2;
    }));
    restarted.stop();
    auto e = f.store.load(id);
    REQUIRE(e);
    CHECK(e->recipients[1].attempts == 2);
    CHECK(e->recipients[1].next_attempt == t0 + 300 + 600);
    CHECK(e->recipients[0].state == rcpt_state::done);
    CHECK(files_under(f.settings.mail_root) == 1); // alice was not written again
}

TEST_CASE("a corrupt entry found at start-up is quarantined and the others are still delivered")
{
    fixture f;
    auto bad = f.commit("0000000000000a01", {"alice@example.test"});
    auto good = f.commit("0000000000000b02", {"bob@example.test"});
    const auto bucket = fs::path(f.settings.spool_dir) / "queue" / "01";
    {
        std::ofstream out(bucket / (bad + ".env"), std::ios::binary | std::ios::trunc);
        out << "{ not json";
    }
    f.run.start();
    REQUIRE(eventually([&] { return f.queue_empty(); }));
    f.stop_within_bound();
    CHECK(fs::exists(f.delivered_file("bob", good)));
    CHECK_FALSE(fs::exists(f.delivered_file("alice", bad)));
    CHECK(fs::is_regular_file(fs::path(f.settings.spool_dir) / "corrupt" / bad));
}

TEST_CASE("NOTIFY decides which reports the sender gets (RFC 3461 4.1)")
{
    fixture f;
    auto rcpt = [](std::string a, std::uint8_t notify, std::string orcpt = {}) {
        queue::recipient r;
        r.address = std::move(a);
        r.notify = notify;
        r.orcpt = std::move(orcpt);
        return r;
    };
    SUBCASE("SUCCESS on a local delivery: a 'delivered' report with ORCPT and ENVID")
    {
        f.commit_dsn("0000000000000d01", {rcpt("alice@example.test", mail::notify::success | mail::notify::failure,
                                               "rfc822;Alice@Example.test")},
                     0, "ENV-42");
        f.run.start();
        REQUIRE(eventually([&] { return f.reports().size() == 1; }));
        f.stop_within_bound();
        auto r = f.reports().at(0);
        CHECK(r.find("Action: delivered") != std::string::npos);
        CHECK(r.find("Status: 2.0.0") != std::string::npos);
        CHECK(r.find("Original-Recipient: rfc822; Alice@Example.test") != std::string::npos);
        CHECK(r.find("Original-Envelope-Id: ENV-42") != std::string::npos);
        CHECK(r.find("text/rfc822-headers") != std::string::npos); // success notices carry headers only
        CHECK(fs::exists(f.delivered_file("alice", "0000000000000d01")));
    }
    SUBCASE("no NOTIFY: a local delivery sends no report")
    {
        f.commit_dsn("0000000000000d02", {rcpt("alice@example.test", 0)});
        f.run.start();
        REQUIRE(eventually([&] { return f.queue_empty(); }));
        f.stop_within_bound();
        CHECK(f.reports().empty());
    }
    SUBCASE("NEVER: a failed recipient gets no report")
    {
        f.commit_dsn("0000000000000d03", {rcpt("nobody@example.test", mail::notify::never)});
        f.run.start();
        REQUIRE(eventually([&] { return f.queue_empty(); }));
        f.stop_within_bound();
        CHECK(f.reports().empty());
    }
    SUBCASE("FAILURE with RET=FULL: the whole message comes back")
    {
        f.commit_dsn("0000000000000d04", {rcpt("nobody@example.test", mail::notify::failure)},
                     static_cast<std::uint8_t>(mail::dsn_ret::full));
        f.run.start();
        REQUIRE(eventually([&] { return f.reports().size() == 1; }));
        f.stop_within_bound();
        auto r = f.reports().at(0);
        CHECK(r.find("Action: failed") != std::string::npos);
        CHECK(r.find("Content-Type: message/rfc822") != std::string::npos);
        CHECK(r.find("body\r\n") != std::string::npos);
    }
    SUBCASE("SUCCESS only: a failure sends nothing, a success of the other recipient reports it alone")
    {
        f.commit_dsn("0000000000000d05", {rcpt("nobody@example.test", mail::notify::success),
                                          rcpt("bob@example.test", mail::notify::success)});
        f.run.start();
        REQUIRE(eventually([&] { return f.reports().size() == 1; }));
        f.stop_within_bound();
        auto r = f.reports().at(0);
        CHECK(r.find("Final-Recipient: rfc822; bob@example.test") != std::string::npos);
        CHECK(r.find("nobody@example.test") == std::string::npos);
    }
}

TEST_CASE("a delay notice goes only to recipients that asked for DELAY or gave no NOTIFY (RFC 3461 4.1)")
{
    fixture f;
    delivery::runner_options opt;
    opt.delay_warning = std::chrono::seconds(5); // the entry is 10 s old
    opt.hostname = std::string(hostname);
    delivery::runner run{f.store, f.agent, f.clock, opt}; // no remote agent: remote recipients wait
    auto rcpt = [](std::string a, std::uint8_t notify) {
        queue::recipient r;
        r.address = std::move(a);
        r.notify = notify;
        return r;
    };
    f.commit_dsn("0000000000000e01", {rcpt("a@remote.test", mail::notify::delay),
                                      rcpt("b@remote.test", 0),
                                      rcpt("c@remote.test", mail::notify::failure),
                                      rcpt("d@remote.test", mail::notify::never)});
    run.start();
    REQUIRE(eventually([&] { return f.reports().size() == 1; }));
    auto done = std::async(std::launch::async, [&run] { run.stop(); });
    REQUIRE(done.wait_for(5s) == std::future_status::ready);
    auto r = f.reports().at(0);
    CHECK(r.find("Action: delayed") != std::string::npos);
    CHECK(r.find("Final-Recipient: rfc822; a@remote.test") != std::string::npos);
    CHECK(r.find("Final-Recipient: rfc822; b@remote.test") != std::string::npos);
    CHECK(r.find("c@remote.test") == std::string::npos);
    CHECK(r.find("d@remote.test") == std::string::npos);
}

TEST_CASE("stop() returns whether or not the runner was started")
{
    fixture f;
    SUBCASE("never started") {}
    SUBCASE("started with nothing to do") { f.run.start(); }
    f.stop_within_bound();
    f.stop_within_bound(); // twice is harmless
}

}
