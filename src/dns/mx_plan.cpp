#include "postern/dns/mx_plan.hpp"

#include <algorithm>
#include <cstddef>
#include <utility>

#include "postern/util/strings.hpp"

namespace postern::dns {

namespace {

// splitmix64: tiny, well-mixed, and the same everywhere (std::shuffle's
// algorithm is unspecified, so it would not be deterministic across libraries).
class prng {
public:
    explicit prng(std::uint64_t seed) : s_(seed) {}
    std::uint64_t next() noexcept
    {
        std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, n), n > 0 (rejection sampling: no modulo bias).
    std::size_t below(std::size_t n) noexcept
    {
        const std::uint64_t bound = static_cast<std::uint64_t>(n);
        const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
        std::uint64_t v = next();
        while (v >= limit)
            v = next();
        return static_cast<std::size_t>(v % bound);
    }

private:
    std::uint64_t s_;
};

// Lower-case, without one trailing dot.
std::string normalize(std::string_view name)
{
    if (!name.empty() && name.back() == '.')
        name.remove_suffix(1);
    return util::to_lower(name);
}

bool is_root(std::string_view host) noexcept
{
    return host.empty() || host == ".";
}

bool all_digits(std::string_view s) noexcept
{
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_ours(const std::string& host, const std::vector<std::string>& our_names)
{
    return std::any_of(our_names.begin(), our_names.end(),
                       [&](const std::string& n) { return !n.empty() && normalize(n) == host; });
}

} // namespace

const char* to_string(plan::kind k) noexcept
{
    switch (k) {
    case plan::kind::hosts: return "hosts";
    case plan::kind::null_mx: return "null_mx";
    case plan::kind::nxdomain: return "nxdomain";
    case plan::kind::temporary: return "temporary";
    case plan::kind::loop: return "loop";
    }
    return "?";
}

bool valid_mx_host(std::string_view host) noexcept
{
    if (!host.empty() && host.back() == '.')
        host.remove_suffix(1);
    if (host.empty() || host.size() > 253)
        return false;
    std::string_view last;
    std::size_t start = 0;
    while (start <= host.size()) {
        std::size_t dot = host.find('.', start);
        if (dot == std::string_view::npos)
            dot = host.size();
        std::string_view label = host.substr(start, dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        for (char c : label) {
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_'; // '_' is not LDH, but harmless to try
            if (!ok)
                return false;
        }
        last = label;
        start = dot + 1;
    }
    // RFC 5321 5.1 wants a name, not an address, as MX target; a top-level label
    // is never all-numeric (RFC 3696 2), so "192.0.2.1" is an IPv4 literal.
    // Such records are dropped rather than tolerated: delivering to a literal the
    // domain owner never meant as a name would route around their DNS.
    return !all_digits(last);
}

plan plan_mx(const mx_answer& a, std::string_view domain,
             const std::vector<std::string>& our_names, std::uint64_t seed)
{
    plan p;
    const std::string dom = normalize(domain);
    switch (a.st) {
    case status::nxdomain:
        p.k = plan::kind::nxdomain;
        p.error = "5.1.2 domain " + dom + " does not exist" + (a.error.empty() ? "" : " (" + a.error + ")");
        return p;
    case status::temporary:
        p.k = plan::kind::temporary;
        p.error = "4.4.3 MX lookup for " + dom + " failed" + (a.error.empty() ? "" : ": " + a.error);
        return p;
    case status::nodata:
    case status::ok:
        break;
    }

    std::vector<mx_record> recs;
    if (a.st == status::nodata || a.records.empty()) {
        // Implicit MX (RFC 5321 5.1): the domain itself, as if preference 0.
        recs.push_back({0, dom});
    } else {
        // Null MX (RFC 7505 3): the root as the only target means "no mail here".
        // A root target of another preference is treated the same (it can only
        // mean the same thing); a root among real hosts is dropped as garbage.
        if (a.records.size() == 1 && is_root(a.records.front().host)) {
            p.k = plan::kind::null_mx;
            p.error = "5.1.10 domain " + dom + " accepts no mail (null MX)";
            return p;
        }
        for (const auto& r : a.records) {
            if (!valid_mx_host(r.host))
                continue;
            recs.push_back({r.preference, normalize(r.host)});
        }
        if (recs.empty()) {
            // Every target is malformed: a DNS configuration error that the
            // domain's owner may fix, so retry (and bounce at queue expiry).
            p.k = plan::kind::temporary;
            p.error = "4.4.3 no valid MX host for " + dom;
            return p;
        }
    }

    std::stable_sort(recs.begin(), recs.end(),
                     [](const mx_record& x, const mx_record& y) { return x.preference < y.preference; });

    // Loop rule (RFC 5321 5.1): if we are in the list, only hosts strictly
    // better than our best preference may be tried.
    auto ours = std::find_if(recs.begin(), recs.end(),
                             [&](const mx_record& r) { return is_ours(r.host, our_names); });
    if (ours != recs.end()) {
        const std::uint16_t cut = ours->preference;
        recs.erase(std::remove_if(recs.begin(), recs.end(),
                                  [cut](const mx_record& r) { return r.preference >= cut; }),
                   recs.end());
        if (recs.empty()) {
            p.k = plan::kind::loop;
            p.error = "5.4.6 mail for " + dom + " loops back to myself";
            return p;
        }
    }

    // Shuffle each run of equal preferences (Fisher–Yates within the run).
    prng rng(seed);
    for (std::size_t i = 0; i < recs.size();) {
        std::size_t j = i;
        while (j < recs.size() && recs[j].preference == recs[i].preference)
            ++j;
        for (std::size_t k = j - i; k > 1; --k)
            std::swap(recs[i + k - 1], recs[i + rng.below(k)]);
        i = j;
    }

    p.k = plan::kind::hosts;
    for (auto& r : recs) {
        if (p.hosts.size() == max_plan_hosts)
            break;
        if (std::find(p.hosts.begin(), p.hosts.end(), r.host) == p.hosts.end())
            p.hosts.push_back(std::move(r.host));
    }
    return p;
}

} // namespace postern::dns
