#include "postern/util/free_space.hpp"

#include <cerrno>
#include <system_error>

#include <sys/statvfs.h>

namespace postern::util {

result<std::uint64_t> free_space(const std::string& path)
{
    // A directory made on first use (a Maildir root) lives on the file
    // system of its nearest existing ancestor.
    std::string p = path.empty() ? std::string(".") : path;
    for (;;) {
        struct statvfs st {};
        if (::statvfs(p.c_str(), &st) == 0)
            return static_cast<std::uint64_t>(st.f_bavail) * static_cast<std::uint64_t>(st.f_frsize);
        const int err = errno;
        const auto slash = p.find_last_of('/');
        if (err != ENOENT || slash == std::string::npos || p == "/")
            return std::error_code(err, std::system_category());
        p = slash == 0 ? std::string("/") : p.substr(0, slash);
    }
}

free_space_monitor::free_space_monitor(std::vector<std::string> dirs, std::uint64_t min_free,
                                       std::chrono::milliseconds interval)
    : dirs_(std::move(dirs)), min_free_(min_free), interval_(interval)
{
}

bool free_space_monitor::low(steady::time_point now, bool* changed)
{
    if (changed)
        *changed = false;
    if (min_free_ == 0 || (measured_ && now - checked_ < interval_))
        return low_;
    const bool before = low_;
    checked_ = now;
    measured_ = true;
    low_ = false;
    low_dir_.clear();
    for (const auto& d : dirs_) {
        auto f = free_space(d);
        if (!f || *f < min_free_) {
            low_ = true;
            low_dir_ = d;
            break;
        }
    }
    if (changed)
        *changed = low_ != before;
    return low_;
}

} // namespace postern::util
