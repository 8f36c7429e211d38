// tests/temp_dir.hpp — a fresh directory under the system temp dir for one
// test, removed with everything in it when the test ends. Shared by the
// unit tests that touch the filesystem.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "postern/util/id.hpp"

namespace postern::testing {

struct temp_dir {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("postern-test-" + util::make_session_id());
    temp_dir() { std::filesystem::create_directories(path); }
    ~temp_dir() { std::filesystem::remove_all(path); }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    // The directory itself, or a name inside it.
    std::string str(std::string_view name = {}) const
    {
        return name.empty() ? path.string() : (path / name).string();
    }
};

// Regular files anywhere below root (0 when root does not exist).
inline std::size_t files_under(const std::filesystem::path& root)
{
    std::size_t n = 0;
    if (!std::filesystem::exists(root))
        return 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(root))
        n += e.is_regular_file() ? 1 : 0;
    return n;
}

} // namespace postern::testing
