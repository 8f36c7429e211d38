// fuzz_dns — the DNS answer handling of the dns module: dns::ares_resolver
// (c-ares' parsers on the raw answer, the module's own TTL/SOA scan, the
// A+AAAA combination, the cache) and dns::plan_mx on what it returns.
//
// The answer parsing lives in ares_resolver.cpp's anonymous namespace, so
// the target drives the real resolver: c-ares sends its query to a UDP
// responder on 127.0.0.1 inside this process, which answers with a packet
// built from the input. The header ID and the question are copied from the
// query (c-ares drops answers whose question differs), TC is never set (no
// TCP retry); flags, RCODE, section counts and every record come from the
// input.
//
// Input: [mode] [spec1 length, only for an address lookup] spec1 [spec2].
// mode bits 0-1: MX, TXT, A+AAAA (spec1 answers AAAA, spec2 answers A),
// A+AAAA; the other bits seed plan_mx's shuffle. A spec: [flags] [ancount]
// [nscount] [arcount] records... ; flags bit 0 AA, bits 4-6 pick the RCODE
// (NOERROR mostly, NXDOMAIN, SERVFAIL, REFUSED, FORMERR).
//
// Invariants checked (dns/resolver.hpp, dns/mx_plan.hpp): answers hold at
// most max_records records, ok means at least one, an error text otherwise;
// MX hosts are lower-case without a trailing dot; IPv6 addresses before
// IPv4; asking again, when the cache answers, gives the same answer; a plan
// of hosts has 1..max_plan_hosts distinct valid lower-case names, never one
// of ours, any other plan none and an error starting with its enhanced
// status code.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/ip/udp.hpp>

#include "fuzz_support.hpp"

#include "postern/dns/ares_resolver.hpp"
#include "postern/dns/mx_plan.hpp"
#include "postern/util/clock.hpp"

namespace {

using namespace postern;
using asio::ip::udp;

constexpr const char* domain = "example.test";

class responder {
public:
    responder() : sock_(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) { receive(); }

    std::string server() const { return "127.0.0.1:" + std::to_string(sock_.local_endpoint().port()); }

    asio::io_context io;
    std::string_view spec_main; // MX, TXT, AAAA
    std::string_view spec_a;    // A
    std::size_t queries = 0;

private:
    void receive()
    {
        sock_.async_receive_from(asio::buffer(buf_), peer_, [this](std::error_code ec, std::size_t n) {
            if (!ec)
                answer(n);
            receive();
        });
    }

    void answer(std::size_t n)
    {
        ++queries;
        // The question: QNAME, QTYPE, QCLASS after the 12-octet header.
        if (n < 12)
            return;
        std::size_t off = 12;
        while (off < n && buf_[off] != 0)
            off += 1U + buf_[off];
        off += 1 + 4;
        if (off > n)
            return;
        const unsigned qtype = (unsigned{buf_[off - 4]} << 8) | buf_[off - 3];
        const std::string_view spec = qtype == 1 ? spec_a : spec_main;

        fuzz::byte_source b(spec.substr(0, std::min<std::size_t>(spec.size(), 4)));
        const std::uint8_t flags = b.byte();
        static constexpr std::array<std::uint8_t, 8> rcodes{0, 0, 0, 0, 3, 2, 5, 1};
        std::string out;
        out += static_cast<char>(buf_[0]);
        out += static_cast<char>(buf_[1]);
        out += static_cast<char>(0x80U | (buf_[2] & 0x01U) | ((flags & 0x01U) << 2U)); // QR, RD, AA
        out += static_cast<char>(0x80U | rcodes[(flags >> 4U) & 0x07U]);              // RA, RCODE
        out += '\0';
        out += '\1'; // QDCOUNT
        for (int i = 0; i < 3; ++i) {
            out += '\0';
            out += static_cast<char>(b.byte()); // ANCOUNT, NSCOUNT, ARCOUNT
        }
        out.append(reinterpret_cast<const char*>(buf_.data()) + 12, off - 12);
        if (spec.size() > 4)
            out.append(spec.substr(4));
        std::error_code ec;
        sock_.send_to(asio::buffer(out), peer_, 0, ec);
    }

    udp::socket sock_;
    std::array<unsigned char, 65536> buf_{};
    udp::endpoint peer_;
};

struct harness {
    responder dns;
    util::manual_clock clock{util::from_unix_seconds(1700000000)};
    dns::ares_resolver res{dns.io, {dns.server()}, std::chrono::milliseconds(2000), 1, clock};
};

harness& the_harness()
{
    static auto* h = new harness; // never destroyed: c-ares and Asio outlive every input
    return *h;
}

template <class Answer>
asio::awaitable<void> ask(dns::ares_resolver* r, std::optional<Answer>* out)
{
    if constexpr (std::is_same_v<Answer, dns::mx_answer>)
        *out = co_await r->mx(domain);
    else if constexpr (std::is_same_v<Answer, dns::txt_answer>)
        *out = co_await r->txt(domain);
    else
        *out = co_await r->addresses(domain);
}

template <class Answer>
Answer lookup(harness& h)
{
    std::optional<Answer> out;
    asio::co_spawn(h.dns.io, ask<Answer>(&h.res, &out), [](std::exception_ptr e) {
        if (e)
            std::rethrow_exception(e);
    });
    while (!out)
        h.dns.io.run_one();
    return std::move(*out);
}

template <class Answer>
void check_common(const Answer& a, std::size_t n)
{
    POSTERN_FUZZ_CHECK(n <= dns::ares_resolver::max_records, "more records than max_records");
    if (a.st == dns::status::ok)
        POSTERN_FUZZ_CHECK(n > 0, "ok without records");
    else
        POSTERN_FUZZ_CHECK(n == 0 && !a.error.empty(), "failure with records or without a reason");
}

// c-ares writes a '.' inside a label as "\." (and other odd octets as
// "\DDD"): only an unescaped final dot is a trailing dot.
bool lower_no_dot(const std::string& s)
{
    for (char c : s)
        if (c >= 'A' && c <= 'Z')
            return false;
    if (s.empty() || s.back() != '.')
        return true;
    std::size_t backslashes = 0;
    for (std::size_t i = s.size() - 1; i > 0 && s[i - 1] == '\\'; --i)
        ++backslashes;
    return backslashes % 2 == 1;
}

void check_plan(const dns::mx_answer& a, std::uint64_t seed)
{
    const std::vector<std::string> ours{"mx.example.test", "MX2.Example.Test."};
    const auto p = dns::plan_mx(a, domain, ours, seed);
    if (p.k == dns::plan::kind::hosts) {
        POSTERN_FUZZ_CHECK(!p.hosts.empty() && p.hosts.size() <= dns::max_plan_hosts, "plan host count");
        for (std::size_t i = 0; i < p.hosts.size(); ++i) {
            POSTERN_FUZZ_CHECK(dns::valid_mx_host(p.hosts[i]) || p.hosts[i] == domain, p.hosts[i].c_str());
            POSTERN_FUZZ_CHECK(lower_no_dot(p.hosts[i]), p.hosts[i].c_str());
            POSTERN_FUZZ_CHECK(p.hosts[i] != "mx.example.test" && p.hosts[i] != "mx2.example.test",
                               "plan includes ourselves");
            for (std::size_t j = 0; j < i; ++j)
                POSTERN_FUZZ_CHECK(p.hosts[j] != p.hosts[i], "duplicate host in plan");
        }
        return;
    }
    POSTERN_FUZZ_CHECK(p.hosts.empty(), "hosts in a plan that is not hosts");
    const char* code = "";
    switch (p.k) {
    case dns::plan::kind::null_mx: code = "5.1.10 "; break;
    case dns::plan::kind::nxdomain: code = "5.1.2 "; break;
    case dns::plan::kind::temporary: code = "4.4.3 "; break;
    case dns::plan::kind::loop: code = "5.4.6 "; break;
    case dns::plan::kind::hosts: break;
    }
    POSTERN_FUZZ_CHECK(p.error.rfind(code, 0) == 0, p.error.c_str());
}

bool same(const dns::mx_answer& x, const dns::mx_answer& y)
{
    if (x.st != y.st || x.error != y.error || x.records.size() != y.records.size())
        return false;
    for (std::size_t i = 0; i < x.records.size(); ++i)
        if (x.records[i].preference != y.records[i].preference || x.records[i].host != y.records[i].host)
            return false;
    return true;
}

bool same(const dns::txt_answer& x, const dns::txt_answer& y)
{
    return x.st == y.st && x.error == y.error && x.records == y.records;
}

bool same(const dns::address_answer& x, const dns::address_answer& y)
{
    return x.st == y.st && x.error == y.error && x.addresses == y.addresses;
}

std::string describe(const dns::mx_answer& a)
{
    std::string s = std::string(dns::to_string(a.st)) + " \"" + a.error + "\"";
    for (const auto& r : a.records)
        s += " " + std::to_string(r.preference) + ":" + r.host;
    return s;
}

std::string describe(const dns::txt_answer& a)
{
    std::string s = std::string(dns::to_string(a.st)) + " \"" + a.error + "\"";
    for (const auto& r : a.records)
        s += " [" + r + "]";
    return s;
}

std::string describe(const dns::address_answer& a)
{
    std::string s = std::string(dns::to_string(a.st)) + " \"" + a.error + "\"";
    for (const auto& r : a.addresses)
        s += " " + r.to_string();
    return s;
}

// Asking again, when answered from the cache (no new query), gives the same
// answer. A new query is not compared: its answer may differ, as c-ares picks
// a random query ID and a compression pointer in the input may point into
// the header.
template <class Answer>
void check_again(harness& h, const Answer& first)
{
    const auto queries = h.dns.queries;
    const auto again = lookup<Answer>(h);
    if (h.dns.queries == queries && !same(first, again)) {
        std::fprintf(stderr, "first: %s\nagain: %s\n", describe(first).c_str(), describe(again).c_str());
        POSTERN_FUZZ_CHECK(false, "asking again gave another answer");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 1)
        return 0;
    harness& h = the_harness();
    const std::uint8_t mode = data[0];
    std::string_view rest = fuzz::as_view(data + 1, size - 1);
    const int kind = mode & 0x03;
    if (kind >= 2) {
        const std::size_t first = rest.empty() ? 0 : std::min<std::size_t>(static_cast<std::uint8_t>(rest[0]), rest.size() - 1);
        rest.remove_prefix(rest.empty() ? 0 : 1);
        h.dns.spec_main = rest.substr(0, first);
        h.dns.spec_a = rest.substr(first);
    } else {
        h.dns.spec_main = rest;
        h.dns.spec_a = {};
    }
    h.res.clear_cache();

    switch (kind) {
    case 0: {
        const auto a = lookup<dns::mx_answer>(h);
        check_common(a, a.records.size());
        for (const auto& r : a.records)
            POSTERN_FUZZ_CHECK(lower_no_dot(r.host), r.host.c_str());
        check_plan(a, mode >> 2U);
        check_again(h, a);
        break;
    }
    case 1: {
        const auto a = lookup<dns::txt_answer>(h);
        check_common(a, a.records.size());
        check_again(h, a);
        break;
    }
    default: {
        const auto a = lookup<dns::address_answer>(h);
        check_common(a, a.addresses.size());
        bool seen_v4 = false;
        for (const auto& addr : a.addresses) {
            if (addr.is_v4())
                seen_v4 = true;
            else
                POSTERN_FUZZ_CHECK(!seen_v4, "IPv6 address after IPv4");
        }
        check_again(h, a);
        break;
    }
    }
    h.res.clear_cache();
    return 0;
}
