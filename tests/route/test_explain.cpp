#include "postern/route/explain.hpp"

#include <map>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

using namespace postern;
using route::verdict;

namespace {

constexpr std::string_view config_text = R"({
  "hostname": "mx.example.test",
  "spool_dir": "/srv/spool",
  "mail_root": "/srv/mail",
  "local_domains": ["example.test", "catchall.test"],
  "users": [ {"address": "alice@example.test"}, {"address": "bob@example.test"} ],
  "aliases": {
    "team@example.test": ["staff@example.test", "carol@remote.test"],
    "staff@example.test": ["alice@example.test", "bob@example.test"],
    "half@example.test": ["alice@example.test", "nobody@example.test"],
    "dead@example.test": ["nobody@example.test"],
    "self@example.test": ["self@example.test", "bob@example.test"]
  }
})";

struct fixture {
    config::settings s;
    route::table t;

    explicit fixture(std::string_view text = config_text)
        : s(config::parse(text, "test.json")), t(s)
    {
    }

    route::explanation run(std::string_view address, const std::map<std::string, route::mx_route>& dns = {}) const
    {
        auto a = mail::parse_address(address);
        REQUIRE(a);
        return route::explain(s, t, *a, dns);
    }

    std::string text(std::string_view address, const std::map<std::string, route::mx_route>& dns = {}) const
    {
        return route::render(run(address, dns));
    }
};

bool has(const std::string& text, std::string_view part)
{
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_SUITE("route") {

TEST_CASE("explain: a local user goes to its Maildir and is accepted")
{
    fixture f;
    auto e = f.run("Alice@Example.TEST");
    CHECK(e.v == verdict::accepted);
    CHECK(e.remote_domains.empty());
    auto text = route::render(e);
    CAPTURE(text);
    CHECK(has(text, "address: Alice@Example.TEST\n"));
    CHECK(has(text, "domain example.test: local, with users"));
    CHECK(has(text, "alice@example.test: user, mailbox alice\n"));
    CHECK(has(text, "  alice@example.test: Maildir /srv/mail/example.test/alice (Delivered-To: alice@example.test)\n"));
    CHECK(has(text, "result: accepted (RCPT 250 2.1.5)\n"));
}

TEST_CASE("explain: a plus tag is stripped, the user reached and the tag kept in Delivered-To")
{
    fixture f;
    auto text = f.text("alice+news@example.test");
    CAPTURE(text);
    CHECK(has(text, "alice+news@example.test: no user or alias of that name; recipient_delimiter \"+\" strips the "
                    "extension \"news\""));
    CHECK(has(text, "alice@example.test: user, mailbox alice"));
    CHECK(has(text, "Maildir /srv/mail/example.test/alice (Delivered-To: alice+news@example.test)"));
    CHECK(f.run("alice+news@example.test").v == verdict::accepted);
}

TEST_CASE("explain: an alias chain is shown step by step, nested, down to every final target")
{
    fixture f;
    auto e = f.run("team@example.test");
    CHECK(e.v == verdict::accepted);
    auto text = route::render(e);
    CAPTURE(text);
    CHECK(has(text, "team@example.test: alias of staff@example.test, carol@remote.test\n"));
    CHECK(has(text, "\n  staff@example.test: alias of alice@example.test, bob@example.test\n"));
    CHECK(has(text, "\n    alice@example.test: user, mailbox alice\n"));
    CHECK(has(text, "\n  carol@remote.test: remote (domain remote.test)\n"));
    CHECK(has(text, "  bob@example.test: Maildir /srv/mail/example.test/bob"));
    CHECK(has(text, "  carol@remote.test: SMTP to the MX hosts of remote.test (not looked up)"));
    CHECK(e.remote_domains == std::vector<std::string>{"remote.test"});
    SUBCASE("an alias reached with an extension does not pass it on")
    {
        auto t2 = f.text("team+x@example.test");
        CAPTURE(t2);
        CHECK(has(t2, "team@example.test: alias of staff@example.test, carol@remote.test (the extension is not passed on)"));
    }
    SUBCASE("an alias naming itself is also its own mailbox")
    {
        auto t3 = f.text("self@example.test");
        CAPTURE(t3);
        CHECK(has(t3, "self@example.test: the alias names itself: also its own mailbox"));
        CHECK(has(t3, "Maildir /srv/mail/example.test/self"));
    }
}

TEST_CASE("explain: unknown users and aliases reaching no one are refused with 550 5.1.1")
{
    fixture f;
    for (std::string a : {"nobody@example.test", "nobody+x@example.test", "dead@example.test"}) {
        CAPTURE(a);
        auto e = f.run(a);
        CHECK(e.v == verdict::refused);
        auto text = route::render(e);
        CAPTURE(text);
        CHECK(has(text, "final targets: none\n"));
        CHECK(has(text, "result: refused: unknown user (RCPT 550 5.1.1 user unknown)\n"));
    }
    CHECK(has(f.text("nobody+x@example.test"), "(nor nobody@example.test without the extension): unknown user"));
    SUBCASE("a partly valid alias is accepted; the missing target is named")
    {
        auto e = f.run("half@example.test");
        CHECK(e.v == verdict::accepted);
        auto text = route::render(e);
        CAPTURE(text);
        CHECK(has(text, "  nobody@example.test: no user or alias of that name: unknown user, bounced at delivery "
                        "(5.1.1) while the other targets get the mail\n"));
        CHECK(has(text, "  alice@example.test: Maildir"));
    }
}

TEST_CASE("explain: routing tricks are refused and never relayed")
{
    fixture f;
    for (std::string a : {"bob%remote.test@example.test", "remote.test!bob@example.test"}) {
        CAPTURE(a);
        auto e = f.run(a);
        CHECK(e.v == verdict::refused);
        CHECK(e.remote_domains.empty());
        auto text = route::render(e);
        CHECK(has(text, "a routing trick, refused and never relayed"));
        CHECK(has(text, "result: refused: routing trick (RCPT 554 5.7.1 relay access denied)"));
    }
}

TEST_CASE("explain: a catch-all domain and bare postmaster")
{
    fixture f;
    auto text = f.text("x.y+tag@catchall.test");
    CAPTURE(text);
    CHECK(has(text, "domain catchall.test: local, without users"));
    CHECK(has(text, "x.y+tag@catchall.test: catch-all domain catchall.test, mailbox x.y+tag"));
    mail::address bare{"postmaster", ""};
    auto e = route::explain(f.s, f.t, bare);
    auto t2 = route::render(e);
    CAPTURE(t2);
    CHECK(e.v == verdict::accepted);
    CHECK(has(t2, "canonical: postmaster@example.test"));
    CHECK(has(t2, "RFC 5321 4.1.1.3"));
}

TEST_CASE("explain: a remote domain shows the MX hosts resolved now, with preferences and addresses")
{
    fixture f;
    route::mx_route r;
    r.ok = true;
    r.hosts = {{10, "mx1.remote.test", {"2001:db8::1", "192.0.2.1"}, {}},
               {20, "mx2.remote.test", {}, "NXDOMAIN"}};
    auto e = f.run("someone@remote.test", {{"remote.test", r}});
    CHECK(e.v == verdict::relay_only);
    CHECK(e.remote_domains == std::vector<std::string>{"remote.test"});
    auto text = route::render(e);
    CAPTURE(text);
    CHECK(has(text, "domain remote.test: not a local domain (remote)"));
    CHECK(has(text, "  someone@remote.test: SMTP to the MX hosts of remote.test, in order:\n"
                    "    MX 10 mx1.remote.test: 2001:db8::1, 192.0.2.1\n"
                    "    MX 20 mx2.remote.test: address lookup failed: NXDOMAIN\n"));
    CHECK(has(text, "result: relayed for authenticated clients and relay_networks (none)"));
    SUBCASE("implicit MX")
    {
        route::mx_route i;
        i.ok = true;
        i.implicit = true;
        i.hosts = {{0, "remote.test", {"192.0.2.9"}, {}}};
        auto t2 = f.text("someone@remote.test", {{"remote.test", i}});
        CHECK(has(t2, "(no MX records: the domain itself, RFC 5321 5.1)"));
        CHECK(has(t2, "MX 0 remote.test: 192.0.2.9"));
    }
    SUBCASE("a domain that does not exist")
    {
        route::mx_route n;
        n.error = "5.1.2 domain remote.test does not exist";
        auto t3 = f.text("someone@remote.test", {{"remote.test", n}});
        CHECK(has(t3, "SMTP to the MX hosts of remote.test: none now: 5.1.2 domain remote.test does not exist"));
    }
    SUBCASE("an address literal is never relayed")
    {
        auto e2 = f.run("someone@[192.0.2.1]");
        CHECK(e2.v == verdict::refused);
        CHECK(e2.remote_domains.empty());
    }
}

TEST_CASE("explain: with a smarthost, remote targets go there and nothing is looked up")
{
    auto doc = std::string(config_text);
    doc.insert(doc.rfind('}'), R"(, "relay": {"smarthost": "smtp.isp.test:587"})");
    fixture f(doc);
    auto e = f.run("someone@remote.test");
    CHECK(e.remote_domains.empty());
    CHECK(has(route::render(e), "someone@remote.test: SMTP via the smarthost smtp.isp.test:587 (relay.smarthost)"));
}

TEST_CASE("explain: local domains delivered over LMTP say so instead of a Maildir")
{
    auto doc = std::string(config_text);
    doc.insert(doc.rfind('}'), R"(, "delivery": {"lmtp": "unix:/run/dovecot/lmtp", "domains": ["example.test"]})");
    fixture f(doc);
    CHECK(has(f.text("alice+x@example.test"), "alice+x@example.test: LMTP unix:/run/dovecot/lmtp (delivery.lmtp), RCPT TO:<alice@example.test>"));
    CHECK(has(f.text("anyone@catchall.test"), "anyone@catchall.test: Maildir /srv/mail/catchall.test/anyone"));
}

TEST_CASE("explain: a loop in a table built without config's loop check is noted where it closes")
{
    auto s = config::parse(config_text, "test.json");
    s.aliases["p@example.test"] = {"q@example.test", "alice@example.test"};
    s.aliases["q@example.test"] = {"p+x@example.test"};
    route::table t(s);
    auto e = route::explain(s, t, *mail::parse_address("p@example.test"));
    auto text = route::render(e);
    CAPTURE(text);
    CHECK(has(text, "\n  q@example.test: alias of p+x@example.test\n"));
    CHECK(has(text, "\n    p@example.test: alias loop: p@example.test again, cut here"));
    CHECK(has(text, "  alice@example.test: Maildir"));
    CHECK(e.v == verdict::accepted);
}

}
