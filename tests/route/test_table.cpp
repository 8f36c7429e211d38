#include "postern/route/table.hpp"

#include <algorithm>
#include <map>
#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "postern/util/error.hpp"

using namespace postern;
using route::kind;
using route::target;
using util::errc;

namespace {

// Hostname mx.example.test is itself a local domain (catch-all: no users).
constexpr std::string_view base_config = R"({
  "hostname": "mx.example.test",
  "spool_dir": "/nonexistent/spool",
  "mail_root": "/nonexistent/mail",
  "local_domains": ["Example.TEST", "catchall.test", "mx.example.test"],
  "users": [ {"address": "alice@example.test"}, {"address": "Bob@example.test"},
             {"address": "carol@example.test"} ],
  "aliases": {
    "team@example.test": ["alice@example.test", "bob@example.test"],
    "all@example.test": ["team@example.test", "alice@example.test"],
    "self@example.test": ["self@example.test", "bob@example.test"],
    "fwd@example.test": ["Someone@Remote.TEST"],
    "mix@example.test": ["alice@example.test", "x@remote.test", "fwd@example.test"]
  }
})";

route::table make_table(std::string_view json_text = base_config)
{
    return route::table(config::parse(json_text, "test.json"));
}

// config::parse refuses alias loops; a table built from settings made
// otherwise must still cut them. The aliases are added after parsing.
route::table make_looping_table(std::string_view json_text,
                                const std::map<std::string, std::vector<std::string>>& aliases)
{
    auto s = config::parse(json_text, "test.json");
    for (const auto& [k, v] : aliases)
        s.aliases[k] = v;
    return route::table(s);
}

mail::address addr(std::string_view s)
{
    auto a = mail::parse_address(s);
    REQUIRE_MESSAGE(a, "parse_address failed for " << std::string(s));
    return *a;
}

const char* name_of(kind k)
{
    switch (k) {
    case kind::local: return "local";
    case kind::alias: return "alias";
    case kind::remote: return "remote";
    case kind::unknown_user: return "unknown_user";
    case kind::routing_trick: return "routing_trick";
    }
    return "?";
}

// classify() as a name, so a failed CHECK prints something readable.
std::string kind_of(const route::table& t, std::string_view s)
{
    return name_of(t.classify(addr(s)));
}

target local_target(std::string_view local, std::string_view domain)
{
    return {true, std::string(local) + "@" + std::string(domain), std::string(domain), std::string(local)};
}

target remote_target(std::string_view address)
{
    return {false, std::string(address), {}, {}};
}

// The targets as printable text, in order.
std::vector<std::string> show(const std::vector<target>& ts)
{
    std::vector<std::string> out;
    for (const auto& t : ts)
        out.push_back((t.local ? "local " : "remote ") + t.address + " " + t.domain + "/" + t.mailbox);
    return out;
}

std::vector<std::string> expanded(const route::table& t, std::string_view s)
{
    auto r = t.expand(addr(s));
    REQUIRE_MESSAGE(r, "expand failed for " << std::string(s) << ": " << r.error().message());
    return show(*r);
}

std::vector<std::string> sorted(std::vector<std::string> v)
{
    std::sort(v.begin(), v.end());
    return v;
}

} // namespace

TEST_SUITE("route") {

TEST_CASE("a configured user at a local domain is delivered to its own mailbox")
{
    auto t = make_table();
    CHECK(kind_of(t, "alice@example.test") == "local");
    CHECK(expanded(t, "alice@example.test") == show({local_target("alice", "example.test")}));
    CHECK(t.is_local_domain("example.test"));
    CHECK(t.is_local_domain("EXAMPLE.test"));
    CHECK_FALSE(t.is_local_domain("remote.test"));
}

TEST_CASE("addresses compare case-insensitively and mailboxes are lower-case")
{
    auto t = make_table();
    for (std::string a : {"Alice@Example.TEST", "ALICE@EXAMPLE.TEST", "alice@example.TEST"}) {
        CAPTURE(a);
        CHECK(kind_of(t, a) == "local");
        CHECK(expanded(t, a) == show({local_target("alice", "example.test")}));
    }
    // A user configured with capitals has a lower-case mailbox.
    CHECK(kind_of(t, "bob@example.test") == "local");
    CHECK(expanded(t, "BOB@example.test") == show({local_target("bob", "example.test")}));
    CHECK(kind_of(t, "Team@EXAMPLE.test") == "alias");
}

TEST_CASE("an unknown user at a domain with users is unknown_user and expands to nothing")
{
    auto t = make_table();
    CHECK(kind_of(t, "nobody@example.test") == "unknown_user");
    auto r = t.expand(addr("nobody@example.test"));
    REQUIRE_FALSE(r);
    CHECK(r.error() == make_error_code(errc::not_found));
}

TEST_CASE("a local domain without users accepts any local part")
{
    auto t = make_table();
    CHECK(kind_of(t, "anyone@catchall.test") == "local");
    CHECK(expanded(t, "Anyone@CatchAll.test") == show({local_target("anyone", "catchall.test")}));
    CHECK(kind_of(t, "x.y+tag@catchall.test") == "local");
    CHECK(expanded(t, "x.y+tag@catchall.test") == show({local_target("x.y+tag", "catchall.test")}));
}

TEST_CASE("postmaster exists at every local domain and bare postmaster goes to the hostname")
{
    auto t = make_table();
    for (std::string a : {"postmaster@example.test", "PostMaster@Example.TEST", "postmaster@catchall.test",
                          "postmaster@mx.example.test"}) {
        CAPTURE(a);
        CHECK(kind_of(t, a) == "local");
    }
    CHECK(expanded(t, "PostMaster@example.test") == show({local_target("postmaster", "example.test")}));
    SUBCASE("bare postmaster")
    {
        mail::address bare{"postmaster", ""};
        auto c = t.canonical(bare);
        CHECK(c.local_part == "postmaster");
        CHECK(c.domain == "mx.example.test");
        CHECK(t.classify(bare) == kind::local);
        auto r = t.expand(bare);
        REQUIRE(r);
        CHECK(show(*r) == show({local_target("postmaster", "mx.example.test")}));
    }
    SUBCASE("bare postmaster when the hostname is not a local domain")
    {
        auto other = make_table(R"({
          "hostname": "relay.example.net",
          "spool_dir": "/nonexistent/spool", "mail_root": "/nonexistent/mail",
          "local_domains": ["first.test", "second.test"]
        })");
        mail::address bare{"Postmaster", ""};
        auto c = other.canonical(bare);
        CHECK(c.domain == "first.test");
        CHECK(other.classify(bare) == kind::local);
        auto r = other.expand(bare);
        REQUIRE(r);
        CHECK(show(*r) == show({local_target("postmaster", "first.test")}));
    }
    SUBCASE("canonical() leaves an address with a domain alone")
    {
        auto c = t.canonical(addr("postmaster@remote.test"));
        CHECK(c.local_part == "postmaster");
        CHECK(c.domain == "remote.test");
        CHECK(kind_of(t, "postmaster@remote.test") == "remote");
    }
}

TEST_CASE("an alias expands recursively to the mailboxes it names")
{
    auto t = make_table();
    CHECK(kind_of(t, "team@example.test") == "alias");
    CHECK(expanded(t, "team@example.test") ==
          show({local_target("alice", "example.test"), local_target("bob", "example.test")}));
    SUBCASE("through another alias, without duplicates")
    {
        // all → team → {alice, bob}, and all → alice again.
        auto r = expanded(t, "all@example.test");
        CHECK(sorted(r) == sorted(show({local_target("alice", "example.test"), local_target("bob", "example.test")})));
    }
}

TEST_CASE("an alias loop is cut where it closes and the other branches are still delivered")
{
    auto t = make_looping_table(base_config, {{"a@example.test", {"b@example.test"}},
                                              {"b@example.test", {"a@example.test", "carol@example.test"}}});
    // a → b → {a (loop), carol}
    CHECK(expanded(t, "a@example.test") == show({local_target("carol", "example.test")}));
    CHECK(expanded(t, "b@example.test") == show({local_target("carol", "example.test")}));
    SUBCASE("a pure loop has no mailbox at all")
    {
        auto loop = make_looping_table(R"({
          "hostname": "mx.example.test",
          "spool_dir": "/nonexistent/spool", "mail_root": "/nonexistent/mail",
          "local_domains": ["example.test"],
          "users": [ {"address": "alice@example.test"} ]
        })", {{"p@example.test", {"q@example.test"}}, {"q@example.test", {"p@example.test"}}});
        auto r = loop.expand(addr("p@example.test"));
        REQUIRE_FALSE(r);
        CHECK(r.error() == make_error_code(errc::not_found));
        // ... so RCPT refuses it.
        CHECK(kind_of(loop, "p@example.test") == "unknown_user");
    }
}

TEST_CASE("an alias that names itself also delivers to its own mailbox")
{
    auto t = make_table();
    auto r = expanded(t, "self@example.test");
    CHECK(sorted(r) == sorted(show({local_target("self", "example.test"), local_target("bob", "example.test")})));
}

TEST_CASE("alias targets outside the local domains are remote targets")
{
    auto t = make_table();
    CHECK(expanded(t, "fwd@example.test") == show({remote_target("Someone@remote.test")}));
    auto r = t.expand(addr("mix@example.test"));
    REQUIRE(r);
    std::size_t remote = 0;
    for (const auto& x : *r)
        remote += x.local ? 0 : 1;
    CHECK(remote == 2);
    CHECK(sorted(show(*r)) == sorted(show({local_target("alice", "example.test"), remote_target("x@remote.test"),
                                          remote_target("Someone@remote.test")})));
}

TEST_CASE("an address at a domain that is not local is remote")
{
    auto t = make_table();
    CHECK(kind_of(t, "bob@remote.test") == "remote");
    CHECK(kind_of(t, "alice@example.test.evil.test") == "remote");
    CHECK(expanded(t, "Bob@Remote.test") == show({remote_target("Bob@Remote.test")}));
    SUBCASE("an address literal is remote")
    {
        CHECK(kind_of(t, "alice@[192.0.2.1]") == "remote");
        CHECK(kind_of(t, "postmaster@[IPv6:2001:db8::1]") == "remote");
        CHECK(expanded(t, "alice@[192.0.2.1]") == show({remote_target("alice@[192.0.2.1]")}));
    }
}

TEST_CASE("routing characters in a local part at a local domain are never routed")
{
    auto t = make_table();
    for (std::string a : {"bob%remote.test@example.test", "remote.test!bob@example.test",
                          "\"bob@remote.test\"@example.test", "bob%remote.test@catchall.test",
                          "\"bob@remote.test\"@catchall.test", "host!bob@mx.example.test"}) {
        CAPTURE(a);
        CHECK(kind_of(t, a) == "routing_trick");
        auto r = t.expand(addr(a));
        CHECK_FALSE(r); // neither a mailbox nor, above all, a remote target
        CHECK(r.error() == make_error_code(errc::not_found));
    }
}

TEST_CASE("a local part that is not a safe directory name has no mailbox at a catch-all domain")
{
    auto t = make_table();
    for (std::string a : {"\"a/b\"@catchall.test", "a/b@catchall.test", "\"../alice\"@catchall.test",
                          "\".hidden\"@catchall.test", "\"..\"@catchall.test", "\".\"@catchall.test"}) {
        CAPTURE(a);
        CHECK(kind_of(t, a) == "unknown_user");
        auto r = t.expand(addr(a));
        CHECK_FALSE(r);
        CHECK(r.error() == make_error_code(errc::not_found));
    }
    CHECK(route::is_safe_mailbox_name("alice"));
    CHECK_FALSE(route::is_safe_mailbox_name(""));
    CHECK_FALSE(route::is_safe_mailbox_name(".x"));
    CHECK_FALSE(route::is_safe_mailbox_name("a/b"));
    CHECK_FALSE(route::is_safe_mailbox_name(std::string_view("a\0b", 3)));
    CHECK_FALSE(route::is_safe_mailbox_name("a\tb"));
    CHECK_FALSE(route::is_safe_mailbox_name("a\x7f"));
}

namespace {

// Plus-addressing: users alice, bob, carol and alias team at example.test;
// catchall.test has no users.
constexpr std::string_view plus_config = R"({
  "hostname": "mx.example.test",
  "spool_dir": "/nonexistent/spool",
  "mail_root": "/nonexistent/mail",
  "local_domains": ["example.test", "catchall.test"],
  "users": [ {"address": "alice@example.test"}, {"address": "bob@example.test"},
             {"address": "alice+exact@example.test"} ],
  "aliases": {
    "team@example.test": ["alice@example.test", "bob@example.test"],
    "list@catchall.test": ["carol@catchall.test"],
    "dead@example.test": ["nobody@example.test", "ghost@example.test"],
    "half@example.test": ["alice@example.test", "nobody@example.test"],
    "tagged@example.test": ["bob+from-tagged@example.test"]
  }
})";

std::string with_delimiter(std::string_view delimiter)
{
    auto doc = nlohmann::json::parse(plus_config);
    doc["recipient_delimiter"] = delimiter;
    return doc.dump();
}

target reached(std::string_view address, std::string_view domain, std::string_view mailbox)
{
    return {true, std::string(address), std::string(domain), std::string(mailbox)};
}

} // namespace

TEST_CASE("alice+tag reaches alice's mailbox and keeps the tag in its address")
{
    auto t = make_table(plus_config);
    CHECK(kind_of(t, "alice+tag@example.test") == "local");
    CHECK(expanded(t, "alice+tag@example.test") ==
          show({reached("alice+tag@example.test", "example.test", "alice")}));
    SUBCASE("case-insensitively, the tag lower-cased like the rest of the address")
    {
        CHECK(expanded(t, "Alice+Tag@EXAMPLE.test") ==
              show({reached("alice+tag@example.test", "example.test", "alice")}));
    }
    SUBCASE("lookup() says how: the user, without the extension")
    {
        auto m = t.lookup(addr("alice+News@example.test"));
        CHECK(m.how == route::match_kind::user);
        CHECK(m.key == "alice@example.test");
        CHECK(m.stripped);
        CHECK(m.extension == "News");
        CHECK(m.delimiter == '+');
    }
    SUBCASE("only the first delimiter splits")
    {
        CHECK(expanded(t, "bob+a+b@example.test") == show({reached("bob+a+b@example.test", "example.test", "bob")}));
    }
    SUBCASE("an unknown base is still unknown")
    {
        CHECK(kind_of(t, "nobody+tag@example.test") == "unknown_user");
        CHECK(kind_of(t, "+tag@example.test") == "unknown_user");
    }
    SUBCASE("postmaster+tag is postmaster")
    {
        CHECK(expanded(t, "postmaster+x@example.test") ==
              show({reached("postmaster+x@example.test", "example.test", "postmaster")}));
    }
}

TEST_CASE("an exact user or alias with the delimiter in its name wins over the stripped name")
{
    auto t = make_table(plus_config);
    auto m = t.lookup(addr("alice+exact@example.test"));
    CHECK(m.how == route::match_kind::user);
    CHECK_FALSE(m.stripped);
    CHECK(expanded(t, "alice+exact@example.test") ==
          show({reached("alice+exact@example.test", "example.test", "alice+exact")}));
}

TEST_CASE("an alias reached with an extension expands without passing the extension on")
{
    auto t = make_table(plus_config);
    CHECK(kind_of(t, "team+x@example.test") == "alias");
    CHECK(expanded(t, "team+x@example.test") ==
          show({local_target("alice", "example.test"), local_target("bob", "example.test")}));
    // An alias at a catch-all domain comes before the catch-all mailbox.
    CHECK(expanded(t, "list+x@catchall.test") == show({local_target("carol", "catchall.test")}));
    // An alias target may carry its own extension: Delivered-To keeps it.
    CHECK(expanded(t, "tagged@example.test") ==
          show({reached("bob+from-tagged@example.test", "example.test", "bob")}));
}

TEST_CASE("a catch-all domain keeps the full local part as the mailbox")
{
    auto t = make_table(plus_config);
    CHECK(kind_of(t, "x.y+tag@catchall.test") == "local");
    CHECK(expanded(t, "x.y+tag@catchall.test") == show({local_target("x.y+tag", "catchall.test")}));
    CHECK(t.lookup(addr("x.y+tag@catchall.test")).how == route::match_kind::catch_all);
}

TEST_CASE("the recipient delimiter is configurable and can be switched off")
{
    SUBCASE("off")
    {
        auto t = make_table(with_delimiter(""));
        CHECK(kind_of(t, "alice+tag@example.test") == "unknown_user");
        CHECK(kind_of(t, "alice@example.test") == "local");
        CHECK(t.recipient_delimiter().empty());
    }
    SUBCASE("'-' instead of '+'")
    {
        auto t = make_table(with_delimiter("-"));
        CHECK(expanded(t, "alice-tag@example.test") ==
              show({reached("alice-tag@example.test", "example.test", "alice")}));
        CHECK(kind_of(t, "alice+tag@example.test") == "unknown_user");
        // Postfix's exceptions for '-': list conventions are never split.
        CHECK(kind_of(t, "bob-request@example.test") == "unknown_user");
    }
    SUBCASE("several delimiters")
    {
        auto t = make_table(with_delimiter("+-"));
        CHECK(kind_of(t, "alice+tag@example.test") == "local");
        CHECK(kind_of(t, "alice-tag@example.test") == "local");
    }
}

TEST_CASE("routing characters stay refused whatever the extension")
{
    auto t = make_table(plus_config);
    for (std::string a : {"alice+bob%remote.test@example.test", "alice+remote.test!bob@example.test",
                          "\"alice+bob@remote.test\"@example.test", "alice+x%y@catchall.test"}) {
        CAPTURE(a);
        CHECK(kind_of(t, a) == "routing_trick");
        CHECK_FALSE(t.expand(addr(a)));
    }
}

TEST_CASE("an alias whose targets all do not exist is an unknown user, so RCPT refuses it")
{
    auto t = make_table(plus_config);
    CHECK(t.lookup(addr("dead@example.test")).how == route::match_kind::alias);
    CHECK(kind_of(t, "dead@example.test") == "unknown_user");
    CHECK(kind_of(t, "dead+x@example.test") == "unknown_user");
    auto r = t.expand(addr("dead@example.test"));
    REQUIRE_FALSE(r);
    CHECK(r.error() == make_error_code(errc::not_found));
}

TEST_CASE("a partly valid alias is accepted and expands to its existing targets only")
{
    auto t = make_table(plus_config);
    CHECK(kind_of(t, "half@example.test") == "alias");
    CHECK(expanded(t, "half@example.test") == show({local_target("alice", "example.test")}));
    SUBCASE("expand() names the targets that reach no one, each once, at any depth")
    {
        std::vector<std::string> missing;
        REQUIRE(t.expand(addr("half@example.test"), &missing));
        CHECK(missing == std::vector<std::string>{"nobody@example.test"});
        missing.clear();
        CHECK_FALSE(t.expand(addr("dead@example.test"), &missing));
        CHECK(missing == std::vector<std::string>{"nobody@example.test", "ghost@example.test"});
        missing.clear();
        // The address itself is not a "missing target": it is the not_found.
        CHECK_FALSE(t.expand(addr("nobody@example.test"), &missing));
        CHECK(missing.empty());
    }
}

TEST_CASE("one target per mailbox: alice and alice+tag in one alias deliver once")
{
    auto t = make_table(R"({
      "hostname": "mx.example.test",
      "spool_dir": "/nonexistent/spool", "mail_root": "/nonexistent/mail",
      "local_domains": ["example.test"],
      "users": [ {"address": "alice@example.test"} ],
      "aliases": { "both@example.test": ["alice+one@example.test", "alice@example.test"] }
    })");
    CHECK(expanded(t, "both@example.test") == show({reached("alice+one@example.test", "example.test", "alice")}));
}

TEST_CASE("alias expansion deeper than max_depth fails with errc::limit")
{
    // chain0 → chain1 → … → chain<n-1> → alice
    auto chain = [](int n) {
        auto doc = nlohmann::json::parse(R"({
          "hostname": "mx.example.test",
          "spool_dir": "/nonexistent/spool", "mail_root": "/nonexistent/mail",
          "local_domains": ["example.test"],
          "users": [ {"address": "alice@example.test"} ]
        })");
        doc["aliases"] = nlohmann::json::object();
        for (int i = 0; i < n; ++i) {
            std::string next = i + 1 < n ? "chain" + std::to_string(i + 1) + "@example.test" : "alice@example.test";
            doc["aliases"]["chain" + std::to_string(i) + "@example.test"] = nlohmann::json::array({next});
        }
        return make_table(doc.dump());
    };
    SUBCASE("a short chain is fine")
    {
        auto t = chain(5);
        CHECK(expanded(t, "chain0@example.test") == show({local_target("alice", "example.test")}));
    }
    SUBCASE("a chain twice as deep as allowed")
    {
        auto t = chain(2 * route::table::max_depth);
        auto r = t.expand(addr("chain0@example.test"));
        REQUIRE_FALSE(r);
        CHECK(r.error() == make_error_code(errc::limit));
        // Entered further down, the rest of the chain is short enough.
        auto tail = "chain" + std::to_string(2 * route::table::max_depth - 3) + "@example.test";
        CHECK(expanded(t, tail) == show({local_target("alice", "example.test")}));
    }
}

}
