#include "postern/util/id.hpp"

#include <atomic>
#include <random>

#include "postern/util/strings.hpp"

namespace postern::util {

namespace {

std::atomic<std::uint64_t> queue_counter{0};

std::uint64_t splitmix64(std::uint64_t& state)
{
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

} // namespace

std::string make_queue_id(time_point now)
{
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
    auto n = queue_counter.fetch_add(1, std::memory_order_relaxed);
    return hex(static_cast<std::uint64_t>(us), 13) + hex(n & 0xfff, 3);
}

std::string make_session_id()
{
    static std::atomic<std::uint64_t> state{[] {
        std::random_device rd;
        return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    }()};
    std::uint64_t s = state.fetch_add(0x9e3779b97f4a7c15ULL, std::memory_order_relaxed);
    return hex(splitmix64(s), 16);
}

bool is_queue_id(std::string_view s) noexcept
{
    if (s.size() != 16)
        return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

} // namespace postern::util
