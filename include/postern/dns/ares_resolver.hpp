// dns/ares_resolver.hpp — the production resolver: c-ares driven by the Asio loop.
// c-ares never blocks and never runs its own loop: its sockets are watched with
// asio::posix::stream_descriptor (released, never closed — c-ares owns the fds)
// and its retransmissions run from a steady_timer set from ares_timeout().
// Truncated UDP answers are retried over TCP by c-ares. Answers are cached per
// (type, name) until their smallest TTL (capped at max_ttl), negative answers for
// the SOA's negative TTL (capped at negative_ttl); temporary failures never.
// At most max_records records are kept per answer.
// Ownership: the resolver owns the c-ares channel; the clock and the io_context
// must outlive it; destroy it before its io_context. Calls still in flight at
// destruction complete with status::temporary.
// Thread: construct, call and destroy on the io_context's one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "postern/dns/resolver.hpp"
#include "postern/util/clock.hpp"

namespace postern::dns {

namespace detail {
struct ares_state;
}

class ares_resolver final : public resolver {
public:
    static constexpr std::chrono::seconds max_ttl{3600};
    static constexpr std::chrono::seconds negative_ttl{300};
    static constexpr std::size_t max_records = 100;
    static constexpr std::size_t max_cache_entries = 10000;

    // servers: "ip", "ip:port" or "[ipv6]:port"; empty means /etc/resolv.conf.
    // timeout is per try; tries counts attempts per server.
    // Throws std::runtime_error when c-ares cannot start or a server is malformed.
    ares_resolver(const asio::any_io_executor& ex, const std::vector<std::string>& servers,
                  std::chrono::milliseconds timeout, int tries, const util::clock& clock);
    ares_resolver(asio::io_context& io, const std::vector<std::string>& servers,
                  std::chrono::milliseconds timeout, int tries, const util::clock& clock)
        : ares_resolver(io.get_executor(), servers, timeout, tries, clock) {}
    ~ares_resolver() override;
    ares_resolver(const ares_resolver&) = delete;
    ares_resolver& operator=(const ares_resolver&) = delete;

    asio::awaitable<mx_answer> mx(std::string domain) override;
    asio::awaitable<address_answer> addresses(std::string host) override;
    asio::awaitable<txt_answer> txt(std::string name) override;

    // Cached entries right now (expired ones included until they are met).
    std::size_t cache_size() const noexcept;
    void clear_cache() noexcept;

private:
    std::shared_ptr<detail::ares_state> st_;
};

} // namespace postern::dns
