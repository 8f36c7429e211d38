// scheduler/retry.hpp — when a deferred recipient is tried again. Pure: the
// caller passes the time (DESIGN: the scheduler runs over an injected clock).
// Backoff doubles from `initial` up to `max` (Postfix's minimal/maximal
// backoff time); an entry older than `give_up` has expired.
#pragma once

#include <chrono>
#include <cstdint>

#include "postern/util/clock.hpp"

namespace postern::scheduler {

struct retry_policy {
    std::chrono::seconds initial{300};
    std::chrono::seconds max{3600};
    std::chrono::seconds give_up{432000}; // 5 days, RFC 5321 4.5.4.1 suggests 4–5
};

// Delay before attempt number `attempts + 1`, after `attempts` failures (>= 1).
std::chrono::seconds backoff(const retry_policy& p, std::uint32_t attempts);
util::time_point next_attempt(const retry_policy& p, std::uint32_t attempts, util::time_point now);
bool expired(const retry_policy& p, util::time_point received, util::time_point now);

} // namespace postern::scheduler
