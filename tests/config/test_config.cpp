#include "postern/config/config.hpp"

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <doctest/doctest.h>

#include "../temp_dir.hpp"
#include <nlohmann/json.hpp>

#include "postern/auth/password.hpp"
#include "postern/util/id.hpp"
#include "postern/util/strings.hpp"

using namespace postern::config;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string src = "/tmp/x.json";

// The whole error message, or "" when parse() accepted the text.
std::string error_of(std::string_view text)
{
    try {
        (void)parse(text, src);
    } catch (const error& e) {
        return e.what();
    }
    return "";
}

// The text of a full configuration with key replaced by value_json; used to
// put one bad value into an otherwise valid file.
std::string with(const std::string& key_path, const nlohmann::json& value)
{
    auto doc = nlohmann::json::parse(R"({
      "hostname": "mx.example.test",
      "listeners": [ {"address": "127.0.0.1:2525", "mode": "smtp"} ],
      "local_domains": ["example.test"],
      "users": [ {"address": "alice@example.test"} ],
      "aliases": { "postmaster@example.test": ["alice@example.test"] },
      "limits": { "recipients": 100 }
    })");
    doc[nlohmann::json::json_pointer(key_path)] = value;
    return doc.dump();
}

std::string machine_hostname()
{
    std::array<char, 256> name{};
    REQUIRE(::gethostname(name.data(), name.size() - 1) == 0);
    return name.data();
}

using postern::testing::temp_dir;

void check_same(const settings& a, const settings& b)
{
    CHECK(a.hostname == b.hostname);
    CHECK(a.spool_dir == b.spool_dir);
    CHECK(a.mail_root == b.mail_root);
    REQUIRE(a.listeners.size() == b.listeners.size());
    for (std::size_t i = 0; i < a.listeners.size(); ++i) {
        CAPTURE(i);
        CHECK(a.listeners[i].spec == b.listeners[i].spec);
        CHECK(a.listeners[i].host == b.listeners[i].host);
        CHECK(a.listeners[i].port == b.listeners[i].port);
        CHECK(a.listeners[i].mode == b.listeners[i].mode);
    }
    CHECK(a.local_domains == b.local_domains);
    REQUIRE(a.users.size() == b.users.size());
    for (std::size_t i = 0; i < a.users.size(); ++i)
        CHECK(a.users[i].address == b.users[i].address);
    CHECK(a.aliases == b.aliases);
    CHECK(a.recipient_delimiter == b.recipient_delimiter);
    CHECK(a.lim.message_size == b.lim.message_size);
    CHECK(a.lim.recipients == b.lim.recipients);
    CHECK(a.lim.connections == b.lim.connections);
    CHECK(a.lim.connections_per_ip == b.lim.connections_per_ip);
    CHECK(a.lim.command_timeout == b.lim.command_timeout);
    CHECK(a.lim.data_timeout == b.lim.data_timeout);
    CHECK(a.lim.errors == b.lim.errors);
    CHECK(a.lim.shutdown_timeout == b.lim.shutdown_timeout);
    CHECK(a.run_as_user == b.run_as_user);
    CHECK(a.run_as_group == b.run_as_group);
    CHECK(a.relay_networks == b.relay_networks);
    CHECK(a.dns.servers == b.dns.servers);
    CHECK(a.queue.retry_initial == b.queue.retry_initial);
    CHECK(a.queue.retry_max == b.queue.retry_max);
    CHECK(a.queue.give_up == b.queue.give_up);
    CHECK(a.queue.delay_warning == b.queue.delay_warning);
    CHECK(a.remote.port == b.remote.port);
    CHECK(a.remote.concurrency == b.remote.concurrency);
    CHECK(a.remote.concurrency_per_domain == b.remote.concurrency_per_domain);
    CHECK(a.remote.messages_per_connection == b.remote.messages_per_connection);
    CHECK(a.remote.connect_timeout == b.remote.connect_timeout);
    CHECK(a.remote.command_timeout == b.remote.command_timeout);
    CHECK(a.remote.tls == b.remote.tls);
    CHECK(a.remote.tls_policies == b.remote.tls_policies);
    CHECK(a.relay.smarthost == b.relay.smarthost);
    CHECK(a.relay.host == b.relay.host);
    CHECK(a.relay.port == b.relay.port);
    CHECK(a.relay.tls == b.relay.tls);
    CHECK(a.relay.username == b.relay.username);
    CHECK(a.relay.password_file == b.relay.password_file);
    CHECK(a.delivery.lmtp == b.delivery.lmtp);
    CHECK(a.delivery.lmtp_socket == b.delivery.lmtp_socket);
    CHECK(a.delivery.lmtp_host == b.delivery.lmtp_host);
    CHECK(a.delivery.lmtp_port == b.delivery.lmtp_port);
    CHECK(a.delivery.domains == b.delivery.domains);
    CHECK(a.log == b.log);
}

constexpr std::string_view full_example = R"({
  "hostname": "mx.example.test",
  "spool_dir": "/srv/spool",
  "mail_root": "/srv/mail",
  "listeners": [ {"address": "127.0.0.1:2525", "mode": "smtp"},
                 {"address": "[::1]:25"} ],
  "local_domains": ["Example.TEST", "other.test"],
  "users": [ {"address": "alice@example.test"}, {"address": "Bob@OTHER.test"} ],
  "aliases": { "PostMaster@Example.test": ["alice@example.test", "carol@remote.test"] },
  "limits": { "message_size": 1048576, "recipients": 10, "connections": 20,
              "connections_per_ip": 5, "command_timeout_s": 60, "data_timeout_s": 120, "errors": 3 },
  "relay_networks": ["192.0.2.0/24", "2001:DB8::/32", "198.51.100.7", "::1"],
  "dns": { "servers": ["127.0.0.1:5353", "[::1]", "192.0.2.53"] },
  "queue": { "retry_initial_s": 60, "retry_max_s": 600, "give_up_s": 86400, "delay_warning_s": 0 },
  "remote": { "port": 2525, "concurrency": 10, "concurrency_per_domain": 2, "messages_per_connection": 5,
              "connect_timeout_s": 5, "command_timeout_s": 60, "tls_policy": "encrypt",
              "tls_policies": { "Example.NET": "verify", "legacy.test": "none" } },
  "relay": { "smarthost": "smtp.example.net:587", "tls": "implicit", "username": "mx1",
             "password_file": "/etc/postern/relay.pass" },
  "log_level": "warn"
})";

} // namespace

TEST_SUITE("config") {

TEST_CASE("a full configuration parses to the values written")
{
    auto s = parse(full_example, src);
    CHECK(s.source == src);
    CHECK(s.hostname == "mx.example.test");
    CHECK(s.spool_dir == "/srv/spool");
    CHECK(s.mail_root == "/srv/mail");
    REQUIRE(s.listeners.size() == 2);
    CHECK(s.listeners[0].spec == "127.0.0.1:2525");
    CHECK(s.listeners[0].host == "127.0.0.1");
    CHECK(s.listeners[0].port == 2525);
    CHECK(s.listeners[0].mode == listener_mode::smtp);
    CHECK(s.listeners[1].spec == "[::1]:25");
    CHECK(s.listeners[1].host == "::1");
    CHECK(s.listeners[1].port == 25);
    CHECK(s.listeners[1].mode == listener_mode::smtp); // mode defaults to smtp
    CHECK(s.local_domains == std::vector<std::string>{"example.test", "other.test"});
    REQUIRE(s.users.size() == 2);
    CHECK(s.users[0].address == "alice@example.test");
    CHECK(s.users[1].address == "Bob@other.test"); // domain lower-cased, local part kept
    REQUIRE(s.aliases.size() == 1);
    CHECK(s.aliases.at("postmaster@example.test") ==
        std::vector<std::string>{"alice@example.test", "carol@remote.test"});
    CHECK(s.lim.message_size == 1048576);
    CHECK(s.lim.recipients == 10);
    CHECK(s.lim.connections == 20);
    CHECK(s.lim.connections_per_ip == 5);
    CHECK(s.lim.command_timeout == 60s);
    CHECK(s.lim.data_timeout == 120s);
    CHECK(s.lim.errors == 3);
    // Networks are kept canonical, with their prefix.
    CHECK(s.relay_networks ==
        std::vector<std::string>{"192.0.2.0/24", "2001:db8::/32", "198.51.100.7/32", "::1/128"});
    CHECK(s.dns.servers == std::vector<std::string>{"127.0.0.1:5353", "[::1]", "192.0.2.53"});
    CHECK(s.queue.retry_initial == 60s);
    CHECK(s.queue.retry_max == 600s);
    CHECK(s.queue.give_up == 86400s);
    CHECK(s.queue.delay_warning == 0s);
    CHECK(s.remote.port == 2525);
    CHECK(s.remote.concurrency == 10);
    CHECK(s.remote.concurrency_per_domain == 2);
    CHECK(s.remote.messages_per_connection == 5);
    CHECK(s.remote.connect_timeout == 5s);
    CHECK(s.remote.command_timeout == 60s);
    CHECK(s.remote.tls == tls_policy::encrypt);
    CHECK(s.remote.tls_policies ==
        std::map<std::string, tls_policy>{{"example.net", tls_policy::verify}, {"legacy.test", tls_policy::none}});
    CHECK(s.relay.smarthost == "smtp.example.net:587");
    CHECK(s.relay.host == "smtp.example.net");
    CHECK(s.relay.port == 587);
    CHECK(s.relay.tls == smarthost_tls::implicit);
    CHECK(s.relay.username == "mx1");
    CHECK(s.relay.password_file == "/etc/postern/relay.pass");
    CHECK(s.log == log_level::warn);
}

TEST_CASE("absent keys take their defaults")
{
    SUBCASE("an empty object")
    {
        auto s = parse("{}", src);
        CHECK(s.hostname == machine_hostname());
        CHECK(s.spool_dir == "/var/spool/postern");
        CHECK(s.mail_root == "/var/mail/postern");
        REQUIRE(s.listeners.size() == 1);
        CHECK(s.listeners[0].spec == "0.0.0.0:25");
        CHECK(s.listeners[0].host == "0.0.0.0");
        CHECK(s.listeners[0].port == 25);
        CHECK(s.listeners[0].mode == listener_mode::smtp);
        CHECK(s.local_domains == std::vector<std::string>{postern::util::to_lower(machine_hostname())});
        CHECK(s.users.empty());
        CHECK(s.aliases.empty());
        CHECK(s.lim.message_size == 36700160);
        CHECK(s.lim.recipients == 100);
        CHECK(s.lim.connections == 1000);
        CHECK(s.lim.connections_per_ip == 50);
        CHECK(s.lim.command_timeout == 300s);
        CHECK(s.lim.data_timeout == 600s);
        CHECK(s.lim.errors == 20);
        CHECK(s.lim.shutdown_timeout == 30s);
        CHECK(s.relay_networks.empty()); // no relaying without AUTH unless the file says so
        CHECK(s.dns.servers.empty());    // /etc/resolv.conf
        CHECK(s.queue.retry_initial == 300s);
        CHECK(s.queue.retry_max == 3600s);
        CHECK(s.queue.give_up == 432000s);
        CHECK(s.queue.delay_warning == 14400s);
        CHECK(s.remote.port == 25);
        CHECK(s.remote.concurrency == 100);
        CHECK(s.remote.concurrency_per_domain == 20);
        CHECK(s.remote.messages_per_connection == 100);
        CHECK(s.remote.connect_timeout == 30s);
        CHECK(s.remote.command_timeout == 600s);
        CHECK(s.remote.tls == tls_policy::may);
        CHECK(s.remote.tls_policies.empty());
        CHECK(s.relay.smarthost.empty()); // deliver by MX
        CHECK(s.relay.host.empty());
        CHECK(s.relay.port == 0);
        CHECK(s.relay.tls == smarthost_tls::starttls);
        CHECK(s.relay.username.empty());
        CHECK(s.relay.password_file.empty());
        CHECK(s.log == log_level::info);
    }
    SUBCASE("local_domains defaults to the configured hostname, lower-cased")
    {
        auto s = parse(R"({"hostname": "MX.Example.Test"})", src);
        CHECK(s.hostname == "MX.Example.Test");
        CHECK(s.local_domains == std::vector<std::string>{"mx.example.test"});
    }
    SUBCASE("absent limits keep their defaults beside given ones")
    {
        auto s = parse(R"({"limits": {"recipients": 7}})", src);
        CHECK(s.lim.recipients == 7);
        CHECK(s.lim.errors == 20);
        CHECK(s.lim.shutdown_timeout == 30s);
        CHECK(s.lim.message_size == 36700160);
    }
    SUBCASE("absent keys of the outbound objects keep their defaults beside given ones")
    {
        auto s = parse(R"({"queue": {"give_up_s": 3600}, "remote": {"tls_policy": "none"},
                           "relay": {"smarthost": "192.0.2.1:25"}, "dns": {}})",
            src);
        CHECK(s.queue.give_up == 3600s);
        CHECK(s.queue.retry_initial == 300s);
        CHECK(s.remote.tls == tls_policy::none);
        CHECK(s.remote.concurrency == 100);
        CHECK(s.relay.tls == smarthost_tls::starttls);
        CHECK(s.relay.username.empty());
        CHECK(s.dns.servers.empty());
    }
    SUBCASE("null leaves relay's optional strings unset")
    {
        auto s = parse(R"({"relay": {"smarthost": null, "username": null, "password_file": null}})", src);
        CHECK(s.relay.smarthost.empty());
        CHECK(s.relay.username.empty());
        CHECK(s.relay.password_file.empty());
    }
}

TEST_CASE("comments are allowed")
{
    auto s = parse(R"(// a line comment
        {
          /* a block
             comment */
          "hostname": "mx.example.test", // trailing
          "log_level": /* inline */ "warn"
        })",
        src);
    CHECK(s.hostname == "mx.example.test");
    CHECK(s.log == log_level::warn);
}

TEST_CASE("errors name the source, the key path and what was expected")
{
    SUBCASE("a limit of the wrong type")
    {
        CHECK(error_of(R"({"limits": {"recipients": "ten"}})") ==
            R"(/tmp/x.json: limits.recipients: expected a positive integer, got "ten")");
    }
    SUBCASE("a listener mode not in the list")
    {
        CHECK(error_of(R"({"listeners": [{"address": "127.0.0.1:25", "mode": "pop5"}]})") ==
            R"(/tmp/x.json: listeners[0].mode: expected one of "smtp", "submission", "pop3", "imap", got "pop5")");
    }
    SUBCASE("a user outside the local domains")
    {
        CHECK(error_of(R"({"local_domains": ["example.test"],
                           "users": [{"address": "alice@example.test"}, {"address": "bob@other.test"}]})") ==
            "/tmp/x.json: users[1].address: expected an address in a local domain (example.test), "
            R"(got "bob@other.test")");
    }
    SUBCASE("an unknown top-level key")
    {
        CHECK(error_of(R"({"frobnicate": 1})") ==
            "/tmp/x.json: frobnicate: expected one of the known keys (hostname, spool_dir, mail_root, listeners, "
            "local_domains, users, recipient_delimiter, aliases, relay_networks, limits, dns, queue, remote, relay, "
            "delivery, tls, auth, sendmail, log_level, user, group, metrics), "
            R"(got unknown key "frobnicate")");
    }
    SUBCASE("an alias key outside the local domains")
    {
        CHECK(error_of(R"({"local_domains": ["example.test"], "aliases": {"abuse@else.test": ["a@b.test"]}})") ==
            R"(/tmp/x.json: aliases["abuse@else.test"]: expected an address in a local domain (example.test), )"
            R"(got "abuse@else.test")");
    }
    SUBCASE("a bad alias target")
    {
        CHECK(error_of(R"({"local_domains": ["example.test"], "aliases": {"abuse@example.test": ["nobody"]}})") ==
            R"(/tmp/x.json: aliases["abuse@example.test"][0]: expected an address (local@domain), got "nobody")");
    }
    SUBCASE("a limit out of range")
    {
        CHECK(error_of(R"({"limits": {"message_size": 100}})") ==
            "/tmp/x.json: limits.message_size: expected an integer from 1024 to 4294967296, got 100");
    }
    SUBCASE("a missing listener address")
    {
        CHECK(error_of(R"({"listeners": [{"mode": "smtp"}]})") ==
            "/tmp/x.json: listeners[0].address: expected IP:PORT with an IP literal (IPv6 in brackets, as "
            R"("[::1]:25") and a port from 1 to 65535, got nothing)");
    }
    SUBCASE("a top level that is not an object")
    {
        CHECK(error_of("[1, 2]") ==
            "/tmp/x.json: top level: expected an object (keys: hostname, spool_dir, mail_root, listeners, "
            "local_domains, users, recipient_delimiter, aliases, relay_networks, limits, dns, queue, remote, relay, "
            "delivery, tls, auth, sendmail, log_level, user, group, metrics), "
            "got [1,2]");
    }
    SUBCASE("a long value is shortened")
    {
        const std::string long_name(200, 'x');
        auto e = error_of(R"({"log_level": ")" + long_name + "\"}");
        CHECK(e.size() < 150);
        CHECK(e.find(R"(/tmp/x.json: log_level: expected one of "info", "warn", got "xxx)") == 0);
        CHECK(e.substr(e.size() - 3) == "...");
    }
}

TEST_CASE("unknown keys are refused at every level")
{
    struct variant {
        std::string_view text;
        std::string_view prefix;
    };
    const variant variants[] = {
        {R"({"hostnme": "x"})", R"(/tmp/x.json: hostnme: expected one of the known keys (hostname,)"},
        {R"({"listeners": [{"address": "127.0.0.1:25", "starttls": true}]})",
            R"(/tmp/x.json: listeners[0].starttls: expected one of the known keys (address, mode, tls), got unknown key "starttls")"},
        {R"({"limits": {"recipient": 5}})",
            "/tmp/x.json: limits.recipient: expected one of the known keys (message_size, recipients, connections, "
            "connections_per_ip, command_timeout_s, data_timeout_s, errors, min_free_space, shutdown_timeout_s), got unknown key \"recipient\""},
        {R"({"users": [{"address": "a@localhost", "passwd": "x"}], "local_domains": ["localhost"]})",
            R"(/tmp/x.json: users[0].passwd: expected one of the known keys (address, password, addresses), got unknown key "passwd")"},
        {R"({"tls": {"cert": "/x"}})",
            R"(/tmp/x.json: tls.cert: expected one of the known keys (certificate, private_key), got unknown key "cert")"},
        {R"({"auth": {"max_fails": 3}})",
            "/tmp/x.json: auth.max_fails: expected one of the known keys (plaintext_loopback, any_sender, "
            "max_failures, failure_delay_ms, ip_max_failures, ip_window_s), got unknown key \"max_fails\""},
        {R"({"Hostname": "x"})", R"(/tmp/x.json: ["Hostname"]: expected one of the known keys)"},
        {R"({"dns": {"server": ["127.0.0.1"]}})",
            R"(/tmp/x.json: dns.server: expected one of the known keys (servers), got unknown key "server")"},
        {R"({"queue": {"retry_s": 60}})",
            "/tmp/x.json: queue.retry_s: expected one of the known keys (retry_initial_s, retry_max_s, give_up_s, "
            "delay_warning_s), got unknown key \"retry_s\""},
        {R"({"remote": {"tls": "may"}})",
            "/tmp/x.json: remote.tls: expected one of the known keys (port, concurrency, concurrency_per_domain, "
            "messages_per_connection, connect_timeout_s, command_timeout_s, tls_policy, tls_policies), "
            "got unknown key \"tls\""},
        {R"({"relay": {"password": "secret"}})",
            "/tmp/x.json: relay.password: expected one of the known keys (smarthost, tls, username, password_file), "
            "got unknown key \"password\""},
    };
    for (const auto& v : variants) {
        CAPTURE(v.text);
        auto e = error_of(v.text);
        CHECK(e.find(v.prefix) == 0);
        CHECK(e.find("unknown key") != std::string::npos);
    }
}

TEST_CASE("wrong JSON types are refused for every key")
{
    struct variant {
        std::string key_path; // JSON pointer into the valid base document
        nlohmann::json value;
        std::string_view expected; // the message after the source
    };
    const variant variants[] = {
        {"/hostname", 42, "hostname: expected a domain name, got 42"},
        {"/spool_dir", nullptr, "spool_dir: expected a non-empty path, got null"},
        {"/mail_root", nlohmann::json::array(), "mail_root: expected a non-empty path, got []"},
        {"/listeners", "127.0.0.1:25", "listeners: expected a non-empty array of listeners, got \"127.0.0.1:25\""},
        {"/listeners/0", "127.0.0.1:25",
            "listeners[0]: expected an object (keys: address, mode, tls), got \"127.0.0.1:25\""},
        {"/listeners/0/address", 25, "listeners[0].address: expected IP:PORT with an IP literal"},
        {"/listeners/0/mode", true, "listeners[0].mode: expected one of \"smtp\", \"submission\", \"pop3\", \"imap\", got true"},
        {"/listeners/0/tls", "ssl",
            "listeners[0].tls: expected one of \"starttls\", \"implicit\", \"none\", got \"ssl\""},
        {"/local_domains", "example.test", "local_domains: expected an array of domain names, got \"example.test\""},
        {"/local_domains/0", 1, "local_domains[0]: expected a domain name, got 1"},
        {"/users", nlohmann::json::object(), "users: expected an array of users, got {}"},
        {"/users/0", "alice@example.test", "users[0]: expected an object (keys: address, password, addresses), got \"alice@example.test\""},
        {"/users/0/address", nlohmann::json::array({"a"}), "users[0].address: expected an address (local@domain), got [\"a\"]"},
        {"/aliases", nlohmann::json::array(),
            "aliases: expected an object mapping local addresses to arrays of addresses, got []"},
        {"/aliases/postmaster@example.test", "alice@example.test",
            "aliases[\"postmaster@example.test\"]: expected a non-empty array of addresses, got \"alice@example.test\""},
        {"/aliases/postmaster@example.test/0", 7,
            "aliases[\"postmaster@example.test\"][0]: expected an address (local@domain), got 7"},
        {"/limits", 5, "limits: expected an object (keys: message_size,"},
        {"/limits/message_size", "35M", "limits.message_size: expected a positive integer, got \"35M\""},
        {"/limits/recipients", 1.5, "limits.recipients: expected a positive integer, got 1.5"},
        {"/limits/connections", false, "limits.connections: expected a positive integer, got false"},
        {"/limits/connections_per_ip", nullptr, "limits.connections_per_ip: expected a positive integer, got null"},
        {"/limits/command_timeout_s", "300s", "limits.command_timeout_s: expected a positive integer, got \"300s\""},
        {"/limits/data_timeout_s", 600.0, "limits.data_timeout_s: expected a positive integer, got 600.0"},
        {"/limits/errors", nlohmann::json::object(), "limits.errors: expected a positive integer, got {}"},
        {"/log_level", 1, "log_level: expected one of \"info\", \"warn\", got 1"},
        {"/relay_networks", "127.0.0.0/8", "relay_networks: expected an array of IP networks, got \"127.0.0.0/8\""},
        {"/relay_networks/0", 127, "relay_networks[0]: expected an IP address or network"},
        {"/dns", nlohmann::json::array(), "dns: expected an object (keys: servers), got []"},
        {"/dns/servers", "127.0.0.1", "dns.servers: expected an array of name server addresses, got \"127.0.0.1\""},
        {"/dns/servers/0", 53, "dns.servers[0]: expected an IP literal with an optional port"},
        {"/queue", true, "queue: expected an object (keys: retry_initial_s, retry_max_s, give_up_s, delay_warning_s)"},
        {"/queue/retry_initial_s", "5m", "queue.retry_initial_s: expected a positive integer, got \"5m\""},
        {"/queue/retry_max_s", 3600.5, "queue.retry_max_s: expected a positive integer, got 3600.5"},
        {"/queue/give_up_s", nullptr, "queue.give_up_s: expected a positive integer, got null"},
        {"/queue/delay_warning_s", false, "queue.delay_warning_s: expected a non-negative integer, got false"},
        {"/remote", "mx", "remote: expected an object (keys: port, concurrency,"},
        {"/remote/port", "25", "remote.port: expected a positive integer, got \"25\""},
        {"/remote/concurrency", 1.0, "remote.concurrency: expected a positive integer, got 1.0"},
        {"/remote/concurrency_per_domain", "x", "remote.concurrency_per_domain: expected a positive integer"},
        {"/remote/messages_per_connection", nullptr, "remote.messages_per_connection: expected a positive integer"},
        {"/remote/connect_timeout_s", "30s", "remote.connect_timeout_s: expected a positive integer, got \"30s\""},
        {"/remote/command_timeout_s", true, "remote.command_timeout_s: expected a positive integer, got true"},
        {"/remote/tls_policy", "must",
            "remote.tls_policy: expected one of \"none\", \"may\", \"encrypt\", \"verify\", got \"must\""},
        {"/remote/tls_policy", true,
            "remote.tls_policy: expected one of \"none\", \"may\", \"encrypt\", \"verify\", got true"},
        {"/remote/tls_policies", nlohmann::json::array(),
            "remote.tls_policies: expected an object mapping domain names to TLS policies, got []"},
        {"/remote/tls_policies/example.net", "dane",
            "remote.tls_policies[\"example.net\"]: expected one of \"none\", \"may\", \"encrypt\", \"verify\", "
            "got \"dane\""},
        {"/remote/tls_policies/not a domain", "may",
            "remote.tls_policies[\"not a domain\"]: expected a domain name, got \"not a domain\""},
        {"/relay", "smtp.example.net:587", "relay: expected an object (keys: smarthost, tls, username, password_file)"},
        {"/relay/smarthost", 587, "relay.smarthost: expected HOST:PORT with a domain name or an IP literal"},
        {"/relay/tls", "ssl", "relay.tls: expected one of \"starttls\", \"implicit\", got \"ssl\""},
        {"/relay/username", 7, "relay.username: expected a user name (no control characters) or null, got 7"},
        {"/relay/username", "", "relay.username: expected a user name (no control characters) or null, got \"\""},
        {"/relay/username", "a\r\nQUIT", "relay.username: expected a user name (no control characters) or null"},
        {"/relay/password_file", "", "relay.password_file: expected a non-empty path, got \"\""},
        {"/relay/password_file", 0, "relay.password_file: expected a non-empty path, got 0"},
    };
    for (const auto& v : variants) {
        CAPTURE(v.key_path);
        auto e = error_of(with(v.key_path, v.value));
        CHECK(e.find("/tmp/x.json: " + std::string(v.expected)) == 0);
    }
}

TEST_CASE("limits outside their bounds are refused")
{
    struct variant {
        std::string_view key;
        nlohmann::json value;
        std::string_view expected;
    };
    const variant variants[] = {
        {"message_size", 1023, "an integer from 1024 to 4294967296, got 1023"},
        {"message_size", 4294967297ull, "an integer from 1024 to 4294967296, got 4294967297"},
        {"recipients", 0, "an integer from 1 to 100000, got 0"},
        {"recipients", -5, "an integer from 1 to 100000, got -5"},
        {"connections", 0, "an integer from 1 to 1000000, got 0"},
        {"connections_per_ip", 1000001, "an integer from 1 to 1000000, got 1000001"},
        {"command_timeout_s", 0, "an integer from 1 to 86400, got 0"},
        {"command_timeout_s", 300000, "an integer from 1 to 86400, got 300000"},
        {"data_timeout_s", 86401, "an integer from 1 to 86400, got 86401"},
        {"errors", 0, "an integer from 1 to 100000, got 0"},
        {"shutdown_timeout_s", 3601, "an integer from 0 to 3600, got 3601"},
        {"shutdown_timeout_s", -1, "an integer from 0 to 3600, got -1"},
        {"errors", nlohmann::json::parse("100000000000000000000"), "an integer from 1 to 100000, got 1e+20"},
    };
    for (const auto& v : variants) {
        CAPTURE(v.key);
        CAPTURE(v.value);
        CHECK(error_of(with("/limits/" + std::string(v.key), v.value)) ==
            "/tmp/x.json: limits." + std::string(v.key) + ": expected " + std::string(v.expected));
    }
    SUBCASE("the bounds themselves are accepted")
    {
        auto s = parse(R"({"limits": {"message_size": 1024, "recipients": 1, "connections": 1,
            "connections_per_ip": 1, "command_timeout_s": 86400, "data_timeout_s": 1, "errors": 100000}})",
            src);
        CHECK(s.lim.message_size == 1024);
        CHECK(s.lim.command_timeout == 86400s);
        CHECK(s.lim.errors == 100000);
    }
}

TEST_CASE("listener addresses are an IP literal and a port")
{
    auto address_error = [](std::string_view address) {
        return error_of(R"({"listeners": [{"address": )" + nlohmann::json(address).dump() + "}]}");
    };
    SUBCASE("refused")
    {
        for (std::string_view bad : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "localhost:25", "::1:25",
                 "[::1]", "[::1]25", "[127.0.0.1]:25", "127.0.0.1:", ":25", "127.0.0.1:+25", "127.0.0.1:25 ",
                 "1.2.3:25", "[fe80::1%eth0]:25", ""}) {
            CAPTURE(bad);
            CHECK(address_error(bad) ==
                "/tmp/x.json: listeners[0].address: expected IP:PORT with an IP literal (IPv6 in brackets, as "
                "\"[::1]:25\") and a port from 1 to 65535, got " +
                    nlohmann::json(bad).dump());
        }
    }
    SUBCASE("accepted")
    {
        struct good {
            std::string_view spec;
            std::string_view host;
            std::uint16_t port;
        };
        for (const auto& g : {good{"[::1]:25", "::1", 25}, good{"0.0.0.0:1", "0.0.0.0", 1},
                 good{"[::]:65535", "::", 65535}, good{"[0:0::1]:587", "::1", 587},
                 good{"[::ffff:192.0.2.1]:25", "::ffff:192.0.2.1", 25}}) {
            CAPTURE(g.spec);
            auto s = parse(R"({"listeners": [{"address": )" + nlohmann::json(g.spec).dump() + "}]}", src);
            REQUIRE(s.listeners.size() == 1);
            CHECK(s.listeners[0].spec == g.spec);
            CHECK(s.listeners[0].host == g.host);
            CHECK(s.listeners[0].port == g.port);
        }
    }
}

TEST_CASE("outbound numbers outside their bounds are refused")
{
    struct variant {
        std::string_view key_path; // JSON pointer
        nlohmann::json value;
        std::string_view expected;
    };
    const variant variants[] = {
        {"/queue/retry_initial_s", 0, "queue.retry_initial_s: expected an integer from 1 to 31536000, got 0"},
        {"/queue/retry_max_s", 31536001, "queue.retry_max_s: expected an integer from 1 to 31536000, got 31536001"},
        {"/queue/give_up_s", 0, "queue.give_up_s: expected an integer from 1 to 31536000, got 0"},
        {"/queue/give_up_s", -1, "queue.give_up_s: expected an integer from 1 to 31536000, got -1"},
        {"/queue/delay_warning_s", -1, "queue.delay_warning_s: expected an integer from 0 to 31536000, got -1"},
        {"/queue/delay_warning_s", 432000000,
            "queue.delay_warning_s: expected an integer from 0 to 31536000, got 432000000"},
        {"/remote/port", 0, "remote.port: expected an integer from 1 to 65535, got 0"},
        {"/remote/port", 65536, "remote.port: expected an integer from 1 to 65535, got 65536"},
        {"/remote/concurrency", 0, "remote.concurrency: expected an integer from 1 to 100000, got 0"},
        {"/remote/concurrency_per_domain", 0,
            "remote.concurrency_per_domain: expected an integer from 1 to 100000, got 0"},
        {"/remote/messages_per_connection", 100001,
            "remote.messages_per_connection: expected an integer from 1 to 100000, got 100001"},
        {"/remote/connect_timeout_s", 0, "remote.connect_timeout_s: expected an integer from 1 to 86400, got 0"},
        {"/remote/command_timeout_s", 300000,
            "remote.command_timeout_s: expected an integer from 1 to 86400, got 300000"},
    };
    for (const auto& v : variants) {
        CAPTURE(v.key_path);
        CHECK(error_of(with(std::string(v.key_path), v.value)) == "/tmp/x.json: " + std::string(v.expected));
    }
    SUBCASE("the bounds themselves are accepted")
    {
        auto s = parse(R"({"queue": {"retry_initial_s": 1, "retry_max_s": 31536000, "give_up_s": 31536000,
                                     "delay_warning_s": 0},
                           "remote": {"port": 65535, "concurrency": 100000, "concurrency_per_domain": 100000,
                                      "messages_per_connection": 1, "connect_timeout_s": 86400,
                                      "command_timeout_s": 1}})",
            src);
        CHECK(s.queue.retry_initial == 1s);
        CHECK(s.queue.retry_max == 31536000s);
        CHECK(s.queue.delay_warning == 0s);
        CHECK(s.remote.port == 65535);
        CHECK(s.remote.concurrency_per_domain == 100000);
        CHECK(s.remote.connect_timeout == 86400s);
    }
}

TEST_CASE("keys bounded by another key of their object are checked together")
{
    SUBCASE("retry_max_s below retry_initial_s")
    {
        CHECK(error_of(R"({"queue": {"retry_initial_s": 600, "retry_max_s": 300}})") ==
            "/tmp/x.json: queue.retry_max_s: expected at least retry_initial_s (600), got 300");
    }
    SUBCASE("retry_initial_s above the default retry_max_s, retry_max_s absent")
    {
        CHECK(error_of(R"({"queue": {"retry_initial_s": 7200}})") ==
            "/tmp/x.json: queue.retry_max_s: expected at least retry_initial_s (7200), got 3600 (the default)");
    }
    SUBCASE("retry_max_s equal to retry_initial_s: a fixed interval")
    {
        auto s = parse(R"({"queue": {"retry_initial_s": 900, "retry_max_s": 900}})", src);
        CHECK(s.queue.retry_initial == 900s);
        CHECK(s.queue.retry_max == 900s);
    }
    SUBCASE("concurrency_per_domain above concurrency")
    {
        CHECK(error_of(R"({"remote": {"concurrency": 10, "concurrency_per_domain": 11}})") ==
            "/tmp/x.json: remote.concurrency_per_domain: expected at most concurrency (10), got 11");
    }
    SUBCASE("concurrency below the default concurrency_per_domain, concurrency_per_domain absent")
    {
        CHECK(error_of(R"({"remote": {"concurrency": 5}})") ==
            "/tmp/x.json: remote.concurrency_per_domain: expected at most concurrency (5), got 20 (the default)");
    }
    SUBCASE("concurrency_per_domain equal to concurrency")
    {
        CHECK(parse(R"({"remote": {"concurrency": 5, "concurrency_per_domain": 5}})", src)
                  .remote.concurrency_per_domain == 5);
    }
    SUBCASE("relay username without password_file")
    {
        CHECK(error_of(R"({"relay": {"smarthost": "smtp.example.net:587", "username": "mx1"}})") ==
            "/tmp/x.json: relay.password_file: expected a non-empty path (relay.username is set), got nothing");
        CHECK(error_of(R"({"relay": {"smarthost": "smtp.example.net:587", "username": "mx1",
                                     "password_file": null}})") ==
            "/tmp/x.json: relay.password_file: expected a non-empty path (relay.username is set), got null");
    }
    SUBCASE("relay password_file without username")
    {
        CHECK(error_of(R"({"relay": {"smarthost": "smtp.example.net:587", "password_file": "/etc/p"}})") ==
            "/tmp/x.json: relay.username: expected a user name (relay.password_file is set), got nothing");
    }
    SUBCASE("relay credentials without a smarthost")
    {
        CHECK(error_of(R"({"relay": {"username": "mx1", "password_file": "/etc/p"}})") ==
            R"(/tmp/x.json: relay.username: expected null, as relay.smarthost is not set, got "mx1")");
    }
    SUBCASE("the password file is not read at parse time")
    {
        auto s = parse(R"({"relay": {"smarthost": "smtp.example.net:587", "username": "mx1",
                                     "password_file": "/nonexistent/relay.pass"}})",
            src);
        CHECK(s.relay.password_file == "/nonexistent/relay.pass");
    }
}

TEST_CASE("relay networks are IP networks with no host bits set")
{
    auto network_error = [](std::string_view network) {
        return error_of(R"({"relay_networks": [)" + nlohmann::json(network).dump() + "]}");
    };
    SUBCASE("accepted, kept canonical with their prefix")
    {
        struct good {
            std::string_view written;
            std::string_view kept;
        };
        for (const auto& g : {good{"127.0.0.0/8", "127.0.0.0/8"}, good{"::1/128", "::1/128"},
                 good{"fe80::/10", "fe80::/10"}, good{"192.0.2.7", "192.0.2.7/32"}, good{"::1", "::1/128"},
                 good{"0.0.0.0/0", "0.0.0.0/0"}, good{"::/0", "::/0"}, good{"10.128.0.0/9", "10.128.0.0/9"},
                 good{"2001:DB8:0:0::/64", "2001:db8::/64"}, good{"192.0.2.0/024", "192.0.2.0/24"}}) {
            CAPTURE(g.written);
            auto s = parse(R"({"relay_networks": [)" + nlohmann::json(g.written).dump() + "]}", src);
            CHECK(s.relay_networks == std::vector<std::string>{std::string(g.kept)});
        }
    }
    SUBCASE("refused as malformed")
    {
        const std::initializer_list<std::string_view> malformed = {"10.0.0.1/33", "10.0.0.0/8x", "::1/129",
            "not-an-ip", "10.0.0.0/", "/8", "10.0.0.0/-1", "10.0.0/8", "[::1]/128", "fe80::1%eth0/128", "10.0.0.0 /8",
            "", "10.0.0.0/8/8", std::string_view("10.0.0.0\0/8", 11)};
        for (std::string_view bad : malformed) {
            CAPTURE(bad);
            CHECK(network_error(bad) ==
                "/tmp/x.json: relay_networks[0]: expected an IP address or network (\"192.0.2.0/24\", "
                "\"2001:db8::/32\"; prefix 0 to 32 for IPv4, 0 to 128 for IPv6), got " +
                    nlohmann::json(bad).dump());
        }
    }
    SUBCASE("refused with host bits set past the prefix, naming the network meant")
    {
        CHECK(network_error("10.1.0.0/8") == "/tmp/x.json: relay_networks[0]: expected a network with no address "
                                             R"(bits set past its prefix ("10.0.0.0/8"), got "10.1.0.0/8")");
        CHECK(network_error("192.0.2.1/24") == "/tmp/x.json: relay_networks[0]: expected a network with no address "
                                               R"(bits set past its prefix ("192.0.2.0/24"), got "192.0.2.1/24")");
        CHECK(network_error("2001:db8::1/64") == "/tmp/x.json: relay_networks[0]: expected a network with no address "
                                                 R"(bits set past its prefix ("2001:db8::/64"), got "2001:db8::1/64")");
        CHECK(network_error("fe80::1/10").find(R"(prefix ("fe80::/10"), got "fe80::1/10")") != std::string::npos);
    }
    SUBCASE("refused as IPv4-mapped IPv6")
    {
        CHECK(network_error("::ffff:192.0.2.0/120") ==
            "/tmp/x.json: relay_networks[0]: expected an IPv4 network written as IPv4 (\"192.0.2.0/24\"), not as "
            R"(IPv4-mapped IPv6, got "::ffff:192.0.2.0/120")");
    }
    SUBCASE("refused when listed twice, in any spelling")
    {
        CHECK(error_of(R"({"relay_networks": ["::1", "0::1/128"]})") ==
            R"(/tmp/x.json: relay_networks[1]: expected a network not already listed, got "0::1/128")");
    }
    SUBCASE("an empty list allows no one")
    {
        CHECK(parse(R"({"relay_networks": []})", src).relay_networks.empty());
    }
}

TEST_CASE("DNS servers are IP literals with an optional port")
{
    SUBCASE("accepted, kept as written")
    {
        for (std::string_view good : {"127.0.0.1", "127.0.0.1:5353", "[::1]", "[::1]:53", "[2001:db8::53]:5353"}) {
            CAPTURE(good);
            auto s = parse(R"({"dns": {"servers": [)" + nlohmann::json(good).dump() + "]}}", src);
            CHECK(s.dns.servers == std::vector<std::string>{std::string(good)});
        }
    }
    SUBCASE("refused")
    {
        for (std::string_view bad : {"ns.example.net", "ns.example.net:53", "::1", "::1:53", "[::1]53",
                 "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:", "[127.0.0.1]", "", "1.2.3", ":53", "[::1",
                 "8.8.8.8 "}) {
            CAPTURE(bad);
            CHECK(error_of(R"({"dns": {"servers": [)" + nlohmann::json(bad).dump() + "]}}") ==
                "/tmp/x.json: dns.servers[0]: expected an IP literal with an optional port (\"192.0.2.53\", "
                "\"192.0.2.53:5353\", \"[2001:db8::53]\", \"[2001:db8::53]:53\"), got " +
                    nlohmann::json(bad).dump());
        }
    }
    SUBCASE("the same server twice, with and without the default port")
    {
        CHECK(error_of(R"({"dns": {"servers": ["192.0.2.53", "192.0.2.53:53"]}})") ==
            R"(/tmp/x.json: dns.servers[1]: expected a server not already listed, got "192.0.2.53:53")");
    }
}

TEST_CASE("a smarthost is a host and a port")
{
    SUBCASE("accepted")
    {
        struct good {
            std::string_view spec;
            std::string_view host;
            std::uint16_t port;
        };
        for (const auto& g : {good{"smtp.example.net:587", "smtp.example.net", 587},
                 good{"[2001:db8::1]:465", "2001:db8::1", 465}, good{"192.0.2.1:25", "192.0.2.1", 25},
                 good{"localhost:2525", "localhost", 2525}, good{"[2001:DB8:0::1]:1", "2001:db8::1", 1},
                 good{"relay-1.example.net:65535", "relay-1.example.net", 65535}}) {
            CAPTURE(g.spec);
            auto s = parse(R"({"relay": {"smarthost": )" + nlohmann::json(g.spec).dump() + "}}", src);
            CHECK(s.relay.smarthost == g.spec);
            CHECK(s.relay.host == g.host);
            CHECK(s.relay.port == g.port);
        }
    }
    SUBCASE("refused")
    {
        for (std::string_view bad : {"smtp.example.net", ":25", "host:0", "host:99999", "", "[2001:db8::1]",
                 "2001:db8::1:25", "[smtp.example.net]:25", "smtp example.net:25", "smtp.example.net:25x",
                 "192.0.2.300:25", "-smtp.example.net:25", "smtp.example.net.:25", "host:"}) {
            CAPTURE(bad);
            CHECK(error_of(R"({"relay": {"smarthost": )" + nlohmann::json(bad).dump() + "}}") ==
                "/tmp/x.json: relay.smarthost: expected HOST:PORT with a domain name or an IP literal (IPv6 in "
                "brackets, as \"[2001:db8::1]:587\") and a port from 1 to 65535, or null, got " +
                    nlohmann::json(bad).dump());
        }
    }
    SUBCASE("implicit TLS")
    {
        auto s = parse(R"({"relay": {"smarthost": "smtp.example.net:465", "tls": "implicit"}})", src);
        CHECK(s.relay.tls == smarthost_tls::implicit);
    }
}

TEST_CASE("per-domain TLS policies are keyed by lower-cased domain names")
{
    SUBCASE("accepted")
    {
        auto s = parse(R"({"remote": {"tls_policy": "verify", "tls_policies":
                                      {"Example.NET": "may", "old.test": "none", "x.test": "encrypt"}}})",
            src);
        CHECK(s.remote.tls == tls_policy::verify);
        CHECK(s.remote.tls_policies == std::map<std::string, tls_policy>{{"example.net", tls_policy::may},
                                           {"old.test", tls_policy::none}, {"x.test", tls_policy::encrypt}});
    }
    SUBCASE("a domain listed twice in different cases")
    {
        auto e = error_of(R"({"remote": {"tls_policies": {"example.net": "may", "EXAMPLE.net": "verify"}}})");
        CHECK(e.find("/tmp/x.json: remote.tls_policies[") == 0);
        CHECK(e.find("expected a domain not already listed (keys ignore case)") != std::string::npos);
    }
    SUBCASE("a key that is not a domain name")
    {
        CHECK(error_of(R"({"remote": {"tls_policies": {"[192.0.2.1]": "may"}}})") ==
            R"(/tmp/x.json: remote.tls_policies["[192.0.2.1]"]: expected a domain name, got "[192.0.2.1]")");
    }
}

TEST_CASE("listeners must be at least one, each on its own address and port")
{
    SUBCASE("none")
    {
        CHECK(error_of(R"({"listeners": []})") ==
            "/tmp/x.json: listeners: expected a non-empty array of listeners, got []");
    }
    SUBCASE("the same spelling twice")
    {
        CHECK(error_of(R"({"listeners": [{"address": "127.0.0.1:25"}, {"address": "127.0.0.1:26"},
                                          {"address": "127.0.0.1:25"}]})") ==
            "/tmp/x.json: listeners[2].address: expected an address:port no other listener uses, "
            "got \"127.0.0.1:25\"");
    }
    SUBCASE("two spellings of one IPv6 address")
    {
        CHECK(error_of(R"({"listeners": [{"address": "[::1]:25"}, {"address": "[0::1]:25"}]})") ==
            "/tmp/x.json: listeners[1].address: expected an address:port no other listener uses, "
            "got \"[0::1]:25\"");
    }
    SUBCASE("same address, other port, is fine")
    {
        CHECK(parse(R"({"listeners": [{"address": "[::1]:25"}, {"address": "[::1]:587"}]})", src)
                  .listeners.size() == 2);
    }
}

TEST_CASE("domains and addresses are validated, lower-cased and not repeated")
{
    SUBCASE("an invalid local domain")
    {
        for (std::string_view bad : {"", "exa mple.test", "-x.test", "x-.test", "a..b", "example.test.",
                 "[192.0.2.1]", "ex_ample.test"}) {
            CAPTURE(bad);
            CHECK(error_of(R"({"local_domains": [)" + nlohmann::json(bad).dump() + "]}") ==
                "/tmp/x.json: local_domains[0]: expected a domain name, got " + nlohmann::json(bad).dump());
        }
    }
    SUBCASE("an invalid hostname")
    {
        CHECK(error_of(R"({"hostname": "mx example"})") ==
            R"(/tmp/x.json: hostname: expected a domain name, got "mx example")");
    }
    SUBCASE("a local domain repeated in another case")
    {
        CHECK(error_of(R"({"local_domains": ["example.test", "EXAMPLE.test"]})") ==
            R"(/tmp/x.json: local_domains[1]: expected a domain not already listed, got "EXAMPLE.test")");
    }
    SUBCASE("a user repeated")
    {
        CHECK(error_of(R"({"local_domains": ["example.test"],
                 "users": [{"address": "alice@example.test"}, {"address": "Alice@EXAMPLE.test"}]})") ==
            R"(/tmp/x.json: users[1].address: expected an address not already listed, got "Alice@EXAMPLE.test")");
    }
    SUBCASE("a user without an address")
    {
        CHECK(error_of(R"({"users": [{}]})") ==
            "/tmp/x.json: users[0].address: expected an address (local@domain), got nothing");
    }
    SUBCASE("a user with routing characters")
    {
        CHECK(error_of(R"({"local_domains": ["example.test"], "users": [{"address": "a%b@example.test"}]})") ==
            "/tmp/x.json: users[0].address: expected an address without %, ! or @ in its local part, "
            R"(got "a%b@example.test")");
    }
    SUBCASE("an alias defined twice in different cases")
    {
        auto e = error_of(R"({"local_domains": ["example.test"],
                 "aliases": {"Postmaster@example.test": ["a@b.test"], "postmaster@example.test": ["c@d.test"]}})");
        CHECK(e.find("/tmp/x.json: aliases[") == 0);
        CHECK(e.find("expected an alias not already defined (keys ignore case)") != std::string::npos);
    }
    SUBCASE("an alias with no targets or a repeated target")
    {
        CHECK(error_of(R"({"local_domains": ["example.test"], "aliases": {"abuse@example.test": []}})") ==
            R"(/tmp/x.json: aliases["abuse@example.test"]: expected a non-empty array of addresses, got [])");
        CHECK(error_of(R"({"local_domains": ["example.test"],
                 "aliases": {"abuse@example.test": ["a@b.test", "a@B.TEST"]}})") ==
            R"(/tmp/x.json: aliases["abuse@example.test"][1]: expected an address not already listed, got "a@B.TEST")");
    }
    SUBCASE("a key written twice in one object")
    {
        CHECK(error_of(R"({"limits": {"errors": 5, "errors": 6}})") ==
            R"(/tmp/x.json: limits.errors: expected each key at most once, got "errors" again)");
        CHECK(error_of(R"({"listeners": [{"address": "127.0.0.1:25"}, {"mode": "smtp", "mode": "smtp"}]})") ==
            R"(/tmp/x.json: listeners[1].mode: expected each key at most once, got "mode" again)");
        CHECK(error_of(R"({"hostname": "a.test", "hostname": "b.test"})") ==
            R"(/tmp/x.json: hostname: expected each key at most once, got "hostname" again)");
    }
    SUBCASE("equal keys in different objects are fine")
    {
        CHECK_NOTHROW((void)parse(R"({"listeners": [{"address": "127.0.0.1:25"}, {"address": "127.0.0.1:26"}]})",
            src));
    }
    SUBCASE("mail_root may not be the spool")
    {
        CHECK(error_of(R"({"spool_dir": "/srv/q", "mail_root": "/srv/q"})") ==
            R"(/tmp/x.json: mail_root: expected a directory other than spool_dir, got "/srv/q")");
    }
}

TEST_CASE("JSON syntax errors give the line and column")
{
    SUBCASE("a bad literal")
    {
        CHECK(error_of("{\n \"a\": 1,\n \"b\": tru }") ==
            "/tmp/x.json: invalid JSON at line 3, column 10: syntax error while parsing value - invalid literal; "
            "last read: '\"b\": tru '");
    }
    SUBCASE("an empty file")
    {
        CHECK(error_of("").find("/tmp/x.json: invalid JSON at line 1, column 1: ") == 0);
    }
    SUBCASE("a number too large for a double")
    {
        CHECK(error_of(R"({"limits": {"errors": 1e400}})") ==
            "/tmp/x.json: invalid JSON: number overflow parsing '1e400'");
    }
    SUBCASE("a trailing comma")
    {
        CHECK(error_of("{\n  \"hostname\": \"a.test\",\n}").find("/tmp/x.json: invalid JSON at line 3, column 1: ") ==
            0);
    }
}

TEST_CASE("the embedded default serves a developer's checkout")
{
    SUBCASE("with a hostname")
    {
        auto s = embedded_default("Dev.Example.Test");
        CHECK(s.source == "<embedded default>");
        CHECK(s.hostname == "Dev.Example.Test");
        CHECK(s.spool_dir == "./var/spool");
        CHECK(s.mail_root == "./var/mail");
        REQUIRE(s.listeners.size() == 1);
        CHECK(s.listeners[0].spec == "127.0.0.1:2525");
        CHECK(s.listeners[0].host == "127.0.0.1");
        CHECK(s.listeners[0].port == 2525);
        CHECK(s.listeners[0].mode == listener_mode::smtp);
        CHECK(s.local_domains == std::vector<std::string>{"localhost", "dev.example.test"});
        CHECK(s.users.empty());
        CHECK(s.aliases.empty());
        CHECK(s.lim.message_size == limits{}.message_size);
        CHECK(s.lim.recipients == limits{}.recipients);
        CHECK(s.lim.command_timeout == limits{}.command_timeout);
        CHECK(s.log == log_level::info);
        // Local clients may relay, as Postfix's mynetworks_style = host.
        CHECK(s.relay_networks == std::vector<std::string>{"127.0.0.0/8", "::1/128"});
        CHECK(s.relay.smarthost.empty());
        CHECK(s.dns.servers.empty());
    }
    SUBCASE("on a host called localhost")
    {
        CHECK(embedded_default("LocalHost").local_domains == std::vector<std::string>{"localhost"});
    }
    SUBCASE("with a hostname that is not a domain name")
    {
        CHECK_THROWS_WITH_AS(embedded_default("not a name"),
            R"(<embedded default>: hostname: expected a domain name, got "not a name")", error);
    }
}

TEST_CASE("load_file reads a file and names it in errors")
{
    temp_dir d;
    SUBCASE("a missing file")
    {
        const auto path = (d.path / "missing.json").string();
        CHECK_THROWS_WITH_AS(load_file(path), (path + ": cannot read: No such file or directory").c_str(), error);
    }
    SUBCASE("a directory")
    {
        CHECK_THROWS_WITH_AS(load_file(d.path.string()), (d.path.string() + ": cannot read: Is a directory").c_str(),
            error);
    }
    SUBCASE("a file")
    {
        const auto path = (d.path / "postern.json").string();
        std::ofstream(path) << full_example;
        auto s = load_file(path);
        CHECK(s.source == path);
        CHECK(s.hostname == "mx.example.test");
        CHECK(s.users.size() == 2);
    }
    SUBCASE("a file with an error")
    {
        const auto path = (d.path / "bad.json").string();
        std::ofstream(path) << R"({"log_level": "debug"})";
        CHECK_THROWS_WITH_AS(load_file(path),
            (path + R"(: log_level: expected one of "info", "warn", got "debug")").c_str(), error);
    }
}

TEST_CASE("the example conf/postern.json is a valid configuration")
{
    auto s = load_file(POSTERN_SOURCE_DIR "/conf/postern.json");
    CHECK(s.hostname == "mx.example.test");
    REQUIRE(s.listeners.size() == 7);
    CHECK(s.listeners[0].spec == "0.0.0.0:25");
    CHECK(s.listeners[1].mode == listener_mode::submission);
    CHECK(s.listeners[2].tls == listener_tls::implicit);
    CHECK(s.listeners[3].mode == listener_mode::pop3);
    CHECK(s.listeners[4].tls == listener_tls::implicit);
    CHECK(s.listeners[5].mode == listener_mode::imap);
    CHECK(s.listeners[5].tls == listener_tls::starttls);
    CHECK(s.listeners[6].mode == listener_mode::imap);
    CHECK(s.listeners[6].tls == listener_tls::implicit);
    CHECK(s.run_as_user == "postern"); // root binds the ports, then runs as postern
    CHECK(s.metrics.spec == "127.0.0.1:9025");
    CHECK(s.local_domains == std::vector<std::string>{"example.test"});
    REQUIRE(s.users.size() == 2);
    CHECK(s.users[0].address == "alice@example.test");
    CHECK(postern::auth::looks_like_hash(s.users[0].password));
    CHECK(s.users[1].password.empty());
    CHECK(s.tls.certificate.empty()); // self-signed unless configured
    CHECK_FALSE(s.auth.plaintext_loopback);
    CHECK(s.users[1].address == "bob@example.test");
    CHECK(s.aliases.at("postmaster@example.test") == std::vector<std::string>{"alice@example.test"});
    // An MX, not a relay: no open networks, delivery by MX with the defaults.
    CHECK(s.relay_networks.empty());
    CHECK(s.dns.servers.empty());
    CHECK(s.relay.smarthost.empty());
    CHECK(s.relay.username.empty());
    CHECK(s.remote.port == 25);
    CHECK(s.remote.tls == tls_policy::may);
    CHECK(s.queue.give_up == 432000s);
}

TEST_CASE("delivery.lmtp names a unix socket or a host and port, for all or some local domains")
{
    const std::string two_domains = R"("local_domains": ["example.test", "Other.test"])";
    auto delivery = [&](std::string_view d) { return "{" + two_domains + R"(, "delivery": )" + std::string(d) + "}"; };
    SUBCASE("absent: Maildir for every local domain")
    {
        auto s = parse("{" + two_domains + "}", src);
        CHECK(s.delivery.lmtp.empty());
        CHECK(s.delivery.domains.empty());
        CHECK(nlohmann::json::parse(to_json(s))["delivery"] == nlohmann::json::parse(R"({"lmtp": null, "domains": null})"));
    }
    SUBCASE("a unix socket, domains omitted: every local domain")
    {
        auto s = parse(delivery(R"({"lmtp": "unix:/run/dovecot/lmtp"})"), src);
        CHECK(s.delivery.lmtp == "unix:/run/dovecot/lmtp");
        CHECK(s.delivery.lmtp_socket == "/run/dovecot/lmtp");
        CHECK(s.delivery.lmtp_host.empty());
        CHECK(s.delivery.domains == std::vector<std::string>{"example.test", "other.test"});
        check_same(parse(to_json(s), src), s);
    }
    SUBCASE("host:port and some domains, lower-cased")
    {
        for (auto [spec, host, port] : {std::tuple{"127.0.0.1:24", "127.0.0.1", 24}, std::tuple{"[::1]:2424", "::1", 2424},
                 std::tuple{"lmtp.example.test:24", "lmtp.example.test", 24}}) {
            const std::string spec_text = spec; // clang 14: no structured bindings in CAPTURE
            CAPTURE(spec_text);
            auto s = parse(delivery(R"({"lmtp": ")" + std::string(spec) + R"(", "domains": ["OTHER.test"]})"), src);
            CHECK(s.delivery.lmtp == spec);
            CHECK(s.delivery.lmtp_socket.empty());
            CHECK(s.delivery.lmtp_host == host);
            CHECK(s.delivery.lmtp_port == port);
            CHECK(s.delivery.domains == std::vector<std::string>{"other.test"});
            check_same(parse(to_json(s), src), s);
        }
    }
    SUBCASE("null is the same as absent")
    {
        auto s = parse(delivery(R"({"lmtp": null, "domains": null})"), src);
        CHECK(s.delivery.lmtp.empty());
        CHECK(s.delivery.domains.empty());
    }
    SUBCASE("refused")
    {
        const std::string spec_expected =
            "expected \"unix:/PATH\" (an absolute socket path of at most 107 octets) or HOST:PORT with a domain name "
            "or an IP literal (IPv6 in brackets) and a port from 1 to 65535, or null, got ";
        for (std::string_view bad : {"unix:", "unix:run/lmtp", "/run/dovecot/lmtp", "lmtp.example.test", "host:0",
                 "[::1]", "tcp:127.0.0.1:24"}) {
            CAPTURE(bad);
            CHECK(error_of(delivery(R"({"lmtp": )" + nlohmann::json(bad).dump() + "}")) ==
                  "/tmp/x.json: delivery.lmtp: " + spec_expected + nlohmann::json(bad).dump());
        }
        CHECK(error_of(delivery(R"({"lmtp": 24})")) == "/tmp/x.json: delivery.lmtp: " + spec_expected + "24");
        // sun_path: 107 octets and the NUL.
        const std::string longest = "unix:/" + std::string(106, 'x');
        CHECK(error_of(delivery(R"({"lmtp": ")" + longest + "\"}")) == "");
        CHECK(error_of(delivery(R"({"lmtp": ")" + longest + "x\"}")).starts_with(
            "/tmp/x.json: delivery.lmtp: " + spec_expected));
        CHECK(error_of(delivery(R"({"lmtp": "unix:/run/lmtp", "domains": ["example.test", "remote.test"]})")) ==
              "/tmp/x.json: delivery.domains[1]: expected a local domain (example.test, other.test), got "
              "\"remote.test\"");
        CHECK(error_of(delivery(R"({"lmtp": "unix:/run/lmtp", "domains": []})")) ==
              "/tmp/x.json: delivery.domains: expected a non-empty array of local domains, or null (every local "
              "domain), got []");
        CHECK(error_of(delivery(R"({"lmtp": "unix:/run/lmtp", "domains": ["example.test", "Example.test"]})")) ==
              "/tmp/x.json: delivery.domains[1]: expected a domain not already listed, got \"Example.test\"");
        CHECK(error_of(delivery(R"({"domains": ["example.test"]})")) ==
              "/tmp/x.json: delivery.domains: expected null, as delivery.lmtp is not set, got [\"example.test\"]");
        CHECK(error_of(delivery(R"({"lmtp": "unix:/run/lmtp", "maildir": true})")) ==
              "/tmp/x.json: delivery.maildir: expected one of the known keys (lmtp, domains), got unknown key "
              "\"maildir\"");
        CHECK(error_of(delivery(R"("unix:/run/lmtp")")) ==
              "/tmp/x.json: delivery: expected an object (keys: lmtp, domains), got \"unix:/run/lmtp\"");
    }
}

TEST_CASE("to_json gives back the same settings")
{
    SUBCASE("a full configuration")
    {
        auto s = parse(full_example, src);
        check_same(parse(to_json(s), src), s);
        const auto doc = nlohmann::json::parse(to_json(s));
        CHECK(doc["relay_networks"] ==
            nlohmann::json::parse(R"(["192.0.2.0/24", "2001:db8::/32", "198.51.100.7/32", "::1/128"])"));
        CHECK(doc["remote"]["tls_policies"] ==
            nlohmann::json::parse(R"({"example.net": "verify", "legacy.test": "none"})"));
        CHECK(doc["relay"]["smarthost"] == "smtp.example.net:587");
    }
    SUBCASE("a recipient delimiter, set or switched off")
    {
        for (auto d : {"-", "+-", ""}) {
            CAPTURE(d);
            auto s = parse(with("/recipient_delimiter", d), src);
            CHECK(s.recipient_delimiter == d);
            check_same(parse(to_json(s), src), s);
        }
    }
    SUBCASE("a smarthost given as an IPv6 literal")
    {
        auto s = parse(R"({"relay": {"smarthost": "[2001:db8::1]:465", "tls": "implicit"}})", src);
        check_same(parse(to_json(s), src), s);
    }
    SUBCASE("defaults only")
    {
        auto s = parse("{}", src);
        check_same(parse(to_json(s), src), s);
    }
    SUBCASE("the embedded default")
    {
        auto s = embedded_default("dev.example.test");
        check_same(parse(to_json(s), src), s);
    }
    SUBCASE("every key is written, pretty-printed")
    {
        const auto text = to_json(parse("{}", src));
        auto doc = nlohmann::json::parse(text);
        for (auto key : {"hostname", "spool_dir", "mail_root", "listeners", "local_domains", "users",
                 "recipient_delimiter", "aliases", "relay_networks", "limits", "dns", "queue", "remote", "relay", "delivery", "tls", "auth", "log_level"}) {
            CAPTURE(key);
            CHECK(doc.contains(key));
        }
        CHECK(doc.size() == 22);
        CHECK(doc["recipient_delimiter"] == "+");
        CHECK(doc["tls"] == nlohmann::json::parse(R"({"certificate": null, "private_key": null})"));
        CHECK(doc["auth"] == nlohmann::json::parse(R"({"plaintext_loopback": false, "any_sender": false,
            "max_failures": 3, "failure_delay_ms": 1000, "ip_max_failures": 10, "ip_window_s": 900})"));
        CHECK(doc["limits"].size() == 9);
        CHECK(doc["limits"]["min_free_space"] == 104857600);
        CHECK(doc["dns"] == nlohmann::json::parse(R"({"servers": []})"));
        CHECK(doc["queue"] == nlohmann::json::parse(R"({"retry_initial_s": 300, "retry_max_s": 3600,
            "give_up_s": 432000, "delay_warning_s": 14400})"));
        CHECK(doc["remote"] == nlohmann::json::parse(R"({"port": 25, "concurrency": 100,
            "concurrency_per_domain": 20, "messages_per_connection": 100, "connect_timeout_s": 30,
            "command_timeout_s": 600, "tls_policy": "may", "tls_policies": {}})"));
        CHECK(doc["relay"] == nlohmann::json::parse(R"({"smarthost": null, "tls": "starttls", "username": null,
            "password_file": null})"));
        CHECK(doc["listeners"][0] == nlohmann::json::parse(R"({"address": "0.0.0.0:25", "mode": "smtp", "tls": "starttls"})"));
        CHECK(text.find("\n  \"hostname\": ") != std::string::npos);
    }
}


TEST_CASE("users carry a password hash and extra sender addresses; plain-text passwords are refused")
{
    const std::string hash = postern::auth::hash_password("secret", postern::auth::min_iterations);
    SUBCASE("a hash and addresses are read and written back")
    {
        auto s = parse(R"({"local_domains": ["example.test"], "users": [{"address": "alice@Example.Test",
            "password": ")" + hash + R"(", "addresses": ["Alice.Smith@Example.Test", "alice@other.test"]}]})",
            src);
        REQUIRE(s.users.size() == 1);
        CHECK(s.users[0].password == hash);
        CHECK(s.users[0].addresses == std::vector<std::string>{"Alice.Smith@example.test", "alice@other.test"});
        CHECK(parse(to_json(s), src).users[0].addresses == s.users[0].addresses);
        CHECK(parse(to_json(s), src).users[0].password == hash);
    }
    SUBCASE("a plain-text password is refused without echoing it")
    {
        auto e = error_of(R"({"local_domains": ["example.test"], "users": [{"address": "alice@example.test",
            "password": "hunter2"}]})");
        CHECK(e.find("/tmp/x.json: users[0].password: expected a password hash from `postern hash-password`") == 0);
        CHECK(e.find("plain-text passwords are refused") != std::string::npos);
        CHECK(e.find("hunter2") == std::string::npos);
    }
    SUBCASE("a hash of too few iterations is refused")
    {
        auto weak = postern::auth::hash_password("secret", 1000);
        auto e = error_of(R"({"local_domains": ["example.test"], "users": [{"address": "alice@example.test",
            "password": ")" + weak + R"("}]})");
        CHECK(e.find("/tmp/x.json: users[0].password: expected a password hash") == 0);
    }
    SUBCASE("the user's own address or a repeat among addresses is refused")
    {
        auto e = error_of(R"({"local_domains": ["example.test"], "users": [{"address": "alice@example.test",
            "addresses": ["ALICE@example.test"]}]})");
        CHECK(e.find("/tmp/x.json: users[0].addresses[0]: expected an address not already listed") == 0);
        e = error_of(R"({"local_domains": ["example.test"], "users": [{"address": "alice@example.test",
            "addresses": ["a@x.test", "A@X.test"]}]})");
        CHECK(e.find("/tmp/x.json: users[0].addresses[1]: expected an address not already listed") == 0);
        e = error_of(R"({"local_domains": ["example.test"], "users": [{"address": "alice@example.test",
            "addresses": ["not an address"]}]})");
        CHECK(e.find("/tmp/x.json: users[0].addresses[0]: expected an address (local@domain)") == 0);
    }
}

TEST_CASE("tls names both a certificate and a key, or neither; auth settings are checked")
{
    SUBCASE("both")
    {
        auto s = parse(R"({"tls": {"certificate": "/etc/c.pem", "private_key": "/etc/k.pem"}})", src);
        CHECK(s.tls.certificate == "/etc/c.pem");
        CHECK(s.tls.private_key == "/etc/k.pem");
    }
    SUBCASE("neither: self-signed")
    {
        auto s = parse(R"({"tls": {}})", src);
        CHECK(s.tls.certificate.empty());
        CHECK(s.tls.private_key.empty());
    }
    SUBCASE("one alone")
    {
        CHECK(error_of(R"({"tls": {"certificate": "/etc/c.pem"}})") ==
              "/tmp/x.json: tls.private_key: expected a non-empty path (the other of certificate and private_key is "
              "set), got nothing");
        CHECK(error_of(R"({"tls": {"private_key": "/etc/k.pem", "certificate": null}})") ==
              "/tmp/x.json: tls.certificate: expected a non-empty path (the other of certificate and private_key "
              "is set), got null");
    }
    SUBCASE("auth values")
    {
        auto s = parse(R"({"auth": {"plaintext_loopback": true, "any_sender": true, "max_failures": 5,
            "failure_delay_ms": 0, "ip_max_failures": 20, "ip_window_s": 60}})", src);
        CHECK(s.auth.plaintext_loopback);
        CHECK(s.auth.any_sender);
        CHECK(s.auth.max_failures == 5);
        CHECK(s.auth.failure_delay == std::chrono::milliseconds(0));
        CHECK(s.auth.ip_max_failures == 20);
        CHECK(s.auth.ip_window == std::chrono::seconds(60));
        CHECK(error_of(R"({"auth": {"any_sender": "yes"}})") ==
              "/tmp/x.json: auth.any_sender: expected true or false, got \"yes\"");
        CHECK(error_of(R"({"auth": {"max_failures": 0}})") ==
              "/tmp/x.json: auth.max_failures: expected an integer from 1 to 1000, got 0");
    }
    SUBCASE("listener modes and TLS")
    {
        auto s = parse(R"({"listeners": [{"address": "127.0.0.1:587", "mode": "submission"},
            {"address": "127.0.0.1:465", "mode": "submission", "tls": "implicit"},
            {"address": "127.0.0.1:25", "tls": "none"},
            {"address": "127.0.0.1:110", "mode": "pop3"},
            {"address": "127.0.0.1:995", "mode": "pop3", "tls": "implicit"}]})", src);
        REQUIRE(s.listeners.size() == 5);
        CHECK(s.listeners[0].mode == listener_mode::submission);
        CHECK(s.listeners[0].tls == listener_tls::starttls);
        CHECK(s.listeners[1].tls == listener_tls::implicit);
        CHECK(s.listeners[2].mode == listener_mode::smtp);
        CHECK(s.listeners[2].tls == listener_tls::none);
        CHECK(s.listeners[3].mode == listener_mode::pop3);
        CHECK(s.listeners[3].tls == listener_tls::starttls); // RFC 2595 STLS
        CHECK(s.listeners[4].mode == listener_mode::pop3);
        CHECK(s.listeners[4].tls == listener_tls::implicit);
    }
}

TEST_CASE("metrics.address: off by default, an IP literal with a port")
{
    CHECK(parse("{}", src).metrics.spec.empty());
    auto s = parse(R"({"metrics": {"address": "127.0.0.1:9025"}})", src);
    CHECK(s.metrics.spec == "127.0.0.1:9025");
    CHECK(s.metrics.host == "127.0.0.1");
    CHECK(s.metrics.port == 9025);
    CHECK(parse(R"({"metrics": {"address": "[::1]:9025"}})", src).metrics.host == "::1");
    CHECK(parse(R"({"metrics": {"address": null}})", src).metrics.spec.empty());
    CHECK(error_of(R"({"metrics": {"address": "localhost:9025"}})").starts_with("/tmp/x.json: metrics.address: expected "));
    CHECK(error_of(R"({"metrics": {"port": 1}})").starts_with("/tmp/x.json: metrics.port: expected one of the known keys (address)"));
}

TEST_CASE("user and group: names for the privilege drop, unset by default, group only with user")
{
    CHECK(parse("{}", src).run_as_user.empty());
    CHECK(parse("{}", src).run_as_group.empty());
    auto s = parse(R"({"user": "postern", "group": "mail"})", src);
    CHECK(s.run_as_user == "postern");
    CHECK(s.run_as_group == "mail");
    CHECK(parse(R"({"user": "_postern-1.x", "group": null})", src).run_as_user == "_postern-1.x");
    const std::string expected = "expected a user or group name (letters, digits, '.', '_', '-', not beginning "
                                 "with '-', at most 32) or null, got ";
    CHECK(error_of(R"({"user": ""})") == "/tmp/x.json: user: " + expected + "\"\"");
    CHECK(error_of(R"({"user": "-x"})") == "/tmp/x.json: user: " + expected + "\"-x\"");
    CHECK(error_of(R"({"user": "a b"})") == "/tmp/x.json: user: " + expected + "\"a b\"");
    CHECK(error_of(R"({"user": 0})") == "/tmp/x.json: user: " + expected + "0");
    CHECK(error_of(R"({"user": "x", "group": "a/b"})") == "/tmp/x.json: group: " + expected + "\"a/b\"");
    CHECK(error_of(R"({"group": "mail"})") == "/tmp/x.json: group: expected a group only together with \"user\", got \"user\" unset");
    CHECK(error_of(R"({"user": "abcdefghijklmnopqrstuvwxyz0123456"})") ==
          "/tmp/x.json: user: " + expected + "\"abcdefghijklmnopqrstuvwxyz0123456\"");
}

TEST_CASE("recipient_delimiter: plus-addressing on with '+' by default, configurable, \"\" for off")
{
    CHECK(parse("{}", src).recipient_delimiter == "+");
    CHECK(embedded_default("dev.example.test").recipient_delimiter == "+");
    CHECK(parse(with("/recipient_delimiter", ""), src).recipient_delimiter.empty());
    CHECK(parse(with("/recipient_delimiter", "+-"), src).recipient_delimiter == "+-");
    SUBCASE("@, routing characters, whitespace, controls and 8-bit octets are refused")
    {
        const std::string expected = "/tmp/x.json: recipient_delimiter: expected a string of delimiter characters "
                                     "(printable ASCII other than @ % ! and space; \"\" turns plus-addressing off), got ";
        for (std::string bad : {"@", "+@", "%", "!", " ", "+\t", "\n", "\x7f", "\xc3\xa9"}) {
            CAPTURE(bad);
            CHECK(error_of(with("/recipient_delimiter", bad)).rfind(expected, 0) == 0);
        }
        CHECK(error_of(with("/recipient_delimiter", "@")) == expected + "\"@\"");
        CHECK(error_of(with("/recipient_delimiter", 1)) == expected + "1");
        CHECK(error_of(with("/recipient_delimiter", nullptr)) == expected + "null");
    }
    SUBCASE("a character given twice is refused")
    {
        CHECK(error_of(with("/recipient_delimiter", "++")) ==
              "/tmp/x.json: recipient_delimiter: expected each delimiter character at most once, got \"++\"");
    }
}

TEST_CASE("a configuration is found by --config, then $POSTERN_CONFIG, then /etc/postern/postern.json")
{
    const std::optional<std::string> flag = std::string("/srv/flag.json");
    CHECK(locate(flag, "/srv/env.json", true) == "/srv/flag.json");
    CHECK(locate(std::nullopt, "/srv/env.json", true) == "/srv/env.json");
    CHECK(locate(std::nullopt, "", true) == std::string(system_config_path));
    CHECK(locate(std::nullopt, nullptr, true) == std::string(system_config_path));
    CHECK(system_config_path == "/etc/postern/postern.json");
    CHECK_FALSE(locate(std::nullopt, nullptr, false).has_value()); // the embedded default
    CHECK_FALSE(locate(std::nullopt, "", false).has_value());
}

TEST_CASE("an alias loop is a configuration error naming the alias and the loop")
{
    const auto aliases = [](const nlohmann::json& a) { return with("/aliases", a); };
    SUBCASE("a -> b -> a")
    {
        CHECK(error_of(aliases({{"a@example.test", {"b@example.test"}}, {"b@example.test", {"a@example.test"}}})) ==
              "/tmp/x.json: aliases[\"a@example.test\"]: expected aliases that do not loop back to themselves, "
              "got the loop a@example.test -> b@example.test -> a@example.test");
    }
    SUBCASE("case-insensitively, through a longer chain, beside other targets")
    {
        CHECK(error_of(aliases({{"a@example.test", {"alice@example.test", "B@Example.TEST"}},
                  {"b@example.test", {"c@example.test"}}, {"c@example.test", {"A@EXAMPLE.test", "x@remote.test"}}})) ==
              "/tmp/x.json: aliases[\"a@example.test\"]: expected aliases that do not loop back to themselves, "
              "got the loop a@example.test -> b@example.test -> c@example.test -> a@example.test");
    }
    SUBCASE("a loop not reachable from the first alias")
    {
        CHECK(error_of(aliases({{"a@example.test", {"alice@example.test"}}, {"p@example.test", {"q@example.test"}},
                  {"q@example.test", {"p@example.test"}}})) ==
              "/tmp/x.json: aliases[\"p@example.test\"]: expected aliases that do not loop back to themselves, "
              "got the loop p@example.test -> q@example.test -> p@example.test");
    }
    SUBCASE("through plus-addressing: list -> list+x is list again")
    {
        CHECK(error_of(aliases({{"list@example.test", {"alice@example.test", "list+x@example.test"}}})) ==
              "/tmp/x.json: aliases[\"list@example.test\"]: expected aliases that do not loop back to themselves, "
              "got the loop list@example.test -> list@example.test");
        CHECK(error_of(aliases({{"a@example.test", {"b+1@example.test"}}, {"b@example.test", {"a+2@example.test"}}}))
                  .find("got the loop a@example.test -> b@example.test -> a@example.test") != std::string::npos);
        // ... but not with extensions off.
        auto off = nlohmann::json::parse(aliases({{"list@example.test", {"alice@example.test", "list+x@example.test"}}}));
        off["recipient_delimiter"] = "";
        CHECK(error_of(off.dump()) == "");
    }
    SUBCASE("no loop: an alias naming itself, a diamond, a user with the delimiter in its name")
    {
        CHECK(error_of(aliases({{"self@example.test", {"self@example.test", "alice@example.test"}}})) == "");
        CHECK(error_of(aliases({{"a@example.test", {"b@example.test", "c@example.test"}},
                  {"b@example.test", {"d@example.test"}}, {"c@example.test", {"d@example.test"}},
                  {"d@example.test", {"alice@example.test"}}})) == "");
        // alice+x is alice (a user), not the alias alice+x would strip to.
        auto doc = nlohmann::json::parse(aliases({{"alice+x@example.test", {"alice@example.test"}}}));
        CHECK(error_of(doc.dump()) == "");
    }
}

}

TEST_SUITE("config") {

TEST_CASE("sendmail.trusted_users: root by default, a list of login names, printed by to_json")
{
    CHECK(parse("{}", src).sendmail.trusted_users == std::vector<std::string>{"root"});
    auto s = parse(R"({"sendmail": {"trusted_users": ["root", "mailman", "www-data"]}})", src);
    CHECK(s.sendmail.trusted_users == std::vector<std::string>{"root", "mailman", "www-data"});
    CHECK(parse(R"({"sendmail": {"trusted_users": []}})", src).sendmail.trusted_users.empty());
    CHECK(nlohmann::json::parse(to_json(parse("{}", src)))["sendmail"] ==
          nlohmann::json::parse(R"({"trusted_users": ["root"]})"));
    CHECK(parse(to_json(s), src).sendmail.trusted_users == s.sendmail.trusted_users);
    SUBCASE("errors name the key and what was expected")
    {
        CHECK(error_of(R"({"sendmail": {"trusted_users": "root"}})") ==
              "/tmp/x.json: sendmail.trusted_users: expected an array of login names, got \"root\"");
        CHECK(error_of(R"({"sendmail": {"trusted_users": ["-x"]}})") ==
              "/tmp/x.json: sendmail.trusted_users[0]: expected a login name (1 to 256 of A-Z a-z 0-9 . _ -, "
              "not starting with '-'), got \"-x\"");
        CHECK(error_of(R"({"sendmail": {"trusted_users": ["root", "root"]}})") ==
              "/tmp/x.json: sendmail.trusted_users[1]: expected a login name not already listed, got \"root\"");
        CHECK(error_of(R"({"sendmail": {"trusted": []}})").find("sendmail.trusted: expected one of the known keys "
                                                               "(trusted_users)") != std::string::npos);
    }
}

}
