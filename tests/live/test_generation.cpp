#include "postern/live/generation.hpp"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "postern/auth/password.hpp"
#include "postern/config/config.hpp"

using namespace postern;

namespace {

config::settings parse(const std::string& users)
{
    return config::parse(R"({
  "hostname": "mx.example.test",
  "spool_dir": "/nonexistent/spool",
  "mail_root": "/nonexistent/mail",
  "listeners": [{"address": "127.0.0.1:2525", "mode": "smtp", "tls": "none"}],
  "local_domains": ["example.test"],
  "relay_networks": ["192.0.2.0/24"],
  "users": )" + users + "}",
                         "test.json");
}

} // namespace

TEST_SUITE("live")
{
TEST_CASE("a generation builds the routes, credentials, senders and relay networks of its settings")
{
    const auto hash = auth::hash_password("secret");
    live::generation g(parse(R"([{"address": "alice@example.test", "password": ")" + hash +
                             R"(", "addresses": ["Sales@example.test"]}, {"address": "bob@example.test"}])"),
                       7);
    CHECK(g.number == 7);
    CHECK(g.tls == nullptr);
    CHECK(g.routes.is_local_domain("example.test"));
    REQUIRE(g.credentials != nullptr);
    REQUIRE(g.senders.count("alice@example.test") == 1);
    CHECK(g.senders.at("alice@example.test").count("sales@example.test") == 1);
    CHECK(g.senders.count("bob@example.test") == 0); // no password: no login
    REQUIRE(g.relay_networks.size() == 1);
    CHECK(g.relay_networks[0].contains("192.0.2.9"));

    SUBCASE("without users with a password there are no credentials")
    {
        live::generation none(parse(R"([{"address": "bob@example.test"}])"));
        CHECK(none.credentials == nullptr);
        CHECK(none.senders.empty());
    }
}

TEST_CASE("restart_only keeps the running values of what cannot change live and names them")
{
    const auto running = parse("[]");
    SUBCASE("nothing of the kind changed")
    {
        auto next = parse(R"([{"address": "new@example.test"}])");
        next.lim.message_size = 1000;
        CHECK(live::restart_only(running, next).empty());
        CHECK(next.users.size() == 1); // live settings are left as they are
        CHECK(next.lim.message_size == 1000);
    }
    SUBCASE("spool, mail root, account, resolver, metrics, LMTP server, relay password file")
    {
        auto next = running;
        next.spool_dir = "/elsewhere/spool";
        next.mail_root = "/elsewhere/mail";
        next.run_as_user = "mail";
        next.dns.servers = {"192.0.2.53"};
        next.metrics.spec = "127.0.0.1:9025";
        next.relay.password_file = "/etc/pw";
        next.delivery.lmtp = "unix:/run/lmtp";
        next.delivery.lmtp_socket = "/run/lmtp";
        next.delivery.domains = {"example.test"};
        const auto names = live::restart_only(running, next);
        CHECK(names == std::vector<std::string>{"spool_dir", "mail_root", "dns", "relay.password_file",
                                                "delivery.lmtp", "user", "metrics"});
        CHECK(next.spool_dir == running.spool_dir);
        CHECK(next.mail_root == running.mail_root);
        CHECK(next.run_as_user.empty());
        CHECK(next.dns.servers.empty());
        CHECK(next.metrics.spec == running.metrics.spec);
        CHECK(next.relay.password_file.empty());
        CHECK(next.delivery.lmtp.empty());
        CHECK(next.delivery.lmtp_socket.empty());
        CHECK(next.delivery.domains.empty()); // they go with the server
    }
}

TEST_CASE("current hands out the generation last set, also across threads")
{
    live::current cur(std::make_shared<const live::generation>(parse("[]"), 1));
    CHECK(cur.get()->number == 1);
    auto held = cur.get(); // a session or delivery attempt keeps its own
    std::thread reader([&cur] {
        for (int i = 0; i < 1000; ++i)
            CHECK(cur.get()->number >= 1);
    });
    for (std::uint64_t n = 2; n <= 50; ++n)
        cur.set(std::make_shared<const live::generation>(parse("[]"), n));
    reader.join();
    CHECK(cur.get()->number == 50);
    CHECK(held->number == 1);
}
}
