// auth/credentials.hpp — who may authenticate: the credentials seam
// (DESIGN.md) and its static, config-backed implementation.
// static_credentials owns a copy of its user table, immutable after
// construction; check() may run on several threads at once. check() costs a
// full KDF run (run it on the worker pool): an unknown user is checked
// against a dummy hash of the same cost, so timing does not tell users apart.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "postern/auth/password.hpp"
#include "postern/util/result.hpp"

namespace postern::auth {

class credentials {
public:
    virtual ~credentials() = default;
    // true: the password is right for this user; false: unknown user or wrong
    // password (callers must not tell the two apart); an error: no verdict.
    virtual util::result<bool> check(std::string_view username, std::string_view password) = 0;
};

class static_credentials : public credentials {
public:
    // users: username → encoded hash (see password.hpp). Throws
    // std::invalid_argument naming the user if a hash is malformed (config
    // validation refuses those first). least_iterations is lowered only by tests.
    explicit static_credentials(std::map<std::string, std::string, std::less<>> users,
                                std::uint32_t least_iterations = min_iterations);

    util::result<bool> check(std::string_view username, std::string_view password) override;

private:
    std::map<std::string, std::string, std::less<>> users_;
    std::uint32_t least_iterations_;
    std::string dummy_; // as costly as the costliest user's hash
};

} // namespace postern::auth
