#include "postern/dns/fake_resolver.hpp"

#include <utility>

#include "postern/util/strings.hpp"

namespace postern::dns {

namespace {

std::string key_of(std::string_view name)
{
    if (!name.empty() && name.back() == '.')
        name.remove_suffix(1);
    return util::to_lower(name);
}

template <class Answer>
Answer find_or_nxdomain(const std::map<std::string, Answer>& m, const std::string& name)
{
    if (auto it = m.find(key_of(name)); it != m.end())
        return it->second;
    Answer a;
    a.st = status::nxdomain;
    a.error = "fake: no such name";
    return a;
}

} // namespace

void fake_resolver::set_mx(std::string_view domain, mx_answer a) { mx_[key_of(domain)] = std::move(a); }
void fake_resolver::set_addresses(std::string_view host, address_answer a) { addresses_[key_of(host)] = std::move(a); }
void fake_resolver::set_txt(std::string_view name, txt_answer a) { txt_[key_of(name)] = std::move(a); }

asio::awaitable<mx_answer> fake_resolver::mx(std::string domain)
{
    ++mx_queries_;
    co_return find_or_nxdomain(mx_, domain);
}

asio::awaitable<address_answer> fake_resolver::addresses(std::string host)
{
    ++address_queries_;
    co_return find_or_nxdomain(addresses_, host);
}

asio::awaitable<txt_answer> fake_resolver::txt(std::string name)
{
    ++txt_queries_;
    co_return find_or_nxdomain(txt_, name);
}

} // namespace postern::dns
