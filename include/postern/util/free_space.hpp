// util/free_space.hpp — how much room a file system has left for us, for the
// refusal of new mail before the spool or the Maildirs fill up (452 4.3.1,
// RFC 3463 4.3.1 "mail system full").
// Thread: any (statvfs). free_space_monitor belongs to one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "postern/util/result.hpp"

namespace postern::util {

// Octets an unprivileged writer may still use on the file system holding
// path (statvfs f_bavail × f_frsize); a path not made yet is measured at its
// nearest existing ancestor.
result<std::uint64_t> free_space(const std::string& path);

// Whether any of several directories is below a threshold, re-checked at
// most once per interval (statvfs is cheap but not free at 20k sessions/s).
// A directory that cannot be measured (permissions, I/O error) counts as
// low: refusing for a while is safe, accepting mail we cannot store is not.
class free_space_monitor {
public:
    using steady = std::chrono::steady_clock;

    free_space_monitor(std::vector<std::string> dirs, std::uint64_t min_free,
                       std::chrono::milliseconds interval = std::chrono::seconds(1));

    // Re-measures when the last measurement is older than the interval.
    // changed (optional) says whether the answer differs from the last one.
    bool low(steady::time_point now, bool* changed = nullptr);
    // The directory found low by the last measurement, or empty.
    const std::string& low_dir() const noexcept { return low_dir_; }

private:
    std::vector<std::string> dirs_;
    std::uint64_t min_free_;
    std::chrono::milliseconds interval_;
    steady::time_point checked_{};
    bool measured_ = false;
    bool low_ = false;
    std::string low_dir_;
};

} // namespace postern::util
