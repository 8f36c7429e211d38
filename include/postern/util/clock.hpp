// util/clock.hpp — the injected wall clock (one of the four seams of DESIGN.md).
// Pure modules never read time themselves; they take a clock&. Thread: the
// system clock is safe from any thread; manual_clock is for single-threaded tests.
#pragma once

#include <chrono>

namespace postern::util {

using time_point = std::chrono::system_clock::time_point;

class clock {
public:
    virtual ~clock() = default;
    virtual time_point now() const = 0;
};

class system_clock final : public clock {
public:
    time_point now() const override { return std::chrono::system_clock::now(); }
};

class manual_clock final : public clock {
public:
    explicit manual_clock(time_point t = time_point{}) : now_(t) {}
    time_point now() const override { return now_; }
    void set(time_point t) { now_ = t; }
    void advance(std::chrono::system_clock::duration d) { now_ += d; }

private:
    time_point now_;
};

// Seconds since the epoch, the unit stored on disk.
inline std::int64_t unix_seconds(time_point t)
{
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
inline time_point from_unix_seconds(std::int64_t s)
{
    return time_point{std::chrono::seconds{s}};
}
// RFC 5322 3.3 date-time in UTC, e.g. "Thu, 26 Nov 2026 06:50:31 +0000".
std::string rfc5322_date(time_point t);

} // namespace postern::util
