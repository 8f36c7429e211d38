// tests/tls/tls_fixture.hpp — temp directories and one shared self-signed pair
// (RSA key generation costs ~0.1 s; tests that do not test generation reuse it).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "postern/tls/context.hpp"
#include "postern/util/id.hpp"

namespace postern::tls::testing {

struct temp_dir {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("postern-tls-test-" + util::make_session_id());
    temp_dir() { std::filesystem::create_directories(path); }
    ~temp_dir() { std::filesystem::remove_all(path); }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    std::string str(std::string_view name = {}) const
    {
        return name.empty() ? path.string() : (path / name).string();
    }
};

inline constexpr const char* test_host = "mx.test";

// A self-signed pair for test_host, made once per test binary.
inline const server_tls_files& shared_pair()
{
    static temp_dir dir;
    static server_tls_files files = [] {
        bool created = false;
        return ensure_self_signed(dir.str(), test_host, created);
    }();
    return files;
}

} // namespace postern::tls::testing
