// dns/fake_resolver.hpp — in-memory resolver for tests (no sockets, no clock).
// Names are matched case-insensitively, a trailing dot ignored. A name never
// set answers nxdomain. Every call is counted, cached or not.
// Thread: single-threaded, like the loop that awaits it.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include "postern/dns/resolver.hpp"

namespace postern::dns {

class fake_resolver final : public resolver {
public:
    void set_mx(std::string_view domain, mx_answer a);
    void set_addresses(std::string_view host, address_answer a);
    void set_txt(std::string_view name, txt_answer a);

    asio::awaitable<mx_answer> mx(std::string domain) override;
    asio::awaitable<address_answer> addresses(std::string host) override;
    asio::awaitable<txt_answer> txt(std::string name) override;

    std::size_t queries() const noexcept { return mx_queries_ + address_queries_ + txt_queries_; }
    std::size_t mx_queries() const noexcept { return mx_queries_; }
    std::size_t address_queries() const noexcept { return address_queries_; }
    std::size_t txt_queries() const noexcept { return txt_queries_; }

private:
    std::map<std::string, mx_answer> mx_;
    std::map<std::string, address_answer> addresses_;
    std::map<std::string, txt_answer> txt_;
    std::size_t mx_queries_ = 0;
    std::size_t address_queries_ = 0;
    std::size_t txt_queries_ = 0;
};

} // namespace postern::dns
