#include "postern/dns/ares_resolver.hpp"

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/ip/udp.hpp>
#include <asio/read.hpp>
#include <doctest/doctest.h>

#include "postern/dns/mx_plan.hpp"
#include "postern/util/strings.hpp"

using namespace postern;
using namespace postern::dns;
using namespace std::chrono_literals;

namespace {

// ---- a tiny authoritative DNS responder on 127.0.0.1 (UDP and TCP, same port) ----

constexpr std::uint16_t t_a = 1, t_mx = 15, t_txt = 16, t_aaaa = 28, t_soa = 6;

using bytes = std::vector<unsigned char>;

void put16(bytes& b, unsigned v)
{
    b.push_back(static_cast<unsigned char>(v >> 8));
    b.push_back(static_cast<unsigned char>(v));
}

void put32(bytes& b, std::uint32_t v)
{
    put16(b, v >> 16);
    put16(b, v & 0xffff);
}

void put_name(bytes& b, const std::string& name)
{
    for (auto label : util::split(name, '.')) {
        if (label.empty())
            continue;
        b.push_back(static_cast<unsigned char>(label.size()));
        b.insert(b.end(), label.begin(), label.end());
    }
    b.push_back(0);
}

struct rr {
    std::uint16_t type;
    std::uint32_t ttl;
    bytes rdata;
};

rr mx(std::uint16_t pref, const std::string& host, std::uint32_t ttl = 300)
{
    rr r{t_mx, ttl, {}};
    put16(r.rdata, pref);
    put_name(r.rdata, host);
    return r;
}

rr a(const std::string& ip, std::uint32_t ttl = 300)
{
    auto b = asio::ip::make_address_v4(ip).to_bytes();
    return {t_a, ttl, bytes(b.begin(), b.end())};
}

rr aaaa(const std::string& ip, std::uint32_t ttl = 300)
{
    auto b = asio::ip::make_address_v6(ip).to_bytes();
    return {t_aaaa, ttl, bytes(b.begin(), b.end())};
}

rr txt(const std::vector<std::string>& strings, std::uint32_t ttl = 300)
{
    rr r{t_txt, ttl, {}};
    for (const auto& s : strings) {
        r.rdata.push_back(static_cast<unsigned char>(s.size()));
        r.rdata.insert(r.rdata.end(), s.begin(), s.end());
    }
    return r;
}

enum class behaviour { answer, truncate_udp, servfail, refused, nxdomain, drop };

struct entry {
    behaviour how = behaviour::answer;
    std::vector<rr> answers;    // empty with behaviour::answer: NODATA
    std::uint32_t soa_ttl = 60; // negative answers carry an SOA: min(TTL, MINIMUM)
    std::uint32_t soa_minimum = 60;
    bool soa = true;
};

class responder {
public:
    explicit responder(asio::io_context& io) : io_(io), udp_(io), tcp_(io)
    {
        // Same port for both: take an ephemeral UDP port, then bind TCP to it.
        for (int attempt = 0; attempt < 20; ++attempt) {
            udp_ = asio::ip::udp::socket(io_, {asio::ip::make_address("127.0.0.1"), 0});
            port_ = udp_.local_endpoint().port();
            std::error_code ec;
            tcp_ = asio::ip::tcp::acceptor(io_);
            tcp_.open(asio::ip::tcp::v4(), ec);
            if (!ec)
                tcp_.bind({asio::ip::make_address("127.0.0.1"), port_}, ec);
            if (!ec)
                tcp_.listen(16, ec);
            if (!ec)
                break;
        }
        REQUIRE(tcp_.is_open());
        receive();
        accept();
    }

    std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
    void set(const std::string& name, std::uint16_t type, entry e) { zone_[{name, type}] = std::move(e); }
    std::size_t hits(const std::string& name, std::uint16_t type) const
    {
        auto it = hits_.find({name, type});
        return it == hits_.end() ? 0 : it->second;
    }
    std::size_t udp_queries() const { return udp_queries_; }
    std::size_t tcp_queries() const { return tcp_queries_; }
    std::function<void()> on_query; // called after each query is counted

private:
    struct tcp_conn {
        explicit tcp_conn(asio::ip::tcp::socket s) : sock(std::move(s)) {}
        asio::ip::tcp::socket sock;
        unsigned char len[2]{};
        bytes msg;
        bytes out;
    };

    void receive()
    {
        udp_.async_receive_from(asio::buffer(buf_), peer_, [this](std::error_code ec, std::size_t n) {
            if (ec)
                return;
            ++udp_queries_;
            auto reply = answer(bytes(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(n)), false);
            if (reply) {
                auto out = std::make_shared<bytes>(std::move(*reply));
                udp_.async_send_to(asio::buffer(*out), peer_, [out](std::error_code, std::size_t) {});
            }
            if (on_query)
                on_query();
            receive();
        });
    }

    void accept()
    {
        tcp_.async_accept([this](std::error_code ec, asio::ip::tcp::socket s) {
            if (ec)
                return;
            read_tcp(std::make_shared<tcp_conn>(std::move(s)));
            accept();
        });
    }

    void read_tcp(std::shared_ptr<tcp_conn> c)
    {
        asio::async_read(c->sock, asio::buffer(c->len), [this, c](std::error_code ec, std::size_t) {
            if (ec)
                return;
            c->msg.resize((std::size_t{c->len[0]} << 8) | c->len[1]);
            asio::async_read(c->sock, asio::buffer(c->msg), [this, c](std::error_code ec2, std::size_t) {
                if (ec2)
                    return;
                ++tcp_queries_;
                auto reply = answer(c->msg, true);
                if (on_query)
                    on_query();
                if (!reply)
                    return read_tcp(c);
                c->out.clear();
                put16(c->out, static_cast<unsigned>(reply->size()));
                c->out.insert(c->out.end(), reply->begin(), reply->end());
                asio::async_write(c->sock, asio::buffer(c->out), [this, c](std::error_code ec3, std::size_t) {
                    if (!ec3)
                        read_tcp(c);
                });
            });
        });
    }

    // The reply to one query, or nothing (drop).
    std::optional<bytes> answer(const bytes& q, bool over_tcp)
    {
        if (q.size() < 12)
            return std::nullopt;
        std::size_t off = 12;
        std::string name;
        while (off < q.size() && q[off] != 0) {
            std::size_t len = q[off];
            if (!name.empty())
                name += '.';
            name.append(q.begin() + static_cast<std::ptrdiff_t>(off + 1),
                        q.begin() + static_cast<std::ptrdiff_t>(off + 1 + len));
            off += 1 + len;
        }
        const std::size_t qend = off + 5; // root label, type, class
        if (qend > q.size())
            return std::nullopt;
        const auto type = static_cast<std::uint16_t>((q[off + 1] << 8) | q[off + 2]);
        name = util::to_lower(name);
        ++hits_[{name, type}];

        entry e;
        if (auto it = zone_.find({name, type}); it != zone_.end())
            e = it->second;
        else
            e.how = behaviour::nxdomain;

        unsigned rcode = 0;
        bool tc = false;
        const std::vector<rr>* answers = &e.answers;
        const std::vector<rr> none;
        switch (e.how) {
        case behaviour::drop:
            return std::nullopt;
        case behaviour::answer:
            break;
        case behaviour::truncate_udp:
            if (!over_tcp) {
                tc = true;
                answers = &none;
            }
            break;
        case behaviour::servfail:
            rcode = 2;
            answers = &none;
            break;
        case behaviour::refused:
            rcode = 5;
            answers = &none;
            break;
        case behaviour::nxdomain:
            rcode = 3;
            answers = &none;
            break;
        }
        const bool negative = !tc && (rcode == 3 || (rcode == 0 && answers->empty())) && e.soa;

        bytes r(q.begin(), q.begin() + 2); // id
        r.push_back(static_cast<unsigned char>(0x80 | (q[2] & 0x79) | 0x04 | (tc ? 0x02 : 0))); // QR, opcode, AA, TC, RD
        r.push_back(static_cast<unsigned char>(0x80 | rcode));                                  // RA, RCODE
        put16(r, 1);
        put16(r, static_cast<unsigned>(answers->size()));
        put16(r, negative ? 1 : 0);
        put16(r, 0);
        r.insert(r.end(), q.begin() + 12, q.begin() + static_cast<std::ptrdiff_t>(qend)); // question echo
        for (const auto& x : *answers) {
            put16(r, 0xC00C); // the name: a pointer to the question's
            put16(r, x.type);
            put16(r, 1);
            put32(r, x.ttl);
            put16(r, static_cast<unsigned>(x.rdata.size()));
            r.insert(r.end(), x.rdata.begin(), x.rdata.end());
        }
        if (negative) {
            bytes soa;
            put_name(soa, "ns.test");
            put_name(soa, "hostmaster.test");
            put32(soa, 1);    // serial
            put32(soa, 3600); // refresh
            put32(soa, 600);  // retry
            put32(soa, 86400);
            put32(soa, e.soa_minimum);
            put16(r, 0xC00C);
            put16(r, t_soa);
            put16(r, 1);
            put32(r, e.soa_ttl);
            put16(r, static_cast<unsigned>(soa.size()));
            r.insert(r.end(), soa.begin(), soa.end());
        }
        return r;
    }

    asio::io_context& io_;
    asio::ip::udp::socket udp_;
    asio::ip::tcp::acceptor tcp_;
    std::uint16_t port_ = 0;
    std::array<unsigned char, 4096> buf_{};
    asio::ip::udp::endpoint peer_;
    std::map<std::pair<std::string, std::uint16_t>, entry> zone_;
    std::map<std::pair<std::string, std::uint16_t>, std::size_t> hits_;
    std::size_t udp_queries_ = 0;
    std::size_t tcp_queries_ = 0;
};

// Runs one lookup to completion; every wait is bounded.
template <class T>
std::optional<T> run(asio::io_context& io, asio::awaitable<T> aw, std::chrono::seconds limit = 5s)
{
    std::optional<T> out;
    asio::co_spawn(io, std::move(aw), [&out, &io](std::exception_ptr e, T v) {
        if (!e)
            out = std::move(v);
        io.stop();
    });
    io.restart();
    io.run_for(limit);
    return out;
}

struct fixture {
    explicit fixture(std::chrono::milliseconds timeout = 2000ms, int tries = 1)
        : res(std::make_unique<ares_resolver>(io, std::vector<std::string>{dns.server()}, timeout, tries, clock))
    {
    }
    asio::io_context io;
    util::manual_clock clock{util::from_unix_seconds(1'000'000)};
    responder dns{io};
    std::unique_ptr<ares_resolver> res;
};

std::vector<std::string> strings(const std::vector<asio::ip::address>& v)
{
    std::vector<std::string> out;
    for (const auto& x : v)
        out.push_back(x.to_string());
    return out;
}

} // namespace

TEST_SUITE("dns") {

TEST_CASE("MX records come back in answer order with their preferences")
{
    fixture f;
    f.dns.set("example.test", t_mx, {behaviour::answer, {mx(20, "b.example.test"), mx(10, "a.example.test"), mx(30, "c.example.test")}});
    auto m = run(f.io, f.res->mx("Example.TEST."));
    REQUIRE(m);
    CHECK(m->st == status::ok);
    REQUIRE(m->records.size() == 3);
    CHECK(m->records[0].preference == 20);
    CHECK(m->records[0].host == "b.example.test");
    CHECK(m->records[1].host == "a.example.test");
    CHECK(m->records[2].preference == 30);

    auto p = plan_mx(*m, "example.test", {"me.test"}, 7);
    REQUIRE(p.k == plan::kind::hosts);
    CHECK(p.hosts == std::vector<std::string>{"a.example.test", "b.example.test", "c.example.test"});
}

TEST_CASE("a null MX arrives as a root target and plans as null_mx")
{
    fixture f;
    f.dns.set("nomail.test", t_mx, {behaviour::answer, {mx(0, "")}});
    auto m = run(f.io, f.res->mx("nomail.test"));
    REQUIRE(m);
    CHECK(m->st == status::ok);
    REQUIRE(m->records.size() == 1);
    CHECK(m->records[0].host.empty());
    CHECK(plan_mx(*m, "nomail.test", {}, 0).k == plan::kind::null_mx);
}

TEST_CASE("addresses asks A and AAAA together, IPv6 first")
{
    fixture f;
    f.dns.set("mx.example.test", t_a, {behaviour::answer, {a("192.0.2.1"), a("192.0.2.2")}});
    f.dns.set("mx.example.test", t_aaaa, {behaviour::answer, {aaaa("2001:db8::25")}});
    auto r = run(f.io, f.res->addresses("mx.example.test"));
    REQUIRE(r);
    CHECK(r->st == status::ok);
    CHECK(strings(r->addresses) == std::vector<std::string>{"2001:db8::25", "192.0.2.1", "192.0.2.2"});
    CHECK(f.dns.hits("mx.example.test", t_a) == 1);
    CHECK(f.dns.hits("mx.example.test", t_aaaa) == 1);

    SUBCASE("one family missing is still ok")
    {
        f.dns.set("v4only.test", t_a, {behaviour::answer, {a("198.51.100.7")}});
        f.dns.set("v4only.test", t_aaaa, {behaviour::answer, {}});
        auto v4 = run(f.io, f.res->addresses("v4only.test"));
        REQUIRE(v4);
        CHECK(v4->st == status::ok);
        CHECK(strings(v4->addresses) == std::vector<std::string>{"198.51.100.7"});
    }
    SUBCASE("neither family: nodata")
    {
        f.dns.set("empty.test", t_a, {behaviour::answer, {}});
        f.dns.set("empty.test", t_aaaa, {behaviour::answer, {}});
        auto none = run(f.io, f.res->addresses("empty.test"));
        REQUIRE(none);
        CHECK(none->st == status::nodata);
    }
    SUBCASE("one family failing temporarily, the other empty: temporary")
    {
        f.dns.set("half.test", t_a, {behaviour::answer, {}});
        f.dns.set("half.test", t_aaaa, {behaviour::servfail, {}});
        auto half = run(f.io, f.res->addresses("half.test"));
        REQUIRE(half);
        CHECK(half->st == status::temporary);
    }
    SUBCASE("unknown name: nxdomain")
    {
        auto nx = run(f.io, f.res->addresses("nowhere.test"));
        REQUIRE(nx);
        CHECK(nx->st == status::nxdomain);
    }
}

TEST_CASE("TXT records join their strings")
{
    fixture f;
    f.dns.set("example.test", t_txt, {behaviour::answer, {txt({"v=spf1 ", "ip4:192.0.2.0/24 -all"}), txt({"other"})}});
    auto t = run(f.io, f.res->txt("example.test"));
    REQUIRE(t);
    CHECK(t->st == status::ok);
    CHECK(t->records == std::vector<std::string>{"v=spf1 ip4:192.0.2.0/24 -all", "other"});
}

TEST_CASE("NXDOMAIN, NODATA and server failures map to their statuses")
{
    fixture f;
    SUBCASE("NXDOMAIN")
    {
        auto m = run(f.io, f.res->mx("gone.test"));
        REQUIRE(m);
        CHECK(m->st == status::nxdomain);
        CHECK(plan_mx(*m, "gone.test", {}, 0).k == plan::kind::nxdomain);
    }
    SUBCASE("NODATA")
    {
        f.dns.set("bare.test", t_mx, {behaviour::answer, {}});
        auto m = run(f.io, f.res->mx("bare.test"));
        REQUIRE(m);
        CHECK(m->st == status::nodata);
        auto p = plan_mx(*m, "bare.test", {}, 0);
        CHECK(p.hosts == std::vector<std::string>{"bare.test"});
    }
    SUBCASE("SERVFAIL")
    {
        f.dns.set("broken.test", t_mx, {behaviour::servfail, {}});
        auto m = run(f.io, f.res->mx("broken.test"));
        REQUIRE(m);
        CHECK(m->st == status::temporary);
        CHECK_FALSE(m->error.empty());
    }
    SUBCASE("REFUSED")
    {
        f.dns.set("refused.test", t_mx, {behaviour::refused, {}});
        auto m = run(f.io, f.res->mx("refused.test"));
        REQUIRE(m);
        CHECK(m->st == status::temporary);
    }
    SUBCASE("invalid name")
    {
        auto m = run(f.io, f.res->mx(std::string(300, 'a')));
        REQUIRE(m);
        CHECK(m->st == status::nxdomain);
        CHECK(f.dns.udp_queries() == 0);
    }
}

TEST_CASE("a server that never answers gives a temporary failure, in bounded time")
{
    fixture f(150ms, 1);
    f.dns.set("silent.test", t_mx, {behaviour::drop, {}});
    const auto start = std::chrono::steady_clock::now();
    auto m = run(f.io, f.res->mx("silent.test"));
    const auto took = std::chrono::steady_clock::now() - start;
    REQUIRE(m);
    CHECK(m->st == status::temporary);
    CHECK(took < 3s);
    CHECK(f.dns.hits("silent.test", t_mx) == 1);

    SUBCASE("tries counts attempts")
    {
        fixture g(100ms, 2);
        g.dns.set("silent.test", t_mx, {behaviour::drop, {}});
        auto m2 = run(g.io, g.res->mx("silent.test"));
        REQUIRE(m2);
        CHECK(m2->st == status::temporary);
        CHECK(g.dns.hits("silent.test", t_mx) == 2);
    }
}

TEST_CASE("a truncated UDP answer is retried over TCP")
{
    fixture f;
    std::vector<rr> many;
    for (int i = 0; i < 150; ++i)
        many.push_back(mx(static_cast<std::uint16_t>(i), "mx" + std::to_string(i) + ".big.test"));
    f.dns.set("big.test", t_mx, {behaviour::truncate_udp, many});
    auto m = run(f.io, f.res->mx("big.test"));
    REQUIRE(m);
    CHECK(m->st == status::ok);
    CHECK(f.dns.udp_queries() == 1);
    CHECK(f.dns.tcp_queries() == 1);
    CHECK(m->records.size() == ares_resolver::max_records); // bounded
    CHECK(m->records.front().host == "mx0.big.test");

    SUBCASE("the TCP connection serves the next truncated answer too")
    {
        f.dns.set("mx.big.test", t_a, {behaviour::truncate_udp, {a("192.0.2.9")}});
        f.dns.set("mx.big.test", t_aaaa, {behaviour::truncate_udp, {aaaa("2001:db8::9")}});
        auto r = run(f.io, f.res->addresses("mx.big.test"));
        REQUIRE(r);
        CHECK(strings(r->addresses) == std::vector<std::string>{"2001:db8::9", "192.0.2.9"});
        CHECK(f.dns.tcp_queries() == 3);
    }
}

TEST_CASE("answers are cached for their smallest TTL")
{
    fixture f;
    f.dns.set("example.test", t_mx, {behaviour::answer, {mx(10, "a.example.test", 300), mx(20, "b.example.test", 100)}});
    REQUIRE(run(f.io, f.res->mx("example.test")));
    CHECK(f.dns.hits("example.test", t_mx) == 1);

    auto again = run(f.io, f.res->mx("EXAMPLE.test."));
    REQUIRE(again);
    CHECK(again->records.size() == 2);
    CHECK(f.dns.hits("example.test", t_mx) == 1); // from the cache

    f.clock.advance(99s);
    REQUIRE(run(f.io, f.res->mx("example.test")));
    CHECK(f.dns.hits("example.test", t_mx) == 1);

    f.clock.advance(2s);
    REQUIRE(run(f.io, f.res->mx("example.test")));
    CHECK(f.dns.hits("example.test", t_mx) == 2);

    SUBCASE("addresses too, for the smaller TTL of the two families")
    {
        f.dns.set("h.test", t_a, {behaviour::answer, {a("192.0.2.1", 50)}});
        f.dns.set("h.test", t_aaaa, {behaviour::answer, {aaaa("2001:db8::1", 500)}});
        REQUIRE(run(f.io, f.res->addresses("h.test")));
        f.clock.advance(49s);
        REQUIRE(run(f.io, f.res->addresses("h.test")));
        CHECK(f.dns.hits("h.test", t_a) == 1);
        f.clock.advance(2s);
        REQUIRE(run(f.io, f.res->addresses("h.test")));
        CHECK(f.dns.hits("h.test", t_a) == 2);
        CHECK(f.dns.hits("h.test", t_aaaa) == 2);
    }
    SUBCASE("TTLs are capped at max_ttl")
    {
        f.dns.set("long.test", t_txt, {behaviour::answer, {txt({"x"}, 86400)}});
        REQUIRE(run(f.io, f.res->txt("long.test")));
        f.clock.advance(ares_resolver::max_ttl + 1s);
        REQUIRE(run(f.io, f.res->txt("long.test")));
        CHECK(f.dns.hits("long.test", t_txt) == 2);
    }
    SUBCASE("a zero TTL is not cached")
    {
        f.dns.set("zero.test", t_txt, {behaviour::answer, {txt({"x"}, 0)}});
        REQUIRE(run(f.io, f.res->txt("zero.test")));
        REQUIRE(run(f.io, f.res->txt("zero.test")));
        CHECK(f.dns.hits("zero.test", t_txt) == 2);
    }
}

TEST_CASE("negative answers are cached for the SOA's negative TTL, failures never")
{
    fixture f;
    SUBCASE("NXDOMAIN")
    {
        f.dns.set("gone.test", t_mx, {behaviour::nxdomain, {}, 120, 30});
        REQUIRE(run(f.io, f.res->mx("gone.test")));
        f.clock.advance(29s);
        auto m = run(f.io, f.res->mx("gone.test"));
        REQUIRE(m);
        CHECK(m->st == status::nxdomain);
        CHECK(f.dns.hits("gone.test", t_mx) == 1);
        f.clock.advance(2s);
        REQUIRE(run(f.io, f.res->mx("gone.test")));
        CHECK(f.dns.hits("gone.test", t_mx) == 2);
    }
    SUBCASE("NODATA, capped at negative_ttl")
    {
        f.dns.set("bare.test", t_mx, {behaviour::answer, {}, 86400, 86400});
        REQUIRE(run(f.io, f.res->mx("bare.test")));
        f.clock.advance(ares_resolver::negative_ttl - 1s);
        REQUIRE(run(f.io, f.res->mx("bare.test")));
        CHECK(f.dns.hits("bare.test", t_mx) == 1);
        f.clock.advance(2s);
        REQUIRE(run(f.io, f.res->mx("bare.test")));
        CHECK(f.dns.hits("bare.test", t_mx) == 2);
    }
    SUBCASE("without an SOA nothing negative is cached (RFC 2308 5)")
    {
        entry e{behaviour::nxdomain, {}, 60, 60, false};
        f.dns.set("nosoa.test", t_mx, e);
        REQUIRE(run(f.io, f.res->mx("nosoa.test")));
        REQUIRE(run(f.io, f.res->mx("nosoa.test")));
        CHECK(f.dns.hits("nosoa.test", t_mx) == 2);
    }
    SUBCASE("SERVFAIL")
    {
        f.dns.set("broken.test", t_mx, {behaviour::servfail, {}});
        REQUIRE(run(f.io, f.res->mx("broken.test")));
        REQUIRE(run(f.io, f.res->mx("broken.test")));
        CHECK(f.dns.hits("broken.test", t_mx) == 2);
        CHECK(f.res->cache_size() == 0);
    }
}

TEST_CASE("concurrent lookups all complete")
{
    fixture f;
    constexpr int n = 40;
    for (int i = 0; i < n; ++i) {
        auto name = "d" + std::to_string(i) + ".test";
        f.dns.set(name, t_mx, {i % 4 == 0 ? behaviour::truncate_udp : behaviour::answer, {mx(10, "mx." + name)}});
    }
    int done = 0;
    std::vector<std::string> hosts(n);
    for (int i = 0; i < n; ++i) {
        asio::co_spawn(f.io, f.res->mx("d" + std::to_string(i) + ".test"),
                       [&done, &hosts, &f, i](std::exception_ptr e, mx_answer m) {
                           if (!e && m.st == status::ok && m.records.size() == 1)
                               hosts[static_cast<std::size_t>(i)] = m.records[0].host;
                           if (++done == n)
                               f.io.stop();
                       });
    }
    f.io.run_for(10s);
    CHECK(done == n);
    for (int i = 0; i < n; ++i) {
        CAPTURE(i);
        CHECK(hosts[static_cast<std::size_t>(i)] == "mx.d" + std::to_string(i) + ".test");
    }
}

TEST_CASE("a lookup in flight when the resolver is destroyed completes as temporary")
{
    fixture f(5000ms, 1);
    f.dns.set("silent.test", t_mx, {behaviour::drop, {}});
    std::optional<mx_answer> out;
    asio::co_spawn(f.io, f.res->mx("silent.test"), [&out, &f](std::exception_ptr e, mx_answer m) {
        if (!e)
            out = std::move(m);
        f.io.stop();
    });
    f.dns.on_query = [&f] { f.io.stop(); }; // the query reached the server
    f.io.run_for(5s);
    REQUIRE(f.dns.hits("silent.test", t_mx) == 1);
    f.dns.on_query = nullptr;
    f.res.reset();
    f.io.restart();
    f.io.run_for(5s); // stopped by the completion
    REQUIRE(out);
    CHECK(out->st == status::temporary);
}

TEST_CASE("server lists are checked at construction; empty means resolv.conf")
{
    asio::io_context io;
    util::manual_clock clock;
    CHECK_THROWS_AS(ares_resolver(io, {"not an address"}, 1000ms, 1, clock), std::runtime_error);
    CHECK_NOTHROW(ares_resolver(io, {"127.0.0.1:53", "[::1]:5353"}, 1000ms, 1, clock));
    CHECK_NOTHROW(ares_resolver(io, {}, 1000ms, 1, clock)); // /etc/resolv.conf (no query is sent)
}

}
