// auth/failure_limiter.hpp — failed logins per client address, across
// connections (Postfix's anvil does the same for its rate limits): after
// max_failures within a window the address is locked until the window that
// began with its first counted failure has passed.
// A success does not reset the count: one valid account must not let a
// client go on guessing the passwords of others.
// Bounded: at most max_tracked addresses are remembered; when full, expired
// entries go first, then the oldest. Pure (time is passed in); one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "postern/util/clock.hpp"

namespace postern::auth {

class failure_limiter {
public:
    failure_limiter(std::uint32_t max_failures, std::chrono::seconds window, std::size_t max_tracked = 65536);

    // Whether the address may not try again now.
    bool locked(std::string_view address, util::time_point now) const;
    // Counts one failed attempt of address.
    void failed(const std::string& address, util::time_point now);

    std::size_t tracked() const noexcept { return entries_.size(); }
    // New limits (a configuration reload); the failures counted so far stay.
    void configure(std::uint32_t max_failures, std::chrono::seconds window);

private:
    struct entry {
        util::time_point since; // the first failure of the current window
        std::uint32_t failures = 0;
    };
    bool expired(const entry& e, util::time_point now) const { return now - e.since >= window_; }
    void make_room(util::time_point now);

    std::uint32_t max_failures_;
    std::chrono::seconds window_;
    std::size_t max_tracked_;
    std::map<std::string, entry, std::less<>> entries_;
};

} // namespace postern::auth
