#include "postern/auth/failure_limiter.hpp"

#include <algorithm>

namespace postern::auth {

failure_limiter::failure_limiter(std::uint32_t max_failures, std::chrono::seconds window, std::size_t max_tracked)
    : max_failures_(std::max<std::uint32_t>(max_failures, 1)), window_(window),
      max_tracked_(std::max<std::size_t>(max_tracked, 1))
{
}

void failure_limiter::configure(std::uint32_t max_failures, std::chrono::seconds window)
{
    max_failures_ = std::max<std::uint32_t>(max_failures, 1);
    window_ = window;
}

bool failure_limiter::locked(std::string_view address, util::time_point now) const
{
    auto it = entries_.find(address);
    return it != entries_.end() && !expired(it->second, now) && it->second.failures >= max_failures_;
}

void failure_limiter::failed(const std::string& address, util::time_point now)
{
    auto it = entries_.find(address);
    if (it == entries_.end()) {
        make_room(now);
        entries_.emplace(address, entry{now, 1});
        return;
    }
    if (expired(it->second, now))
        it->second = entry{now, 0};
    ++it->second.failures;
}

void failure_limiter::make_room(util::time_point now)
{
    if (entries_.size() < max_tracked_)
        return;
    std::erase_if(entries_, [&](const auto& kv) { return expired(kv.second, now); });
    if (entries_.size() < max_tracked_)
        return;
    auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                   [](const auto& a, const auto& b) { return a.second.since < b.second.since; });
    entries_.erase(oldest);
}

} // namespace postern::auth
