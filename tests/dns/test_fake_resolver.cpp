#include "postern/dns/fake_resolver.hpp"

#include <optional>

#include <doctest/doctest.h>

using namespace postern::dns;

namespace {

template <class T>
std::optional<T> run(asio::awaitable<T> a)
{
    asio::io_context io;
    std::optional<T> out;
    asio::co_spawn(io, std::move(a), [&out](std::exception_ptr e, T v) {
        if (!e)
            out = std::move(v);
    });
    io.run_for(std::chrono::seconds(5));
    return out;
}

} // namespace

TEST_SUITE("dns") {

TEST_CASE("fake_resolver answers what it was told, case-insensitively")
{
    fake_resolver r;
    mx_answer mx;
    mx.st = status::ok;
    mx.records = {{10, "mx.example.test"}};
    r.set_mx("Example.Test.", mx);
    address_answer addr;
    addr.st = status::ok;
    addr.addresses = {asio::ip::make_address("192.0.2.1"), asio::ip::make_address("2001:db8::1")};
    r.set_addresses("mx.example.test", addr);
    txt_answer txt;
    txt.st = status::ok;
    txt.records = {"v=spf1 -all"};
    r.set_txt("example.test", txt);

    auto m = run(r.mx("example.test"));
    REQUIRE(m);
    CHECK(m->st == status::ok);
    REQUIRE(m->records.size() == 1);
    CHECK(m->records[0].host == "mx.example.test");

    auto a = run(r.addresses("MX.example.test."));
    REQUIRE(a);
    CHECK(a->addresses.size() == 2);

    auto t = run(r.txt("example.test"));
    REQUIRE(t);
    CHECK(t->records == std::vector<std::string>{"v=spf1 -all"});

    CHECK(r.mx_queries() == 1);
    CHECK(r.address_queries() == 1);
    CHECK(r.txt_queries() == 1);
    CHECK(r.queries() == 3);
}

TEST_CASE("fake_resolver says nxdomain for names it does not know, and counts those too")
{
    fake_resolver r;
    auto m = run(r.mx("unknown.test"));
    REQUIRE(m);
    CHECK(m->st == status::nxdomain);
    auto a = run(r.addresses("unknown.test"));
    REQUIRE(a);
    CHECK(a->st == status::nxdomain);
    CHECK(r.queries() == 2);

    mx_answer temp;
    temp.st = status::temporary;
    temp.error = "SERVFAIL";
    r.set_mx("flaky.test", temp);
    auto f = run(r.mx("flaky.test"));
    REQUIRE(f);
    CHECK(f->st == status::temporary);
    CHECK(f->error == "SERVFAIL");
    CHECK(r.mx_queries() == 2);
}

}
