#include "postern/scheduler/retry.hpp"

namespace postern::scheduler {

std::chrono::seconds backoff(const retry_policy& p, std::uint32_t attempts)
{
    auto d = p.initial;
    for (std::uint32_t i = 1; i < attempts && d < p.max; ++i)
        d *= 2;
    return d < p.max ? d : p.max;
}

util::time_point next_attempt(const retry_policy& p, std::uint32_t attempts, util::time_point now)
{
    return now + backoff(p, attempts);
}

bool expired(const retry_policy& p, util::time_point received, util::time_point now)
{
    return now - received >= p.give_up;
}

} // namespace postern::scheduler
