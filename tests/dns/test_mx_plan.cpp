#include "postern/dns/mx_plan.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <doctest/doctest.h>

using namespace postern::dns;

namespace {

mx_answer ok(std::vector<mx_record> recs)
{
    mx_answer a;
    a.st = status::ok;
    a.records = std::move(recs);
    return a;
}

mx_answer with_status(status s, std::string error = {})
{
    mx_answer a;
    a.st = s;
    a.error = std::move(error);
    return a;
}

const std::vector<std::string> me{"mail.ours.test"};

} // namespace

TEST_SUITE("dns") {

TEST_CASE("MX hosts are tried in preference order")
{
    auto p = plan_mx(ok({{30, "c.example.test"}, {10, "a.example.test"}, {20, "b.example.test"}}),
                     "example.test", me, 1);
    REQUIRE(p.k == plan::kind::hosts);
    CHECK(p.hosts == std::vector<std::string>{"a.example.test", "b.example.test", "c.example.test"});
    CHECK(p.error.empty());
}

TEST_CASE("equal preferences are shuffled, deterministically for a seed")
{
    std::vector<mx_record> recs{{10, "a.t"}, {10, "b.t"}, {10, "c.t"}, {10, "d.t"}, {5, "first.t"}, {20, "last.t"}};
    std::set<std::vector<std::string>> orders;
    for (std::uint64_t seed = 0; seed < 64; ++seed) {
        CAPTURE(seed);
        auto p = plan_mx(ok(recs), "t", me, seed);
        REQUIRE(p.k == plan::kind::hosts);
        REQUIRE(p.hosts.size() == 6);
        CHECK(p.hosts.front() == "first.t");
        CHECK(p.hosts.back() == "last.t");
        std::vector<std::string> mid(p.hosts.begin() + 1, p.hosts.end() - 1);
        std::vector<std::string> sorted = mid;
        std::sort(sorted.begin(), sorted.end());
        CHECK(sorted == std::vector<std::string>{"a.t", "b.t", "c.t", "d.t"});
        orders.insert(mid);
        CHECK(plan_mx(ok(recs), "t", me, seed).hosts == p.hosts); // same seed, same plan
    }
    CHECK(orders.size() > 8); // 24 orders exist; 64 seeds reach many of them
}

TEST_CASE("every host of an equal-preference group comes first about equally often")
{
    std::vector<mx_record> recs{{10, "a.t"}, {10, "b.t"}, {10, "c.t"}};
    std::map<std::string, int> first;
    for (std::uint64_t seed = 0; seed < 3000; ++seed)
        ++first[plan_mx(ok(recs), "t", me, seed).hosts.front()];
    for (const auto& [host, n] : first) {
        const auto& host_case = host; // clang 14: no structured binding in a lambda (CAPTURE)
        CAPTURE(host_case);
        CHECK(n > 800);
        CHECK(n < 1200);
    }
}

TEST_CASE("no MX means the domain itself (implicit MX)")
{
    SUBCASE("nodata")
    {
        auto p = plan_mx(with_status(status::nodata), "Example.TEST.", me, 0);
        REQUIRE(p.k == plan::kind::hosts);
        CHECK(p.hosts == std::vector<std::string>{"example.test"});
    }
    SUBCASE("ok but empty")
    {
        auto p = plan_mx(ok({}), "example.test", me, 0);
        REQUIRE(p.k == plan::kind::hosts);
        CHECK(p.hosts == std::vector<std::string>{"example.test"});
    }
    SUBCASE("implicit MX that is us is a loop")
    {
        auto p = plan_mx(with_status(status::nodata), "mail.ours.test", me, 0);
        CHECK(p.k == plan::kind::loop);
    }
}

TEST_CASE("a null MX bounces at once with 5.1.10")
{
    for (std::string root : {"", "."}) {
        CAPTURE(root);
        auto p = plan_mx(ok({{0, root}}), "nomail.test", me, 0);
        CHECK(p.k == plan::kind::null_mx);
        CHECK(p.hosts.empty());
        CHECK(p.error.rfind("5.1.10", 0) == 0);
    }
    SUBCASE("a root target among real hosts is dropped, the others used")
    {
        auto p = plan_mx(ok({{0, ""}, {10, "mx.test"}}), "d.test", me, 0);
        REQUIRE(p.k == plan::kind::hosts);
        CHECK(p.hosts == std::vector<std::string>{"mx.test"});
    }
}

TEST_CASE("NXDOMAIN bounces with 5.1.2 and DNS trouble retries with 4.4.3")
{
    auto nx = plan_mx(with_status(status::nxdomain, "no such domain"), "gone.test", me, 0);
    CHECK(nx.k == plan::kind::nxdomain);
    CHECK(nx.error.rfind("5.1.2", 0) == 0);
    CHECK(nx.error.find("gone.test") != std::string::npos);
    auto t = plan_mx(with_status(status::temporary, "timeout"), "slow.test", me, 0);
    CHECK(t.k == plan::kind::temporary);
    CHECK(t.error.rfind("4.4.3", 0) == 0);
    CHECK(t.error.find("timeout") != std::string::npos);
}

TEST_CASE("an MX pointing back at us drops us and every worse host")
{
    SUBCASE("we are the backup MX: only better hosts remain")
    {
        auto p = plan_mx(ok({{10, "primary.test"}, {20, "MAIL.OURS.TEST."}, {30, "tertiary.test"}, {20, "peer.test"}}),
                         "d.test", me, 0);
        REQUIRE(p.k == plan::kind::hosts);
        CHECK(p.hosts == std::vector<std::string>{"primary.test"});
    }
    SUBCASE("we are the best MX: a loop, 5.4.6")
    {
        auto p = plan_mx(ok({{10, "mail.ours.test"}, {20, "backup.test"}}), "d.test", me, 0);
        CHECK(p.k == plan::kind::loop);
        CHECK(p.hosts.empty());
        CHECK(p.error.rfind("5.4.6", 0) == 0);
    }
    SUBCASE("equal preference to us is dropped too")
    {
        auto p = plan_mx(ok({{10, "mail.ours.test"}, {10, "twin.test"}}), "d.test", me, 0);
        CHECK(p.k == plan::kind::loop);
    }
    SUBCASE("any of our names counts, with a trailing dot in our list")
    {
        auto p = plan_mx(ok({{5, "alias.ours.test"}, {10, "x.test"}}), "d.test",
                         {"mail.ours.test", "Alias.Ours.Test."}, 0);
        CHECK(p.k == plan::kind::loop);
    }
    SUBCASE("not us: nothing dropped")
    {
        auto p = plan_mx(ok({{5, "mail.ours.test.evil"}, {10, "x.test"}}), "d.test", me, 0);
        REQUIRE(p.k == plan::kind::hosts);
        CHECK(p.hosts.size() == 2);
    }
}

TEST_CASE("malformed MX hosts and IP literals are dropped")
{
    auto p = plan_mx(ok({{1, "192.0.2.1"}, {2, "bad..name"}, {3, "-dash.test"}, {4, "sp ace.test"},
                         {5, "[192.0.2.1]"}, {6, "2001:db8::1"}, {7, std::string(64, 'a') + ".test"},
                         {8, "Good.Example.Test."}, {9, "ok-host.1test"}}),
                     "d.test", me, 0);
    REQUIRE(p.k == plan::kind::hosts);
    CHECK(p.hosts == std::vector<std::string>{"good.example.test", "ok-host.1test"});

    SUBCASE("nothing usable left: retry later")
    {
        auto q = plan_mx(ok({{10, "192.0.2.1"}, {20, "a..b"}}), "d.test", me, 0);
        CHECK(q.k == plan::kind::temporary);
        CHECK(q.error.rfind("4.4.3", 0) == 0);
    }
}

TEST_CASE("valid_mx_host follows host name syntax")
{
    CHECK(valid_mx_host("mx.example.test"));
    CHECK(valid_mx_host("mx.example.test."));
    CHECK(valid_mx_host("localhost"));
    CHECK(valid_mx_host("a_b.example.test"));
    CHECK(valid_mx_host(std::string(63, 'a') + ".test"));
    CHECK_FALSE(valid_mx_host(std::string(64, 'a') + ".test"));
    CHECK_FALSE(valid_mx_host(std::string(250, 'a') + ".test"));
    CHECK_FALSE(valid_mx_host(""));
    CHECK_FALSE(valid_mx_host("."));
    CHECK_FALSE(valid_mx_host("a..b"));
    CHECK_FALSE(valid_mx_host(".a"));
    CHECK_FALSE(valid_mx_host("a-.b"));
    CHECK_FALSE(valid_mx_host("10.0.0.1"));
    CHECK_FALSE(valid_mx_host("mx\x01.test"));
}

TEST_CASE("duplicate hosts are tried once, at their best preference")
{
    auto p = plan_mx(ok({{20, "a.test"}, {10, "b.test"}, {30, "A.test"}}), "d.test", me, 0);
    REQUIRE(p.k == plan::kind::hosts);
    CHECK(p.hosts == std::vector<std::string>{"b.test", "a.test"});
}

TEST_CASE("the plan is bounded")
{
    std::vector<mx_record> many;
    for (int i = 0; i < 100; ++i)
        many.push_back({static_cast<std::uint16_t>(i), "mx" + std::to_string(i) + ".test"});
    auto p = plan_mx(ok(many), "d.test", me, 0);
    CHECK(p.hosts.size() == max_plan_hosts);
    CHECK(p.hosts.front() == "mx0.test");
}

TEST_CASE("plan kinds have names")
{
    CHECK(std::string(to_string(plan::kind::loop)) == "loop");
    CHECK(std::string(to_string(plan::kind::null_mx)) == "null_mx");
}

}
